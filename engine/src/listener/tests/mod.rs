//! Session tests: a real listener on 127.0.0.1:0 with a temp-dir spool,
//! driven by a client that speaks raw SMTP. No sleeps: every step waits for
//! a reply, and timeouts are configured short where they are the subject.

mod abuse;
mod device_auth;
mod legacy;
mod limits;
mod quirks;
mod tls_tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::*;

/// `count` deterministic pseudo-random inputs (xorshift64 from `seed`),
/// each under `max_len` bytes drawn from `alphabet`: the property tests of
/// the DATA machine and the header filter.
pub(crate) fn random_inputs(
    seed: u64,
    alphabet: &[u8],
    max_len: u64,
    count: usize,
) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut seed = seed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..count).map(move |_| {
        let len = (next() % max_len) as usize;
        (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect()
    })
}
use crate::events::Events;
use crate::spool::MessageInfo;

pub const HOST: &str = "relay.test";

pub struct Server {
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    pub spool: Spool,
    pub shutdown: watch::Sender<bool>,
    pub task: JoinHandle<()>,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(
        auth: DeviceAuth,
        tls: bool,
        tweak: impl FnOnce(&mut ListenerConfig),
    ) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ListenerConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..Default::default()
        };
        if tls {
            cfg.tls_listen = vec!["127.0.0.1:0".parse().unwrap()];
        }
        tweak(&mut cfg);
        let spool = Spool::open(&dir.path().join("spool"), Events::new())
            .await
            .unwrap();
        let legacy_tls = match tls {
            true => super::LegacyTls::new(&cfg, dir.path(), HOST).unwrap(),
            false => None,
        };
        let tls = tls.then(|| super::tls::server_config(&cfg, dir.path(), HOST).unwrap());
        let listener = Listener::bind(ListenerContext {
            config: Arc::new(cfg),
            spool: spool.clone(),
            device_auth: auth,
            tls,
            legacy_tls,
            hostname: HOST.into(),
            internal_domains: None,
        })
        .await
        .unwrap();
        let addrs = listener.local_addrs();
        let addr = addrs.iter().find(|(_, t)| !t).unwrap().0;
        let tls_addr = addrs.iter().find(|(_, t)| *t).map(|a| a.0);
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(listener.serve(rx));
        Server {
            addr,
            tls_addr,
            spool,
            shutdown,
            task,
            dir,
        }
    }

    pub async fn plain() -> Server {
        Server::start(DeviceAuth::none(), false, |_| {}).await
    }

    pub async fn connect(&self) -> Client<TcpStream> {
        let mut c = Client::new(TcpStream::connect(self.addr).await.unwrap());
        let greeting = c.reply().await;
        assert_eq!(greeting, format!("220 {HOST} ESMTP Postern ready"));
        c
    }

    pub fn messages(&self) -> Vec<MessageInfo> {
        self.spool.list()
    }

    pub async fn stop(self) {
        self.shutdown.send(true).unwrap();
        self.task.await.unwrap();
    }
}

pub struct Client<S> {
    io: BufReader<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(s: S) -> Client<S> {
        Client {
            io: BufReader::new(s),
        }
    }

    pub fn into_inner(self) -> S {
        assert!(self.io.buffer().is_empty(), "unread server bytes");
        self.io.into_inner()
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).await.unwrap();
    }

    /// One whole (possibly multi-line) reply, lines joined by "\n";
    /// empty when the server closed the connection.
    pub async fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.io.read_line(&mut line).await.unwrap_or(0) == 0 {
                break;
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Asserts the reply starts with `want`.
    pub async fn expect(&mut self, line: &str, want: &str) -> String {
        let reply = self.cmd(line).await;
        assert!(
            reply.starts_with(want),
            "{line:?}: expected {want:?}, got {reply:?}"
        );
        reply
    }

    /// MAIL, RCPT(s), DATA, content (already SMTP-encoded, with terminator).
    pub async fn send_message(&mut self, from: &str, to: &[&str], wire: &[u8]) -> String {
        self.expect(&format!("MAIL FROM:<{from}>"), "250 2.1.0")
            .await;
        for rcpt in to {
            self.expect(&format!("RCPT TO:<{rcpt}>"), "250 2.1.5").await;
        }
        self.expect("DATA", "354").await;
        self.send(wire).await;
        self.reply().await
    }
}

pub fn queued_id(reply: &str) -> String {
    let id = reply
        .strip_prefix("250 2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not queued: {reply}"));
    id.to_string()
}

#[tokio::test]
async fn plain_send_is_queued_with_envelope_and_normalised_content() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    let ehlo = c.expect("EHLO scanner-3", "250-relay.test").await;
    for ext in [
        "PIPELINING",
        "SIZE 36700160",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(
            ehlo.lines().any(|l| l[4..] == *ext),
            "{ext} missing in {ehlo}"
        );
    }
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    let wire =
        b"Subject: Scan\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\n..dotted\nbare lf\r\nend\r\n.\r\n";
    let reply = c
        .send_message("scanner@contoso.com", &["a@x.com", "b@x.com"], wire)
        .await;
    let id: crate::spool::MessageId = queued_id(&reply).parse().unwrap();
    let info = server.spool.get(&id).unwrap();
    assert_eq!(info.from, "scanner@contoso.com");
    assert_eq!(info.to, ["a@x.com", "b@x.com"]);
    assert_eq!(info.client.helo, "scanner-3");
    assert!(info.client.peer.starts_with("127.0.0.1:"));
    assert_eq!(
        (info.client.auth_user.clone(), info.client.tls.clone()),
        (None, None)
    );
    assert_eq!(
        server.spool.read_content(&id).await.unwrap(),
        b"Subject: Scan\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\n.dotted\r\nbare lf\r\nend\r\n"
    );
    // A second transaction on the same connection; the null sender.
    let reply = c.send_message("", &["a@x.com"], b"x\r\n.\r\n").await;
    queued_id(&reply);
    assert_eq!(server.messages().len(), 2);
    assert_eq!(server.messages()[1].from, "");
    c.expect("QUIT", "221 2.0.0").await;
    assert_eq!(c.reply().await, "", "closed after QUIT");
    server.stop().await;
}

#[tokio::test]
async fn helo_only_clients_work() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    assert_eq!(c.cmd("HELO printer").await, "250 relay.test");
    queued_id(
        &c.send_message("p@x.com", &["a@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    server.stop().await;
}

#[tokio::test]
async fn command_replies_table() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    let table = [
        ("MAIL FROM:<a@x.com>", "503 5.5.1"), // before EHLO
        ("EHLO t", "250-relay.test"),
        ("NOOP", "250 2.0.0"),
        (
            "VRFY bob",
            "252 2.5.2 Cannot VRFY user, but will accept message",
        ),
        ("HELP", "214 2.0.0"),
        ("FROBNICATE", "500 5.5.1"),
        ("RCPT TO:<a@x.com>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("MAIL TO:<a@x.com>", "501 5.5.4"),
        ("MAIL FROM:<a@x.com> FOO=BAR", "555 5.5.4"),
        ("STARTTLS", "502 5.5.1"),
        ("AUTH PLAIN", "502 5.5.1"),
        ("EXPN staff", "502 5.5.1"),
        ("MAIL FROM:<a@x.com>", "250 2.1.0"),
        ("MAIL FROM:<a@x.com>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("RCPT TO:<>", "501 5.1.3"),
        ("RCPT TO:<nodomain>", "501 5.1.3"),
        ("RSET", "250 2.0.0"),
        ("RCPT TO:<a@x.com>", "503 5.5.1"),
        ("MAIL FROM:<josé@x.com>", "553 5.6.7"),
        ("mail from:<a@x.com> BODY=8BITMIME SMTPUTF8", "250 2.1.0"),
        ("RCPT TO:<jürgen@x.com>", "250 2.1.5"),
        ("RCPT TO:<Bob@Example.COM>", "250 2.1.5"),
        ("QUIT", "221 2.0.0"),
    ];
    for (line, want) in table {
        c.expect(line, want).await;
    }
    assert!(server.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn not_allowed_client_is_refused_and_nothing_queued() {
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.allow = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let reply = c.cmd("MAIL FROM:<spam@x.com>").await;
    assert_eq!(reply, "554 5.7.1 Relaying denied: 127.0.0.1 is not allowed to send through Postern; add this device's address to [listener] allow");
    // It cannot log in either (no device users): closed, its slot freed.
    c.send(b"RCPT TO:<v@x.com>\r\nDATA\r\nhello\r\n.\r\n").await;
    assert_eq!(c.reply().await, "", "closed after the refusal");
    assert!(server.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn pipelined_transactions_and_bytes_after_the_terminator() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.send(b"EHLO p\r\nMAIL FROM:<a@x.com>\r\nRCPT TO:<b@x.com>\r\nRCPT TO:<c@x.com>\r\nDATA\r\n")
        .await;
    assert!(c.reply().await.starts_with("250-relay.test"));
    for want in ["250 2.1.0", "250 2.1.5", "250 2.1.5", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(want), "{want}: {r}");
    }
    c.send(b"one\r\n.\r\nMAIL FROM:<d@x.com>\r\nRCPT TO:<e@x.com>\r\nDATA\r\ntwo\r\n.\r\nQUIT\r\n")
        .await;
    queued_id(&c.reply().await);
    for want in ["250 2.1.0", "250 2.1.5", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(want), "{want}: {r}");
    }
    queued_id(&c.reply().await);
    assert!(c.reply().await.starts_with("221"));
    let msgs = server.messages();
    assert_eq!(msgs.len(), 2);
    let two = server.spool.read_content(&msgs[1].id).await.unwrap();
    assert!(two.ends_with(b">\r\n\r\ntwo\r\n"), "{two:?}");
    assert_eq!(msgs[1].to, ["e@x.com"]);
    server.stop().await;
}

#[tokio::test]
async fn smuggling_over_the_wire_yields_one_message() {
    for seq in [
        "\n.\n",
        "\r.\r",
        "\n.\r\n",
        "\r\n.\n",
        "\r.\r\n",
        "\r\n.\r",
        "\r\n\0.\r\n",
    ] {
        let server = Server::plain().await;
        let mut c = server.connect().await;
        c.expect("EHLO x", "250").await;
        let wire = format!(
            "Subject: t\r\n\r\nbody{seq}MAIL FROM:<evil@x>\r\nRCPT TO:<v@x>\r\nDATA\r\nsmuggled\r\n\r\n.\r\n"
        );
        let reply = c
            .send_message("a@x.com", &["b@x.com"], wire.as_bytes())
            .await;
        queued_id(&reply);
        c.expect("NOOP", "250 2.0.0").await; // no stray replies queued up
        let msgs = server.messages();
        assert_eq!(msgs.len(), 1, "seq {seq:?}");
        assert_eq!(msgs[0].to, ["b@x.com"]);
        let content = server.spool.read_content(&msgs[0].id).await.unwrap();
        let text = String::from_utf8(content).unwrap();
        assert!(
            text.contains("MAIL FROM:<evil@x>") && text.contains("smuggled"),
            "{text:?}"
        );
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n', '\0']),
            "{text:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn shutdown_mid_data_is_not_acknowledged_and_serve_returns() {
    let server = Server::plain().await;
    let mut idle = server.connect().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.expect("MAIL FROM:<a@x.com>", "250").await;
    c.expect("RCPT TO:<b@x.com>", "250").await;
    c.expect("DATA", "354").await;
    c.send(b"Subject: half\r\n\r\npart of it").await;
    server.shutdown.send(true).unwrap();
    let shutting = "421 4.3.2 Postern is shutting down, try again shortly";
    assert_eq!(c.reply().await, shutting);
    assert_eq!(idle.reply().await, shutting);
    server.task.await.unwrap();
    assert!(
        server.spool.list().is_empty(),
        "a message without 250 is not kept"
    );
    assert_eq!(c.reply().await, "", "closed");
}

/// Bad commands are answered until the session's allowance is used up,
/// then it is closed: few before HELO/EHLO (nothing SMTP-shaped yet), more
/// after.
#[tokio::test]
async fn too_many_bad_commands_close_the_connection() {
    let server = Server::plain().await;
    for (hello, allowed) in [(None, 3), (Some("EHLO x"), 20)] {
        let mut c = server.connect().await;
        if let Some(hello) = hello {
            c.expect(hello, "250").await;
        }
        c.send("FOO\r\n".repeat(allowed + 10).as_bytes()).await;
        for _ in 0..allowed {
            assert!(c.reply().await.starts_with("500 5.5.1"), "{hello:?}");
        }
        assert_eq!(
            c.reply().await,
            "421 4.7.0 Too many errors, closing connection",
            "{hello:?}"
        );
        assert_eq!(c.reply().await, "", "{hello:?}");
    }
    server.stop().await;
}

/// A browser's POST with SMTP in its body (a web page on an allowed
/// machine, `fetch(..., {mode: "no-cors"})`): the session ends at the
/// request line and nothing in the body is carried out.
#[tokio::test]
async fn an_http_request_ends_the_session_at_once() {
    let server = Server::plain().await;
    let body = "EHLO x\r\nMAIL FROM:<a@x.com>\r\nRCPT TO:<victim@x.com>\r\nDATA\r\nSubject: spam\r\n\r\nspam\r\n.\r\nQUIT\r\n";
    for request in [
        format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:2525\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        // Header-shaped lines first (a request line the parser mangled).
        format!("Host: 127.0.0.1:2525\r\nContent-Type: text/plain\r\n\r\n{body}"),
        format!("PUT /x HTTP/1.1\r\n\r\n{body}"),
    ] {
        let mut c = server.connect().await;
        c.send(request.as_bytes()).await;
        assert_eq!(
            c.reply().await,
            "421 4.7.0 This is an SMTP server, not a web server; closing connection"
        );
        assert_eq!(c.reply().await, "", "closed, nothing else answered");
    }
    // After EHLO an HTTP request line still ends the session.
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.send(format!("GET / HTTP/1.1\r\n{body}").as_bytes()).await;
    assert!(c
        .reply()
        .await
        .starts_with("421 4.7.0 This is an SMTP server"));
    assert_eq!(c.reply().await, "");
    assert!(server.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn failed_commit_is_451_never_250() {
    let server = Server::plain().await;
    // Make the final rename fail: the message directory becomes a file.
    let msg_dir = server.dir.path().join("spool").join("msg");
    std::fs::remove_dir_all(&msg_dir).unwrap();
    std::fs::write(&msg_dir, b"not a directory").unwrap();
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let reply = c
        .send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
        .await;
    assert_eq!(
        reply,
        "451 4.3.0 Could not store the message, please try again"
    );
    assert!(server.messages().is_empty());
    c.expect("NOOP", "250").await;
    server.stop().await;
}
