//! A TCP stream that remembers what the server sent, for the transcript.
//!
//! lettre reads the greeting and the first EHLO reply itself and keeps only
//! parsed fragments; its STARTTLS hides the `220` reply and the negotiated
//! TLS version. [`TapStream`] sits under lettre and copies the bytes the
//! server sends while capture is on: the plaintext greeting, EHLO and
//! STARTTLS replies, then the first TLS records, from which
//! [`tls_version_from_server_hello`] reads the version. Only server bytes
//! are kept, never what Postern writes, so no credential can end up here.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Most bytes a tap keeps; enough for a greeting, an EHLO reply and a
/// ServerHello, small enough not to matter.
const TAP_LIMIT: usize = 16 * 1024;

#[derive(Debug, Default)]
struct TapState {
    capture: bool,
    /// Set at the first byte Postern writes: what came before is the greeting.
    greeting_len: Option<usize>,
    bytes: Vec<u8>,
    /// Every byte Postern has written to the socket (TLS records included).
    written: u64,
}

/// The handle the connection keeps to read and steer the tap; the stream
/// itself is owned (and closed) by lettre.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tap(Arc<Mutex<TapState>>);

impl Tap {
    fn state(&self) -> MutexGuard<'_, TapState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes written to the socket so far: how far an upload has got.
    pub(crate) fn written(&self) -> u64 {
        self.state().written
    }

    pub(crate) fn set_capture(&self, on: bool) {
        self.state().capture = on;
    }

    /// True once Postern has written anything (so a failure is past the
    /// greeting).
    pub(crate) fn wrote(&self) -> bool {
        self.state().greeting_len.is_some()
    }

    /// Takes the captured bytes, split into (before first write, after).
    pub(crate) fn take(&self) -> (Vec<u8>, Vec<u8>) {
        let mut st = self.state();
        let mut bytes = std::mem::take(&mut st.bytes);
        let split = st
            .greeting_len
            .take()
            .unwrap_or(bytes.len())
            .min(bytes.len());
        // Later takes count everything as "after".
        st.greeting_len = Some(0);
        let after = bytes.split_off(split);
        (bytes, after)
    }
}

#[derive(Debug)]
pub(crate) struct TapStream {
    tcp: TcpStream,
    tap: Tap,
}

impl TapStream {
    pub(crate) fn new(tcp: TcpStream, tap: Tap) -> Self {
        tap.set_capture(true);
        TapStream { tcp, tap }
    }
}

impl AsyncRead for TapStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let res = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let mut st = this.tap.state();
            if st.capture {
                let new = &buf.filled()[before..];
                let room = TAP_LIMIT.saturating_sub(st.bytes.len());
                st.bytes.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        res
    }
}

impl AsyncWrite for TapStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut this.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            let mut st = this.tap.state();
            st.written += n as u64;
            if n > 0 && st.greeting_len.is_none() {
                st.greeting_len = Some(st.bytes.len());
            }
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TapStream {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.peer_addr()
    }
}

/// Splits captured bytes into the leading SMTP reply lines (text) and
/// whatever follows (TLS records after a `220` to STARTTLS).
pub(crate) fn split_text_lines(bytes: &[u8]) -> (String, &[u8]) {
    let mut end = 0;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        match bytes[end..].iter().position(|&b| b == b'\n') {
            Some(nl) => end += nl + 1,
            None => {
                end = bytes.len();
                break;
            }
        }
    }
    (
        String::from_utf8_lossy(&bytes[..end]).into_owned(),
        &bytes[end..],
    )
}

/// Reads the negotiated TLS version from the server's first TLS record
/// (ServerHello; TLS 1.3 says so in its supported_versions extension).
pub(crate) fn tls_version_from_server_hello(records: &[u8]) -> Option<&'static str> {
    let rd = Reader(records);
    // Record header: content type 22 (handshake), version, length.
    if rd.u8(0)? != 22 {
        return None;
    }
    let len = rd.u16(3)? as usize;
    let frag = Reader(records.get(5..5 + len)?);
    // Handshake header: type 2 (ServerHello), 3-byte length.
    if frag.u8(0)? != 2 {
        return None;
    }
    let legacy = frag.u16(4)?;
    let mut at = 4 + 2 + 32;
    at += 1 + frag.u8(at)? as usize; // session id
    at += 2 + 1; // cipher suite, compression
    let mut version = legacy;
    if let Some(ext_len) = frag.u16(at) {
        let end = at + 2 + ext_len as usize;
        at += 2;
        while at + 4 <= end {
            let (ty, l) = (frag.u16(at)?, frag.u16(at + 2)? as usize);
            if ty == 0x002b && l == 2 {
                version = frag.u16(at + 4)?;
            }
            at += 4 + l;
        }
    }
    match version {
        0x0304 => Some("TLSv1.3"),
        0x0303 => Some("TLSv1.2"),
        0x0302 => Some("TLSv1.1"),
        0x0301 => Some("TLSv1.0"),
        _ => None,
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8(at)?, self.u8(at + 1)?]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello(exts: &[u8]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0); // empty session id
        body.extend_from_slice(&[0x13, 0x01, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(exts);
        let mut hs = vec![2, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 3];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn server_hello_versions() {
        assert_eq!(
            tls_version_from_server_hello(&server_hello(&[0, 0x2b, 0, 2, 3, 4])),
            Some("TLSv1.3")
        );
        assert_eq!(
            tls_version_from_server_hello(&server_hello(&[])),
            Some("TLSv1.2")
        );
        assert_eq!(
            tls_version_from_server_hello(&server_hello(&[0xff, 1, 0, 1, 0])),
            Some("TLSv1.2")
        );
    }

    #[test]
    fn hostile_records() {
        let full = server_hello(&[0, 0x2b, 0, 2, 3, 4]);
        for cut in 0..full.len() {
            let _ = tls_version_from_server_hello(&full[..cut]);
        }
        assert_eq!(tls_version_from_server_hello(b"220 hi\r\n"), None);
        assert_eq!(tls_version_from_server_hello(&[22, 3, 3, 0xff, 0xff]), None);
    }

    #[test]
    fn splits_reply_from_records() {
        let mut bytes = b"220 2.0.0 SMTP server ready\r\n".to_vec();
        bytes.extend_from_slice(&[22, 3, 3, 0, 1, 2]);
        let (text, rest) = split_text_lines(&bytes);
        assert_eq!(text, "220 2.0.0 SMTP server ready\r\n");
        assert_eq!(rest, &[22, 3, 3, 0, 1, 2]);
    }
}
