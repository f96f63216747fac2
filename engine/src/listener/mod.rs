//! The SMTP listener: where office devices hand in mail.
//!
//! [`Listener::bind`] opens every configured address; [`Listener::serve`]
//! accepts connections and runs one task per connection (the `session`
//! module) until shutdown. A message is acknowledged with 250 only after
//! the spool has made it durable.
//!
//! Who may relay (never an open relay):
//! - a device that authenticated (AUTH PLAIN/LOGIN), or
//! - a device whose IP is in `listener.allow`, unless `require_auth` is on.
//!
//! Everyone else is refused at MAIL FROM (554 5.7.1, or 530 5.7.0 when
//! `require_auth` is on) and nothing is queued.
//!
//! When AUTH is offered (rule chosen for LAN scanners that cannot do TLS):
//! only when device users exist, and then over TLS, or in plaintext when
//! the device's address is in `listener.allow` or is loopback (traffic that
//! never crosses a network). Elsewhere plaintext AUTH gets 538 5.7.11.
//!
//! TLS is rustls, TLS 1.2+; with `listener.legacy_tls` on, devices in the
//! legacy-TLS networks are served by OpenSSL instead (TLS 1.0+, old suites;
//! `legacy_tls`).

mod auth;
mod conn;
pub mod data;
pub mod headers;
pub mod legacy_tls;
mod session;
pub mod tls;

pub use auth::{
    DeviceAuth, LoginPolicy, PasswordCheck, VerifyFuture, FAILURE_WINDOW, FIRST_FAILURE_DELAY,
    MAX_FAILURES, MAX_FAILURE_DELAY,
};
pub use conn::MAX_COMMAND_LINE;
pub use legacy_tls::LegacyTls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::ListenerConfig;
use crate::spool::Spool;

/// How long `serve` waits for sessions to finish after shutdown before it
/// drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Everything the listener needs; built by the engine.
pub struct ListenerContext {
    pub config: Arc<ListenerConfig>,
    pub spool: Spool,
    pub device_auth: DeviceAuth,
    /// None: no STARTTLS offered, and `tls_listen` addresses are refused at bind.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// OpenSSL for devices in the legacy-TLS networks (`listener.legacy_tls`);
    /// None: rustls (TLS 1.2+) for everyone. Used only together with `tls`.
    pub legacy_tls: Option<LegacyTls>,
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Direct Send delivers only inside the tenant: when set, recipients in
    /// other domains are refused at RCPT (the device learns at once, not
    /// from a bounce hours later). None: any recipient.
    pub internal_domains: Option<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot listen on {addr} with implicit TLS: no TLS certificate is available (set listener.tls_cert and listener.tls_key, or let Postern generate one)")]
    NoTls { addr: SocketAddr },
    #[error("TLS certificate {path}: {message}")]
    Tls { path: PathBuf, message: String },
}

/// What every session shares.
pub(crate) struct Shared {
    pub config: Arc<ListenerConfig>,
    pub spool: Spool,
    pub device_auth: DeviceAuth,
    pub tls: Option<conn::DeviceTls>,
    pub hostname: String,
    pub internal_domains: Option<Vec<String>>,
    /// One permit per open session (`max_connections`); a session task
    /// holds its permit until it ends.
    pub connections: Arc<Semaphore>,
}

/// Bound sockets, ready to serve.
pub struct Listener {
    shared: Arc<Shared>,
    sockets: Vec<(TcpListener, bool)>,
}

impl Listener {
    /// Binds every address in `config.listen` (plain, STARTTLS offered) and
    /// `config.tls_listen` (implicit TLS).
    pub async fn bind(ctx: ListenerContext) -> Result<Listener, ListenerError> {
        let cfg = &ctx.config;
        if ctx.tls.is_none() {
            if let Some(&addr) = cfg.tls_listen.first() {
                return Err(ListenerError::NoTls { addr });
            }
        }
        let mut sockets = Vec::new();
        let addrs = cfg.listen.iter().map(|a| (*a, false));
        for (addr, implicit) in addrs.chain(cfg.tls_listen.iter().map(|a| (*a, true))) {
            let socket = TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, e))?;
            tracing::info!(addr = %socket.local_addr().unwrap_or(addr), implicit_tls = implicit, "listening for devices");
            sockets.push((socket, implicit));
        }
        let shared = Shared {
            connections: Arc::new(Semaphore::new(cfg.max_connections.max(1))),
            config: ctx.config,
            spool: ctx.spool,
            device_auth: ctx.device_auth,
            tls: ctx.tls.map(|rustls| conn::DeviceTls {
                rustls: TlsAcceptor::from(rustls),
                legacy: ctx.legacy_tls,
            }),
            hostname: ctx.hostname,
            internal_domains: ctx.internal_domains,
        };
        Ok(Listener {
            shared: Arc::new(shared),
            sockets,
        })
    }

    /// The bound addresses (actual ports when the config said 0) and
    /// whether each is implicit TLS.
    pub fn local_addrs(&self) -> Vec<(SocketAddr, bool)> {
        self.sockets
            .iter()
            .filter_map(|(s, tls)| s.local_addr().ok().map(|a| (a, *tls)))
            .collect()
    }

    /// Serves until `shutdown` turns true (or its sender is dropped); then
    /// stops accepting, lets sessions finish the command in progress, and
    /// returns once every session has ended, or after [`SHUTDOWN_GRACE`]
    /// with the rest dropped.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let (conn_tx, mut conn_rx) = mpsc::channel::<(TcpStream, SocketAddr, bool)>(64);
        let mut acceptors = JoinSet::new();
        for (socket, implicit) in self.sockets {
            acceptors.spawn(accept_loop(socket, implicit, conn_tx.clone()));
        }
        drop(conn_tx);
        let shared = self.shared;
        let mut sessions = JoinSet::new();
        loop {
            if *shutdown.borrow_and_update() {
                break;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some((tcp, peer, implicit)) = conn_rx.recv() => {
                    let _ = tcp.set_nodelay(true);
                    match shared.connections.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let shared = shared.clone();
                            let shutdown = shutdown.clone();
                            sessions.spawn(async move {
                                session::run(shared, tcp, peer, implicit, shutdown).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(%peer, max = shared.config.max_connections, "refused a connection: too many connections");
                            sessions.spawn(session::refuse_busy(shared.clone(), tcp, implicit));
                        }
                    }
                }
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        acceptors.abort_all();
        drop(conn_rx);
        tracing::info!(sessions = sessions.len(), "listener stopping");
        let drain = async { while sessions.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                sessions = sessions.len(),
                "sessions still open after the grace period; dropping them"
            );
            sessions.shutdown().await;
        }
        while acceptors.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    socket: TcpListener,
    implicit: bool,
    tx: mpsc::Sender<(TcpStream, SocketAddr, bool)>,
) {
    loop {
        match socket.accept().await {
            Ok((tcp, peer)) => {
                if tx.send((tcp, peer, implicit)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> ListenerError {
    use std::io::ErrorKind;
    let reason = match e.kind() {
        ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_string()
        }
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::AddrInUse => {
            "address already in use (is another mail server or another Postern running?)"
                .to_string()
        }
        ErrorKind::AddrNotAvailable => {
            "this machine has no such address (check listener.listen)".to_string()
        }
        _ => e.to_string(),
    };
    ListenerError::Bind { addr, reason }
}

#[cfg(test)]
mod tests;
