//! The `postern` app: the shell around the engine. Today it is the command
//! line (`postern serve`, `postern queue`, …); the tray GUI joins it here.
//! Thin adapters only: the engine decides, the shell adapts.

mod cli;
mod commands;
mod diagnose;
mod login;
mod send_test;

/// Runs the program with the process arguments; returns the exit code.
pub fn run() -> i32 {
    cli::main()
}
