//! Sending test mail the way a device does (Python's smtplib over a fresh
//! connection), and small lookups on the queue's JSON.

use serde_json::Value;

use super::{python, text, Postern, MAILBOX};

const SEND: &str = r#"
import smtplib, sys
sender, host, port, subject = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rcpts = sys.argv[5:]
msg = ("From: " + sender + "\r\nTo: " + ", ".join(rcpts) + "\r\nSubject: " + subject +
       "\r\nMessage-ID: <" + subject + "@test.postern>\r\n\r\nBody of " + subject + ".\r\n")
s = smtplib.SMTP(host, port, timeout=60)
s.ehlo("scanner.test")
s.mail(sender)
for r in rcpts:
    s.rcpt(r)
code, reply = s.data(msg.encode())
print(code, reply.decode())
s.quit()
"#;

/// Sends one message from [`MAILBOX`] with this Subject (and Message-ID) to
/// `rcpts` over a fresh connection; returns the device's reply to the end
/// of DATA, e.g. `"250 2.0.0 Ok: queued as ..."`.
pub fn send(p: &Postern, subject: &str, rcpts: &[&str]) -> String {
    let port = p.smtp.port().to_string();
    let host = p.smtp.ip().to_string();
    let mut args = vec![MAILBOX, host.as_str(), port.as_str(), subject];
    args.extend_from_slice(rcpts);
    let out = python(SEND, &args);
    assert!(out.status.success(), "send {subject}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The one message in the queue with this Subject.
pub fn by_subject<'a>(q: &'a [Value], subject: &str) -> &'a Value {
    q.iter()
        .find(|m| m["subject"] == subject)
        .unwrap_or_else(|| panic!("no message {subject:?} in {q:#?}"))
}

/// `m["field"]` as a string ("" when absent).
pub fn field<'a>(m: &'a Value, name: &str) -> &'a str {
    m[name].as_str().unwrap_or("")
}

/// No message in the queue has failed.
pub fn none_failed(q: &[Value]) -> bool {
    q.iter().all(|m| m["state"] != "failed")
}
