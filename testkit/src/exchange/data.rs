//! The DATA content receiver: feed it bytes as they arrive, it dot-unstuffs,
//! notices bare LFs, caps the stored size, and says where the message ended.
//!
//! The message ends only at `<CRLF>.<CRLF>` (the CRLF that ends the DATA
//! command line counts as the first CRLF, so an empty message is just
//! `.\r\n`). `\n.\n`, `\r.\r`, `\n.\r\n` and `\r\n.\n` do not end it
//! (docs/exchange-online.md §5, SMTP smuggling).

/// Where the receiver is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinePos {
    /// Just after a CRLF (or at the very start).
    LineStart,
    /// A line that began with `.`.
    Dot,
    /// `.` then CR at the start of a line: one LF away from the end.
    DotCr,
    /// Inside a line.
    Mid,
    /// Just after a CR inside a line.
    Cr,
}

/// Incremental DATA receiver.
#[derive(Debug)]
pub struct DataReceiver {
    state: LinePos,
    content: Vec<u8>,
    limit: usize,
    /// More than `limit` bytes arrived; `content` holds only the first `limit`.
    pub too_big: bool,
    /// An LF not preceded by CR was seen.
    pub bare_lf: bool,
    /// Bytes of content seen (after unstuffing), including any past the limit.
    pub total: usize,
}

impl DataReceiver {
    /// A receiver that stores at most `limit` bytes.
    pub fn new(limit: usize) -> DataReceiver {
        DataReceiver {
            state: LinePos::LineStart,
            content: Vec::new(),
            limit,
            too_big: false,
            bare_lf: false,
            total: 0,
        }
    }

    /// Feeds bytes. Returns `Some(n)` when the terminator was found, `n`
    /// being how many bytes of `input` were used (the rest belongs to the
    /// next command); `None` means "not yet, need more".
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        for (i, &b) in input.iter().enumerate() {
            match self.state {
                LinePos::LineStart if b == b'.' => self.state = LinePos::Dot,
                LinePos::Dot if b == b'\r' => self.state = LinePos::DotCr,
                LinePos::DotCr if b == b'\n' => return Some(i + 1),
                LinePos::DotCr => {
                    // ".\r" then something else: the dot was stuffing, the CR
                    // is content.
                    self.push(b'\r');
                    self.state = LinePos::Cr;
                    self.byte(b);
                }
                _ => self.byte(b),
            }
        }
        None
    }

    /// An ordinary content byte in states LineStart, Dot, Mid or Cr.
    fn byte(&mut self, b: u8) {
        let after_cr = self.state == LinePos::Cr;
        self.push(b);
        self.state = match b {
            b'\r' => LinePos::Cr,
            b'\n' => {
                if !after_cr {
                    self.bare_lf = true;
                }
                if after_cr {
                    LinePos::LineStart
                } else {
                    LinePos::Mid
                }
            }
            _ => LinePos::Mid,
        };
    }

    fn push(&mut self, b: u8) {
        self.total += 1;
        if self.content.len() < self.limit {
            self.content.push(b);
        } else {
            self.too_big = true;
        }
    }

    /// The content received, without the final `.\r\n`.
    pub fn into_content(self) -> Vec<u8> {
        self.content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, expected content or None if not ended, bare_lf)
    type Case = (&'static [u8], Option<&'static [u8]>, bool);

    const CASES: &[Case] = &[
        (b".\r\n", Some(b""), false),
        (b"a\r\n.\r\n", Some(b"a\r\n"), false),
        (b"..x\r\n.\r\n", Some(b".x\r\n"), false),
        (b"...\r\n.\r\n", Some(b"..\r\n"), false),
        (b"a\n.\nb\r\n.\r\n", Some(b"a\n.\nb\r\n"), true),
        (b"a\r.\rb\r\n.\r\n", Some(b"a\r.\rb\r\n"), false),
        (b"a\n.\r\nb\r\n.\r\n", Some(b"a\n.\r\nb\r\n"), true),
        (b"a\r\n.\nb\r\n.\r\n", Some(b"a\r\n\nb\r\n"), true),
        (b".\rx\r\n.\r\n", Some(b"\rx\r\n"), false),
        (b"a\r\n.", None, false),
        (b"a\r\n.\r", None, false),
        (b"a\n", None, true),
        (b"\r\n\r\n.\r\n", Some(b"\r\n\r\n"), false),
    ];

    #[test]
    fn table() {
        for &(input, expected, bare) in CASES {
            let mut r = DataReceiver::new(1 << 20);
            let end = r.feed(input);
            assert_eq!(end.is_some(), expected.is_some(), "{input:?}");
            if let Some(n) = end {
                assert_eq!(n, input.len(), "{input:?}");
            }
            assert_eq!(r.bare_lf, bare, "{input:?}");
            if let Some(expected) = expected {
                assert_eq!(r.into_content(), expected, "{input:?}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        for &(input, expected, _) in CASES {
            let mut r = DataReceiver::new(1 << 20);
            let mut ended = false;
            for b in input {
                if r.feed(std::slice::from_ref(b)).is_some() {
                    ended = true;
                }
            }
            assert_eq!(ended, expected.is_some(), "{input:?}");
            if let Some(expected) = expected {
                assert_eq!(r.into_content(), expected, "{input:?}");
            }
        }
    }

    #[test]
    fn leftover_after_terminator_is_not_consumed() {
        let mut r = DataReceiver::new(100);
        assert_eq!(r.feed(b"x\r\n.\r\nQUIT\r\n"), Some(6));
    }

    #[test]
    fn limit_caps_storage() {
        let mut r = DataReceiver::new(4);
        assert!(r.feed(b"123456\r\n.\r\n").is_some());
        assert!(r.too_big);
        assert_eq!(r.total, 8);
        assert_eq!(r.into_content(), b"1234");
    }
}
