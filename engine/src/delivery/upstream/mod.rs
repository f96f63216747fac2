//! One reusable SMTP connection to the upstream server, on lettre.
//!
//! [`Connection::open`] connects, reads the greeting, says EHLO, upgrades
//! with STARTTLS (TLS 1.2 or newer) and signs in (XOAUTH2 or LOGIN);
//! [`Connection::send`] runs one mail transaction with per-recipient
//! results, so one refused recipient does not sink the others. Everything
//! said is written to a [`Transcript`] with credentials redacted.
//!
//! lettre's `AsyncSmtpConnection` does the wire work. It reads the greeting
//! and sends the first EHLO by itself inside `connect_with_transport`, and
//! STARTTLS + the second EHLO inside `starttls`; the transcript shows those
//! replies from a tap under lettre's stream (see `tap.rs`), and the
//! post-TLS EHLO as a note listing what the server offers (it is encrypted
//! by then, and lettre keeps only the parsed result).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lettre::address::Address;
use lettre::transport::smtp::authentication::{Credentials as LettreCredentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Auth, Data, Mail, Noop, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use super::classify::Stage;
use super::reply::Reply;
use super::tap::{split_text_lines, tls_version_from_server_hello, Tap, TapStream};
use super::transcript::Transcript;

/// How often an upload in progress is reported.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Slowest upload we still wait for while sending message content, in
/// bytes per second: the DATA timeout grows by `size / this` on top of the
/// per-command timeout, so a 35 MB scan on a slow uplink is not cut off.
const MIN_UPLOAD_BYTES_PER_SEC: u64 = 32 * 1024;

/// Most SASL challenges answered before giving up (LOGIN needs two).
const MAX_AUTH_CHALLENGES: usize = 3;

mod tls;
mod types;

use types::{from_lettre, tls_parameters};
pub use types::{
    Credentials, Secret, SendReport, TlsCache, TlsMode, UpstreamError, UpstreamSettings,
};

/// The longest QUIT (and lettre's closing of the connection after it) is
/// waited for: the connection is being given up either way.
const QUIT_WAIT: Duration = Duration::from_secs(5);

/// An open, greeted, encrypted (per settings) and signed-in connection.
pub struct Connection {
    inner: AsyncSmtpConnection,
    host: String,
    timeout: Duration,
    tls_version: Option<String>,
    broken: bool,
    /// Counts the bytes written under TLS: an upload's progress.
    tap: Tap,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.host)
            .field("tls_version", &self.tls_version)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// TCP connect, greeting, EHLO, STARTTLS (per [`TlsMode`]; TLS >= 1.2),
    /// EHLO again, AUTH — everything recorded in `transcript`, AUTH
    /// redacted.
    pub async fn open(
        settings: &UpstreamSettings,
        creds: &Credentials,
        transcript: &mut Transcript,
    ) -> Result<Connection, UpstreamError> {
        let host = settings.host.clone();
        let timeout = settings.timeout;
        // Load certificates first: a bad path is a settings problem, found
        // before anything goes on the wire.
        let tls_params = match settings.tls {
            TlsMode::None => None,
            _ => Some(
                tls_parameters(settings).map_err(|detail| UpstreamError::Tls {
                    host: host.clone(),
                    detail,
                })?,
            ),
        };

        let tcp = connect(settings, transcript).await?;
        let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        transcript.note(&format!("connected to {host}:{} ({peer})", settings.port));

        let tap = Tap::default();
        let hello = ClientId::Domain(settings.hello_name.clone());
        let stream = Box::new(TapStream::new(tcp, tap.clone()));
        let opened = tokio::time::timeout(
            timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &hello),
        )
        .await;
        let stage = if tap.wrote() {
            Stage::Ehlo
        } else {
            Stage::Greeting
        };
        let (greeting, ehlo) = tap.take();
        transcript.server_raw(&String::from_utf8_lossy(&greeting));
        if stage == Stage::Ehlo {
            transcript.client(&format!("EHLO {}", settings.hello_name));
            transcript.server_raw(&String::from_utf8_lossy(&ehlo));
        }
        let inner = match opened {
            Err(_) => return Err(UpstreamError::Timeout { stage }),
            Ok(Err(e)) => return Err(from_lettre(&host, stage, &e)),
            Ok(Ok(inner)) => inner,
        };
        let mut conn = Connection {
            inner,
            host,
            timeout,
            tls_version: None,
            broken: false,
            tap: tap.clone(),
        };

        let offers_starttls = conn
            .inner
            .server_info()
            .supports_feature(Extension::StartTls);
        match (settings.tls, tls_params) {
            (TlsMode::None, _) => {}
            (TlsMode::Required, _) if !offers_starttls => {
                transcript.note("server does not offer STARTTLS; giving up");
                conn.quit(transcript).await;
                return Err(UpstreamError::NoStartTls {
                    host: settings.host.clone(),
                });
            }
            (TlsMode::Opportunistic, _) if !offers_starttls => {
                transcript.note("server does not offer STARTTLS; continuing unencrypted");
            }
            (_, Some(params)) => conn.starttls(params, &hello, &tap, transcript).await?,
            (_, None) => unreachable!("TLS parameters are built for every mode but None"),
        }
        tap.set_capture(false);
        conn.note_offers(transcript);

        if !matches!(creds, Credentials::None) {
            if settings.tls != TlsMode::None && !conn.inner.is_encrypted() {
                transcript.note("not signing in over an unencrypted connection");
                conn.quit(transcript).await;
                return Err(UpstreamError::NoStartTls {
                    host: settings.host.clone(),
                });
            }
            conn.auth(creds, transcript).await?;
        }
        Ok(conn)
    }

    async fn starttls(
        &mut self,
        params: TlsParameters,
        hello: &ClientId,
        tap: &Tap,
        transcript: &mut Transcript,
    ) -> Result<(), UpstreamError> {
        transcript.client("STARTTLS");
        let result = tokio::time::timeout(self.timeout, self.inner.starttls(params, hello)).await;
        let (_, captured) = tap.take();
        let (reply_text, records) = split_text_lines(&captured);
        transcript.server_raw(&reply_text);
        self.tls_version = tls_version_from_server_hello(records).map(str::to_owned);
        match result {
            Err(_) => {
                self.broken = true;
                Err(UpstreamError::Timeout {
                    stage: Stage::StartTls,
                })
            }
            Ok(Err(e)) => {
                self.broken = true;
                let err = from_lettre(&self.host, Stage::StartTls, &e);
                if let UpstreamError::Reply { reply, .. } = &err {
                    if reply_text.is_empty() {
                        transcript.server(reply);
                    }
                }
                transcript.note(&format!("STARTTLS failed: {err}"));
                Err(err)
            }
            Ok(Ok(())) => {
                let version = self.tls_version.as_deref().unwrap_or("TLS");
                transcript.note(&format!("{version} established"));
                transcript.client(&format!("EHLO {hello}"));
                Ok(())
            }
        }
    }

    /// Notes what the server offers after the last EHLO.
    fn note_offers(&self, transcript: &mut Transcript) {
        let info = self.inner.server_info();
        let mut offers = Vec::new();
        if info.supports_feature(Extension::StartTls) {
            offers.push("STARTTLS".to_owned());
        }
        let mechs: Vec<String> = [Mechanism::Xoauth2, Mechanism::Login, Mechanism::Plain]
            .into_iter()
            .filter(|m| info.supports_auth_mechanism(*m))
            .map(|m| m.to_string())
            .collect();
        if !mechs.is_empty() {
            offers.push(format!("AUTH {}", mechs.join(" ")));
        }
        for (ext, name) in [
            (Extension::EightBitMime, "8BITMIME"),
            (Extension::SmtpUtfEight, "SMTPUTF8"),
        ] {
            if info.supports_feature(ext) {
                offers.push(name.to_owned());
            }
        }
        transcript.note(&format!("{} offers: {}", info.name(), offers.join(", ")));
    }

    async fn auth(
        &mut self,
        creds: &Credentials,
        transcript: &mut Transcript,
    ) -> Result<(), UpstreamError> {
        let (mechanism, user, secret) = match creds {
            Credentials::None => return Ok(()),
            Credentials::Login { user, password } => (Mechanism::Login, user, password),
            // Exchange wants XOAUTH2 asked for explicitly; it is not among
            // lettre's default mechanisms.
            Credentials::XOAuth2 { user, token } => (Mechanism::Xoauth2, user, token),
        };
        if !self.inner.server_info().supports_auth_mechanism(mechanism) {
            // Ask anyway: the server's refusal is the clearest explanation.
            transcript.note(&format!(
                "server does not advertise AUTH {mechanism}; trying anyway"
            ));
        }
        let lettre_creds = LettreCredentials::new(user.clone(), secret.expose().to_owned());
        let command = Auth::new(mechanism, lettre_creds.clone(), None)
            .map_err(|e| from_lettre(&self.host, Stage::Auth, &e))?;
        // Transcript::client keeps only "AUTH <MECH> [redacted]".
        let mut reply = self
            .exchange(
                Stage::Auth,
                command.to_string(),
                &command.to_string(),
                transcript,
            )
            .await?;
        let mut challenges = 0;
        while reply.code == 334 {
            challenges += 1;
            if challenges > MAX_AUTH_CHALLENGES {
                self.broken = true;
                return Err(UpstreamError::Io {
                    stage: Stage::Auth,
                    detail: "too many authentication challenges".to_owned(),
                });
            }
            let answer = if mechanism == Mechanism::Xoauth2 {
                // XOAUTH2 answers a failure with a 334 carrying an error
                // document; the client sends an empty line to get the
                // final reply.
                "\r\n".to_owned()
            } else {
                let response = lettre::transport::smtp::response::Response::from_str(&format!(
                    "334 {}\r\n",
                    reply.text
                ))
                .map_err(|e| from_lettre(&self.host, Stage::Auth, &e))?;
                Auth::new_from_response(mechanism, lettre_creds.clone(), &response)
                    .map_err(|e| from_lettre(&self.host, Stage::Auth, &e))?
                    .to_string()
            };
            let what = match (mechanism, challenges) {
                (Mechanism::Xoauth2, _) => "empty response",
                (_, 1) => "user name",
                _ => "password",
            };
            transcript.client_secret(what);
            reply = self.exchange(Stage::Auth, answer, "", transcript).await?;
        }
        Ok(())
    }

    /// Sends `wire` (a full command line), records `shown` (if not empty)
    /// and the reply. A refusal is `Err(Reply)`; anything else breaks the
    /// connection.
    async fn exchange(
        &mut self,
        stage: Stage,
        wire: String,
        shown: &str,
        transcript: &mut Transcript,
    ) -> Result<Reply, UpstreamError> {
        if !shown.is_empty() {
            transcript.client(shown);
        }
        let result = tokio::time::timeout(self.timeout, self.inner.command(wire)).await;
        self.finish(stage, result, transcript)
    }

    fn finish(
        &mut self,
        stage: Stage,
        result: Result<
            Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
            tokio::time::error::Elapsed,
        >,
        transcript: &mut Transcript,
    ) -> Result<Reply, UpstreamError> {
        let err = match result {
            Ok(Ok(response)) => {
                let reply = Reply::from_lettre(&response);
                transcript.server(&reply);
                return Ok(reply);
            }
            Err(_) => UpstreamError::Timeout { stage },
            Ok(Err(e)) => from_lettre(&self.host, stage, &e),
        };
        match &err {
            UpstreamError::Reply { reply, .. } => transcript.server(reply),
            other => transcript.note(&other.to_string()),
        }
        if err.breaks_connection() {
            self.broken = true;
        }
        Err(err)
    }

    /// One transaction. See the module docs; recipients are tried one by
    /// one and a refused recipient only removes that recipient.
    pub async fn send(
        &mut self,
        mail_from: &str,
        rcpts: &[String],
        content: &[u8],
        transcript: &mut Transcript,
    ) -> Result<SendReport, UpstreamError> {
        self.send_with_progress(mail_from, rcpts, content, transcript, &mut |_, _| {})
            .await
    }

    /// [`send`](Self::send), telling `progress(bytes, total)` how far the
    /// content's upload has got, every [`PROGRESS_EVERY`] while it lasts.
    pub async fn send_with_progress(
        &mut self,
        mail_from: &str,
        rcpts: &[String],
        content: &[u8],
        transcript: &mut Transcript,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<SendReport, UpstreamError> {
        let mut report = SendReport::default();
        let sender = match parse_sender(mail_from) {
            Ok(sender) => sender,
            Err(detail) => {
                let reply =
                    local_refusal("5.1.7", &format!("sender <{mail_from}> not sent: {detail}"));
                transcript.note(&reply.text);
                return Err(UpstreamError::Reply {
                    stage: Stage::MailFrom,
                    reply,
                });
            }
        };
        let mut parsed = Vec::with_capacity(rcpts.len());
        for rcpt in rcpts {
            match Address::from_str(rcpt.trim().trim_start_matches('<').trim_end_matches('>')) {
                Ok(a) => parsed.push((rcpt, a)),
                Err(e) => {
                    let reply =
                        local_refusal("5.1.3", &format!("recipient <{rcpt}> not sent: {e}"));
                    transcript.note(&reply.text);
                    report.rejected.push((rcpt.clone(), reply));
                }
            }
        }
        if parsed.is_empty() {
            return Ok(report);
        }

        let info = self.inner.server_info();
        let mut params = Vec::new();
        let non_ascii = sender
            .as_ref()
            .is_some_and(|a| !AsRef::<str>::as_ref(a).is_ascii())
            || parsed
                .iter()
                .any(|(_, a)| !AsRef::<str>::as_ref(a).is_ascii());
        if non_ascii {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                let reply = local_refusal(
                    "5.6.7",
                    "addresses need SMTPUTF8, which the server does not offer",
                );
                transcript.note(&reply.text);
                return Err(UpstreamError::Reply {
                    stage: Stage::MailFrom,
                    reply,
                });
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !content.is_ascii() && info.supports_feature(Extension::EightBitMime) {
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }

        let mail = Mail::new(sender, params).to_string();
        if let Err(e) = self
            .exchange(Stage::MailFrom, mail.clone(), &mail, transcript)
            .await
        {
            self.reset(transcript).await;
            return Err(e);
        }
        for (original, address) in parsed {
            let rcpt = Rcpt::new(address, vec![]).to_string();
            match self
                .exchange(Stage::RcptTo, rcpt.clone(), &rcpt, transcript)
                .await
            {
                Ok(_) => report.accepted.push(original.clone()),
                Err(UpstreamError::Reply { reply, .. }) if reply.is_transient() => {
                    report.deferred.push((original.clone(), reply));
                }
                Err(UpstreamError::Reply { reply, .. }) => {
                    report.rejected.push((original.clone(), reply))
                }
                Err(other) => return Err(other),
            }
        }
        if report.accepted.is_empty() {
            self.reset(transcript).await;
            return Ok(report);
        }

        let data = Data.to_string();
        if let Err(e) = self
            .exchange(Stage::Data, data.clone(), &data, transcript)
            .await
        {
            self.reset(transcript).await;
            return Err(e);
        }
        // lettre ends the content with "\r\n.\r\n" itself; drop our final
        // CRLF so the body is not given an extra empty line.
        let body = content.strip_suffix(b"\r\n").unwrap_or(content);
        transcript.client(&format!("[message, {} bytes]", content.len()));
        transcript.client(".");
        let data_timeout =
            self.timeout + Duration::from_secs(content.len() as u64 / MIN_UPLOAD_BYTES_PER_SEC);
        let result = {
            let (tap, total) = (self.tap.clone(), body.len() as u64);
            let start = tap.written();
            let upload = tokio::time::timeout(data_timeout, self.inner.message(body));
            tokio::pin!(upload);
            let mut every = tokio::time::interval(PROGRESS_EVERY);
            every.tick().await;
            let mut told = 0;
            loop {
                tokio::select! {
                    done = &mut upload => break done,
                    _ = every.tick() => {
                        // TLS adds a little per record: never claim more
                        // than the whole content before Microsoft's reply.
                        let sent = (tap.written() - start).min(total);
                        if sent != told {
                            told = sent;
                            progress(sent, total);
                        }
                    }
                }
            }
        };
        let reply = self.finish(Stage::DataEnd, result, transcript)?;
        report.data_reply = Some(reply);
        Ok(report)
    }

    /// RSET after a refused MAIL or DATA, best effort, so the connection
    /// can carry the next message.
    async fn reset(&mut self, transcript: &mut Transcript) {
        if self.broken {
            return;
        }
        let rset = Rset.to_string();
        if self
            .exchange(Stage::MailFrom, rset.clone(), &rset, transcript)
            .await
            .is_err()
        {
            self.broken = true;
        }
    }

    /// True when the connection still answers (NOOP).
    pub async fn is_usable(&mut self) -> bool {
        if self.broken || self.inner.has_broken() {
            return false;
        }
        let ok = matches!(
            tokio::time::timeout(self.timeout, self.inner.command(Noop)).await,
            Ok(Ok(_))
        );
        if !ok {
            self.broken = true;
        }
        ok
    }

    /// Says goodbye (QUIT), best effort, and closes.
    pub async fn quit(mut self, transcript: &mut Transcript) {
        // lettre's `abort` sends QUIT once more and waits for its reply
        // with no time limit: against a server that stopped answering it
        // would never return (and the engine would never stop). Both waits
        // are bounded; a polite goodbye is not worth a minute.
        let wait = self.timeout.min(QUIT_WAIT);
        if self.broken {
            transcript.note("connection closed");
            let _ = tokio::time::timeout(wait, self.inner.abort()).await;
            return;
        }
        transcript.client("QUIT");
        match tokio::time::timeout(wait, self.inner.command(Quit)).await {
            Ok(Ok(r)) => transcript.server(&Reply::from_lettre(&r)),
            Ok(Err(e)) => transcript.note(&format!("QUIT: {e}")),
            Err(_) => transcript.note("QUIT timed out"),
        }
        let _ = tokio::time::timeout(wait, self.inner.abort()).await;
    }

    /// The negotiated TLS version ("TLSv1.3"), read from the ServerHello;
    /// `None` on a plain connection.
    pub fn tls_version(&self) -> Option<String> {
        self.tls_version.clone()
    }

    /// True when STARTTLS succeeded.
    pub fn is_encrypted(&self) -> bool {
        self.inner.is_encrypted()
    }
}

/// The TCP connection: to `settings.addrs` in order (the first that
/// accepts), or to `host` resolved by the operating system when none are
/// given. Each address gets the per-command timeout.
async fn connect(
    settings: &UpstreamSettings,
    transcript: &mut Transcript,
) -> Result<tokio::net::TcpStream, UpstreamError> {
    let (host, port, timeout) = (&settings.host, settings.port, settings.timeout);
    let failed = |detail: String| UpstreamError::Connect {
        host: host.clone(),
        port,
        detail,
    };
    if settings.addrs.is_empty() {
        transcript.note(&format!("connecting to {host}:{port}"));
        let connecting = tokio::net::TcpStream::connect((host.as_str(), port));
        return match tokio::time::timeout(timeout, connecting).await {
            Err(_) => Err(UpstreamError::Timeout {
                stage: Stage::Connect,
            }),
            Ok(Err(e)) => {
                transcript.note(&format!("connection failed: {e}"));
                Err(failed(e.to_string()))
            }
            Ok(Ok(tcp)) => Ok(tcp),
        };
    }
    let mut last = None;
    for addr in &settings.addrs {
        transcript.note(&format!("connecting to {host}:{port} at {addr}"));
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => {
                transcript.note(&format!("connection to {addr} failed: {e}"));
                last = Some(failed(format!("{addr}: {e}")));
            }
            Err(_) => {
                transcript.note(&format!("connection to {addr} timed out"));
                last = Some(UpstreamError::Timeout {
                    stage: Stage::Connect,
                });
            }
        }
    }
    Err(last.expect("at least one address was tried"))
}

/// `""` and `"<>"` are the null sender.
fn parse_sender(s: &str) -> Result<Option<Address>, String> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    if s.is_empty() {
        return Ok(None);
    }
    Address::from_str(s).map(Some).map_err(|e| e.to_string())
}

/// A refusal Postern makes itself, before asking the server (an address it
/// cannot put on the wire). Marked "(local)" so nobody blames Microsoft.
fn local_refusal(enhanced: &str, detail: &str) -> Reply {
    Reply {
        code: 553,
        enhanced: Some(enhanced.to_owned()),
        text: format!("(local) {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_sender() {
        assert_eq!(parse_sender("").unwrap(), None);
        assert_eq!(parse_sender("<>").unwrap(), None);
        assert!(parse_sender("scanner@contoso.com").unwrap().is_some());
        assert!(parse_sender("not an address").is_err());
        assert!(parse_sender("a@b\r\nRCPT TO:<x@y>").is_err());
    }
}
