//! A redacted record of one upstream SMTP conversation.
//!
//! Shown to the admin when a delivery fails ("what did Microsoft say?") and
//! kept with the message's history. Each line is `<time> C: ...` (what
//! Postern sent), `<time> S: ...` (what the server replied) or
//! `<time> *  ...` (a note, e.g. "TLS established"). Credentials never reach
//! it: AUTH lines keep only the mechanism, and lines the caller marks
//! secret are replaced by a placeholder.

use std::time::{SystemTime, UNIX_EPOCH};

use super::reply::Reply;

/// Lines of one conversation, oldest first.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a line Postern sent. Any `AUTH` command is cut down to
    /// `AUTH <MECH> [redacted]`.
    pub fn client(&mut self, line: &str) {
        let line = line.trim_end_matches(['\r', '\n']);
        let recorded = if is_auth(line) {
            match line.split_whitespace().nth(1) {
                Some(mech) => format!("AUTH {} [redacted]", mech.to_ascii_uppercase()),
                None => "AUTH [redacted]".to_owned(),
            }
        } else {
            line.to_owned()
        };
        self.push("C:", &recorded);
    }

    /// Records that Postern sent something secret (e.g. a SASL response),
    /// without its content: `C: [redacted <what>]`.
    pub fn client_secret(&mut self, what: &str) {
        self.push("C:", &format!("[redacted {what}]"));
    }

    /// Records a server reply.
    pub fn server(&mut self, reply: &Reply) {
        self.push("S:", &reply.to_string());
    }

    /// Records raw server lines (e.g. a multi-line greeting), one each.
    pub fn server_raw(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            if !line.is_empty() {
                self.push("S:", line);
            }
        }
    }

    /// Records a note about the connection.
    pub fn note(&mut self, text: &str) {
        self.push("* ", text);
    }

    /// Appends lines recorded earlier (already redacted), e.g. the setup of
    /// a connection that is being reused.
    pub fn replay(&mut self, lines: &[String]) {
        self.lines.extend_from_slice(lines);
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// Hands the lines over, leaving the transcript empty.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }

    /// All lines, each ended by `\n`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn push(&mut self, tag: &str, text: &str) {
        // Control characters other than tab would let a hostile server
        // forge transcript lines; show them escaped.
        let text: String = text
            .chars()
            .flat_map(|c| {
                if c.is_control() && c != '\t' {
                    c.escape_default().collect::<Vec<_>>()
                } else {
                    vec![c]
                }
            })
            .collect();
        self.lines
            .push(format!("{} {tag} {text}", rfc3339_utc(SystemTime::now())));
    }
}

fn is_auth(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("AUTH "))
        || trimmed.eq_ignore_ascii_case("AUTH")
}

/// `2024-05-01T12:34:56Z` — std only, no calendar crate.
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn auth_lines_are_redacted() {
        let secret = "dXNlcj1hQGIuY29tAWF1dGg9QmVhcmVyIHNlY3JldHRva2VuAQE=";
        let mut t = Transcript::new();
        t.client(&format!("AUTH XOAUTH2 {secret}\r\n"));
        t.client(&format!("auth plain {secret}"));
        t.client("AUTH LOGIN");
        t.client_secret("password");
        t.server(&Reply::parse("235 2.7.0 Authentication successful"));
        let text = t.to_text();
        assert!(!text.contains(secret), "{text}");
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(text.contains("C: AUTH XOAUTH2 [redacted]"), "{text}");
        assert!(text.contains("C: AUTH PLAIN [redacted]"), "{text}");
        assert!(text.contains("C: AUTH LOGIN [redacted]"), "{text}");
        assert!(text.contains("C: [redacted password]"), "{text}");
        assert!(
            text.contains("S: 235 2.7.0 Authentication successful"),
            "{text}"
        );
    }

    #[test]
    fn other_lines_kept() {
        let mut t = Transcript::new();
        t.note("connected to smtp.office365.com:587");
        t.client("MAIL FROM:<a@b.c>\r\n");
        t.client("AUTHOR is not auth");
        assert_eq!(t.lines().len(), 3);
        assert!(t.lines()[0].ends_with("*  connected to smtp.office365.com:587"));
        assert!(t.lines()[1].ends_with("C: MAIL FROM:<a@b.c>"));
        assert!(t.lines()[2].ends_with("C: AUTHOR is not auth"));
        assert_eq!(t.take().len(), 3);
        assert!(t.lines().is_empty());
    }

    #[test]
    fn control_characters_escaped() {
        let mut t = Transcript::new();
        t.server_raw("220 hi\x1b[31m\r\n");
        assert!(
            t.lines()[0].ends_with("S: 220 hi\\u{1b}[31m"),
            "{:?}",
            t.lines()
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // leap year
        assert_eq!(rfc3339_utc(t), "2024-02-29T23:59:59Z");
    }
}
