//! STARTTLS, the STARTTLS injection (CVE-2011-0411 class), implicit TLS.

use rustls::pki_types::pem::PemObject;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::*;

pub(super) async fn tls_client(server: &Server, tcp: TcpStream) -> TlsStream<TcpStream> {
    let pem = std::fs::read(
        server
            .dir
            .path()
            .join("tls")
            .join(super::super::tls::CERT_FILE),
    )
    .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn starttls_then_message() {
    let server = Server::start(DeviceAuth::fixed([("scanner", "pw")]), true, |c| {
        c.allow = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let mut c = server.connect().await;
    let ehlo = c.expect("EHLO x", "250").await;
    assert!(ehlo.contains("250-STARTTLS"), "{ehlo}");
    assert_eq!(c.cmd("STARTTLS").await, "220 2.0.0 Ready to start TLS");
    let mut c = Client::new(tls_client(&server, c.into_inner()).await);
    c.expect("MAIL FROM:<a@x.com>", "503 5.5.1").await; // EHLO forgotten
    let ehlo = c.expect("EHLO x", "250").await;
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH PLAIN LOGIN"),
        "{ehlo}"
    );
    c.expect("STARTTLS", "503 5.5.1").await;
    let creds = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "\0scanner\0pw");
    c.expect(&format!("AUTH PLAIN {creds}"), "235").await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"secret\r\n.\r\n")
            .await,
    );
    let info = &server.messages()[0];
    assert_eq!(info.client.tls.as_deref(), Some("TLSv1.3"));
    assert_eq!(info.client.auth_user.as_deref(), Some("scanner"));
    server.stop().await;
}

#[tokio::test]
async fn commands_pipelined_after_starttls_are_discarded() {
    for injected in [
        "RSET\r\n",
        "HELP\r\n",
        "EHLO evil\r\nMAIL FROM:<evil@x>\r\n",
    ] {
        let server = Server::start(DeviceAuth::none(), true, |_| {}).await;
        let mut c = server.connect().await;
        c.expect("EHLO x", "250").await;
        c.send(format!("STARTTLS\r\n{injected}").as_bytes()).await;
        assert_eq!(c.reply().await, "220 2.0.0 Ready to start TLS");
        let mut c = Client::new(tls_client(&server, c.into_inner()).await);
        // The first reply inside TLS must answer OUR first command.
        assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok", "{injected:?}");
        c.expect("MAIL FROM:<a@x.com>", "503 5.5.1").await;
        assert!(c.cmd("QUIT").await.starts_with("221"), "{injected:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn implicit_tls_handshake_first_then_greeting() {
    let server = Server::start(DeviceAuth::none(), true, |_| {}).await;
    let tcp = TcpStream::connect(server.tls_addr.unwrap()).await.unwrap();
    let mut c = Client::new(tls_client(&server, tcp).await);
    assert_eq!(c.reply().await, format!("220 {HOST} ESMTP Postern ready"));
    let ehlo = c.expect("EHLO x", "250").await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    assert!(server.messages()[0].client.tls.is_some());
    server.stop().await;
}
