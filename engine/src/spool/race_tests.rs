//! Races on one message's status, made to happen: a status write held at a
//! hook while a newer change lands, and a stress run of retry / retry-all /
//! release / claim / update over many messages at once. Each message must
//! be delivered exactly once, and the state on disk after a reopen must be
//! the state in memory before it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Semaphore;

use super::*;

/// Test hooks inside the spool.
#[derive(Default)]
pub(super) struct Hooks {
    /// When set, every status write waits here (inside its message's
    /// write lock) for a permit; `arrived` is told first.
    gate: Mutex<Option<Arc<Semaphore>>>,
    arrived: Notify,
}

impl Hooks {
    pub(super) async fn before_write(&self) {
        let gate = self.gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            self.arrived.notify_one();
            gate.acquire().await.expect("gate open").forget();
        }
    }
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope {
        mail_from: "scanner@contoso.com".into(),
        rcpt_to: to.iter().map(|s| s.to_string()).collect(),
        received_at: now_ms(),
        ..Default::default()
    }
}

async fn receive(spool: &Spool, i: usize) -> MessageId {
    let mut env = envelope(&["a@x.com"]);
    // Several devices, so the fair claim order mixes them.
    env.client.peer = format!("192.168.1.{}:2525", i % 7);
    let mut inc = spool.begin(env).await.unwrap();
    inc.write(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
        .await
        .unwrap();
    inc.commit().await.unwrap()
}

fn sent(s: &mut Status) {
    s.state = State::Sent;
    for r in &mut s.recipients {
        r.state = RecipientState::Sent;
    }
}

/// Update A is held at its status write while update B (newer) lands in
/// memory; when A goes on, the file gets B's state, never A's older one.
/// (Before: each update wrote the status it had made, after releasing the
/// lock, through the same temporary file, so A's older state landed last
/// and a delivered message was queued again after a restart.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_state_never_lands_on_disk_after_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let id = receive(&spool, 0).await;
    let gate = Arc::new(Semaphore::new(0));
    *spool.inner.hooks.gate.lock().unwrap() = Some(gate.clone());

    let arrived = spool.inner.hooks.arrived.notified();
    let a = tokio::spawn({
        let (spool, id) = (spool.clone(), id.clone());
        async move {
            spool
                .update(&id, |s| {
                    s.state = State::Deferred;
                    s.next_attempt = Some(now_ms() + 3_600_000);
                })
                .await
        }
    });
    arrived.await; // A holds its message's write lock, at the gate
    let b = tokio::spawn({
        let (spool, id) = (spool.clone(), id.clone());
        async move { spool.update(&id, sent).await }
    });
    while spool.get(&id).unwrap().status.state != State::Sent {
        tokio::task::yield_now().await; // B's change is in memory
    }
    *spool.inner.hooks.gate.lock().unwrap() = None;
    gate.add_permits(2);
    a.await.unwrap().unwrap();
    b.await.unwrap().unwrap();
    let in_memory = spool.get(&id).unwrap().status;
    drop(spool);

    let reopened = Spool::open(dir.path(), Events::new()).await.unwrap();
    assert_eq!(reopened.get(&id).unwrap().status, in_memory);
    assert_eq!(in_memory.state, State::Sent);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("msg"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A change that changes nothing writes nothing (release_held on a
/// message that is not held, a retry of a sent one).
#[tokio::test]
async fn a_no_op_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let id = receive(&spool, 0).await;
    spool.update(&id, sent).await.unwrap();
    let state_file = dir.path().join("msg").join(format!("{id}.state"));
    std::fs::remove_file(&state_file).unwrap();
    spool.release_held().await.unwrap();
    spool.retry(&id).await.unwrap();
    spool.update(&id, sent).await.unwrap();
    assert!(!state_file.exists(), "no write for a change of nothing");
}

/// Retry refuses a message that is being sent, in the same step that
/// would change it: no lane can claim it in between.
#[tokio::test]
async fn retry_of_a_message_being_sent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let id = receive(&spool, 0).await;
    let claim = spool.claim_next(now_ms()).expect("due");
    assert_eq!(claim.id, id);
    assert!(matches!(spool.retry(&id).await, Err(SpoolError::Busy(_))));
    assert!(spool.claim_next(now_ms()).is_none(), "still being sent");
}

/// Three lanes deliver while others hammer retry, retry-all, release and
/// no-op updates on the same messages: every message is delivered exactly
/// once, and after a reopen the disk holds what memory held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retry_release_claim_update_deliver_each_message_once() {
    const MESSAGES: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..MESSAGES {
        ids.push(receive(&spool, i).await);
    }
    let deliveries: Arc<Mutex<HashMap<MessageId, usize>>> = Default::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..3u64 {
        let (spool, deliveries, stop) = (spool.clone(), deliveries.clone(), stop.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Some(claim) = spool.claim_next(now_ms()) else {
                    tokio::task::yield_now().await;
                    continue;
                };
                n += 1;
                // The first attempts are deferred, due at once: the
                // retries below then race the lanes for each message.
                if claim.attempts < 3 && !(n + lane).is_multiple_of(4) {
                    spool
                        .update(&claim.id, |s| {
                            s.state = State::Deferred;
                            s.attempts += 1;
                            s.next_attempt = Some(0);
                        })
                        .await
                        .unwrap();
                    continue;
                }
                *deliveries
                    .lock()
                    .unwrap()
                    .entry(claim.id.clone())
                    .or_default() += 1;
                spool.update(&claim.id, sent).await.unwrap();
            }
        });
    }
    for k in 0..3usize {
        let (spool, ids, stop) = (spool.clone(), ids.clone(), stop.clone());
        tasks.spawn(async move {
            let mut i = k;
            while !stop.load(Ordering::Relaxed) {
                let id = &ids[(i * 7919) % ids.len()];
                i += 1;
                match i % 4 {
                    0 => drop(spool.retry(id).await),
                    1 => drop(spool.release_held().await),
                    2 => drop(spool.retry_all().await),
                    _ => drop(spool.update(id, |_| {}).await),
                }
                tokio::task::yield_now().await;
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let all_sent = spool.counts().get(&State::Sent).copied() == Some(MESSAGES);
        if all_sent || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let counts = deliveries.lock().unwrap().clone();
    assert_eq!(spool.counts().get(&State::Sent).copied(), Some(MESSAGES));
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(counts.len(), MESSAGES);

    let memory: Vec<MessageInfo> = spool.list();
    drop(spool);
    let reopened = Spool::open(dir.path(), Events::new()).await.unwrap();
    let disk = reopened.list();
    assert_eq!(disk.len(), memory.len());
    for (m, d) in memory.iter().zip(&disk) {
        assert_eq!(m.status, d.status, "{}", m.id);
    }
}
