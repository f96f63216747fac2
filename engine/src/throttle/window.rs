//! The sliding-window arithmetic of one mailbox's history: how long a
//! submission must wait, and when a queue of them would be through.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Limits, Wait, MINUTE_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Submission {
    pub at: u64,
    pub rcpts: u32,
    /// Which slot this is (0 for submissions loaded from the history).
    pub seq: u64,
}

pub(super) fn keep_ms(limits: &Limits) -> u64 {
    (limits.window.as_millis() as u64).max(MINUTE_MS)
}

pub(super) fn prune(recent: &mut VecDeque<Submission>, now: u64, keep: u64) {
    while recent.front().is_some_and(|s| s.at + keep <= now) {
        recent.pop_front();
    }
}

/// How long a submission of `rcpts` must wait at time `now`, given the
/// submissions in `recent` (oldest first); None if it may start now.
pub(super) fn wait_at(
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
pub(super) fn simulate(
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
