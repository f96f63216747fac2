//! The throttle keyed by sending mailbox (`upstream.send_as = "sender"`):
//! each mailbox has its own windows, busy back-off, concurrency and
//! history lines; paused clock throughout.

use super::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn limits(per_minute: u32, per_window: u32) -> Limits {
    Limits {
        per_minute: Some(per_minute),
        per_window: Some(per_window),
        window: DAY,
    }
}

fn keyed(limits: Limits, path: Option<&Path>) -> Throttle {
    Throttle::open_keyed(
        limits,
        Some(2),
        "Relay@Contoso.com",
        path,
        Clock::starting_at(1_000_000),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_429_for_one_mailbox_leaves_the_others_sending() {
    let t = keyed(limits(30, 10_000), None);
    let asked = Duration::from_secs(90);
    let pause = t.server_busy(
        "alice@contoso.com",
        Duration::from_secs(60),
        DAY,
        Some(asked),
    );
    assert_eq!(pause, asked, "Graph's Retry-After is honoured as given");
    assert_eq!(
        t.try_acquire("ALICE@contoso.com", 1).unwrap_err(),
        Wait::Busy(asked),
        "the key is the lowercased address"
    );
    let bob = t
        .try_acquire("bob@contoso.com", 1)
        .expect("bob is not busy");
    t.accepted(bob).await;
    let relay = t
        .try_acquire("relay@contoso.com", 1)
        .expect("nor the relay");
    t.release(relay);
    let status = t.status(&[]);
    assert_eq!(
        status.busy_for_secs, None,
        "the configured mailbox is not busy"
    );
    let alice = status
        .mailboxes
        .iter()
        .find(|m| m.address == "alice@contoso.com")
        .expect("alice has a row");
    assert_eq!(alice.busy_for_secs, Some(90.0));
    tokio::time::sleep(asked).await;
    assert!(t.try_acquire("alice@contoso.com", 1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn budgets_and_minutes_are_counted_per_mailbox() {
    let t = keyed(limits(2, 5), None);
    for _ in 0..2 {
        let s = t.try_acquire("alice@contoso.com", 2).unwrap();
        t.accepted(s).await;
    }
    assert!(matches!(
        t.try_acquire("alice@contoso.com", 1),
        Err(Wait::Minute(_))
    ));
    tokio::time::sleep(MINUTE).await;
    assert!(
        matches!(t.try_acquire("alice@contoso.com", 2), Err(Wait::Budget(_))),
        "alice has 1 of 5 recipients left"
    );
    // Bob's budget and minute are untouched by Alice's.
    for _ in 0..2 {
        let s = t.try_acquire("bob@contoso.com", 2).unwrap();
        t.accepted(s).await;
    }
    let status = t.status(&[]);
    let rows: Vec<(&str, u64, Option<u64>)> = status
        .mailboxes
        .iter()
        .map(|m| {
            (
                m.address.as_str(),
                m.recipients_in_window,
                m.recipients_left,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("relay@contoso.com", 0, Some(5)),
            ("alice@contoso.com", 4, Some(1)),
            ("bob@contoso.com", 4, Some(1)),
        ]
    );
    assert_eq!(
        status.recipients_left,
        Some(5),
        "top level: the configured mailbox"
    );
    // A quota refusal for bob blocks bob only.
    t.quota_exceeded("bob@contoso.com", DAY);
    assert!(matches!(
        t.try_acquire("bob@contoso.com", 1),
        Err(Wait::Quota(_))
    ));
    assert!(t.try_acquire("relay@contoso.com", 1).is_ok());
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_capped_per_mailbox() {
    let t = Arc::new(keyed(limits(30, 10_000), None));
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let a1 = t.lease("alice@contoso.com", &shutdown).await.unwrap();
    let _a2 = t.lease("alice@contoso.com", &shutdown).await.unwrap();
    // Alice's third waits; Bob's first does not.
    let waiting = {
        let (t, shutdown) = (t.clone(), shutdown.clone());
        tokio::spawn(async move { t.lease("alice@contoso.com", &shutdown).await.is_some() })
    };
    let _b1 = t.lease("bob@contoso.com", &shutdown).await.unwrap();
    tokio::task::yield_now().await;
    assert!(
        !waiting.is_finished(),
        "alice's third must wait for one of hers"
    );
    let alice = |t: &Throttle| {
        t.status(&[])
            .mailboxes
            .into_iter()
            .find(|m| m.address == "alice@contoso.com")
            .unwrap()
            .in_flight
    };
    assert_eq!(alice(&t), 2);
    drop(a1);
    assert!(waiting.await.unwrap(), "given back: the waiter gets it");
    // At shutdown a waiting lease gives up.
    let (tx, shutdown) = tokio::sync::watch::channel(false);
    let _a3 = t.lease("alice@contoso.com", &shutdown).await.unwrap();
    let stopped = {
        let t = t.clone();
        tokio::spawn(async move { t.lease("alice@contoso.com", &shutdown).await.is_none() })
    };
    tx.send_replace(true);
    assert!(stopped.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn the_history_file_keeps_each_mailbox_and_reads_old_lines_as_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("throttle.log");
    // A line from before submissions were keyed: no mailbox.
    std::fs::write(&path, "999000 3\n").unwrap();
    {
        let t = keyed(limits(30, 100), Some(&path));
        let s = t.try_acquire("Bob@Contoso.com", 4).unwrap();
        t.accepted(s).await;
        let s = t.try_acquire("relay@contoso.com", 1).unwrap();
        t.accepted(s).await;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    // Rewritten at start with the mailbox named; appended to since.
    assert_eq!(
        text,
        "999000 3 relay@contoso.com\n1000000 4 bob@contoso.com\n1000000 1 relay@contoso.com\n"
    );
    let t = keyed(limits(30, 100), Some(&path));
    let status = t.status(&[]);
    assert_eq!(
        status.recipients_in_window, 4,
        "3 old + 1 new for the relay"
    );
    assert_eq!(status.mailboxes[1].address, "bob@contoso.com");
    assert_eq!(status.mailboxes[1].recipients_in_window, 4);
    // The chart counts every mailbox.
    let total: u64 = t
        .history(Duration::from_secs(3600))
        .iter()
        .map(|b| b.2)
        .sum();
    assert_eq!(total, 8);
}
