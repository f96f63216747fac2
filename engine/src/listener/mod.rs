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
//! Connections are capped twice: `max_connections` in all, and
//! `max_connections_per_ip` from one address, so a host that floods the
//! port (or a device stuck reconnecting) leaves room for the others.
//! Outsiders (addresses not in `listener.allow`) share at most a quarter
//! of `max_connections` ([`OUTSIDER_SHARE`]), so allowed devices always
//! get in while outsiders flood; an outsider that has not logged in gets
//! few commands and little time, and is closed once refused at MAIL.
//! Refusals past the caps are answered by a bounded number of tasks
//! ([`MAX_REFUSING`]); beyond that a connection is closed unanswered.
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

mod conn;
pub mod data;
mod device_auth;
pub mod headers;
pub mod legacy_tls;
mod session;
pub mod tls;

pub use conn::MAX_COMMAND_LINE;
pub use device_auth::{
    DeviceAuth, LoginPolicy, PasswordCheck, VerifyFuture, FAILURE_WINDOW, FIRST_FAILURE_DELAY,
    MAX_FAILURES, MAX_FAILURE_DELAY,
};
pub use legacy_tls::LegacyTls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
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

/// Outsiders (not in `listener.allow`) may hold at most this part of
/// `max_connections` (at least one connection).
pub const OUTSIDER_SHARE: usize = 4;
/// Refused connections answered at once (a 421, after a TLS handshake on
/// implicit-TLS ports); past this they are closed without a reply, so a
/// flood of refused connections cannot make unbounded handshakes.
pub const MAX_REFUSING: usize = 16;

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
    /// One permit per open session (`max_connections`), held by its
    /// [`ConnSlot`].
    pub connections: Arc<Semaphore>,
    /// Open sessions per device address (`max_connections_per_ip`); raised
    /// by [`Shared::claim`], lowered when the [`ConnSlot`] drops. A std mutex,
    /// never held across an await; nobody waits on it.
    pub per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Outsiders' share of the sessions ([`OUTSIDER_SHARE`]): an outsider's
    /// [`ConnSlot`] holds one of these as well.
    pub outsiders: Arc<Semaphore>,
    /// Refusals being answered ([`MAX_REFUSING`]).
    pub refusing: Arc<Semaphore>,
}

impl Shared {
    /// A slot for a new session from `ip`, or the 421 reply that refuses it.
    fn claim(self: &Arc<Shared>, ip: IpAddr) -> Result<ConnSlot, String> {
        let mut per_ip = self.per_ip.lock().unwrap();
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        let max = self.config.max_connections_per_ip;
        if from_ip >= max {
            tracing::warn!(%ip, max, "refused a connection: too many connections from this address");
            return Err(format!(
                "421 4.7.0 Too many connections from {ip}, try again later"
            ));
        }
        let outsider = if self.is_allowed(ip) {
            None
        } else {
            let Ok(permit) = self.outsiders.clone().try_acquire_owned() else {
                tracing::warn!(%ip, "refused a connection: outsiders (addresses not in listener.allow) hold their share of connections");
                return Err("421 4.7.0 Too many connections, try again later".to_string());
            };
            Some(permit)
        };
        let Ok(permit) = self.connections.clone().try_acquire_owned() else {
            let max = self.config.max_connections;
            tracing::warn!(%ip, max, "refused a connection: too many connections");
            return Err("421 4.7.0 Too many connections, try again later".to_string());
        };
        per_ip.insert(ip, from_ip + 1);
        Ok(ConnSlot {
            shared: self.clone(),
            ip,
            _permit: permit,
            _outsider: outsider,
        })
    }

    /// The address is in `listener.allow`.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.config.allow.iter().any(|net| net.contains(&ip))
    }
}

/// One session's place under both connection caps. The session drops it as
/// soon as it stops talking, before its last reply is flushed, so a device
/// that reconnects right after QUIT finds its place free.
pub(crate) struct ConnSlot {
    shared: Arc<Shared>,
    ip: IpAddr,
    _permit: OwnedSemaphorePermit,
    _outsider: Option<OwnedSemaphorePermit>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut per_ip = self.shared.per_ip.lock().unwrap();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
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
            per_ip: Mutex::default(),
            outsiders: Arc::new(Semaphore::new(
                (cfg.max_connections / OUTSIDER_SHARE).max(1),
            )),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
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
                    let shared = shared.clone();
                    match shared.claim(peer.ip().to_canonical()) {
                        Ok(slot) => {
                            let shutdown = shutdown.clone();
                            let stream = conn::Stream::Plain(tcp);
                            sessions.spawn(session::run(shared, stream, peer, implicit, shutdown, slot));
                        }
                        Err(reply) => match shared.refusing.clone().try_acquire_owned() {
                            Ok(permit) => {
                                sessions.spawn(async move {
                                    session::refuse_busy(shared, tcp, implicit, reply).await;
                                    drop(permit);
                                });
                            }
                            // Too many refusals in flight: closed unanswered.
                            Err(_) => drop(tcp),
                        },
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

    /// Runs one device session over an in-memory stream, as if `peer` had
    /// connected to a plain (non-TLS) address; for fuzzing and tests. The
    /// session ends when the other end closes, or on `shutdown`.
    #[doc(hidden)]
    pub async fn run_session_in_memory(
        &self,
        stream: tokio::io::DuplexStream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) {
        let Ok(slot) = self.shared.claim(peer.ip().to_canonical()) else {
            return;
        };
        let stream = conn::Stream::Memory(stream);
        session::run(self.shared.clone(), stream, peer, false, shutdown, slot).await;
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
pub(crate) mod tests;
