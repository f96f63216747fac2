//! An SMTP reply from the upstream server, as plain data.
//!
//! Holds the three-digit code, the RFC 3463 enhanced status code when the
//! server sent one (Exchange Online always does), and the text. Code that
//! decides what to do looks at `code` and `enhanced`, never at `text`
//! (see [`crate::delivery::classify`]).

use std::fmt;

/// One SMTP reply, possibly assembled from several lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// The three-digit reply code; 0 when the server sent something that is
    /// not a reply at all.
    pub code: u16,
    /// The enhanced status code, e.g. `"5.7.60"`, when the first line has one.
    pub enhanced: Option<String>,
    /// The text after the codes; the lines of a multi-line reply joined
    /// with a single space.
    pub text: String,
}

impl Reply {
    /// Parses a reply as read from the wire: one line (`550 5.7.60 ...`) or
    /// several (`250-a\r\n250 b`). Never fails: garbage gives code 0 and
    /// the input as text, so it still shows up in transcripts.
    pub fn parse(line: &str) -> Reply {
        let mut code = None;
        let mut texts = Vec::new();
        for raw in line.split('\n') {
            let raw = raw.trim_end_matches('\r');
            if raw.is_empty() {
                continue;
            }
            match split_code(raw) {
                Some((c, rest)) => {
                    code.get_or_insert(c);
                    texts.push(rest);
                }
                None => texts.push(raw),
            }
        }
        match code {
            Some(code) => Reply::from_lines(code, texts),
            None => Reply {
                code: 0,
                enhanced: None,
                text: line.trim().to_owned(),
            },
        }
    }

    /// Builds a reply from a code and the text of each line (codes already
    /// removed). The enhanced code is taken from the first line and dropped
    /// from later lines that repeat it.
    pub(crate) fn from_lines<'a>(code: u16, lines: impl IntoIterator<Item = &'a str>) -> Reply {
        let mut enhanced: Option<String> = None;
        let mut parts: Vec<&str> = Vec::new();
        for (i, line) in lines.into_iter().enumerate() {
            let line = line.trim();
            if i == 0 {
                if let Some((enh, rest)) = split_enhanced(line, code) {
                    enhanced = Some(enh.to_owned());
                    push_nonempty(&mut parts, rest);
                    continue;
                }
            } else if let Some(enh) = enhanced.as_deref() {
                if let Some((e, rest)) = split_enhanced(line, code) {
                    if e == enh {
                        push_nonempty(&mut parts, rest);
                        continue;
                    }
                }
            }
            push_nonempty(&mut parts, line);
        }
        Reply {
            code,
            enhanced,
            text: parts.join(" "),
        }
    }

    /// A 4xx reply: the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// A 5xx reply: repeating the same request will fail the same way.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// A 2xx or 3xx reply.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// Converts a reply lettre has parsed.
    pub fn from_lettre(r: &lettre::transport::smtp::response::Response) -> Reply {
        Reply::from_lines(u16::from(r.code()), r.message())
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enh) = &self.enhanced {
            write!(f, " {enh}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

fn push_nonempty<'a>(parts: &mut Vec<&'a str>, s: &'a str) {
    let s = s.trim();
    if !s.is_empty() {
        parts.push(s);
    }
}

/// `"250-text"` / `"250 text"` / `"250"` -> (250, "text").
fn split_code(line: &str) -> Option<(u16, &str)> {
    let bytes = line.as_bytes();
    if bytes.len() < 3 || !bytes[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let code: u16 = line[..3].parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    match bytes.get(3) {
        None => Some((code, "")),
        Some(b' ') | Some(b'-') => Some((code, &line[4..])),
        Some(_) => None,
    }
}

/// `"5.7.60 text"` -> ("5.7.60", "text") when the class digit agrees with
/// the reply code (RFC 2034 §4) and each part has the allowed length.
fn split_enhanced(text: &str, code: u16) -> Option<(&str, &str)> {
    let (candidate, rest) = match text.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let mut parts = candidate.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    let class_ok = class.len() == 1 && class.as_bytes()[0] == b'0' + (code / 100) as u8;
    if class_ok && digits(subject, 3) && digits(detail, 3) {
        Some((candidate, rest.trim_start()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        // (input, code, enhanced, text)
        let rows: &[(&str, u16, Option<&str>, &str)] = &[
            ("250 2.1.0 Sender OK", 250, Some("2.1.0"), "Sender OK"),
            (
                "550 5.7.60 SMTP; Client does not have permissions to send as this sender",
                550,
                Some("5.7.60"),
                "SMTP; Client does not have permissions to send as this sender",
            ),
            (
                "354 Start mail input; end with <CRLF>.<CRLF>",
                354,
                None,
                "Start mail input; end with <CRLF>.<CRLF>",
            ),
            (
                "220 XX.outlook.office365.com Microsoft ESMTP MAIL Service ready\r\n",
                220,
                None,
                "XX.outlook.office365.com Microsoft ESMTP MAIL Service ready",
            ),
            (
                "250-XX Hello [1.2.3.4]\r\n250-SIZE 157286400\r\n250 SMTPUTF8\r\n",
                250,
                None,
                "XX Hello [1.2.3.4] SIZE 157286400 SMTPUTF8",
            ),
            (
                "451-4.7.500 Server busy.\r\n451 4.7.500 Please try again later\r\n",
                451,
                Some("4.7.500"),
                "Server busy. Please try again later",
            ),
            ("334 ", 334, None, ""),
            ("250", 250, None, ""),
            (
                "421 4.7.66 TLS 1.0 and 1.1 are not supported",
                421,
                Some("4.7.66"),
                "TLS 1.0 and 1.1 are not supported",
            ),
            // class digit disagrees with the reply code: not an enhanced code
            ("550 4.1.1 odd", 550, None, "4.1.1 odd"),
            ("550 5.1.1234 too long", 550, None, "5.1.1234 too long"),
            ("235 2.7.0", 235, Some("2.7.0"), ""),
            // hostile / garbage
            ("", 0, None, ""),
            ("hello", 0, None, "hello"),
            ("99 x", 0, None, "99 x"),
            ("700 5.0.0 x", 0, None, "700 5.0.0 x"),
            ("25a no", 0, None, "25a no"),
            ("550x5.1.1", 0, None, "550x5.1.1"),
            ("550 5..1 bad", 550, None, "5..1 bad"),
            ("550 ✉ ünïcode", 550, None, "✉ ünïcode"),
        ];
        for (input, code, enh, text) in rows {
            let r = Reply::parse(input);
            assert_eq!(r.code, *code, "{input:?}");
            assert_eq!(r.enhanced.as_deref(), *enh, "{input:?}");
            assert_eq!(r.text, *text, "{input:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let line = "550 5.7.60 SMTP; Client does not have permissions to send as this sender";
        assert_eq!(Reply::parse(line).to_string(), line);
        assert_eq!(Reply::parse("250").to_string(), "250");
    }

    #[test]
    fn predicates() {
        assert!(Reply::parse("451 4.7.0 x").is_transient());
        assert!(!Reply::parse("451 4.7.0 x").is_permanent());
        assert!(Reply::parse("550 5.1.10 x").is_permanent());
        assert!(Reply::parse("250 ok").is_positive());
    }

    #[test]
    fn from_lettre_response() {
        let r: lettre::transport::smtp::response::Response =
            "550-5.7.60 SMTP; Client does not have\r\n550 5.7.60 permissions\r\n"
                .parse()
                .unwrap();
        let reply = Reply::from_lettre(&r);
        assert_eq!(reply.code, 550);
        assert_eq!(reply.enhanced.as_deref(), Some("5.7.60"));
        assert_eq!(reply.text, "SMTP; Client does not have permissions");
    }
}
