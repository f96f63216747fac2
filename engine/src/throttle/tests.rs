//! Throttle tests with tokio's paused clock: what the windows let through,
//! when, and that the history survives a restart.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn microsoft() -> Limits {
    Limits {
        per_minute: Some(30),
        per_window: Some(10_000),
        window: DAY,
    }
}

/// Acquires `n` submissions of `rcpts` each, waiting out every kind of
/// wait; returns the clock reading of each.
async fn run(t: &Throttle, n: usize, rcpts: u32) -> Vec<u64> {
    let mut at = Vec::new();
    for _ in 0..n {
        loop {
            match t.try_acquire("", rcpts) {
                Ok(slot) => {
                    t.accepted(slot).await;
                    break;
                }
                Err(w) => tokio::time::sleep(w.duration()).await,
            }
        }
        at.push(t.clock.now());
    }
    at
}

fn max_in_any_minute(times: &[u64]) -> usize {
    times
        .iter()
        .enumerate()
        .map(|(i, a)| {
            times[i..]
                .iter()
                .take_while(|b| **b - *a < MINUTE_MS)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_100_gets_exactly_30_in_the_first_minute_then_paced() {
    let t = Throttle::open(microsoft(), None, Clock::starting_at(1_000_000)).unwrap();
    let times = run(&t, 100, 1).await;
    let start = times[0];
    assert_eq!(times.iter().filter(|x| **x - start < MINUTE_MS).count(), 30);
    assert_eq!(
        max_in_any_minute(&times),
        30,
        "no rolling minute holds more than 30"
    );
    // Full use of the budget: the 100th goes at the start of the 4th minute.
    assert_eq!(times[99] - start, 3 * MINUTE_MS);
}

#[tokio::test(start_paused = true)]
async fn the_recipient_window_rolls_with_large_messages() {
    let limits = Limits {
        per_minute: Some(30),
        per_window: Some(1_000),
        window: DAY,
    };
    let t = Throttle::open(limits, None, Clock::starting_at(0)).unwrap();
    // Four messages of 300 recipients: the fourth does not fit today.
    run(&t, 3, 300).await;
    tokio::time::sleep(HOUR).await;
    match t.try_acquire("", 300) {
        Err(Wait::Budget(d)) => assert_eq!(d, DAY - HOUR, "frees when the first 300 leave"),
        other => panic!("expected a budget wait, got {other:?}"),
    }
    // 100 still fit now.
    assert!(t.try_acquire("", 100).is_ok());
    let s = t.status(&[]);
    assert_eq!(s.recipients_in_window, 1_000);
    assert_eq!(s.recipients_left, Some(0));
    tokio::time::sleep(DAY - HOUR).await;
    assert!(
        t.try_acquire("", 300).is_ok(),
        "the window rolled, not a calendar day"
    );
    assert!(t.exceeds_budget(1_001) && !t.exceeds_budget(1_000));
}

#[tokio::test(start_paused = true)]
async fn a_restart_mid_burst_does_not_allow_a_second_burst() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("throttle.log");
    let start = 5_000_000;
    {
        let t = Throttle::open(microsoft(), Some(&path), Clock::starting_at(start)).unwrap();
        run(&t, 30, 2).await;
    }
    // Restarted 10 seconds later: the minute is still full.
    let t = Throttle::open(microsoft(), Some(&path), Clock::starting_at(start + 10_000)).unwrap();
    match t.try_acquire("", 1) {
        Err(Wait::Minute(d)) => assert_eq!(d, Duration::from_secs(50)),
        other => panic!("a second burst was let through: {other:?}"),
    }
    assert_eq!(t.status(&[]).recipients_in_window, 60);
    // A day later the history has expired and the file was compacted.
    drop(t);
    let t = Throttle::open(
        microsoft(),
        Some(&path),
        Clock::starting_at(start + DAY.as_millis() as u64),
    )
    .unwrap();
    assert_eq!(t.status(&[]).recipients_in_window, 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
}

#[tokio::test(start_paused = true)]
async fn quota_refusal_blocks_until_the_window_frees() {
    let t = Throttle::open(microsoft(), None, Clock::starting_at(0)).unwrap();
    run(&t, 1, 5).await;
    tokio::time::sleep(HOUR).await;
    // The refused submission itself (3 recipients) did not count upstream.
    let refused = t.try_acquire("", 3).unwrap();
    t.release(refused);
    let blocked = t.quota_exceeded("", HOUR);
    assert_eq!(blocked, DAY - HOUR);
    assert!(matches!(t.try_acquire("", 1), Err(Wait::Quota(_))));
    assert!(t.status(&[]).quota_blocked_for_secs.is_some());
    tokio::time::sleep(blocked).await;
    assert!(t.try_acquire("", 1).is_ok());
    // With nothing of ours in the window, someone else spent the budget:
    // try again after the fallback.
    let t = Throttle::open(microsoft(), None, Clock::starting_at(0)).unwrap();
    assert_eq!(t.quota_exceeded("", HOUR), HOUR);
}

#[tokio::test(start_paused = true)]
async fn eta_matches_what_the_windows_then_allow() {
    let t = Throttle::open(microsoft(), None, Clock::starting_at(0)).unwrap();
    run(&t, 10, 1).await;
    let demand = vec![1u32; 80];
    let eta = t.status(&demand).eta_secs.unwrap();
    let before = t.clock.now();
    let times = run(&t, 80, 1).await;
    let actual = (times[79] - before) as f64 / 1000.0;
    assert_eq!(eta, actual, "the ETA is the simulation of the same windows");
    // 10 already used + 80: the last of them goes at the start of minute 3.
    assert_eq!(actual, 120.0);
    assert_eq!(t.status(&[]).eta_secs, Some(0.0));
    // A submission that can never fit has no ETA.
    assert_eq!(t.status(&[20_000]).eta_secs, None);
}

#[test]
fn no_limits_never_wait() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let t = Throttle::in_memory(Limits::none());
        for _ in 0..1000 {
            assert!(t.try_acquire("", 500).is_ok());
        }
        assert_eq!(t.status(&[1; 100]).eta_secs, Some(0.0));
    });
}

#[tokio::test(start_paused = true)]
async fn server_busy_pauses_everyone_and_doubles_while_it_lasts() {
    let t = Throttle::open(microsoft(), None, Clock::starting_at(0)).unwrap();
    let base = Duration::from_secs(60);
    assert_eq!(t.server_busy("", base, HOUR, None), base);
    assert!(matches!(t.try_acquire("", 1), Err(Wait::Busy(_))));
    assert!(matches!(t.wait_for("", 1), Some(Wait::Busy(_))));
    tokio::time::sleep(base).await;
    assert!(t.try_acquire("", 1).is_ok());
    assert_eq!(
        t.server_busy("", base, HOUR, None),
        2 * base,
        "busy again: twice as long"
    );
    tokio::time::sleep(2 * base).await;
    t.server_ok("");
    assert_eq!(
        t.server_busy("", base, HOUR, None),
        base,
        "a success resets the back-off"
    );
}

#[tokio::test(start_paused = true)]
async fn history_buckets_what_was_sent() {
    let t = Throttle::open(
        microsoft(),
        None,
        Clock::starting_at(DAY.as_millis() as u64),
    )
    .unwrap();
    run(&t, 2, 3).await;
    tokio::time::sleep(HOUR).await;
    run(&t, 1, 4).await;
    let h = t.history(HOUR);
    assert_eq!(h.len(), 25);
    let (msgs, rcpts): (u32, u64) = h.iter().fold((0, 0), |a, b| (a.0 + b.1, a.1 + b.2));
    assert_eq!((msgs, rcpts), (3, 10));
    assert_eq!((h[23].1, h[24].1), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_slot_counts_from_when_microsoft_accepted_it() {
    let t = Throttle::open(microsoft(), None, Clock::starting_at(0)).unwrap();
    // 30 slots taken at once; the messages take 5 s to be accepted (a new
    // connection and sign-in), and Microsoft counts them from then.
    let slots: Vec<Slot> = (0..30).map(|_| t.try_acquire("", 1).unwrap()).collect();
    assert!(
        matches!(t.try_acquire("", 1), Err(Wait::Minute(_))),
        "in-flight slots count"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    for s in slots {
        t.accepted(s).await;
    }
    tokio::time::sleep(Duration::from_secs(55)).await;
    match t.try_acquire("", 1) {
        Err(Wait::Minute(d)) => assert_eq!(d, Duration::from_secs(5)),
        other => panic!("the next minute must start from the acceptances: {other:?}"),
    }
    // A refused submission gives its slot back.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let slot = t.try_acquire("", 1).unwrap();
    assert_eq!(t.status(&[]).messages_last_minute, 1);
    t.release(slot);
    assert_eq!(t.status(&[]).messages_last_minute, 0);
}
