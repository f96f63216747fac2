//! One device connection, from greeting to QUIT: the ESMTP state machine
//! (RFC 5321 with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES,
//! SMTPUTF8, STARTTLS and AUTH), the relay decision, and DATA streamed to
//! the spool. Replies carry enhanced status codes except the greeting, the
//! HELO/EHLO reply and the 334/354 intermediates (RFC 2034 §3).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::{Error as ParseError, MailFrom, RcptTo, Request};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::conn::{Conn, End, Line, Stream};
use super::{Shared, Slot};

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
/// First words that start an HTTP request, never an SMTP command. A web
/// page can make a browser POST to any port it is not blocked from
/// (2525 is not blocked), with SMTP commands in the body; like Postfix's
/// `smtpd_forbidden_commands`, such a session ends at its first line.
const HTTP_METHODS: &[&str] = &[
    "GET", "POST", "PUT", "HEAD", "CONNECT", "OPTIONS", "DELETE", "PATCH",
];
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
/// RFC 5321 §4.5.3.1: local part and domain lengths.
const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 255;

mod login;
mod receive;

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
    slot: Slot,
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
    /// The device said QUIT where a SASL answer was due; the session ends.
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
            if self.quit {
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
            } => return self.auth(mechanism, initial_response).await,
            Request::Lhlo { .. }
            | Request::Bdat { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.bad("502 5.5.1 Command not implemented"),
        }
        Ok(Flow::Continue)
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

/// An HTTP request line (any time), or a line shaped like an HTTP header
/// (`Name: value`, no space before the colon) before HELO/EHLO.
fn looks_like_http(line: &[u8], before_helo: bool) -> bool {
    let first = line.split(|b| *b == b' ').next().unwrap_or_default();
    if line.len() > first.len()
        && HTTP_METHODS
            .iter()
            .any(|m| m.as_bytes().eq_ignore_ascii_case(first))
    {
        return true;
    }
    if !before_helo {
        return false;
    }
    let Some(colon) = line.iter().position(|b| *b == b':') else {
        return false;
    };
    // RFC 9110 token characters, starting with a letter.
    let name = &line[..colon];
    name.first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

/// The AUTH advertisement rule (see the module docs of `listener`).
pub(crate) fn auth_offered(has_users: bool, tls: bool, ip: IpAddr, allowed: bool) -> bool {
    has_users && (tls || ip.is_loopback() || allowed)
}

/// A HELO/EHLO argument: a domain or an address literal (RFC 5321
/// §4.1.1.1), read leniently, since devices send names like
/// `HP_LaserJet` or `RICOH-MP-C3004`: at most 255 bytes, no spaces, no
/// control characters (they end up in logs and on the admin's terminal).
fn valid_helo(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= MAX_DOMAIN
        && !host.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Light checks on a mailbox (RFC 5321 §4.5.3.1 lengths; no controls).
fn valid_path(address: &str) -> bool {
    if address.is_empty() {
        return true; // the null reverse-path; RCPT checks emptiness itself
    }
    if address.chars().any(|c| c.is_control() || c == ' ') {
        return false;
    }
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= MAX_LOCAL_PART
                && !domain.is_empty()
                && domain.len() <= MAX_DOMAIN
        }
        // RFC 5321 allows a bare "Postmaster" recipient.
        None => address.eq_ignore_ascii_case("postmaster"),
    }
}

fn parse_error_reply(e: &ParseError) -> String {
    match e {
        ParseError::UnknownCommand => "500 5.5.1 Command unrecognized".into(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Bad sender address syntax".into(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Bad recipient address syntax".into(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        ParseError::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}"),
        ParseError::UnsupportedParameter { param } => {
            let param: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            format!("555 5.5.4 Unsupported parameter {param}")
        }
        _ => "501 5.5.4 Syntax error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_offer_rule() {
        let lan: IpAddr = "10.0.0.5".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!auth_offered(false, true, lan, true), "no users, no AUTH");
        assert!(auth_offered(true, true, lan, false), "TLS");
        assert!(
            auth_offered(true, false, lan, true),
            "allowed LAN, plaintext"
        );
        assert!(auth_offered(true, false, lo, false), "loopback, plaintext");
        assert!(!auth_offered(true, false, lan, false), "foreign, plaintext");
    }

    #[test]
    fn helo_names() {
        for (h, ok) in [
            ("scanner.contoso.local", true),
            ("RICOH-MP-C3004", true),
            ("HP_LaserJet", true),
            ("[192.168.1.20]", true),
            ("[IPv6:fe80::1]", true),
            ("bücher.example", true),
            ("", false),
            ("\x1b]0;owned\x07", false),
            ("a\x1b[31mb", false),
            ("tab\there", false),
            (&"x".repeat(256), false),
        ] {
            assert_eq!(valid_helo(h), ok, "{h:?}");
        }
    }

    #[test]
    fn address_checks() {
        for (a, ok) in [
            ("a@b.c", true),
            ("", true),
            ("Postmaster", true),
            ("nodomain", false),
            ("@b.c", false),
            ("a@", false),
            ("a\u{7}@b.c", false),
            (&format!("{}@b.c", "x".repeat(65)), false),
            (&format!("a@{}", "x".repeat(256)), false),
        ] {
            assert_eq!(valid_path(a), ok, "{a:?}");
        }
    }

    #[test]
    fn http_is_recognised() {
        for (line, before_helo, want) in [
            (&b"GET / HTTP/1.1\r\n"[..], true, true),
            (b"POST / HTTP/1.1\r\n", false, true),
            (b"post /x HTTP/1.0\r\n", false, true),
            (b"CONNECT a:25 HTTP/1.1\r\n", true, true),
            (b"OPTIONS * HTTP/1.1\r\n", true, true),
            (b"Host: 127.0.0.1:2525\r\n", true, true),
            (b"Content-Type: text/plain\r\n", true, true),
            (b"sec-fetch-mode:no-cors\r\n", true, true),
            // After HELO a header-shaped line is just a bad command.
            (b"Host: 127.0.0.1:2525\r\n", false, false),
            // SMTP, never HTTP.
            (b"MAIL FROM:<a@b.c>\r\n", true, false),
            (b"RCPT TO:<a@b.c>\r\n", true, false),
            (b"EHLO scanner\r\n", true, false),
            (b"HELP\r\n", true, false),
            (b"GET\r\n", true, false),
            (b":x\r\n", true, false),
            (b"\r\n", true, false),
        ] {
            assert_eq!(looks_like_http(line, before_helo), want, "{line:?}");
        }
    }

    #[test]
    fn parse_errors_map_to_codes() {
        let table: &[(&[u8], &str)] = &[
            (b"FOO\r\n", "500 5.5.1"),
            (b"MAIL TO:<a@b>\r\n", "501 5.5.4"),
            (b"EHLO\r\n", "501 5.5.4"),
            (b"\x00\xff\r\n", "500 5.5.1"),
            (b"GET / HTTP/1.1\r\n", "500 5.5.1"),
        ];
        for (line, want) in table {
            let reply = match Request::parse(&mut line.iter()) {
                Err(e) => parse_error_reply(&e),
                Ok(r) => panic!("{line:?} parsed as {r:?}"),
            };
            assert!(reply.starts_with(want), "{line:?}: {reply}");
        }
    }
}
