//! The `postern` app: the shell around the engine. With a subcommand it is
//! the command line (`postern serve`, `postern queue`, …); with none, the
//! tray app (`app`), which runs the same engine in-process.
//! Thin adapters only: the engine decides, the shell adapts.

mod app;
mod cli;
mod commands;
mod diagnose;
mod events;
mod ipc;
mod login;
mod logs;
mod memory;
mod notify;
mod send_test;
mod settings;
mod shell;
mod signin;
mod tray;

/// Runs the program with the process arguments; returns the exit code.
pub fn run() -> i32 {
    cli::main()
}
