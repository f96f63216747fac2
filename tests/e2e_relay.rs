//! Connector relay (issue #5), against the real `postern serve`: Postern
//! finds the tenant endpoint from contoso.com's MX through a fake DNS
//! server, connects to the address that name resolves to, checks the
//! endpoint's certificate against the NAME, and presents its client
//! certificate, which the fake Exchange (connector role) matches by name
//! the way an inbound connector does.

mod support;

use std::net::Ipv4Addr;

use postern_testkit::{FakeDns, FakeExchangeOptions, IdentityOptions, Role, Zone};
use serde_json::Value;
use support::mail::{by_subject, field, none_failed, send};
use support::tenant::*;
use support::*;

const BOB: &str = "bob@contoso.com";

/// The fake tenant endpoint: a certificate for [`ENDPOINT`], STARTTLS
/// required, MAIL refused with 5.7.64 unless the client certificate names
/// contoso.com.
async fn connector() -> Upstream {
    Upstream::start_with(
        FakeExchangeOptions {
            role: Role::Connector,
            hostname: ENDPOINT.into(),
            required_client_cert_name: Some(DOMAIN.into()),
            ..Default::default()
        },
        IdentityOptions::default(),
    )
    .await
}

fn accepted(device_reply: &str) {
    assert!(
        device_reply.starts_with("250"),
        "device heard: {device_reply}"
    );
}

fn transcript(p: &Postern, m: &Value) -> String {
    let id = m["id"].as_str().unwrap();
    p.cli_json(&["queue", "show", id])["transcript"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_follows_the_mx_and_presents_the_client_certificate() {
    let up = connector().await;
    let dns = tenant_dns().await;
    let cert = client_cert(up.dir.path(), DOMAIN);
    let p = Postern::start_with(&up, |c| {
        tenant_config(c, "relay", &dns);
        use_client_cert(c, &cert);
    })
    .await;
    accepted(&send(&p, "relayed", &[BOB]));

    let got = up.wait_for(1).await;
    assert_eq!(got[0].rcpt_to, vec![BOB.to_string()]);
    assert!(got[0].tls, "STARTTLS before mail: {:?}", got[0]);
    assert!(
        got[0].client_cert_names.iter().any(|n| n == DOMAIN),
        "{:?}",
        got[0].client_cert_names
    );
    assert_eq!(got[0].auth_user, None, "the connector does not sign in");
    let q = p.wait_all(1, "sent");
    assert!(dns.query_count(DOMAIN, "MX") >= 1, "{:?}", dns.queries());
    assert!(dns.query_count(ENDPOINT, "A") >= 1, "{:?}", dns.queries());
    let t = transcript(&p, &q[0]);
    assert!(t.contains(&format!("MX of {DOMAIN}: {ENDPOINT}")), "{t}");
    assert!(
        t.contains(&format!("at 127.0.0.1:{}", up.exchange.port())),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_client_certificate_holds_with_5_7_64_until_fixed() {
    let up = connector().await;
    let dns = tenant_dns().await;
    let wrong = client_cert(up.dir.path(), "fabrikam.com");
    let mut p = Postern::start_with(&up, |c| {
        tenant_config(c, "relay", &dns);
        use_client_cert(c, &wrong);
    })
    .await;
    accepted(&send(&p, "wrong-cert", &[BOB]));

    let q = p.wait_all(1, "held");
    assert!(none_failed(&q));
    assert!(field(&q[0], "last_reply").contains("5.7.64"), "{q:#?}");
    let s = p.cli_json(&["status"]);
    let attention = &s["attention"];
    assert!(
        attention["cause"].as_str().unwrap_or("").contains("5.7.64"),
        "{s:#}"
    );
    assert!(
        attention["summary"]
            .as_str()
            .unwrap_or("")
            .contains("did not recognise Postern"),
        "{s:#}"
    );
    assert!(
        attention["fix"]
            .as_str()
            .unwrap_or("")
            .contains("connector"),
        "{s:#}"
    );
    assert_eq!(up.exchange.stats().messages, 0);

    // The admin puts the right certificate in and retries.
    p.stop();
    let right = client_cert(up.dir.path(), DOMAIN);
    let mut config: toml::Table = std::fs::read_to_string(&p.config_path)
        .unwrap()
        .parse()
        .unwrap();
    use_client_cert(&mut config, &right);
    std::fs::write(&p.config_path, toml::to_string(&config).unwrap()).unwrap();
    p.spawn();
    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    p.wait_all(1, "sent");
    let got = up.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].client_cert_names.iter().any(|n| n == DOMAIN));
    assert_eq!(upstream_subjects(&up), vec!["wrong-cert"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn mx_fallback_skips_an_endpoint_that_does_not_resolve_or_answer() {
    let up = connector().await;
    // Preference 1: a name with no address. Preference 5: an address where
    // nothing listens (127.0.0.2; the fake is on 127.0.0.1). Preference 10:
    // the real endpoint.
    let dns = FakeDns::start(
        tenant_zone()
            .mx(DOMAIN, 1, "gone-com.mail.protection.outlook.com")
            .mx(DOMAIN, 5, "closed-com.mail.protection.outlook.com")
            .a(
                "closed-com.mail.protection.outlook.com",
                Ipv4Addr::new(127, 0, 0, 2),
            ),
    )
    .await;
    let cert = client_cert(up.dir.path(), DOMAIN);
    let p = Postern::start_with(&up, |c| {
        tenant_config(c, "relay", &dns);
        use_client_cert(c, &cert);
    })
    .await;
    accepted(&send(&p, "fallback", &[BOB]));

    up.wait_for(1).await;
    let q = p.wait_all(1, "sent");
    assert_eq!(q[0]["attempts"], 1, "one attempt, three endpoints: {q:#?}");
    let t = transcript(&p, by_subject(&q, "fallback"));
    assert!(
        t.contains("skipping gone-com.mail.protection.outlook.com"),
        "{t}"
    );
    assert!(t.contains("connection to 127.0.0.2:"), "{t}");
    assert!(t.contains("trying the next endpoint"), "{t}");
    assert_eq!(
        dns.query_count("gone-com.mail.protection.outlook.com", "A"),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_mx_is_retried_with_an_explanation_until_it_appears() {
    let up = connector().await;
    let dns = FakeDns::start(Zone::new().a(ENDPOINT, Ipv4Addr::LOCALHOST)).await;
    let cert = client_cert(up.dir.path(), DOMAIN);
    let p = Postern::start_with(&up, |c| {
        tenant_config(c, "relay", &dns);
        use_client_cert(c, &cert);
    })
    .await;
    accepted(&send(&p, "no-mx", &[BOB]));

    let q = p.wait_queue("deferred for want of an MX", |q| {
        q.iter().any(|m| {
            m["state"] == "deferred"
                && field(m, "last_reply").contains("could not find the endpoint for contoso.com")
        })
    });
    let m = by_subject(&q, "no-mx");
    assert!(
        field(m, "last_reply").contains("contoso.com does not exist (NXDOMAIN)"),
        "{m:#}"
    );
    assert!(field(m, "summary").contains("DNS"), "{m:#}");
    assert!(p.cli_json(&["status"])["attention"].is_null(), "not a hold");

    // The MX record is published: the next retry finds it.
    dns.set_mx(DOMAIN, &[(10, ENDPOINT)]);
    p.wait_all(1, "sent");
    assert_eq!(up.wait_for(1).await.len(), 1);
}
