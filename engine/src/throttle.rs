//! Pacing inside Microsoft's limits for one mailbox: at most
//! `messages_per_minute` submissions in any rolling 60 seconds. Exchange
//! does not refuse a sender that goes faster, it quietly slows it down, so
//! Postern paces itself. (The 24-hour recipient budget, persistence across
//! restarts and the drain ETA build on this in the limits issue.)

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The rolling window Microsoft counts messages in.
pub const MINUTE: Duration = Duration::from_secs(60);

/// Who owns it: the delivery worker; every connection lane asks it before a
/// submission. Time comes from tokio's clock, so tests can pause it.
pub struct Throttle {
    per_minute: Option<u32>,
    /// Submission instants inside the last minute, oldest first.
    recent: Mutex<VecDeque<Instant>>,
}

/// What the status view shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ThrottleStatus {
    pub messages_per_minute: Option<u32>,
    pub messages_last_minute: usize,
    /// Seconds until the next submission may start (0 = now).
    pub next_slot_in_secs: f64,
}

impl Throttle {
    /// `None` means no pacing (connector relay, Direct Send).
    pub fn new(per_minute: Option<u32>) -> Throttle {
        Throttle {
            per_minute,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes a submission slot if one is free now; otherwise says how long
    /// until one is.
    pub fn try_acquire(&self) -> Result<(), Duration> {
        let Some(limit) = self.per_minute else {
            return Ok(());
        };
        let now = Instant::now();
        let mut recent = self.recent.lock().unwrap();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= MINUTE)
        {
            recent.pop_front();
        }
        if recent.len() < limit as usize {
            recent.push_back(now);
            Ok(())
        } else {
            let oldest = *recent.front().expect("window is full");
            Err(MINUTE - now.duration_since(oldest))
        }
    }

    /// Waits for a submission slot and takes it.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_acquire() {
            tokio::time::sleep(wait).await;
        }
    }

    pub fn status(&self) -> ThrottleStatus {
        let now = Instant::now();
        let recent = self.recent.lock().unwrap();
        let in_window: Vec<&Instant> = recent
            .iter()
            .filter(|t| now.duration_since(**t) < MINUTE)
            .collect();
        let next = match self.per_minute {
            Some(limit) if in_window.len() >= limit as usize => {
                (MINUTE - now.duration_since(*in_window[0])).as_secs_f64()
            }
            _ => 0.0,
        };
        ThrottleStatus {
            messages_per_minute: self.per_minute,
            messages_last_minute: in_window.len(),
            next_slot_in_secs: next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_100_gets_30_per_rolling_minute() {
        let t = Throttle::new(Some(30));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..100 {
            t.acquire().await;
            times.push(start.elapsed());
        }
        assert_eq!(times.iter().filter(|d| **d < MINUTE).count(), 30);
        // No 60-second window ever holds more than 30 submissions.
        for (i, a) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|b| **b - *a < MINUTE).count();
            assert!(
                in_window <= 30,
                "window starting at {a:?} holds {in_window}"
            );
        }
        assert_eq!(times[99], Duration::from_secs(180));
    }

    #[test]
    fn no_limit_never_waits() {
        let t = Throttle::new(None);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..1000 {
                assert!(t.try_acquire().is_ok());
            }
        });
    }
}
