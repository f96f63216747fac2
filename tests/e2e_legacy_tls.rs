//! Legacy TLS for old devices (`listener.legacy_tls`), end to end: the
//! real `postern serve`, `openssl s_client` limited to TLS 1.0/1.1 and an
//! old suite the way old scanner firmware is, the fake Exchange Online.
//! Asserted: the replies the device got, the bytes that arrived upstream
//! (over TLS 1.3: the upstream side never changes), the message's state,
//! and what was logged for the admin. With the setting off, or for an
//! address outside `legacy_tls_allow`, TLS 1.0 is refused and TLS 1.2+
//! still works.

mod support;

use serde_json::Value;
use support::*;

/// Drives `openssl s_client` through one SMTP conversation, reading each
/// reply before sending the next command (no sleeps). argv: host port
/// (starttls|implicit) version-flag cipher-or-"" subject. Prints JSON:
/// {"replies": [...], "stderr": "..."}; the replies stop at the first
/// empty one (the connection ended, e.g. a failed handshake).
const S_CLIENT: &str = r#"
import json, subprocess, sys, threading
host, port, mode, version, cipher, subject = sys.argv[1:7]
cmd = ["openssl", "s_client", "-connect", host + ":" + port, version, "-quiet", "-ign_eof"]
if mode == "starttls":
    cmd += ["-starttls", "smtp", "-name", "old-scanner"]
if cipher:
    cmd += ["-cipher", cipher]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
watchdog = threading.Timer(120, p.kill)  # a hung conversation fails, never blocks CI
watchdog.daemon = True
watchdog.start()
err = []
reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
reader.start()
replies = []
def reply():
    lines = []
    while True:
        line = p.stdout.readline().decode("latin-1")
        if not line:
            break
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            break
    replies.append("\n".join(lines))
    return replies[-1]
def say(text):
    p.stdin.write(text.encode() + b"\r\n")
    p.stdin.flush()
    return reply()
message = ("From: scanner@contoso.com\r\nTo: bob@contoso.com\r\nSubject: " + subject +
           "\r\nDate: Tue, 1 Oct 2024 09:30:00 +0000\r\nMessage-ID: <" + subject.replace(" ", "-") + "@old-scanner>\r\n\r\n"
           "Scanned on an old device.\r\n..a line that starts with a dot\r\nend\r\n")
ok = True
if mode == "implicit":
    ok = reply().startswith("220 ")
steps = ["EHLO old-scanner", "MAIL FROM:<scanner@contoso.com>", "RCPT TO:<bob@contoso.com>", "DATA"]
for step in steps:
    if not ok:
        break
    ok = say(step) != ""
if ok and replies[-1].startswith("354"):
    say(message + ".")
    say("QUIT")
p.stdin.close()
p.wait()
reader.join()
json.dump({"replies": replies, "stderr": (err[0] if err else b"").decode("latin-1")}, sys.stdout)
"#;

/// The message S_CLIENT sends, as it must arrive upstream (dot-unstuffed).
fn expected_upstream(subject: &str) -> Vec<u8> {
    format!(
        "From: scanner@contoso.com\r\nTo: bob@contoso.com\r\nSubject: {subject}\r\nDate: Tue, 1 Oct 2024 09:30:00 +0000\r\nMessage-ID: <{}@old-scanner>\r\n\r\nScanned on an old device.\r\n.a line that starts with a dot\r\nend\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

struct Conversation {
    replies: Vec<String>,
    stderr: String,
}

fn s_client(
    addr: std::net::SocketAddr,
    mode: &str,
    version: &str,
    cipher: &str,
    subject: &str,
) -> Conversation {
    let out = python(
        S_CLIENT,
        &[
            &addr.ip().to_string(),
            &addr.port().to_string(),
            mode,
            version,
            cipher,
            subject,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    Conversation {
        replies: v["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
        stderr: v["stderr"].as_str().unwrap().to_string(),
    }
}

impl Conversation {
    /// The device heard: (greeting,) EHLO 250, 250, 250, 354, 250 queued, 221.
    fn assert_complete(&self, what: &str) {
        let r: Vec<&str> = self
            .replies
            .iter()
            .map(String::as_str)
            .skip_while(|r| r.starts_with("220 "))
            .collect();
        let want = [
            "250-",
            "250 2.1.0",
            "250 2.1.5",
            "354 ",
            "250 2.0.0 Ok: queued as ",
            "221 ",
        ];
        assert_eq!(
            r.len(),
            want.len(),
            "{what}: {:#?}\n{}",
            self.replies,
            self.stderr
        );
        for (got, want) in r.iter().zip(want) {
            assert!(
                got.starts_with(want),
                "{what}: {got:?} is not {want:?}: {:#?}",
                self.replies
            );
        }
        assert!(
            !r[0].contains("STARTTLS"),
            "{what}: STARTTLS offered inside TLS"
        );
    }

    /// The handshake failed: not one reply inside TLS.
    fn assert_refused(&self, what: &str) {
        let inside: Vec<&String> = self.replies.iter().filter(|r| !r.is_empty()).collect();
        assert!(
            inside.is_empty(),
            "{what}: the device got replies {inside:#?}"
        );
        // Postern (rustls) answered the TLS 1.0 hello with a fatal alert.
        assert!(
            self.stderr.contains("alert handshake failure"),
            "{what}: not refused by the server: {}",
            self.stderr
        );
    }
}

/// `serve` logged `n` handshakes that rustls refused (an old client hello),
/// and no legacy session.
fn assert_rustls_refused(p: &Postern, n: usize) {
    let log = p.log();
    let refused = log
        .lines()
        .filter(|l| l.contains("connection failed") && l.contains("peer is incompatible"))
        .count();
    assert_eq!(refused, n, "{log}");
    assert!(!log.contains("legacy TLS session"), "{log}");
}

/// Whether this machine's OpenSSL can still offer `cipher` (Debian 12's has
/// no 3DES, so `DES-CBC3-SHA` cannot be tested here).
fn openssl_has(cipher: &str) -> bool {
    run("openssl", &["ciphers", &format!("{cipher}:@SECLEVEL=0")])
        .status
        .success()
}

fn legacy_on(cfg: &mut toml::Table) {
    set(cfg, "listener.legacy_tls", true);
    set(cfg, "listener.tls_listen", vec!["127.0.0.1:0"]);
}

fn queue_tls(p: &Postern, subject: &str) -> String {
    let q = p.wait_queue(&format!("{subject} sent"), |q| {
        q.iter()
            .any(|m| m["subject"] == subject && m["state"] == "sent")
    });
    let m = q.iter().find(|m| m["subject"] == subject).unwrap();
    let shown = p.cli_json(&["queue", "show", m["id"].as_str().unwrap()]);
    shown["client"]["tls"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tls10_starttls_with_old_suites_delivers_byte_exact() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, legacy_on).await;
    assert!(
        openssl_has("AES128-SHA"),
        "the test client must offer AES128-SHA"
    );
    let mut suites = vec!["AES128-SHA"];
    if openssl_has("DES-CBC3-SHA") {
        suites.push("DES-CBC3-SHA");
    } else {
        eprintln!("note: this OpenSSL cannot offer DES-CBC3-SHA; only AES128-SHA tested");
    }
    for (i, suite) in suites.iter().enumerate() {
        let subject = format!("tls1 {suite}");
        let conv = s_client(
            p.smtp,
            "starttls",
            "-tls1",
            &format!("{suite}:@SECLEVEL=0"),
            &subject,
        );
        conv.assert_complete(&subject);
        let got = up.wait_for(i + 1).await;
        let m = got
            .iter()
            .find(|m| String::from_utf8_lossy(&m.data).contains(&subject))
            .unwrap();
        assert_eq!(m.mail_from, MAILBOX);
        assert_eq!(m.rcpt_to, vec!["bob@contoso.com"]);
        assert!(
            m.data == expected_upstream(&subject),
            "{subject}: content changed on the way"
        );
        assert_eq!(
            m.tls_version.as_deref(),
            Some("TLSv1_3"),
            "upstream stays modern"
        );
        assert_eq!(
            queue_tls(&p, &subject),
            format!("TLSv1.0 {suite} (OpenSSL)")
        );
        let log = p.log();
        assert!(
            log.lines().any(|l| l.contains("legacy TLS session")
                && l.contains("peer=127.0.0.1:")
                && l.contains("protocol=TLSv1.0")
                && l.contains(&format!("cipher={suite}"))),
            "no legacy-session line for the admin:\n{log}"
        );
    }
    assert!(p.log().contains("legacy TLS is on"), "start-up warning");
}

#[tokio::test(flavor = "multi_thread")]
async fn tls11_on_the_implicit_tls_port() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, legacy_on).await;
    let smtps = p.smtps.expect("implicit TLS listener");
    let conv = s_client(
        smtps,
        "implicit",
        "-tls1_1",
        "DEFAULT:@SECLEVEL=0",
        "tls11 implicit",
    );
    assert!(conv.replies[0].starts_with("220 "), "{:#?}", conv.replies);
    conv.assert_complete("tls11 implicit");
    let got = up.wait_for(1).await;
    assert!(got[0].data == expected_upstream("tls11 implicit"));
    assert!(queue_tls(&p, "tls11 implicit").starts_with("TLSv1.1 "));
}

#[tokio::test(flavor = "multi_thread")]
async fn off_by_default_tls10_refused_tls12_works() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.tls_listen", vec!["127.0.0.1:0"]);
    })
    .await;
    let conv = s_client(
        p.smtp,
        "starttls",
        "-tls1",
        "AES128-SHA:@SECLEVEL=0",
        "refused",
    );
    conv.assert_refused("STARTTLS TLS 1.0, setting off");
    let conv = s_client(
        p.smtps.unwrap(),
        "implicit",
        "-tls1",
        "DEFAULT:@SECLEVEL=0",
        "refused",
    );
    conv.assert_refused("implicit TLS 1.0, setting off");
    assert!(p.queue().is_empty(), "nothing queued");
    assert_rustls_refused(&p, 2);
    let conv = s_client(p.smtp, "starttls", "-tls1_2", "", "tls12 still works");
    conv.assert_complete("TLS 1.2");
    let got = up.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].data == expected_upstream("tls12 still works"));
    assert_eq!(queue_tls(&p, "tls12 still works"), "TLSv1.2", "rustls");
    assert!(!p.log().contains("legacy TLS"), "{}", p.log());
}

/// smtplib with a TLS 1.0-only context, from a chosen source address.
/// argv: source host port. Prints the end-of-DATA reply.
const PY_TLS10_FROM: &str = r#"
import smtplib, ssl, sys
source, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1
ctx.maximum_version = ssl.TLSVersion.TLSv1
ctx.set_ciphers("AES128-SHA:@SECLEVEL=0")
s = smtplib.SMTP(host, port, timeout=60, source_address=(source, 0))
s.ehlo("old-scanner")
s.starttls(context=ctx)
s.ehlo("old-scanner")
s.mail("scanner@contoso.com")
s.rcpt("bob@contoso.com")
code, reply = s.data(b"Subject: from " + source.encode() + b"\r\n\r\nold device\r\n")
print(code, reply.decode())
s.quit()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn only_addresses_in_legacy_tls_allow_get_it() {
    // 127.0.0.0/8 may relay; only 127.0.0.2 gets legacy TLS.
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        legacy_on(cfg);
        set(cfg, "listener.legacy_tls_allow", vec!["127.0.0.2/32"]);
    })
    .await;
    // From 127.0.0.1: rustls, so TLS 1.0 is refused even with the setting on.
    let conv = s_client(
        p.smtp,
        "starttls",
        "-tls1",
        "AES128-SHA:@SECLEVEL=0",
        "outside",
    );
    conv.assert_refused("TLS 1.0 from outside legacy_tls_allow");
    assert_rustls_refused(&p, 1);
    assert!(p.queue().is_empty(), "nothing queued");
    // From 127.0.0.2, on the same listener: TLS 1.0 works.
    let port = p.smtp.port().to_string();
    let out = python(PY_TLS10_FROM, &["127.0.0.2", "127.0.0.1", &port]);
    assert!(out.status.success(), "{}", text(&out));
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(reply.starts_with("250 2.0.0 Ok: queued as "), "{reply}");
    let got = up.wait_for(1).await;
    assert!(String::from_utf8_lossy(&got[0].data).starts_with("Subject: from 127.0.0.2\r\n"));
    assert_eq!(
        queue_tls(&p, "from 127.0.0.2"),
        "TLSv1.0 AES128-SHA (OpenSSL)"
    );
    // And TLS 1.2 from 127.0.0.1 still works (rustls, no suite recorded).
    let conv = s_client(p.smtp, "starttls", "-tls1_2", "", "outside tls12");
    conv.assert_complete("TLS 1.2 from outside");
    assert_eq!(queue_tls(&p, "outside tls12"), "TLSv1.2");
}
