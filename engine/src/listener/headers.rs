//! What Postern does to a message's header section at receipt, as a pure
//! streaming filter between the DATA machine and the spool (no I/O, so it
//! is table-tested and fuzzable):
//!
//! - **Date and Message-ID** are added when absent, as a submission server
//!   should (RFC 6409 §8.2, §8.3): many scanners send neither, and mail
//!   without them scores as spam or is threaded wrongly. They go at the end
//!   of the header section, where Postfix's cleanup puts them, so the
//!   filter never holds more than one line. Present ones are untouched.
//! - **Long header lines are folded**, not refused: a header line longer
//!   than [`MAX_TEXT_LINE`] characters (a scanner's 5,000-character
//!   Subject listing every file) gets a line break inserted before a space
//!   or tab, which RFC 5322 §2.2.3 unfolding removes again, so the header
//!   means exactly what it meant. A header line with no space to fold at,
//!   and any body line that long, is reported (the session refuses the
//!   message: re-wrapping a body would change it, and a next hop may cut
//!   such a line anywhere).
//!
//! The header section is the run of header fields (`name:` lines and their
//! continuation lines) at the start. It ends at the empty line, or at the
//! first line that is not a header field; in that second case, when
//! headers are added, an empty line is added after them so that the
//! stray line stays body text (as Postfix does).
//!
//! Input is the DATA machine's output: CRLF line breaks only. Any other
//! input is handled without panicking (an LF ends a line, a CR before it
//! belongs to the line break).

use super::data::MAX_TEXT_LINE;

/// The most header bytes a message may have: Exchange Online refuses a
/// message whose header section is over 256 KB, and nothing a device
/// sends needs more. Past it the message is refused (552) and the filter
/// stops looking at lines, so a flood of one-line headers costs nothing.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;

/// The header lines to add when they are missing, made at receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// RFC 5322 date-time, e.g. `Tue, 1 Oct 2024 09:30:00 +0000`.
    pub date: String,
    /// RFC 5322 msg-id with its angle brackets.
    pub message_id: String,
}

impl Stamp {
    /// Date = `now`; Message-ID = `<queue id.random@hostname>`.
    pub fn at(now: std::time::SystemTime, queue_id: &str, hostname: &str) -> Stamp {
        let host: String = hostname
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
            .collect();
        let host = host.trim_matches('.');
        let host = if host.is_empty() { "localhost" } else { host };
        Stamp {
            date: crate::clock::rfc5322(now),
            message_id: format!("<{queue_id}.{:016x}@{host}>", rand::random::<u64>()),
        }
    }
}

/// A line that cannot be stored as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongLine {
    /// 1-based, as the device sent it.
    pub line: usize,
    /// In the header section (and with no space or tab to fold it at).
    pub header: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Still in the header section; `field` says whether a header field
    /// has been seen (so a leading space or tab continues it).
    Headers {
        field: bool,
    },
    Body,
}

/// What kind of line the current header-section line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `name:`; the index of the colon.
    Field(usize),
    Continuation,
    Empty,
    /// Not a header line: the body starts here.
    Other,
    /// Not known yet (a field name still arriving).
    Unknown,
}

/// The filter. Feed it content with [`push`](Self::push), end with
/// [`finish`](Self::finish); it appends what is to be stored to `out`.
#[derive(Debug, Clone)]
pub struct HeaderFilter {
    stamp: Stamp,
    phase: Phase,
    /// The current header-section line, without its line break.
    line: Vec<u8>,
    /// Current line number in the input (1-based).
    line_no: usize,
    /// Characters on the current body line.
    body_len: usize,
    has_date: bool,
    has_message_id: bool,
    added: Vec<&'static str>,
    folds: usize,
    long_line: Option<LongLine>,
    /// Bytes of the header section so far.
    header_bytes: usize,
    too_big: bool,
}

impl HeaderFilter {
    pub fn new(stamp: Stamp) -> HeaderFilter {
        HeaderFilter {
            stamp,
            phase: Phase::Headers { field: false },
            line: Vec::new(),
            line_no: 1,
            body_len: 0,
            has_date: false,
            has_message_id: false,
            added: Vec::new(),
            folds: 0,
            long_line: None,
            header_bytes: 0,
            too_big: false,
        }
    }

    /// The first line that is too long to store, if any.
    pub fn long_line(&self) -> Option<LongLine> {
        self.long_line
    }

    /// The header section went past [`MAX_HEADER_BYTES`].
    pub fn header_too_big(&self) -> bool {
        self.too_big
    }

    /// The header names added (after `finish`).
    pub fn added(&self) -> &[&'static str] {
        &self.added
    }

    /// How many line breaks were inserted to fold long header lines.
    pub fn folds(&self) -> usize {
        self.folds
    }

    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while !rest.is_empty() {
            if self.phase == Phase::Body {
                self.body(rest, out);
                return;
            }
            let b = rest[0];
            rest = &rest[1..];
            self.header_bytes += 1;
            if self.header_bytes > MAX_HEADER_BYTES {
                // Refused: the rest passes through unread.
                self.too_big = true;
                self.line.clear();
                self.phase = Phase::Body;
                continue;
            }
            if b == b'\n' {
                self.end_header_line(out);
            } else {
                self.line.push(b);
                // A CR at the end is (normally) the start of the line break.
                let len = self.line.len() - usize::from(b == b'\r');
                if len > MAX_TEXT_LINE {
                    self.overlong_header_line(out);
                }
            }
        }
    }

    /// The end of the content: a header section that never ended (a
    /// message with no body) still gets its missing headers.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let Phase::Headers { .. } = self.phase {
            if !self.line.is_empty() {
                self.end_header_line(out);
            }
            if let Phase::Headers { .. } = self.phase {
                self.add_missing(out);
                self.phase = Phase::Body;
            }
        }
    }

    fn body(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(input);
        for &b in input {
            if b == b'\n' {
                self.line_no += 1;
                self.body_len = 0;
            } else if b != b'\r' {
                self.body_len += 1;
                if self.body_len > MAX_TEXT_LINE {
                    self.note_long(false);
                }
            }
        }
    }

    fn kind(&self) -> Kind {
        let field = matches!(self.phase, Phase::Headers { field: true });
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        match line.first() {
            None => Kind::Empty,
            Some(b' ' | b'\t') if field => Kind::Continuation,
            Some(b' ' | b'\t') => Kind::Other,
            Some(_) => {
                // A field name (printable ASCII but ':'), optional blanks
                // (obsolete "Subject :"), then ':'.
                let name = line
                    .iter()
                    .position(|c| !matches!(c, 33..=57 | 59..=126))
                    .unwrap_or(line.len());
                let blanks = line[name..]
                    .iter()
                    .position(|c| !matches!(c, b' ' | b'\t'))
                    .unwrap_or(line.len() - name);
                match line.get(name + blanks) {
                    Some(b':') if name > 0 => Kind::Field(name + blanks),
                    None => Kind::Unknown,
                    Some(_) => Kind::Other,
                }
            }
        }
    }

    /// A complete header-section line (its LF just arrived).
    fn end_header_line(&mut self, out: &mut Vec<u8>) {
        let kind = match self.kind() {
            Kind::Unknown => Kind::Other,
            k => k,
        };
        let line = std::mem::take(&mut self.line);
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        match kind {
            Kind::Field(colon) => {
                let name = text[..colon].trim_ascii_end();
                if name.eq_ignore_ascii_case(b"date") {
                    self.has_date = true;
                } else if name.eq_ignore_ascii_case(b"message-id") {
                    self.has_message_id = true;
                }
                self.phase = Phase::Headers { field: true };
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
                self.line_no += 1;
            }
            Kind::Continuation => {
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
                self.line_no += 1;
            }
            Kind::Empty => {
                self.add_missing(out);
                self.phase = Phase::Body;
                out.extend_from_slice(b"\r\n");
                self.line_no += 1;
            }
            Kind::Other | Kind::Unknown => {
                self.start_body_with(text, out);
                self.body(b"\r\n", out);
            }
        }
    }

    /// The current line went past the limit before its end.
    fn overlong_header_line(&mut self, out: &mut Vec<u8>) {
        let start = match self.kind() {
            Kind::Field(colon) => colon + 1,
            Kind::Continuation => 0,
            Kind::Empty | Kind::Unknown | Kind::Other => {
                // Not a header line: the body starts here (and this line
                // is already too long).
                let line = std::mem::take(&mut self.line);
                self.start_body_with(&line, out);
                return;
            }
        };
        // Fold before the last space or tab that leaves at most
        // MAX_TEXT_LINE characters and something other than blanks before it.
        let fold = (start.max(1)..=MAX_TEXT_LINE)
            .rev()
            .find(|&i| matches!(self.line[i], b' ' | b'\t'))
            .filter(|&i| self.line[..i].iter().any(|c| !matches!(c, b' ' | b'\t')));
        match fold {
            Some(at) => {
                out.extend_from_slice(&self.line[..at]);
                out.extend_from_slice(b"\r\n");
                self.line.drain(..at);
                self.folds += 1;
                self.phase = Phase::Headers { field: true };
            }
            None => {
                self.note_long(true);
                // Nothing more is worth keeping; count on as body.
                let line = std::mem::take(&mut self.line);
                self.phase = Phase::Body;
                self.body_len = 0;
                self.body(&line, out);
            }
        }
    }

    /// The header section ended at a line that is not a header (`text`,
    /// without line break): missing headers, an empty line if any were
    /// added, then the line as body.
    fn start_body_with(&mut self, text: &[u8], out: &mut Vec<u8>) {
        self.add_missing(out);
        if !self.added.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        self.phase = Phase::Body;
        self.body_len = 0;
        self.body(text, out);
    }

    fn add_missing(&mut self, out: &mut Vec<u8>) {
        if !self.has_date {
            out.extend_from_slice(format!("Date: {}\r\n", self.stamp.date).as_bytes());
            self.added.push("Date");
        }
        if !self.has_message_id {
            let line = format!("Message-ID: {}\r\n", self.stamp.message_id);
            out.extend_from_slice(line.as_bytes());
            self.added.push("Message-ID");
        }
    }

    fn note_long(&mut self, header: bool) {
        if self.long_line.is_none() {
            self.long_line = Some(LongLine {
                line: self.line_no,
                header,
            });
        }
    }
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
