//! A raw SMTP client for driving the fakes in tests: plain TCP, STARTTLS with
//! tokio-rustls, replies parsed into code + lines. Deliberately dumb: it
//! sends exactly what the test says.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// One SMTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    /// Text of each line after the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// The first line, code included, e.g. "250 2.1.0 Sender OK".
    pub fn first(&self) -> String {
        format!("{} {}", self.code, self.lines[0])
    }

    pub fn has_line(&self, text: &str) -> bool {
        self.lines.iter().any(|l| l == text)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
    pub banner: Reply,
}

/// Client certificate chain and key for the connector role.
pub type ClientCert = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

pub fn tls_config(ca_pem: &str, client_cert: Option<ClientCert>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
    Arc::new(match client_cert {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    })
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut c = Client {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            banner: Reply {
                code: 0,
                lines: vec![],
            },
        };
        c.banner = c.read_reply().await.expect("banner");
        c
    }

    pub async fn send_raw(&mut self, data: &[u8]) {
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(data).await.unwrap(),
            Stream::Tls(s) => {
                s.write_all(data).await.unwrap();
                s.flush().await.unwrap();
            }
            Stream::Gone => panic!("not connected"),
        }
    }

    /// Next reply, or None if the server closed the connection.
    pub async fn read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            while let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                let line = String::from_utf8_lossy(&line[..pos]).into_owned();
                let code: u16 = line[..3].parse().expect("reply code");
                let more = line.as_bytes().get(3) == Some(&b'-');
                lines.push(line.get(4..).unwrap_or_default().to_string());
                if !more {
                    return Some(Reply { code, lines });
                }
            }
            let mut chunk = [0u8; 8192];
            let n = match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk).await.unwrap_or(0),
                Stream::Tls(s) => s.read(&mut chunk).await.unwrap_or(0),
                Stream::Gone => 0,
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
        self.read_reply()
            .await
            .unwrap_or_else(|| panic!("connection closed after {line:?}"))
    }

    /// STARTTLS and the handshake, trusting `config`'s roots for "localhost".
    pub async fn starttls(&mut self, config: Arc<ClientConfig>) -> std::io::Result<()> {
        let r = self.cmd("STARTTLS").await;
        assert_eq!(r.first(), "220 2.0.0 SMTP server ready");
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            panic!("already TLS");
        };
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(config).connect(name, tcp).await?;
        self.stream = Stream::Tls(Box::new(tls));
        Ok(())
    }

    /// EHLO, STARTTLS, EHLO.
    pub async fn secure(&mut self, ca_pem: &str) {
        assert_eq!(self.cmd("EHLO test").await.code, 250);
        self.starttls(tls_config(ca_pem, None)).await.unwrap();
        assert_eq!(self.cmd("EHLO test").await.code, 250);
    }

    /// Full DATA transaction with `content` (must end in CRLF, dot-stuffed).
    pub async fn send_mail(&mut self, from: &str, to: &[&str], content: &[u8]) -> Reply {
        let r = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert_eq!(r.first(), "250 2.1.0 Sender OK");
        for rcpt in to {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert_eq!(r.first(), "250 2.1.5 Recipient OK");
        }
        let r = self.cmd("DATA").await;
        assert_eq!(r.code, 354);
        self.send_raw(content).await;
        self.cmd(".").await
    }
}

pub fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

pub fn b64(s: &str) -> String {
    STANDARD.encode(s)
}
