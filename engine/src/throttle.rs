//! Pacing inside Microsoft's limits for one mailbox: at most
//! `messages_per_minute` submissions in any rolling 60 seconds and at most
//! `recipients_per_day` recipients in any rolling `recipient_window` (24 h).
//! Sliding windows, not calendar buckets. Exchange does not refuse a sender
//! that goes faster than 30 a minute, it quietly slows it down; past the day
//! budget it refuses with 554 5.2.0. Postern paces itself so that neither
//! happens, and can therefore say exactly when the queue will be empty.
//!
//! The history of submissions is appended to a file in the spool, so a
//! restart in the middle of a burst does not let a second burst through.
//! (The concurrent-connection limit is the number of delivery lanes.)

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::spool::now_ms;

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
    /// Microsoft said it is busy (421/451): everyone backs off a while.
    Busy(Duration),
}

impl Wait {
    pub fn duration(&self) -> Duration {
        match *self {
            Wait::Minute(d) | Wait::Budget(d) | Wait::Quota(d) | Wait::Busy(d) => d,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Submission {
    at: u64,
    rcpts: u32,
    /// Which slot this is (0 for submissions loaded from the history).
    seq: u64,
}

/// A reserved submission: it counts against the windows from the moment it
/// is taken. `Throttle::accepted` re-stamps it with the time Microsoft took
/// the message, which is when Microsoft counts it (a fresh connection and
/// sign-in can take a while); `Throttle::release` gives it back when the
/// submission was refused or never made.
#[must_use = "a slot is given back with `accepted` or `release`"]
#[derive(Debug)]
pub struct Slot {
    seq: u64,
}

struct History {
    /// Submissions still inside the longer of the two windows, oldest first.
    recent: VecDeque<Submission>,
    /// After a 554 5.2.0: no submission before this time.
    quota_blocked_until: Option<u64>,
    /// After "server busy": no submission before this time.
    busy_until: Option<u64>,
    /// Busy replies in a row; the back-off doubles with each.
    busy_streak: u32,
    /// The last slot number handed out.
    seq: u64,
    /// Append-only record of submissions; rewritten compactly at start.
    log: Option<Arc<Log>>,
}

/// The history file, written on the blocking pool (never on an async
/// thread). Lines are queued under the history lock, so the file gets them
/// in the order the history did; whichever blocking task holds the file
/// writes every queued line, oldest first.
struct Log {
    file: Mutex<std::fs::File>,
    pending: Mutex<VecDeque<String>>,
}

impl Log {
    fn write_pending(&self) {
        let mut file = self.file.lock().unwrap();
        loop {
            let Some(line) = self.pending.lock().unwrap().pop_front() else {
                return;
            };
            // No fsync: losing the last few entries to a power cut costs at
            // most a short burst; a crashed process loses nothing (the
            // line is written before `accepted` returns).
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "could not record a submission in the throttle history");
            }
        }
    }
}

/// Who owns it: the delivery worker's lanes ask it before every submission;
/// the control surface reads its status. Cheap to share behind an `Arc`.
pub struct Throttle {
    limits: Limits,
    clock: Clock,
    history: Mutex<History>,
}

/// What the status view shows (`postern status`, the GUI's throttling panel).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, ts_rs::TS)]
pub struct ThrottleStatus {
    pub messages_per_minute: Option<u32>,
    pub messages_last_minute: usize,
    /// Seconds until the next submission may start (0 = now).
    pub next_slot_in_secs: f64,
    pub recipients_per_day: Option<u32>,
    pub recipient_window_secs: f64,
    pub recipients_in_window: u64,
    pub recipients_left: Option<u64>,
    /// When the oldest recipients in the window stop counting.
    pub recipients_free_in_secs: Option<f64>,
    pub quota_blocked_for_secs: Option<f64>,
    /// Backing off because Microsoft said it is busy.
    pub busy_for_secs: Option<f64>,
    /// Until the whole queue is submitted, from the limits and the queue.
    pub eta_secs: Option<f64>,
    pub eta_unix_ms: Option<u64>,
}

impl Throttle {
    /// A throttle with its history in `path` (created if missing).
    pub fn open(limits: Limits, path: Option<&Path>, clock: Clock) -> std::io::Result<Throttle> {
        let keep = keep_ms(&limits);
        let now = clock.now();
        let mut recent = VecDeque::new();
        let mut file = None;
        if let Some(path) = path {
            if let Ok(f) = std::fs::File::open(path) {
                for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
                    let mut parts = line.split_whitespace();
                    let (Some(at), Some(rcpts)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    if let (Ok(at), Ok(rcpts)) = (at.parse::<u64>(), rcpts.parse::<u32>()) {
                        if at + keep > now {
                            recent.push_back(Submission { at, rcpts, seq: 0 });
                        }
                    }
                }
            }
            recent.make_contiguous().sort_by_key(|s| s.at);
            file = Some(Arc::new(Log {
                file: Mutex::new(rewrite(path, &recent)?),
                pending: Mutex::new(VecDeque::new()),
            }));
        }
        Ok(Throttle {
            limits,
            clock,
            history: Mutex::new(History {
                recent,
                quota_blocked_until: None,
                busy_until: None,
                busy_streak: 0,
                seq: 0,
                log: file,
            }),
        })
    }

    /// A throttle without persistence.
    pub fn in_memory(limits: Limits) -> Throttle {
        Throttle::open(limits, None, Clock::system()).expect("no file, no error")
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// True when a message with this many recipients could never be sent
    /// within the recipient budget, however long it waited.
    pub fn exceeds_budget(&self, rcpts: usize) -> bool {
        self.limits
            .per_window
            .is_some_and(|limit| rcpts as u64 > limit as u64)
    }

    /// How long until a submission of `rcpts` recipients may start (None: now).
    pub fn wait_for(&self, rcpts: u32) -> Option<Wait> {
        let now = self.clock.now();
        let h = self.history.lock().unwrap();
        busy_wait(&h, now)
            .or_else(|| wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, rcpts))
    }

    /// Reserves a submission slot for `rcpts` recipients if one is free now.
    pub fn try_acquire(&self, rcpts: u32) -> Result<Slot, Wait> {
        let now = self.clock.now();
        let mut h = self.history.lock().unwrap();
        prune(&mut h.recent, now, keep_ms(&self.limits));
        if let Some(wait) = busy_wait(&h, now) {
            return Err(wait);
        }
        if let Some(wait) = wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, rcpts) {
            return Err(wait);
        }
        h.seq += 1;
        let seq = h.seq;
        h.recent.push_back(Submission {
            at: now,
            rcpts,
            seq,
        });
        Ok(Slot { seq })
    }

    /// Waits out a full minute window and reserves the slot; a longer wait
    /// (the recipient budget, a quota block, a busy server) is returned for
    /// the caller to defer the message instead of holding it. So is the
    /// minute's wait when `shutdown` turns true meanwhile: stopping the
    /// engine never waits for the window.
    pub async fn acquire(
        &self,
        rcpts: u32,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Slot, Wait> {
        let mut shutdown = shutdown.clone();
        loop {
            match self.try_acquire(rcpts) {
                Ok(slot) => return Ok(slot),
                Err(Wait::Minute(d)) => tokio::select! {
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return Err(Wait::Minute(d)),
                },
                Err(other) => return Err(other),
            }
        }
    }

    /// Microsoft accepted the submission: it counts from now, and is
    /// recorded in the history file (on the blocking pool) before this
    /// returns.
    pub async fn accepted(&self, slot: Slot) {
        let log = {
            let now = self.clock.now();
            let mut h = self.history.lock().unwrap();
            let Some(i) = h.recent.iter().position(|s| s.seq == slot.seq) else {
                return;
            };
            let mut s = h.recent.remove(i).expect("found");
            s.at = s.at.max(now);
            // `now` is the latest time the history holds: keep it sorted.
            h.recent.push_back(s);
            let Some(log) = h.log.clone() else {
                return;
            };
            log.pending
                .lock()
                .unwrap()
                .push_back(format!("{} {}\n", s.at, s.rcpts));
            log
        };
        let _ = tokio::task::spawn_blocking(move || log.write_pending()).await;
    }

    /// The submission was refused or never made: it did not count.
    pub fn release(&self, slot: Slot) {
        let mut h = self.history.lock().unwrap();
        if let Some(i) = h.recent.iter().position(|s| s.seq == slot.seq) {
            h.recent.remove(i);
        }
    }

    /// Microsoft answered "server busy" (421 / 451 4.7.x): every lane
    /// stands back for `base`, doubling for each busy reply in a row up to
    /// `max`, instead of only the refused message backing off while the
    /// others keep knocking. Returns the pause.
    pub fn server_busy(&self, base: Duration, max: Duration) -> Duration {
        let now = self.clock.now();
        let mut h = self.history.lock().unwrap();
        h.busy_streak = h.busy_streak.saturating_add(1);
        let factor = 1u32 << (h.busy_streak - 1).min(16);
        let pause = base.saturating_mul(factor).min(max);
        h.busy_until = Some(now + pause.as_millis() as u64);
        pause
    }

    /// A submission went through: the server is not busy any more.
    pub fn server_ok(&self) {
        let mut h = self.history.lock().unwrap();
        h.busy_streak = 0;
        h.busy_until = None;
    }

    /// Microsoft refused with 554 5.2.0 whatever our count said: another
    /// client shares the mailbox, or the limit is lower. Treat the budget as
    /// spent until the oldest submission we know of leaves the window, or
    /// for `fallback` if we know of none. (The refused submission's own slot
    /// is released by the caller first: it did not count.) Returns the
    /// block's length.
    pub fn quota_exceeded(&self, fallback: Duration) -> Duration {
        let now = self.clock.now();
        let window = self.limits.window.as_millis() as u64;
        let mut h = self.history.lock().unwrap();
        prune(&mut h.recent, now, keep_ms(&self.limits));
        let until = h
            .recent
            .iter()
            .find(|s| s.at + window > now)
            .map(|s| s.at + window)
            .unwrap_or(now + fallback.as_millis() as u64);
        h.quota_blocked_until = Some(until);
        Duration::from_millis(until - now)
    }

    /// Submissions per `bucket` over the recipient window, oldest first:
    /// (bucket start in unix ms, messages, recipients). The GUI's chart.
    pub fn history(&self, bucket: Duration) -> Vec<(u64, u32, u64)> {
        let now = self.clock.now();
        let window = self.limits.window.as_millis() as u64;
        let step = (bucket.as_millis() as u64).max(1);
        let start = now.saturating_sub(window) / step * step;
        let n = ((now - start) / step + 1) as usize;
        let mut out: Vec<(u64, u32, u64)> =
            (0..n).map(|i| (start + i as u64 * step, 0, 0)).collect();
        let h = self.history.lock().unwrap();
        for s in h.recent.iter().filter(|s| s.at >= start) {
            let b = &mut out[((s.at - start) / step) as usize];
            b.1 += 1;
            b.2 += s.rcpts as u64;
        }
        out
    }

    /// The status, with the ETA for `demand`: the recipient count of every
    /// submission still to make, in the order they will be made.
    pub fn status(&self, demand: &[u32]) -> ThrottleStatus {
        let now = self.clock.now();
        let h = self.history.lock().unwrap();
        let window = self.limits.window.as_millis() as u64;
        let in_minute = h.recent.iter().filter(|s| s.at + MINUTE_MS > now).count();
        let in_window: Vec<&Submission> = h.recent.iter().filter(|s| s.at + window > now).collect();
        let used: u64 = in_window.iter().map(|s| s.rcpts as u64).sum();
        let next = match wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, 1) {
            Some(w) => w.duration().as_secs_f64(),
            None => 0.0,
        };
        let eta = simulate(&self.limits, &h.recent, h.quota_blocked_until, now, demand);
        ThrottleStatus {
            messages_per_minute: self.limits.per_minute,
            messages_last_minute: in_minute,
            next_slot_in_secs: next,
            recipients_per_day: self.limits.per_window,
            recipient_window_secs: self.limits.window.as_secs_f64(),
            recipients_in_window: used,
            recipients_left: self
                .limits
                .per_window
                .map(|l| (l as u64).saturating_sub(used)),
            recipients_free_in_secs: in_window
                .first()
                .map(|s| (s.at + window - now) as f64 / 1000.0),
            quota_blocked_for_secs: h
                .quota_blocked_until
                .filter(|u| *u > now)
                .map(|u| (u - now) as f64 / 1000.0),
            busy_for_secs: busy_wait(&h, now).map(|w| w.duration().as_secs_f64()),
            eta_secs: eta.map(|ms| ms as f64 / 1000.0),
            eta_unix_ms: eta.map(|ms| now_ms() + ms),
        }
    }
}

fn busy_wait(h: &History, now: u64) -> Option<Wait> {
    h.busy_until
        .filter(|u| *u > now)
        .map(|u| Wait::Busy(Duration::from_millis(u - now)))
}

fn keep_ms(limits: &Limits) -> u64 {
    (limits.window.as_millis() as u64).max(MINUTE_MS)
}

fn prune(recent: &mut VecDeque<Submission>, now: u64, keep: u64) {
    while recent.front().is_some_and(|s| s.at + keep <= now) {
        recent.pop_front();
    }
}

fn rewrite(path: &Path, recent: &VecDeque<Submission>) -> std::io::Result<std::fs::File> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut text = String::new();
    for s in recent {
        text.push_str(&format!("{} {}\n", s.at, s.rcpts));
    }
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    std::fs::OpenOptions::new().append(true).open(path)
}

/// How long a submission of `rcpts` must wait at time `now`, given the
/// submissions in `recent` (oldest first); None if it may start now.
fn wait_at(
    limits: &Limits,
    recent: &VecDeque<Submission>,
    quota_blocked_until: Option<u64>,
    now: u64,
    rcpts: u32,
) -> Option<Wait> {
    if let Some(until) = quota_blocked_until.filter(|u| *u > now) {
        return Some(Wait::Quota(Duration::from_millis(until - now)));
    }
    let mut wait = None;
    if let Some(limit) = limits.per_window {
        let window = limits.window.as_millis() as u64;
        let live: Vec<&Submission> = recent.iter().filter(|s| s.at + window > now).collect();
        let mut used: u64 = live.iter().map(|s| s.rcpts as u64).sum();
        let need = rcpts as u64;
        if used + need > limit as u64 {
            // Wait until enough of the oldest recipients leave the window.
            let mut until = now;
            for s in &live {
                if used + need <= limit as u64 {
                    break;
                }
                used -= s.rcpts as u64;
                until = s.at + window;
            }
            wait = Some(Wait::Budget(Duration::from_millis(until - now)));
        }
    }
    if let Some(limit) = limits.per_minute {
        let in_minute: Vec<&Submission> =
            recent.iter().filter(|s| s.at + MINUTE_MS > now).collect();
        if in_minute.len() >= limit as usize {
            let idx = in_minute.len() - limit as usize;
            let until = in_minute[idx].at + MINUTE_MS;
            let d = Duration::from_millis(until - now);
            if wait.is_none_or(|w: Wait| w.duration() < d) {
                wait = Some(Wait::Minute(d));
            }
        }
    }
    wait
}

/// When the last of `demand` could start, in ms from `now`, by running the
/// queue through the same windows. None if some submission can never fit.
fn simulate(
    limits: &Limits,
    recent: &VecDeque<Submission>,
    quota_blocked_until: Option<u64>,
    now: u64,
    demand: &[u32],
) -> Option<u64> {
    let keep = keep_ms(limits);
    let mut sim: VecDeque<Submission> = recent.clone();
    let mut t = now;
    for &rcpts in demand {
        if limits.per_window.is_some_and(|l| rcpts > l) {
            return None;
        }
        loop {
            prune(&mut sim, t, keep);
            match wait_at(limits, &sim, quota_blocked_until, t, rcpts) {
                None => break,
                Some(w) => t += (w.duration().as_millis() as u64).max(1),
            }
        }
        sim.push_back(Submission {
            at: t,
            rcpts,
            seq: 0,
        });
    }
    Some(t - now)
}

#[cfg(test)]
mod tests;
