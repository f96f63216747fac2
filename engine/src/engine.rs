//! The engine as one thing to start and stop: spool, listener, delivery
//! worker, tracker, control socket and housekeeping, wired together from a `Config`.
//! The tray app and `postern serve` both run exactly this.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::TokenSource;
use crate::config::{Config, UpstreamMode};
use crate::control::{self, Controller};
use crate::delivery::upstream::{TlsCache, TlsMode, UpstreamSettings};
use crate::delivery::worker::{Worker, WorkerState};
use crate::events::Events;
use crate::listener::{self, DeviceAuth, Listener, ListenerContext};
use crate::secrets::SecretStore;
use crate::spool::{now_ms, Spool, SpoolError};
use crate::throttle::{Clock, Limits, Throttle};
use crate::tracker::Tracker;

/// How often sent/failed history older than `spool.keep_history` is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Listener(#[from] listener::ListenerError),
    #[error("control socket: {0}")]
    Control(std::io::Error),
    #[error("throttle history: {0}")]
    Throttle(std::io::Error),
}

/// A running engine. Dropping it without `shutdown` aborts its tasks.
pub struct Engine {
    controller: Arc<Controller>,
    events: Events,
    listening: Vec<(SocketAddr, bool)>,
    /// Turned true by `shutdown`; every long-lived task watches it.
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Engine {
    pub async fn start(config: Config) -> Result<Engine, EngineError> {
        raise_fd_limit();
        let config = Arc::new(config);
        let events = Events::new();
        let secrets = SecretStore::new();
        let spool_dir = config.spool_dir();
        let spool = Spool::open(&spool_dir, events.clone()).await?;
        spool.set_min_free(
            config
                .spool
                .effective_min_free(config.listener.max_message_bytes),
        );
        let hostname = config.listener.hostname.clone().unwrap_or_else(host_name);
        let tls = listener::tls::server_config(&config.listener, &spool_dir, &hostname)?;
        let legacy_tls = listener::LegacyTls::new(&config.listener, &spool_dir, &hostname)?;
        let listener = Listener::bind(ListenerContext {
            config: Arc::new(config.listener.clone()),
            spool: spool.clone(),
            device_auth: DeviceAuth::keychain(secrets.clone(), config.listener.users.clone()),
            tls: Some(tls),
            legacy_tls,
            hostname: hostname.clone(),
            internal_domains: (config.upstream.mode == UpstreamMode::DirectSend)
                .then(|| config.upstream.internal_domains()),
        })
        .await?;
        let listening = listener.local_addrs();

        let tokens = TokenSource::new(&config, secrets.clone());
        let tracker = Tracker::new(config.clone(), spool.clone(), events.clone(), secrets);
        let throttle = Throttle::open_keyed(
            throttle_limits(&config),
            throttle_concurrency(&config),
            &config.upstream.mailbox,
            Some(&spool_dir.join("throttle.log")),
            Clock::system(),
        )
        .map_err(EngineError::Throttle)?;
        let throttle = Arc::new(throttle);
        let worker = Worker::new(
            config.clone(),
            spool.clone(),
            tokens.clone(),
            events.clone(),
            upstream_settings(&config, &hostname),
            throttle.clone(),
        );
        let worker_state: Arc<WorkerState> = worker.state();
        let controller = Arc::new(Controller {
            config: config.clone(),
            spool: spool.clone(),
            tokens,
            worker: Some(worker_state),
            throttle: Some(throttle),
            tracking: Some(tracker.handle()),
            listening: listening.iter().map(|(a, _)| *a).collect(),
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(listener.serve(shutdown_rx.clone()));
        tasks.spawn(worker.run(shutdown_rx.clone()));
        tasks.spawn(tracker.run(shutdown_rx.clone()));
        let socket = control::bind(&spool_dir).map_err(EngineError::Control)?;
        tasks.spawn(control::serve(
            socket,
            controller.clone(),
            shutdown_rx.clone(),
        ));
        tasks.spawn(housekeeping(spool, config.clone(), shutdown_rx));
        Ok(Engine {
            controller,
            events,
            listening,
            shutdown,
            tasks,
        })
    }

    pub fn events(&self) -> &Events {
        &self.events
    }

    pub fn controller(&self) -> Arc<Controller> {
        self.controller.clone()
    }

    /// Where devices can connect (the real ports when the config said 0).
    pub fn listening(&self) -> &[(SocketAddr, bool)] {
        &self.listening
    }

    /// Stops accepting, finishes what is in flight, and returns when every
    /// task has ended. Nothing acknowledged is lost: it stays in the spool.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
        control::unbind(self.controller.spool.dir());
        tracing::info!("stopped");
    }
}

async fn housekeeping(spool: Spool, config: Arc<Config>, mut shutdown: watch::Receiver<bool>) {
    let keep = config.spool.keep_history.as_millis() as u64;
    // A message the tracker still follows is kept past keep_history.
    let tracking = if config.tracking.enabled {
        config.tracking.for_.as_millis() as u64
    } else {
        0
    };
    loop {
        let pruned = spool.prune(now_ms(), keep, tracking).await;
        if pruned > 0 {
            tracing::info!(pruned, "old sent/failed records removed");
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}

/// Microsoft's mailbox limits apply to client submission and Graph (one
/// mailbox); connector relay and Direct Send have none by default.
pub fn throttle_limits(config: &Config) -> Limits {
    let l = &config.limits;
    match config.upstream.mode {
        // Graph keeps Exchange's mailbox limits (10,000 recipients a day).
        UpstreamMode::Submission | UpstreamMode::Graph => Limits {
            per_minute: Some(l.messages_per_minute),
            per_window: Some(l.recipients_per_day),
            window: l.recipient_window,
        },
        _ => Limits::none(),
    }
}

/// Concurrent submissions per sending mailbox: `limits.max_connections`
/// where Microsoft counts per mailbox (client submission: 3 connections;
/// Graph: 4 requests); relay and Direct Send only by the lane count.
pub fn throttle_concurrency(config: &Config) -> Option<usize> {
    match config.upstream.mode {
        UpstreamMode::Submission | UpstreamMode::Graph => {
            Some(config.limits.max_connections.max(1))
        }
        _ => None,
    }
}

pub fn upstream_settings(config: &Config, hostname: &str) -> UpstreamSettings {
    let u = &config.upstream;
    UpstreamSettings {
        host: u.effective_host().to_string(),
        port: u.effective_port(),
        // Filled per connection by the lane's route (delivery::route).
        addrs: Vec::new(),
        tls: match u.mode {
            // Opportunistic only where the admin allowed it for a host that
            // is not Microsoft's (config validation); else TLS or nothing.
            UpstreamMode::DirectSend if u.allow_plaintext => TlsMode::Opportunistic,
            _ => TlsMode::Required,
        },
        ca_file: u.ca_file.clone(),
        client_cert: u.client_cert.clone().zip(u.client_key.clone()),
        // Read and parsed here, once per config load; every connection
        // shares them (delivery::upstream::tls).
        tls_cache: TlsCache::load(
            u.ca_file.as_deref(),
            u.client_cert.as_deref().zip(u.client_key.as_deref()),
        ),
        hello_name: hostname.to_string(),
        timeout: u.timeout,
    }
}

/// Raises the soft open-files limit to the hard limit: every device
/// connection is a descriptor, and the usual soft default (1024) is below
/// `max_connections` plus the spool's files under a connection flood.
/// Returns the soft limit now in force (None where there is no such limit).
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every unix
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid rlimit for getrlimit/setrlimit to read and write.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let before = lim.rlim_cur;
            lim.rlim_cur = lim.rlim_max;
            // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
                tracing::warn!(soft = before, "could not raise the open-files limit");
                return Some(before as u64);
            }
            tracing::debug!(
                from = before,
                to = lim.rlim_cur,
                "raised the open-files limit"
            );
        }
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// This machine's name, for the greeting and EHLO.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end]) {
                if !name.is_empty() {
                    return name.to_string();
                }
            }
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "postern".to_string())
}

/// The spool directory a config points at (for the CLI).
pub fn spool_dir(config: &Config) -> PathBuf {
    config.spool_dir()
}
