//! The details budget: Graph allows 100 `getDetailsByRecipient` requests
//! per 5 minutes; the tracker spends at most [`DETAILS_PER_WINDOW`] of them
//! in any [`DETAILS_WINDOW`] (a sliding window), leaving room for an admin
//! using the trace at the same time.

use std::collections::VecDeque;
use std::time::Duration;

pub const DETAILS_PER_WINDOW: u32 = 90;
pub const DETAILS_WINDOW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
pub struct DetailsBudget {
    /// Unix ms of the requests made within the window.
    spent: VecDeque<u64>,
}

impl DetailsBudget {
    fn forget_old(&mut self, now: u64) {
        let window = DETAILS_WINDOW.as_millis() as u64;
        while self.spent.front().is_some_and(|&t| t + window <= now) {
            self.spent.pop_front();
        }
    }

    /// Requests allowed now.
    pub fn left(&mut self, now: u64) -> u32 {
        self.forget_old(now);
        DETAILS_PER_WINDOW.saturating_sub(self.spent.len() as u32)
    }

    /// Takes one request from the budget; false when none is left.
    pub fn take(&mut self, now: u64) -> bool {
        if self.left(now) == 0 {
            return false;
        }
        self.spent.push_back(now);
        true
    }

    /// Graph said 429 to a details request: count the window as spent.
    pub fn exhaust(&mut self, now: u64) {
        while self.take(now) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ninety_per_five_minutes_sliding() {
        let mut b = DetailsBudget::default();
        for i in 0..DETAILS_PER_WINDOW {
            assert!(b.take(1_000 + i as u64), "request {i}");
        }
        assert!(!b.take(2_000));
        assert_eq!(b.left(1_000 + DETAILS_WINDOW.as_millis() as u64), 1);
        b.exhaust(400_000);
        assert_eq!(b.left(400_000), 0);
    }
}
