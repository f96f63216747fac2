//! One device connection, from greeting to QUIT: the ESMTP state machine
//! (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES,
//! SMTPUTF8, STARTTLS and AUTH), the relay decision, and DATA streamed to
//! the spool. Replies carry enhanced status codes except the greeting, the
//! HELO/EHLO reply and the 334/354 intermediates (RFC 2034 §3).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{MailFrom, RcptTo, Request};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::conn::{Conn, End, Line, Stream};
use super::{ConnSlot, Shared};

/// Bound on the TLS handshake (STARTTLS and implicit TLS).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on writing a reply to a device that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bad commands tolerated before the connection is closed (stops e.g. a
/// browser pointed at the port from getting a reply per header line).
const MAX_BAD_COMMANDS: usize = 20;
/// Bad commands tolerated before HELO/EHLO: a device greets first, so a
/// peer that does not is either broken or not a mail client at all.
const MAX_BAD_BEFORE_HELO: usize = 3;
/// How long any session may last, DATA included (whose own bound is
/// `3 × data_timeout`, 30 minutes by default): a session is a message or a
/// few, never a standing connection.
const MAX_SESSION_TIME: Duration = Duration::from_secs(2 * 3600);
/// Commands one session may send (10,000 RCPTs in one message fit).
const MAX_SESSION_COMMANDS: usize = 50_000;
/// An outsider (not in `listener.allow`) that has not logged in gets this
/// many commands and this much time: enough for EHLO, STARTTLS, EHLO and
/// AUTH, not enough to sit on a connection slot with NOOPs.
const OUTSIDER_COMMANDS: usize = 20;
const OUTSIDER_TIME: Duration = Duration::from_secs(60);
mod login;
mod receive;
mod syntax;

pub(crate) use syntax::auth_offered;
use syntax::{looks_like_http, parse_error_reply, valid_helo, valid_path};

const NOT_SMTP_REPLY: &str =
    "421 4.7.0 This is an SMTP server, not a web server; closing connection";
const SHUTDOWN_REPLY: &str = "421 4.3.2 Postern is shutting down, try again shortly";

/// Runs one connection to its end.
pub(crate) async fn run(
    shared: Arc<Shared>,
    stream: Stream,
    peer: SocketAddr,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
    slot: ConnSlot,
) {
    let mut session = Session {
        conn: Conn::from_stream(stream, shutdown, WRITE_TIMEOUT),
        ip: peer.ip().to_canonical(),
        peer,
        shared,
        helo: None,
        auth_user: None,
        tls: None,
        tx: None,
        bad_commands: 0,
        crlf_seen: false,
        quit: false,
    };
    tracing::debug!(%peer, implicit_tls, "device connected");
    let end = session.serve(implicit_tls).await;
    // The device's place is free before it reads the last reply.
    drop(slot);
    let hostname = &session.shared.hostname;
    match end {
        Ok(()) => {}
        Err(End::Timeout) => {
            tracing::info!(%peer, "closing an idle connection (timeout)");
            session
                .conn
                .reply(&format!("421 4.4.2 {hostname} Timeout, closing connection"));
        }
        Err(End::Shutdown) => session.conn.reply(SHUTDOWN_REPLY),
        Err(End::LineTooLong) => {
            tracing::info!(%peer, "closing: a command line without end");
            session.conn.reply(&format!(
                "421 4.7.0 {hostname} Line too long, closing connection"
            ));
        }
        Err(End::NotSmtp) => {
            session.conn.reply(NOT_SMTP_REPLY);
            session.conn.close_lingering().await;
            return;
        }
        Err(End::Closed) => tracing::debug!(%peer, "device closed the connection"),
        Err(End::Io(e)) => tracing::info!(%peer, error = %e, "connection failed"),
    }
    session.conn.close().await;
}

/// Past `max_connections` (or the address's share): a 421 and close.
pub(crate) async fn refuse_busy(
    shared: Arc<Shared>,
    tcp: TcpStream,
    implicit_tls: bool,
    reply: String,
) {
    let (_tx, shutdown) = watch::channel(false);
    let ip = tcp.peer_addr().map(|a| a.ip().to_canonical());
    let mut conn = Conn::new(tcp, shutdown, Duration::from_secs(5));
    if implicit_tls {
        let (Some(tls), Ok(ip)) = (&shared.tls, ip) else {
            return;
        };
        if conn
            .start_tls(tls, ip, Duration::from_secs(5))
            .await
            .is_err()
        {
            return;
        }
    }
    conn.reply(&reply);
    conn.close().await;
}

/// The mail transaction in progress (between MAIL and the end of DATA).
struct Transaction {
    mail_from: String,
    rcpt_to: Vec<String>,
    smtputf8: bool,
    eight_bit: bool,
}

enum Flow {
    Continue,
    Quit,
}

struct Session {
    conn: Conn,
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The peer address with IPv4-mapped IPv6 unwrapped (for `allow`).
    ip: IpAddr,
    helo: Option<String>,
    auth_user: Option<String>,
    /// TLS version once encrypted.
    tls: Option<String>,
    tx: Option<Transaction>,
    bad_commands: usize,
    /// Some line from the device ended in CRLF. Until then the device
    /// speaks bare LF, and its DATA may end with LF "." LF (see `data`).
    crlf_seen: bool,
    /// A handler that answers with no `Flow` of its own asked for the
    /// session to end after its reply (QUIT where a SASL answer was due; an
    /// outsider refused at MAIL that cannot log in): `command` turns it into
    /// `Flow::Quit`.
    quit: bool,
}

impl Session {
    async fn serve(&mut self, implicit_tls: bool) -> Result<(), End> {
        if implicit_tls {
            self.handshake().await?;
        }
        let greeting = format!("220 {} ESMTP Postern ready", self.shared.hostname);
        self.conn.reply(&greeting);
        let idle = self.shared.config.idle_timeout;
        let started = tokio::time::Instant::now();
        let mut commands = 0usize;
        loop {
            let outsider = self.auth_user.is_none() && !self.allowed();
            let (max_commands, max_time) = if outsider {
                (OUTSIDER_COMMANDS, OUTSIDER_TIME)
            } else {
                (MAX_SESSION_COMMANDS, MAX_SESSION_TIME)
            };
            let left = max_time.saturating_sub(started.elapsed());
            if commands >= max_commands || left.is_zero() {
                tracing::info!(peer = %self.peer, commands, outsider, "closing: the session used up its commands or time");
                self.conn
                    .reply("421 4.7.0 Session limit reached, closing connection");
                return Ok(());
            }
            commands += 1;
            let line = match self.conn.read_line(idle.min(left)).await? {
                Line::Text(line) => {
                    self.crlf_seen |= line.ends_with(b"\r\n");
                    line
                }
                Line::TooLong => {
                    self.bad("500 5.5.2 Line too long");
                    continue;
                }
            };
            if looks_like_http(&line, self.helo.is_none()) {
                tracing::warn!(
                    peer = %self.peer,
                    "closing: the client sent an HTTP request, not SMTP (a web page in a browser on that machine may be trying to send mail through Postern)"
                );
                return Err(End::NotSmtp);
            }
            if let Flow::Quit = self.command(&line).await? {
                return Ok(());
            }
            let limit = if self.helo.is_none() {
                MAX_BAD_BEFORE_HELO
            } else {
                MAX_BAD_COMMANDS
            };
            if self.bad_commands >= limit {
                tracing::info!(peer = %self.peer, "closing: too many bad commands");
                self.conn
                    .reply("421 4.7.0 Too many errors, closing connection");
                return Ok(());
            }
        }
    }

    fn reply(&mut self, text: &str) {
        self.conn.reply(text);
    }

    fn bad(&mut self, text: &str) {
        self.bad_commands += 1;
        self.conn.reply(text);
    }

    async fn command(&mut self, line: &[u8]) -> Result<Flow, End> {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r,
            Err(e) => {
                self.bad(&parse_error_reply(&e));
                return Ok(Flow::Continue);
            }
        };
        match request {
            Request::Ehlo { host } | Request::Helo { host } if !valid_helo(&host) => {
                tracing::info!(peer = %self.peer, "refused a HELO/EHLO name with control characters or spaces");
                self.bad("501 5.5.4 Invalid HELO/EHLO name: give the device's host name or its [address]");
            }
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to),
            Request::Data => self.data().await?,
            Request::Rset => {
                self.tx = None;
                self.reply("250 2.0.0 Ok");
            }
            Request::Noop { .. } => self.reply("250 2.0.0 Ok"),
            Request::Quit => {
                let bye = format!("221 2.0.0 {} closing connection", self.shared.hostname);
                self.reply(&bye);
                return Ok(Flow::Quit);
            }
            Request::Vrfy { .. } => self.reply("252 2.5.2 Cannot VRFY user, but will accept message"),
            Request::Help { .. } => self.reply(
                "214 2.0.0 Postern relays mail from office devices to Microsoft 365. Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
            ),
            Request::StartTls => self.starttls().await?,
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response).await?,
            Request::Lhlo { .. }
            | Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.bad("502 5.5.1 Command not implemented"),
        }
        Ok(if self.quit {
            Flow::Quit
        } else {
            Flow::Continue
        })
    }

    fn hello(&mut self, host: String, extended: bool) {
        self.tx = None;
        self.helo = Some(host);
        let name = &self.shared.hostname;
        if !extended {
            let text = format!("250 {name}");
            self.reply(&text);
            return;
        }
        let mut lines = vec![
            name.clone(),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.shared.config.max_message_bytes),
            "8BITMIME".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "SMTPUTF8".to_string(),
        ];
        if self.shared.tls.is_some() && self.tls.is_none() {
            lines.push("STARTTLS".to_string());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        lines.push("HELP".to_string());
        let last = lines.len() - 1;
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
            .collect();
        self.reply(&text.join("\r\n"));
    }

    fn allowed(&self) -> bool {
        self.shared.is_allowed(self.ip)
    }

    fn auth_offered(&self) -> bool {
        auth_offered(
            self.shared.device_auth.has_users(),
            self.tls.is_some(),
            self.ip,
            self.allowed(),
        )
    }

    async fn mail(&mut self, from: MailFrom<String>) {
        if self.helo.is_none() {
            return self.bad("503 5.5.1 Send EHLO or HELO first");
        }
        if self.tx.is_some() {
            return self.bad("503 5.5.1 Nested MAIL command; send RSET first");
        }
        let cfg = &self.shared.config;
        if self.auth_user.is_none() {
            if cfg.require_auth {
                tracing::info!(peer = %self.peer, from = %from.address, "refused: not authenticated (require_auth is on)");
                return self.reply("530 5.7.0 Authentication required: this relay needs the device to log in (AUTH) before sending");
            }
            if !self.allowed() {
                tracing::info!(peer = %self.peer, from = %from.address, "refused: relaying denied, address not in listener.allow");
                let login = if self.shared.device_auth.has_users() {
                    ", or set up SMTP authentication on the device"
                } else {
                    ""
                };
                let text = format!(
                    "554 5.7.1 Relaying denied: {} is not allowed to send through Postern; add this device's address to [listener] allow{login}",
                    self.ip
                );
                // Unless it may still log in (device users exist; it may
                // need STARTTLS first), there is nothing more for it to do
                // here: its slot goes back now.
                self.quit = !self.shared.device_auth.has_users();
                return self.reply(&text);
            }
        }
        let max = cfg.max_message_bytes;
        if from.size as u64 > max {
            tracing::info!(peer = %self.peer, size = from.size, max, "refused: declared size too big");
            return self.reply(&receive::too_big_reply(from.size as u64, max, true));
        }
        if !valid_path(&from.address) {
            return self.bad("501 5.1.7 Bad sender address syntax");
        }
        if let Err(low) = self.shared.spool.room_for(from.size as u64).await {
            tracing::warn!(peer = %self.peer, free = low.free, reserve = low.reserve, declared = from.size, "refused at MAIL: the disk is almost full (spool.min_free)");
            return self.reply(&receive::low_space_reply(low, from.size as u64, false));
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if !smtputf8 && !from.address.is_ascii() {
            return self.bad("553 5.6.7 Non-ASCII address without the SMTPUTF8 parameter");
        }
        self.tx = Some(Transaction {
            mail_from: from.address,
            rcpt_to: Vec::new(),
            smtputf8,
            eight_bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
        });
        self.reply("250 2.1.0 Sender ok");
    }

    fn rcpt(&mut self, to: RcptTo<String>) {
        let max = self.shared.config.max_recipients;
        let Some(tx) = &mut self.tx else {
            return self.bad("503 5.5.1 Need MAIL before RCPT");
        };
        if tx.rcpt_to.len() >= max {
            tracing::info!(peer = %self.peer, max, "refused a recipient: too many recipients");
            return self.reply("452 4.5.3 Too many recipients");
        }
        if to.address.is_empty() || !valid_path(&to.address) {
            return self.bad("501 5.1.3 Bad recipient address syntax");
        }
        if !tx.smtputf8 && !to.address.is_ascii() {
            return self.bad("553 5.6.7 Non-ASCII address without the SMTPUTF8 parameter");
        }
        if let Some(domains) = &self.shared.internal_domains {
            let domain = to
                .address
                .rsplit_once('@')
                .map(|(_, d)| d.to_ascii_lowercase())
                .unwrap_or_default();
            if !domains.contains(&domain) {
                tracing::info!(peer = %self.peer, rcpt = %to.address, "refused an external recipient (Direct Send)");
                let text = format!(
                    "550 5.7.1 <{}>: this relay uses Microsoft Direct Send, which delivers only to internal recipients ({}); ask the admin to use connector relay for outside addresses",
                    to.address,
                    domains.join(", ")
                );
                return self.reply(&text);
            }
        }
        tx.rcpt_to.push(to.address);
        self.reply("250 2.1.5 Recipient ok");
    }

    async fn starttls(&mut self) -> Result<(), End> {
        if self.shared.tls.is_none() {
            self.bad("502 5.5.1 STARTTLS not available");
            return Ok(());
        }
        if self.tls.is_some() {
            self.bad("503 5.5.1 TLS is already active");
            return Ok(());
        }
        self.reply("220 2.0.0 Ready to start TLS");
        // start_tls discards whatever the client pipelined after STARTTLS.
        self.handshake().await?;
        self.helo = None;
        self.auth_user = None;
        self.tx = None;
        Ok(())
    }
}

impl Session {
    /// The TLS handshake (STARTTLS or implicit TLS); the library depends on
    /// the device's address. Sessions on the OpenSSL path are logged with
    /// their protocol and suite (a warning for TLS 1.0/1.1), so the admin
    /// sees which device still needs legacy TLS.
    async fn handshake(&mut self) -> Result<(), End> {
        let shared = self.shared.clone();
        let Some(tls) = &shared.tls else {
            return Err(End::Io(std::io::Error::other("no TLS certificate")));
        };
        let done = self
            .conn
            .start_tls(tls, self.ip, TLS_HANDSHAKE_TIMEOUT)
            .await?;
        match &done.legacy_cipher {
            Some(cipher) if done.is_old_protocol() => tracing::warn!(
                peer = %self.peer,
                protocol = %done.version,
                %cipher,
                "legacy TLS session: this device uses an old TLS version (update its firmware)"
            ),
            Some(cipher) => tracing::info!(
                peer = %self.peer,
                protocol = %done.version,
                %cipher,
                "TLS session on the legacy TLS path (OpenSSL)"
            ),
            None => tracing::debug!(peer = %self.peer, version = %done.version, "TLS started"),
        }
        self.tls = Some(done.describe());
        Ok(())
    }
}
