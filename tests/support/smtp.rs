//! A raw SMTP client for the end-to-end tests: exact bytes on the wire
//! (for smuggling and injection tests that no well-behaved client would
//! send), whole replies back, and STARTTLS / implicit TLS that trust the
//! certificate `postern serve` generated in its spool directory.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{pem::PemObject, CertificateDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::PATIENCE;

/// A raw SMTP connection over `S` (plain TCP or TLS).
pub struct Raw<S> {
    io: BufReader<S>,
}

impl Raw<TcpStream> {
    /// Connects and returns the client and the greeting.
    pub async fn connect(addr: SocketAddr) -> (Raw<TcpStream>, String) {
        let tcp = TcpStream::connect(addr).await.expect("connect to postern");
        let mut c = Raw::new(tcp);
        let greeting = c.reply().await;
        (c, greeting)
    }

    /// After a `220` to STARTTLS: the handshake, trusting `spool`'s certificate.
    pub async fn start_tls(self, spool: &Path) -> Raw<TlsStream<TcpStream>> {
        assert!(
            self.io.buffer().is_empty(),
            "server bytes arrived before the TLS handshake: {:?}",
            String::from_utf8_lossy(self.io.buffer())
        );
        Raw::new(tls_connect(spool, self.io.into_inner()).await)
    }
}

impl Raw<TlsStream<TcpStream>> {
    /// Implicit TLS: handshake first, then the greeting.
    pub async fn connect_tls(
        addr: SocketAddr,
        spool: &Path,
    ) -> (Raw<TlsStream<TcpStream>>, String) {
        let tcp = TcpStream::connect(addr).await.expect("connect to postern");
        let mut c = Raw::new(tls_connect(spool, tcp).await);
        let greeting = c.reply().await;
        (c, greeting)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    pub fn new(s: S) -> Raw<S> {
        Raw {
            io: BufReader::new(s),
        }
    }

    /// Writes `bytes` in one go.
    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.io.get_mut();
        io.write_all(bytes).await.unwrap();
        io.flush().await.unwrap();
    }

    /// One whole (possibly multi-line) reply, lines joined by "\n"; empty
    /// when the server closed the connection.
    pub async fn reply(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.read_reply())
            .await
            .expect("no reply from postern")
    }

    async fn read_reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.io.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    }

    /// Everything the server still sends until it closes the connection.
    pub async fn rest(&mut self) -> String {
        let mut all = Vec::new();
        tokio::time::timeout(PATIENCE, self.io.read_to_end(&mut all))
            .await
            .expect("postern did not close the connection")
            .ok();
        String::from_utf8_lossy(&all).into_owned()
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Sends `line` and asserts the reply starts with `want`.
    pub async fn expect(&mut self, line: &str, want: &str) -> String {
        let reply = self.cmd(line).await;
        assert!(
            reply.starts_with(want),
            "{line:?}: expected {want:?}, got {reply:?}"
        );
        reply
    }
}

/// A TLS client that trusts the certificate Postern generated in `spool`
/// (`spool/tls/cert.pem`, made for "localhost" and 127.0.0.1).
async fn tls_connect(spool: &Path, tcp: TcpStream) -> TlsStream<TcpStream> {
    let pem = std::fs::read(spool.join("tls").join("cert.pem")).expect("postern's certificate");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(
        PATIENCE,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("TLS handshake timed out")
    .expect("TLS handshake with postern")
}

/// AUTH PLAIN initial response for `user`/`password`.
pub fn plain(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"))
}
