//! `postern diagnose` in Graph mode (issue #13), as the real binary against
//! the fake identity platform (the Graph roles each test grants), the fake
//! Graph (over HTTPS with a test CA through a `TlsFront`, or plain HTTP on
//! loopback) and the real OS keychain: TLS to the endpoint, the token's
//! `Mail.Send` / `Mail.ReadWrite`, the mailbox read without sending, and
//! `upstream.ca_file` trusted by the token endpoint too. Nothing is sent.

mod support;

use std::net::Ipv4Addr;

use postern_testkit::{FakeDns, FakeGraph, GraphMailbox, GraphOptions, IdentityOptions, Zone};
use postern_testkit::{FakeExchangeOptions, RequestKind, TlsFront};
use serde_json::Value;
use support::*;

/// The fakes: identity (Graph roles `roles`), Graph knowing `mailboxes`,
/// and an HTTPS front for the Graph.
struct Fakes {
    up: Upstream,
    graph: FakeGraph,
    front: TlsFront,
    dns: FakeDns,
}

/// contoso.com's records as Microsoft 365 wants them (so the DNS checks
/// ask a fake, not the machine's resolver).
async fn healthy_dns() -> FakeDns {
    let dns = FakeDns::start(Zone::new()).await;
    let domain = "contoso.com";
    dns.set_mx(domain, &[(0, "contoso-com.mail.protection.outlook.com")]);
    dns.set_txt(domain, &["v=spf1 include:spf.protection.outlook.com -all"]);
    dns.set_txt(&format!("_dmarc.{domain}"), &["v=DMARC1; p=quarantine"]);
    for s in ["selector1", "selector2"] {
        dns.set_cname(
            &format!("{s}._domainkey.{domain}"),
            Some(&format!(
                "{s}-contoso-com._domainkey.contoso.onmicrosoft.com"
            )),
        );
    }
    dns.set_a("localhost", &[Ipv4Addr::LOCALHOST]);
    dns
}

async fn fakes(roles: &[&str], mailboxes: Vec<GraphMailbox>) -> Fakes {
    let up = Upstream::start_with(
        FakeExchangeOptions::default(),
        IdentityOptions {
            graph_roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
    )
    .await;
    let graph = FakeGraph::start(GraphOptions {
        identity: Some(up.identity.clone()),
        mailboxes,
        rbac_scope: None,
        ..Default::default()
    })
    .await;
    let front = TlsFront::start(graph.addr()).await;
    graph.add_endpoint(&front.url());
    let dns = healthy_dns().await;
    Fakes {
        up,
        graph,
        front,
        dns,
    }
}

/// Graph mode at `endpoint`, the client secret stored, `serve` not started.
fn prepared(f: &Fakes, endpoint: &str, change: impl FnOnce(&mut toml::Table)) -> Postern {
    let endpoint = endpoint.to_string();
    let dns = f.dns.addr().to_string();
    let p = Postern::prepare(&f.up, |c| {
        set(c, "dns.servers", toml::Value::Array(vec![dns.into()]));
        set(c, "upstream.mode", "graph");
        let u = c["upstream"].as_table_mut().unwrap();
        u.remove("host");
        u.remove("port");
        set(c, "graph.endpoint", endpoint);
        change(c);
    });
    let out = p.cli_stdin(&["account", "set-secret"], CLIENT_SECRET);
    assert!(out.status.success(), "{}", text(&out));
    p
}

/// The front's CA as `upstream.ca_file`.
fn trust_front(f: &Fakes, p: &Postern) -> impl FnOnce(&mut toml::Table) {
    let ca = f.front.write_ca_file(p.dir.path(), "front-ca.pem");
    move |c| set(c, "upstream.ca_file", ca.display().to_string())
}

/// Rewrites the config of `p` with `change` (after `prepared`).
fn rewrite(p: &Postern, change: impl FnOnce(&mut toml::Table)) {
    let mut c: toml::Table = p.config_text().parse().unwrap();
    change(&mut c);
    std::fs::write(&p.config_path, toml::to_string(&c).unwrap()).unwrap();
}

fn diagnose(p: &Postern) -> (i32, Vec<Value>) {
    let out = p.cli(&["diagnose", "--json"]);
    let checks: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("diagnose --json did not print JSON ({e}):\n{}", text(&out)));
    (
        out.status.code().unwrap_or(-1),
        checks.as_array().unwrap().clone(),
    )
}

/// Fakes granting `roles`, one mailbox, Graph behind HTTPS whose CA the
/// config trusts: `postern diagnose`'s happy path.
async fn over_https(roles: &[&str]) -> (Fakes, Postern) {
    let f = fakes(roles, vec![GraphMailbox::new(MAILBOX)]).await;
    let p = prepared(&f, &f.front.url(), |_| {});
    rewrite(&p, trust_front(&f, &p));
    (f, p)
}

/// Asserts the verdict of check `id` and that `found` holds `needle`.
fn expect<'a>(checks: &'a [Value], id: &str, verdict: &str, needle: &str) -> &'a Value {
    let c = checks
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"));
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

/// Everything granted, Graph over HTTPS with its CA in `upstream.ca_file`:
/// every check passes or is skipped with a reason, and no mail is sent.
#[tokio::test(flavor = "multi_thread")]
async fn all_good_over_https_passes_every_check_without_sending() {
    let (f, p) = over_https(&[
        "Mail.Send",
        "Mail.ReadWrite",
        "ExchangeMessageTrace.Read.All",
    ])
    .await;
    let (code, checks) = diagnose(&p);
    for c in &checks {
        match c["verdict"].as_str().unwrap() {
            "ok" => {}
            "skip" => assert!(!c["found"].as_str().unwrap().is_empty(), "{c:#}"),
            _ => panic!("not ok: {c:#}\nall: {checks:#?}"),
        }
    }
    expect(&checks, "graph.tls", "ok", "TLS established");
    expect(
        &checks,
        "auth.token",
        "ok",
        "Microsoft issued an access token",
    );
    expect(
        &checks,
        "graph.mail_send",
        "ok",
        "roles claim holds Mail.Send",
    );
    expect(&checks, "graph.mail_readwrite", "ok", "Mail.ReadWrite");
    expect(
        &checks,
        "graph.mailbox",
        "ok",
        "the mailbox exists, is licensed",
    );
    for id in [
        "network.tcp",
        "network.starttls",
        "network.tls",
        "auth.smtp",
    ] {
        expect(
            &checks,
            id,
            "skip",
            "Microsoft Graph mode does not use SMTP",
        );
    }
    assert_eq!(f.graph.requests(RequestKind::GetMailFolder), 1);
    assert!(
        f.graph.delivered().is_empty(),
        "diagnose must not send mail"
    );
    assert!(f.graph.drafts(MAILBOX).is_empty());
    assert_eq!(f.up.exchange.stats().connections, 0, "no SMTP connection");
    // The token is never printed.
    let out = p.cli(&["diagnose"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("eyJ"),
        "{}",
        text(&out)
    );
    assert_eq!(code, 0);
}

/// Without the front's CA, the certificate is refused and explained.
#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_graph_certificate_is_explained() {
    let f = fakes(
        &["Mail.Send", "Mail.ReadWrite"],
        vec![GraphMailbox::new(MAILBOX)],
    )
    .await;
    let p = prepared(&f, &f.front.url(), |_| {});
    let (code, checks) = diagnose(&p);
    assert_ne!(code, 0);
    let c = expect(
        &checks,
        "graph.tls",
        "fail",
        "signed by a CA this machine does not trust",
    );
    assert!(fix(c).contains("upstream.ca_file"), "{c:#}");
    expect(&checks, "graph.mailbox", "skip", "see the TLS check");
}

/// roles without Mail.Send: the exact consent to grant.
#[tokio::test(flavor = "multi_thread")]
async fn roles_without_mail_send_give_the_consent_fix() {
    let f = fakes(&["Mail.ReadWrite"], vec![GraphMailbox::new(MAILBOX)]).await;
    let p = prepared(&f, &f.graph.endpoint(), |_| {});
    let (code, checks) = diagnose(&p);
    assert_ne!(code, 0);
    expect(
        &checks,
        "graph.tls",
        "skip",
        "plain HTTP on a loopback host",
    );
    let c = expect(&checks, "graph.mail_send", "fail", "holds no Mail.Send");
    assert!(
        fix(c).contains("API permissions → Add a permission → Microsoft Graph → Application permissions → Mail.Send → Grant admin consent"),
        "{c:#}"
    );
}

/// No Mail.ReadWrite: a warning that big scans will fail, and the mailbox
/// cannot be checked without sending.
#[tokio::test(flavor = "multi_thread")]
async fn no_mail_readwrite_warns_about_big_scans() {
    let f = fakes(&["Mail.Send"], vec![GraphMailbox::new(MAILBOX)]).await;
    let p = prepared(&f, &f.graph.endpoint(), |_| {});
    let (code, checks) = diagnose(&p);
    assert_eq!(code, 0, "a warning is not a failure: {checks:#?}");
    expect(&checks, "graph.mail_send", "ok", "Mail.Send");
    let c = expect(&checks, "graph.mail_readwrite", "warn", "over about 3 MB");
    assert!(
        fix(c).contains("Application permissions → Mail.ReadWrite → Grant admin consent"),
        "{c:#}"
    );
    expect(
        &checks,
        "graph.mailbox",
        "skip",
        "could not be checked without sending",
    );
    assert!(f.graph.delivered().is_empty());
}

/// A mailbox Graph does not know, and one without a license.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_unlicensed_mailboxes_are_explained() {
    let mut unlicensed = GraphMailbox::new("gone@contoso.com");
    unlicensed.licensed = false;
    let f = fakes(
        &["Mail.Send", "Mail.ReadWrite"],
        vec![GraphMailbox::new(MAILBOX), unlicensed],
    )
    .await;
    let endpoint = f.graph.endpoint();
    let p = prepared(&f, &endpoint, |c| {
        set(c, "upstream.mailbox", "nobody@contoso.com")
    });
    let (code, checks) = diagnose(&p);
    assert_ne!(code, 0);
    let c = expect(&checks, "graph.mailbox", "fail", "404 ErrorInvalidUser");
    assert!(fix(c).contains("existing Exchange Online mailbox"), "{c:#}");

    rewrite(&p, |c| set(c, "upstream.mailbox", "gone@contoso.com"));
    let (_, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "graph.mailbox",
        "fail",
        "MailboxNotEnabledForRESTAPI",
    );
    assert!(fix(c).contains("Exchange Online license"), "{c:#}");
}

/// `upstream.ca_file` applies to the token endpoint: served over HTTPS with
/// a test CA, it works when ca_file names that CA, and fails saying why
/// when it does not.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_endpoint_trusts_upstream_ca_file() {
    let f = fakes(
        &["Mail.Send", "Mail.ReadWrite"],
        vec![GraphMailbox::new(MAILBOX)],
    )
    .await;
    let login = TlsFront::start(f.up.identity.addr()).await;
    let authority = login.url();
    let p = prepared(&f, &f.graph.endpoint(), |c| {
        set(c, "oauth.authority", authority)
    });
    let ca = login.write_ca_file(p.dir.path(), "login-ca.pem");
    let (_, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "auth.token",
        "fail",
        "cannot trust the Microsoft sign-in service",
    );
    assert!(
        c["found"].as_str().unwrap().contains("does not trust"),
        "{c:#}"
    );
    assert!(fix(c).contains("upstream.ca_file"), "{c:#}");
    assert_eq!(f.up.identity.token_requests(), 0);

    rewrite(&p, |c| set(c, "upstream.ca_file", ca.display().to_string()));
    let (_, checks) = diagnose(&p);
    expect(
        &checks,
        "auth.token",
        "ok",
        "Microsoft issued an access token",
    );
    expect(&checks, "graph.mailbox", "ok", "the mailbox exists");
    assert!(f.up.identity.token_requests() >= 1);
}

/// Tracking: with the trace permission the check asks the trace once and
/// passes; without it, a warning naming the exact consent (delivery does
/// not depend on it, so never a failure).
#[tokio::test(flavor = "multi_thread")]
async fn tracking_says_whether_the_trace_can_be_read() {
    let (f, p) = over_https(&[
        "Mail.Send",
        "Mail.ReadWrite",
        "ExchangeMessageTrace.Read.All",
    ])
    .await;
    let (_, checks) = diagnose(&p);
    expect(
        &checks,
        "tracking.trace",
        "ok",
        "ExchangeMessageTrace.Read.All",
    );
    assert_eq!(
        f.graph.requests(postern_testkit::RequestKind::ListTraces),
        1
    );

    let (f, p) = over_https(&["Mail.Send", "Mail.ReadWrite"]).await;
    let (code, checks) = diagnose(&p);
    let c = expect(
        &checks,
        "tracking.trace",
        "warn",
        "does not carry ExchangeMessageTrace.Read.All",
    );
    assert!(fix(c).contains("Grant admin consent"), "{c:#}");
    assert_eq!(code, 0, "a tracking warning is no failure: {checks:#?}");
    assert_eq!(
        f.graph.requests(postern_testkit::RequestKind::ListTraces),
        0
    );
}
