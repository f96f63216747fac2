//! Sender rewriting: the fix for `550 5.7.60` when Send As cannot be granted.
//!
//! Exchange Online only lets a mailbox send as itself (or as senders it has
//! Send As on). A scanner that writes `From: scanner@contoso.com` through a
//! relay signed in as `relay@contoso.com` is refused. Rewriting puts the
//! signed-in mailbox in `From:` (keeping the display name, so the mail still
//! reads "HP Scanner") and keeps the original address reachable through
//! `Reply-To:`. Only header bytes are touched; the body goes out byte for
//! byte as it came in.
//!
//! Also here: the envelope sender for a device's null sender (`MAIL
//! FROM:<>`, which some devices use for notifications), see
//! [`envelope_sender`].

use std::ops::Range;

use base64::Engine as _;
use mail_parser::{HeaderName, MessageParser};

/// Returns the content with the From header replaced by `mailbox` (keeping
/// the original display name: `"HP Scanner" <scanner@contoso.com>` becomes
/// `"HP Scanner" <mailbox>`), and the original From added as Reply-To unless
/// a Reply-To header already exists. A Sender header, if present, is
/// removed. If there is no From header, one is added.
pub fn rewrite_sender(content: &[u8], mailbox: &str) -> Vec<u8> {
    let Some(message) = MessageParser::default().parse_headers(content) else {
        // Not even headers could be read: add a From and leave the rest.
        return prepend_from(content, mailbox);
    };

    let mut from: Option<Range<usize>> = None;
    let mut from_value: Option<Range<usize>> = None;
    let mut senders: Vec<Range<usize>> = Vec::new();
    let mut has_reply_to = false;
    for h in message.headers() {
        match h.name {
            HeaderName::From if from.is_none() => {
                from = Some(h.offset_field..h.offset_end);
                from_value = Some(h.offset_start..h.offset_end);
            }
            HeaderName::Sender => senders.push(h.offset_field..h.offset_end),
            HeaderName::ReplyTo => has_reply_to = true,
            _ => {}
        }
    }
    let display_name = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.name.as_deref())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    drop(message);

    let (Some(from), Some(from_value)) = (from, from_value) else {
        let mut out = prepend_from(content, mailbox);
        // Remove Sender headers, shifted by the prepended line.
        let shift = out.len() - content.len();
        for r in senders.iter().rev() {
            out.drain(r.start + shift..r.end + shift);
        }
        return out;
    };

    let mut new_from = format!(
        "From: {}\r\n",
        format_mailbox(display_name.as_deref(), mailbox)
    )
    .into_bytes();
    if !has_reply_to {
        new_from.extend_from_slice(b"Reply-To:");
        let original = &content[from_value];
        new_from.extend_from_slice(original);
        if !original.ends_with(b"\n") {
            new_from.extend_from_slice(b"\r\n");
        }
    }

    // Splice from the end so earlier offsets stay valid.
    let mut edits: Vec<(Range<usize>, Vec<u8>)> =
        senders.into_iter().map(|r| (r, Vec::new())).collect();
    edits.push((from, new_from));
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = content.to_vec();
    for (range, with) in edits {
        out.splice(range, with);
    }
    out
}

/// The envelope sender to use upstream for a message the device sent with
/// `mail_from` (already rewritten to the mailbox when sender rewriting is
/// on).
///
/// The null sender `<>` is kept for connector relay and Direct Send: the
/// tenant's MX accepts it (RFC 5321 §4.5.5) and it still means "send no
/// bounce". Client submission authenticates as the mailbox and Exchange
/// Online lets a mailbox send only as itself (or senders it has Send As
/// on), so there the mailbox becomes the envelope sender: Microsoft gets a
/// sender it can attribute, and any bounce goes to the mailbox Postern
/// sends as, which is who answers for the device's mail anyway. The From
/// header is not touched.
pub fn envelope_sender(mail_from: &str, submission: bool, mailbox: &str) -> String {
    let null = mail_from
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .is_empty();
    if null && submission && !mailbox.is_empty() {
        mailbox.to_string()
    } else {
        mail_from.to_string()
    }
}

fn prepend_from(content: &[u8], mailbox: &str) -> Vec<u8> {
    let mut out = format!("From: {}\r\n", format_mailbox(None, mailbox)).into_bytes();
    out.extend_from_slice(content);
    out
}

/// `"Name" <addr>`, RFC 2047-encoding names that are not plain ASCII.
fn format_mailbox(name: Option<&str>, mailbox: &str) -> String {
    let mailbox = mailbox.trim().trim_start_matches('<').trim_end_matches('>');
    match name {
        None => format!("<{mailbox}>"),
        Some(name) if name.is_ascii() && !name.chars().any(|c| c.is_ascii_control()) => {
            let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\" <{mailbox}>")
        }
        Some(name) => {
            let clean: String = name.chars().filter(|c| !c.is_control()).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(clean.as_bytes());
            format!("=?utf-8?b?{b64}?= <{mailbox}>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"Hello,\r\n\r\nFrom: not a header\r\n.\r\nbinary \xff\xfe end\r\n";

    fn msg(headers: &str) -> Vec<u8> {
        let mut m = headers.as_bytes().to_vec();
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(BODY);
        m
    }

    fn split(out: &[u8]) -> (String, &[u8]) {
        let i = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        (String::from_utf8(out[..i].to_vec()).unwrap(), &out[i..])
    }

    #[test]
    fn table() {
        let mb = "relay@contoso.com";
        // (input headers, expected headers)
        let rows: &[(&str, &str)] = &[
            (
                "From: \"HP Scanner\" <scanner@contoso.com>\r\nTo: a@b.c\r\nSubject: Scan\r\n",
                "From: \"HP Scanner\" <relay@contoso.com>\r\nReply-To: \"HP Scanner\" <scanner@contoso.com>\r\nTo: a@b.c\r\nSubject: Scan\r\n",
            ),
            (
                "Subject: x\r\nFrom: scanner@contoso.com\r\nTo: a@b.c\r\n",
                "Subject: x\r\nFrom: <relay@contoso.com>\r\nReply-To: scanner@contoso.com\r\nTo: a@b.c\r\n",
            ),
            // folded From
            (
                "From: HP Scanner\r\n\t<scanner@contoso.com>\r\nTo: a@b.c\r\n",
                "From: \"HP Scanner\" <relay@contoso.com>\r\nReply-To: HP Scanner\r\n\t<scanner@contoso.com>\r\nTo: a@b.c\r\n",
            ),
            // existing Reply-To is kept, no second one
            (
                "From: Scanner <scanner@contoso.com>\r\nReply-To: it@contoso.com\r\n",
                "From: \"Scanner\" <relay@contoso.com>\r\nReply-To: it@contoso.com\r\n",
            ),
            // no From at all
            (
                "To: a@b.c\r\nSubject: x\r\n",
                "From: <relay@contoso.com>\r\nTo: a@b.c\r\nSubject: x\r\n",
            ),
            // display name with quotes and backslash
            (
                "From: \"Copier \\\"3rd floor\\\"\" <copier@contoso.com>\r\n",
                "From: \"Copier \\\"3rd floor\\\"\" <relay@contoso.com>\r\nReply-To: \"Copier \\\"3rd floor\\\"\" <copier@contoso.com>\r\n",
            ),
            // Sender removed (folded too)
            (
                "Sender: x@contoso.com\r\nFrom: a@contoso.com\r\nSender: y\r\n  @contoso.com\r\nTo: t@b.c\r\n",
                "From: <relay@contoso.com>\r\nReply-To: a@contoso.com\r\nTo: t@b.c\r\n",
            ),
            // non-ASCII display name
            (
                "From: =?utf-8?q?B=C3=BCro?= <buero@contoso.com>\r\n",
                "From: =?utf-8?b?QsO8cm8=?= <relay@contoso.com>\r\nReply-To: =?utf-8?q?B=C3=BCro?= <buero@contoso.com>\r\n",
            ),
            // lower-case header name
            (
                "from: <a@contoso.com>\r\n",
                "From: <relay@contoso.com>\r\nReply-To: <a@contoso.com>\r\n",
            ),
        ];
        for (input, expected) in rows {
            let out = rewrite_sender(&msg(input), mb);
            let (headers, body) = split(&out);
            assert_eq!(headers, format!("{expected}\r\n"), "input: {input:?}");
            assert_eq!(body, BODY, "body changed for {input:?}");
        }
    }

    #[test]
    fn null_sender_becomes_the_mailbox_only_for_submission() {
        let mb = "relay@contoso.com";
        for (from, submission, want) in [
            ("", true, mb),
            ("<>", true, mb),
            ("", false, ""),
            ("hp@contoso.com", true, "hp@contoso.com"),
            ("hp@contoso.com", false, "hp@contoso.com"),
        ] {
            assert_eq!(
                envelope_sender(from, submission, mb),
                want,
                "{from:?} {submission}"
            );
        }
        assert_eq!(envelope_sender("", true, ""), "", "no mailbox configured");
    }

    #[test]
    fn no_headers_at_all() {
        let out = rewrite_sender(b"", "relay@contoso.com");
        assert!(out.starts_with(b"From: <relay@contoso.com>\r\n"));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for input in [
            &b"From:"[..],
            b"From: \"unterminated <a@b>\r\n\r\n",
            b"\r\n\r\nbody only",
            b"From: a@b\r\nSender:",
            b"\xff\xfe\x00From: x\r\n\r\n",
        ] {
            let _ = rewrite_sender(input, "relay@contoso.com");
        }
    }
}
