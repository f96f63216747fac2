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

/// The device password every AUTH test stores (each test its own user).
const DEVICE_PW: &str = "device-pw-4Kq";

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
    print("OK", json.dumps(refused))
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

/// A config where 127.0.0.1 is not allowed and must log in as `user`.
fn devices_must_login(user: &str) -> impl FnOnce(&mut toml::Table) + '_ {
    move |cfg| {
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec![user]);
    }
}

fn store_device_password(p: &Postern, user: &str) {
    let out = p.cli_stdin(&["account", "set-secret", "--device", user], DEVICE_PW);
    assert!(out.status.success(), "{}", text(&out));
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
