//! Upstream faults (issue #2): the fake Exchange Online drops the
//! connection mid-DATA, throttles (`451 4.7.500`, `432 4.3.2`), presents a
//! bad TLS certificate, refuses AUTH, refuses the sender or a recipient, or
//! says the day quota is spent; the fake identity platform refuses a wrong
//! client secret. Each is run against the real `postern serve`, and what is
//! asserted is the state each message ends in (retried, held, failed as the
//! reply is classified), what the queue and `postern status` say meanwhile,
//! and what arrived upstream: nothing lost, nothing twice.

mod support;

use std::collections::BTreeSet;

use postern_testkit::{Fault, Stage};
use serde_json::Value;
use support::mail::{by_subject, field, none_failed, send};
use support::*;

const BOB: &str = "bob@contoso.com";

fn reply(stage: Stage, line: &str) -> Fault {
    Fault::Reply {
        stage,
        reply: line.to_string(),
    }
}

fn accepted(device_reply: &str) {
    assert!(
        device_reply.starts_with("250"),
        "device heard: {device_reply}"
    );
}

/// Subjects of everything that arrived upstream, in order.
fn upstream_subjects(up: &Upstream) -> Vec<String> {
    up.exchange
        .messages()
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.data)
                .lines()
                .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
                .unwrap_or_default()
        })
        .collect()
}

fn status(p: &Postern) -> Value {
    p.cli_json(&["status"])
}

/// The status once delivery is no longer held: the hold is lifted just
/// after the outcome that lifts it is recorded, so a status read in between
/// may still show it.
fn status_unheld(p: &Postern) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = status(p);
        if s["attention"].is_null() || std::time::Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits until the message is deferred with a last reply containing `needle`.
fn wait_deferred_with(p: &Postern, subject: &str, needle: &str) -> Value {
    let q = p.wait_queue(&format!("{subject} deferred with {needle:?}"), |q| {
        q.iter().any(|m| {
            m["subject"] == subject
                && m["state"] == "deferred"
                && field(m, "last_reply").contains(needle)
        })
    });
    assert!(none_failed(&q), "{q:#?}");
    by_subject(&q, subject).clone()
}

/// Waits for the message to be sent, then checks it arrived upstream exactly once.
async fn sent_once(p: &Postern, up: &Upstream, subject: &str) -> Value {
    let q = p.wait_queue(&format!("{subject} sent"), |q| {
        q.iter()
            .any(|m| m["subject"] == subject && m["state"] == "sent")
    });
    up.wait_for(1).await;
    let subjects = upstream_subjects(up);
    assert_eq!(
        subjects.iter().filter(|s| *s == subject).count(),
        1,
        "upstream got {subjects:?}"
    );
    by_subject(&q, subject).clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_dropped_mid_data_is_retried_and_delivered_once() {
    let up = Upstream::start().await;
    up.exchange
        .push_fault(Fault::DropConnection { stage: Stage::Data });
    let p = Postern::start(&up).await;
    accepted(&send(&p, "drop-mid-data", &[BOB]));
    let m = sent_once(&p, &up, "drop-mid-data").await;
    assert_eq!(m["attempts"], 2, "{m:#}");
    assert_eq!(up.exchange.stats().messages, 1);
    // The drop is in the message's history.
    assert!(up.exchange.transcripts().join("\n").contains("fault: drop"));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_busy_451_at_data_end_defers_then_sends() {
    throttled_451_then_sent(Stage::DataEnd, "busy-data-end").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_busy_451_at_mail_from_defers_then_sends() {
    throttled_451_then_sent(Stage::MailFrom, "busy-mail-from").await;
}

async fn throttled_451_then_sent(stage: Stage, subject: &str) {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(reply(
        stage,
        "451 4.7.500 Server busy. Please try again later",
    )));
    let p = Postern::start(&up).await;
    accepted(&send(&p, subject, &[BOB]));
    let m = wait_deferred_with(&p, subject, "4.7.500");
    assert!(field(&m, "last_reply").contains("Server busy"), "{m:#}");
    assert_eq!(up.exchange.stats().messages, 0);
    up.exchange.set_sticky_fault(None);
    let m = sent_once(&p, &up, subject).await;
    assert!(m["attempts"].as_u64().unwrap() >= 2, "{m:#}");
}

/// `432 4.3.2` makes the lane that got it stand down (60 s,
/// THREAD_LIMIT_BACKOFF); another lane picks the message up after the
/// ordinary retry delay, so this stays quick.
#[tokio::test(flavor = "multi_thread")]
async fn thread_limit_432_is_retried_and_sent() {
    let up = Upstream::start().await;
    up.exchange.push_fault(reply(
        Stage::MailFrom,
        "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
    ));
    let p = Postern::start(&up).await;
    accepted(&send(&p, "thread-limit", &[BOB]));
    let m = sent_once(&p, &up, "thread-limit").await;
    assert_eq!(m["attempts"], 2, "{m:#}");
    assert!(p.queue().iter().all(|m| m["state"] == "sent"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tls_certificate_defers_then_sends() {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(Fault::BadTlsCertificate));
    let p = Postern::start(&up).await;
    accepted(&send(&p, "bad-cert", &[BOB]));
    let m = wait_deferred_with(&p, "bad-cert", "TLS");
    assert!(
        field(&m, "summary").contains("secure (TLS) connection"),
        "{m:#}"
    );
    assert_eq!(up.exchange.stats().messages, 0);
    up.exchange.set_sticky_fault(None);
    sent_once(&p, &up, "bad-cert").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_refused_twice_holds_until_retried() {
    let up = Upstream::start().await;
    for _ in 0..2 {
        up.exchange
            .push_fault(reply(Stage::Auth, "535 5.7.3 Authentication unsuccessful"));
    }
    let p = Postern::start(&up).await;
    accepted(&send(&p, "auth-refused", &[BOB]));
    let q = p.wait_all(1, "held");
    assert!(none_failed(&q));
    assert_eq!(q[0]["attempts"], 0, "a hold is not an attempt: {q:#?}");
    // Refreshed once: two AUTHs refused, two tokens fetched.
    assert_eq!(up.exchange.stats().auth_failures, 2);
    assert_eq!(up.identity.issued_tokens(), 2);
    let s = status(&p);
    assert!(
        s["attention"]["cause"]
            .as_str()
            .unwrap_or("")
            .contains("5.7.3"),
        "{s:#}"
    );
    assert_eq!(s["account"]["state"], "sign-in-needed", "{s:#}");
    assert_eq!(s["queue"]["held"], 1);
    assert_eq!(s["queue"]["failed"], 0);

    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    sent_once(&p, &up, "auth-refused").await;
    let s = status_unheld(&p);
    assert!(s["attention"].is_null(), "{s:#}");
    assert_eq!(s["account"]["state"], "signed-in", "{s:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn smtp_auth_disabled_holds_with_set_casmailbox_fix() {
    let up = Upstream::start().await;
    up.exchange.push_fault(reply(
        Stage::Auth,
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.",
    ));
    let p = Postern::start(&up).await;
    accepted(&send(&p, "auth-disabled", &[BOB]));
    let q = p.wait_all(1, "held");
    assert!(field(&q[0], "last_reply").contains("5.7.139"), "{q:#?}");
    let s = status(&p);
    let fix = s["attention"]["fix"].as_str().unwrap_or("");
    assert!(
        fix.contains("Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"),
        "{s:#}"
    );
    assert_eq!(s["queue"]["failed"], 0);
    assert_eq!(up.exchange.stats().messages, 0);

    // The admin fixed it: one retry delivers.
    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    sent_once(&p, &up, "auth-disabled").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_send_as_fails_with_explanation_and_redacted_transcript() {
    let up = Upstream::start().await;
    up.exchange.push_fault(reply(
        Stage::DataEnd,
        "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
    ));
    let p = Postern::start(&up).await;
    accepted(&send(&p, "no-send-as", &[BOB]));
    let q = p.wait_all(1, "failed");
    let m = &q[0];
    assert!(field(m, "last_reply").contains("5.7.60"), "{m:#}");
    assert!(field(m, "summary").contains("send as"), "{m:#}");
    assert!(field(m, "fix").contains("Send As"), "{m:#}");
    assert!(field(m, "fix").contains("rewrite_sender"), "{m:#}");
    assert_eq!(m["recipients"][0]["state"], "failed", "{m:#}");

    let id = field(m, "id");
    let shown = p.cli_json(&["queue", "show", id]);
    let t = field(&shown, "transcript");
    assert!(t.contains("AUTH XOAUTH2 [redacted]"), "{t}");
    assert!(t.contains("5.7.60"), "{t}");
    // Neither the SASL blob (base64 of "user=") nor a bearer token.
    assert!(!t.contains("dXNlcj") && !t.contains("Bearer"), "{t}");
    assert_eq!(up.exchange.stats().messages, 0);

    // The admin cannot grant Send As: resend this one as the mailbox.
    let out = p.cli(&["queue", "retry", id, "--rewrite-sender"]);
    assert!(out.status.success(), "{}", text(&out));
    let got = up.wait_for(1).await;
    assert_eq!(got[0].mail_from, MAILBOX);
    let data = String::from_utf8_lossy(&got[0].data);
    let from = data
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("from:"))
        .unwrap_or("");
    assert!(from.contains(MAILBOX), "From not rewritten: {from}");
    // Rewriting moves the original From to Reply-To: proof it happened.
    assert!(
        data.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("reply-to:")),
        "no Reply-To, so the message was not rewritten:\n{data}"
    );
    p.wait_all(1, "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_recipient_fails_alone_and_the_other_is_delivered() {
    let up = Upstream::start().await;
    up.exchange.push_fault(Fault::RcptReply {
        rcpt: "ghost@contoso.com".into(),
        reply:
            "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
                .into(),
    });
    let p = Postern::start(&up).await;
    accepted(&send(&p, "one-unknown", &["ghost@contoso.com", BOB]));
    let m = sent_once(&p, &up, "one-unknown").await;
    assert_eq!(up.exchange.messages()[0].rcpt_to, vec![BOB]);
    let rcpts = m["recipients"].as_array().unwrap();
    let state_of = |a: &str| {
        rcpts
            .iter()
            .find(|r| r["address"] == a)
            .unwrap_or_else(|| panic!("{a} in {m:#}"))["state"]
            .clone()
    };
    assert_eq!(state_of("ghost@contoso.com"), "failed", "{m:#}");
    assert_eq!(state_of(BOB), "sent", "{m:#}");
    let ghost = rcpts.iter().find(|r| r["address"] == "ghost@contoso.com");
    assert!(field(ghost.unwrap(), "reply").contains("5.1.10"), "{m:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn submission_quota_exceeded_defers_not_fails() {
    let up = Upstream::start().await;
    up.exchange.set_sticky_fault(Some(reply(
        Stage::DataEnd,
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception",
    )));
    let p = Postern::start(&up).await;
    accepted(&send(&p, "quota", &[BOB]));
    let m = wait_deferred_with(&p, "quota", "SubmissionQuotaExceeded");
    assert!(
        field(&m, "summary").contains("10,000 recipients per day"),
        "{m:#}"
    );
    assert_eq!(m["recipients"][0]["state"], "pending", "{m:#}");
    up.exchange.set_sticky_fault(None);
    sent_once(&p, &up, "quota").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_reused_and_capped_at_three() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let subjects: Vec<String> = (1..=5).map(|i| format!("reuse-{i}")).collect();
    for s in &subjects {
        accepted(&send(&p, s, &[BOB]));
    }
    let got = up.wait_for(5).await;
    p.wait_all(5, "sent");
    let mut upstream = upstream_subjects(&up);
    upstream.sort();
    assert_eq!(upstream, subjects);
    let conns: BTreeSet<u64> = got.iter().map(|m| m.connection_id).collect();
    let stats = up.exchange.stats();
    assert!(conns.len() <= 3, "connections used: {conns:?}");
    assert!(stats.max_concurrent <= 3, "{stats:?}");
    assert!(stats.auth_successes < 5, "one AUTH per message: {stats:?}");
    assert_eq!(stats.throttle_replies, 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_client_secret_holds_until_fixed_and_retried() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let out = p.cli_stdin(&["account", "set-secret"], "wrong-secret");
    assert!(out.status.success(), "{}", text(&out));
    accepted(&send(&p, "wrong-secret", &[BOB]));
    let q = p.wait_all(1, "held");
    assert_eq!(
        up.exchange.stats().connections,
        0,
        "no token, no connection"
    );
    let s = status(&p);
    assert_eq!(s["account"]["state"], "sign-in-needed", "{s:#}");
    let fix = s["attention"]["fix"].as_str().unwrap_or("");
    assert!(fix.contains("client secret"), "{s:#}");
    assert!(field(&q[0], "last_reply").contains("secret"), "{q:#?}");
    assert_eq!(s["queue"]["failed"], 0);

    let out = p.cli_stdin(&["account", "set-secret"], CLIENT_SECRET);
    assert!(out.status.success(), "{}", text(&out));
    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    sent_once(&p, &up, "wrong-secret").await;
    let s = status_unheld(&p);
    assert!(s["attention"].is_null(), "{s:#}");
    assert_eq!(s["account"]["state"], "signed-in", "{s:#}");
}
