//! Delivery through Microsoft Graph (issue #13), against the real
//! `postern serve`, the fake identity platform (client credentials, Graph
//! roles) and the fake Graph: exactly the envelope on the MIME route,
//! throttling, and the draft route for a scan too large for one request.

mod support;

use postern_testkit::{GraphFault, RequestKind};
use serde_json::Value;
use support::graph::{send_raw, GraphUpstream};
use support::mail::{by_subject, field};
use support::*;

const ALICE: &str = "alice@contoso.com";
const CAROL: &str = "carol@fabrikam.com";
const DAVE: &str = "dave@contoso.com";

fn accepted(device_reply: &str) {
    assert!(
        device_reply.starts_with("250"),
        "device heard: {device_reply}"
    );
}

fn transcript(p: &Postern, m: &Value) -> String {
    let id = m["id"].as_str().unwrap();
    p.cli_json(&["queue", "show", id])["transcript"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn small(subject: &str) -> Vec<u8> {
    format!(
        "From: Scanner <{MAILBOX}>\r\nTo: Alice <{ALICE}>, {DAVE}\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@test.postern>\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

/// A Bcc-only envelope recipient (Carol) gets the message without being
/// shown; a header-only recipient (Dave) gets nothing; the transcript says
/// both, and never shows the token.
#[tokio::test(flavor = "multi_thread")]
async fn mime_route_delivers_to_exactly_the_envelope() {
    let g = GraphUpstream::start(&["Mail.Send"]).await;
    let p = g.serve(|_| {}).await;
    accepted(&send_raw(&p, &small("exactly"), &[ALICE, CAROL]));

    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m.route, Some(postern_testkit::Route::Mime));
    assert_eq!(m.mailbox, MAILBOX);
    let mut rcpts = m.recipients();
    rcpts.sort();
    assert_eq!(rcpts, [ALICE, CAROL]);
    assert_eq!(m.bcc, [CAROL]);
    let visible = String::from_utf8_lossy(m.visible.as_ref().unwrap()).to_string();
    assert!(
        !visible.contains(CAROL) && !visible.contains(DAVE),
        "{visible}"
    );
    assert!(visible.contains("Body of exactly."), "{visible}");

    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "exactly");
    let t = transcript(&p, msg);
    assert!(
        t.contains(&format!("C: POST /v1.0/users/{MAILBOX}/sendMail")),
        "{t}"
    );
    assert!(t.contains("S: 202 Accepted"), "{t}");
    assert!(t.contains(&format!("{DAVE} is in the To header")), "{t}");
    assert!(!t.contains("Bearer"), "{t}");
    assert_eq!(msg["attempts"], 1);
    assert!(field(msg, "last_reply").starts_with("202"), "{msg:#}");
    assert!(!p.log().contains("Bearer"));
}

/// 429 with Retry-After: the message is deferred (no failure, nothing
/// delivered), then goes out by itself after the second Graph asked for,
/// not after Postern's own backoff (an hour here).
#[tokio::test(flavor = "multi_thread")]
async fn throttled_is_deferred_then_delivered() {
    let g = GraphUpstream::start(&["Mail.Send"]).await;
    g.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::SendMail,
        status: 429,
        code: "ApplicationThrottled".into(),
        retry_after: Some(1),
    });
    let p = g
        .serve(|c| {
            set(c, "delivery.retry_first", "1h");
            set(c, "delivery.retry_max", "1h");
        })
        .await;
    accepted(&send_raw(&p, &small("throttled"), &[ALICE]));

    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].recipients(), [ALICE]);
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "throttled");
    assert_eq!(msg["attempts"], 2, "{msg:#}");
    assert_eq!(g.graph.requests(RequestKind::SendMail), 2);
    let t = transcript(&p, msg);
    assert!(
        t.contains("S: 429 Too Many Requests: ApplicationThrottled"),
        "{t}"
    );
    assert!(t.contains("(Retry-After: 1)"), "{t}");
}
