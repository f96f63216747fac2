//! Direct Send (issue #5), against the real `postern serve`: no sign-in and
//! no client certificate; Postern finds the tenant endpoint from the MX
//! through a fake DNS server and uses STARTTLS because it is offered.
//! Direct Send only reaches the tenant's own (internal) recipients.

mod support;

use postern_testkit::{FakeExchangeOptions, IdentityOptions, Role};
use support::mail::send;
use support::smtp::Raw;
use support::tenant::*;
use support::*;

async fn direct_send_endpoint() -> Upstream {
    Upstream::start_with(
        FakeExchangeOptions {
            role: Role::DirectSend,
            hostname: ENDPOINT.into(),
            internal_domains: vec![DOMAIN.into()],
            ..Default::default()
        },
        IdentityOptions::default(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_recipient_arrives_over_starttls() {
    let up = direct_send_endpoint().await;
    let dns = tenant_dns().await;
    let p = Postern::start_with(&up, |c| tenant_config(c, "direct-send", &dns)).await;
    let reply = send(&p, "direct", &["alice@contoso.com"]);
    assert!(reply.starts_with("250"), "device heard: {reply}");

    let got = up.wait_for(1).await;
    assert_eq!(got[0].rcpt_to, vec!["alice@contoso.com".to_string()]);
    assert_eq!(got[0].mail_from, MAILBOX);
    assert!(
        got[0].tls,
        "STARTTLS is offered, so it is used: {:?}",
        got[0]
    );
    assert!(got[0].client_cert_names.is_empty(), "{:?}", got[0]);
    assert_eq!(got[0].auth_user, None);
    p.wait_all(1, "sent");
    assert!(dns.query_count(DOMAIN, "MX") >= 1, "{:?}", dns.queries());
}

#[tokio::test(flavor = "multi_thread")]

async fn external_recipient_is_refused_at_rcpt() {
    let up = direct_send_endpoint().await;
    let dns = tenant_dns().await;
    let p = Postern::start_with(&up, |c| tenant_config(c, "direct-send", &dns)).await;

    let (mut c, greeting) = Raw::connect(p.smtp).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    c.expect("EHLO scanner.test", "250").await;
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250").await;
    let refused = c.cmd("RCPT TO:<someone@fabrikam.com>").await;
    assert!(refused.starts_with("550 5.7."), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("direct send"), "{refused}");
    assert!(lower.contains("internal"), "{refused}");
    c.expect("RSET", "250").await;
    c.expect("QUIT", "221").await;

    assert!(p.queue().is_empty(), "{:#?}", p.queue());
    assert_eq!(up.exchange.stats().connections, 0);
}

/// An on-path attacker strips STARTTLS from the tenant MX's EHLO: Postern
/// does not fall back to plaintext. The message waits (deferred, with a
/// reason that says so) and nothing reaches the server in clear.
#[tokio::test(flavor = "multi_thread")]
async fn stripped_starttls_defers_and_sends_nothing_in_clear() {
    let up = direct_send_endpoint().await;
    up.exchange
        .set_sticky_fault(Some(postern_testkit::Fault::NoStartTls));
    let dns = tenant_dns().await;
    let p = Postern::start_with(&up, |c| tenant_config(c, "direct-send", &dns)).await;
    let reply = send(&p, "stripped", &["alice@contoso.com"]);
    assert!(reply.starts_with("250"), "device heard: {reply}");

    let q = p.wait_queue("deferred for want of STARTTLS", |q| {
        q.first().is_some_and(|m| {
            m["state"] == "deferred" && m["summary"].as_str().unwrap_or("").contains("encryption")
        })
    });
    assert!(up.exchange.messages().is_empty(), "{q:#?}");
    let show = p.cli_json(&["queue", "show", q[0]["id"].as_str().unwrap()]);
    let transcript = show["transcript"].as_str().unwrap_or("");
    assert!(!transcript.contains("MAIL FROM"), "{transcript}");

    // Once the network stops stripping it, the message goes, encrypted.
    up.exchange.set_sticky_fault(None);
    p.cli(&["queue", "retry", "--all"]);
    let got = up.wait_for(1).await;
    assert!(got[0].tls, "{:?}", got[0]);
}

/// The admin allowed plaintext for a smart host that is not Microsoft's:
/// then, and only then, a server without STARTTLS gets the message in clear.
#[tokio::test(flavor = "multi_thread")]
async fn plaintext_only_where_allowed_for_a_non_microsoft_host() {
    let up = direct_send_endpoint().await;
    up.exchange
        .set_sticky_fault(Some(postern_testkit::Fault::NoStartTls));
    let dns = tenant_dns().await;
    let p = Postern::start_with(&up, |c| {
        tenant_config(c, "direct-send", &dns);
        set(c, "upstream.host", "localhost");
        set(c, "upstream.allow_plaintext", true);
    })
    .await;
    send(&p, "plain allowed", &["alice@contoso.com"]);
    let got = up.wait_for(1).await;
    assert!(!got[0].tls, "{:?}", got[0]);
    p.wait_all(1, "sent");

    // For Microsoft's own endpoint the key is refused, naming it.
    let bad = Postern::prepare(&up, |c| {
        tenant_config(c, "direct-send", &dns);
        set(
            c,
            "upstream.host",
            "contoso-com.mail.protection.outlook.com",
        );
        set(c, "upstream.allow_plaintext", true);
    });
    let out = bad.cli(&["status"]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("upstream.allow_plaintext"), "{err}");
    assert!(err.contains("always offers TLS"), "{err}");
}
