//! The device side: every listen address can be bound (or `postern serve`
//! already listens there), the allowlist does not make Postern an open
//! relay, and legacy TLS (TLS 1.0/1.1 for old devices) is flagged when on.

use std::io::ErrorKind;
use std::net::SocketAddr;

use super::{Check, Context};
use crate::control::{self, Request};

pub(crate) async fn check(cx: &mut Context<'_>) {
    let l = &cx.config.listener;
    let running = running_addrs(cx).await;
    let addrs: Vec<(SocketAddr, bool)> = l
        .listen
        .iter()
        .map(|a| (*a, false))
        .chain(l.tls_listen.iter().map(|a| (*a, true)))
        .collect();
    for (addr, tls) in addrs {
        let check = bind_check(addr, tls, running.as_deref()).await;
        cx.push(check);
    }
    cx.push(allowlist(cx));
    if let Some(check) = legacy_tls(cx) {
        cx.push(check);
    }
}

/// The addresses a running `postern serve` on this spool listens on;
/// `None` when none runs.
async fn running_addrs(cx: &Context<'_>) -> Option<Vec<SocketAddr>> {
    let resp = control::request(&cx.config.spool_dir(), &Request::Status)
        .await
        .ok()?;
    let data = resp.data?;
    Some(serde_json::from_value(data["listening"].clone()).unwrap_or_default())
}

async fn bind_check(addr: SocketAddr, tls: bool, running: Option<&[SocketAddr]>) -> Check {
    let id = "listener.bind";
    let title = format!(
        "Listen address {addr}{}",
        if tls { " (implicit TLS)" } else { "" }
    );
    if let Some(listening) = running {
        let here = listening.contains(&addr) || addr.port() == 0;
        let found = if here {
            "postern serve is running and listening here".to_string()
        } else {
            let list: Vec<String> = listening.iter().map(|a| a.to_string()).collect();
            format!(
                "postern serve is running (listening on {}); restart it to pick up this address",
                list.join(", ")
            )
        };
        return Check::ok(id, title, found);
    }
    match tokio::net::TcpListener::bind(addr).await {
        Ok(_) => Check::ok(id, title, "free: postern serve can listen here"),
        Err(e) if e.kind() == ErrorKind::AddrInUse => Check::fail(
            id,
            title,
            "another program already listens on it",
            format!(
                "Stop the other program (`ss -ltnp 'sport = :{}'` shows which), or pick another port in listener.listen.",
                addr.port()
            ),
        ),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Check::fail(
            id,
            title,
            format!("not allowed to listen on port {}: {e}", addr.port()),
            "Ports below 1024 need privileges: use a port such as 2525, or grant the binary CAP_NET_BIND_SERVICE (`setcap cap_net_bind_service=+ep $(which postern)`).",
        ),
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Check::fail(
            id,
            title,
            format!("this machine has no address {}", addr.ip()),
            "Use one of this machine's addresses in listener.listen, or 0.0.0.0 for all of them.",
        ),
        Err(e) => Check::fail(
            id,
            title,
            format!("cannot listen: {e}"),
            "Check listener.listen.",
        ),
    }
}

fn allowlist(cx: &Context<'_>) -> Check {
    let l = &cx.config.listener;
    let id = "listener.allow";
    let title = "Who may relay without a password";
    let nets: Vec<String> = l.allow.iter().map(|n| n.to_string()).collect();
    if l.require_auth {
        return Check::ok(
            id,
            title,
            format!(
                "nobody: every device must log in (listener.require_auth, users {})",
                l.users.join(", ")
            ),
        );
    }
    if nets.is_empty() {
        return Check::ok(
            id,
            title,
            "nobody: listener.allow is empty, so devices must log in",
        );
    }
    let open: Vec<&String> = nets
        .iter()
        .zip(&l.allow)
        .filter(|(_, n)| n.prefix_len() == 0)
        .map(|(s, _)| s)
        .collect();
    if !open.is_empty() {
        let ports: Vec<String> = l.listen.iter().map(|a| a.port().to_string()).collect();
        return Check::warn(
            id,
            title,
            format!(
                "everyone: listener.allow holds {} and require_auth is off, so anyone who reaches port {} can send mail as your organisation (an open relay)",
                open.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" and "),
                ports.join("/")
            ),
            "Narrow listener.allow to your office network (e.g. [\"192.168.1.0/24\"]), or set listener.require_auth = true with device users.",
        );
    }
    Check::ok(id, title, nets.join(", "))
}

/// A warning while `listener.legacy_tls` is on (nothing when off).
fn legacy_tls(cx: &Context<'_>) -> Option<Check> {
    let l = &cx.config.listener;
    if !l.legacy_tls {
        return None;
    }
    let nets: Vec<String> = l
        .legacy_tls_networks()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let whole = if l.legacy_tls_allow.is_empty() {
        " (all of listener.allow, as listener.legacy_tls_allow is empty)"
    } else {
        ""
    };
    Some(Check::warn(
        "listener.legacy_tls",
        "Legacy TLS for old devices",
        format!(
            "on for {}{whole}: devices there may use TLS 1.0/1.1 and old cipher suites such as AES128-SHA and 3DES. Both are deprecated (RFC 8996) and weak: known attacks (BEAST on TLS 1.0's CBC suites, SWEET32 on 3DES) let someone who can watch that network recover parts of what is sent, such as device passwords",
            nets.join(", ")
        ),
        "Update the firmware of the devices that need it (the log names each one: \"legacy TLS session\" with its address and TLS version), then set listener.legacy_tls = false. Until then keep listener.legacy_tls_allow as narrow as you can, e.g. [\"192.168.1.40/32\"] for one scanner.",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn context(config: &Config) -> Context<'_> {
        Context {
            config,
            secrets: crate::secrets::SecretStore::new(),
            resolver: None,
            dns_error: None,
            hostname: "h".into(),
            keychain_ok: false,
            mx_target: None,
            upstream_addrs: Vec::new(),
            tcp_ok: false,
            tls_ok: false,
            graph_tls_ok: false,
            graph_token: None,
            checks: Vec::new(),
        }
    }

    #[test]
    fn legacy_tls_warns_naming_the_networks_and_the_fix() {
        let mut config = Config::default();
        assert_eq!(legacy_tls(&context(&config)), None, "off: no check");
        config.listener.allow = vec!["192.168.1.0/24".parse().unwrap()];
        config.listener.legacy_tls = true;
        let c = legacy_tls(&context(&config)).unwrap();
        assert_eq!(c.verdict, super::super::Verdict::Warn);
        assert!(
            c.found
                .contains("on for 192.168.1.0/24 (all of listener.allow")
                && c.found.contains("TLS 1.0/1.1"),
            "{}",
            c.found
        );
        assert!(
            c.fix.contains("firmware") && c.fix.contains("listener.legacy_tls = false"),
            "{}",
            c.fix
        );
        config.listener.legacy_tls_allow = vec!["192.168.1.40/32".parse().unwrap()];
        let c = legacy_tls(&context(&config)).unwrap();
        assert!(
            c.found.starts_with("on for 192.168.1.40/32: "),
            "{}",
            c.found
        );
    }
}
