//! TLS parameters are built once per configuration, not per connection:
//! with the settings' `TlsCache` loaded (as the engine does when it loads
//! its config), the CA file and the client certificate and key can be
//! deleted and connections over STARTTLS, presenting the certificate,
//! still work; the parameters for a host are built once and shared.

use std::sync::Arc;
use std::time::Duration;

use postern_engine::delivery::{
    Connection, Credentials, TlsCache, TlsMode, Transcript, UpstreamSettings,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Answers EHLO (offering STARTTLS before TLS), STARTTLS, QUIT; returns
/// true when the client asked for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(io: S, tls: bool) -> (bool, S) {
    let mut rd = BufReader::new(io);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
            return (false, rd.into_inner());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") && !tls {
            b"250-fake.outlook.test Hello\r\n250 STARTTLS\r\n"
        } else if upper.starts_with("EHLO") {
            b"250 fake.outlook.test Hello\r\n"
        } else if upper == "STARTTLS" {
            rd.get_mut()
                .write_all(b"220 2.0.0 SMTP server ready\r\n")
                .await
                .unwrap();
            return (true, rd.into_inner());
        } else if upper == "QUIT" {
            rd.get_mut().write_all(b"221 2.0.0 bye\r\n").await.unwrap();
            return (false, rd.into_inner());
        } else {
            b"250 2.0.0 OK\r\n"
        };
        rd.get_mut().write_all(reply).await.unwrap();
    }
}

/// Serves `n` connections one after the other; each must present a client
/// certificate (the server requires one).
async fn responder(config: Arc<rustls::ServerConfig>, n: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        for _ in 0..n {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tcp.write_all(b"220 fake.outlook.test ready\r\n")
                .await
                .unwrap();
            let (starttls, tcp) = session(tcp, false).await;
            assert!(starttls);
            let tls = tokio_rustls::TlsAcceptor::from(config.clone())
                .accept(tcp)
                .await
                .unwrap();
            session(tls, true).await;
        }
    });
    port
}

#[tokio::test]
async fn tls_files_are_read_once_per_config_not_per_connection() {
    let server = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let client = rcgen::generate_simple_self_signed(vec!["relay.contoso.com".to_owned()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(server.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert.der().clone()], key)
        .unwrap();
    let port = responder(Arc::new(config), 2).await;

    let dir = tempfile::tempdir().unwrap();
    let (ca, crt, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("c.pem"),
        dir.path().join("k.pem"),
    );
    std::fs::write(&ca, server.cert.pem()).unwrap();
    std::fs::write(&crt, client.cert.pem()).unwrap();
    std::fs::write(&key, client.key_pair.serialize_pem()).unwrap();
    let cache = TlsCache::load(Some(&ca), Some((&crt, &key)));
    let settings = UpstreamSettings {
        host: "localhost".to_owned(),
        port,
        addrs: Vec::new(),
        tls: TlsMode::Required,
        ca_file: Some(ca.clone()),
        client_cert: Some((crt.clone(), key.clone())),
        tls_cache: cache.clone(),
        hello_name: "postern.test".to_owned(),
        timeout: Duration::from_secs(30),
    };
    // The files go away after the config was loaded: nothing reads them again.
    for f in [&ca, &crt, &key] {
        std::fs::remove_file(f).unwrap();
    }
    for round in 0..2 {
        let mut t = Transcript::default();
        let mut conn = Connection::open(&settings.clone(), &Credentials::None, &mut t)
            .await
            .unwrap_or_else(|e| panic!("connection {round}: {e}\n{}", t.to_text()));
        assert!(conn.is_encrypted(), "{}", t.to_text());
        assert!(conn.is_usable().await, "{}", t.to_text());
        conn.quit(&mut t).await;
    }
    assert_eq!(cache.hosts_built(), 1, "one host, parameters built once");
}
