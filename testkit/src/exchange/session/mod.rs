//! One SMTP connection to the fake Exchange: reads commands (pipelined input
//! is buffered and handled one command at a time), answers them the way
//! Exchange Online does, upgrades to TLS on STARTTLS, and records accepted
//! messages in the shared state. The mail transaction itself is in [`mail`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::auth::{self, AuthError};
use super::tls::cert_names;
use super::{Fault, Role, Shared, SlotGuard, Stage};

mod mail;

/// Longest command line accepted (generous on purpose: RFC 5321 says 512).
const MAX_LINE: usize = 1 << 20;

/// Read chunk size.
const READ_CHUNK: usize = 64 * 1024;

/// The session ends: peer gone, I/O error, QUIT, or a deliberate drop.
struct Closed;

type Flow<T = ()> = Result<T, Closed>;

impl From<io::Error> for Closed {
    fn from(_: io::Error) -> Self {
        Closed
    }
}

/// The transport, plain until STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only while a TLS handshake has taken the socket.
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(data).await,
            Conn::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Conn::Gone => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// What a fault check decided.
enum Injected {
    /// Nothing to do.
    No,
    /// A reply fault was sent; the command is answered.
    Replied,
    /// A fault the caller handles itself (TLS faults).
    Other(Fault),
}

struct Session {
    shared: Arc<Shared>,
    conn: Conn,
    id: u64,
    peer: SocketAddr,
    /// Bytes read but not yet handled.
    buf: Vec<u8>,
    helo: bool,
    tls_version: Option<String>,
    client_cert_names: Vec<String>,
    /// STARTTLS withheld on this connection ([`Fault::NoStartTls`]).
    no_starttls: bool,
    /// (mailbox, mechanism) once AUTH succeeded.
    auth: Option<(String, String)>,
    /// Concurrent-session slot for the mailbox, if one was free.
    slot: Option<SlotGuard>,
    mail_from: Option<String>,
    rcpts: Vec<String>,
    /// Content of a BDAT transfer in progress.
    bdat: Option<DataReceiverBdat>,
}

/// BDAT chunks collected so far (binary: no unstuffing, no bare-LF check).
struct DataReceiverBdat {
    content: Vec<u8>,
    too_big: bool,
}

/// Serves one connection until it ends.
pub(super) async fn run(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr, id: u64) {
    let mut session = Session {
        shared,
        conn: Conn::Plain(stream),
        id,
        peer,
        buf: Vec::new(),
        helo: false,
        tls_version: None,
        client_cert_names: Vec::new(),
        no_starttls: false,
        auth: None,
        slot: None,
        mail_from: None,
        rcpts: Vec::new(),
        bdat: None,
    };
    let _ = session.serve().await;
    // Free the mailbox's slot before the socket closes, so a client that
    // saw the close can count on the slot being free.
    session.slot = None;
    session.shared.transcript(id, "-- closed");
}

impl Session {
    fn host(&self) -> &str {
        &self.shared.opts.hostname
    }

    async fn reply(&mut self, line: &str) -> Flow {
        self.shared.transcript(self.id, &format!("S: {line}"));
        self.conn
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Reads more input onto `buf`; the peer closing ends the session.
    async fn fill(&mut self) -> Flow {
        let mut chunk = vec![0u8; READ_CHUNK];
        let n = self.conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(Closed);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Next line without its CRLF (a bare LF also ends a command line).
    async fn read_line(&mut self) -> Flow<String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                self.reply("500 5.5.2 Line too long").await?;
                return Err(Closed);
            }
            self.fill().await?;
        }
    }

    /// Checks for a fault at `stage`; sends reply faults, closes on drops.
    async fn inject(&mut self, stage: Stage, rcpt: Option<&str>) -> Flow<Injected> {
        match self.shared.take_fault(stage, rcpt) {
            None => Ok(Injected::No),
            Some(Fault::Reply { reply, .. } | Fault::RcptReply { reply, .. }) => {
                self.reply(&reply).await?;
                Ok(Injected::Replied)
            }
            Some(Fault::DropConnection { .. }) => {
                self.shared
                    .transcript(self.id, &format!("-- fault: drop at {stage:?}"));
                Err(Closed)
            }
            Some(other) => Ok(Injected::Other(other)),
        }
    }

    fn reset_transaction(&mut self) {
        self.mail_from = None;
        self.rcpts.clear();
        self.bdat = None;
    }

    async fn serve(&mut self) -> Flow {
        match self.shared.take_fault(Stage::Connect, None) {
            Some(Fault::DropConnection { .. }) => return Err(Closed),
            // A 2xx replaces the banner; anything else is said, then we hang up.
            Some(Fault::Reply { reply, .. }) => {
                self.reply(&reply).await?;
                if !reply.starts_with('2') {
                    return Err(Closed);
                }
            }
            _ => {
                let date = crate::clock::banner_date(SystemTime::now());
                let banner = format!(
                    "220 {} Microsoft ESMTP MAIL Service ready at {date}",
                    self.host()
                );
                self.reply(&banner).await?;
            }
        }
        loop {
            let line = self.read_line().await?;
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim()),
                None => (line.trim().to_ascii_uppercase(), ""),
            };
            let logged = if verb == "AUTH" {
                let mech = arg.split(' ').next().unwrap_or_default();
                format!("C: AUTH {mech} <redacted>")
            } else {
                format!("C: {line}")
            };
            self.shared.transcript(self.id, &logged);
            match verb.as_str() {
                "EHLO" => self.ehlo(true).await?,
                "HELO" => self.ehlo(false).await?,
                "STARTTLS" => self.starttls().await?,
                "AUTH" => self.auth(arg).await?,
                "MAIL" => self.mail(arg).await?,
                "RCPT" => self.rcpt(arg).await?,
                "DATA" => self.data().await?,
                "BDAT" => self.bdat(arg).await?,
                "RSET" => {
                    self.reset_transaction();
                    self.reply("250 2.0.0 Resetting").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "VRFY" => self.reply("252 2.1.5 Cannot VRFY user").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 Service closing transmission channel")
                        .await?;
                    return Err(Closed);
                }
                _ => self.reply("500 5.3.3 Unrecognized command").await?,
            }
        }
    }

    fn auth_advertised(&self) -> bool {
        let opts = &self.shared.opts;
        opts.role == Role::Submission && (self.tls_version.is_some() || !opts.require_tls_for_auth)
    }

    async fn ehlo(&mut self, extended: bool) -> Flow {
        match self.inject(Stage::Ehlo, None).await? {
            Injected::Replied => return Ok(()),
            Injected::Other(Fault::NoStartTls) => self.no_starttls = true,
            Injected::No | Injected::Other(_) => {}
        }
        self.helo = true;
        self.reset_transaction();
        let hello = format!("{} Hello [{}]", self.host(), self.peer.ip());
        if !extended {
            return self.reply(&format!("250 {hello}")).await;
        }
        let mut lines = vec![
            hello,
            "SIZE 157286400".to_string(),
            "PIPELINING".to_string(),
            "DSN".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
        ];
        if self.tls_version.is_none() && !self.no_starttls {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_advertised() {
            lines.push("AUTH LOGIN XOAUTH2".to_string());
        }
        for ext in ["8BITMIME", "BINARYMIME", "CHUNKING", "SMTPUTF8"] {
            lines.push(ext.to_string());
        }
        let last = lines.len() - 1;
        for (i, l) in lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.reply(&format!("250{sep}{l}")).await?;
        }
        Ok(())
    }

    async fn starttls(&mut self) -> Flow {
        if !self.helo {
            return self.reply("503 5.5.2 Send hello first").await;
        }
        if self.tls_version.is_some() {
            return self.reply("503 5.5.1 TLS already active").await;
        }
        let mut config = self.shared.tls.good.clone();
        match self.inject(Stage::StartTls, None).await? {
            Injected::Replied => return Ok(()),
            Injected::Other(Fault::NoStartTls) => self.no_starttls = true,
            Injected::Other(Fault::BadTlsCertificate) => config = self.shared.tls.wrong.clone(),
            Injected::No | Injected::Other(_) => {}
        }
        if self.no_starttls {
            return self.reply("502 5.5.1 Command not implemented").await;
        }
        self.reply("220 2.0.0 SMTP server ready").await?;
        // Anything pipelined after STARTTLS is discarded (CVE-2011-0411).
        self.buf.clear();
        let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Gone) else {
            return Err(Closed);
        };
        let stream = match TlsAcceptor::from(config).accept(tcp).await {
            Ok(s) => s,
            Err(e) => {
                self.shared
                    .transcript(self.id, &format!("-- TLS handshake failed: {e}"));
                return Err(Closed);
            }
        };
        let (_, server) = stream.get_ref();
        self.tls_version = server.protocol_version().map(|v| format!("{v:?}"));
        self.client_cert_names = server
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| cert_names(c))
            .unwrap_or_default();
        self.shared.transcript(
            self.id,
            &format!(
                "-- TLS {} established, client cert names {:?}",
                self.tls_version.as_deref().unwrap_or("?"),
                self.client_cert_names
            ),
        );
        self.conn = Conn::Tls(Box::new(stream));
        // RFC 3207: forget everything learnt before TLS.
        self.helo = false;
        self.auth = None;
        self.slot = None;
        self.reset_transaction();
        Ok(())
    }

    async fn auth(&mut self, arg: &str) -> Flow {
        if !self.helo {
            return self.reply("503 5.5.2 Send hello first").await;
        }
        if !self.auth_advertised() {
            return self
                .reply("504 5.7.4 Unrecognized authentication type")
                .await;
        }
        if self.auth.is_some() {
            return self.reply("503 5.5.1 Already authenticated").await;
        }
        let mut parts = arg.split_whitespace();
        let mech = parts.next().unwrap_or_default().to_ascii_uppercase();
        let initial = parts.next().map(str::to_string);
        if !matches!(mech.as_str(), "XOAUTH2" | "LOGIN" | "PLAIN") {
            return self
                .reply("504 5.7.4 Unrecognized authentication type")
                .await;
        }
        if let Injected::Replied = self.inject(Stage::Auth, None).await? {
            self.shared.lock().stats.auth_failures += 1;
            return Ok(());
        }
        let result = match mech.as_str() {
            "XOAUTH2" => self.auth_xoauth2(initial).await?,
            "LOGIN" => self.auth_login(initial).await?,
            _ => self.auth_plain(initial).await?,
        };
        match result {
            Ok(user) => {
                self.shared.lock().stats.auth_successes += 1;
                self.slot = self.shared.try_slot(&user);
                self.auth = Some((user, mech));
                self.reply("235 2.7.0 Authentication successful").await
            }
            Err(e) => {
                self.shared.lock().stats.auth_failures += 1;
                self.reply(e.reply()).await
            }
        }
    }

    /// Sends a challenge and reads the (redacted in the transcript) answer.
    async fn challenge(&mut self, prompt: &str) -> Flow<String> {
        self.reply(prompt).await?;
        let line = self.read_line().await?;
        self.shared.transcript(self.id, "C: <redacted>");
        Ok(line)
    }

    async fn auth_xoauth2(&mut self, initial: Option<String>) -> Flow<Result<String, AuthError>> {
        let line = match initial {
            Some(l) => l,
            // Exchange sends "334 " with a trailing space; lettre needs it.
            None => self.challenge("334 ").await?,
        };
        Ok(auth::decode(&line)
            .and_then(|raw| auth::parse_xoauth2(&raw))
            .and_then(|(user, token)| {
                auth::check_token(&self.shared.opts, &user, &token).map(|()| user)
            }))
    }

    async fn auth_login(&mut self, initial: Option<String>) -> Flow<Result<String, AuthError>> {
        let user_line = match initial {
            Some(l) => l,
            None => self.challenge("334 VXNlcm5hbWU6").await?,
        };
        let user = match auth::decode(&user_line) {
            Ok(u) => String::from_utf8_lossy(&u).into_owned(),
            Err(e) => return Ok(Err(e)),
        };
        let pass_line = self.challenge("334 UGFzc3dvcmQ6").await?;
        Ok(auth::decode(&pass_line).and_then(|p| {
            let pass = String::from_utf8_lossy(&p);
            auth::check_password(&self.shared.opts, &user, &pass).map(|()| user)
        }))
    }

    async fn auth_plain(&mut self, initial: Option<String>) -> Flow<Result<String, AuthError>> {
        let line = match initial {
            Some(l) => l,
            None => self.challenge("334 ").await?,
        };
        Ok(auth::decode(&line)
            .and_then(|raw| auth::parse_plain(&raw))
            .and_then(|(user, pass)| {
                auth::check_password(&self.shared.opts, &user, &pass).map(|()| user)
            }))
    }
}
