//! Delivery through Microsoft Graph (issue #13), against the real
//! `postern serve`, the fake identity platform (client credentials, Graph
//! roles) and the fake Graph: exactly the envelope on the MIME route,
//! throttling, and the draft route for a scan too large for one request.

mod support;

use postern_testkit::{GraphFault, RequestKind};
use serde_json::Value;
use support::graph::{scan_message, send_raw, sha256_hex, GraphUpstream};
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
    assert!(
        m.save_to_sent_items,
        "the default keeps a copy in Sent Items"
    );
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

/// A 25 MB scan goes by the draft route: exactly the envelope, the
/// attachment byte-identical (sha256), uploaded in ranges without the
/// token, resumed after a connection dropped mid-range, no draft or
/// upload session left behind.
#[tokio::test(flavor = "multi_thread")]
async fn large_scan_goes_by_the_draft_route() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.graph.push_fault(GraphFault::DropUpload {
        after_bytes: 1_000_000,
    });
    let p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("big-scan", 25 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE, CAROL]));
    drop(message);

    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1, "{:?}\n{}", got, p.log());
    let m = &got[0];
    assert_eq!(m.route, Some(postern_testkit::Route::Draft));
    assert!(
        m.save_to_sent_items,
        "the default keeps a copy in Sent Items"
    );
    assert_eq!(m.to, [ALICE]);
    assert_eq!(m.bcc, [CAROL]);
    assert!(m.cc.is_empty());
    assert_eq!(m.subject, "big-scan");
    assert_eq!(m.attachments.len(), 1, "{:?}", m.attachments);
    let a = &m.attachments[0];
    assert_eq!(a.name, "scan.pdf");
    assert_eq!(a.size, scan.len());
    assert_eq!(a.sha256, sha256_hex(&scan));
    assert!(g.graph.drafts(MAILBOX).is_empty());
    assert_eq!(g.graph.open_upload_sessions(), 0);
    assert_eq!(g.graph.requests(RequestKind::SendMail), 0);
    // 7 ranges of 3,932,160 bytes, one sent twice after the drop.
    assert_eq!(g.graph.requests(RequestKind::UploadChunk), 8);

    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "big-scan");
    assert_eq!(msg["attempts"], 1, "{msg:#}");
    assert!(msg.get("graph_draft").is_none(), "{msg:#}");
    let t = transcript(&p, msg);
    assert!(t.contains("sending it as a draft"), "{t}");
    assert!(
        t.contains("(Content-Range: bytes 0-3932159/26214400)"),
        "{t}"
    );
    assert!(t.contains("(no Authorization header)"), "{t}");
    assert!(
        t.contains("the upload broke off; asking Graph where to resume"),
        "{t}"
    );
    assert!(t.contains(&format!("{DAVE} is in the To header")), "{t}");
    assert!(
        !t.contains("/upload/"),
        "the upload URL is a credential: {t}"
    );
    #[cfg(target_os = "linux")]
    {
        // Peak resident memory of `postern serve` over receiving and
        // uploading the scan, shown for the benchmark (issue #13 asks for
        // under 64 MB while uploading, measured on a release build). Not
        // asserted here: a debug build's own code pages count in it, and
        // it already reaches about 80 MB before the first upload.
        let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
        let hwm_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        eprintln!("postern serve peak RSS (VmHWM): {hwm_kb} kB");
    }
}

/// `graph.save_to_sent_items = false`, as the README writes it: a small
/// scan goes as JSON `sendMail` with `saveToSentItems: false` (still only
/// Mail.Send, exactly the envelope, the attachment byte-identical); a 5 MB
/// scan goes as a draft marked to leave no copy in Sent Items.
#[tokio::test(flavor = "multi_thread")]
async fn no_copy_in_sent_items_when_switched_off() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    let p = g.serve(|c| set(c, "graph.save_to_sent_items", false)).await;
    let (message, scan) = scan_message("small-nocopy", 300 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE, CAROL]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    let m = &got[0];
    assert_eq!(m.route, Some(postern_testkit::Route::Json), "{m:?}");
    assert!(!m.save_to_sent_items);
    assert_eq!(m.to, [ALICE]);
    assert_eq!(m.bcc, [CAROL]);
    assert_eq!(m.subject, "small-nocopy");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].sha256, sha256_hex(&scan));

    let (message, scan) = scan_message("big-nocopy", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let got = g.graph.wait_for_delivered(2, PATIENCE).await;
    let m = &got[1];
    assert_eq!(m.route, Some(postern_testkit::Route::Draft), "{m:?}");
    assert!(!m.save_to_sent_items);
    assert_eq!(m.attachments[0].sha256, sha256_hex(&scan));
    assert_eq!(g.graph.requests(RequestKind::SendMail), 1);
    let q = p.wait_all(2, "sent");
    let t = transcript(&p, by_subject(&q, "small-nocopy"));
    assert!(t.contains("saveToSentItems false"), "{t}");
    let t = transcript(&p, by_subject(&q, "big-nocopy"));
    assert!(t.contains("leave no copy in Sent Items"), "{t}");
}

/// Without Mail.ReadWrite the draft route is refused: that message fails,
/// saying which permission to grant; nothing is left in the mailbox, and a
/// small message after it still goes.
#[tokio::test(flavor = "multi_thread")]
async fn draft_route_without_read_write_fails_that_message_explained() {
    let g = GraphUpstream::start(&["Mail.Send"]).await;
    let p = g.serve(|_| {}).await;
    let (message, _) = scan_message("no-readwrite", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let q = p.wait_all(1, "failed");
    let msg = by_subject(&q, "no-readwrite");
    assert!(field(msg, "summary").contains("Mail.ReadWrite"), "{msg:#}");
    assert!(field(msg, "fix").contains("Grant admin consent"), "{msg:#}");
    assert!(g.graph.drafts(MAILBOX).is_empty());

    accepted(&send_raw(&p, &small("after"), &[ALICE]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject, "after");
}

/// A 401 from Graph: a fresh token, once, and the message goes in the
/// same attempt; refused again, the queue is held for a sign-in.
#[tokio::test(flavor = "multi_thread")]
async fn refused_token_is_refreshed_once_then_held() {
    let g = GraphUpstream::start(&["Mail.Send"]).await;
    g.graph.push_fault(GraphFault::InvalidToken);
    let p = g.serve(|_| {}).await;
    accepted(&send_raw(&p, &small("refreshed"), &[ALICE]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "refreshed");
    assert_eq!(msg["attempts"], 1, "{msg:#}");
    assert!(transcript(&p, msg).contains("fetching a fresh one and trying once more"));
    assert_eq!(g.up.identity.issued_tokens(), 2);

    g.graph.push_fault(GraphFault::InvalidToken);
    g.graph.push_fault(GraphFault::InvalidToken);
    accepted(&send_raw(&p, &small("refused"), &[ALICE]));
    let q = p.wait_queue("the second message held", |q| {
        q.iter()
            .any(|m| m["subject"] == "refused" && m["state"] == "held")
    });
    let msg = by_subject(&q, "refused");
    assert!(
        field(msg, "summary").contains("rejected Postern's sign-in token"),
        "{msg:#}"
    );
    assert_eq!(g.graph.delivered().len(), 1);
}

/// A 413 on sendMail (the mailbox's or the service's size limit counted
/// differently from Postern's estimate) sends the message again at once
/// as a draft.
#[tokio::test(flavor = "multi_thread")]
async fn too_large_for_sendmail_goes_as_a_draft() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::SendMail,
        status: 413,
        code: "ErrorMessageSizeExceeded".into(),
        retry_after: None,
    });
    let p = g.serve(|_| {}).await;
    accepted(&send_raw(&p, &small("fallback"), &[ALICE, CAROL]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].route, Some(postern_testkit::Route::Draft));
    assert_eq!(got[0].to, [ALICE]);
    assert_eq!(got[0].bcc, [CAROL]);
    let q = p.wait_all(1, "sent");
    assert_eq!(by_subject(&q, "fallback")["attempts"], 1);
}

/// A draft whose clean-up failed stays recorded and is deleted by the next
/// attempt before anything else: one delivery, no draft left.
#[tokio::test(flavor = "multi_thread")]
async fn a_leftover_draft_is_deleted_by_the_next_attempt() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    for kind in [RequestKind::Send, RequestKind::DeleteDraft] {
        g.graph.push_fault(GraphFault::Reply {
            kind,
            status: 503,
            code: String::new(),
            retry_after: Some(1),
        });
    }
    let p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("leftover", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attachments[0].sha256, sha256_hex(&scan));
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "leftover");
    assert_eq!(msg["attempts"], 2, "{msg:#}");
    let t = transcript(&p, msg);
    assert!(t.contains("could not be deleted now"), "{t}");
    assert!(t.contains("an earlier attempt left draft"), "{t}");
    assert!(g.graph.drafts(MAILBOX).is_empty());
    assert_eq!(g.graph.requests(RequestKind::DeleteDraft), 2);
    assert_eq!(g.graph.requests(RequestKind::CreateDraft), 2);
    assert_eq!(g.graph.delivered().len(), 1);
}

/// An `upstream.ca_file` that holds no certificate: the Graph client cannot
/// be built, so the queue is held with the file to fix (nothing is sent,
/// nothing fails).
#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_ca_file_holds_the_queue() {
    let g = GraphUpstream::start(&["Mail.Send"]).await;
    let bad = g.up.dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let p = g
        .serve(|c| set(c, "upstream.ca_file", bad.display().to_string()))
        .await;
    accepted(&send_raw(&p, &small("bad-ca"), &[ALICE]));
    let q = p.wait_all(1, "held");
    let msg = by_subject(&q, "bad-ca");
    assert!(field(msg, "fix").contains("upstream.ca_file"), "{msg:#}");
    assert!(
        field(msg, "last_reply").contains("holds no PEM certificate"),
        "{msg:#}"
    );
    assert!(g.graph.delivered().is_empty());
}

/// The draft id survives a kill -9: an upload refused for an hour and a
/// clean-up that did not get through leave the message deferred with its
/// draft recorded; after a restart the retry deletes that draft first and
/// delivers once.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_draft_survives_kill_9_and_is_deleted_after_restart() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    for kind in [RequestKind::UploadChunk, RequestKind::DeleteDraft] {
        g.graph.push_fault(GraphFault::Reply {
            kind,
            status: 503,
            code: String::new(),
            retry_after: Some(3600),
        });
    }
    let mut p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("crash", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let q = p.wait_queue("deferred with its draft recorded", |q| {
        q.iter()
            .any(|m| m["state"] == "deferred" && m["graph_draft"].is_string())
    });
    let id = by_subject(&q, "crash")["id"].as_str().unwrap().to_string();
    let draft = by_subject(&q, "crash")["graph_draft"]
        .as_str()
        .unwrap()
        .to_string();
    let left = g.graph.drafts(MAILBOX);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id.as_deref(), Some(draft.as_str()));

    p.kill9();
    p.spawn();
    let out = p.cli(&["queue", "retry", &id]);
    assert!(out.status.success(), "{}", text(&out));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attachments[0].sha256, sha256_hex(&scan));
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "crash");
    assert!(msg.get("graph_draft").is_none(), "{msg:#}");
    assert!(
        transcript(&p, msg).contains(&format!("an earlier attempt left draft {draft}")),
        "{}",
        transcript(&p, msg)
    );
    assert!(g.graph.drafts(MAILBOX).is_empty());
    assert_eq!(g.graph.delivered().len(), 1);
}

/// kill -9 after Microsoft took the draft's send but before its answer
/// reached Postern (the fake delivers, then never answers): after the
/// restart Postern asks Graph about the draft, finds it is no longer one,
/// and records the message as sent — one delivery, no second send, no
/// draft left.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_that_reached_microsoft_before_kill_9_is_not_sent_again() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.graph.push_fault(GraphFault::AnswerLost {
        kind: RequestKind::Send,
    });
    let mut p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("answer-lost", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attachments[0].sha256, sha256_hex(&scan));
    // Postern is waiting for the answer now; its status says so.
    let q = p.queue();
    let id = by_subject(&q, "answer-lost")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let state =
        std::fs::read_to_string(p.spool_dir().join("msg").join(format!("{id}.state"))).unwrap();
    assert!(
        serde_json::from_str::<Value>(&state).unwrap()["graph_send_posted"] == true,
        "{state}"
    );

    p.kill9();
    // Restarted, the interrupted message is due again at once.
    p.spawn();
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "answer-lost");
    let t = transcript(&p, msg);
    assert!(
        t.contains("Microsoft took the message; it is not sent again"),
        "{t}"
    );
    assert!(msg.get("graph_draft").is_none(), "{msg:#}");
    assert_eq!(g.graph.delivered().len(), 1, "sent twice");
    assert_eq!(g.graph.requests(RequestKind::Send), 1);
    assert_eq!(g.graph.requests(RequestKind::CreateDraft), 1);
    assert!(g.graph.drafts(MAILBOX).is_empty());
}

/// kill -9 while Graph has created the draft but its answer (the id) has
/// not reached Postern: after the restart the draft is found by Postern's
/// tag and deleted, the message goes once, and nothing is left.
#[tokio::test(flavor = "multi_thread")]
async fn a_draft_created_unheard_before_kill_9_is_found_and_deleted() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.graph.push_fault(GraphFault::AnswerLost {
        kind: RequestKind::CreateDraft,
    });
    let mut p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("create-lost", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let deadline = std::time::Instant::now() + PATIENCE;
    while g.graph.drafts(MAILBOX).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no draft created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let id = by_subject(&p.queue(), "create-lost")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let state =
        std::fs::read_to_string(p.spool_dir().join("msg").join(format!("{id}.state"))).unwrap();
    let state: Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["graph_draft_creating"], true, "{state:#}");
    assert!(state.get("graph_draft").is_none(), "{state:#}");

    p.kill9();
    p.spawn();
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "create-lost");
    let t = transcript(&p, msg);
    assert!(t.contains("looking for it by its tag"), "{t}");
    assert!(t.contains("left by that attempt"), "{t}");
    let got = g.graph.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attachments[0].sha256, sha256_hex(&scan));
    assert!(g.graph.drafts(MAILBOX).is_empty(), "a draft was left");
    assert_eq!(g.graph.requests(RequestKind::CreateDraft), 2);
    assert_eq!(g.graph.requests(RequestKind::ListDrafts), 1);
}

/// kill -9 in the middle of uploading a 25 MB scan (the second range is
/// stored, its answer never comes): after the restart the recorded draft
/// is deleted, the scan uploaded again from the start, and delivered once,
/// byte-identical, with no draft or upload session left.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_upload_delivers_once_after_restart() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    g.graph.push_fault(GraphFault::AnswerLost {
        kind: RequestKind::UploadChunk,
    });
    let mut p = g.serve(|_| {}).await;
    let (message, scan) = scan_message("mid-upload", 25 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    drop(message);
    let deadline = std::time::Instant::now() + PATIENCE;
    // The fault is used once the first range is stored; from then on
    // Postern waits for an answer that does not come.
    while g.graph.faults_left() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no upload range stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(g.graph.open_upload_sessions(), 1);
    p.kill9();
    assert_eq!(g.graph.requests(RequestKind::Send), 0);
    p.spawn();
    let q = p.wait_all(1, "sent");
    let msg = by_subject(&q, "mid-upload");
    assert!(
        transcript(&p, msg).contains("an earlier attempt left draft"),
        "{}",
        transcript(&p, msg)
    );
    let got = g.graph.delivered();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attachments[0].sha256, sha256_hex(&scan));
    assert!(g.graph.drafts(MAILBOX).is_empty(), "a draft was left");
    assert_eq!(g.graph.open_upload_sessions(), 0);
    assert_eq!(g.graph.requests(RequestKind::CreateDraft), 2);
}

/// A message deleted from the queue while its draft is in the mailbox (an
/// upload refused for an hour, the clean-up refused too): the delete
/// removes the draft as well, and says so.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_message_removes_its_draft_from_the_mailbox() {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    for kind in [RequestKind::UploadChunk, RequestKind::DeleteDraft] {
        g.graph.push_fault(GraphFault::Reply {
            kind,
            status: 503,
            code: String::new(),
            retry_after: Some(3600),
        });
    }
    let p = g.serve(|_| {}).await;
    let (message, _) = scan_message("deleted", 5 * 1024 * 1024);
    accepted(&send_raw(&p, &message, &[ALICE]));
    let q = p.wait_queue("deferred with its draft recorded", |q| {
        q.iter()
            .any(|m| m["state"] == "deferred" && m["graph_draft"].is_string())
    });
    let id = by_subject(&q, "deleted")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(g.graph.drafts(MAILBOX).len(), 1);

    let out = p.cli(&["queue", "delete", &id]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("its unsent draft removed from the mailbox"),
        "{}",
        text(&out)
    );
    assert!(g.graph.drafts(MAILBOX).is_empty(), "the draft stayed");
    assert!(p.queue().is_empty());
    assert!(g.graph.delivered().is_empty());
}
