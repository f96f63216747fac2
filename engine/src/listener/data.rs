//! The DATA phase as a pure, streaming state machine: raw bytes from the
//! device in, stored content out, no I/O, so it is table-tested and fuzzable.
//!
//! Rules (RFC 5321 §4.1.1.4, §4.5.2, and the 2023 SMTP-smuggling lessons):
//!
//! - The message ends ONLY at `CRLF "." CRLF` in the raw stream (the start
//!   of DATA counts as following a CRLF, so `".\r\n"` straight away is an
//!   empty message; bare-LF sessions, below, are the one exception). A
//!   bare LF or bare CR never starts a line for this purpose: `\n.\n`,
//!   `\r.\r`, `\n.\r\n`, `\r\n.\n`, `\r.\r\n`, `\r\n.\r` are content.
//! - Dot-unstuffing only for a line that starts with "." after a real CRLF
//!   and has more characters on it. A lone "." followed by a bare line break
//!   is kept as content (the delivery side dot-stuffs it again).
//! - Bare LF and bare CR are normalised to CRLF, so stored content never has
//!   a lone CR or LF (Exchange refuses bare LF with 5.6.11, and the next hop
//!   must never see a line break we did not see).
//! - NUL bytes are removed from the content. A NUL still counts as a
//!   character for line starts, so `\r\n\x00.\r\n` does not end the message
//!   here, and because the NUL is gone it cannot end it at a next hop that
//!   strips NULs either (the "." line is dot-stuffed on the way out).
//! - Content past `max_bytes` is no longer emitted (the session keeps reading
//!   to the terminator, then refuses the message); text lines longer than
//!   998 characters are noted with their line number (the session goes by
//!   `listener::headers` instead, which folds long header lines and only
//!   reports what cannot be folded).
//!
//! A device that speaks bare LF throughout (every command line so far ended
//! in LF without CR, the DATA command included) gets
//! [`DataReceiver::bare_lf_session`]: there a lone LF also ends a line, so
//! `LF "." LF` (and `LF "." CRLF`) ends the message and a "." after a bare
//! LF is unstuffed, as Postfix does for such clients when
//! `smtpd_forbid_bare_newline` exempts them. Smuggling needs a client that
//! writes CRLF itself but passes someone else's bare LF through; such a
//! client used CRLF for its commands and gets the strict rule. A bare-LF
//! client cannot smuggle anything it could not simply send as commands.
//! Bare CR never ends a line in either mode.
//!
//! Bytes after the terminator are not consumed: `Feed::Done { consumed }`
//! says where the next pipelined command starts.

/// RFC 5321 §4.5.3.1.6: 1000 octets including the CRLF.
pub const MAX_TEXT_LINE: usize = 998;

/// Where the machine is relative to the raw stream's line structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinePos {
    /// Just after a real CRLF (or at the start of DATA).
    LineStart,
    /// "." at a real line start; not yet known whether it is stuffing,
    /// a lone dot, or the start of the terminator.
    Dot,
    /// ".\r" at a real line start; an LF now ends the message.
    DotCr,
    /// Inside a line (including right after a bare, normalised line break).
    Mid,
    /// A CR that may be the start of a real CRLF.
    MidCr,
}

/// What one `feed` call found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// Every input byte was used; the terminator has not arrived yet.
    NeedMore,
    /// The terminator ends at `input[consumed - 1]`; the rest is not DATA.
    Done { consumed: usize },
}

/// The DATA receiver. Feed it what arrives; it appends stored content to
/// `out` (the caller writes `out` to the spool and clears it).
#[derive(Debug, Clone)]
pub struct DataReceiver {
    state: LinePos,
    max_bytes: u64,
    /// Content bytes produced (also counted past `max_bytes`).
    size: u64,
    /// Current line number (1-based), counting every line break.
    line: usize,
    /// Characters on the current line so far.
    line_len: usize,
    long_line: Option<usize>,
    finished: bool,
    /// A bare LF ends a line too (see the module docs).
    bare_lf: bool,
}

impl DataReceiver {
    pub fn new(max_bytes: u64) -> DataReceiver {
        DataReceiver {
            state: LinePos::LineStart,
            max_bytes,
            size: 0,
            line: 1,
            line_len: 0,
            long_line: None,
            finished: false,
            bare_lf: false,
        }
    }

    /// For a session that has used bare LF consistently from the start: a
    /// bare LF ends a line, so `LF "." LF` ends the message (module docs).
    pub fn bare_lf_session(max_bytes: u64) -> DataReceiver {
        DataReceiver {
            bare_lf: true,
            ..DataReceiver::new(max_bytes)
        }
    }

    /// Content size in bytes as it would be stored (after normalisation),
    /// including any part past the limit that was not emitted.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when the content is larger than `max_bytes`.
    pub fn too_big(&self) -> bool {
        self.size > self.max_bytes
    }

    /// The first line longer than [`MAX_TEXT_LINE`] characters, if any.
    pub fn long_line(&self) -> Option<usize> {
        self.long_line
    }

    /// True once the terminator was seen; further feeds consume nothing.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Feed {
        if self.finished {
            return Feed::Done { consumed: 0 };
        }
        for (i, &b) in input.iter().enumerate() {
            match (self.state, b) {
                (LinePos::DotCr, b'\n') => {
                    self.finished = true;
                    return Feed::Done { consumed: i + 1 };
                }
                (LinePos::LineStart, b'.') => {
                    self.char_on_line();
                    self.state = LinePos::Dot;
                }
                (LinePos::Dot, b'\r') => self.state = LinePos::DotCr,
                (LinePos::Dot, b'\n') if self.bare_lf => {
                    self.finished = true;
                    return Feed::Done { consumed: i + 1 };
                }
                (LinePos::Dot, b'\n') => {
                    // ".\n": a lone dot and a bare LF; keep both as content.
                    self.emit(out, b".");
                    self.line_break(out);
                    self.state = LinePos::Mid;
                }
                (LinePos::Dot, other) => {
                    // Dot-stuffing: drop the leading dot, keep the rest.
                    self.content(out, other);
                    self.state = LinePos::Mid;
                }
                (LinePos::DotCr, other) => {
                    // ".\r" then not LF: a lone dot and a bare CR.
                    self.emit(out, b".");
                    self.line_break(out);
                    self.after_bare_cr(out, other);
                }
                (LinePos::LineStart | LinePos::Mid, b'\r') => self.state = LinePos::MidCr,
                (LinePos::LineStart | LinePos::Mid, b'\n') => {
                    self.line_break(out);
                    self.state = if self.bare_lf {
                        LinePos::LineStart
                    } else {
                        LinePos::Mid
                    };
                }
                (LinePos::LineStart | LinePos::Mid, other) => {
                    self.content(out, other);
                    self.state = LinePos::Mid;
                }
                (LinePos::MidCr, b'\n') => {
                    self.line_break(out);
                    self.state = LinePos::LineStart;
                }
                (LinePos::MidCr, other) => {
                    self.line_break(out);
                    self.after_bare_cr(out, other);
                }
            }
        }
        Feed::NeedMore
    }

    /// The byte after a bare CR (already emitted as CRLF). Not a line start.
    fn after_bare_cr(&mut self, out: &mut Vec<u8>, b: u8) {
        match b {
            b'\r' => self.state = LinePos::MidCr,
            // Unreachable (both callers match LF first), but never store a bare LF.
            b'\n' => {
                self.line_break(out);
                self.state = LinePos::Mid;
            }
            other => {
                self.content(out, other);
                self.state = LinePos::Mid;
            }
        }
    }

    /// An ordinary content byte (NULs are counted but not stored).
    fn content(&mut self, out: &mut Vec<u8>, b: u8) {
        self.char_on_line();
        if b != 0 {
            self.emit(out, &[b]);
        }
    }

    fn char_on_line(&mut self) {
        self.line_len += 1;
        if self.line_len > MAX_TEXT_LINE && self.long_line.is_none() {
            self.long_line = Some(self.line);
        }
    }

    fn line_break(&mut self, out: &mut Vec<u8>) {
        self.emit(out, b"\r\n");
        self.line += 1;
        self.line_len = 0;
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.size <= self.max_bytes {
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
