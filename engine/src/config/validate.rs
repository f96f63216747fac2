//! Checks on a parsed config that serde cannot make: values that parse but
//! make no sense (a limit of 0, a key without its certificate, a client key
//! others can read, an authority that is not https), each reported with the
//! key's name and what to do.

use std::path::Path;
use std::time::Duration;

use super::endpoint::{validate_authority, validate_graph_endpoint};
use super::{
    check_device_user, is_microsoft_host, legacy_tls, looks_like_address, Config, ConfigError,
    OAuthFlow, SendAs, UpstreamAuth, UpstreamMode,
};

/// Graph's limit of concurrent requests per app and mailbox.
pub const GRAPH_MAX_CONCURRENT: usize = 4;

impl Config {
    /// Checks what serde cannot: values that parse but make no sense.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        let l = &self.listener;
        if l.listen.is_empty() && l.tls_listen.is_empty() {
            return Err(bad(
                "listener.listen",
                "no address to listen on; give at least one, e.g. [\"127.0.0.1:2525\"]".into(),
            ));
        }
        if l.max_message_bytes < 1024 {
            return Err(bad(
                "listener.max_message_bytes",
                format!("{} bytes is too small for any message", l.max_message_bytes),
            ));
        }
        if l.max_recipients == 0 {
            return Err(bad(
                "listener.max_recipients",
                "must be at least 1 (RFC 5321 asks for 100)".into(),
            ));
        }
        if l.max_connections == 0 {
            return Err(bad("listener.max_connections", "must be at least 1".into()));
        }
        if l.max_connections_per_ip == 0 {
            return Err(bad(
                "listener.max_connections_per_ip",
                "must be at least 1".into(),
            ));
        }
        if l.tls_cert.is_some() != l.tls_key.is_some() {
            return Err(bad(
                "listener.tls_cert",
                "tls_cert and tls_key go together: set both, or neither to use a generated certificate".into(),
            ));
        }
        if l.require_auth && l.users.is_empty() {
            return Err(bad(
                "listener.users",
                "require_auth is on but no device users are listed; add names here and set each password with `postern account set-secret --device NAME`".into(),
            ));
        }
        if let Some((key, message)) = legacy_tls::problem(l) {
            return Err(bad(key, message));
        }
        for user in &l.users {
            check_device_user(user).map_err(|m| bad("listener.users", m))?;
        }
        let t = &self.tracking;
        if t.poll < std::time::Duration::from_secs(1) {
            return Err(bad(
                "tracking.poll",
                "must be at least 1s (Microsoft's trace changes over minutes; the default is 5m)"
                    .into(),
            ));
        }
        if t.for_.is_zero() || t.for_ > super::tracking::MAX_TRACKING_FOR {
            return Err(bad(
                "tracking.for",
                format!(
                    "must be between 1s and 10 days (one trace query covers at most 10 days), not {}",
                    humantime::format_duration(t.for_)
                ),
            ));
        }
        let u = &self.upstream;
        if !u.mailbox.is_empty() && !looks_like_address(&u.mailbox) {
            return Err(bad(
                "upstream.mailbox",
                format!(
                    "{:?} is not an email address (expected e.g. scanner@contoso.com)",
                    u.mailbox
                ),
            ));
        }
        if matches!(u.mode, UpstreamMode::Relay | UpstreamMode::DirectSend)
            && u.host.is_empty()
            && u.effective_domain().is_empty()
        {
            return Err(bad(
                "upstream.domain",
                "relay and direct-send modes need your domain (its MX record names the endpoint), or upstream.host set to the endpoint, e.g. contoso-com.mail.protection.outlook.com".into(),
            ));
        }
        if u.client_cert.is_some() != u.client_key.is_some() {
            return Err(bad(
                "upstream.client_cert",
                "client_cert and client_key go together: set both, or neither".into(),
            ));
        }
        for (key, path) in [
            ("upstream.client_cert", &u.client_cert),
            ("upstream.client_key", &u.client_key),
        ] {
            if let Some(p) = path {
                if !p.exists() {
                    return Err(bad(key, format!("{} does not exist", p.display())));
                }
            }
        }
        if let Some(k) = &u.client_key {
            if let Some(mode) = others_can_read(k) {
                return Err(bad(
                    "upstream.client_key",
                    format!(
                        "{} can be read by other users (mode {mode:o}); run `chmod 600 {}`",
                        k.display(),
                        k.display()
                    ),
                ));
            }
        }
        if !u.mode.signs_in() && u.auth != UpstreamAuth::None {
            return Err(bad(
                "upstream.auth",
                "relay and direct-send modes do not sign in; set auth = \"none\"".into(),
            ));
        }
        if u.mode == UpstreamMode::Graph && u.auth != UpstreamAuth::OAuth {
            return Err(bad(
                "upstream.auth",
                "Microsoft Graph signs in only with OAuth; set auth = \"oauth\" (or remove the key)"
                    .into(),
            ));
        }
        if u.max_recipients == 0 {
            return Err(bad("upstream.max_recipients", "must be at least 1".into()));
        }
        if u.mode == UpstreamMode::Graph && l.max_recipients > u.max_recipients {
            // Graph takes a message's recipients in one request: the
            // listener keeps each message within what one request may carry.
            return Err(bad(
                "listener.max_recipients",
                format!(
                    "Microsoft Graph sends a message to all its recipients in one request, at most upstream.max_recipients ({}); set listener.max_recipients to {} or less (a device asking for more hears 452 and sends the rest in another message)",
                    u.max_recipients, u.max_recipients
                ),
            ));
        }
        if let Some(ca) = &u.ca_file {
            if !ca.exists() {
                return Err(bad(
                    "upstream.ca_file",
                    format!("{} does not exist", ca.display()),
                ));
            }
        }
        if u.allow_plaintext {
            if u.mode != UpstreamMode::DirectSend {
                return Err(bad(
                    "upstream.allow_plaintext",
                    "applies only to mode = \"direct-send\"; submission and relay always use TLS"
                        .into(),
                ));
            }
            if u.host.is_empty() || is_microsoft_host(&u.host) {
                return Err(bad(
                    "upstream.allow_plaintext",
                    format!(
                        "{} is Microsoft's endpoint, which always offers TLS: plaintext is never allowed there (remove this key)",
                        if u.host.is_empty() { "the tenant MX" } else { &u.host }
                    ),
                ));
            }
        }
        validate_authority(&self.oauth.authority).map_err(|m| bad("oauth.authority", m))?;
        validate_graph_endpoint(&self.graph.endpoint).map_err(|m| bad("graph.endpoint", m))?;
        if self.oauth.tenant.is_empty() {
            return Err(bad(
                "oauth.tenant",
                "must not be empty; use \"organizations\", your domain, or the tenant id".into(),
            ));
        }
        if self.limits.messages_per_minute == 0 {
            return Err(bad(
                "limits.messages_per_minute",
                "must be at least 1".into(),
            ));
        }
        if self.limits.recipients_per_day == 0 {
            return Err(bad(
                "limits.recipients_per_day",
                "must be at least 1".into(),
            ));
        }
        if self.limits.recipient_window < Duration::from_secs(1) {
            return Err(bad(
                "limits.recipient_window",
                "must be at least a second".into(),
            ));
        }
        if self.limits.max_connections == 0 {
            return Err(bad("limits.max_connections", "must be at least 1".into()));
        }
        if u.mode == UpstreamMode::Graph && self.limits.max_connections > GRAPH_MAX_CONCURRENT {
            return Err(bad(
                "limits.max_connections",
                format!(
                    "Microsoft Graph takes at most {GRAPH_MAX_CONCURRENT} requests at a time per mailbox; set it to {GRAPH_MAX_CONCURRENT} or less"
                ),
            ));
        }
        if let Some(message) = self.send_as_problem() {
            return Err(bad("upstream.send_as", message));
        }
        let d = &self.delivery;
        if d.retry_first.is_zero() || d.retry_max < d.retry_first {
            return Err(bad(
                "delivery.retry_max",
                "retry_first must be above zero and retry_max at least retry_first".into(),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Why `upstream.send_as = "sender"` cannot work with the rest of the
    /// config, and what to do instead.
    fn send_as_problem(&self) -> Option<String> {
        let u = &self.upstream;
        if u.send_as != SendAs::Sender {
            return None;
        }
        if !matches!(u.mode, UpstreamMode::Graph | UpstreamMode::Submission) {
            return Some(
                "\"sender\" sends from each sender's own mailbox, which needs a sign-in: use mode = \"graph\" (or \"submission\" with oauth.flow = \"client-credentials\"), or set send_as = \"mailbox\"".into(),
            );
        }
        if u.auth != UpstreamAuth::OAuth || self.oauth.flow != OAuthFlow::ClientCredentials {
            return Some(
                "\"sender\" needs the app's own sign-in (auth = \"oauth\", oauth.flow = \"client-credentials\"): a password or a signed-in user (interactive, device-code) can send only as that one mailbox. Set oauth.flow = \"client-credentials\" or send_as = \"mailbox\"".into(),
            );
        }
        if u.accepted_domains.is_empty() {
            return Some(
                "\"sender\" sends from the sender's own mailbox only for addresses in upstream.accepted_domains, which is empty: list your domains there, e.g. accepted_domains = [\"contoso.com\"]".into(),
            );
        }
        None
    }
}

/// The file's mode when users other than its owner may read it.
#[cfg(unix)]
fn others_can_read(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn others_can_read(_path: &Path) -> Option<u32> {
    None
}
