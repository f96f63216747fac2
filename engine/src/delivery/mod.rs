//! Delivery to the upstream service (Microsoft 365 / Exchange Online).
//!
//! The pieces a delivery worker needs to hand a spooled message to the next
//! hop and to understand the answer:
//!
//! - [`upstream`]: one reusable SMTP connection (TLS, AUTH, per-recipient
//!   RCPT handling) built on lettre's low-level client.
//! - [`reply`]: an SMTP reply as data (code, enhanced code, text).
//! - [`classify`]: what a reply means for a queued message (retry, fail,
//!   hold the queue, ...) with a plain explanation for the admin.
//! - [`transcript`]: a redacted record of the conversation for the UI/logs.
//! - [`route`]: which host(s) to connect to and at which addresses (the
//!   tenant's MX for relay and Direct Send), through [`crate::dns`].
//! - [`worker`]: the loop that takes due messages from the spool and
//!   delivers them over reused connections.
//! - [`rewrite`]: sender rewriting, the fix for `5.7.60` when Send As cannot
//!   be granted.
//! - [`send_as`]: which mailbox a message goes out from (`upstream.send_as`).

pub mod classify;
mod lane;
mod outcome;
pub mod reply;
pub mod rewrite;
pub mod route;
pub mod send_as;
mod tap;
pub mod transcript;
pub mod upstream;
pub mod worker;

#[cfg(test)]
mod shutdown_tests;

pub use classify::{
    classify, connect_failure_verdict, tls_failure_verdict, Action, Stage, Verdict,
};
pub use reply::Reply;
pub use rewrite::rewrite_sender;
pub use transcript::Transcript;
pub use upstream::{
    Connection, Credentials, Secret, SendReport, TlsCache, TlsMode, UpstreamError, UpstreamSettings,
};
