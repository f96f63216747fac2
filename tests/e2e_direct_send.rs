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
