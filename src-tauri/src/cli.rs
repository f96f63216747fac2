//! Command-line parsing (clap) and dispatch. The names here are a
//! user-facing contract (README.md documents them; admins' scripts, the
//! systemd unit in packaging/linux and the e2e tests call them): change them
//! only with care.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;

#[derive(Parser, Debug)]
#[command(
    name = "postern",
    version,
    about = "A small-office mail relay: local SMTP in, Microsoft 365 out."
)]
pub struct Cli {
    /// Config file (default: $POSTERN_CONFIG, else the platform config dir's postern/postern.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the relay headless in the foreground; logs on stderr; Ctrl-C or SIGTERM stops it cleanly.
    Serve,
    /// Show the queue, or act on it.
    Queue(QueueArgs),
    /// Throttle state, queue counts and account state.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// The Microsoft 365 account and the secrets in the OS keychain.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Check config, keychain, listener, DNS, connectivity, TLS and sign-in; each with a verdict and what to do.
    Diagnose {
        #[arg(long)]
        json: bool,
    },
    /// Send a test message through the running Postern's queue and wait for its outcome.
    SendTest {
        /// Recipient of the test message.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Sender (default: upstream.mailbox).
        #[arg(long, value_name = "ADDR")]
        from: Option<String>,
        /// Return once Postern has queued it, without waiting for delivery.
        #[arg(long)]
        no_wait: bool,
    },
}

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<QueueAction>,
}

#[derive(Subcommand, Debug)]
pub enum QueueAction {
    /// Try a message again now (deferred, held or failed), or every one with --all.
    Retry {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        #[arg(long)]
        all: bool,
        /// Send it as the mailbox this time (sender rewriting): the fix for
        /// 5.7.60 when Send As cannot be granted.
        #[arg(long, conflicts_with = "all")]
        rewrite_sender: bool,
    },
    /// Remove a message from the queue for good.
    Delete { id: String },
    /// One message in full: status, recipients and the redacted transcript.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Sign in to Microsoft 365 (stores the refresh token in the OS keychain).
    Login {
        #[arg(long)]
        device_code: bool,
        #[arg(long)]
        no_browser: bool,
    },
    /// Mailbox, flow and sign-in state (never a token).
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove Postern's tokens and secrets for this account from the keychain.
    Logout,
    /// Store a secret read from standard input in the OS keychain: the mailbox
    /// password (auth = "password"), the client secret (flow = "client-credentials"),
    /// or a device's password with --device NAME.
    SetSecret {
        /// Set the password a device uses to AUTH to Postern.
        #[arg(long, value_name = "NAME")]
        device: Option<String>,
    },
}

pub fn main() -> i32 {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if cli.command.is_none() {
        // The tray app: before the first thread starts.
        crate::memory::prepare_tray_process();
        runtime.worker_threads(crate::memory::TRAY_WORKER_THREADS);
    }
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    let config_path = postern_engine::config::config_path(cli.config.as_deref());
    let Some(command) = cli.command else {
        return crate::app::run(runtime, config_path);
    };
    runtime.block_on(commands::run(command, config_path))
}
