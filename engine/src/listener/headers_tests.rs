//! Table tests for the header filter: adding Date and Message-ID, folding
//! long header lines, every split position, and hostile input.

use std::time::{Duration, UNIX_EPOCH};

use super::*;

const DATE: &str = "Thu, 1 Jan 1970 00:00:00 +0000";
const MSGID: &str = "<q1.0@relay.test>";
const ADDED: &str = "Date: Thu, 1 Jan 1970 00:00:00 +0000\r\nMessage-ID: <q1.0@relay.test>\r\n";

fn stamp() -> Stamp {
    Stamp {
        date: DATE.into(),
        message_id: MSGID.into(),
    }
}

fn filter(input: &[u8]) -> (Vec<u8>, HeaderFilter) {
    let mut f = HeaderFilter::new(stamp());
    let mut out = Vec::new();
    f.push(input, &mut out);
    f.finish(&mut out);
    (out, f)
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[test]
fn adds_what_is_missing_at_the_end_of_the_headers() {
    let table: &[(&str, String)] = &[
        (
            "Subject: x\r\n\r\nbody\r\n",
            format!("Subject: x\r\n{ADDED}\r\nbody\r\n"),
        ),
        (
            "Subject: x\r\nDate: Mon, 2 Sep 2024 10:00:00 +0200\r\n\r\nb\r\n",
            format!("Subject: x\r\nDate: Mon, 2 Sep 2024 10:00:00 +0200\r\nMessage-ID: {MSGID}\r\n\r\nb\r\n"),
        ),
        (
            "message-id: <a@b>\r\nDATE: whatever\r\n\r\n",
            "message-id: <a@b>\r\nDATE: whatever\r\n\r\n".into(),
        ),
        // Folded headers, obsolete "Name :" form.
        (
            "Subject: a\r\n b\r\nMessage-ID\t: <a@b>\r\n\r\nx\r\n",
            format!("Subject: a\r\n b\r\nMessage-ID\t: <a@b>\r\nDate: {DATE}\r\n\r\nx\r\n"),
        ),
        // "Date" only in the body does not count.
        (
            "Subject: x\r\n\r\nDate: in the body\r\nMessage-ID: <b@c>\r\n",
            format!("Subject: x\r\n{ADDED}\r\nDate: in the body\r\nMessage-ID: <b@c>\r\n"),
        ),
        // A header whose name merely starts with "Date".
        (
            "Dated: x\r\nX-Message-ID: y\r\n\r\n",
            format!("Dated: x\r\nX-Message-ID: y\r\n{ADDED}\r\n"),
        ),
        // No body, no empty line.
        ("Subject: x\r\n", format!("Subject: x\r\n{ADDED}")),
        // Nothing at all.
        ("", ADDED.to_string()),
        // No header section: the text stays body.
        ("hello\r\nworld\r\n", format!("{ADDED}\r\nhello\r\nworld\r\n")),
        (" indented\r\n", format!("{ADDED}\r\n indented\r\n")),
        // A non-header line ends the headers; an empty line is added.
        (
            "Subject: x\r\nnot a header\r\nTo: y\r\n",
            format!("Subject: x\r\n{ADDED}\r\nnot a header\r\nTo: y\r\n"),
        ),
        // ... but not when nothing was added.
        (
            "Date: d\r\nMessage-ID: <m@x>\r\nnot a header\r\n",
            "Date: d\r\nMessage-ID: <m@x>\r\nnot a header\r\n".into(),
        ),
        // Empty body after the empty line.
        ("Subject: x\r\n\r\n", format!("Subject: x\r\n{ADDED}\r\n")),
    ];
    for (input, want) in table {
        let (out, f) = filter(input.as_bytes());
        assert_eq!(text(&out), *want, "input {input:?}");
        assert_eq!(f.long_line(), None);
    }
}

#[test]
fn reports_which_headers_were_added() {
    let (_, f) = filter(b"Subject: x\r\n\r\n");
    assert_eq!(f.added(), ["Date", "Message-ID"]);
    let (_, f) = filter(b"Date: x\r\n\r\n");
    assert_eq!(f.added(), ["Message-ID"]);
    let (_, f) = filter(b"Date: x\r\nMessage-Id: <a@b>\r\n\r\n");
    assert!(f.added().is_empty());
}

/// Unfolds as RFC 5322 §2.2.3 says: CRLF followed by WSP is removed.
fn unfold(s: &str) -> String {
    s.replace("\r\n ", " ").replace("\r\n\t", "\t")
}

fn max_line(s: &str) -> usize {
    s.split("\r\n").map(str::len).max().unwrap_or(0)
}

#[test]
fn long_header_lines_are_folded_losslessly() {
    let words: Vec<String> = (0..700).map(|i| format!("scan{i:04}.pdf")).collect();
    let subject = format!("Subject: {}", words.join(" "));
    assert!(subject.len() > 5000);
    let tabbed = format!("X-Files: {}", words.join("\t"));
    let input = format!("{subject}\r\n{tabbed}\r\nDate: d\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n");
    let (out, f) = filter(input.as_bytes());
    let out = text(&out);
    assert_eq!(f.long_line(), None);
    assert!(f.folds() >= 2 * (5000 / MAX_TEXT_LINE), "{}", f.folds());
    assert!(max_line(&out) <= MAX_TEXT_LINE, "{}", max_line(&out));
    assert_eq!(unfold(&out), input, "folding must be undone by unfolding");
    assert!(out.ends_with("\r\n\r\nbody\r\n"));

    // A 20,000-character header that the device folded itself.
    let folded = format!("Subject: {}", words.join("\r\n "));
    let input = format!("{folded}\r\nDate: d\r\nMessage-ID: <a@b>\r\n\r\n");
    let (out, f) = filter(input.as_bytes());
    assert_eq!((text(&out), f.folds()), (input.clone(), 0));
}

#[test]
fn lines_of_exactly_the_limit_are_untouched() {
    let name = "Subject: ";
    let line = format!("{name}{}", "a ".repeat((MAX_TEXT_LINE - name.len()) / 2));
    let line = format!("{line}{}", "b".repeat(MAX_TEXT_LINE - line.len()));
    assert_eq!(line.len(), MAX_TEXT_LINE);
    let input = format!(
        "{line}\r\nDate: d\r\nMessage-ID: <a@b>\r\n\r\n{}\r\n",
        "c".repeat(MAX_TEXT_LINE)
    );
    let (out, f) = filter(input.as_bytes());
    assert_eq!((text(&out), f.folds(), f.long_line()), (input, 0, None));
}

#[test]
fn unfoldable_and_body_lines_are_reported() {
    // (input, first long line)
    let token = "A".repeat(MAX_TEXT_LINE + 1);
    let table: Vec<(String, LongLine)> = vec![
        (
            format!("Subject: x\r\nX-Token: {token}\r\n\r\n"),
            LongLine {
                line: 2,
                header: true,
            },
        ),
        (
            // The only space is inside the name part: nowhere to fold.
            format!("Subject: x\r\nX-Token:{token}\r\n\r\n"),
            LongLine {
                line: 2,
                header: true,
            },
        ),
        (
            format!("Subject: x\r\n\r\nok\r\n{token}\r\n"),
            LongLine {
                line: 4,
                header: false,
            },
        ),
        (
            format!("{token}\r\n"),
            LongLine {
                line: 1,
                header: false,
            },
        ),
        (
            format!("Subject: {token} fold-here-is-too-late\r\n\r\n"),
            LongLine {
                line: 1,
                header: true,
            },
        ),
    ];
    for (input, want) in table {
        let (_, f) = filter(input.as_bytes());
        assert_eq!(f.long_line(), Some(want), "input {input:.40?}");
    }
}

#[test]
fn every_split_position_gives_the_same_result() {
    let long = format!("Subject: {}", "word ".repeat(400));
    let input = format!("{long}\r\n cont\r\nX: y\r\n\r\nbody line\r\n.\r\nend\r\n");
    let (want, _) = filter(input.as_bytes());
    for split in 0..=input.len() {
        let mut f = HeaderFilter::new(stamp());
        let mut out = Vec::new();
        f.push(&input.as_bytes()[..split], &mut out);
        f.push(&input.as_bytes()[split..], &mut out);
        f.finish(&mut out);
        assert_eq!(text(&out), text(&want), "split {split}");
    }
}

#[test]
fn hostile_input_never_panics_and_keeps_the_body() {
    let alphabet = [b'\r', b'\n', b' ', b':', b'a', 0xff, b'\t', b'D'];
    for input in crate::listener::tests::random_inputs(0x1234_5678_9abc_def1, &alphabet, 60, 3000) {
        let (out, f) = filter(&input);
        // Whatever was added, nothing of the input is lost (CR LF pairs
        // aside, which may be normalised at line ends).
        let strip = |v: &[u8]| -> Vec<u8> {
            v.iter()
                .copied()
                .filter(|b| !matches!(b, b'\r' | b'\n'))
                .collect()
        };
        let added: usize = f.added().len();
        let mut kept = strip(&out);
        if added > 0 {
            let stamp = strip(ADDED.as_bytes());
            let date = strip(format!("Date: {DATE}\r\n").as_bytes());
            let id = strip(format!("Message-ID: {MSGID}\r\n").as_bytes());
            for piece in [stamp, date, id] {
                if let Some(i) = kept.windows(piece.len()).position(|w| w == piece) {
                    kept.drain(i..i + piece.len());
                }
            }
        }
        assert_eq!(kept, strip(&input), "input {input:?}");
    }
}

#[test]
fn stamp_dates_are_rfc5322() {
    assert_eq!(Stamp::at(UNIX_EPOCH, "q", "h").date, DATE);
    let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // leap day
    assert_eq!(
        Stamp::at(t, "q", "h").date,
        "Thu, 29 Feb 2024 23:59:59 +0000"
    );
}

#[test]
fn message_ids_are_unique_and_well_formed() {
    let a = Stamp::at(UNIX_EPOCH, "20241001-abc", "scan host.example");
    let b = Stamp::at(UNIX_EPOCH, "20241001-abc", "scan host.example");
    assert_ne!(a.message_id, b.message_id);
    assert!(
        a.message_id.starts_with("<20241001-abc."),
        "{}",
        a.message_id
    );
    assert!(
        a.message_id.ends_with("@scanhost.example>"),
        "{}",
        a.message_id
    );
    let c = Stamp::at(UNIX_EPOCH, "q", "...");
    assert!(c.message_id.ends_with("@localhost>"), "{}", c.message_id);
}
