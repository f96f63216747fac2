//! HTTPS in front of a plain-HTTP fake: [`TlsFront`] accepts TLS on
//! `127.0.0.1:0` with a certificate for `localhost` and `127.0.0.1` from a
//! throw-away CA, and pipes each connection's bytes to the fake behind it
//! (the fake identity platform, the fake Graph). Tests use it to check that
//! Postern's HTTPS clients trust `upstream.ca_file` — and refuse the
//! certificate when it is not there.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::exchange::tls::TlsMaterial;

/// A running TLS front; it stops accepting when dropped.
pub struct TlsFront {
    addr: SocketAddr,
    ca_pem: String,
    stop: watch::Sender<bool>,
}

impl TlsFront {
    /// Serves TLS and forwards to `backend` (a plain TCP address).
    pub async fn start(backend: SocketAddr) -> TlsFront {
        let name = format!("Postern testkit TLS front CA {}", rand::random::<u64>());
        let material = TlsMaterial::generate_with_ca("localhost", false, &name);
        let acceptor = TlsAcceptor::from(material.good.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, mut stopped) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = stopped.wait_for(|&s| s) => return,
                };
                let Ok((client, _)) = conn else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(mut tls) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            addr,
            ca_pem: material.ca_pem,
            stop,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the front's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the CA to `dir/name` and returns the path (for `upstream.ca_file`).
    pub fn write_ca_file(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
