//! Exactly the envelope, for Graph.
//!
//! SMTP delivers to the envelope (the `RCPT TO` list); Graph delivers to the
//! To, Cc and Bcc of the message it is given. Postern delivers to exactly
//! the envelope on both routes, so before a message goes to Graph:
//!
//! - To and Cc keep only the addresses that are in this delivery's
//!   envelope (compared without regard to case), each kept entry written
//!   back as the device wrote it (display name, quoting, comments, encoded
//!   words); a To or Cc left with no address is removed;
//! - envelope recipients that are in neither To nor Cc go into one `Bcc:`
//!   header, which replaces any Bcc the message had;
//! - every other header byte stays as it was, in its order and folding.
//!
//! Each change gives a note for the message's transcript. The rules are
//! written out in `docs/graph.md` § "Exactly the envelope".
//! [`restrict_headers`] is the MIME route; [`draft_recipients`] gives the
//! draft route's recipient lists by the same rules.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{HeaderName, MessageParser};

/// The header section Graph is given, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestrictedHeaders {
    /// The new header section (ending with the blank line if the input had it).
    pub headers: Vec<u8>,
    /// One line per change, for the transcript.
    pub notes: Vec<String>,
}

/// A recipient of the draft route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub name: Option<String>,
}

/// The draft route's recipients: exactly the envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftRecipients {
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Recipient>,
    pub notes: Vec<String>,
}

/// One entry of an address list, as raw bytes of the header value.
#[derive(Debug)]
enum Item {
    Mailbox(Range<usize>),
    /// `name:` opening a group.
    GroupStart(Range<usize>),
    GroupEnd,
}

/// Splits a raw address-list value into entries: commas, `:` and `;` at
/// the top level, outside quoted strings, comments and angle brackets.
fn split_list(value: &[u8]) -> Vec<Item> {
    let mut items = Vec::new();
    let (mut quoted, mut comment, mut angle, mut escape) = (false, 0usize, false, false);
    let mut start = 0;
    let push = |items: &mut Vec<Item>, r: Range<usize>| {
        if value[r.clone()].iter().any(|b| !b.is_ascii_whitespace()) {
            items.push(Item::Mailbox(r));
        }
    };
    for (i, &b) in value.iter().enumerate() {
        if escape {
            escape = false;
            continue;
        }
        match b {
            b'\\' if quoted || comment > 0 => escape = true,
            b'"' if comment == 0 => quoted = !quoted,
            _ if quoted => {}
            b'(' => comment += 1,
            b')' if comment > 0 => comment -= 1,
            _ if comment > 0 => {}
            b'<' => angle = true,
            b'>' => angle = false,
            _ if angle => {}
            b',' => {
                push(&mut items, start..i);
                start = i + 1;
            }
            b':' => {
                items.push(Item::GroupStart(start..i + 1));
                start = i + 1;
            }
            b';' => {
                push(&mut items, start..i);
                items.push(Item::GroupEnd);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&mut items, start..value.len());
    items
}

/// The address and display name of one raw entry, read by mail-parser.
fn parse_entry(raw: &[u8]) -> Option<Recipient> {
    let mut buf = b"To: ".to_vec();
    buf.extend_from_slice(raw);
    buf.extend_from_slice(b"\r\n\r\n");
    let message = MessageParser::default().parse_headers(&buf[..])?;
    let addr = message.to()?.first()?;
    let address = addr.address.as_deref()?.trim().to_string();
    if !address.contains('@') {
        return None;
    }
    let name = addr
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Some(Recipient { address, name })
}

fn trim_ws(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let end = raw
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &raw[start..end]
}

fn in_list(list: &[String], address: &str) -> bool {
    list.iter().any(|a| a.eq_ignore_ascii_case(address))
}

/// The envelope addresses, without angle brackets, first of each kind.
fn clean_envelope(envelope: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in envelope {
        let a = a
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        if !a.is_empty() && !in_list(&out, a) {
            out.push(a.to_string());
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    To,
    Cc,
    Bcc,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::To => "To",
            Field::Cc => "Cc",
            Field::Bcc => "Bcc",
        }
    }
}

struct Header {
    field: Field,
    /// The whole header, name to the end of its last line.
    whole: Range<usize>,
    /// The value, after the colon, to the end of its last line.
    value: Range<usize>,
}

fn address_headers(section: &[u8]) -> (Vec<Header>, usize) {
    let Some(message) = MessageParser::default().parse_headers(section) else {
        return (Vec::new(), section.len());
    };
    let mut out = Vec::new();
    let mut end = 0;
    for h in message.headers() {
        end = end.max(h.offset_end);
        let field = match h.name {
            HeaderName::To => Field::To,
            HeaderName::Cc => Field::Cc,
            HeaderName::Bcc => Field::Bcc,
            _ => continue,
        };
        out.push(Header {
            field,
            whole: h.offset_field..h.offset_end,
            value: h.offset_start..h.offset_end,
        });
    }
    (out, end)
}

fn dropped_note(address: &str, field: Field) -> String {
    let f = field.name();
    format!(
        "{address} is in the {f} header but not in this delivery's envelope: left out of the {f} Graph is given, so it does not get this copy"
    )
}

fn bcc_note(address: &str) -> String {
    format!(
        "{address} is in this delivery's envelope but not in the To or Cc header: given to Graph as Bcc, so it gets this copy without its address being shown"
    )
}

/// The header section for the MIME route: To/Cc restricted to the
/// envelope, the other envelope recipients as one Bcc, everything else
/// unchanged. `section` is the stored message's header section (the whole
/// message may be given: only the headers are read and returned).
pub fn restrict_headers(section: &[u8], envelope: &[String]) -> RestrictedHeaders {
    let envelope = clean_envelope(envelope);
    let (headers, end) = address_headers(section);
    let newline: &[u8] = if section.windows(2).any(|w| w == b"\r\n") {
        b"\r\n"
    } else {
        b"\n"
    };
    let mut notes = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    let mut bcc_at: Option<usize> = None;
    let mut after_last = None;
    for h in &headers {
        if h.field == Field::Bcc {
            bcc_at.get_or_insert(h.whole.start);
            for item in split_list(&section[h.value.clone()]) {
                if let Item::Mailbox(r) = item {
                    let r = h.value.start + r.start..h.value.start + r.end;
                    if let Some(rcpt) = parse_entry(&section[r]) {
                        if !in_list(&envelope, &rcpt.address) {
                            notes.push(dropped_note(&rcpt.address, Field::Bcc));
                        }
                    }
                }
            }
            edits.push((h.whole.clone(), Vec::new()));
            continue;
        }
        after_last = Some(h.whole.end);
        let value = &section[h.value.clone()];
        let mut kept: Vec<Cow<'_, [u8]>> = Vec::new();
        let mut group: Option<(&[u8], Vec<&[u8]>)> = None;
        let mut dropped = false;
        let mut any_address = false;
        for item in split_list(value) {
            match item {
                Item::GroupStart(r) => group = Some((trim_ws(&value[r]), Vec::new())),
                Item::GroupEnd => {
                    if let Some(g) = group.take() {
                        kept.push(Cow::Owned(group_bytes(g)));
                    }
                }
                Item::Mailbox(r) => {
                    let raw = trim_ws(&value[r]);
                    match parse_entry(raw) {
                        Some(rcpt) if in_list(&envelope, &rcpt.address) => {
                            any_address = true;
                            shown.push(rcpt.address);
                            match &mut group {
                                Some((_, members)) => members.push(raw),
                                None => kept.push(Cow::Borrowed(raw)),
                            }
                        }
                        Some(rcpt) => {
                            dropped = true;
                            notes.push(dropped_note(&rcpt.address, h.field));
                        }
                        None => match &mut group {
                            Some((_, members)) => members.push(raw),
                            None => kept.push(Cow::Borrowed(raw)),
                        },
                    }
                }
            }
        }
        if let Some(g) = group.take() {
            kept.push(Cow::Owned(group_bytes(g)));
        }
        if !dropped {
            continue;
        }
        if !any_address {
            edits.push((h.whole.clone(), Vec::new()));
            continue;
        }
        let mut out = section[h.whole.start..h.value.start].to_vec();
        let kept: Vec<&[u8]> = kept.iter().map(|k| k.as_ref()).collect();
        write_list(&mut out, &kept, newline);
        edits.push((h.whole.clone(), out));
    }
    let bcc: Vec<&String> = envelope.iter().filter(|a| !in_list(&shown, a)).collect();
    if !bcc.is_empty() {
        let mut out = b"Bcc:".to_vec();
        let entries: Vec<Vec<u8>> = bcc.iter().map(|a| format!("<{a}>").into_bytes()).collect();
        let entries: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        write_list(&mut out, &entries, newline);
        notes.extend(bcc.iter().map(|a| bcc_note(a)));
        let at = bcc_at.or(after_last).unwrap_or(end);
        edits.push((at..at, out));
    }
    // Splice from the end so earlier offsets stay valid; an insertion at
    // the start of a removed header goes before the removal.
    edits.sort_by_key(|(r, with)| (std::cmp::Reverse(r.start), r.is_empty() && !with.is_empty()));
    let mut out = section[..end].to_vec();
    for (range, with) in edits {
        out.splice(range, with);
    }
    out.extend_from_slice(&section[end..header_end(section, end)]);
    RestrictedHeaders {
        headers: out,
        notes,
    }
}

/// `name: a, b;` from a group's name (with its colon) and kept members.
fn group_bytes((name, members): (&[u8], Vec<&[u8]>)) -> Vec<u8> {
    let mut g = name.to_vec();
    if !members.is_empty() {
        g.push(b' ');
        g.extend_from_slice(&members.join(&b", "[..]));
    }
    g.push(b';');
    g
}

/// The end of the header section: past the blank line after `end`, if any.
fn header_end(section: &[u8], end: usize) -> usize {
    let rest = &section[end..];
    if rest.starts_with(b"\r\n") {
        end + 2
    } else if rest.starts_with(b"\n") {
        end + 1
    } else {
        end
    }
}

/// Writes ` a, b, …` and the newline, folding before an entry that would
/// take the line past 78 characters.
fn write_list(out: &mut Vec<u8>, entries: &[&[u8]], newline: &[u8]) {
    let mut line = out.len() - out.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    for (i, e) in entries.iter().enumerate() {
        let first_line = e.iter().position(|&b| b == b'\n').unwrap_or(e.len());
        if i > 0 {
            out.push(b',');
            line += 1;
        }
        if i > 0 && line + 1 + first_line > 78 {
            out.extend_from_slice(newline);
            line = 0;
        }
        out.push(b' ');
        out.extend_from_slice(e);
        line = match e.iter().rposition(|&b| b == b'\n') {
            Some(p) => e.len() - p - 1,
            None => line + 1 + e.len(),
        };
    }
    out.extend_from_slice(newline);
}

/// The draft route's recipients, by the same rules as [`restrict_headers`]:
/// To and Cc as in the headers but only the envelope's addresses (each
/// address once), the rest of the envelope as Bcc.
pub fn draft_recipients(section: &[u8], envelope: &[String]) -> DraftRecipients {
    let envelope = clean_envelope(envelope);
    let (headers, _) = address_headers(section);
    let mut out = DraftRecipients::default();
    let mut shown: Vec<String> = Vec::new();
    for h in &headers {
        for item in split_list(&section[h.value.clone()]) {
            let Item::Mailbox(r) = item else { continue };
            let r = h.value.start + r.start..h.value.start + r.end;
            let Some(rcpt) = parse_entry(&section[r]) else {
                continue;
            };
            if !in_list(&envelope, &rcpt.address) {
                out.notes.push(dropped_note(&rcpt.address, h.field));
            } else if h.field != Field::Bcc && !in_list(&shown, &rcpt.address) {
                shown.push(rcpt.address.clone());
                match h.field {
                    Field::To => out.to.push(rcpt),
                    _ => out.cc.push(rcpt),
                }
            }
        }
    }
    for a in envelope.iter().filter(|a| !in_list(&shown, a)) {
        out.notes.push(bcc_note(a));
        out.bcc.push(Recipient {
            address: a.clone(),
            name: None,
        });
    }
    out
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
