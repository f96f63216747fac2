//! Real SMTP clients (swaks, Python's smtplib, curl) talking to the real
//! `postern serve`, which delivers to the fake Exchange Online: plain, with
//! STARTTLS, and with device AUTH. What is asserted is what arrived
//! upstream and what the device was told.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn swaks_plain_message_arrives_upstream_with_xoauth2() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let out = run(
        "swaks",
        &[
            "--server",
            &p.smtp.to_string(),
            "--from",
            MAILBOX,
            "--to",
            "bob@contoso.com",
            "--header",
            "Subject: Scan 0001",
            "--body",
            "Here is your scan.",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<-  250 2.0.0 Ok: queued as"),
        "{}",
        text(&out)
    );
    let got = up.wait_for(1).await;
    assert_eq!(got[0].mail_from, MAILBOX);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
    assert_eq!(got[0].auth_mechanism.as_deref(), Some("XOAUTH2"));
    assert_eq!(got[0].auth_user.as_deref(), Some(MAILBOX));
    assert!(got[0].tls, "upstream must be TLS");
    let body = String::from_utf8_lossy(&got[0].data);
    assert!(
        body.contains("Subject: Scan 0001") && body.contains("Here is your scan."),
        "{body}"
    );
    let q = p.wait_all(1, "sent");
    assert_eq!(q[0]["subject"], "Scan 0001");
}

/// Sends one small message with smtplib. argv: host port mode user
/// password, mode one of plain, starttls, ssl; user "" for no AUTH. Prints
/// "OK <refused dict>" or "AUTHFAIL <code>" or "REFUSED <code> <text>".
const PY_SEND: &str = r#"
import smtplib, ssl, sys, json
from email.message import EmailMessage
host, port, mode, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl._create_unverified_context()
if mode == "ssl":
    s = smtplib.SMTP_SSL(host, port, context=ctx, timeout=60)
else:
    s = smtplib.SMTP(host, port, timeout=60)
s.ehlo("python")
if mode == "starttls":
    code, _ = s.starttls(context=ctx)
    assert code == 220, code
    s.ehlo("python")
m = EmailMessage()
m["From"] = "scanner@contoso.com"
m["To"] = "bob@contoso.com"
m["Subject"] = "python " + mode
m.set_content("Sent by smtplib (" + mode + ").\n")
try:
    if user:
        s.login(user, pw)
    refused = s.send_message(m)
    print("OK", json.dumps({r: [c, t.decode()] for r, (c, t) in refused.items()}))
except smtplib.SMTPAuthenticationError as e:
    print("AUTHFAIL", e.smtp_code, e.smtp_error.decode())
    try:
        s.send_message(m)
        print("SENT-ANYWAY")
    except smtplib.SMTPSenderRefused as e:
        print("REFUSED", e.smtp_code, e.smtp_error.decode())
s.quit()
"#;

fn py_send(p: &Postern, mode: &str, user: &str, pw: &str) -> String {
    let port = p.smtps.filter(|_| mode == "ssl").unwrap_or(p.smtp).port();
    let out = python(PY_SEND, &["127.0.0.1", &port.to_string(), mode, user, pw]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One message upstream, from smtplib, with the subject `subject`.
async fn assert_one_upstream(up: &Upstream, subject: &str) -> postern_testkit::Received {
    let got = up.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, MAILBOX);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
    let data = String::from_utf8_lossy(&got[0].data);
    assert!(data.contains(&format!("Subject: {subject}\r\n")), "{data}");
    got[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn python_plain() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    assert_eq!(py_send(&p, "plain", "", "").trim(), "OK {}");
    assert_one_upstream(&up, "python plain").await;
    p.wait_all(1, "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_starttls() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    assert_eq!(py_send(&p, "starttls", "", "").trim(), "OK {}");
    assert_one_upstream(&up, "python starttls").await;
    let q = p.wait_all(1, "sent");
    let id = q[0]["id"].as_str().unwrap();
    let shown = p.cli_json(&["queue", "show", id]);
    assert!(
        shown["client"]["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLS")),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_device_auth() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, devices_must_login("py-auth")).await;
    // Stored after serve started: the keychain is read at AUTH time.
    store_device_password(&p, "py-auth");
    assert_eq!(py_send(&p, "plain", "py-auth", DEVICE_PW).trim(), "OK {}");
    assert_one_upstream(&up, "python plain").await;
    let q = p.wait_all(1, "sent");
    let shown = p.cli_json(&["queue", "show", q[0]["id"].as_str().unwrap()]);
    assert_eq!(shown["client"]["auth_user"], "py-auth", "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_wrong_password_is_535_and_nothing_queued() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, devices_must_login("py-wrong")).await;
    store_device_password(&p, "py-wrong");
    let out = py_send(&p, "plain", "py-wrong", "not-the-password");
    let mut lines = out.lines();
    let auth = lines.next().unwrap_or_default();
    assert!(auth.starts_with("AUTHFAIL 535 5.7.8"), "{out}");
    // Without a login, 127.0.0.1 is not allowed to relay.
    let mail = lines.next().unwrap_or_default();
    assert!(mail.starts_with("REFUSED 554 5.7.1"), "{out}");
    assert!(p.queue().is_empty());
    assert_eq!(up.exchange.stats().messages, 0);
}

/// Runs curl to send `subject` to bob@contoso.com at `url` with `extra` options.
fn curl_send(p: &Postern, url: &str, subject: &str, extra: &[&str]) {
    let file = p.dir.path().join(format!("{subject}.eml"));
    let msg = format!(
        "From: {MAILBOX}\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\n\r\nSent by curl.\r\n"
    );
    std::fs::write(&file, msg).unwrap();
    let mut args = vec![
        "-sS",
        "--max-time",
        "60",
        url,
        "--mail-from",
        MAILBOX,
        "--mail-rcpt",
        "bob@contoso.com",
        "--upload-file",
        file.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run("curl", &args);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_plain() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    curl_send(&p, &format!("smtp://{}", p.smtp), "curl plain", &[]);
    let got = assert_one_upstream(&up, "curl plain").await;
    assert!(String::from_utf8_lossy(&got.data).contains("Sent by curl.\r\n"));
    p.wait_all(1, "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_starttls() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let url = format!("smtp://{}", p.smtp);
    curl_send(&p, &url, "curl starttls", &["--ssl-reqd", "-k"]);
    assert_one_upstream(&up, "curl starttls").await;
    let q = p.wait_all(1, "sent");
    let shown = p.cli_json(&["queue", "show", q[0]["id"].as_str().unwrap()]);
    assert!(shown["client"]["tls"].is_string(), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn implicit_tls_with_curl_and_python() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.tls_listen", vec!["127.0.0.1:0"]);
    })
    .await;
    let smtps = p.smtps.expect("implicit-TLS address");
    curl_send(&p, &format!("smtps://{smtps}"), "curl smtps", &["-k"]);
    assert_one_upstream(&up, "curl smtps").await;
    assert_eq!(py_send(&p, "ssl", "", "").trim(), "OK {}");
    let got = up.wait_for(2).await;
    assert!(String::from_utf8_lossy(&got[1].data).contains("Subject: python ssl\r\n"));
    let q = p.wait_all(2, "sent");
    for m in &q {
        let shown = p.cli_json(&["queue", "show", m["id"].as_str().unwrap()]);
        assert!(shown["client"]["tls"].is_string(), "{shown}");
    }
}

fn swaks(p: &Postern, subject: &str, extra: &[&str]) -> String {
    let server = p.smtp.to_string();
    let header = format!("Subject: {subject}");
    let mut args = vec![
        "--server",
        &server,
        "--from",
        MAILBOX,
        "--to",
        "bob@contoso.com",
        "--header",
        &header,
        "--body",
        "Sent by swaks.",
    ];
    args.extend_from_slice(extra);
    let out = run("swaks", &args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn swaks_starttls() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let out = swaks(&p, "swaks tls", &["--tls"]);
    assert!(out.contains("<-  220 2.0.0 Ready to start TLS"), "{out}");
    assert!(out.contains("<~  250 2.0.0 Ok: queued as"), "{out}");
    assert_one_upstream(&up, "swaks tls").await;
    p.wait_all(1, "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn swaks_auth_plain() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, devices_must_login("swaks-auth")).await;
    store_device_password(&p, "swaks-auth");
    let out = swaks(
        &p,
        "swaks auth",
        &[
            "--auth",
            "PLAIN",
            "--auth-user",
            "swaks-auth",
            "--auth-password",
            DEVICE_PW,
        ],
    );
    assert!(out.contains("<-  235 "), "{out}");
    assert!(out.contains("<-  250 2.0.0 Ok: queued as"), "{out}");
    assert_one_upstream(&up, "swaks auth").await;
    let q = p.wait_all(1, "sent");
    let shown = p.cli_json(&["queue", "show", q[0]["id"].as_str().unwrap()]);
    assert_eq!(shown["client"]["auth_user"], "swaks-auth", "{shown}");
}

/// Builds a message with a 25 MiB random attachment (CRLF, policy SMTP),
/// writes its bytes to argv[3] and sends exactly those bytes. It has a
/// Date and a Message-ID, so Postern adds nothing (it would to a message
/// without them).
const PY_BIG: &str = r#"
import smtplib, sys, os, email.policy, email.utils
from email.message import EmailMessage
host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = EmailMessage(policy=email.policy.SMTP)
m["From"] = "scanner@contoso.com"
m["To"] = "bob@contoso.com"
m["Subject"] = "Big scan"
m["Date"] = email.utils.formatdate()
m["Message-ID"] = email.utils.make_msgid(domain="scanner.contoso.com")
m.set_content("A big scan is attached.\n")
m.add_attachment(os.urandom(25 * 1024 * 1024), maintype="application",
                 subtype="octet-stream", filename="scan.bin")
data = m.as_bytes()
assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
open(path, "wb").write(data)
s = smtplib.SMTP(host, port, timeout=300)
print("OK", s.sendmail("scanner@contoso.com", ["bob@contoso.com"], data))
s.quit()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn attachment_of_25_mib_arrives_byte_identical() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let path = p.dir.path().join("big.eml");
    let out = python(
        PY_BIG,
        &[
            "127.0.0.1",
            &p.smtp.port().to_string(),
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK {}");
    let sent = std::fs::read(&path).unwrap();
    assert!(sent.len() > 25 * 1024 * 1024 * 4 / 3, "{}", sent.len());
    assert!(sent.ends_with(b"\r\n"));
    let got = up.wait_for(1).await;
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
    assert_eq!(got[0].data.len(), sent.len(), "size upstream");
    assert!(got[0].data == sent, "content changed on the way");
    p.wait_all(1, "sent");
}

/// Sends one message to argv[3] recipients r0..rN@contoso.com; prints the
/// refused dict as JSON.
const PY_MANY: &str = r#"
import smtplib, sys, json
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rcpts = ["r%d@contoso.com" % i for i in range(n)]
msg = b"From: scanner@contoso.com\r\nTo: undisclosed-recipients:;\r\nSubject: Many\r\n\r\nTo many people.\r\n"
s = smtplib.SMTP(host, port, timeout=60)
refused = s.sendmail("scanner@contoso.com", rcpts, msg)
print(json.dumps({r: [c, t.decode()] for r, (c, t) in refused.items()}))
s.quit()
"#;

fn py_many(p: &Postern, n: usize) -> serde_json::Value {
    let out = python(
        PY_MANY,
        &["127.0.0.1", &p.smtp.port().to_string(), &n.to_string()],
    );
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn rcpts(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("r{i}@contoso.com")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn recipients_past_500_get_452_and_the_500_are_delivered() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let refused = py_many(&p, 600);
    let refused = refused.as_object().unwrap();
    assert_eq!(refused.len(), 100);
    for r in rcpts(500..600) {
        assert_eq!(
            refused[&r],
            serde_json::json!([452, "4.5.3 Too many recipients"]),
            "{r}"
        );
    }
    let got = up.wait_for(1).await;
    p.wait_all(1, "sent");
    assert_eq!(up.exchange.messages().len(), 1);
    assert_eq!(got[0].rcpt_to, rcpts(0..500));
}

#[tokio::test(flavor = "multi_thread")]
async fn max_recipients_1000_splits_upstream_into_500_and_100() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| set(cfg, "listener.max_recipients", 1000)).await;
    assert_eq!(py_many(&p, 600), serde_json::json!({}));
    let mut got = up.wait_for(2).await;
    p.wait_all(1, "sent");
    assert_eq!(up.exchange.messages().len(), 2);
    got.sort_by_key(|m| std::cmp::Reverse(m.rcpt_to.len()));
    assert_eq!(got[0].rcpt_to, rcpts(0..500));
    assert_eq!(got[1].rcpt_to, rcpts(500..600));
    assert_eq!(got[0].data, got[1].data, "same content in both parts");
    assert_eq!(got[0].mail_from, got[1].mail_from);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_not_in_allow_gets_554_and_nothing_is_queued() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| set(cfg, "listener.allow", vec!["10.0.0.0/8"])).await;
    let (mut c, greeting) = support::smtp::Raw::connect(p.smtp).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    let ehlo = c.expect("EHLO device", "250").await;
    assert!(!ehlo.contains("AUTH"), "no users, no AUTH: {ehlo}");
    let reply = c.cmd(&format!("MAIL FROM:<{MAILBOX}>")).await;
    assert!(
        reply.starts_with("554 5.7.1 Relaying denied: 127.0.0.1 is not allowed"),
        "{reply}"
    );
    // It cannot log in either (no device users): the connection ends, so
    // an outsider cannot sit on a slot.
    assert_eq!(c.cmd("RCPT TO:<bob@contoso.com>").await, "", "closed");
    // The python client too: smtplib reports the refused sender.
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
try:
    s.sendmail("scanner@contoso.com", ["bob@contoso.com"], b"Subject: x\r\n\r\nx\r\n")
    print("SENT")
except smtplib.SMTPSenderRefused as e:
    print(e.smtp_code)
"#,
        &[&p.smtp.port().to_string()],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "554",
        "{}",
        text(&out)
    );
    assert!(p.queue().is_empty());
    let status = p.cli_json(&["status"]);
    assert_eq!(status["queue"]["queued"], 0, "{status}");
    assert_eq!(up.exchange.stats().messages, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_sender_sends_as_the_mailbox_with_reply_to() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| set(cfg, "upstream.rewrite_sender", true)).await;
    let out = run(
        "swaks",
        &[
            "--server",
            &p.smtp.to_string(),
            "--from",
            "hp@contoso.com",
            "--to",
            "bob@contoso.com",
            "--header",
            "From: \"HP Scanner\" <hp@contoso.com>",
            "--header",
            "Subject: Rewritten",
            "--body",
            "Scan from the HP.",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let got = up.wait_for(1).await;
    assert_eq!(got[0].mail_from, MAILBOX);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
    let data = String::from_utf8_lossy(&got[0].data);
    let header = |name: &str| -> Vec<String> {
        let head = data.split("\r\n\r\n").next().unwrap();
        head.split("\r\n")
            .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(String::from)
            .collect()
    };
    let from = header("from");
    assert_eq!(from.len(), 1, "{data}");
    assert!(from[0].contains(&format!("<{MAILBOX}>")), "{data}");
    assert!(!from[0].contains("hp@contoso.com"), "{data}");
    let reply_to = header("reply-to");
    assert_eq!(reply_to.len(), 1, "{data}");
    assert!(reply_to[0].contains("hp@contoso.com"), "{data}");
    assert!(data.contains("Scan from the HP."), "{data}");
    p.wait_all(1, "sent");
}
