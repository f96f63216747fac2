//! Exchange Online's per-mailbox submission limits, as the fake enforces
//! them (docs/exchange-online.md §1, §3):
//!
//! - **Messages per rolling minute** (30 for the real service). Exchange
//!   does not refuse an overrun with a distinct reply, it slows the sender
//!   down; the fake likewise accepts the message and only *counts* it: a
//!   submission is over the limit when, with it, more than N accepted
//!   submissions fall in the 60 s ending at it. Every accepted submission's
//!   time is kept so a test can check any window itself
//!   ([`max_in_window`]).
//! - **Recipients per rolling window** (10,000 per 24 h for the real
//!   service; tests shorten the window). A submission whose accepted
//!   recipients would take the window's total above the budget is refused
//!   at the end of its content with [`QUOTA_REPLY`] and not recorded.
//!
//! All decisions take `now` as an argument so they can be tested without
//! waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// The length of the message-rate window.
pub const MINUTE: Duration = Duration::from_secs(60);

/// What Exchange Online answers at the end of DATA once the mailbox's
/// recipient budget for the rolling window is spent.
pub const QUOTA_REPLY: &str = "554 5.2.0 STOREDRV.Submission.Exception:\
SubmissionQuotaExceededException; Failed to process message due to a permanent \
exception with message [BeginDiagnosticData]Message submission quota exceeded \
for this mailbox.[EndDiagnosticData]";

/// One accepted submission.
#[derive(Debug, Clone, Copy)]
struct Submission {
    at: Instant,
    recipients: u32,
}

/// Accepted submissions and what the limits made of them.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Every accepted submission, oldest first (never pruned: tests read them).
    accepted: Vec<Submission>,
    /// Wall-clock time of each accepted submission, same order.
    wall: Vec<SystemTime>,
    /// Index of the oldest submission that may still be in the rate window.
    rate_start: usize,
    /// Submissions that may still be in the recipient window, oldest first.
    recipient_window: VecDeque<Submission>,
}

impl Ledger {
    /// Whether `recipients` more would go over `budget` in the `window`
    /// ending at `now`.
    pub(super) fn over_quota(
        &mut self,
        now: Instant,
        recipients: u32,
        (budget, window): (u32, Duration),
    ) -> bool {
        while let Some(front) = self.recipient_window.front() {
            if now.saturating_duration_since(front.at) >= window {
                self.recipient_window.pop_front();
            } else {
                break;
            }
        }
        let used: u64 = self
            .recipient_window
            .iter()
            .map(|s| u64::from(s.recipients))
            .sum();
        used + u64::from(recipients) > u64::from(budget)
    }

    /// Records an accepted submission at `now`; returns whether it went over
    /// `per_minute` (more than that many accepted in the minute ending now).
    pub(super) fn accept(
        &mut self,
        now: Instant,
        recipients: u32,
        per_minute: Option<u32>,
    ) -> bool {
        let s = Submission {
            at: now,
            recipients,
        };
        self.accepted.push(s);
        self.wall.push(SystemTime::now());
        self.recipient_window.push_back(s);
        while now.saturating_duration_since(self.accepted[self.rate_start].at) >= MINUTE {
            self.rate_start += 1;
        }
        let in_minute = self.accepted.len() - self.rate_start;
        per_minute.is_some_and(|n| in_minute > n as usize)
    }

    /// Monotonic times of every accepted submission, oldest first.
    pub(super) fn times(&self) -> Vec<Instant> {
        self.accepted.iter().map(|s| s.at).collect()
    }

    /// Wall-clock times of every accepted submission, oldest first.
    pub(super) fn wall_times(&self) -> Vec<SystemTime> {
        self.wall.clone()
    }
}

/// The most of `times` (sorted, oldest first) that fall in any half-open
/// interval of length `window` — for the minute, the most submissions
/// Exchange would have seen in one rolling minute.
pub fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut start = 0;
    for (end, t) in times.iter().enumerate() {
        while t.saturating_duration_since(times[start]) >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn rate_counts_only_submissions_over_the_minute() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        // 3 per minute: three at once are fine, the fourth within 60 s is over.
        for i in 0..3 {
            assert!(!l.accept(t0 + secs(i as f64), 1, Some(3)));
        }
        assert!(l.accept(t0 + secs(59.9), 1, Some(3)));
        // At 60 s the first has left the window (it is half-open): 3 in it.
        assert!(!l.accept(t0 + secs(61.5), 1, Some(3)));
        // No limit: never over.
        assert!(!l.accept(t0 + secs(61.6), 1, None));
        assert_eq!(l.times().len(), 6);
        assert_eq!(l.wall_times().len(), 6);
    }

    #[test]
    fn quota_is_per_recipient_over_the_rolling_window() {
        let t0 = Instant::now();
        let mut l = Ledger::default();
        let budget = (50, secs(20.0));
        assert!(!l.over_quota(t0, 20, budget));
        l.accept(t0, 20, None);
        assert!(!l.over_quota(t0 + secs(1.0), 30, budget));
        l.accept(t0 + secs(1.0), 30, None);
        // Spent: even one more recipient is refused...
        assert!(l.over_quota(t0 + secs(2.0), 1, budget));
        // ...until the first 20 leave the window.
        assert!(l.over_quota(t0 + secs(19.9), 20, budget));
        assert!(!l.over_quota(t0 + secs(20.0), 20, budget));
        assert!(l.over_quota(t0 + secs(20.0), 21, budget));
        // A message bigger than the whole budget never fits.
        assert!(l.over_quota(t0 + secs(100.0), 51, budget));
    }

    #[test]
    fn max_in_window_finds_the_busiest_minute() {
        let t0 = Instant::now();
        assert_eq!(max_in_window(&[], MINUTE), 0);
        let times: Vec<Instant> = [0.0, 10.0, 59.0, 60.0, 61.0, 62.0, 200.0]
            .iter()
            .map(|&s| t0 + secs(s))
            .collect();
        // [10, 70) holds 10, 59, 60, 61, 62.
        assert_eq!(max_in_window(&times, MINUTE), 5);
        assert_eq!(max_in_window(&times, secs(1.0)), 1);
        assert_eq!(max_in_window(&times, secs(1000.0)), 7);
    }
}
