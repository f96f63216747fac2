//! Pacing inside Microsoft's limits, for each sending mailbox on its own: at
//! most `messages_per_minute` submissions in any rolling 60 seconds, at most
//! `recipients_per_day` recipients in any rolling `recipient_window` (24 h),
//! and at most `concurrent` submissions (Graph requests, SMTP connections)
//! at a time. Microsoft counts these per mailbox, so with
//! `upstream.send_as = "sender"` every sender's mailbox has its own
//! windows, its own concurrency and its own busy back-off (a 429 for one
//! mailbox does not stop another). Mailboxes are keyed by their lowercased
//! address; the configured `upstream.mailbox` is the default one.
//! Sliding windows, not calendar buckets. Exchange does not refuse a sender
//! that goes faster than 30 a minute, it quietly slows it down; past the day
//! budget it refuses with 554 5.2.0. Postern paces itself so that neither
//! happens, and can therefore say exactly when the queue will be empty.
//!
//! The history of submissions is appended to a file in the spool, so a
//! restart in the middle of a burst does not let a second burst through
//! (`log`: one line per submission, with its mailbox).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::spool::now_ms;

mod log;
mod status;
mod window;

pub use status::{MailboxThrottle, ThrottleStatus};
use window::{keep_ms, prune, wait_at, Submission};

/// The rolling window Microsoft counts messages in.
pub const MINUTE: Duration = Duration::from_secs(60);
const MINUTE_MS: u64 = 60_000;

/// The limits in force; `None` means no limit of that kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub per_minute: Option<u32>,
    pub per_window: Option<u32>,
    /// The recipient window's length (24 h at Microsoft).
    pub window: Duration,
}

impl Limits {
    pub fn none() -> Limits {
        Limits {
            per_minute: None,
            per_window: None,
            window: Duration::from_secs(24 * 3600),
        }
    }
}

/// Milliseconds on one clock: the wall clock at start, advanced by tokio's
/// monotonic clock. Persisted times survive restarts, a wall-clock jump
/// while running changes nothing, and tests with paused time control it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: u64,
    base: tokio::time::Instant,
}

impl Clock {
    pub fn system() -> Clock {
        Clock::starting_at(now_ms())
    }

    /// A clock that reads `ms` now (tests: "a restart an hour later").
    pub fn starting_at(ms: u64) -> Clock {
        Clock {
            base_ms: ms,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> u64 {
        self.base_ms + self.base.elapsed().as_millis() as u64
    }
}

/// Why a submission cannot start now, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The minute window is full.
    Minute(Duration),
    /// The recipient budget has too little left for this submission.
    Budget(Duration),
    /// Microsoft said the budget is spent (554 5.2.0).
    Quota(Duration),
    /// Microsoft said the mailbox is busy (421/451, Graph's 429/503): every
    /// submission from that mailbox backs off a while.
    Busy(Duration),
}

impl Wait {
    pub fn duration(&self) -> Duration {
        match *self {
            Wait::Minute(d) | Wait::Budget(d) | Wait::Quota(d) | Wait::Busy(d) => d,
        }
    }
}

/// A reserved submission: it counts against its mailbox's windows from the
/// moment it is taken. `Throttle::accepted` re-stamps it with the time
/// Microsoft took the message, which is when Microsoft counts it (a fresh
/// connection and sign-in can take a while); `Throttle::release` gives it
/// back when the submission was refused or never made.
#[must_use = "a slot is given back with `accepted` or `release`"]
#[derive(Debug)]
pub struct Slot {
    mailbox: String,
    seq: u64,
}

impl Slot {
    /// The sending mailbox the slot counts against (lowercased).
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }
}

/// One of the mailbox's concurrent submissions (a Graph request, an open
/// SMTP connection); given back when dropped.
#[derive(Debug)]
pub struct Lease {
    _permit: Option<OwnedSemaphorePermit>,
}

/// One mailbox's history and back-off state.
struct History {
    /// Submissions still inside the longer of the two windows, oldest first.
    recent: VecDeque<Submission>,
    /// After a 554 5.2.0: no submission before this time.
    quota_blocked_until: Option<u64>,
    /// After "server busy": no submission before this time.
    busy_until: Option<u64>,
    /// Busy replies in a row; the back-off doubles with each.
    busy_streak: u32,
    /// Its concurrent submissions (None: no limit).
    permits: Option<Arc<Semaphore>>,
}

struct Inner {
    mailboxes: HashMap<String, History>,
    /// The last slot number handed out.
    seq: u64,
}

/// Who owns it: the delivery worker's lanes ask it before every submission;
/// the control surface reads its status. Cheap to share behind an `Arc`.
pub struct Throttle {
    limits: Limits,
    /// Concurrent submissions per mailbox (None: no limit).
    concurrent: Option<usize>,
    /// The configured mailbox (lowercased): old history lines are its, and
    /// the status shows it first.
    default: String,
    clock: Clock,
    inner: Mutex<Inner>,
    /// Append-only record of submissions; rewritten compactly at start.
    log: Option<Arc<log::Log>>,
}

/// The key a mailbox is counted under.
fn key(mailbox: &str) -> String {
    mailbox.trim().to_ascii_lowercase()
}

impl Throttle {
    /// A throttle for the unnamed mailbox "" without a concurrency cap,
    /// its history in `path` (created if missing).
    pub fn open(limits: Limits, path: Option<&Path>, clock: Clock) -> std::io::Result<Throttle> {
        Throttle::open_keyed(limits, None, "", path, clock)
    }

    /// A throttle whose configured mailbox is `mailbox`, each mailbox
    /// allowed `concurrent` submissions at a time, its history in `path`.
    pub fn open_keyed(
        limits: Limits,
        concurrent: Option<usize>,
        mailbox: &str,
        path: Option<&Path>,
        clock: Clock,
    ) -> std::io::Result<Throttle> {
        let default = key(mailbox);
        let now = clock.now();
        let mut t = Throttle {
            limits,
            concurrent,
            default: default.clone(),
            clock,
            inner: Mutex::new(Inner {
                mailboxes: HashMap::new(),
                seq: 0,
            }),
            log: None,
        };
        let Some(path) = path else { return Ok(t) };
        let mut entries = log::load(path, now.saturating_sub(keep_ms(&limits)));
        entries.sort_by_key(|e| e.0);
        let mut lines = Vec::new();
        {
            let mut inner = t.inner.lock().unwrap();
            for (at, rcpts, mailbox) in entries {
                let mailbox = mailbox.unwrap_or_else(|| default.clone());
                lines.push(log::line(at, rcpts, &mailbox));
                t.entry(&mut inner, &mailbox)
                    .recent
                    .push_back(Submission { at, rcpts, seq: 0 });
            }
        }
        t.log = Some(Arc::new(log::Log {
            file: Mutex::new(log::rewrite(path, &lines)?),
            pending: Mutex::new(VecDeque::new()),
        }));
        Ok(t)
    }

    /// A throttle without persistence.
    pub fn in_memory(limits: Limits) -> Throttle {
        Throttle::open(limits, None, Clock::system()).expect("no file, no error")
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The configured mailbox's key (lowercased).
    pub fn default_mailbox(&self) -> &str {
        &self.default
    }

    fn entry<'a>(&self, inner: &'a mut Inner, mailbox: &str) -> &'a mut History {
        inner
            .mailboxes
            .entry(mailbox.to_string())
            .or_insert_with(|| History {
                recent: VecDeque::new(),
                quota_blocked_until: None,
                busy_until: None,
                busy_streak: 0,
                permits: self.concurrent.map(|n| Arc::new(Semaphore::new(n.max(1)))),
            })
    }

    /// Runs `f` on `mailbox`'s history (created if new).
    fn with<R>(&self, mailbox: &str, f: impl FnOnce(&mut History, u64) -> R) -> R {
        let now = self.clock.now();
        let mut inner = self.inner.lock().unwrap();
        f(self.entry(&mut inner, &key(mailbox)), now)
    }

    /// True when a message with this many recipients could never be sent
    /// within the recipient budget, however long it waited.
    pub fn exceeds_budget(&self, rcpts: usize) -> bool {
        self.limits
            .per_window
            .is_some_and(|limit| rcpts as u64 > limit as u64)
    }

    /// How long until a submission of `rcpts` recipients from `mailbox`
    /// may start (None: now).
    pub fn wait_for(&self, mailbox: &str, rcpts: u32) -> Option<Wait> {
        self.with(mailbox, |h, now| {
            busy_wait(h, now)
                .or_else(|| wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, rcpts))
        })
    }

    /// Reserves a submission slot from `mailbox` for `rcpts` recipients if
    /// one is free now.
    pub fn try_acquire(&self, mailbox: &str, rcpts: u32) -> Result<Slot, Wait> {
        let now = self.clock.now();
        let mailbox = key(mailbox);
        let mut inner = self.inner.lock().unwrap();
        inner.seq += 1;
        let seq = inner.seq;
        let h = self.entry(&mut inner, &mailbox);
        prune(&mut h.recent, now, keep_ms(&self.limits));
        if let Some(wait) = busy_wait(h, now) {
            return Err(wait);
        }
        if let Some(wait) = wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, rcpts) {
            return Err(wait);
        }
        h.recent.push_back(Submission {
            at: now,
            rcpts,
            seq,
        });
        Ok(Slot { mailbox, seq })
    }

    /// Waits out a full minute window and reserves the slot; a longer wait
    /// (the recipient budget, a quota block, a busy server) is returned for
    /// the caller to defer the message instead of holding it. So is the
    /// minute's wait when `shutdown` turns true meanwhile: stopping the
    /// engine never waits for the window.
    pub async fn acquire(
        &self,
        mailbox: &str,
        rcpts: u32,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Slot, Wait> {
        let mut shutdown = shutdown.clone();
        loop {
            match self.try_acquire(mailbox, rcpts) {
                Ok(slot) => return Ok(slot),
                Err(Wait::Minute(d)) => tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Err(Wait::Minute(d)),
                },
                Err(other) => return Err(other),
            }
        }
    }

    /// One of `mailbox`'s concurrent submissions, waiting for one to be
    /// given back if all are taken; None if `shutdown` turns true first.
    pub async fn lease(
        &self,
        mailbox: &str,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Option<Lease> {
        let Some(permits) = self.with(mailbox, |h, _| h.permits.clone()) else {
            return Some(Lease { _permit: None });
        };
        let mut shutdown = shutdown.clone();
        tokio::select! {
            p = permits.acquire_owned() => p.ok().map(|p| Lease { _permit: Some(p) }),
            _ = shutdown.wait_for(|stop| *stop) => None,
        }
    }

    /// Microsoft accepted the submission: it counts from now, and is
    /// recorded in the history file (on the blocking pool) before this
    /// returns.
    pub async fn accepted(&self, slot: Slot) {
        let log = {
            let now = self.clock.now();
            let mut inner = self.inner.lock().unwrap();
            let h = self.entry(&mut inner, &slot.mailbox);
            let Some(i) = h.recent.iter().position(|s| s.seq == slot.seq) else {
                return;
            };
            let mut s = h.recent.remove(i).expect("found");
            s.at = s.at.max(now);
            // `now` is the latest time the history holds: keep it sorted.
            h.recent.push_back(s);
            let Some(log) = self.log.clone() else {
                return;
            };
            log.pending
                .lock()
                .unwrap()
                .push_back(log::line(s.at, s.rcpts, &slot.mailbox));
            log
        };
        let _ = tokio::task::spawn_blocking(move || log.write_pending()).await;
    }

    /// The submission was refused or never made: it did not count.
    pub fn release(&self, slot: Slot) {
        self.with(&slot.mailbox, |h, _| {
            if let Some(i) = h.recent.iter().position(|s| s.seq == slot.seq) {
                h.recent.remove(i);
            }
        })
    }

    /// Microsoft answered "server busy" for `mailbox` (421 / 451 4.7.x,
    /// Graph's 429 / 503): every lane sending from that mailbox stands back
    /// for `base`, doubling for each busy reply in a row up to `max`, or
    /// for `retry_after` if Microsoft named a longer pause. Other mailboxes
    /// keep sending. Returns the pause.
    pub fn server_busy(
        &self,
        mailbox: &str,
        base: Duration,
        max: Duration,
        retry_after: Option<Duration>,
    ) -> Duration {
        self.with(mailbox, |h, now| {
            h.busy_streak = h.busy_streak.saturating_add(1);
            let factor = 1u32 << (h.busy_streak - 1).min(16);
            let mut pause = base.saturating_mul(factor).min(max);
            if let Some(asked) = retry_after {
                // Graph's Retry-After is exactly how long it wants.
                pause = asked;
            }
            h.busy_until = Some(now + pause.as_millis() as u64);
            pause
        })
    }

    /// A submission from `mailbox` went through: it is not busy any more.
    pub fn server_ok(&self, mailbox: &str) {
        self.with(mailbox, |h, _| {
            h.busy_streak = 0;
            h.busy_until = None;
        })
    }

    /// Microsoft refused with 554 5.2.0 whatever our count said: another
    /// client shares the mailbox, or the limit is lower. Treat its budget
    /// as spent until the oldest submission we know of leaves the window,
    /// or for `fallback` if we know of none. (The refused submission's own
    /// slot is released by the caller first: it did not count.) Returns
    /// the block's length.
    pub fn quota_exceeded(&self, mailbox: &str, fallback: Duration) -> Duration {
        let window = self.limits.window.as_millis() as u64;
        self.with(mailbox, |h, now| {
            prune(&mut h.recent, now, keep_ms(&self.limits));
            let until = h
                .recent
                .iter()
                .find(|s| s.at + window > now)
                .map(|s| s.at + window)
                .unwrap_or(now + fallback.as_millis() as u64);
            h.quota_blocked_until = Some(until);
            Duration::from_millis(until - now)
        })
    }
}

fn busy_wait(h: &History, now: u64) -> Option<Wait> {
    h.busy_until
        .filter(|u| *u > now)
        .map(|u| Wait::Busy(Duration::from_millis(u - now)))
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keyed;
