//! The `postern` app: the shell around the engine. With a subcommand it is
//! the command line (`postern serve`, `postern queue`, …); with none, the
//! tray app (`app`), which runs the same engine in-process.
//! Thin adapters only: the engine decides, the shell adapts.

mod account_login;
mod app;
mod cli;
mod commands;
mod contract;
mod diagnose;
mod events;
#[cfg(test)]
mod fixtures;
mod ipc;
mod lan;
mod logs;
mod memory;
mod notify;
mod secrets_ipc;
mod send_test;
mod settings;
mod setup;
mod shell;
mod signin;
mod terminal;
mod trace_text;
mod tray;

#[cfg(test)]
mod test_support;

/// Runs the program with the process arguments; returns the exit code.
pub fn run() -> i32 {
    cli::main()
}
