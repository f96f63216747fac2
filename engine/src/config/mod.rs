//! The TOML configuration: its sections, their defaults, where the file is
//! found, and validation that names the key and says what is wrong.
//!
//! Everything has a working default except `upstream.mailbox` (needed for
//! client submission) and `oauth.client_id` (needed for OAuth). A config
//! without them still starts: devices can hand in mail, it is kept safely on
//! disk, and the engine reports "needs attention" until they are set.
//! Secrets never live here; they are in the OS keychain (see `secrets`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub mod lan;
pub mod legacy_tls;
pub mod size;
pub mod tracking;
pub use tracking::TrackingConfig;

/// Exchange Online's default MaxSendSize for a mailbox (35 MB after encoding).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 36_700_160;
/// Exchange Online's per-message recipient limit for client submission.
pub const DEFAULT_MAX_RECIPIENTS: usize = 500;
/// A device needs one connection, a busy application a few; 20 from one
/// address leaves the other 80 of the default 100 to everyone else.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 20;
/// Microsoft's documented submission limits for one mailbox.
pub const DEFAULT_MESSAGES_PER_MINUTE: u32 = 30;
pub const DEFAULT_RECIPIENTS_PER_DAY: u32 = 10_000;
pub const DEFAULT_UPSTREAM_CONNECTIONS: usize = 3;
/// The client submission endpoint.
pub const OFFICE365_SUBMISSION_HOST: &str = "smtp.office365.com";
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listener: ListenerConfig,
    pub upstream: UpstreamConfig,
    pub oauth: OAuthConfig,
    pub limits: LimitsConfig,
    pub delivery: DeliveryConfig,
    pub spool: SpoolConfig,
    pub dns: DnsConfig,
    pub graph: GraphConfig,
    pub tracking: TrackingConfig,
}

/// Microsoft Graph's service root, the default of `graph.endpoint`.
pub const DEFAULT_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";

/// Delivery through Microsoft Graph (`upstream.mode = "graph"`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// Graph's service root; requests go to `{endpoint}/v1.0/...` and the
    /// token is asked for this resource. https, except on a loopback host.
    pub endpoint: String,
    /// Keep a copy of each message in the mailbox's Sent Items.
    pub save_to_sent_items: bool,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            endpoint: DEFAULT_GRAPH_ENDPOINT.to_string(),
            save_to_sent_items: true,
        }
    }
}

impl GraphConfig {
    /// The endpoint without a trailing `/`.
    pub fn root(&self) -> &str {
        self.endpoint.trim_end_matches('/')
    }
}

/// Name resolution for finding the tenant's MX endpoint and for `diagnose`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// DNS servers to ask (e.g. ["192.168.1.1:53"] for split-horizon
    /// offices); empty means the system's resolver configuration.
    pub servers: Vec<SocketAddr>,
}

/// What devices talk to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct ListenerConfig {
    /// Plain SMTP addresses (STARTTLS offered on them).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS addresses ("SMTPS", port 465 style) for devices that only do that.
    pub tls_listen: Vec<SocketAddr>,
    /// Networks allowed to relay without authenticating.
    #[ts(type = "Array<string>")]
    pub allow: Vec<IpNet>,
    /// Devices must AUTH (PLAIN/LOGIN) before sending, even from allowed networks.
    pub require_auth: bool,
    /// Device user names that may AUTH; their passwords live in the keychain.
    pub users: Vec<String>,
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    /// Concurrent device connections; past it a device gets 421 and may retry.
    pub max_connections: usize,
    /// Concurrent connections from one address: a runaway device (or a
    /// flood from one host) cannot take every slot from the others.
    pub max_connections_per_ip: usize,
    /// Name in the greeting; defaults to the machine's host name.
    pub hostname: Option<String>,
    /// PEM certificate chain and key for STARTTLS / implicit TLS. When unset,
    /// a self-signed certificate is generated on first start and kept in the
    /// data directory.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Serve TLS 1.0/1.1 and old cipher suites (through OpenSSL) to devices
    /// in `legacy_tls_allow`, for firmware that cannot do TLS 1.2. Off by
    /// default; see [`legacy_tls`].
    pub legacy_tls: bool,
    /// Who gets legacy TLS when it is on: networks inside `allow`. Empty
    /// means all of `allow`. Ignored while `legacy_tls` is off.
    #[ts(type = "Array<string>")]
    pub legacy_tls_allow: Vec<IpNet>,
    /// How long the next command line may take to arrive whole (RFC 5321:
    /// 5 min); bytes trickling in do not restart it.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub idle_timeout: Duration,
    /// How long a device may stay silent in the middle of DATA; the whole
    /// DATA phase may take three times this.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub data_timeout: Duration,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            tls_listen: Vec::new(),
            allow: vec![
                "127.0.0.0/8".parse().expect("valid CIDR"),
                "::1/128".parse().expect("valid CIDR"),
            ],
            require_auth: false,
            users: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            max_connections: 100,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            hostname: None,
            tls_cert: None,
            tls_key: None,
            legacy_tls: false,
            legacy_tls_allow: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
        }
    }
}

/// How Postern hands mail to Microsoft.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, TS)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamMode {
    /// smtp.office365.com:587, STARTTLS, authenticated as a mailbox.
    Submission,
    /// The tenant MX endpoint on 25 through an inbound connector.
    Relay,
    /// The tenant MX endpoint on 25, internal recipients only.
    DirectSend,
    /// Microsoft Graph `sendMail` over HTTPS, signed in with OAuth.
    Graph,
}

impl UpstreamMode {
    /// Relay and Direct Send deliver over SMTP without signing in.
    pub fn signs_in(self) -> bool {
        matches!(self, UpstreamMode::Submission | UpstreamMode::Graph)
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, TS)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamAuth {
    /// `oauth`, the README's word. Under kebab-case serde would call it
    /// `o-auth`, which the old GUI saved: still read, never written.
    #[serde(rename = "oauth", alias = "o-auth")]
    OAuth,
    Password,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub mode: UpstreamMode,
    /// Empty means the default for the mode (smtp.office365.com for submission).
    pub host: String,
    /// None (or 0 in an old file) means the mode's default: 587 for
    /// submission, 25 for relay and direct-send ([`Self::effective_port`]).
    pub port: Option<u16>,
    /// The mailbox Postern signs in as and sends from.
    pub mailbox: String,
    pub auth: UpstreamAuth,
    /// Extra trust anchors (PEM): TLS-inspecting proxies, test fakes.
    pub ca_file: Option<PathBuf>,
    /// Send as the mailbox: MAIL FROM and From become the mailbox, the
    /// original From moves to Reply-To. The fix for 5.7.60 when Send As
    /// cannot be granted.
    pub rewrite_sender: bool,
    /// Recipients per upstream submission; larger envelopes are split.
    pub max_recipients: usize,
    /// Per-command timeout talking to Microsoft.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub timeout: Duration,
    /// Relay and Direct Send: the tenant's domain, whose MX record names the
    /// endpoint when `host` is empty. Default: the mailbox's domain.
    pub domain: String,
    /// Direct Send: the domains counted as internal; recipients elsewhere are
    /// refused at RCPT. Default: `domain`.
    pub accepted_domains: Vec<String>,
    /// Connector relay: a client certificate (PEM) whose CN/SAN holds an
    /// accepted domain, and its private key (readable only by this user).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// Direct Send to a host that is not Microsoft's (a local smart host):
    /// send unencrypted when it offers no STARTTLS. Off, Postern never
    /// sends a message in clear (an on-path attacker could strip STARTTLS
    /// and read the scans); Microsoft's endpoints always offer TLS, so this
    /// is refused for them.
    pub allow_plaintext: bool,
    /// Whose mailbox a message is sent from: the configured `mailbox`
    /// (default), or the sender's own when its address is in
    /// `accepted_domains` (Graph, or submission with client-credentials).
    pub send_as: SendAs,
}

/// `upstream.send_as`: which mailbox a message goes out from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, TS)]
#[serde(rename_all = "lowercase")]
pub enum SendAs {
    /// The configured `upstream.mailbox`, with sender rewriting as set.
    #[default]
    Mailbox,
    /// The sender's own mailbox: the From header's address (else MAIL
    /// FROM's, when the message has no From) when its domain is in
    /// `upstream.accepted_domains`; any other sender goes as `mailbox`.
    Sender,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            mode: UpstreamMode::Submission,
            host: String::new(),
            port: None,
            mailbox: String::new(),
            auth: UpstreamAuth::OAuth,
            ca_file: None,
            rewrite_sender: false,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            timeout: Duration::from_secs(60),
            domain: String::new(),
            accepted_domains: Vec::new(),
            client_cert: None,
            client_key: None,
            allow_plaintext: false,
            send_as: SendAs::Mailbox,
        }
    }
}

impl UpstreamConfig {
    pub fn effective_host(&self) -> &str {
        if self.host.is_empty() && self.mode == UpstreamMode::Submission {
            OFFICE365_SUBMISSION_HOST
        } else {
            &self.host
        }
    }

    /// The tenant domain for MX lookups: `domain`, else the mailbox's.
    pub fn effective_domain(&self) -> String {
        if !self.domain.is_empty() {
            return self.domain.to_ascii_lowercase();
        }
        self.mailbox
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default()
    }

    /// Direct Send's internal domains: `accepted_domains`, else `domain`.
    pub fn internal_domains(&self) -> Vec<String> {
        if self.accepted_domains.is_empty() {
            let d = self.effective_domain();
            if d.is_empty() {
                vec![]
            } else {
                vec![d]
            }
        } else {
            self.accepted_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect()
        }
    }

    pub fn effective_port(&self) -> u16 {
        match (self.port.filter(|p| *p != 0), self.mode) {
            (None, UpstreamMode::Submission) => 587,
            (None, _) => 25,
            (Some(p), _) => p,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, TS)]
#[serde(rename_all = "kebab-case")]
pub enum OAuthFlow {
    Interactive,
    DeviceCode,
    ClientCredentials,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    pub flow: OAuthFlow,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            authority: DEFAULT_AUTHORITY.to_string(),
            tenant: "organizations".to_string(),
            client_id: String::new(),
            flow: OAuthFlow::Interactive,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub messages_per_minute: u32,
    pub recipients_per_day: u32,
    pub max_connections: usize,
    /// The rolling window `recipients_per_day` counts in (Microsoft: 24 h).
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub recipient_window: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            messages_per_minute: DEFAULT_MESSAGES_PER_MINUTE,
            recipients_per_day: DEFAULT_RECIPIENTS_PER_DAY,
            max_connections: DEFAULT_UPSTREAM_CONNECTIONS,
            recipient_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// Retry policy for messages Microsoft did not take yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// First retry delay; doubles each attempt (with jitter) up to `retry_max`.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub retry_first: Duration,
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub retry_max: Duration,
    /// A message still not delivered after this long fails.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub give_up_after: Duration,
    /// While the queue is held for the admin, how often to try again anyway.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub hold_recheck: Duration,
    /// An idle upstream connection is closed after this long.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub idle_close: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            retry_first: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(2 * 24 * 3600),
            hold_recheck: Duration::from_secs(600),
            idle_close: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Where messages are kept. Default: the platform data dir + `postern/spool`.
    pub dir: Option<PathBuf>,
    /// How long sent and failed messages stay visible in the queue history.
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub keep_history: Duration,
    /// Free disk space kept in reserve (like Postfix's `queue_minfree`):
    /// below it new mail gets `452 4.3.1` (the device tries again later),
    /// so the queue never fills the disk to the last byte. A size in bytes
    /// or with a unit ("100 MB"). None: [`SpoolConfig::effective_min_free`].
    #[serde(with = "size::option")]
    #[ts(type = "number | null")]
    pub min_free: Option<u64>,
}

/// The smallest default disk reserve.
pub const DEFAULT_MIN_FREE: u64 = 100 << 20;

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            dir: None,
            keep_history: Duration::from_secs(7 * 24 * 3600),
            min_free: None,
        }
    }
}

impl SpoolConfig {
    /// The disk reserve in effect: `min_free`, else the larger of 100 MB
    /// and two of the largest message (Postfix advises at least 1.5 times
    /// its message size limit): one message at the limit being received
    /// can never take the disk's last bytes.
    pub fn effective_min_free(&self, max_message_bytes: u64) -> u64 {
        self.min_free
            .unwrap_or_else(|| DEFAULT_MIN_FREE.max(max_message_bytes.saturating_mul(2)))
    }
}

/// A configuration problem, worded for the person editing the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// Where the config file is: `--config`, else `POSTERN_CONFIG`, else the
/// platform config dir (`postern/postern.toml`).
pub fn config_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("POSTERN_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("postern")
        .join("postern.toml")
}

/// The platform data dir for Postern (spool, generated certificate, control socket).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("postern")
}

impl Config {
    /// Reads and validates the file. A missing file is not an error: the
    /// defaults apply (that is how the quick start runs).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        // The error's source snippet shows only the offending line, which
        // may not hold the key (a multi-line array): name the key path.
        let config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let key = e.path().to_string();
                let message = e.into_inner().to_string();
                let message = message.trim_end().replace('\n', "\n  ");
                ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: match key.as_str() {
                        "" | "." => message,
                        key => format!("{key}: {message}"),
                    },
                }
            })?;
        let mut config = config;
        // Relay and Direct Send never sign in: their auth defaults to none
        // (only an explicit, contradictory setting is an error).
        let auth_given = text
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("upstream")?.get("auth").cloned())
            .is_some();
        // `port = 0` (what older files and the old GUI wrote) means the default.
        if config.upstream.port == Some(0) {
            config.upstream.port = None;
        }
        if !config.upstream.mode.signs_in() && !auth_given {
            config.upstream.auth = UpstreamAuth::None;
        }
        config.validate(path)?;
        Ok(config)
    }

    /// The spool directory in effect.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool
            .dir
            .clone()
            .unwrap_or_else(|| default_data_dir().join("spool"))
    }

    /// What is missing before mail can leave, in words for the admin; None
    /// when the upstream side is fully configured.
    pub fn upstream_gap(&self) -> Option<String> {
        let u = &self.upstream;
        if u.mode.signs_in() && u.mailbox.is_empty() {
            return Some("No mailbox is configured: set upstream.mailbox to the Microsoft 365 mailbox Postern sends as.".into());
        }
        if u.auth == UpstreamAuth::OAuth && self.oauth.client_id.is_empty() {
            return Some("No OAuth application is configured: set oauth.client_id to the app registration's client id.".into());
        }
        None
    }
}

/// The rule for a device user name (`listener.users`): not empty, no
/// spaces. The error is worded for the admin.
pub fn check_device_user(user: &str) -> Result<(), String> {
    if user.is_empty() || user.contains(char::is_whitespace) {
        return Err(format!(
            "{user:?} is not a usable user name (no spaces, not empty)"
        ));
    }
    Ok(())
}

/// A light check: one @, something on each side, no spaces.
pub fn looks_like_address(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !s.contains(char::is_whitespace)
                && !s.contains(['<', '>'])
        }
        None => false,
    }
}

mod endpoint;
mod validate;
pub use endpoint::{is_microsoft_host, validate_graph_endpoint};

#[cfg(test)]
mod tests;
