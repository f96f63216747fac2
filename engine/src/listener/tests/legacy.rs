//! Legacy TLS (`listener.legacy_tls`): an OpenSSL client limited to TLS
//! 1.0/1.1 and an old suite gets through for an address in the legacy
//! networks and is refused everywhere else; modern clients on the OpenSSL
//! path still get TLS 1.3 with the listener's own certificate.

use std::pin::Pin;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use tokio_openssl::SslStream;

use super::tls_tests::tls_client;
use super::*;

/// An OpenSSL client that speaks only `version` with `ciphers`, like an old
/// scanner's firmware. Err: the handshake failed.
async fn old_client(
    tcp: TcpStream,
    version: SslVersion,
    ciphers: &str,
) -> Result<SslStream<TcpStream>, String> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.set_cipher_list(ciphers).unwrap();
    let ssl = b
        .build()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .into_ssl("localhost")
        .unwrap();
    let mut s = SslStream::new(ssl, tcp).unwrap();
    match Pin::new(&mut s).connect().await {
        Ok(()) => Ok(s),
        Err(e) => Err(e.to_string()),
    }
}

async fn starttls(server: &Server) -> TcpStream {
    let mut c = server.connect().await;
    c.expect("EHLO old-scanner", "250").await;
    assert_eq!(c.cmd("STARTTLS").await, "220 2.0.0 Ready to start TLS");
    c.into_inner()
}

fn legacy_on(c: &mut ListenerConfig) {
    c.legacy_tls = true;
}

#[tokio::test]
async fn tls10_with_aes128_sha_sends_a_message() {
    let server = Server::start(DeviceAuth::none(), true, legacy_on).await;
    let tcp = starttls(&server).await;
    let tls = old_client(tcp, SslVersion::TLS1, "AES128-SHA:@SECLEVEL=0")
        .await
        .expect("TLS 1.0 handshake");
    assert_eq!(tls.ssl().version_str(), "TLSv1");
    assert_eq!(tls.ssl().current_cipher().unwrap().name(), "AES128-SHA");
    let mut c = Client::new(tls);
    c.expect("EHLO old-scanner", "250").await;
    let id = queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"scan\r\n.\r\n")
            .await,
    );
    c.expect("QUIT", "221").await;
    let info = server.spool.get(&id.parse().unwrap()).unwrap();
    assert_eq!(
        info.client.tls.as_deref(),
        Some("TLSv1.0 AES128-SHA (OpenSSL)")
    );
    // The generated listener key is ECDSA: the RSA suite needed the companion.
    let dir = server.dir.path().join("tls");
    assert!(dir.join(super::legacy_tls::RSA_CERT_FILE).exists());
    server.stop().await;
}

#[tokio::test]
async fn implicit_tls11_with_ecdhe_sends_a_message() {
    let server = Server::start(DeviceAuth::none(), true, legacy_on).await;
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    let tls = old_client(
        tcp,
        SslVersion::TLS1_1,
        "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0",
    )
    .await
    .expect("TLS 1.1 handshake");
    let mut c = Client::new(tls);
    assert_eq!(c.reply().await, format!("220 {HOST} ESMTP Postern ready"));
    c.expect("EHLO old-printer", "250").await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    assert_eq!(
        server.messages()[0].client.tls.as_deref(),
        Some("TLSv1.1 ECDHE-ECDSA-AES128-SHA (OpenSSL)")
    );
    server.stop().await;
}

#[tokio::test]
async fn modern_clients_on_the_openssl_path_get_tls13_and_the_same_certificate() {
    let server = Server::start(DeviceAuth::none(), true, legacy_on).await;
    let tcp = starttls(&server).await;
    // tls_client verifies against the listener's generated certificate.
    let mut c = Client::new(tls_client(&server, tcp).await);
    c.expect("EHLO new-scanner", "250").await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    let tls = server.messages()[0].client.tls.clone().unwrap();
    assert!(
        tls.starts_with("TLSv1.3 ") && tls.ends_with("(OpenSSL)"),
        "{tls}"
    );
    server.stop().await;
}

#[tokio::test]
async fn tls10_is_refused_when_off_or_outside_the_legacy_networks() {
    type Tweak = fn(&mut ListenerConfig);
    let cases: [(&str, Tweak); 2] = [
        ("legacy_tls off", |_| {}),
        ("outside legacy_tls_allow", |c| {
            c.legacy_tls = true;
            c.legacy_tls_allow = vec!["127.0.0.2/32".parse().unwrap()];
        }),
    ];
    for (what, tweak) in cases {
        let server = Server::start(DeviceAuth::none(), true, tweak).await;
        let tcp = starttls(&server).await;
        let err = old_client(tcp, SslVersion::TLS1, "AES128-SHA:@SECLEVEL=0")
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: a TLS 1.0 handshake succeeded"));
        assert!(!err.is_empty(), "{what}");
        let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
        assert!(
            old_client(tcp, SslVersion::TLS1_1, "ALL:@SECLEVEL=0")
                .await
                .is_err(),
            "{what}: implicit TLS 1.1 succeeded"
        );
        // TLS 1.2+ still works there, through rustls (no suite recorded).
        let tcp = starttls(&server).await;
        let mut c = Client::new(tls_client(&server, tcp).await);
        c.expect("EHLO x", "250").await;
        queued_id(
            &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
                .await,
        );
        let msgs = server.messages();
        assert_eq!(msgs.len(), 1, "{what}: only the TLS 1.3 message");
        assert_eq!(msgs[0].client.tls.as_deref(), Some("TLSv1.3"), "{what}");
        server.stop().await;
    }
}

#[tokio::test]
async fn an_rsa_listener_certificate_needs_no_companion() {
    // The first server generates an RSA companion; the second is configured
    // with it as its own certificate, so it needs none of its own.
    let first = Server::start(DeviceAuth::none(), true, legacy_on).await;
    let tls = first.dir.path().join("tls");
    let (cert, key) = (
        tls.join(super::legacy_tls::RSA_CERT_FILE),
        tls.join(super::legacy_tls::RSA_KEY_FILE),
    );
    let server = Server::start(DeviceAuth::none(), true, |c| {
        c.legacy_tls = true;
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    let tcp = starttls(&server).await;
    let mut c = Client::new(
        old_client(tcp, SslVersion::TLS1, "AES128-SHA:@SECLEVEL=0")
            .await
            .expect("TLS 1.0 handshake"),
    );
    c.expect("EHLO old-scanner", "250").await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    assert!(
        !server.dir.path().join("tls").exists(),
        "nothing generated: the configured certificate is RSA"
    );
    server.stop().await;
    first.stop().await;
}
