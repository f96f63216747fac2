//! One device connection's bytes: the (possibly TLS) stream, the receive
//! buffer, command-line framing with the 512-octet limit, batched replies
//! (so pipelined commands get their replies in one write), and the
//! STARTTLS upgrade that throws away anything the client pipelined after
//! the STARTTLS command (RFC 3207 §4.2, CVE-2011-0411).
//!
//! Every wait here also watches the shutdown signal and a timeout. A
//! command line must arrive whole within its timeout (a device dribbling a
//! byte at a time does not restart the clock), and a "line" that goes on
//! past [`MAX_LINE_DISCARD`] without a line break ends the connection.
//!
//! TLS is rustls, or OpenSSL for a device in the legacy-TLS networks (see
//! `legacy_tls`); [`Stream`] hides which, so nothing after the handshake
//! cares.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::net::IpAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use tokio_openssl::SslStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::legacy_tls::{self, LegacyTls};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// An over-long command line is skipped up to this many bytes (a device
/// with one long RCPT gets a 500 and carries on); past it the device is not
/// speaking SMTP and is disconnected, so an endless line costs nothing.
pub const MAX_LINE_DISCARD: usize = 64 * 1024;
/// A lingering close reads at most this much, for at most this long.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(2);
/// How much is read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// Why a session stops talking.
#[derive(Debug)]
pub enum End {
    /// The device closed the connection.
    Closed,
    /// The device was silent for too long.
    Timeout,
    /// The listener is shutting down.
    Shutdown,
    /// The socket or the TLS layer failed.
    Io(io::Error),
    /// A command line went on past [`MAX_LINE_DISCARD`] bytes.
    LineTooLong,
    /// The peer spoke HTTP (a browser sent it): refused, closed at once.
    NotSmtp,
}

/// One framed command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line including its LF.
    Text(Vec<u8>),
    /// Longer than [`MAX_COMMAND_LINE`]; the rest of it up to LF is skipped.
    TooLong,
}

/// The device side's TLS: rustls for everyone, OpenSSL (TLS 1.0+) for
/// devices in the legacy-TLS networks when that is on.
pub struct DeviceTls {
    pub rustls: TlsAcceptor,
    pub legacy: Option<LegacyTls>,
}

/// What a finished handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The protocol version, e.g. "TLSv1.3".
    pub version: String,
    /// Set when OpenSSL served the device: the suite, e.g. "AES128-SHA".
    pub legacy_cipher: Option<String>,
}

impl Handshake {
    /// How the spool records it (`ClientInfo::tls`): the version, and on
    /// the OpenSSL path the suite too, e.g. "TLSv1.0 AES128-SHA (OpenSSL)".
    pub fn describe(&self) -> String {
        match &self.legacy_cipher {
            None => self.version.clone(),
            Some(cipher) => format!("{} {cipher} (OpenSSL)", self.version),
        }
    }

    /// TLS 1.0 or 1.1: what legacy TLS exists for, and what to phase out.
    pub fn is_old_protocol(&self) -> bool {
        matches!(self.version.as_str(), "TLSv1.0" | "TLSv1.1")
    }
}

/// The socket, plain or TLS (either library).
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Legacy(Box<SslStream<TcpStream>>),
    /// An in-memory stream (fuzzing and tests): no TLS possible.
    Memory(tokio::io::DuplexStream),
    /// Only while the TLS handshake owns the socket (or after it failed).
    Gone,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Legacy(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Memory(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, b),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, b),
            Stream::Legacy(s) => Pin::new(s).poll_write(cx, b),
            Stream::Memory(s) => Pin::new(s).poll_write(cx, b),
            Stream::Gone => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
            Stream::Legacy(s) => Pin::new(s).poll_flush(cx),
            Stream::Memory(s) => Pin::new(s).poll_flush(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Legacy(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Memory(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Gone => Poll::Ready(Ok(())),
        }
    }
}

pub struct Conn {
    stream: Stream,
    /// Received bytes not yet used. Commands are taken from the front; in
    /// DATA the whole buffer goes to the DATA machine.
    pub buf: Vec<u8>,
    /// Replies not yet written; sent before the next read blocks.
    out: Vec<u8>,
    /// Skipping the rest of an over-long command line.
    discarding: bool,
    /// Bytes of the over-long line skipped so far.
    discarded: usize,
    /// Turns true when the listener shuts down; the sender is `serve`'s caller.
    shutdown: watch::Receiver<bool>,
    /// Bound on every write (a device that stops reading cannot pin us).
    write_timeout: Duration,
}

impl Conn {
    pub fn new(tcp: TcpStream, shutdown: watch::Receiver<bool>, write_timeout: Duration) -> Conn {
        Conn::from_stream(Stream::Plain(tcp), shutdown, write_timeout)
    }

    pub fn from_stream(
        stream: Stream,
        shutdown: watch::Receiver<bool>,
        write_timeout: Duration,
    ) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
            out: Vec::new(),
            discarding: false,
            discarded: 0,
            shutdown,
            write_timeout,
        }
    }

    /// A receiver of the shutdown signal (for waits outside this type).
    pub fn shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.clone()
    }

    /// Queues one reply line (or several joined by CRLF); adds the CRLF.
    pub fn reply(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Sends the queued replies.
    pub async fn flush(&mut self) -> Result<(), End> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let write = async {
            self.stream.write_all(&out).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(End::Io(e)),
            Err(_) => Err(End::Timeout),
        }
    }

    /// Flushes replies, then waits until `deadline` for more bytes
    /// (appended to `buf`).
    pub async fn read_more_until(&mut self, deadline: Instant) -> Result<(), End> {
        self.flush().await?;
        if *self.shutdown.borrow() {
            return Err(End::Shutdown);
        }
        let mut chunk = [0u8; READ_CHUNK];
        tokio::select! {
            biased;
            _ = self.shutdown.changed() => Err(End::Shutdown),
            read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)) => match read {
                Err(_) => Err(End::Timeout),
                Ok(Err(e)) => Err(End::Io(e)),
                Ok(Ok(0)) => Err(End::Closed),
                Ok(Ok(n)) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Ok(())
                }
            },
        }
    }

    /// The next command line, reading as needed. The whole line must
    /// arrive within `timeout`: trickling bytes do not extend it.
    pub async fn read_line(&mut self, timeout: Duration) -> Result<Line, End> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.take_line()? {
                return Ok(line);
            }
            self.read_more_until(deadline).await?;
        }
    }

    /// Frames one line from `buf` if it holds one (or proves it too long).
    fn take_line(&mut self) -> Result<Option<Line>, End> {
        let lf = self.buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            match lf {
                Some(pos) => {
                    self.buf.drain(..=pos);
                    self.discarding = false;
                    self.discarded = 0;
                }
                None => {
                    self.discarded += self.buf.len();
                    self.buf.clear();
                    if self.discarded > MAX_LINE_DISCARD {
                        return Err(End::LineTooLong);
                    }
                    return Ok(None);
                }
            }
            return self.take_line();
        }
        Ok(match lf {
            Some(pos) if pos < MAX_COMMAND_LINE => {
                Some(Line::Text(self.buf.drain(..=pos).collect()))
            }
            Some(pos) => {
                self.buf.drain(..=pos);
                Some(Line::TooLong)
            }
            None if self.buf.len() >= MAX_COMMAND_LINE => {
                self.discarded = self.buf.len();
                self.buf.clear();
                self.discarding = true;
                Some(Line::TooLong)
            }
            None => None,
        })
    }

    /// Sends the queued replies (the 220), DISCARDS everything already
    /// received, and runs the TLS handshake with the library `tls` picks
    /// for the device at `ip` (canonical form).
    pub async fn start_tls(
        &mut self,
        tls: &DeviceTls,
        ip: IpAddr,
        timeout: Duration,
    ) -> Result<Handshake, End> {
        self.flush().await?;
        self.buf.clear();
        self.discarding = false;
        self.discarded = 0;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(End::Io(io::Error::other("TLS is already active")));
        };
        let handshake = async {
            match tls.legacy.as_ref().filter(|l| l.covers(ip)) {
                Some(legacy) => {
                    let s = legacy.accept(tcp).await?;
                    let n = legacy_tls::negotiated(s.ssl());
                    let done = Handshake {
                        version: n.version,
                        legacy_cipher: Some(n.cipher),
                    };
                    Ok::<_, io::Error>((Stream::Legacy(Box::new(s)), done))
                }
                None => {
                    let s = tls.rustls.accept(tcp).await?;
                    let version = match s.get_ref().1.protocol_version() {
                        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
                        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
                        Some(other) => format!("{other:?}"),
                        None => "TLS".to_string(),
                    };
                    let done = Handshake {
                        version,
                        legacy_cipher: None,
                    };
                    Ok((Stream::Tls(Box::new(s)), done))
                }
            }
        };
        let (stream, done) = tokio::select! {
            biased;
            _ = self.shutdown.changed() => return Err(End::Shutdown),
            r = tokio::time::timeout(timeout, handshake) => match r {
                Err(_) => return Err(End::Timeout),
                Ok(Err(e)) => return Err(End::Io(e)),
                Ok(Ok(done)) => done,
            },
        };
        self.stream = stream;
        Ok(done)
    }

    /// Sends what is queued (best effort) and closes the connection.
    pub async fn close(&mut self) {
        let _ = self.flush().await;
        let _ = tokio::time::timeout(self.write_timeout, self.stream.shutdown()).await;
    }

    /// Closes after the peer sent more than was read (an HTTP request's
    /// body): the reply is flushed, our side shut down, and what the peer
    /// still sends is read and thrown away for a moment. Closing a socket
    /// with unread bytes makes the kernel send a reset, which can destroy
    /// the last reply before the peer reads it.
    pub async fn close_lingering(&mut self) {
        self.close().await;
        let mut sink = [0u8; READ_CHUNK];
        let mut left = LINGER_BYTES;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while left > 0 {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }
}
