//! Spool tests: what is committed survives a reopen, what is not never
//! appears, and states move as the worker expects.

use super::*;

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: from.into(),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

async fn receive(spool: &Spool, content: &[u8]) -> MessageId {
    let mut inc = spool
        .begin(envelope("scanner@contoso.com", &["a@x.com", "b@x.com"]))
        .await
        .unwrap();
    for chunk in content.chunks(7) {
        inc.write(chunk).await.unwrap();
    }
    inc.commit().await.unwrap()
}

#[tokio::test]
async fn committed_messages_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let content = b"Subject: Scan 42\r\n\r\nbody\r\n";
    let id = {
        let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
        receive(&spool, content).await
    };
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let info = spool.get(&id).unwrap();
    assert_eq!(info.subject, "Scan 42");
    assert_eq!(info.size, content.len() as u64);
    assert_eq!(info.status.state, State::Queued);
    assert_eq!(spool.read_content(&id).await.unwrap(), content);
}

#[tokio::test]
async fn uncommitted_messages_vanish() {
    let dir = tempfile::tempdir().unwrap();
    {
        let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
        let mut inc = spool.begin(envelope("a@b.c", &["d@e.f"])).await.unwrap();
        inc.write(b"half a mess").await.unwrap();
        // A crash mid-DATA leaves the temp file behind: copy it aside before
        // the Incoming's drop removes it, and put it back as the crash would.
        let part = std::fs::read_dir(dir.path().join("tmp"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let saved = std::fs::read(&part).unwrap();
        inc.discard().await;
        std::fs::write(&part, saved).unwrap();
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        1
    );
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    assert!(spool.list().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test]
async fn second_engine_cannot_open_the_same_spool() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Spool::open(dir.path(), Events::new()).await.unwrap();
    let err = Spool::open(dir.path(), Events::new()).await.err().unwrap();
    assert!(matches!(err, SpoolError::Locked(_)), "{err}");
}

#[tokio::test]
async fn sending_goes_back_to_queued_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
        let id = receive(&spool, b"x\r\n").await;
        let claim = spool.claim_next(now_ms()).unwrap();
        assert_eq!(claim.id, id);
        assert_eq!(spool.get(&id).unwrap().status.state, State::Sending);
        assert!(spool.claim_next(now_ms()).is_none(), "claimed twice");
        id
    };
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    assert_eq!(spool.get(&id).unwrap().status.state, State::Queued);
}

#[tokio::test]
async fn final_states_and_recipients_persist() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
        let id = receive(&spool, b"x\r\n").await;
        spool.claim_next(now_ms()).unwrap();
        spool
            .update(&id, |s| {
                s.recipients[0].state = RecipientState::Sent;
                s.recipients[1].state = RecipientState::Failed;
                s.recipients[1].reply = Some("550 5.1.10 nope".into());
                s.state = State::Sent;
                s.attempts = 1;
            })
            .await
            .unwrap();
        id
    };
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let info = spool.get(&id).unwrap();
    assert_eq!(info.status.state, State::Sent);
    assert_eq!(info.status.recipients[1].state, RecipientState::Failed);
    assert!(spool.claim_next(now_ms()).is_none());
    // Retry makes the failed recipient pending again.
    spool.retry(&id).await.unwrap();
    let claim = spool.claim_next(now_ms()).unwrap();
    assert_eq!(claim.pending, vec!["b@x.com".to_string()]);
}

#[tokio::test]
async fn deferred_messages_wait_for_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let id = receive(&spool, b"x\r\n").await;
    spool.claim_next(now_ms()).unwrap();
    let later = now_ms() + 60_000;
    spool
        .update(&id, |s| {
            s.state = State::Deferred;
            s.next_attempt = Some(later);
        })
        .await
        .unwrap();
    assert!(spool.claim_next(now_ms()).is_none());
    assert_eq!(spool.next_due(), Some(later));
    assert!(spool.claim_next(later).is_some());
}

#[tokio::test]
async fn delete_and_prune_remove_files() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let a = receive(&spool, b"a\r\n").await;
    let b = receive(&spool, b"b\r\n").await;
    spool.delete(&a).await.unwrap();
    assert!(matches!(
        spool.delete(&a).await,
        Err(SpoolError::NotFound(_))
    ));
    spool.claim_next(now_ms()).unwrap();
    spool.update(&b, |s| s.state = State::Failed).await.unwrap();
    assert_eq!(spool.prune(now_ms(), 3_600_000, 0).await, 0);
    assert_eq!(spool.prune(now_ms() + 3_600_001, 3_600_000, 0).await, 1);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("msg")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Claims `id` and records it sent (the tracker done with it or not);
/// returns the handoff time.
async fn handed_over(spool: &Spool, id: &MessageId, done: bool) -> u64 {
    spool.claim_next(now_ms()).unwrap();
    let at = now_ms();
    spool
        .update(id, |s| {
            s.state = State::Sent;
            s.handoff = Some(Handoff {
                at,
                sender: "scanner@contoso.com".into(),
            });
            s.tracking_done = done;
        })
        .await
        .unwrap();
    at
}

/// A sent message the tracker still follows outlives `keep_history`; once
/// tracking is done (or `tracking.for` ran out) it is pruned as before.
#[tokio::test]
async fn prune_keeps_what_the_tracker_still_follows() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let id = receive(&spool, b"Message-ID: <p1@scanner>\r\n\r\nx\r\n").await;
    assert_eq!(
        spool.get(&id).unwrap().message_id.as_deref(),
        Some("p1@scanner")
    );
    let sent_at = handed_over(&spool, &id, false).await;
    let hour = 3_600_000;
    let day = 24 * hour;
    // keep_history 1 h, tracking.for 2 days: kept at 2 h, pruned after 2 days.
    assert_eq!(spool.prune(sent_at + 2 * hour, hour, 2 * day).await, 0);
    assert!(spool.get(&id).is_some());
    assert_eq!(spool.prune(sent_at + 2 * day + 1, hour, 2 * day).await, 1);

    let id = receive(&spool, b"y\r\n").await;
    let sent_at = handed_over(&spool, &id, true).await;
    assert_eq!(
        spool.prune(sent_at + 2 * hour, hour, 2 * day).await,
        1,
        "done: pruned as before"
    );
}

#[test]
fn message_ids_are_strict() {
    assert!("0123456789abcdef".parse::<MessageId>().is_ok());
    assert!("0123456789ABCDEF".parse::<MessageId>().is_ok());
    for bad in [
        "",
        "../../etc/passwd",
        "0123456789abcdeg",
        "0123456789abcdef0",
    ] {
        assert!(bad.parse::<MessageId>().is_err(), "{bad}");
    }
}

#[tokio::test]
async fn devices_take_turns_oldest_first_within_each() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let from = |peer: &str, user: Option<&str>| Envelope {
        mail_from: "a@b.c".into(),
        rcpt_to: vec!["d@e.f".into()],
        client: ClientInfo {
            peer: peer.into(),
            auth_user: user.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut ids = Vec::new();
    // A burst from the app server, then one scan from the scanner, then a
    // device that logged in (same IP as the app server, but its own turn).
    for i in 0..5 {
        let mut inc = spool
            .begin(from(&format!("10.0.0.5:{}", 40000 + i), None))
            .await
            .unwrap();
        inc.write(b"x\r\n").await.unwrap();
        ids.push(("app", inc.commit().await.unwrap()));
    }
    for (name, peer, user) in [
        ("scan", "10.0.0.9:1", None),
        ("auth", "10.0.0.5:2", Some("mfp")),
    ] {
        let mut inc = spool.begin(from(peer, user)).await.unwrap();
        inc.write(b"x\r\n").await.unwrap();
        ids.push((name, inc.commit().await.unwrap()));
    }
    let name_of = |id: &MessageId| ids.iter().find(|(_, i)| i == id).unwrap().0;
    let order: Vec<&str> = (0..7)
        .map(|_| name_of(&spool.claim_next(now_ms()).unwrap().id))
        .collect();
    assert_eq!(order, ["app", "scan", "auth", "app", "app", "app", "app"]);
}

/// A spool directory another user owns is refused, naming the fix.
#[cfg(unix)]
#[tokio::test]
async fn a_spool_owned_by_someone_else_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // only root can give a directory away (CI runs as root)
    }
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    std::fs::create_dir(&spool_dir).unwrap();
    std::os::unix::fs::chown(&spool_dir, Some(65534), Some(65534)).unwrap();
    let err = Spool::open(&spool_dir, Events::new())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains("belongs to another user"), "{text}");
    assert!(!spool_dir.join("msg").exists(), "nothing created in it");
}

#[tokio::test]
async fn a_dropped_message_loses_its_part_file_off_the_async_threads() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let parts = || std::fs::read_dir(dir.path().join("tmp")).unwrap().count();
    let mut inc = spool.begin(envelope("a@b.c", &["d@e.f"])).await.unwrap();
    inc.write(b"refused").await.unwrap();
    assert_eq!(parts(), 1);
    inc.discard().await;
    assert_eq!(
        parts(),
        0,
        "discard removes the part file before it returns"
    );
    // Dropped without a word (the device vanished): removed on the blocking pool.
    let mut inc = spool.begin(envelope("a@b.c", &["d@e.f"])).await.unwrap();
    inc.write(b"gone").await.unwrap();
    drop(inc);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while parts() > 0 {
        assert!(std::time::Instant::now() < deadline, "the part file stayed");
        tokio::task::yield_now().await;
    }
}
