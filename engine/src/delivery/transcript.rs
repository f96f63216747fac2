//! A redacted record of one upstream SMTP conversation.
//!
//! Shown to the admin when a delivery fails ("what did Microsoft say?") and
//! kept with the message's history. Each line is `<time> C: ...` (what
//! Postern sent), `<time> S: ...` (what the server replied) or
//! `<time> *  ...` (a note, e.g. "TLS established"). Credentials never reach
//! it: AUTH lines keep only the mechanism, and lines the caller marks
//! secret are replaced by a placeholder.

use std::time::SystemTime;

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
        self.lines.push(format!(
            "{} {tag} {text}",
            crate::clock::rfc3339(SystemTime::now())
        ));
    }
}

fn is_auth(line: &str) -> bool {
    let trimmed = line.trim_start();
    trimmed
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("AUTH "))
        || trimmed.eq_ignore_ascii_case("AUTH")
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
