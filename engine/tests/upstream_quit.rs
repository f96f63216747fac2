//! Closing a connection to a server that stopped answering ends: QUIT is
//! sent, no reply comes, and `Connection::quit` still returns (lettre's own
//! close sends QUIT again and would wait for ever). The clock is paused
//! once the session is open, so the bounded waits pass at once and an
//! unbounded one shows as the test's own deadline firing.

use std::time::Duration;

use postern_engine::delivery::{Connection, Credentials, TlsMode, Transcript, UpstreamSettings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::test]
async fn quit_returns_when_the_server_stops_answering() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_quit, quit_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut rd = BufReader::new(tcp);
        rd.get_mut().write_all(b"220 fake ready\r\n").await.unwrap();
        let mut seen_quit = Some(seen_quit);
        loop {
            let mut line = String::new();
            if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            if line.to_ascii_uppercase().starts_with("EHLO") {
                rd.get_mut().write_all(b"250 fake Hello\r\n").await.unwrap();
            } else if line.to_ascii_uppercase().starts_with("QUIT") {
                // Frozen: never answers again, keeps the connection open.
                if let Some(tx) = seen_quit.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    let settings = UpstreamSettings {
        host: "127.0.0.1".to_owned(),
        port,
        addrs: Vec::new(),
        tls: TlsMode::None,
        ca_file: None,
        client_cert: None,
        tls_cache: Default::default(),
        hello_name: "postern.test".to_owned(),
        timeout: Duration::from_secs(60),
    };
    let mut t = Transcript::default();
    let conn = Connection::open(&settings, &Credentials::None, &mut t)
        .await
        .unwrap();
    tokio::time::pause();
    let quit = tokio::spawn(async move {
        let mut t = Transcript::default();
        conn.quit(&mut t).await;
        t.to_text()
    });
    // Far longer than any bounded wait in quit: only an unbounded one hits it.
    let text = tokio::time::timeout(Duration::from_secs(3600), quit)
        .await
        .expect("quit never returned from a server that stopped answering")
        .unwrap();
    assert!(text.contains("QUIT timed out"), "{text}");
    assert!(quit_rx.await.is_ok(), "QUIT was sent");
}
