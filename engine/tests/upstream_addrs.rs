//! `Connection::open` with resolved addresses: they are tried in order until
//! one accepts, and TLS still checks the certificate against the host NAME
//! (the fake Exchange's certificate names the tenant endpoint, not the IP
//! connected to).

use std::time::Duration;

use postern_engine::delivery::{Connection, Credentials, TlsMode, Transcript, UpstreamSettings};
use postern_testkit::{FakeExchange, FakeExchangeOptions, Role};

const ENDPOINT: &str = "contoso-com.mail.protection.outlook.com";

#[tokio::test]
async fn addresses_are_tried_in_order_and_tls_checks_the_host_name() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        role: Role::Connector,
        hostname: ENDPOINT.into(),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);

    let settings = UpstreamSettings {
        host: ENDPOINT.into(),
        port: fake.port(),
        addrs: vec![closed_addr, fake.addr()],
        tls: TlsMode::Required,
        ca_file: Some(fake.write_ca_file(dir.path())),
        client_cert: None,
        tls_cache: Default::default(),
        hello_name: "postern.test".into(),
        timeout: Duration::from_secs(10),
    };
    let mut t = Transcript::default();
    let mut conn = Connection::open(&settings, &Credentials::None, &mut t)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", t.to_text()));
    assert!(conn.is_encrypted());
    conn.send(
        "scanner@contoso.com",
        &["bob@contoso.com".into()],
        b"Subject: hi\r\n\r\nhello\r\n",
        &mut t,
    )
    .await
    .unwrap();
    conn.quit(&mut t).await;

    let text = t.to_text();
    assert!(
        text.contains(&format!("connection to {closed_addr} failed")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "connecting to {ENDPOINT}:{} at {}",
            fake.port(),
            fake.addr()
        )),
        "{text}"
    );
    let got = fake.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].tls);
}

#[tokio::test]
async fn a_name_the_certificate_does_not_hold_is_refused() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        role: Role::Connector,
        hostname: ENDPOINT.into(),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let settings = UpstreamSettings {
        host: "fabrikam-com.mail.protection.outlook.com".into(),
        port: fake.port(),
        addrs: vec![fake.addr()],
        tls: TlsMode::Required,
        ca_file: Some(fake.write_ca_file(dir.path())),
        client_cert: None,
        tls_cache: Default::default(),
        hello_name: "postern.test".into(),
        timeout: Duration::from_secs(10),
    };
    let mut t = Transcript::default();
    let err = Connection::open(&settings, &Credentials::None, &mut t)
        .await
        .unwrap_err();
    assert!(
        matches!(err, postern_engine::delivery::UpstreamError::Tls { .. }),
        "{err:?}"
    );
    assert_eq!(fake.stats().messages, 0);
}
