//! The delivery worker: takes due messages from the spool (device by device
//! in turn, oldest first within a device: `Spool::claim_next`) and
//! hands them to Exchange Online over up to `limits.max_connections` reused
//! connections ("lanes"), then records what happened and says so as events.
//!
//! Each reply is classified (`classify`) into what it means for the message:
//! retry later with backoff, fail it (or one recipient), or hold the whole
//! queue because the admin must fix something. While held, one lane probes
//! every `delivery.hold_recheck`; the rest wait. Nothing is bounced for a
//! problem that is the admin's to fix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use tokio::sync::watch;

use super::classify::{Action, Verdict};
use super::lane::Lane;
use super::route::Route;
use super::upstream::UpstreamSettings;
use crate::auth::TokenSource;
use crate::config::{Config, UpstreamMode};
use crate::events::{Event, Events};
use crate::graph::client::GraphClient;
use crate::spool::{now_ms, Spool};
use crate::throttle::Throttle;

/// The longest a lane sleeps without looking at the spool again, as a
/// backstop to the wake-ups; bounds the damage of any missed notification.
pub(super) const MAX_IDLE_WAIT: Duration = Duration::from_secs(30);
/// After a 432 4.3.2 (too many connections) a lane stands down this long.
pub(super) const THREAD_LIMIT_BACKOFF: Duration = Duration::from_secs(60);

/// Why delivery is held, for the status view and notifications.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ts_rs::TS)]
pub struct Attention {
    pub summary: String,
    pub fix: String,
    /// The reply or error that caused it.
    pub cause: String,
    /// Unix ms of the next automatic re-check (0: none is scheduled).
    pub recheck_at: u64,
}

/// Shared between the lanes and the engine's control surface.
pub struct WorkerState {
    pub(super) attention: watch::Sender<Option<Attention>>,
    /// Wakes lanes that wait out a hold (retry from the user).
    pub(super) poke: tokio::sync::Notify,
    pub(super) paused: watch::Sender<bool>,
    /// Open upstream connections; lanes count themselves in and out.
    pub(super) active: Mutex<usize>,
}

impl WorkerState {
    pub fn attention(&self) -> Option<Attention> {
        self.attention.borrow().clone()
    }
    pub fn active_connections(&self) -> usize {
        *self.active.lock().unwrap()
    }
    /// Ends a hold early: the next lane tries at once.
    pub fn recheck_now(&self) {
        self.attention.send_modify(|a| {
            if let Some(a) = a {
                a.recheck_at = 0;
            }
        });
        self.poke.notify_waiters();
    }
    pub fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
        self.poke.notify_waiters();
    }
    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }
}

/// With `send_as = "sender"` the lanes serve several mailboxes, each
/// allowed `limits.max_connections` at a time (the throttle's leases):
/// this many lanes per mailbox's worth, at most [`MAX_LANES`] in all.
const SENDER_LANES_FACTOR: usize = 4;
const MAX_LANES: usize = 16;

/// How many lanes run: `limits.max_connections` for one mailbox; more when
/// each sender sends from its own (`upstream.send_as = "sender"`).
pub fn lane_count(config: &Config) -> usize {
    let per_mailbox = config.limits.max_connections.max(1);
    if config.upstream.send_as == crate::config::SendAs::Sender {
        (per_mailbox * SENDER_LANES_FACTOR).clamp(per_mailbox, MAX_LANES.max(per_mailbox))
    } else {
        per_mailbox
    }
}

pub struct Worker {
    pub(super) config: Arc<Config>,
    pub(super) spool: Spool,
    pub(super) tokens: TokenSource,
    pub(super) events: Events,
    pub(super) settings: UpstreamSettings,
    /// Which hosts `settings` is used with, and at which addresses.
    pub(super) route: Route,
    pub(super) throttle: Arc<Throttle>,
    pub(super) state: Arc<WorkerState>,
    /// Graph mode: the HTTP client every lane shares (built once), or why
    /// it could not be built.
    pub(super) graph: Option<Result<GraphClient, String>>,
}

impl Worker {
    pub fn new(
        config: Arc<Config>,
        spool: Spool,
        tokens: TokenSource,
        events: Events,
        settings: UpstreamSettings,
        throttle: Arc<Throttle>,
    ) -> Worker {
        let (attention, _) = watch::channel(None);
        let (paused, _) = watch::channel(false);
        let graph = (config.upstream.mode == UpstreamMode::Graph)
            .then(|| GraphClient::new(&config).map_err(|e| e.to_string()));
        Worker {
            graph,
            route: Route::new(&config),
            config,
            spool,
            tokens,
            events,
            settings,
            throttle,
            state: Arc::new(WorkerState {
                attention,
                poke: tokio::sync::Notify::new(),
                paused,
                active: Mutex::new(0),
            }),
        }
    }

    pub fn state(&self) -> Arc<WorkerState> {
        self.state.clone()
    }

    /// Runs the lanes until `shutdown` turns true; returns when all have
    /// closed their connections. A message being sent at that moment is
    /// finished first (it is never abandoned half way).
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        if let Some(gap) = self.config.upstream_gap() {
            self.hold(
                Verdict {
                    action: Action::Hold,
                    summary: "Postern is not set up to send mail yet.",
                    fix: "",
                },
                &gap,
                &gap,
            );
        }
        let this = Arc::new(self);
        let lanes = lane_count(&this.config);
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            let w = this.clone();
            let sd = shutdown.clone();
            tasks.spawn(async move { Lane::new(w, lane, sd).run().await });
        }
        while tasks.join_next().await.is_some() {}
    }

    pub(super) fn hold(&self, verdict: Verdict, cause: &str, fix_override: &str) {
        let fix = if fix_override.is_empty() {
            verdict.fix.to_string()
        } else {
            fix_override.to_string()
        };
        let attention = Attention {
            summary: verdict.summary.to_string(),
            fix: fix.clone(),
            cause: cause.to_string(),
            recheck_at: now_ms() + self.config.delivery.hold_recheck.as_millis() as u64,
        };
        let changed = self
            .state
            .attention
            .borrow()
            .as_ref()
            .is_none_or(|a| a.summary != attention.summary || a.cause != attention.cause);
        self.state.attention.send_replace(Some(attention));
        if changed {
            tracing::warn!(summary = verdict.summary, %cause, "delivery held: {fix}");
            self.events.emit(Event::NeedsAttention {
                summary: verdict.summary.to_string(),
                fix,
            });
        }
    }

    pub(super) fn clear_hold(&self) {
        if self.state.attention.send_replace(None).is_some() {
            tracing::info!("delivery resumed");
            self.events.emit(Event::AttentionCleared);
        }
    }

    pub(super) fn backoff(&self, attempts: u32) -> u64 {
        let d = &self.config.delivery;
        let base = d.retry_first.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(d.retry_max.as_millis() as u64);
        // ±20 % jitter so a burst of deferred messages does not come back as one burst.
        let jitter = rand::thread_rng().gen_range(0.8..1.2);
        (capped as f64 * jitter) as u64
    }
}
