//! DATA inside a session: the content streamed from the device through the
//! DATA machine (`listener::data`) and the header filter
//! (`listener::headers`: Date and Message-ID added when missing, long
//! header lines folded) to the spool, and the one reply at the end: 250
//! only once the message with its final bytes is durable on disk.
//!
//! A device that has sent every line so far with a bare LF (never CRLF)
//! may end DATA with LF "." LF; everyone else must send CRLF "." CRLF
//! (smuggling protection; the reasoning is in `listener::data`).

use std::time::SystemTime;

use tokio::time::Instant;

use super::{End, Session};
use crate::listener::data::{DataReceiver, Feed, MAX_TEXT_LINE};
use crate::listener::headers::{HeaderFilter, LongLine, Stamp, MAX_HEADER_BYTES};
use crate::spool::space::LowSpace;
use crate::spool::{ClientInfo, Envelope, Incoming};

/// The reply when the spool could not store a message (a full disk, an
/// I/O error): the device keeps it and tries again.
const STORE_FAILED: &str = "451 4.3.0 Could not store the message, please try again";
/// How much DATA content is collected before it is handed to the spool.
const DATA_FLUSH: usize = 64 * 1024;
/// The whole DATA phase may take at most this many `data_timeout`s (10 min
/// each by default, so 30 min: a 35 MB scan at 20 KB/s). `data_timeout`
/// alone bounds silence; this stops a device that dribbles a byte now and
/// then from holding its connection for ever (slowloris).
const DATA_DEADLINE_FACTOR: u32 = 3;

impl Session {
    pub(super) async fn data(&mut self) -> Result<(), End> {
        let Some(tx) = self.tx.take() else {
            self.bad("503 5.5.1 Need MAIL and RCPT before DATA");
            return Ok(());
        };
        if tx.rcpt_to.is_empty() {
            self.tx = Some(tx);
            self.bad("503 5.5.1 No valid recipients");
            return Ok(());
        }
        let envelope = Envelope {
            mail_from: tx.mail_from,
            rcpt_to: tx.rcpt_to,
            client: ClientInfo {
                peer: self.peer.to_string(),
                helo: self.helo.clone().unwrap_or_default(),
                auth_user: self.auth_user.clone(),
                tls: self.tls.clone(),
            },
            received_at: 0,
            smtputf8: tx.smtputf8,
            eight_bit: tx.eight_bit,
        };
        let (from, rcpts) = (envelope.mail_from.clone(), envelope.rcpt_to.len());
        let mut incoming = match self.shared.spool.begin(envelope).await {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "cannot start storing a message");
                self.reply(STORE_FAILED);
                return Ok(());
            }
        };
        let queue_id = incoming.as_ref().map(|i| i.id().to_string());
        let stamp = Stamp::at(
            SystemTime::now(),
            queue_id.as_deref().unwrap_or_default(),
            &self.shared.hostname,
        );
        let mut headers = HeaderFilter::new(stamp);
        let max = self.shared.config.max_message_bytes;
        let mut rx = if self.crlf_seen {
            DataReceiver::new(max)
        } else {
            tracing::debug!(peer = %self.peer, "the device uses bare LF line endings; its DATA may end with LF.LF");
            DataReceiver::bare_lf_session(max)
        };
        self.reply("354 Start mail input; end with <CRLF>.<CRLF>");
        let mut raw = Vec::with_capacity(DATA_FLUSH);
        let mut out = Vec::with_capacity(DATA_FLUSH);
        let timeout = self.shared.config.data_timeout;
        let deadline = Instant::now() + timeout.saturating_mul(DATA_DEADLINE_FACTOR);
        // What the spool gets: the device's bytes plus any header Postern
        // adds. `max_message_bytes` is Exchange's limit, so it applies to
        // this (found by the session fuzz target: a message just under the
        // limit grew past it by its added Date and Message-ID).
        let mut stored: u64 = 0;
        loop {
            let done = match rx.feed(&self.conn.buf, &mut raw) {
                Feed::Done { consumed } => {
                    self.conn.buf.drain(..consumed);
                    true
                }
                Feed::NeedMore => {
                    self.conn.buf.clear();
                    false
                }
            };
            let before = out.len();
            headers.push(&raw, &mut out);
            raw.clear();
            if done {
                headers.finish(&mut out);
            }
            stored += (out.len() - before) as u64;
            if (done || out.len() >= DATA_FLUSH) && !out.is_empty() {
                let refused = rx.too_big()
                    || stored > max
                    || headers.long_line().is_some()
                    || headers.header_too_big();
                self.store(&mut incoming, refused, &out).await;
                out.clear();
            }
            if done {
                break;
            }
            let silence = Instant::now() + timeout;
            self.conn.read_more_until(silence.min(deadline)).await?;
        }
        let size = rx.size().max(stored);
        let refusal = if size > max {
            tracing::info!(peer = %self.peer, %from, size, max, "refused: message too big");
            Some(too_big_reply(size, max, false))
        } else if headers.header_too_big() {
            tracing::info!(peer = %self.peer, %from, "refused: header section too big");
            Some(format!("552 5.3.4 Message refused: its header section is over {} KB, the most Exchange Online accepts; the device must send fewer or shorter header fields", MAX_HEADER_BYTES / 1024))
        } else if let Some(long) = headers.long_line() {
            tracing::info!(peer = %self.peer, %from, line = long.line, header = long.header, "refused: line too long");
            Some(long_line_reply(long))
        } else if let Some(Err(low)) = match &incoming {
            Some(i) => Some(i.room().await),
            None => None,
        } {
            tracing::warn!(peer = %self.peer, %from, size, free = low.free, reserve = low.reserve, "refused at end of DATA: the message would cut into the disk reserve (spool.min_free)");
            Some(low_space_reply(low, size, true))
        } else {
            None
        };
        let Some(incoming) = incoming else {
            // Refused, or the spool failed while storing it (logged there).
            self.reply(&refusal.unwrap_or_else(|| STORE_FAILED.to_string()));
            return Ok(());
        };
        if let Some(refusal) = refusal {
            // The device heard no 250 and sends the message again later.
            incoming.discard().await;
            self.reply(&refusal);
            return Ok(());
        }
        match incoming.commit().await {
            Ok(id) => {
                let added = headers.added().join(", ");
                let folds = headers.folds();
                tracing::info!(%id, peer = %self.peer, %from, rcpts, size, "message queued");
                if !added.is_empty() || folds > 0 {
                    tracing::debug!(%id, %added, folds, "header section completed at receipt");
                }
                self.reply(&format!("250 2.0.0 Ok: queued as {id}"));
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, error = %e, "could not store a message");
                self.reply(STORE_FAILED);
            }
        }
        Ok(())
    }

    /// Writes a content chunk unless the message is already `refused`; a
    /// spool failure drops the message (the reply becomes 451).
    async fn store(&self, incoming: &mut Option<Incoming>, refused: bool, chunk: &[u8]) {
        if refused {
            if let Some(inc) = incoming.take() {
                inc.discard().await;
            }
            return;
        }
        if let Some(inc) = incoming {
            if let Err(e) = inc.write(chunk).await {
                tracing::error!(peer = %self.peer, error = %e, "could not store a message");
                if let Some(inc) = incoming.take() {
                    inc.discard().await;
                }
            }
        }
    }
}

/// `552 5.3.4` in words a person reading the device's log understands:
/// the size (as declared at MAIL, or as sent) and the limit, in MB.
pub(super) fn too_big_reply(size: u64, max: u64, declared: bool) -> String {
    let what = if declared {
        "the device says the message is"
    } else {
        "the message is"
    };
    format!(
        "552 5.3.4 Message too big: {what} {}, the limit is {} (listener.max_message_bytes); send a smaller file or scan at a lower resolution",
        megabytes(size),
        megabytes(max)
    )
}

/// `452 4.3.1` when the disk is almost full (`spool.min_free`), at MAIL
/// (`size`: what the device declared, 0 when nothing) or at the end of
/// DATA (`received`: the message is on disk, `free` counts it).
pub(super) fn low_space_reply(low: LowSpace, size: u64, received: bool) -> String {
    let (free, reserve) = (megabytes(low.free), megabytes(low.reserve));
    if received {
        format!("452 4.3.1 Message not stored: Postern's disk is almost full, {free} free with this message, and Postern keeps {reserve} in reserve (spool.min_free); try again later")
    } else if size > 0 && low.free >= low.reserve {
        format!("452 4.3.1 Postern's disk is almost full: {free} free, keeps {reserve} in reserve (spool.min_free), and this message of {} would cut into it; try again later", megabytes(size))
    } else {
        format!("452 4.3.1 Postern's disk is almost full: {free} free, keeps {reserve} in reserve (spool.min_free); try again later")
    }
}

/// `12.3 MB` (MiB, as Exchange counts its 35 MB limit), or bytes when small.
fn megabytes(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes < MB / 10 {
        return format!("{bytes} bytes");
    }
    let tenths = (bytes * 10 + MB / 2) / MB;
    if tenths.is_multiple_of(10) {
        format!("{} MB", tenths / 10)
    } else {
        format!("{}.{} MB", tenths / 10, tenths % 10)
    }
}

fn long_line_reply(long: LongLine) -> String {
    let n = long.line;
    if long.header {
        format!("550 5.6.0 Message refused: header line {n} is longer than {MAX_TEXT_LINE} characters and has no space to fold it at (RFC 5322 section 2.1.1)")
    } else {
        format!("550 5.6.0 Message refused: line {n} is longer than {MAX_TEXT_LINE} characters (RFC 5321 section 4.5.3.1.6); the device must wrap long lines or encode the text (quoted-printable or base64)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_words() {
        assert_eq!(megabytes(512), "512 bytes");
        assert_eq!(megabytes(36_700_160), "35 MB");
        assert_eq!(megabytes(42_000_000), "40.1 MB");
        assert_eq!(megabytes(200_000), "0.2 MB");
        assert_eq!(
            too_big_reply(42_000_000, 36_700_160, false),
            "552 5.3.4 Message too big: the message is 40.1 MB, the limit is 35 MB (listener.max_message_bytes); send a smaller file or scan at a lower resolution"
        );
        let low = LowSpace {
            free: 3 << 20,
            reserve: 5 << 20,
        };
        assert_eq!(
            low_space_reply(low, 0, false),
            "452 4.3.1 Postern's disk is almost full: 3 MB free, keeps 5 MB in reserve (spool.min_free); try again later"
        );
        let roomy = LowSpace {
            free: 6 << 20,
            reserve: 5 << 20,
        };
        assert!(low_space_reply(roomy, 2 << 20, false)
            .contains("this message of 2 MB would cut into it"));
        assert!(low_space_reply(low, 2 << 20, true).starts_with("452 4.3.1 Message not stored"));
        assert!(too_big_reply(4096, 2048, true)
            .contains("the device says the message is 4096 bytes, the limit is 2048 bytes"));
    }
}
