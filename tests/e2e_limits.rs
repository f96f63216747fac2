//! Staying inside Exchange Online's per-mailbox limits, end to end (issue
//! #4): the real `postern serve` against the fake Exchange enforcing them.
//!
//! - 30 messages per rolling minute: the fake counts every overrun (like
//!   Exchange it does not refuse them) and keeps each submission's time, so
//!   a test checks the busiest minute itself; Postern's ETA for a burst is
//!   compared with the drain it predicted.
//! - The recipient budget per rolling window (10,000 per 24 h; shortened
//!   here to 50 per 20 s): a message that does not fit waits, deferred,
//!   and goes out by itself when the window frees; one bigger than the
//!   whole budget fails at once; a `554 5.2.0 SubmissionQuotaExceeded` from
//!   a smaller real budget defers, never fails.
//! - Fairness between devices, and no second burst after a restart.
//!
//! Nothing sleeps to synchronise: upstream arrivals are awaited on the
//! fake, queue and status states are polled against deadlines. The one
//! measured duration (the burst's drain) is compared with Postern's own
//! prediction, not with a speed target.

mod support;

use std::time::{Duration, Instant};

use postern_testkit::{max_in_window, FakeExchangeOptions, IdentityOptions, Received, MINUTE};
use serde_json::Value;
use support::mail::{by_subject, field, none_failed};
use support::*;

/// Deadline for a paced backlog: well over the two minutes 80 messages
/// take at 30 a minute.
const PACED: Duration = Duration::from_secs(300);

/// The shortened recipient window both sides use.
const WINDOW: Duration = Duration::from_secs(20);

/// Sends `n` messages over one connection with smtplib, each to `rcpts`
/// recipients, Subject `{tag}-{i:04}`; logs in as `user` first if given.
fn send_burst(p: &Postern, n: usize, tag: &str, rcpts: usize, user: Option<(&str, &str)>) {
    let script = r#"
import smtplib, sys
host, port, n, tag, rcpts, user, pw = sys.argv[1:8]
n, rcpts = int(n), int(rcpts)
to = [f"r{j:03}@contoso.com" for j in range(rcpts)]
with smtplib.SMTP(host, int(port), timeout=60) as s:
    s.ehlo("device.test")
    if user:
        s.login(user, pw)
    for i in range(n):
        msg = (f"From: scanner@contoso.com\r\nTo: team@contoso.com\r\n"
               f"Subject: {tag}-{i:04}\r\n\r\nscan {i}\r\n")
        s.sendmail("scanner@contoso.com", to, msg)
"#;
    let (user, pw) = user.unwrap_or(("", ""));
    let out = python(
        script,
        &[
            &p.smtp.ip().to_string(),
            &p.smtp.port().to_string(),
            &n.to_string(),
            tag,
            &rcpts.to_string(),
            user,
            pw,
        ],
    );
    assert!(out.status.success(), "send {tag}: {}", text(&out));
}

fn status(p: &Postern) -> Value {
    p.cli_json(&["status"])
}

/// Polls `postern status --json` until `pred` holds (panics with the last
/// status and the log at the deadline).
fn wait_status(p: &Postern, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = status(p);
        if pred(&s) {
            return s;
        }
        if Instant::now() > deadline {
            panic!("status never showed: {what}\n{s:#}\nlog:\n{}", p.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages in the queue, whatever their state.
fn queue_total(s: &Value) -> u64 {
    s["queue"]
        .as_object()
        .map(|q| q.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

fn subject(m: &Received) -> String {
    let data = String::from_utf8_lossy(&m.data);
    data.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string()
}

/// Panics unless no rolling minute upstream held more than `limit`
/// submissions; the message shows the busiest minute's arrivals (ms after
/// its first) and where each later one fell.
fn assert_paced(up: &Upstream, limit: usize) {
    let times = up.exchange.submission_times();
    let busiest = max_in_window(&times, MINUTE);
    if busiest <= limit {
        return;
    }
    let in_minute_from = |i: usize| {
        times[i..]
            .iter()
            .take_while(|t| t.duration_since(times[i]) < MINUTE)
            .count()
    };
    let start = (0..times.len())
        .find(|&i| in_minute_from(i) == busiest)
        .unwrap_or(0);
    let offsets: Vec<u128> = times[start..start + busiest]
        .iter()
        .map(|t| t.duration_since(times[start]).as_millis())
        .collect();
    panic!(
        "{busiest} submissions in one rolling minute upstream (limit {limit}): \
         submissions {}..={} at +ms {offsets:?}",
        start + 1,
        start + busiest
    );
}

/// Mentions the recipient budget (reply or summary).
fn waits_for_budget(m: &Value) -> bool {
    let said = format!("{} {}", field(m, "last_reply"), field(m, "summary")).to_lowercase();
    said.contains("recipient") && said.contains("budget")
}

fn limits(cfg: &mut toml::Table, per_minute: i64) {
    set(cfg, "limits.messages_per_minute", per_minute);
    set(cfg, "limits.max_connections", 3);
}

fn budget(cfg: &mut toml::Table, recipients: i64) {
    set(cfg, "limits.recipients_per_day", recipients);
    set(cfg, "limits.recipient_window", "20s");
}

async fn upstream(opts: FakeExchangeOptions) -> Upstream {
    Upstream::start_with(opts, IdentityOptions::default()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_of_80_is_paced_at_30_a_minute_and_the_eta_holds() {
    let up = upstream(FakeExchangeOptions {
        messages_per_minute: Some(30),
        ..Default::default()
    })
    .await;
    let p = Postern::start_with(&up, |cfg| limits(cfg, 30)).await;
    send_burst(&p, 80, "burst", 1, None);

    // Right after the burst is queued: Postern's prediction of the drain.
    let deadline = Instant::now() + PATIENCE;
    let (asked, s, answered) = loop {
        let asked = Instant::now();
        let s = status(&p);
        let answered = Instant::now();
        if queue_total(&s) == 80 && s["throttle"]["eta_secs"].is_number() {
            break (asked, s, answered);
        }
        assert!(asked < deadline, "no ETA for the burst: {s:#}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let read_at = asked + (answered - asked) / 2;
    let eta = s["throttle"]["eta_secs"].as_f64().unwrap();
    let t = &s["throttle"];
    assert_eq!(t["messages_per_minute"], 30, "{s:#}");
    assert!(t["eta_unix_ms"].as_u64().is_some(), "{s:#}");
    assert!(s["connections"].as_u64().unwrap() <= 3, "{s:#}");

    let got = up.exchange.wait_for_messages(80, PACED).await;
    assert_eq!(got.len(), 80);
    let times = up.exchange.submission_times();
    let drained = times[79].duration_since(read_at).as_secs_f64();
    let allowed = eta * 0.05 + 2.0;
    eprintln!("burst of 80: ETA {eta:.2} s, drained in {drained:.2} s");
    assert!(
        (drained - eta).abs() <= allowed,
        "ETA {eta:.1} s, drained in {drained:.1} s (allowed ±{allowed:.1} s)\n{s:#}"
    );

    let stats = up.exchange.stats();
    assert_paced(&up, 30);
    assert_eq!(stats.over_limit_submissions, 0, "{stats:?}");
    assert_eq!(stats.throttle_replies, 0, "{stats:?}");
    assert!(stats.max_concurrent <= 3, "{stats:?}");
    p.wait_all(80, "sent");
    let done = status(&p);
    assert_eq!(done["throttle"]["eta_secs"].as_f64(), Some(0.0), "{done:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn recipient_budget_defers_the_third_message_until_the_window_frees() {
    let up = upstream(FakeExchangeOptions {
        recipients_per_window: Some((50, WINDOW)),
        ..Default::default()
    })
    .await;
    let p = Postern::start_with(&up, |cfg| budget(cfg, 50)).await;
    send_burst(&p, 3, "budget", 20, None);

    up.wait_for(2).await;
    let q = p.wait_queue("the third deferred for the recipient budget", |q| {
        q.len() == 3
            && q.iter().filter(|m| m["state"] == "sent").count() == 2
            && q.iter()
                .any(|m| m["state"] == "deferred" && waits_for_budget(m))
    });
    let waiting: Vec<&Value> = q.iter().filter(|m| m["state"] != "sent").collect();
    assert_eq!(waiting.len(), 1, "{q:#?}");
    let third = waiting[0]["subject"].as_str().unwrap().to_string();
    let s = status(&p);
    let t = &s["throttle"];
    assert_eq!(t["recipients_per_day"], 50, "{s:#}");
    assert_eq!(t["recipients_in_window"], 40, "{s:#}");
    assert_eq!(t["recipients_left"], 10, "{s:#}");
    assert_eq!(t["recipient_window_secs"].as_f64(), Some(20.0), "{s:#}");
    let free_in = t["recipients_free_in_secs"].as_f64().unwrap_or(-1.0);
    assert!(free_in > 0.0 && free_in <= 20.0, "{s:#}");
    assert!(t["eta_secs"].as_f64().is_some_and(|e| e > 0.0), "{s:#}");

    // Nobody retries it: it goes out when the window frees.
    let got = up.exchange.wait_for_messages(3, PACED).await;
    assert_eq!(subject(&got[2]), third);
    assert_eq!(got[2].rcpt_to.len(), 20);
    let q = p.wait_all(3, "sent");
    assert!(none_failed(&q));
    let stats = up.exchange.stats();
    let times = up.exchange.submission_times();
    assert_eq!(
        stats.quota_replies,
        0,
        "Postern went over the budget; accepted at +ms {:?}",
        times
            .iter()
            .map(|t| t.duration_since(times[0]).as_millis())
            .collect::<Vec<_>>()
    );
    assert_eq!(stats.messages, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn message_bigger_than_the_whole_budget_fails_at_once() {
    let up = upstream(FakeExchangeOptions {
        recipients_per_window: Some((50, WINDOW)),
        ..Default::default()
    })
    .await;
    let p = Postern::start_with(&up, |cfg| budget(cfg, 50)).await;
    send_burst(&p, 1, "huge", 60, None);

    let q = p.wait_queue("the 60-recipient message failed", |q| {
        q.len() == 1 && q[0]["state"] == "failed"
    });
    let m = by_subject(&q, "huge-0000");
    let summary = field(m, "summary").to_lowercase();
    assert!(
        summary.contains("more recipients than"),
        "the summary should say it has too many recipients: {m:#}"
    );
    assert!(
        waits_for_budget(m),
        "the reason should name the recipient budget: {m:#}"
    );
    let stats = up.exchange.stats();
    assert_eq!(stats.messages, 0, "nothing upstream");
    assert_eq!(stats.quota_replies, 0, "not even tried");
    assert!(up.exchange.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_reply_from_a_smaller_real_budget_defers_until_the_window_frees() {
    // Exchange's budget (10 per 20 s) is smaller than the configured 50:
    // Postern learns it from the 554 5.2.0.
    let up = upstream(FakeExchangeOptions {
        recipients_per_window: Some((10, WINDOW)),
        ..Default::default()
    })
    .await;
    let p = Postern::start_with(&up, |cfg| budget(cfg, 50)).await;
    send_burst(&p, 1, "first", 8, None);
    up.wait_for(1).await;
    send_burst(&p, 1, "second", 8, None);

    let q = p.wait_queue("the second deferred after 554 5.2.0", |q| {
        none_failed(q)
            && q.iter().any(|m| {
                m["subject"] == "second-0000"
                    && m["state"] == "deferred"
                    && (field(m, "last_reply").contains("5.2.0") || waits_for_budget(m))
            })
    });
    assert!(none_failed(&q), "{q:#?}");
    assert!(
        up.exchange.stats().quota_replies >= 1,
        "the fake never said 554 5.2.0"
    );
    let s = wait_status(&p, "quota_blocked_for_secs", |s| {
        s["throttle"]["quota_blocked_for_secs"].is_number()
    });
    let blocked = s["throttle"]["quota_blocked_for_secs"].as_f64().unwrap();
    assert!(blocked > 0.0 && blocked <= 20.0, "{s:#}");
    assert!(up.exchange.stats().quota_replies >= 1);

    // Delivered after the window frees, never failed on the way.
    let got = up.exchange.wait_for_messages(2, PACED).await;
    assert_eq!(subject(&got[1]), "second-0000");
    let q = p.wait_all(2, "sent");
    assert!(none_failed(&q));
    let blocked = status(&p)["throttle"]["quota_blocked_for_secs"].clone();
    assert!(
        blocked.is_null() || blocked.as_f64() == Some(0.0),
        "{blocked}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_device_is_not_stuck_behind_the_first_ones_backlog() {
    let up = upstream(FakeExchangeOptions {
        messages_per_minute: Some(30),
        ..Default::default()
    })
    .await;
    let p = Postern::start_with(&up, |cfg| {
        limits(cfg, 30);
        // Both clients are on 127.0.0.1: they tell themselves apart by AUTH.
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec!["a", "b"]);
    })
    .await;
    for (device, pw) in [("a", "pw-a"), ("b", "pw-b")] {
        let out = p.cli_stdin(&["account", "set-secret", "--device", device], pw);
        assert!(out.status.success(), "{}", text(&out));
    }
    send_burst(&p, 40, "a", 1, Some(("a", "pw-a")));
    send_burst(&p, 1, "b", 1, Some(("b", "pw-b")));

    let got = up.exchange.wait_for_messages(41, PACED).await;
    let order: Vec<String> = got.iter().map(subject).collect();
    let b = order.iter().position(|s| s == "b-0000").expect("b arrived");
    let a_last = order.iter().position(|s| s == "a-0039").expect("a's 40th");
    assert!(b < a_last, "b waited for all of a's backlog: {order:?}");
    // a's first minute may be gone before b even connects; after that b is
    // next in turn. Up to max_connections lanes may already hold one of a's
    // messages, waiting for the minute to free, when b's arrives.
    assert!(b < 30 + 3, "b was submission {} of 41: {order:?}", b + 1);
    // Within a device, oldest first: handed out in order, so an arrival is
    // out of place by less than the number of lanes racing upstream.
    let a_order: Vec<&String> = order.iter().filter(|s| s.starts_with("a-")).collect();
    for (rank, s) in a_order.iter().enumerate() {
        let i: usize = s[2..].parse().unwrap();
        assert!(
            rank.abs_diff(i) < 3,
            "a's messages not oldest first: {a_order:?}"
        );
    }
    assert_paced(&up, 30);
    assert_eq!(up.exchange.stats().over_limit_submissions, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_burst_does_not_reset_the_minute() {
    let up = upstream(FakeExchangeOptions {
        messages_per_minute: Some(30),
        ..Default::default()
    })
    .await;
    let mut p = Postern::start_with(&up, |cfg| limits(cfg, 30)).await;
    send_burst(&p, 40, "restart", 1, None);
    up.wait_for(30).await;
    assert!(p.stop().success(), "{}", p.log());
    p.spawn();

    let got = up.exchange.wait_for_messages(40, PACED).await;
    let mut subjects: Vec<String> = got.iter().map(subject).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 40, "every message once");
    assert_paced(&up, 30);
    assert_eq!(up.exchange.stats().over_limit_submissions, 0);
    p.wait_all(40, "sent");
}
