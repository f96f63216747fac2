//! A streaming scan of a stored message, for Graph's draft route.
//!
//! Scans of 5–35 MB go to Graph as a draft plus attachments uploaded in
//! parts, and must not be loaded whole into memory. [`scan`] reads the
//! stored file line by line (through any [`BufRead`]), following multipart
//! boundaries down nested multiparts, and returns a [`ScanPlan`]: the
//! top-level headers (parsed with mail-parser), the body to show (text/html
//! preferred, else text/plain; small, so loaded and decoded), and each
//! attachment as a byte range of its encoded body in the file, which
//! [`super::mime_decode`] decodes in bounded chunks. The rules are in
//! `docs/graph.md` § "The draft route".
//!
//! Memory is bounded: a line is read in pieces of at most [`MAX_PIECE`]
//! bytes, a header section may be at most [`MAX_HEADERS`], and a text part
//! is kept in memory as a body candidate only up to [`MAX_BODY`]; a longer
//! one becomes an attachment.

use std::io::BufRead;
use std::ops::Range;

use mail_parser::{HeaderName, HeaderValue, MessageParser, PartType};

use super::envelope::Recipient;
use super::mime_decode::TransferEncoding;

/// The longest piece of a line read at once.
pub const MAX_PIECE: usize = 64 * 1024;
/// The largest header section of the message or of a part.
pub const MAX_HEADERS: usize = 256 * 1024;
/// The largest text part loaded as the message body.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// What the draft route needs from a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPlan {
    /// The top-level header section, raw (for the envelope rules).
    pub header_section: Vec<u8>,
    pub headers: TopHeaders,
    pub body: Option<Body>,
    pub attachments: Vec<AttachmentPart>,
}

/// The top-level headers Graph's message takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopHeaders {
    pub subject: Option<String>,
    pub from: Option<Recipient>,
    pub reply_to: Vec<Recipient>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    /// RFC 3339.
    pub date: Option<String>,
    pub message_id: Option<String>,
    /// `X-` headers (name as written, value unfolded), the only ones Graph's
    /// `internetMessageHeaders` accepts.
    pub x_headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    Text,
    Html,
}

/// The message body, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub content_type: BodyType,
    pub content: String,
}

/// An attachment: where its encoded body is in the file and how to decode it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentPart {
    pub name: String,
    /// `type/subtype`, lowercase.
    pub content_type: String,
    /// Without angle brackets.
    pub content_id: Option<String>,
    pub inline: bool,
    pub encoding: TransferEncoding,
    /// The encoded body's bytes in the file.
    pub range: Range<u64>,
}

/// Why a stored message could not be scanned.
#[derive(Debug)]
pub enum ScanError {
    Io(std::io::Error),
    /// The file ended inside a header section or before a multipart's
    /// closing boundary.
    Truncated(&'static str),
    HeadersTooLarge,
    /// A multipart without a boundary parameter.
    NoBoundary,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanError::Io(e) => write!(f, "reading the stored message failed: {e}"),
            ScanError::Truncated(what) => {
                write!(f, "the stored message is cut short: it ends {what}")
            }
            ScanError::HeadersTooLarge => write!(
                f,
                "the stored message has a header section over {} KB",
                MAX_HEADERS / 1024
            ),
            ScanError::NoBoundary => {
                write!(
                    f,
                    "the stored message has a multipart part without a boundary"
                )
            }
        }
    }
}

impl std::error::Error for ScanError {}

impl From<std::io::Error> for ScanError {
    fn from(e: std::io::Error) -> Self {
        ScanError::Io(e)
    }
}

/// Reads up to the next `\n` (included) or [`MAX_PIECE`] bytes into `buf`;
/// returns the count (0 at the end of the file).
fn read_piece(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.clear();
    while buf.len() < MAX_PIECE {
        let available = r.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let room = MAX_PIECE - buf.len();
        let take = available.len().min(room);
        let (n, done) = match available[..take].iter().position(|&b| b == b'\n') {
            Some(p) => (p + 1, true),
            None => (take, false),
        };
        buf.extend_from_slice(&available[..n]);
        r.consume(n);
        if done {
            break;
        }
    }
    Ok(buf.len())
}

fn newline_len(piece: &[u8]) -> u64 {
    if piece.ends_with(b"\r\n") {
        2
    } else if piece.ends_with(b"\n") {
        1
    } else {
        0
    }
}

/// A part's headers, as the scan needs them.
struct PartHeaders {
    ctype: String,
    boundary: Option<String>,
    attachment_disposition: bool,
    inline_disposition: bool,
    name: Option<String>,
    content_id: Option<String>,
    encoding: TransferEncoding,
}

fn part_headers(raw: &[u8]) -> PartHeaders {
    let parsed = MessageParser::default().parse_headers(raw);
    let get = |name: HeaderName<'static>| parsed.as_ref().and_then(|m| m.header(name).cloned());
    let ct = get(HeaderName::ContentType).and_then(|v| v.into_content_type());
    let cd = get(HeaderName::ContentDisposition).and_then(|v| v.into_content_type());
    let ctype = ct
        .as_ref()
        .map(|c| {
            format!("{}/{}", c.ctype(), c.subtype().unwrap_or("octet-stream")).to_ascii_lowercase()
        })
        .unwrap_or_else(|| "text/plain".into());
    let disposition = cd.as_ref().map(|c| c.ctype().to_ascii_lowercase());
    let name = cd
        .as_ref()
        .and_then(|c| c.attribute("filename"))
        .or_else(|| ct.as_ref().and_then(|c| c.attribute("name")))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    let text = |v: Option<HeaderValue>| v.and_then(|v| v.as_text().map(str::to_string));
    let content_id = text(get(HeaderName::ContentId))
        .map(|c| {
            c.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
        .filter(|c| !c.is_empty());
    let encoding = TransferEncoding::from_header(
        text(get(HeaderName::ContentTransferEncoding))
            .as_deref()
            .unwrap_or(""),
    );
    PartHeaders {
        boundary: ct
            .as_ref()
            .filter(|c| c.ctype().eq_ignore_ascii_case("multipart"))
            .map(|c| c.attribute("boundary").unwrap_or("").to_string()),
        ctype,
        attachment_disposition: disposition.as_deref() == Some("attachment"),
        inline_disposition: disposition.as_deref() == Some("inline"),
        name,
        content_id,
        encoding,
    }
}

/// A leaf part being read.
struct Leaf {
    headers: PartHeaders,
    raw_headers: Vec<u8>,
    start: u64,
    /// The bytes, while this part may still be the body.
    kept: Option<Vec<u8>>,
    in_alternative: bool,
}

enum State {
    Headers {
        raw: Vec<u8>,
        in_alternative: bool,
    },
    Leaf(Leaf),
    /// Preamble or epilogue: lines skipped until the next boundary.
    Skip,
}

struct Boundary {
    marker: Vec<u8>,
    alternative: bool,
}

/// A text part that may become the body.
struct Candidate {
    html: bool,
    in_alternative: bool,
    raw: Vec<u8>,
    part: AttachmentPart,
}

/// Scans a stored message from the reader's current position (the start
/// of the file: the ranges in the plan count from there); see the module
/// documentation.
pub fn scan(mut r: impl BufRead) -> Result<ScanPlan, ScanError> {
    let mut stack: Vec<Boundary> = Vec::new();
    let mut state = State::Headers {
        raw: Vec::new(),
        in_alternative: false,
    };
    let mut top: Option<Vec<u8>> = None;
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut attachments: Vec<AttachmentPart> = Vec::new();
    let mut piece = Vec::with_capacity(1024);
    let (mut offset, mut prev_newline) = (0u64, 0u64);
    let mut at_line_start = true;
    loop {
        let n = read_piece(&mut r, &mut piece)? as u64;
        let line_start = offset;
        offset += n;
        let whole_line = std::mem::replace(&mut at_line_start, piece.ends_with(b"\n"));
        if n == 0 {
            match state {
                State::Headers { raw, .. } if top.is_none() => {
                    // Headers only: fine, unless they announce a multipart.
                    if part_headers(&raw).boundary.is_some() {
                        return Err(ScanError::Truncated("inside the message's headers"));
                    }
                    top = Some(raw);
                }
                State::Headers { .. } => {
                    return Err(ScanError::Truncated("inside a part's headers"))
                }
                // A single-part message's body runs to the end of the file.
                State::Leaf(leaf) if stack.is_empty() => {
                    finish(leaf, line_start, 0, &mut candidates, &mut attachments)
                }
                _ if !stack.is_empty() => {
                    return Err(ScanError::Truncated(
                        "before a multipart's closing boundary",
                    ))
                }
                _ => {}
            }
            break;
        }
        if let State::Headers {
            raw,
            in_alternative,
        } = &mut state
        {
            let blank = whole_line && (piece == b"\r\n" || piece == b"\n");
            if !blank {
                if raw.len() + piece.len() > MAX_HEADERS {
                    return Err(ScanError::HeadersTooLarge);
                }
                raw.extend_from_slice(&piece);
                prev_newline = newline_len(&piece);
                continue;
            }
            raw.extend_from_slice(&piece);
            let raw = std::mem::take(raw);
            let in_alternative = *in_alternative;
            let headers = part_headers(&raw);
            if top.is_none() {
                top = Some(raw.clone());
            }
            state = match &headers.boundary {
                Some(b) if b.is_empty() => return Err(ScanError::NoBoundary),
                Some(b) => {
                    stack.push(Boundary {
                        marker: format!("--{b}").into_bytes(),
                        alternative: headers.ctype == "multipart/alternative",
                    });
                    State::Skip
                }
                None => {
                    let candidate = headers.ctype.starts_with("text/")
                        && matches!(headers.ctype.as_str(), "text/plain" | "text/html")
                        && !headers.attachment_disposition
                        && headers.name.is_none();
                    State::Leaf(Leaf {
                        headers,
                        raw_headers: raw,
                        start: offset,
                        kept: candidate.then(Vec::new),
                        in_alternative,
                    })
                }
            };
            prev_newline = 0;
            continue;
        }
        // A boundary line of any open multipart, innermost first.
        let line = trim_end(&piece);
        let found = stack.iter().rposition(|b| {
            whole_line
                && line.starts_with(&b.marker)
                && matches!(&line[b.marker.len()..], b"" | b"--")
        });
        if let Some(level) = found {
            let close = line.len() > stack[level].marker.len();
            if let State::Leaf(leaf) = std::mem::replace(&mut state, State::Skip) {
                finish(
                    leaf,
                    line_start,
                    prev_newline,
                    &mut candidates,
                    &mut attachments,
                );
            }
            stack.truncate(level + 1);
            if close {
                stack.pop();
            } else {
                state = State::Headers {
                    raw: Vec::new(),
                    in_alternative: stack[level].alternative,
                };
            }
        } else if let State::Leaf(leaf) = &mut state {
            if let Some(kept) = &mut leaf.kept {
                if kept.len() + piece.len() > MAX_BODY {
                    leaf.kept = None;
                } else {
                    kept.extend_from_slice(&piece);
                }
            }
        }
        prev_newline = newline_len(&piece);
    }
    let header_section = top.unwrap_or_default();
    let (body, rest) = choose_body(candidates);
    attachments.extend(rest);
    attachments.sort_by_key(|a| a.range.start);
    Ok(ScanPlan {
        headers: top_headers(&header_section),
        header_section,
        body,
        attachments,
    })
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    &line[..end]
}

/// Ends a leaf at the boundary line starting at `line_start` (the newline
/// before the boundary belongs to the boundary).
fn finish(
    leaf: Leaf,
    line_start: u64,
    prev_newline: u64,
    candidates: &mut Vec<Candidate>,
    attachments: &mut Vec<AttachmentPart>,
) {
    let end = line_start.saturating_sub(prev_newline).max(leaf.start);
    let number = candidates.len() + attachments.len() + 1;
    let h = leaf.headers;
    let part = AttachmentPart {
        name: h.name.unwrap_or_else(|| default_name(number, &h.ctype)),
        content_type: h.ctype.clone(),
        content_id: h.content_id,
        inline: h.inline_disposition && !h.attachment_disposition,
        encoding: h.encoding,
        range: leaf.start..end,
    };
    match leaf.kept {
        Some(mut body) => {
            body.truncate((end - leaf.start) as usize);
            let mut raw = leaf.raw_headers;
            raw.extend_from_slice(&body);
            candidates.push(Candidate {
                html: h.ctype == "text/html",
                in_alternative: leaf.in_alternative,
                raw,
                part,
            });
        }
        None => attachments.push(part),
    }
}

fn default_name(number: usize, ctype: &str) -> String {
    let ext = match ctype {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/tiff" => "tif",
        "text/plain" => "txt",
        "text/html" => "html",
        _ => "bin",
    };
    format!("part{number}.{ext}")
}

/// The first text/html candidate, else the first text/plain, is the body;
/// the others of a multipart/alternative are other forms of it and are
/// dropped; any other candidate is an attachment.
fn choose_body(candidates: Vec<Candidate>) -> (Option<Body>, Vec<AttachmentPart>) {
    let chosen = candidates
        .iter()
        .position(|c| c.html)
        .or_else(|| (!candidates.is_empty()).then_some(0));
    let mut body = None;
    let mut rest = Vec::new();
    for (i, c) in candidates.into_iter().enumerate() {
        if Some(i) == chosen {
            body = Some(decode_body(&c.raw, c.html));
        } else if !c.in_alternative {
            rest.push(c.part);
        }
    }
    (body, rest)
}

fn decode_body(raw: &[u8], html: bool) -> Body {
    let message = MessageParser::default().parse(raw);
    let content = message
        .as_ref()
        .and_then(|m| m.part(0))
        .map(|p| match &p.body {
            PartType::Text(t) | PartType::Html(t) => t.to_string(),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                String::from_utf8_lossy(b).into_owned()
            }
            _ => String::new(),
        })
        .unwrap_or_default();
    Body {
        content_type: if html { BodyType::Html } else { BodyType::Text },
        content,
    }
}

fn recipients(a: Option<&mail_parser::Address>) -> Vec<Recipient> {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| {
                Some(Recipient {
                    address: addr.address.as_deref()?.to_string(),
                    name: addr
                        .name
                        .as_deref()
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                })
            })
            .collect()
    })
    .unwrap_or_default()
}

fn top_headers(section: &[u8]) -> TopHeaders {
    let Some(m) = MessageParser::default().parse_headers(section) else {
        return TopHeaders::default();
    };
    let x_headers = m
        .headers()
        .iter()
        .filter_map(|h| {
            let HeaderName::Other(name) = &h.name else {
                return None;
            };
            if !name.get(..2)?.eq_ignore_ascii_case("x-") {
                return None;
            }
            let raw = section.get(h.offset_start..h.offset_end)?;
            let value: Vec<u8> = raw
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            Some((
                name.to_string(),
                String::from_utf8_lossy(&value).trim().to_string(),
            ))
        })
        .collect();
    TopHeaders {
        subject: m.subject().map(str::to_string),
        from: recipients(m.from()).into_iter().next(),
        reply_to: recipients(m.reply_to()),
        to: recipients(m.to()),
        cc: recipients(m.cc()),
        date: m.date().map(|d| d.to_rfc3339()),
        message_id: m.message_id().map(str::to_string),
        x_headers,
    }
}

#[cfg(test)]
#[path = "mime_scan_tests.rs"]
mod tests;
