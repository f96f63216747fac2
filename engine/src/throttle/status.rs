//! What the throttle shows: the status (`postern status`, the GUI's
//! throttling page) with one row per sending mailbox, and the history
//! chart's buckets.

use serde::Serialize;

use super::window::{simulate, wait_at};
use super::{busy_wait, History, Throttle, MINUTE_MS};
use crate::spool::now_ms;

/// What the status view shows. The top-level fields are the configured
/// mailbox's (`upstream.mailbox`); `mailboxes` has a row for every mailbox
/// that has sent lately (with `upstream.send_as = "sender"`, each sender's
/// own), the configured one first.
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
    /// Concurrent submissions allowed per mailbox (None: no limit).
    pub concurrent_per_mailbox: Option<u32>,
    /// Each sending mailbox's budget, the configured mailbox first.
    pub mailboxes: Vec<MailboxThrottle>,
}

/// One sending mailbox's budget and back-off.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, ts_rs::TS)]
pub struct MailboxThrottle {
    /// The mailbox's address, lowercased.
    pub address: String,
    pub messages_last_minute: usize,
    /// Seconds until its next submission may start (0 = now).
    pub next_slot_in_secs: f64,
    pub recipients_in_window: u64,
    pub recipients_left: Option<u64>,
    pub recipients_free_in_secs: Option<f64>,
    pub quota_blocked_for_secs: Option<f64>,
    pub busy_for_secs: Option<f64>,
    /// Its share of `concurrent_per_mailbox` in use: Graph requests in
    /// progress, or SMTP connections open (idle ones too).
    pub in_flight: u32,
}

impl Throttle {
    fn row(&self, address: &str, h: &History, now: u64) -> MailboxThrottle {
        let window = self.limits.window.as_millis() as u64;
        let in_window: Vec<_> = h.recent.iter().filter(|s| s.at + window > now).collect();
        let used: u64 = in_window.iter().map(|s| s.rcpts as u64).sum();
        let next = match wait_at(&self.limits, &h.recent, h.quota_blocked_until, now, 1) {
            Some(w) => w.duration().as_secs_f64(),
            None => 0.0,
        };
        let in_flight = match (&h.permits, self.concurrent) {
            (Some(p), Some(n)) => n.saturating_sub(p.available_permits()) as u32,
            _ => 0,
        };
        MailboxThrottle {
            address: address.to_string(),
            messages_last_minute: h.recent.iter().filter(|s| s.at + MINUTE_MS > now).count(),
            next_slot_in_secs: next,
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
            busy_for_secs: busy_wait(h, now).map(|w| w.duration().as_secs_f64()),
            in_flight,
        }
    }

    /// The status, with the configured mailbox's ETA for `demand`: the
    /// recipient count of every submission still to make, in the order
    /// they will be made.
    pub fn status(&self, demand: &[u32]) -> ThrottleStatus {
        let now = self.clock.now();
        let default = self.default.clone();
        let mut inner = self.inner.lock().unwrap();
        let keep = super::keep_ms(&self.limits);
        // A mailbox with nothing in its windows, no block and nothing in
        // flight is forgotten (the configured one stays).
        inner.mailboxes.retain(|m, h| {
            super::prune(&mut h.recent, now, keep);
            *m == default
                || !h.recent.is_empty()
                || h.quota_blocked_until.is_some_and(|u| u > now)
                || h.busy_until.is_some_and(|u| u > now)
                || h.permits.as_ref().is_some_and(|p| {
                    self.concurrent
                        .is_some_and(|n| p.available_permits() < n.max(1))
                })
        });
        let h = self.entry(&mut inner, &default);
        let eta = simulate(&self.limits, &h.recent, h.quota_blocked_until, now, demand);
        let main = self.row(&default, h, now);
        let mut rows: Vec<MailboxThrottle> = inner
            .mailboxes
            .iter()
            .filter(|(m, _)| **m != default)
            .map(|(m, h)| self.row(m, h, now))
            .collect();
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        rows.insert(0, main.clone());
        ThrottleStatus {
            messages_per_minute: self.limits.per_minute,
            messages_last_minute: main.messages_last_minute,
            next_slot_in_secs: main.next_slot_in_secs,
            recipients_per_day: self.limits.per_window,
            recipient_window_secs: self.limits.window.as_secs_f64(),
            recipients_in_window: main.recipients_in_window,
            recipients_left: main.recipients_left,
            recipients_free_in_secs: main.recipients_free_in_secs,
            quota_blocked_for_secs: main.quota_blocked_for_secs,
            busy_for_secs: main.busy_for_secs,
            eta_secs: eta.map(|ms| ms as f64 / 1000.0),
            eta_unix_ms: eta.map(|ms| now_ms() + ms),
            concurrent_per_mailbox: self.concurrent.map(|n| n as u32),
            mailboxes: rows,
        }
    }

    /// Submissions per `bucket` over the recipient window, oldest first:
    /// (bucket start in unix ms, messages, recipients), all mailboxes
    /// together. The GUI's chart.
    pub fn history(&self, bucket: std::time::Duration) -> Vec<(u64, u32, u64)> {
        let now = self.clock.now();
        let window = self.limits.window.as_millis() as u64;
        let step = (bucket.as_millis() as u64).max(1);
        let start = now.saturating_sub(window) / step * step;
        let n = ((now - start) / step + 1) as usize;
        let mut out: Vec<(u64, u32, u64)> =
            (0..n).map(|i| (start + i as u64 * step, 0, 0)).collect();
        let inner = self.inner.lock().unwrap();
        for h in inner.mailboxes.values() {
            for s in h.recent.iter().filter(|s| s.at >= start) {
                let b = &mut out[((s.at - start) / step) as usize];
                b.1 += 1;
                b.2 += s.rcpts as u64;
            }
        }
        out
    }
}
