//! `postern diagnose`: every check an admin would otherwise make by hand
//! with nslookup, telnet and openssl, each with a verdict, what was found
//! and what to do about it.
//!
//! [`run`] goes through the areas in order — configuration and keychain
//! (`setup`), the device listener (`listener`), the domain's DNS records
//! (`records`), the path to Microsoft (`network`) and the sign-in
//! (`signin`); in Graph mode the path is TLS to `graph.endpoint` and,
//! after the sign-in, the token's permissions and the mailbox (`graph`) —
//! and returns the list. A check whose prerequisite failed is
//! a [`Verdict::Skip`] that says which. Nothing here prints and nothing
//! sends mail: the CLI prints the list, and the GUI can show the same one.

mod graph;
mod listener;
mod network;
mod records;
mod setup;
mod signin;
mod tracking;

use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::dns::Resolver;
use crate::secrets::SecretStore;

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Works, but something is worth fixing.
    Warn,
    /// Mail will not go out (or not safely) until this is fixed.
    Fail,
    /// Not checked: a prerequisite failed or it does not apply; `found` says why.
    Skip,
}

impl Verdict {
    /// The short tag the CLI prints in brackets.
    pub fn tag(self) -> &'static str {
        match self {
            Verdict::Ok => " ok ",
            Verdict::Warn => "warn",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct Check {
    /// Stable name for scripts and the GUI, e.g. `dns.mx`.
    #[ts(type = "string")]
    pub id: &'static str,
    /// What was checked, e.g. "MX record of contoso.com".
    pub title: String,
    pub verdict: Verdict,
    /// What was found (for a skip: why it was not checked).
    pub found: String,
    /// What to do; empty when there is nothing to do.
    pub fix: String,
}

impl Check {
    pub fn ok(id: &'static str, title: impl Into<String>, found: impl Into<String>) -> Check {
        Check::new(id, title, Verdict::Ok, found, "")
    }

    pub fn skip(id: &'static str, title: impl Into<String>, why: impl Into<String>) -> Check {
        Check::new(id, title, Verdict::Skip, why, "")
    }

    pub fn warn(
        id: &'static str,
        title: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(id, title, Verdict::Warn, found, fix)
    }

    pub fn fail(
        id: &'static str,
        title: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::new(id, title, Verdict::Fail, found, fix)
    }

    fn new(
        id: &'static str,
        title: impl Into<String>,
        verdict: Verdict,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id,
            title: title.into(),
            verdict,
            found: found.into(),
            fix: fix.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.verdict == Verdict::Ok
    }
}

/// True when no check failed (warnings and skips allowed).
pub fn passed(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.verdict != Verdict::Fail)
}

/// What the areas learn and later areas depend on.
pub(crate) struct Context<'a> {
    pub config: &'a Config,
    pub secrets: SecretStore,
    /// `None` when the resolver could not be set up (`dns_error` says why).
    pub resolver: Option<Resolver>,
    pub dns_error: Option<String>,
    pub hostname: String,
    /// The credential the sign-in needs is in the keychain.
    pub keychain_ok: bool,
    /// The tenant endpoint named by the MX record (relay / Direct Send
    /// without `upstream.host`).
    pub mx_target: Option<String>,
    /// Where upstream answered TCP (tried first by the later checks).
    pub upstream_addrs: Vec<std::net::SocketAddr>,
    /// Upstream answered TCP, and STARTTLS + TLS worked.
    pub tcp_ok: bool,
    pub tls_ok: bool,
    /// Graph mode: `graph.endpoint` answered over TLS (or is plain HTTP on
    /// loopback).
    pub graph_tls_ok: bool,
    /// Graph mode: the access token the sign-in check obtained (never shown).
    pub graph_token: Option<crate::secrets::Secret>,
    pub checks: Vec<Check>,
}

impl Context<'_> {
    fn push(&mut self, check: Check) -> bool {
        let ok = check.verdict != Verdict::Fail;
        self.checks.push(check);
        ok
    }
}

/// Runs every check for `config` (read from `source`), in order.
pub async fn run(config: &Config, source: &Path) -> Vec<Check> {
    let (resolver, dns_error) = match Resolver::new(&config.dns) {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let mut cx = Context {
        config,
        secrets: SecretStore::new(),
        resolver,
        dns_error,
        hostname: config
            .listener
            .hostname
            .clone()
            .unwrap_or_else(crate::engine::host_name),
        keychain_ok: false,
        mx_target: None,
        upstream_addrs: Vec::new(),
        tcp_ok: false,
        tls_ok: false,
        graph_tls_ok: false,
        graph_token: None,
        checks: Vec::new(),
    };
    setup::config(&mut cx, source);
    setup::keychain(&mut cx).await;
    listener::check(&mut cx).await;
    records::check(&mut cx).await;
    network::check(&mut cx).await;
    signin::check(&mut cx).await;
    if config.upstream.mode == crate::config::UpstreamMode::Graph {
        graph::check(&mut cx).await;
    }
    tracking::check(&mut cx).await;
    cx.checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialise_lowercase_and_fail_decides() {
        let c = Check::warn("x", "t", "f", "do");
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["verdict"], "warn");
        assert_eq!(v["id"], "x");
        assert!(passed(&[c.clone(), Check::skip("y", "t", "why")]));
        assert!(!passed(&[c, Check::fail("z", "t", "f", "do")]));
    }
}
