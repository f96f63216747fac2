//! `upstream.send_as = "sender"` against the real `postern serve` and the
//! fake Graph (issue #13): a message whose From is in an accepted domain is
//! sent from that sender's own mailbox (`/users/{from}/sendMail`), without
//! sender rewriting; any other From goes from the configured mailbox,
//! rewritten as configured. `postern status` shows each mailbox's budget.

mod support;

use serde_json::Value;
use support::graph::{send_raw, GraphUpstream};
use support::mail::by_subject;
use support::*;

const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";
const CAROL: &str = "carol@fabrikam.com";

fn from(sender: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{sender}>\r\nTo: <{CAROL}>\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@test.postern>\r\n\r\nBody of {subject}.\r\n"
    )
    .into_bytes()
}

fn row<'a>(status: &'a Value, address: &str) -> &'a Value {
    status["throttle"]["mailboxes"]
        .as_array()
        .unwrap_or_else(|| panic!("no mailboxes in {status:#}"))
        .iter()
        .find(|m| m["address"] == address)
        .unwrap_or_else(|| panic!("no row for {address} in {status:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_sender_sends_from_their_own_mailbox() {
    let g = GraphUpstream::start_with_mailboxes(&["Mail.Send"], &[ALICE, BOB]).await;
    let p = g
        .serve(|c| {
            set(c, "upstream.send_as", "sender");
            set(
                c,
                "upstream.accepted_domains",
                toml::Value::Array(vec!["contoso.com".into()]),
            );
            // On for the configured mailbox; never applied to a sender's own.
            set(c, "upstream.rewrite_sender", true);
        })
        .await;
    // Two devices (two SMTP sessions), both with the relay's MAIL FROM:
    // the From header decides.
    for (sender, subject) in [(ALICE, "from-alice"), (BOB, "from-bob")] {
        let reply = send_raw(&p, &from(sender, subject), &[CAROL]);
        assert!(reply.starts_with("250"), "{reply}");
    }
    let reply = send_raw(&p, &from("someone@gmail.com", "from-outside"), &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");

    let got = g.graph.wait_for_delivered(3, PATIENCE).await;
    assert_eq!(got.len(), 3, "{got:#?}");
    let by = |subject: &str| {
        got.iter()
            .find(|m| m.subject == subject)
            .unwrap_or_else(|| panic!("{subject} not delivered: {got:#?}"))
    };
    for (sender, subject) in [(ALICE, "from-alice"), (BOB, "from-bob")] {
        let m = by(subject);
        assert_eq!(m.mailbox, sender, "{m:#?}");
        let raw = String::from_utf8_lossy(m.raw.as_ref().unwrap()).to_string();
        assert!(raw.starts_with(&format!("From: <{sender}>")), "{raw}");
        assert!(!raw.contains("Reply-To"), "not rewritten: {raw}");
        assert_eq!(m.recipients(), [CAROL]);
    }
    let outside = by("from-outside");
    assert_eq!(outside.mailbox, MAILBOX, "{outside:#?}");
    let raw = String::from_utf8_lossy(outside.raw.as_ref().unwrap()).to_string();
    assert!(raw.contains(&format!("<{MAILBOX}>")), "rewritten: {raw}");
    assert!(raw.contains("Reply-To: <someone@gmail.com>"), "{raw}");

    let q = p.wait_all(3, "sent");
    let t = p.cli_json(&[
        "queue",
        "show",
        by_subject(&q, "from-alice")["id"].as_str().unwrap(),
    ]);
    let t = t["transcript"].as_str().unwrap();
    assert!(
        t.contains(&format!("C: POST /v1.0/users/{ALICE}/sendMail")),
        "{t}"
    );
    assert!(t.contains("the sender's own mailbox"), "{t}");

    // Each mailbox's budget: one recipient each.
    let s = p.cli_json(&["status"]);
    for address in [MAILBOX, ALICE, BOB] {
        let r = row(&s, address);
        assert_eq!(r["recipients_in_window"], 1, "{address}: {r:#}");
        assert_eq!(r["messages_last_minute"], 1, "{address}: {r:#}");
    }
    assert_eq!(s["throttle"]["recipients_in_window"], 1, "{s:#}");
    let out = p.cli(&["status"]);
    let plain = String::from_utf8_lossy(&out.stdout).to_string();
    for address in [ALICE, BOB] {
        assert!(
            plain
                .lines()
                .any(|l| l.contains(address) && l.contains("recipients")),
            "{plain}"
        );
    }
}

/// A 429 for Alice's mailbox holds Alice's messages for the Retry-After
/// Graph asked; Bob's go at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_mailbox_does_not_hold_up_another() {
    let g = GraphUpstream::start_with_mailboxes(&["Mail.Send"], &[ALICE, BOB]).await;
    g.graph.push_fault(postern_testkit::GraphFault::Reply {
        kind: postern_testkit::RequestKind::SendMail,
        status: 429,
        code: "ApplicationThrottled".into(),
        retry_after: Some(3600),
    });
    let p = g
        .serve(|c| {
            set(c, "upstream.send_as", "sender");
            set(
                c,
                "upstream.accepted_domains",
                toml::Value::Array(vec!["contoso.com".into()]),
            );
        })
        .await;
    let reply = send_raw(&p, &from(ALICE, "alice-1"), &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    // Alice's first request took the 429.
    let deferred = p.wait_all(1, "deferred");
    assert_eq!(deferred[0]["subject"], "alice-1");
    let reply = send_raw(&p, &from(BOB, "bob-1"), &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].mailbox, BOB);
    let s = p.cli_json(&["status"]);
    let alice = row(&s, ALICE);
    assert!(
        alice["busy_for_secs"].as_f64().is_some_and(|b| b > 3000.0),
        "{alice:#}"
    );
    assert!(row(&s, BOB)["busy_for_secs"].is_null(), "{s:#}");
}

/// Client submission with the app's own sign-in (client credentials): a
/// sender in an accepted domain signs in as itself (XOAUTH2 `user=`), on
/// its own connection; any other sender goes as the configured mailbox.
#[tokio::test(flavor = "multi_thread")]
async fn submission_signs_in_as_the_sender() {
    // The app's service principal has FullAccess on Alice's mailbox.
    let up = Upstream::start_with(
        postern_testkit::FakeExchangeOptions::default(),
        postern_testkit::IdentityOptions {
            app_mailboxes: vec![ALICE.into()],
            ..Default::default()
        },
    )
    .await;
    let p = Postern::start_with(&up, |c| {
        set(c, "upstream.send_as", "sender");
        set(
            c,
            "upstream.accepted_domains",
            toml::Value::Array(vec!["contoso.com".into()]),
        );
    })
    .await;
    for (sender, subject) in [(ALICE, "smtp-alice"), ("someone@gmail.com", "smtp-outside")] {
        let reply = send_raw(&p, &from(sender, subject), &[CAROL]);
        assert!(reply.starts_with("250"), "{reply}");
    }
    let got = up.wait_for(2).await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let by = |subject: &str| {
        got.iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&format!("Subject: {subject}\r\n")))
            .unwrap_or_else(|| panic!("{subject} not received: {got:#?}"))
    };
    let alice = by("smtp-alice");
    assert_eq!(alice.auth_user.as_deref(), Some(ALICE), "{alice:#?}");
    assert_eq!(alice.auth_mechanism.as_deref(), Some("XOAUTH2"));
    assert_eq!(alice.mail_from, ALICE);
    assert!(String::from_utf8_lossy(&alice.data).starts_with(&format!("From: <{ALICE}>")));
    let outside = by("smtp-outside");
    assert_eq!(outside.auth_user.as_deref(), Some(MAILBOX), "{outside:#?}");
    assert_eq!(outside.mail_from, MAILBOX);
    assert_ne!(alice.connection_id, outside.connection_id);
    let s = p.cli_json(&["status"]);
    assert_eq!(row(&s, ALICE)["recipients_in_window"], 1, "{s:#}");
}

/// A scan too large for one request goes by the draft route, in the
/// sender's own mailbox: the draft is made and sent there, From untouched,
/// and no draft is left in either mailbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_scan_is_drafted_in_the_senders_own_mailbox() {
    use base64::Engine as _;
    let g = GraphUpstream::start_with_mailboxes(&["Mail.Send", "Mail.ReadWrite"], &[BOB]).await;
    let p = g
        .serve(|c| {
            set(c, "upstream.send_as", "sender");
            set(
                c,
                "upstream.accepted_domains",
                toml::Value::Array(vec!["contoso.com".into()]),
            );
        })
        .await;
    // 3.5 MB of noise: its base64 is over sendMail's 4 MB.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let scan: Vec<u8> = (0..3_500_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&scan);
    let mut m = format!(
        "From: Bob <{BOB}>\r\nTo: <{CAROL}>\r\nSubject: bob-scan\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour scan.\r\n\
         --b1\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\n\
         Content-Disposition: attachment; filename=\"scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n"
    )
    .into_bytes();
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--b1--\r\n");
    let reply = send_raw(&p, &m, &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    assert_eq!(got.len(), 1, "{got:#?}\n{}", p.log());
    assert_eq!(got[0].route, Some(postern_testkit::Route::Draft));
    assert_eq!(got[0].mailbox, BOB);
    assert_eq!(got[0].from.as_deref(), Some(BOB), "not rewritten");
    assert!(got[0].reply_to.is_empty(), "{:?}", got[0].reply_to);
    assert!(g.graph.drafts(BOB).is_empty());
    assert!(g.graph.drafts(MAILBOX).is_empty());
}

/// Exchange refuses the sign-in as a sender whose mailbox the app was not
/// given: that message waits with the fix, the queue is not held, and the
/// other senders' mail goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_own_mailbox_defers_only_its_message() {
    let up = Upstream::start_with(
        postern_testkit::FakeExchangeOptions::default(),
        postern_testkit::IdentityOptions {
            app_mailboxes: vec![ALICE.into()],
            ..Default::default()
        },
    )
    .await;
    let p = Postern::start_with(&up, |c| {
        set(c, "upstream.send_as", "sender");
        set(
            c,
            "upstream.accepted_domains",
            toml::Value::Array(vec!["contoso.com".into()]),
        );
        set(c, "delivery.retry_first", "1h");
        set(c, "delivery.retry_max", "1h");
    })
    .await;
    let reply = send_raw(&p, &from(BOB, "smtp-bob"), &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    let q = p.wait_all(1, "deferred");
    let bob = &q[0];
    assert!(
        bob["summary"].as_str().unwrap().contains("own mailbox"),
        "{bob:#}"
    );
    assert!(
        bob["fix"]
            .as_str()
            .unwrap()
            .contains("Add-MailboxPermission"),
        "{bob:#}"
    );
    let reply = send_raw(&p, &from(ALICE, "smtp-alice"), &[CAROL]);
    assert!(reply.starts_with("250"), "{reply}");
    let got = up.wait_for(1).await;
    assert_eq!(got[0].auth_user.as_deref(), Some(ALICE));
    let s = p.cli_json(&["status"]);
    assert!(s["attention"].is_null(), "the queue is not held: {s:#}");
    assert_eq!(s["account"]["state"], "signed-in", "{s:#}");
}
