//! STARTTLS, the STARTTLS injection (CVE-2011-0411 class), implicit TLS.

use rustls::pki_types::pem::PemObject;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::*;

pub(super) async fn tls_client(server: &Server, tcp: TcpStream) -> TlsStream<TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls_client_connector(server)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A TLS client that trusts the listener's own certificate.
fn tls_client_connector(server: &Server) -> TlsConnector {
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
    TlsConnector::from(Arc::new(config))
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

/// Past the caps on an implicit-TLS port, each refusal costs a task and a
/// TLS handshake (the 421 can only be sent inside TLS). At most
/// [`MAX_REFUSING`](super::super::MAX_REFUSING) of them run at once: with
/// that many refused clients stalling their handshakes, the next refused
/// connection is closed without a handshake; once they are gone, a refused
/// client is answered again.
#[tokio::test]
async fn refusals_on_an_implicit_tls_port_are_bounded() {
    use super::super::MAX_REFUSING;
    use tokio::io::AsyncReadExt;

    let server = Server::start(DeviceAuth::none(), true, |c| c.max_connections = 1).await;
    let tls_addr = server.tls_addr.unwrap();
    // The one slot: a session that stays open.
    let mut holder =
        Client::new(tls_client(&server, TcpStream::connect(tls_addr).await.unwrap()).await);
    assert!(holder.reply().await.starts_with("220"));
    // Refused clients that never send a ClientHello: each holds a refusal
    // task in its handshake.
    let mut stalled = Vec::new();
    for _ in 0..MAX_REFUSING {
        stalled.push(TcpStream::connect(tls_addr).await.unwrap());
    }
    // The next refused client is closed before any TLS byte: its
    // ClientHello gets end-of-stream, never a ServerHello.
    let mut over = TcpStream::connect(tls_addr).await.unwrap();
    let connector = tls_client_connector(&server);
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    assert!(
        connector.connect(name.clone(), &mut over).await.is_err(),
        "a refusal past {MAX_REFUSING} in flight got a TLS handshake"
    );
    // The stalled ones go away (their tasks end when they see the close);
    // a refused client is then answered, inside TLS, with the 421.
    drop(stalled);
    let mut answered = None;
    for _ in 0..500 {
        let tcp = TcpStream::connect(tls_addr).await.unwrap();
        if let Ok(mut tls) = connector.connect(name.clone(), tcp).await {
            let mut reply = String::new();
            let _ = tls.read_to_string(&mut reply).await;
            answered = Some(reply);
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = answered.expect("a refused client is answered once the stalled ones are gone");
    assert!(
        reply.starts_with("421 4.7.0 Too many connections"),
        "{reply:?}"
    );
    assert!(holder.cmd("QUIT").await.starts_with("221"));
    server.stop().await;
}
