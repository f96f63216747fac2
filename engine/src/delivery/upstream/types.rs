//! The data around an upstream connection: settings, credentials (with a
//! [`Secret`] that never prints), the per-transaction report and the error
//! type, plus how lettre's errors and TLS parameters map onto them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::client::TlsParameters;

pub use super::tls::TlsCache;

use crate::delivery::classify::{
    classify, connect_failure_verdict, tls_failure_verdict, Action, Stage, Verdict,
};
use crate::delivery::reply::Reply;

/// Where and how to reach the upstream server.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The server's name: what TLS checks the certificate against (and
    /// sends as SNI), and what is connected to when `addrs` is empty.
    pub host: String,
    pub port: u16,
    /// The addresses `host` resolved to, tried in order until one accepts;
    /// empty means resolve `host` with the operating system at connect time.
    pub addrs: Vec<SocketAddr>,
    pub tls: TlsMode,
    /// Extra trust anchors (PEM, may hold several certificates), trusted
    /// in addition to the built-in webpki roots.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate and key presented to the server (connector relay).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `ca_file` and `client_cert` read and parsed once, and the TLS
    /// parameters built from them per host ([`TlsCache::load`] when the
    /// config is loaded; `Default` reads the files on first use).
    pub tls_cache: TlsCache,
    /// Our EHLO name.
    pub hello_name: String,
    /// Per command.
    pub timeout: Duration,
}

/// Whether STARTTLS is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// STARTTLS must be offered (client submission, connector relay).
    Required,
    /// STARTTLS when offered (Direct Send); credentials are still never
    /// sent in the clear.
    Opportunistic,
    /// Plain text; for tests only.
    None,
}

pub use crate::secrets::Secret;

/// How Postern signs in upstream.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Login { user: String, password: Secret },
    XOAuth2 { user: String, token: Secret },
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to {host}:{port}: {detail}")]
    Connect {
        host: String,
        port: u16,
        detail: String,
    },
    #[error("TLS with {host} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error(
        "{host} does not offer STARTTLS; Postern will not send mail or credentials in the clear"
    )]
    NoStartTls { host: String },
    #[error("{stage:?} refused: {reply}")]
    Reply { stage: Stage, reply: Reply },
    #[error("connection lost during {stage:?}: {detail}")]
    Io { stage: Stage, detail: String },
    #[error("timed out during {stage:?}")]
    Timeout { stage: Stage },
}

impl UpstreamError {
    /// What this failure means for the message.
    pub fn verdict(&self) -> Verdict {
        match self {
            UpstreamError::Reply { stage, reply } => classify(*stage, reply),
            UpstreamError::Tls { .. } => tls_failure_verdict(),
            UpstreamError::NoStartTls { .. } => Verdict {
                action: Action::Retry,
                summary: "The mail server did not offer encryption (STARTTLS), so Postern did not send.",
                fix: "Check the upstream host and port (smtp.office365.com:587 or your tenant's MX on 25); a firewall that strips STARTTLS can also cause this.",
            },
            UpstreamError::Timeout { .. } => Verdict {
                action: Action::Retry,
                summary: "The mail server stopped answering.",
                fix: "Nothing to do: Postern retries later; if it keeps happening, check the network path to the server.",
            },
            UpstreamError::Connect { .. } | UpstreamError::Io { .. } => connect_failure_verdict(),
        }
    }

    /// The server's reply, when the failure is a refusal.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            UpstreamError::Reply { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// True when the connection can no longer be used.
    pub(super) fn breaks_connection(&self) -> bool {
        !matches!(self, UpstreamError::Reply { .. })
    }
}

/// What happened to each recipient of one transaction.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    pub accepted: Vec<String>,
    /// Refused for good (5xx at RCPT).
    pub rejected: Vec<(String, Reply)>,
    /// Refused for now (4xx at RCPT).
    pub deferred: Vec<(String, Reply)>,
    /// The reply to the end of DATA; `None` when nothing was sent.
    pub data_reply: Option<Reply>,
    /// The envelope sender Microsoft saw (MAIL FROM; the Graph mailbox):
    /// what the message trace lists as its sender. Set by the lane.
    pub sender: String,
}

/// lettre's TLS parameters for these settings, from their [`TlsCache`]
/// (no file is read when the cache was loaded with the same files).
pub(super) fn tls_parameters(settings: &UpstreamSettings) -> Result<TlsParameters, String> {
    settings.tls_cache.params(
        &settings.host,
        settings.ca_file.as_ref(),
        settings.client_cert.as_ref(),
    )
}

/// Maps a lettre error at `stage` to ours. A negative reply keeps its code
/// and text; lettre reports TLS handshake failures as connection errors.
pub(super) fn from_lettre(
    host: &str,
    stage: Stage,
    e: &lettre::transport::smtp::Error,
) -> UpstreamError {
    use std::error::Error as _;
    if let Some(code) = e.status() {
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        return UpstreamError::Reply {
            stage,
            reply: Reply::parse(&format!("{} {text}", u16::from(code))),
        };
    }
    if e.is_timeout() {
        return UpstreamError::Timeout { stage };
    }
    let detail = match e.source() {
        Some(s) => s.to_string(),
        None => e.to_string(),
    };
    if e.is_tls() || stage == Stage::StartTls {
        return UpstreamError::Tls {
            host: host.to_owned(),
            detail,
        };
    }
    UpstreamError::Io { stage, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let c = Credentials::XOAuth2 {
            user: "a@b".into(),
            token: s.clone(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn error_verdicts() {
        let e = UpstreamError::Reply {
            stage: Stage::DataEnd,
            reply: Reply::parse("550 5.7.60 x"),
        };
        assert_eq!(e.verdict().action, Action::FailMessage);
        assert!(e.reply().is_some());
        for e in [
            UpstreamError::Connect {
                host: "h".into(),
                port: 587,
                detail: "refused".into(),
            },
            UpstreamError::Tls {
                host: "h".into(),
                detail: "bad cert".into(),
            },
            UpstreamError::NoStartTls { host: "h".into() },
            UpstreamError::Io {
                stage: Stage::Data,
                detail: "reset".into(),
            },
            UpstreamError::Timeout { stage: Stage::Data },
        ] {
            assert_eq!(e.verdict().action, Action::Retry, "{e}");
            assert!(!e.verdict().summary.is_empty());
            assert!(e.reply().is_none());
        }
    }
}
