//! Device quirks seen in the field (issue #7), each replayed byte for byte
//! against the real `postern serve` with the fake Exchange Online behind
//! it. Every test asserts what the device was told, the state the message
//! ended in, and the bytes that arrived upstream.

mod support;

use std::time::Instant;

use support::smtp::Raw;
use support::*;
use tokio::net::TcpStream;

/// The name Postern gives itself in these tests (greeting, Message-ID).
const HOST: &str = "relay.contoso.test";

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn start(up: &Upstream, change: impl FnOnce(&mut toml::Table)) -> Postern {
    Postern::start_with(up, |cfg| {
        set(cfg, "listener.hostname", HOST);
        change(cfg);
    })
    .await
}

/// Connects and checks the greeting.
async fn connect(p: &Postern) -> Raw<TcpStream> {
    let (c, greeting) = Raw::connect(p.smtp).await;
    assert_eq!(greeting, format!("220 {HOST} ESMTP Postern ready"));
    c
}

/// Reads `n` replies and checks each starts with its `want`.
async fn replies(c: &mut Raw<TcpStream>, wants: &[&str]) -> Vec<String> {
    let mut got = Vec::new();
    for want in wants {
        let r = c.reply().await;
        assert!(
            r.starts_with(want),
            "expected {want:?}, got {r:?} after {got:?}"
        );
        got.push(r);
    }
    got
}

/// MAIL (`mail`, the whole command), RCPT TO bob, DATA, then `content`
/// and the terminator; returns the reply to the end of DATA.
async fn transaction(c: &mut Raw<TcpStream>, mail: &str, content: &[u8]) -> String {
    c.expect(mail, "250 2.1.0").await;
    c.expect("RCPT TO:<bob@contoso.com>", "250 2.1.5").await;
    c.expect("DATA", "354").await;
    let mut wire = content.to_vec();
    wire.extend_from_slice(b".\r\n");
    c.send(&wire).await;
    c.reply().await
}

/// The queue id in a `250 2.0.0 Ok: queued as ID` reply.
fn queued(reply: &str) -> &str {
    reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not queued: {reply}"))
}

/// The values of every `name:` header (unfolded) in `data`'s header section.
fn headers(data: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
    unfolded
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// Every CR is followed by LF and every LF preceded by CR.
fn assert_crlf_only(data: &[u8]) {
    let bare = String::from_utf8_lossy(data).replace("\r\n", "");
    assert!(
        !bare.contains(['\r', '\n']),
        "bare CR or LF upstream: {data:?}"
    );
}

/// Polls the serve log until it holds `needle` (or panics with the log).
fn wait_log(p: &Postern, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let log = p.log();
        if let Some(line) = log.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(Instant::now() < deadline, "never logged {needle:?}:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The one message upstream and the one message in the queue, sent.
async fn one_delivered(up: &Upstream, p: &Postern) -> postern_testkit::Received {
    let got = up.wait_for(1).await;
    p.wait_all(1, "sent");
    assert_eq!(up.exchange.messages().len(), 1, "delivered exactly once");
    got[0].clone()
}

const DATED: &str =
    "Date: Tue, 1 Oct 2024 09:30:00 +0200\r\nMessage-ID: <scan-1@printer.contoso.com>\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn helo_only_client_gets_no_extensions_and_is_delivered() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    assert_eq!(c.cmd("HELO old-fax").await, format!("250 {HOST}"));
    let content = format!("From: {MAILBOX}\r\nSubject: Fax 17\r\n{DATED}\r\nPage 1 of 1.\r\n");
    let reply = transaction(
        &mut c,
        &format!("MAIL FROM:<{MAILBOX}>"),
        content.as_bytes(),
    )
    .await;
    queued(&reply);
    c.expect("QUIT", "221 2.0.0").await;
    let m = one_delivered(&up, &p).await;
    assert_eq!(
        (m.mail_from.as_str(), m.rcpt_to.clone()),
        (MAILBOX, vec!["bob@contoso.com".to_string()])
    );
    assert_eq!(m.data, content.as_bytes());
    let q = p.queue();
    assert_eq!(q[0]["client"]["helo"], "old-fax", "{q:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_login_with_the_username_on_the_auth_line() {
    let up = Upstream::start().await;
    let p = start(&up, devices_must_login("ricoh")).await;
    store_device_password(&p, "ricoh");
    let mut c = connect(&p).await;
    let ehlo = c.expect("EHLO ricoh", "250").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    // AUTH LOGIN dXNlcg== style: the user name as initial response.
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", b64("ricoh"))).await,
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(
        c.cmd(&b64(DEVICE_PW)).await,
        "235 2.7.0 Authentication successful"
    );
    let content = format!("Subject: Ricoh scan\r\n{DATED}\r\nscan\r\n");
    let reply = transaction(
        &mut c,
        &format!("MAIL FROM:<{MAILBOX}>"),
        content.as_bytes(),
    )
    .await;
    queued(&reply);
    c.expect("QUIT", "221").await;
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.data, content.as_bytes());
    let q = p.queue();
    assert_eq!(q[0]["client"]["auth_user"], "ricoh", "{q:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn xerox_quit_after_the_first_334_is_honoured_and_explained() {
    let up = Upstream::start().await;
    let p = start(&up, devices_must_login("xerox")).await;
    store_device_password(&p, "xerox");
    let mut c = connect(&p).await;
    c.expect("EHLO XRX0000AA", "250").await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(
        c.cmd("QUIT").await,
        format!("221 2.0.0 {HOST} closing connection (login not completed)")
    );
    assert_eq!(c.rest().await, "", "closed after the 221");
    let line = wait_log(&p, "gave up at the AUTH prompt");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
    assert!(
        line.contains("check that SMTP authentication (a user name and password from listener.users) is configured on the device"),
        "{line}"
    );
    assert!(
        line.contains(
            "turn SMTP authentication off on the device and add its address to [listener] allow"
        ),
        "{line}"
    );
    assert!(p.queue().is_empty());
    assert_eq!(up.exchange.stats().messages, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_bit_body_without_8bitmime_arrives_intact() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.expect("EHLO mfp", "250").await;
    // No BODY=8BITMIME although the body is 8-bit (UTF-8 and a Latin-1 byte).
    let mut content = format!("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n{DATED}Content-Type: text/plain; charset=utf-8\r\n\r\n").into_bytes();
    content.extend_from_slice("Grüße aus dem Büro, 5 € – 日本語\r\ncaf".as_bytes());
    content.extend_from_slice(b"\xe9 (Latin-1)\r\n\x7f\x80\xff\r\n");
    queued(&transaction(&mut c, &format!("MAIL FROM:<{MAILBOX}>"), &content).await);
    c.expect("QUIT", "221").await;
    let m = one_delivered(&up, &p).await;
    assert!(
        m.data == content,
        "8-bit content changed: {:?}",
        String::from_utf8_lossy(&m.data)
    );
    let said = up.exchange.transcripts().join("\n");
    assert!(
        said.contains(&format!("C: MAIL FROM:<{MAILBOX}> BODY=8BITMIME")),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bare_lf_throughout_is_accepted_and_delivered_with_crlf() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.send(b"HELO lf-printer\n").await;
    assert_eq!(c.reply().await, format!("250 {HOST}"));
    for (line, want) in [
        (format!("MAIL FROM:<{MAILBOX}>\n"), "250 2.1.0"),
        ("RCPT TO:<bob@contoso.com>\n".to_string(), "250 2.1.5"),
        ("DATA\n".to_string(), "354"),
    ] {
        c.send(line.as_bytes()).await;
        replies(&mut c, &[want]).await;
    }
    let dated = DATED.replace("\r\n", "\n");
    let wire =
        format!("Subject: LF only\n{dated}\nline one\n..starts with a dot\n\nlast line\n.\n");
    c.send(wire.as_bytes()).await;
    replies(&mut c, &["250 2.0.0 Ok: queued as"]).await;
    c.send(b"QUIT\n").await;
    replies(&mut c, &["221 2.0.0"]).await;
    let m = one_delivered(&up, &p).await;
    let want = format!(
        "Subject: LF only\r\n{DATED}\r\nline one\r\n.starts with a dot\r\n\r\nlast line\r\n"
    );
    assert_eq!(String::from_utf8_lossy(&m.data), want);
    assert_crlf_only(&m.data);
}

#[tokio::test(flavor = "multi_thread")]
async fn crlf_client_still_cannot_end_data_with_lf_dot_lf() {
    // The bare-LF leniency is for clients that never sent CRLF: one that
    // did (here EHLO) keeps the strict rule, so "\n.\n" is content.
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.send(b"EHLO mixed\r\n").await;
    replies(&mut c, &["250"]).await;
    c.send(format!("MAIL FROM:<{MAILBOX}>\nRCPT TO:<bob@contoso.com>\nDATA\n").as_bytes())
        .await;
    replies(&mut c, &["250 2.1.0", "250 2.1.5", "354"]).await;
    c.send(format!("Subject: mixed\n{DATED}\nbody\n.\nMAIL FROM:<evil@x.com>\r\n.\r\n").as_bytes())
        .await;
    replies(&mut c, &["250 2.0.0 Ok: queued as"]).await;
    c.expect("QUIT", "221").await;
    let m = one_delivered(&up, &p).await;
    let data = String::from_utf8_lossy(&m.data);
    assert!(
        data.ends_with("\r\n\r\nbody\r\n.\r\nMAIL FROM:<evil@x.com>\r\n"),
        "{data:?}"
    );
    assert_crlf_only(&m.data);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_date_and_message_id_are_added_present_ones_untouched() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.expect("EHLO scanner", "250").await;
    let bare =
        format!("From: {MAILBOX}\r\nTo: bob@contoso.com\r\nSubject: Bare scan\r\n\r\nbody\r\n");
    let dated = format!(
        "From: {MAILBOX}\r\nTo: bob@contoso.com\r\nSubject: Dated scan\r\n{DATED}\r\nbody\r\n"
    );
    let mut ids = Vec::new();
    for content in [&bare, &dated] {
        let reply = transaction(
            &mut c,
            &format!("MAIL FROM:<{MAILBOX}>"),
            content.as_bytes(),
        )
        .await;
        ids.push(queued(&reply).to_string());
    }
    c.expect("QUIT", "221").await;
    let got = up.wait_for(2).await;
    p.wait_all(2, "sent");
    let subject = |m: &postern_testkit::Received| headers(&m.data, "subject")[0].clone();
    let stamped = got.iter().find(|m| subject(m) == "Bare scan").unwrap();
    let kept = got.iter().find(|m| subject(m) == "Dated scan").unwrap();

    // Added at the end of the header section, exactly one of each.
    let date = headers(&stamped.data, "date");
    let msgid = headers(&stamped.data, "message-id");
    assert_eq!(
        (date.len(), msgid.len()),
        (1, 1),
        "{:?}",
        String::from_utf8_lossy(&stamped.data)
    );
    let text = String::from_utf8_lossy(&stamped.data);
    let head = format!("From: {MAILBOX}\r\nTo: bob@contoso.com\r\nSubject: Bare scan\r\nDate: {}\r\nMessage-ID: {}\r\n\r\nbody\r\n", date[0], msgid[0]);
    assert_eq!(text, head);
    // RFC 5322 date-time: "Tue, 1 Oct 2024 09:30:00 +0000".
    let parts: Vec<&str> = date[0].split(' ').collect();
    assert_eq!(parts.len(), 6, "{date:?}");
    assert!(
        ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&parts[0]),
        "{date:?}"
    );
    assert!(
        parts[1].parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)),
        "{date:?}"
    );
    assert_eq!(parts[4].len(), 8, "{date:?}");
    assert_eq!(parts[5], "+0000", "{date:?}");
    // <queue id.random@hostname>, naming the queue entry it came from.
    assert!(
        msgid[0].starts_with(&format!("<{}.", ids[0])),
        "{msgid:?} {ids:?}"
    );
    assert!(msgid[0].ends_with(&format!("@{HOST}>")), "{msgid:?}");

    assert_eq!(kept.data, dated.as_bytes(), "present headers are untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn null_sender_is_accepted_and_sent_as_the_mailbox() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.expect("EHLO printer", "250").await;
    let content = format!("From: \"Printer\" <printer@contoso.com>\r\nSubject: Toner low\r\n{DATED}\r\nToner is low.\r\n");
    queued(&transaction(&mut c, "MAIL FROM:<>", content.as_bytes()).await);
    c.expect("QUIT", "221").await;
    let m = one_delivered(&up, &p).await;
    // Client submission: Exchange needs a sender it can attribute.
    assert_eq!(m.mail_from, MAILBOX);
    assert_eq!(m.data, content.as_bytes(), "headers untouched");
    // The queue keeps what the device said.
    assert_eq!(p.queue()[0]["from"], "");
}

#[tokio::test(flavor = "multi_thread")]
async fn very_long_header_lines_are_folded_or_refused_clearly() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let words: Vec<String> = (0..420).map(|i| format!("scan{i:04}.pdf")).collect();
    let long_subject = words.join(" ");
    assert!(long_subject.len() > 5000);
    let folded: String = (0..1800).map(|i| format!("\r\n\tpart{i:05}")).collect();
    assert!(folded.len() > 20_000);
    let token = "A".repeat(1500);
    let body_line = "b".repeat(1200);
    let cases = [
        (format!("Subject: {long_subject}\r\n{DATED}\r\nx\r\n"), None),
        (format!("Subject: folded\r\nX-Files:{folded}\r\n{DATED}\r\nx\r\n"), None),
        (
            format!("Subject: token\r\nX-Token: {token}\r\n\r\nx\r\n"),
            Some("550 5.6.0 Message refused: header line 2 is longer than 998 characters and has no space to fold it at (RFC 5322 section 2.1.1)".to_string()),
        ),
        (
            format!("Subject: body\r\n\r\nok\r\n{body_line}\r\n"),
            Some("550 5.6.0 Message refused: line 4 is longer than 998 characters (RFC 5321 section 4.5.3.1.6); the device must wrap long lines or encode the text (quoted-printable or base64)".to_string()),
        ),
    ];
    let mut c = connect(&p).await;
    c.expect("EHLO scanner", "250").await;
    for (content, refusal) in &cases {
        let from = format!("MAIL FROM:<{MAILBOX}>");
        let reply = transaction(&mut c, &from, content.as_bytes()).await;
        match refusal {
            None => assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}"),
            Some(want) => assert_eq!(&reply, want),
        }
    }
    c.expect("QUIT", "221").await;
    let got = up.wait_for(2).await;
    p.wait_all(2, "sent");
    assert_eq!(
        up.exchange.messages().len(),
        2,
        "the refused ones were not queued"
    );
    for m in &got {
        let text = String::from_utf8_lossy(&m.data);
        let longest = text.split("\r\n").map(str::len).max().unwrap();
        assert!(
            longest <= 998,
            "a line of {longest} characters went upstream"
        );
        assert_crlf_only(&m.data);
    }
    let subjects: Vec<String> = got
        .iter()
        .map(|m| headers(&m.data, "subject")[0].clone())
        .collect();
    assert!(
        subjects.contains(&long_subject),
        "the long Subject unfolds to what the device sent"
    );
    let folded_one = got
        .iter()
        .find(|m| headers(&m.data, "subject")[0] == "folded")
        .unwrap();
    assert_eq!(
        folded_one.data,
        cases[1].0.as_bytes(),
        "already folded: untouched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn size_declared_larger_than_the_message_is_fine_up_to_the_limit() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let mut c = connect(&p).await;
    c.expect("EHLO scanner", "250-").await;
    // 36,700,160 bytes (35 MB) is the default limit.
    assert_eq!(
        c.cmd(&format!("MAIL FROM:<{MAILBOX}> SIZE=50000000")).await,
        "552 5.3.4 Message too big: the device says the message is 47.7 MB, the limit is 35 MB (listener.max_message_bytes); send a smaller file or scan at a lower resolution"
    );
    let content = format!("Subject: Small\r\n{DATED}\r\n{}\r\n", "x".repeat(900));
    let from = format!("MAIL FROM:<{MAILBOX}> SIZE=999999");
    queued(&transaction(&mut c, &from, content.as_bytes()).await);
    c.expect("QUIT", "221").await;
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.data, content.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn whole_transaction_pipelined_in_one_write() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let content = format!("Subject: Pipelined\r\n{DATED}\r\nall at once\r\n");
    let mut c = connect(&p).await;
    c.send(format!("EHLO eager\r\nMAIL FROM:<{MAILBOX}>\r\nRCPT TO:<bob@contoso.com>\r\nRCPT TO:<carol@contoso.com>\r\nDATA\r\n{content}.\r\nQUIT\r\n").as_bytes()).await;
    replies(
        &mut c,
        &[
            "250-",
            "250 2.1.0",
            "250 2.1.5",
            "250 2.1.5",
            "354",
            "250 2.0.0 Ok: queued as",
            "221 2.0.0",
        ],
    )
    .await;
    assert_eq!(c.rest().await, "", "nothing after the 221");
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.rcpt_to, vec!["bob@contoso.com", "carol@contoso.com"]);
    assert_eq!(m.data, content.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelining_after_helo_without_the_extension_is_tolerated() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let content = format!("Subject: Eager HELO\r\n{DATED}\r\nno PIPELINING was offered\r\n");
    let mut c = connect(&p).await;
    assert_eq!(c.cmd("HELO eager").await, format!("250 {HOST}"));
    c.send(
        format!(
            "MAIL FROM:<{MAILBOX}>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n{content}.\r\nQUIT\r\n"
        )
        .as_bytes(),
    )
    .await;
    replies(
        &mut c,
        &[
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "250 2.0.0 Ok: queued as",
            "221 2.0.0",
        ],
    )
    .await;
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.data, content.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_that_hangs_up_without_quit_keeps_its_message() {
    let up = Upstream::start().await;
    let p = start(&up, |_| {}).await;
    let content = format!("Subject: No QUIT\r\n{DATED}\r\nbye\r\n");
    let mut c = connect(&p).await;
    c.expect("EHLO rude", "250").await;
    let from = format!("MAIL FROM:<{MAILBOX}>");
    queued(&transaction(&mut c, &from, content.as_bytes()).await);
    drop(c); // socket closed, no QUIT
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.data, content.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_that_goes_silent_after_250_is_timed_out_and_its_message_kept() {
    let up = Upstream::start().await;
    let p = start(&up, |cfg| set(cfg, "listener.idle_timeout", "1s")).await;
    let content = format!("Subject: Silent\r\n{DATED}\r\nthen nothing\r\n");
    let mut c = connect(&p).await;
    c.expect("EHLO silent", "250").await;
    let from = format!("MAIL FROM:<{MAILBOX}>");
    queued(&transaction(&mut c, &from, content.as_bytes()).await);
    // Say nothing more: Postern closes the idle connection.
    assert_eq!(
        c.reply().await,
        format!("421 4.4.2 {HOST} Timeout, closing connection")
    );
    assert_eq!(c.rest().await, "");
    let m = one_delivered(&up, &p).await;
    assert_eq!(m.data, content.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn failure_replies_say_what_to_fix() {
    let up = Upstream::start().await;
    let p = start(&up, |cfg| {
        devices_must_login("sharp")(cfg);
        set(cfg, "listener.max_message_bytes", 1024 * 1024);
    })
    .await;
    store_device_password(&p, "sharp");
    let from = format!("MAIL FROM:<{MAILBOX}>");

    // Wrong password, then not allowed (no login, 127.0.0.1 not in allow).
    let mut c = connect(&p).await;
    c.expect("EHLO sharp", "250").await;
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", b64("sharp"))).await,
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(
        c.cmd(&b64("not-the-password")).await,
        "535 5.7.8 Authentication failed: the username or password the device uses is wrong"
    );
    assert_eq!(
        c.cmd(&from).await,
        "554 5.7.1 Relaying denied: 127.0.0.1 is not allowed to send through Postern; add this device's address to [listener] allow, or set up SMTP authentication on the device"
    );
    c.expect("QUIT", "221").await;

    // Too big (1.5 MB against a 1 MB limit), logged in.
    let mut c = connect(&p).await;
    c.expect("EHLO sharp", "250").await;
    c.expect(
        &format!("AUTH PLAIN {}", support::smtp::plain("sharp", DEVICE_PW)),
        "235",
    )
    .await;
    let mut huge = format!("Subject: Huge\r\n{DATED}\r\n").into_bytes();
    while huge.len() < 1024 * 1024 * 3 / 2 {
        huge.extend_from_slice(&[b'Q'; 76]);
        huge.extend_from_slice(b"\r\n");
    }
    assert_eq!(
        transaction(&mut c, &from, &huge).await,
        "552 5.3.4 Message too big: the message is 1.5 MB, the limit is 1 MB (listener.max_message_bytes); send a smaller file or scan at a lower resolution"
    );
    c.expect("QUIT", "221").await;

    assert!(p.queue().is_empty());
    assert_eq!(up.exchange.stats().messages, 0);
}
