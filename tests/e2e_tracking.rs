//! Tracking after the handoff (issue #14), against the real `postern
//! serve`, the fake identity platform and the fake Graph's message trace:
//! one message to three recipients where one is delivered, one bounces
//! with 5.1.10 after Microsoft took it and one is filtered as spam, through
//! a restart; the trace asked once per poll however many messages wait;
//! Retry-After obeyed; tracking after SMTP submission too; and tracking
//! that cannot work saying why.

mod support;

use postern_testkit::{GraphFault, RequestKind, TraceOptions, TraceOutcome};
use serde_json::Value;
use support::graph::{send_raw, GraphUpstream};
use support::*;

const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@fabrikam.com";
const CAROL: &str = "carol@fabrikam.com";
const TRACE_ROLES: &[&str] = &["Mail.Send", "ExchangeMessageTrace.Read.All"];

fn message(subject: &str, to: &[&str]) -> Vec<u8> {
    format!(
        "From: Scanner <{MAILBOX}>\r\nTo: {}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@scanner.test>\r\n\r\nYour scan.\r\n",
        to.join(", ")
    )
    .into_bytes()
}

fn poll_fast(c: &mut toml::Table) {
    set(c, "tracking.poll", "1s");
}

/// The recipients of queue entry `m` by address.
fn traces(m: &Value) -> Vec<(String, Value)> {
    m["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_string(),
                r["trace"].clone(),
            )
        })
        .collect()
}

fn outcome(m: &Value, who: &str) -> String {
    traces(m)
        .into_iter()
        .find(|(a, _)| a == who)
        .map(|(_, t)| t["outcome"].as_str().unwrap_or("none").to_string())
        .unwrap()
}

fn all_settled(q: &[Value]) -> bool {
    !q.is_empty() && q.iter().all(|m| m["tracking_done"] == true)
}

/// The "done when": accepted by Microsoft, later bounced by one
/// recipient's side — bounced for that recipient with the reason and the
/// fix, the others delivered / spam; a restart halfway loses nothing.
#[tokio::test(flavor = "multi_thread")]
async fn three_recipients_delivered_bounced_and_spam_through_a_restart() {
    let trace = TraceOptions {
        hidden_lists: 2,
        getting_status_lists: 1,
        ..Default::default()
    };
    let g = GraphUpstream::start_traced(TRACE_ROLES, &[], trace).await;
    g.graph
        .set_trace_outcome(BOB, TraceOutcome::failed("5.1.10"));
    g.graph
        .set_trace_outcome(CAROL, TraceOutcome::FilteredAsSpam);
    let mut p = g.serve(poll_fast).await;
    let reply = send_raw(
        &p,
        &message("three", &[ALICE, BOB, CAROL]),
        &[ALICE, BOB, CAROL],
    );
    assert!(reply.starts_with("250"), "{reply}");
    let delivered = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(
        delivered[0].internet_message_id.as_deref(),
        Some("<three@scanner.test>")
    );

    // Microsoft took it; the trace does not list it yet: pending, kept on disk.
    let q = p.wait_queue("the trace asked once, nothing in it yet", |q| {
        q.len() == 1 && traces(&q[0]).iter().all(|(_, t)| t["outcome"] == "pending")
    });
    assert_eq!(q[0]["state"], "sent");
    assert_eq!(q[0]["handoff"]["sender"], MAILBOX);
    let id = q[0]["id"].as_str().unwrap().to_string();
    let state_file =
        std::fs::read_to_string(p.spool_dir().join("msg").join(format!("{id}.state"))).unwrap();
    assert!(state_file.contains("\"pending\""), "{state_file}");
    assert_eq!(p.stop().code(), Some(0));

    // Started again: tracking resumes from the spool.
    p.spawn();
    let q = p.wait_queue("every recipient settled", all_settled);
    let m = &q[0];
    assert_eq!(outcome(m, ALICE), "delivered");
    assert_eq!(outcome(m, BOB), "bounced");
    assert_eq!(outcome(m, CAROL), "spam");
    let bob = &traces(m).into_iter().find(|(a, _)| a == BOB).unwrap().1;
    assert_eq!(bob["code"], "5.1.10");
    assert!(
        bob["diagnostic"]
            .as_str()
            .unwrap()
            .contains("RecipientNotFound"),
        "{bob}"
    );
    assert!(
        bob["summary"]
            .as_str()
            .unwrap()
            .contains("does not know this recipient"),
        "{bob}"
    );
    assert!(bob["fix"].as_str().unwrap().contains("typos"), "{bob}");
    let carol = &traces(m).into_iter().find(|(a, _)| a == CAROL).unwrap().1;
    assert!(
        carol["summary"].as_str().unwrap().contains("Junk"),
        "{carol}"
    );
    // Details only for the failure.
    assert_eq!(g.graph.requests(RequestKind::TraceDetails), 1);

    // The CLI says the same, in words.
    let shown = text(&p.cli(&["queue", "show", &id]));
    assert!(
        shown.contains("trace     bounced (the trace says failed)"),
        "{shown}"
    );
    assert!(shown.contains("5.1.10"), "{shown}");
    assert!(
        shown.contains("fix       Check the address for typos"),
        "{shown}"
    );
    assert!(shown.contains("Message-ID <three@scanner.test>"), "{shown}");
    let list = text(&p.cli(&["queue"]));
    assert!(list.contains("1 bounced, 1 spam, 1 delivered"), "{list}");
    let status = p.cli_json(&["status"]);
    assert_eq!(status["tracking"]["state"], "on", "{status}");
    let human = text(&p.cli(&["status"]));
    assert!(human.contains("Tracking  on, "), "{human}");
}

/// Many messages waiting: one list query per poll (one sending mailbox),
/// each naming the sender and a window; details only for the failures.
#[tokio::test(flavor = "multi_thread")]
async fn the_trace_is_asked_once_per_poll_however_many_messages_wait() {
    let trace = TraceOptions {
        hidden_lists: 2,
        ..Default::default()
    };
    let g = GraphUpstream::start_traced(TRACE_ROLES, &[], trace).await;
    let bouncing: Vec<String> = (0..3).map(|i| format!("gone{i}@fabrikam.com")).collect();
    for b in &bouncing {
        g.graph.set_trace_outcome(b, TraceOutcome::failed("5.1.1"));
    }
    let p = g.serve(poll_fast).await;
    let n = 12;
    for i in 0..n {
        let to = if let Some(b) = bouncing.get(i) {
            b.clone()
        } else {
            format!("user{i}@contoso.com")
        };
        let reply = send_raw(&p, &message(&format!("many{i}"), &[&to]), &[&to]);
        assert!(reply.starts_with("250"), "{reply}");
    }
    let q = p.wait_queue("all twelve settled", |q| q.len() == n && all_settled(q));
    let bounced = q
        .iter()
        .filter(|m| m["recipients"][0]["trace"]["outcome"] == "bounced")
        .count();
    assert_eq!(bounced, 3);
    let status = p.cli_json(&["status"]);
    let t = &status["tracking"];
    let lists = g.graph.requests(RequestKind::ListTraces);
    assert_eq!(t["list_requests"].as_u64(), Some(lists), "{t}");
    assert_eq!(
        t["polls"].as_u64(),
        Some(lists),
        "one list query per poll: {t}"
    );
    eprintln!(
        "{lists} list queries and {} polls for {n} messages",
        t["polls"]
    );
    assert!(lists < n as u64, "{lists} list queries for {n} messages");
    assert_eq!(g.graph.requests(RequestKind::TraceDetails), 3);
    assert_eq!(t["detail_requests"], 3, "{t}");
    for f in g.graph.trace_filters() {
        assert!(
            f.starts_with(&format!(
                "senderAddress eq '{MAILBOX}' and receivedDateTime ge "
            )),
            "{f}"
        );
        assert!(f.contains(" and receivedDateTime le "), "{f}");
    }
}

/// A 429 with Retry-After: tracking says it is throttled and the next poll
/// is not before Retry-After, however short `tracking.poll` is.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_trace_waits_for_retry_after() {
    let g = GraphUpstream::start_traced(TRACE_ROLES, &[], TraceOptions::default()).await;
    g.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::ListTraces,
        status: 429,
        code: "TooManyRequests".into(),
        retry_after: Some(3600),
    });
    let p = g.serve(poll_fast).await;
    let reply = send_raw(&p, &message("slow", &[ALICE]), &[ALICE]);
    assert!(reply.starts_with("250"), "{reply}");
    let deadline = std::time::Instant::now() + PATIENCE;
    let t = loop {
        let s = p.cli_json(&["status"]);
        if s["tracking"]["state"] == "throttled" {
            break s["tracking"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never throttled: {s}\n{}",
            p.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(g.graph.faults_left(), 0);
    assert!(t["reason"].as_str().unwrap().contains("1h"), "{t}");
    let (last, next) = (
        t["last_poll"].as_u64().unwrap(),
        t["next_poll"].as_u64().unwrap(),
    );
    assert!(
        next >= last + 3_590_000,
        "next poll {next} is before Retry-After (last {last}): {t}"
    );
}

/// Tracking is independent of the route: after SMTP client submission the
/// message is found in the trace by its Message-ID and the MAIL FROM.
#[tokio::test(flavor = "multi_thread")]
async fn tracking_follows_smtp_submission_too() {
    let g = GraphUpstream::start_traced(
        &["Mail.Send", "ExchangeMessageTrace.Read.All"],
        &[],
        TraceOptions::default(),
    )
    .await;
    g.graph
        .set_trace_outcome(BOB, TraceOutcome::failed("5.7.520"));
    let endpoint = g.graph.endpoint();
    let p = Postern::start_with(&g.up, move |c| {
        set(c, "graph.endpoint", endpoint);
        poll_fast(c);
    })
    .await;
    let reply = send_raw(&p, &message("smtp", &[ALICE, BOB]), &[ALICE, BOB]);
    assert!(reply.starts_with("250"), "{reply}");
    let got = g.up.wait_for(1).await;
    let raw = String::from_utf8_lossy(&got[0].data).to_string();
    assert!(raw.contains("Message-ID: <smtp@scanner.test>"), "{raw}");
    // What Exchange Online's trace would list for it.
    g.graph.record_trace(
        "<smtp@scanner.test>",
        &got[0].mail_from,
        &got[0].rcpt_to,
        "smtp",
        got[0].data.len() as u64,
    );
    let q = p.wait_queue("both settled", all_settled);
    assert_eq!(outcome(&q[0], ALICE), "delivered");
    assert_eq!(outcome(&q[0], BOB), "bounced");
    let bob = &traces(&q[0]).into_iter().find(|(a, _)| a == BOB).unwrap().1;
    assert_eq!(bob["code"], "5.7.520");
    assert!(
        bob["summary"].as_str().unwrap().contains("forwarding"),
        "{bob}"
    );
}

/// Without the permission: nothing is tracked, the message stays sent, and
/// status says which consent to grant.
#[tokio::test(flavor = "multi_thread")]
async fn without_the_permission_tracking_says_which_consent_to_grant() {
    let g = GraphUpstream::start_traced(&["Mail.Send"], &[], TraceOptions::default()).await;
    let p = g.serve(poll_fast).await;
    let reply = send_raw(&p, &message("noperm", &[ALICE]), &[ALICE]);
    assert!(reply.starts_with("250"), "{reply}");
    let deadline = std::time::Instant::now() + PATIENCE;
    let t = loop {
        let s = p.cli_json(&["status"]);
        if s["tracking"]["state"] == "unavailable" {
            break s["tracking"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never unavailable: {s}\n{}",
            p.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("ExchangeMessageTrace.Read.All"),
        "{t}"
    );
    assert!(
        t["fix"].as_str().unwrap().contains("Grant admin consent"),
        "{t}"
    );
    assert_eq!(g.graph.requests(RequestKind::ListTraces), 0);
    let human = text(&p.cli(&["status"]));
    assert!(human.contains("Tracking  unavailable"), "{human}");
    let q = p.queue();
    assert_eq!(q[0]["state"], "sent");
}

/// What the trace never shows within `tracking.for` ends as `unknown`,
/// and tracking of that message is over.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_trace_never_shows_ends_as_unknown() {
    let trace = TraceOptions {
        hidden_lists: 1_000_000,
        ..Default::default()
    };
    let g = GraphUpstream::start_traced(TRACE_ROLES, &[], trace).await;
    let p = g
        .serve(|c| {
            poll_fast(c);
            // Long enough for several polls (one a second) to find nothing.
            set(c, "tracking.for", "10s");
        })
        .await;
    let reply = send_raw(&p, &message("never", &[ALICE]), &[ALICE]);
    assert!(reply.starts_with("250"), "{reply}");
    let q = p.wait_queue("tracking over", all_settled);
    let t = &q[0]["recipients"][0]["trace"];
    assert_eq!(t["outcome"], "unknown", "{t}");
    assert!(t["summary"].as_str().unwrap().contains("within 10s"), "{t}");
    assert_eq!(q[0]["state"], "sent");
}
