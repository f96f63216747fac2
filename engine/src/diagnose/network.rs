//! The path to Microsoft: the upstream host resolves and answers on its
//! port (and, when port 25 does not, whether 443 on the same host does —
//! the sign of an ISP blocking 25), it offers STARTTLS, and TLS 1.2+ comes
//! up with a certificate valid for the name. No mail is sent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use super::{Check, Context};
use crate::config::UpstreamMode;
use crate::delivery::classify::{connect_failure_verdict, tls_failure_verdict};
use crate::delivery::upstream::{
    Connection, Credentials, TlsMode, UpstreamError, UpstreamSettings,
};
use crate::delivery::Transcript;
use crate::engine::upstream_settings;

/// Longest wait for one TCP connection attempt; a filtered port never
/// answers, and diagnose should not hang for the full command timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The port tried when 25 does not answer: open almost everywhere, so it
/// tells "port 25 is blocked" from "the host is unreachable".
const PROBE_PORT: u16 = 443;

/// The settings diagnose connects with: the configured ones, with the MX
/// endpoint filled in for relay / Direct Send without `upstream.host`.
pub(crate) fn settings(cx: &Context<'_>) -> Option<UpstreamSettings> {
    let mut s = upstream_settings(cx.config, &cx.hostname);
    if s.host.is_empty() {
        s.host = cx.mx_target.clone()?;
    }
    s.addrs = cx.upstream_addrs.clone();
    Some(s)
}

pub(crate) async fn check(cx: &mut Context<'_>) {
    let tcp_title = "Connection to the upstream server";
    let ids = ["network.tcp", "network.starttls", "network.tls"];
    if cx.config.upstream.mode == UpstreamMode::Graph {
        // Graph goes over HTTPS to graph.endpoint, not SMTP.
        for id in ids {
            cx.push(Check::skip(
                id,
                tcp_title,
                "Microsoft Graph mode does not use SMTP",
            ));
        }
        super::graph::tls(cx).await;
        return;
    }
    let Some(settings) = settings(cx) else {
        for id in ids {
            cx.push(Check::skip(
                id,
                tcp_title,
                "no upstream host: upstream.host is empty and the MX record did not name an Exchange Online endpoint",
            ));
        }
        return;
    };
    let target = format!("{}:{}", settings.host, settings.port);
    let tcp_title = format!("Connection to {target}");
    let starttls_title = format!("STARTTLS offered by {}", settings.host);
    let tls_title = format!("TLS 1.2+ with a certificate valid for {}", settings.host);
    let (tcp, addrs) = tcp_check(cx, &settings, tcp_title).await;
    cx.tcp_ok = tcp.is_ok();
    // Connect where the TCP check connected, as the delivery worker does;
    // TLS still checks the certificate against the host name.
    cx.upstream_addrs = addrs;
    cx.push(tcp);
    if !cx.tcp_ok {
        cx.push(Check::skip(
            ids[1],
            starttls_title,
            "no connection (see above)",
        ));
        cx.push(Check::skip(ids[2], tls_title, "no connection (see above)"));
        return;
    }

    let mut probe = settings.clone();
    probe.addrs = cx.upstream_addrs.clone();
    probe.tls = TlsMode::Required;
    // Plaintext only where the admin allowed it (never for Microsoft's hosts).
    let optional =
        cx.config.upstream.mode == UpstreamMode::DirectSend && cx.config.upstream.allow_plaintext;
    let mut transcript = Transcript::default();
    match Connection::open(&probe, &Credentials::None, &mut transcript).await {
        Ok(conn) => {
            let version = conn.tls_version().unwrap_or_else(|| "TLS".to_string());
            conn.quit(&mut transcript).await;
            cx.tls_ok = true;
            cx.push(Check::ok(ids[1], starttls_title, "offered"));
            cx.push(Check::ok(
                ids[2],
                tls_title,
                format!(
                    "{} established; the certificate is valid for {}",
                    pretty(&version),
                    settings.host
                ),
            ));
        }
        Err(UpstreamError::NoStartTls { .. }) if optional => {
            cx.tls_ok = true;
            cx.push(Check::warn(
                ids[1],
                starttls_title,
                "not offered: mail will go unencrypted (upstream.allow_plaintext is on)",
                "Turn STARTTLS on at the smart host, then remove upstream.allow_plaintext.",
            ));
            cx.push(Check::skip(ids[2], tls_title, "no STARTTLS"));
        }
        Err(e @ UpstreamError::NoStartTls { .. }) => {
            cx.push(Check::fail(
                ids[1],
                starttls_title,
                format!("not offered: {e}"),
                e.verdict().fix,
            ));
            cx.push(Check::skip(ids[2], tls_title, "no STARTTLS"));
        }
        Err(UpstreamError::Tls { detail, .. }) => {
            cx.push(Check::ok(ids[1], starttls_title, "offered"));
            cx.push(Check::fail(
                ids[2],
                tls_title,
                format!("the TLS handshake failed: {detail}"),
                tls_failure_verdict().fix,
            ));
        }
        Err(e) => {
            let v = e.verdict();
            let found = match e.reply() {
                Some(r) => format!("the server answered {r}: {}", v.summary),
                None => format!("{e}: {}", v.summary),
            };
            cx.push(Check::fail(ids[1], starttls_title, found, v.fix));
            cx.push(Check::skip(
                ids[2],
                tls_title,
                "the conversation stopped before STARTTLS",
            ));
        }
    }
}

/// "TLSv1_3" / "TLSv1.3" → "TLS 1.3".
fn pretty(version: &str) -> String {
    version.replace("TLSv", "TLS ").replace('_', ".")
}

/// The check, and the addresses to connect to (the one that answered first).
async fn tcp_check(
    cx: &Context<'_>,
    s: &UpstreamSettings,
    title: String,
) -> (Check, Vec<SocketAddr>) {
    let id = "network.tcp";
    let ips = match resolve(cx, &s.host).await {
        Ok(ips) => ips,
        Err(detail) => {
            let check = Check::fail(
                id,
                title,
                format!("cannot resolve {}: {detail}", s.host),
                "Check upstream.host for typos, and that this machine's DNS works (dns.servers, or /etc/resolv.conf).",
            );
            return (check, Vec::new());
        }
    };
    let timeout = CONNECT_TIMEOUT.min(s.timeout);
    let check = match connect_any(&ips, s.port, timeout).await {
        Ok(addr) => {
            let mut addrs: Vec<SocketAddr> =
                ips.iter().map(|ip| SocketAddr::new(*ip, s.port)).collect();
            addrs.retain(|a| *a != addr);
            addrs.insert(0, addr);
            return (Check::ok(id, title, format!("connected ({addr})")), addrs);
        }
        Err(err) if s.port == 25 => {
            if let Ok(addr) = connect_any(&ips, PROBE_PORT, timeout).await {
                Check::fail(
                    id,
                    title,
                    format!(
                        "port 25 appears blocked by your network or ISP: {err}, yet port {PROBE_PORT} on the same host answers ({addr})"
                    ),
                    "Ask your ISP or firewall admin to allow outgoing TCP port 25 to *.mail.protection.outlook.com (many home and some business lines block it), or use client submission (smtp.office365.com:587).",
                )
            } else {
                Check::fail(
                    id,
                    title,
                    format!(
                        "host unreachable: {err}, and port {PROBE_PORT} does not answer either"
                    ),
                    connect_failure_verdict().fix,
                )
            }
        }
        Err(err) => Check::fail(
            id,
            title,
            format!("cannot connect: {err}"),
            connect_failure_verdict().fix,
        ),
    };
    (check, Vec::new())
}

async fn resolve(cx: &Context<'_>, host: &str) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match &cx.resolver {
        Some(r) => r.ips(host).await.map_err(|e| e.to_string()),
        None => Err(cx.dns_error.clone().unwrap_or_default()),
    }
}

/// Tries each address in turn; the first that answers wins.
async fn connect_any(ips: &[IpAddr], port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    let mut errors = Vec::new();
    for ip in ips {
        let addr = SocketAddr::new(*ip, port);
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: no answer within {}s", timeout.as_secs())),
        }
    }
    Err(errors.join("; "))
}
