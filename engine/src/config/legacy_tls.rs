//! The legacy-TLS settings (`listener.legacy_tls`, `listener.legacy_tls_allow`):
//! which device addresses may use TLS 1.0/1.1 and old cipher suites, and the
//! rules that keep it inside the relay allowlist. The OpenSSL server that
//! serves those devices is `listener::legacy_tls`.
//!
//! Legacy TLS is for old devices that are allowed to relay anyway (scanners
//! on the office network), never a way in for anyone else: every network in
//! `legacy_tls_allow` must lie inside a network in `allow`. An empty
//! `legacy_tls_allow` means "all of `allow`" — the simplest setting for an
//! office whose allowlist is its own LAN; narrow it to the devices that need
//! it (e.g. `["192.168.1.40/32"]`) where you can.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ListenerConfig;

impl ListenerConfig {
    /// The networks that get legacy TLS: none while it is off, else
    /// `legacy_tls_allow`, or all of `allow` when that is empty.
    pub fn legacy_tls_networks(&self) -> Vec<IpNet> {
        if !self.legacy_tls {
            Vec::new()
        } else if self.legacy_tls_allow.is_empty() {
            self.allow.clone()
        } else {
            self.legacy_tls_allow.clone()
        }
    }

    /// Whether a device at `ip` gets legacy TLS (IPv4-mapped IPv6
    /// addresses count as their IPv4 address).
    pub fn legacy_tls_for(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.legacy_tls_networks().iter().any(|n| n.contains(&ip))
    }
}

/// The key and message of the first thing wrong with the legacy-TLS
/// settings, or None.
pub(super) fn problem(l: &ListenerConfig) -> Option<(&'static str, String)> {
    for net in &l.legacy_tls_allow {
        if !l.allow.iter().any(|a| a.contains(net)) {
            let allow: Vec<String> = l.allow.iter().map(|n| n.to_string()).collect();
            let allow = if allow.is_empty() {
                "listener.allow is empty".to_string()
            } else {
                format!("listener.allow is {}", allow.join(", "))
            };
            return Some((
                "listener.legacy_tls_allow",
                format!(
                    "{net} is not inside listener.allow ({allow}); legacy TLS is only for devices that may relay, so list networks or addresses within it"
                ),
            ));
        }
    }
    if l.legacy_tls && l.allow.is_empty() {
        return Some((
            "listener.legacy_tls",
            "legacy TLS is only for devices in listener.allow, and listener.allow is empty: add the old devices' network there, or turn legacy_tls off".into(),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("test.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn off_by_default_and_nobody_gets_it() {
        let c = parse("").unwrap();
        assert!(!c.listener.legacy_tls);
        assert!(c.listener.legacy_tls_networks().is_empty());
        assert!(!c.listener.legacy_tls_for("127.0.0.1".parse().unwrap()));
        // A list without the switch is kept but does nothing.
        let c = parse("[listener]\nlegacy_tls_allow = [\"127.0.0.1/32\"]").unwrap();
        assert!(!c.listener.legacy_tls_for("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn empty_list_means_the_whole_allowlist() {
        let c = parse("[listener]\nallow = [\"192.168.1.0/24\", \"::1/128\"]\nlegacy_tls = true")
            .unwrap();
        assert_eq!(c.listener.legacy_tls_networks(), c.listener.allow);
        assert!(c.listener.legacy_tls_for("192.168.1.77".parse().unwrap()));
        assert!(c
            .listener
            .legacy_tls_for("::ffff:192.168.1.77".parse().unwrap()));
        assert!(!c.listener.legacy_tls_for("192.168.2.1".parse().unwrap()));
    }

    #[test]
    fn a_narrower_list_narrows_it() {
        let c = parse(
            "[listener]\nallow = [\"192.168.1.0/24\"]\nlegacy_tls = true\nlegacy_tls_allow = [\"192.168.1.40/32\", \"192.168.1.128/25\"]",
        )
        .unwrap();
        assert!(c.listener.legacy_tls_for("192.168.1.40".parse().unwrap()));
        assert!(c.listener.legacy_tls_for("192.168.1.200".parse().unwrap()));
        assert!(!c.listener.legacy_tls_for("192.168.1.41".parse().unwrap()));
    }

    #[test]
    fn outside_the_allowlist_is_an_error_naming_the_key() {
        for (text, key, words) in [
            (
                "[listener]\nallow = [\"192.168.1.0/24\"]\nlegacy_tls = true\nlegacy_tls_allow = [\"10.0.0.0/8\"]",
                "listener.legacy_tls_allow",
                "10.0.0.0/8 is not inside listener.allow (listener.allow is 192.168.1.0/24)",
            ),
            (
                // Wider than the allowlist network it overlaps.
                "[listener]\nallow = [\"192.168.1.0/24\"]\nlegacy_tls = true\nlegacy_tls_allow = [\"192.168.0.0/16\"]",
                "listener.legacy_tls_allow",
                "192.168.0.0/16 is not inside",
            ),
            (
                // Checked even while off, so turning it on later cannot fail.
                "[listener]\nallow = [\"192.168.1.0/24\"]\nlegacy_tls_allow = [\"0.0.0.0/0\"]",
                "listener.legacy_tls_allow",
                "0.0.0.0/0 is not inside",
            ),
            (
                "[listener]\nallow = []\nlegacy_tls = true",
                "listener.legacy_tls",
                "listener.allow is empty",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(
                err.contains(&format!("{key}: ")) && err.contains(words),
                "{text:?} -> {err}"
            );
        }
    }
}
