//! Graph mode for the end-to-end tests: the fake identity platform (with
//! the Graph roles the test asks for) and a fake Microsoft Graph that
//! accepts its tokens, a config pointing `postern serve` at them, and a
//! device sending a message whose headers and envelope differ.

use postern_testkit::{FakeGraph, GraphMailbox, GraphOptions, IdentityOptions, TraceOptions};

use super::{python, set, text, Postern, Upstream, MAILBOX};
use postern_testkit::FakeExchangeOptions;

/// The fakes of a Graph test. `up.exchange` is there but unused.
pub struct GraphUpstream {
    pub up: Upstream,
    pub graph: FakeGraph,
}

impl GraphUpstream {
    /// App-only tokens with these Graph `roles` (e.g. `["Mail.Send"]`).
    pub async fn start(roles: &[&str]) -> GraphUpstream {
        GraphUpstream::start_with_mailboxes(roles, &[]).await
    }

    /// As [`GraphUpstream::start`], with these mailboxes besides [`MAILBOX`].
    #[allow(dead_code)]
    pub async fn start_with_mailboxes(roles: &[&str], others: &[&str]) -> GraphUpstream {
        GraphUpstream::start_traced(roles, others, TraceOptions::default()).await
    }

    /// As [`GraphUpstream::start_with_mailboxes`], with the fake message
    /// trace's settings (how late rows appear, page size, details limit).
    #[allow(dead_code)]
    pub async fn start_traced(
        roles: &[&str],
        others: &[&str],
        trace: TraceOptions,
    ) -> GraphUpstream {
        let up = Upstream::start_with(
            FakeExchangeOptions::default(),
            IdentityOptions {
                graph_roles: roles.iter().map(|r| r.to_string()).collect(),
                ..Default::default()
            },
        )
        .await;
        let graph = FakeGraph::start(GraphOptions {
            identity: Some(up.identity.clone()),
            mailboxes: std::iter::once(MAILBOX)
                .chain(others.iter().copied())
                .map(GraphMailbox::new)
                .collect(),
            rbac_scope: None,
            trace,
        })
        .await;
        GraphUpstream { up, graph }
    }

    /// `postern serve` in Graph mode against these fakes, client credentials.
    pub async fn serve(&self, change: impl FnOnce(&mut toml::Table)) -> Postern {
        let endpoint = self.graph.endpoint();
        Postern::start_with(&self.up, move |c| {
            set(c, "upstream.mode", "graph");
            c["upstream"].as_table_mut().unwrap().remove("host");
            c["upstream"].as_table_mut().unwrap().remove("port");
            set(c, "graph.endpoint", endpoint);
            change(c);
        })
        .await
    }
}

const SEND_RAW: &str = r#"
import smtplib, sys
host, port, sender, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rcpts = sys.argv[5:]
msg = open(path, "rb").read()
s = smtplib.SMTP(host, port, timeout=300)
s.ehlo("scanner.test")
s.mail(sender)
for r in rcpts:
    s.rcpt(r)
code, reply = s.data(msg)
print(code, reply.decode())
s.quit()
"#;

/// Sends `message` (bytes as written, CRLF lines) from [`MAILBOX`] to the
/// envelope `rcpts`, whatever its headers say; returns the reply to DATA.
pub fn send_raw(p: &Postern, message: &[u8], rcpts: &[&str]) -> String {
    let path = p.dir.path().join(format!("msg-{}.eml", rcpts.len()));
    std::fs::write(&path, message).unwrap();
    let (host, port) = (p.smtp.ip().to_string(), p.smtp.port().to_string());
    let mut args = vec![
        host.as_str(),
        port.as_str(),
        MAILBOX,
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(rcpts);
    let out = python(SEND_RAW, &args);
    assert!(out.status.success(), "send: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A scan of `size` bytes (deterministic noise, as a scanner's PDF is to
/// compression) and the message carrying it as a base64 attachment.
pub fn scan_message(subject: &str, size: usize) -> (Vec<u8>, Vec<u8>) {
    use base64::Engine as _;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let scan: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&scan);
    let mut m = format!(
        "From: Scanner <{MAILBOX}>\r\nTo: Alice <alice@contoso.com>, dave@contoso.com\r\nSubject: {subject}\r\n\
         Message-ID: <{subject}@test.postern>\r\nMIME-Version: 1.0\r\n\
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
    (m, scan)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
