//! Decoding an attachment's body from the spool in bounded chunks.
//!
//! [`super::mime_scan`] finds where each attachment's encoded body is in
//! the stored file; [`Chunks`] reads that byte range and yields the decoded
//! bytes in chunks of exactly `chunk` bytes (the last one shorter), never
//! holding more than one chunk and one read buffer. Graph's upload session
//! takes ranges of at most 4 MB and needs the total size first:
//! [`decoded_size`] gives it exactly, by one streaming pass. The rules are
//! in `docs/graph.md` § "The draft route".

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

/// A part's `Content-Transfer-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    Base64,
    QuotedPrintable,
    /// 7bit, 8bit, binary, or none: the bytes as they are.
    Identity,
}

impl TransferEncoding {
    /// From the header value (case and spaces ignored; unknown: identity).
    pub fn from_header(value: &str) -> Self {
        match value.trim().to_ascii_lowercase().as_str() {
            "base64" => TransferEncoding::Base64,
            "quoted-printable" => TransferEncoding::QuotedPrintable,
            _ => TransferEncoding::Identity,
        }
    }
}

const READ_BUF: usize = 64 * 1024;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// Decoded chunks of one range of a file; an iterator of
/// `io::Result<Vec<u8>>`.
pub struct Chunks<R> {
    input: std::io::Take<BufReader<R>>,
    encoding: TransferEncoding,
    chunk: usize,
    /// Base64 characters not yet decoded (fewer than 4 between reads).
    quad: Vec<u8>,
    /// Quoted-printable: bytes of an unfinished `=XX` or trailing spaces.
    pending: Vec<u8>,
    out: Vec<u8>,
    done: bool,
}

/// Decoded chunks of at most `chunk` bytes of the `range` of `file`.
pub fn chunks<R: Read + Seek>(
    mut file: R,
    range: Range<u64>,
    encoding: TransferEncoding,
    chunk: usize,
) -> std::io::Result<Chunks<R>> {
    assert!(chunk > 0, "a chunk size");
    file.seek(SeekFrom::Start(range.start))?;
    let len = range.end.saturating_sub(range.start);
    Ok(Chunks {
        input: BufReader::with_capacity(READ_BUF, file).take(len),
        encoding,
        chunk,
        quad: Vec::with_capacity(8),
        pending: Vec::new(),
        out: Vec::new(),
        done: false,
    })
}

impl<R: Read> Chunks<R> {
    /// Decodes `input` into `self.out`.
    fn feed(&mut self, input: &[u8]) -> std::io::Result<()> {
        match self.encoding {
            TransferEncoding::Identity => self.out.extend_from_slice(input),
            TransferEncoding::Base64 => {
                self.quad
                    .extend(input.iter().copied().filter(|&b| is_b64(b)));
                let whole = self.quad.len() / 4 * 4;
                BASE64
                    .decode_vec(&self.quad[..whole], &mut self.out)
                    .map_err(bad_data)?;
                self.quad.drain(..whole);
            }
            TransferEncoding::QuotedPrintable => {
                self.pending.extend_from_slice(input);
                let keep = qp_decode(&self.pending, &mut self.out, false);
                self.pending.drain(..keep);
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self.encoding {
            TransferEncoding::Identity => {}
            TransferEncoding::Base64 => {
                if self.quad.len() == 1 {
                    return Err(bad_data("the base64 ends in the middle of a byte"));
                }
                BASE64
                    .decode_vec(&self.quad, &mut self.out)
                    .map_err(bad_data)?;
                self.quad.clear();
            }
            TransferEncoding::QuotedPrintable => {
                let pending = std::mem::take(&mut self.pending);
                qp_decode(&pending, &mut self.out, true);
            }
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        while self.out.len() < self.chunk && !self.done {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                self.done = true;
                self.finish()?;
                break;
            }
            // Never decode far past one chunk: bounded memory.
            let n = buf.len().min(READ_BUF);
            let input = buf[..n].to_vec();
            self.input.consume(n);
            self.feed(&input)?;
        }
        if self.out.is_empty() {
            return Ok(None);
        }
        let rest = if self.out.len() > self.chunk {
            self.out.split_off(self.chunk)
        } else {
            Vec::new()
        };
        Ok(Some(std::mem::replace(&mut self.out, rest)))
    }
}

impl<R: Read> Iterator for Chunks<R> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(Some(c)) => Some(Ok(c)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                self.out.clear();
                Some(Err(e))
            }
        }
    }
}

fn bad_data(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("an attachment's encoding is broken: {e}"),
    )
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes quoted-printable from `input` into `out`; returns how many bytes
/// were used (the rest — an unfinished `=`, `=X`, `=\r`, or trailing blanks
/// that may end a line — waits for more input unless `last`).
fn qp_decode(input: &[u8], out: &mut Vec<u8>, last: bool) -> usize {
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'=' => {
                let rest = &input[i + 1..];
                match rest {
                    [] | [b'\r'] if !last => return i,
                    [h] if !last && hex(*h).is_some() => return i,
                    [b'\n', ..] => i += 2,
                    [b'\r', b'\n', ..] => i += 3,
                    [h, l, ..] if hex(*h).is_some() && hex(*l).is_some() => {
                        out.push(hex(*h).unwrap() * 16 + hex(*l).unwrap());
                        i += 3;
                    }
                    // A lone or broken `=`: kept as it is (RFC 2045 §6.7 note 1).
                    _ => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b' ' | b'\t' => {
                let end = input[i..]
                    .iter()
                    .position(|&c| c != b' ' && c != b'\t')
                    .map(|p| i + p);
                match end {
                    // Blanks at the very end of the part end its last line.
                    None if last => i = input.len(),
                    None if input.len() - i < 1024 => return i,
                    None => {
                        out.extend_from_slice(&input[i..]);
                        i = input.len();
                    }
                    // Trailing blanks before a line break are dropped.
                    Some(e) if input[e] == b'\r' || input[e] == b'\n' => i = e,
                    Some(e) => {
                        out.extend_from_slice(&input[i..e]);
                        i = e;
                    }
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    i
}

/// The exact decoded size of the `range` of `file`: counted from the
/// base64 characters, or by a decoding pass for quoted-printable.
pub fn decoded_size<R: Read + Seek>(
    mut file: R,
    range: Range<u64>,
    encoding: TransferEncoding,
) -> std::io::Result<u64> {
    match encoding {
        TransferEncoding::Identity => Ok(range.end.saturating_sub(range.start)),
        TransferEncoding::Base64 => {
            file.seek(SeekFrom::Start(range.start))?;
            let mut input = BufReader::with_capacity(READ_BUF, file)
                .take(range.end.saturating_sub(range.start));
            let mut n = 0u64;
            loop {
                let buf = input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                n += buf.iter().filter(|&&b| is_b64(b)).count() as u64;
                let len = buf.len();
                input.consume(len);
            }
            match n % 4 {
                1 => Err(bad_data("the base64 ends in the middle of a byte")),
                r => Ok(n / 4 * 3 + r.saturating_sub(1)),
            }
        }
        TransferEncoding::QuotedPrintable => {
            let mut size = 0u64;
            for c in chunks(file, range, encoding, 1024 * 1024)? {
                size += c?.len() as u64;
            }
            Ok(size)
        }
    }
}

#[cfg(test)]
#[path = "mime_decode_tests.rs"]
mod tests;
