//! Stopping the engine never waits out a delivery pause: the lane's
//! back-off after `432 4.3.2` (a minute) and the throttle's wait for a full
//! minute window both end when shutdown is asked for. Real worker, real
//! spool, the fake Exchange; the clock is paused once the lane is in its
//! pause, so a wait that ignored shutdown would show as the clock jumping
//! a minute (tokio advances a paused clock to the next timer when idle).

use std::sync::Arc;
use std::time::Duration;

use postern_testkit::{FakeExchange, FakeExchangeOptions, Fault, Role, Stage};
use tokio::sync::watch;
use tokio::time::Instant;

use super::worker::{Worker, THREAD_LIMIT_BACKOFF};
use crate::auth::TokenSource;
use crate::config::Config;
use crate::engine::upstream_settings;
use crate::events::{Event, Events};
use crate::secrets::SecretStore;
use crate::spool::{ClientInfo, Envelope, Spool};
use crate::throttle::{Clock, Limits, Throttle, MINUTE};

/// For real-time waits on conditions (not a measurement).
const PATIENCE: Duration = Duration::from_secs(60);

struct Harness {
    _dir: tempfile::TempDir,
    spool: Spool,
    events: Events,
    worker: Worker,
    throttle_log: std::path::PathBuf,
}

async fn harness(exchange: &FakeExchange, limits: Limits, max_recipients: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let ca = exchange.write_ca_file(dir.path());
    let text = format!(
        "[upstream]\nmode = \"direct-send\"\nhost = \"localhost\"\nport = {}\ndomain = \"contoso.com\"\nca_file = \"{}\"\nmax_recipients = {max_recipients}\n[limits]\nmax_connections = 1\n",
        exchange.port(),
        ca.display()
    );
    let config = Arc::new(Config::parse(&text, std::path::Path::new("test.toml")).unwrap());
    let events = Events::new();
    let spool = Spool::open(&dir.path().join("spool"), events.clone())
        .await
        .unwrap();
    let throttle_log = dir.path().join("throttle.log");
    let throttle = Arc::new(Throttle::open(limits, Some(&throttle_log), Clock::system()).unwrap());
    let worker = Worker::new(
        config.clone(),
        spool.clone(),
        TokenSource::new(&config, SecretStore::new()),
        events.clone(),
        upstream_settings(&config, "postern.test"),
        throttle,
    );
    Harness {
        _dir: dir,
        spool,
        events,
        worker,
        throttle_log,
    }
}

async fn queue(spool: &Spool, rcpts: &[&str]) {
    let mut incoming = spool
        .begin(Envelope {
            mail_from: "scanner@contoso.com".into(),
            rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
            client: ClientInfo::default(),
            received_at: 0,
            smtputf8: false,
            eight_bit: false,
        })
        .await
        .unwrap();
    incoming
        .write(b"Subject: scan\r\n\r\nscan\r\n")
        .await
        .unwrap();
    incoming.commit().await.unwrap();
}

/// Pauses the clock, asks for shutdown, and returns how far the paused
/// clock moved before the worker stopped.
async fn stop_and_measure(stop: watch::Sender<bool>, run: tokio::task::JoinHandle<()>) -> Duration {
    tokio::time::pause();
    let t0 = Instant::now();
    stop.send_replace(true);
    run.await.unwrap();
    t0.elapsed()
}

#[tokio::test]
async fn shutdown_ends_the_thread_limit_back_off() {
    let exchange = FakeExchange::start(FakeExchangeOptions {
        role: Role::DirectSend,
        ..Default::default()
    })
    .await;
    exchange.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::MailFrom,
        reply: "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded".into(),
    }));
    let h = harness(&exchange, Limits::none(), 500).await;
    let mut events = h.events.subscribe();
    queue(&h.spool, &["bob@contoso.com"]).await;
    let (stop, rx) = watch::channel(false);
    let run = tokio::spawn(h.worker.run(rx));
    // The Deferred event is announced right before the lane's back-off.
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(Event::Deferred { reason, .. }) = events.recv().await {
                assert!(reason.contains("432 4.3.2"), "{reason}");
                return;
            }
        }
    })
    .await
    .expect("the 432 was never recorded");
    let moved = stop_and_measure(stop, run).await;
    assert!(
        moved < THREAD_LIMIT_BACKOFF,
        "the lane waited out its back-off ({moved:?}) instead of stopping"
    );
}

#[tokio::test]
async fn shutdown_ends_the_throttles_minute_wait() {
    let exchange = FakeExchange::start(FakeExchangeOptions {
        role: Role::DirectSend,
        ..Default::default()
    })
    .await;
    // One submission a minute, one recipient per submission: a message to
    // two recipients sends the first and waits a minute for the second.
    let limits = Limits {
        per_minute: Some(1),
        ..Limits::none()
    };
    let h = harness(&exchange, limits, 1).await;
    queue(&h.spool, &["bob@contoso.com", "carol@contoso.com"]).await;
    let (stop, rx) = watch::channel(false);
    let run = tokio::spawn(h.worker.run(rx));
    exchange.wait_for_messages(1, PATIENCE).await;
    // The first submission is recorded as accepted right before the lane
    // asks the throttle for the second.
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::fs::read_to_string(&h.throttle_log)
        .unwrap_or_default()
        .lines()
        .count()
        < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no submission recorded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let moved = stop_and_measure(stop, run).await;
    assert!(
        moved < MINUTE / 2,
        "the lane waited out the minute window ({moved:?}) instead of stopping"
    );
    assert_eq!(
        exchange.messages().len(),
        1,
        "the second half waits for a restart"
    );
    let q = h.spool.list();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].status.state, crate::spool::State::Deferred, "{q:?}");
}
