//! `postern diagnose` and `postern send-test` (issue #5), run as the real
//! binary against the fake Exchange Online and identity platform, a fake
//! DNS server holding the domain's records, and the real OS keychain.
//!
//! A healthy setup passes every check; each broken piece (SPF without
//! Microsoft's include, MX elsewhere, a closed port, no STARTTLS, SMTP AUTH
//! off for the tenant, an open allowlist, no secret in the keychain) shows
//! up as its own warn/fail line with what to do. send-test goes through a
//! running `postern serve` and reports the outcome with its explanation.

mod support;

use std::net::Ipv4Addr;

use postern_testkit::{FakeDns, Fault, Stage, Zone};
use serde_json::Value;
use support::*;

const DOMAIN: &str = "contoso.com";
const TENANT_MX: &str = "contoso-com.mail.protection.outlook.com";
const GOOD_SPF: &str = "v=spf1 include:spf.protection.outlook.com -all";

/// A fake DNS server with everything Microsoft 365 wants for contoso.com.
async fn healthy_dns() -> FakeDns {
    let dns = FakeDns::start(Zone::new()).await;
    dns.set_mx(DOMAIN, &[(0, TENANT_MX)]);
    dns.set_txt(DOMAIN, &[GOOD_SPF, "MS=ms12345678"]);
    dns.set_txt(&format!("_dmarc.{DOMAIN}"), &["v=DMARC1; p=quarantine"]);
    for s in ["selector1", "selector2"] {
        dns.set_cname(
            &format!("{s}._domainkey.{DOMAIN}"),
            Some(&format!(
                "{s}-contoso-com._domainkey.contoso.onmicrosoft.com"
            )),
        );
    }
    dns.set_a("localhost", &[Ipv4Addr::LOCALHOST]);
    dns
}

/// A config for `up` that asks `dns`, with the client secret stored;
/// `serve` is not started.
fn prepared(up: &Upstream, dns: &FakeDns, change: impl FnOnce(&mut toml::Table)) -> Postern {
    let p = Postern::prepare(up, |c| {
        set(
            c,
            "dns.servers",
            toml::Value::Array(vec![dns.addr().to_string().into()]),
        );
        change(c);
    });
    let out = p.cli_stdin(&["account", "set-secret"], CLIENT_SECRET);
    assert!(out.status.success(), "{}", text(&out));
    p
}

/// `postern diagnose --json`: the exit code and the checks.
fn diagnose(p: &Postern) -> (i32, Vec<Value>) {
    let out = p.cli(&["diagnose", "--json"]);
    let checks: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diagnose --json did not print JSON ({e}):\n{}", text(&out)));
    (
        out.status.code().unwrap_or(-1),
        checks.as_array().unwrap().clone(),
    )
}

fn check<'a>(checks: &'a [Value], id: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
}

/// Asserts the check's verdict and that `found` holds `needle`; returns the check.
fn expect<'a>(checks: &'a [Value], id: &str, verdict: &str, needle: &str) -> &'a Value {
    let c = check(checks, id);
    assert_eq!(c["verdict"], verdict, "{id}: {c:#}\nall: {checks:#?}");
    let found = c["found"].as_str().unwrap();
    assert!(
        found.contains(needle),
        "{id} found {found:?}, expected {needle:?}"
    );
    c
}

fn fix(c: &Value) -> &str {
    c["fix"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_setup_passes_every_check_without_sending_mail() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    // Delivery's checks; tracking (its own permission) is
    // e2e_diagnose_graph's tracking_says_whether_the_trace_can_be_read.
    let p = prepared(&up, &dns, |c| set(c, "tracking.enabled", false));
    let (code, checks) = diagnose(&p);
    for c in &checks {
        match c["verdict"].as_str().unwrap() {
            "ok" => {}
            "skip" => assert!(
                !c["found"].as_str().unwrap().is_empty(),
                "skip without a reason: {c:#}"
            ),
            _ => panic!("not ok: {c:#}\nall: {checks:#?}"),
        }
    }
    assert_eq!(code, 0);
    expect(&checks, "dns.mx", "ok", TENANT_MX);
    expect(&checks, "dns.spf", "ok", GOOD_SPF);
    expect(&checks, "dns.dmarc", "ok", "v=DMARC1");
    expect(
        &checks,
        "dns.dkim",
        "ok",
        "selector2 → selector2-contoso-com",
    );
    expect(&checks, "keychain.secret", "ok", "client secret");
    expect(&checks, "network.tcp", "ok", "connected");
    expect(&checks, "network.starttls", "ok", "offered");
    expect(&checks, "network.tls", "ok", "TLS 1.");
    expect(&checks, "auth.token", "ok", "access token");
    expect(&checks, "auth.smtp", "ok", "accepted the sign-in");
    let stats = up.exchange.stats();
    assert!(stats.auth_successes >= 1, "{stats:?}");
    assert_eq!(stats.messages, 0, "diagnose must not send mail");

    // The same checks, for people: one line each, verdict first.
    let out = p.cli(&["diagnose"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "[ ok ] MX record of {DOMAIN} — points to {TENANT_MX}"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("fix:"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_without_microsofts_include_warns() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    dns.set_txt(DOMAIN, &["v=spf1 include:_spf.mailhoster.example ~all"]);
    let p = prepared(&up, &dns, |_| {});
    let (code, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "dns.spf",
        "warn",
        "does not include spf.protection.outlook.com",
    );
    assert!(
        fix(c).contains("include:spf.protection.outlook.com"),
        "{c:#}"
    );
    assert_eq!(
        code, 0,
        "a warning alone does not fail diagnose: {checks:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mx_elsewhere_fails_and_says_where_it_points() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    dns.set_mx(
        DOMAIN,
        &[
            (10, "mx1.mailhoster.example"),
            (20, "mx2.mailhoster.example"),
        ],
    );
    let p = prepared(&up, &dns, |_| {});
    let (code, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "dns.mx",
        "fail",
        "points to mx1.mailhoster.example (preference 10)",
    );
    assert!(fix(c).contains(TENANT_MX), "{c:#}");
    assert_eq!(code, 1);

    let out = p.cli(&["diagnose"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .position(|l| {
            l.starts_with(&format!(
                "[fail] MX record of {DOMAIN} — points to mx1.mailhoster.example"
            ))
        })
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        stdout
            .lines()
            .nth(line + 1)
            .unwrap()
            .trim_start()
            .starts_with("fix: "),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_port_fails_and_skips_what_depends_on_it() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = prepared(&up, &dns, |c| set(c, "upstream.port", i64::from(closed)));
    let (code, checks) = diagnose(&p);
    let c = expect(&checks, "network.tcp", "fail", "cannot connect");
    assert!(fix(c).contains("firewall"), "{c:#}");
    expect(&checks, "network.starttls", "skip", "no connection");
    expect(&checks, "network.tls", "skip", "no connection");
    expect(&checks, "auth.smtp", "skip", "no encrypted connection");
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_starttls_fails() {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(Fault::NoStartTls));
    let dns = healthy_dns().await;
    let p = prepared(&up, &dns, |_| {});
    let (code, checks) = diagnose(&p);
    expect(&checks, "network.tcp", "ok", "connected");
    let c = expect(
        &checks,
        "network.starttls",
        "fail",
        "does not offer STARTTLS",
    );
    assert!(fix(c).contains("firewall"), "{c:#}");
    expect(&checks, "network.tls", "skip", "no STARTTLS");
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_auth_disabled_for_the_tenant_fails_with_the_set_casmailbox_fix() {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::Auth,
        reply: "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.".into(),
    }));
    let dns = healthy_dns().await;
    let p = prepared(&up, &dns, |_| {});
    let (code, checks) = diagnose(&p);
    expect(&checks, "auth.token", "ok", "access token");
    let c = expect(&checks, "auth.smtp", "fail", "5.7.139");
    assert!(
        fix(c).contains(&format!(
            "Set-CASMailbox -Identity {MAILBOX} -SmtpClientAuthenticationDisabled $false"
        )),
        "{c:#}"
    );
    assert_eq!(code, 1);
    assert_eq!(up.exchange.stats().messages, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn wide_open_allowlist_warns() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    let p = prepared(&up, &dns, |c| {
        set(
            c,
            "listener.allow",
            toml::Value::Array(vec!["0.0.0.0/0".into(), "::/0".into()]),
        )
    });
    let (code, checks) = diagnose(&p);
    let c = expect(&checks, "listener.allow", "warn", "open relay");
    assert!(fix(c).contains("require_auth"), "{c:#}");
    assert_eq!(code, 0, "{checks:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_tls_warns_with_the_networks_and_the_fix() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    let p = prepared(&up, &dns, |c| {
        set(c, "listener.allow", vec!["192.168.1.0/24"]);
        set(c, "listener.legacy_tls", true);
        set(c, "listener.legacy_tls_allow", vec!["192.168.1.40/32"]);
    });
    let (code, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "listener.legacy_tls",
        "warn",
        "on for 192.168.1.40/32",
    );
    assert!(
        c["found"].as_str().unwrap().contains("TLS 1.0/1.1"),
        "{c:#}"
    );
    assert!(
        fix(c).contains("firmware") && fix(c).contains("legacy_tls = false"),
        "{c:#}"
    );
    assert_eq!(code, 0, "a warning, not a failure: {checks:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_client_secret_fails_with_the_command_that_stores_it() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    // prepare only: no `postern account set-secret`.
    let p = Postern::prepare(&up, |c| {
        set(
            c,
            "dns.servers",
            toml::Value::Array(vec![dns.addr().to_string().into()]),
        )
    });
    let (code, checks) = diagnose(&p);
    let c = expect(&checks, "keychain.secret", "fail", "not in the keychain");
    assert!(fix(c).contains("postern account set-secret"), "{c:#}");
    expect(&checks, "auth.token", "skip", "keychain");
    assert_eq!(code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_sees_a_running_serve_on_its_listen_address() {
    let up = Upstream::start().await;
    let dns = healthy_dns().await;
    let mut p = prepared(&up, &dns, |_| {});
    p.spawn();
    let (_, checks) = diagnose(&p);
    expect(&checks, "listener.bind", "ok", "postern serve is running");
}

fn subject_of(m: &postern_testkit::Received) -> String {
    String::from_utf8_lossy(&m.data)
        .lines()
        .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_goes_through_the_queue_and_arrives() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let out = p.cli(&["send-test", "--to", "bob@contoso.com"]);
    assert!(out.status.success(), "{}\nlog:\n{}", text(&out), p.log());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Queued as "), "{stdout}");
    assert!(stdout.contains("Sent: "), "{stdout}");
    let got = up.exchange.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].mail_from, MAILBOX);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com".to_string()]);
    assert!(
        subject_of(&got[0]).starts_with("Postern test message "),
        "{got:?}"
    );
    // It went through the queue like any device's mail.
    let q = p.queue();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["state"], "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_reports_a_refusal_with_its_explanation() {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::DataEnd,
        reply: "550 5.7.60 SMTP; Client does not have permissions to send as this sender".into(),
    }));
    let p = Postern::start(&up).await;
    let out = p.cli(&[
        "send-test",
        "--to",
        "bob@contoso.com",
        "--from",
        "boss@contoso.com",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("Failed: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(failed.contains("550 5.7.60"), "{stdout}");
    assert!(
        stdout.contains("not allowed to send as this sender"),
        "{stdout}"
    );
    assert!(stdout.contains("Send As"), "{stdout}");
    assert!(up.exchange.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn send_test_without_serve_says_to_start_it() {
    let up = Upstream::start().await;
    let p = Postern::prepare(&up, |_| {});
    let out = p.cli(&["send-test", "--to", "bob@contoso.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("start `postern serve` first"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connector_relay_reaches_the_endpoint_its_mx_names() {
    // The fake plays the tenant MX endpoint, certificate and all; the
    // config names only the domain, so the endpoint comes from the MX.
    let up = Upstream::start_with(
        postern_testkit::FakeExchangeOptions {
            role: postern_testkit::Role::Connector,
            hostname: TENANT_MX.to_string(),
            ..Default::default()
        },
        Default::default(),
    )
    .await;
    let dns = healthy_dns().await;
    dns.set_a(TENANT_MX, &[Ipv4Addr::LOCALHOST]);
    let p = Postern::prepare(&up, |c| {
        set(c, "upstream.mode", "relay");
        set(c, "upstream.host", "");
        set(c, "upstream.domain", DOMAIN);
        set(c, "oauth.flow", "interactive");
        set(
            c,
            "dns.servers",
            toml::Value::Array(vec![dns.addr().to_string().into()]),
        );
    });
    let (code, checks) = diagnose(&p);
    assert_eq!(code, 0, "{checks:#?}");
    expect(&checks, "config.mode", "ok", "connector relay");
    expect(&checks, "keychain.secret", "skip", "does not sign in");
    expect(&checks, "dns.spf_ip", "skip", "public IP");
    expect(&checks, "network.tcp", "ok", "connected (127.0.0.1:");
    expect(&checks, "network.tls", "ok", TENANT_MX);
    expect(&checks, "auth.smtp", "skip", "do not sign in");
}

/// `send-test` puts nothing the admin typed into an SMTP session: a CR LF
/// in `--to` or `--from` (which would have added commands) is refused, and
/// nothing is queued or sent.
#[tokio::test(flavor = "multi_thread")]
async fn send_test_refuses_addresses_that_would_add_commands() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    for args in [
        ["--to", "bob@contoso.com\r\nRCPT TO:<victim@evil.example>"],
        ["--to", "bob@contoso.com>\r\nDATA"],
        ["--from", "x@contoso.com\r\nRCPT TO:<victim@evil.example>"],
    ] {
        let mut all = vec!["send-test", "--no-wait"];
        if args[0] == "--from" {
            all.extend(["--to", "bob@contoso.com"]);
        }
        all.extend(args);
        let out = p.cli(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("is not an email address"),
            "{}",
            text(&out)
        );
    }
    assert!(p.queue().is_empty(), "{:?}", p.queue());
    // A plain address still goes, and only it arrives.
    let out = p.cli(&["send-test", "--to", "bob@contoso.com"]);
    assert!(out.status.success(), "{}", text(&out));
    let got = up.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
}
