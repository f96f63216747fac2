//! Device data on the admin's terminal. A device's HELO name, a message's
//! Subject and addresses, and upstream replies are written by others; the
//! CLI's text output shows their control characters escaped (`\x1b`,
//! `\u{202e}`), so an ESC sequence or a bidi override in a Subject can
//! neither drive the terminal nor disguise a line. JSON output needs none
//! of this: serde_json escapes control characters itself.

use std::borrow::Cow;

use serde_json::Value;

/// `s` with every control character (and the bidi controls) escaped;
/// newlines are kept where `keep_newlines` (a multi-line transcript).
pub fn clean(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let bad = |c: char| (c.is_control() && !(keep_newlines && c == '\n')) || is_bidi(c);
    if !s.chars().any(bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Every string in `v` cleaned (the `transcript` keeps its line breaks).
pub fn clean_value(v: &mut Value) {
    fn walk(v: &mut Value, keep_newlines: bool) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(c) = clean(s, keep_newlines) {
                    *s = c;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| walk(v, keep_newlines)),
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    walk(v, k == "transcript");
                }
            }
            _ => {}
        }
    }
    walk(v, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_drives_a_terminal() {
        for (input, keep, want) in [
            ("Scan 0042", false, "Scan 0042"),
            ("\x1b]0;owned\x07Scan", false, "\\x1b]0;owned\\x07Scan"),
            ("\x1b[2J\x1b[31mred", false, "\\x1b[2J\\x1b[31mred"),
            ("a\r\nFAKE LINE", false, "a\\x0d\\x0aFAKE LINE"),
            ("line 1\nline 2\x1b[A", true, "line 1\nline 2\\x1b[A"),
            ("invoice\u{202e}fdp.exe", false, "invoice\\u{202e}fdp.exe"),
            ("\u{9b}31m", false, "\\x9b31m"),
            ("Grüße", false, "Grüße"),
        ] {
            assert_eq!(clean(input, keep), want, "{input:?}");
        }
    }

    #[test]
    fn cleans_every_string_of_a_message() {
        let mut v = serde_json::json!({
            "subject": "\x1b[31mhi",
            "client": {"helo": "a\x1bb"},
            "to": ["x\x07@y"],
            "transcript": "C: EHLO\nS: 250 \x1b[0m",
        });
        clean_value(&mut v);
        assert_eq!(v["subject"], "\\x1b[31mhi");
        assert_eq!(v["client"]["helo"], "a\\x1bb");
        assert_eq!(v["to"][0], "x\\x07@y");
        assert_eq!(v["transcript"], "C: EHLO\nS: 250 \\x1b[0m");
    }
}
