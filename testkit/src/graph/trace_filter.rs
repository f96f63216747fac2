//! The message trace's `$filter`: a tokenizer (words, quoted strings with
//! `''`, parentheses) and the few forms the fake understands (the grammar is
//! in `trace_routes`), giving the `eq` clauses to match and the
//! `receivedDateTime` window, checked against [`MAX_TRACE_WINDOW`].

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::trace::{TraceRow, MAX_TRACE_WINDOW};

/// A field `eq` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Sender,
    Recipient,
    MessageId,
    Status,
}

/// A parsed `$filter`: `eq` clauses (each a set of values, any of which
/// matches) and the `receivedDateTime` window.
#[derive(Debug)]
pub(super) struct Filter {
    any_of: Vec<(Field, Vec<String>)>,
    since: OffsetDateTime,
    until: Option<OffsetDateTime>,
}

/// Why a `$filter` was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FilterError {
    Invalid,
    Window,
}

fn strip_brackets(m: &str) -> &str {
    m.trim().trim_start_matches('<').trim_end_matches('>')
}

impl Filter {
    /// Whether row `t`, received at `at` and showing `status`, matches.
    pub(super) fn matches(&self, at: OffsetDateTime, t: &TraceRow, status: &str) -> bool {
        let eq = |field: Field, want: &str| match field {
            Field::Sender => t.sender.eq_ignore_ascii_case(want),
            Field::Recipient => t.recipient.eq_ignore_ascii_case(want),
            Field::MessageId => strip_brackets(&t.message_id) == strip_brackets(want),
            Field::Status => status.eq_ignore_ascii_case(want),
        };
        at >= self.since
            && self.until.is_none_or(|u| at <= u)
            && self
                .any_of
                .iter()
                .all(|(field, values)| values.iter().any(|v| eq(*field, v)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Quoted(String),
    Word(String),
}

fn tokens(s: &str) -> Result<Vec<Token>, FilterError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                out.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(FilterError::Invalid),
                        // OData doubles a quote inside a string.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                    }
                }
                out.push(Token::Quoted(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '\'') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

fn keyword(t: Option<&Token>, word: &str) -> bool {
    matches!(t, Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

/// One clause: `field op value`.
enum Clause {
    Eq(Field, String),
    Since(OffsetDateTime),
    Until(OffsetDateTime),
}

fn clause(t: &[Token]) -> Result<Clause, FilterError> {
    let [Token::Word(field), Token::Word(op), value] = t else {
        return Err(FilterError::Invalid);
    };
    let op = op.to_ascii_lowercase();
    let eq_field = match field.as_str() {
        "senderAddress" => Some(Field::Sender),
        "recipientAddress" => Some(Field::Recipient),
        "messageId" => Some(Field::MessageId),
        "status" => Some(Field::Status),
        "receivedDateTime" => None,
        _ => return Err(FilterError::Invalid),
    };
    match (eq_field, op.as_str(), value) {
        (Some(f), "eq", Token::Quoted(v)) => Ok(Clause::Eq(f, v.clone())),
        (None, "ge" | "le", Token::Quoted(v) | Token::Word(v)) => {
            let at = OffsetDateTime::parse(v, &Rfc3339).map_err(|_| FilterError::Invalid)?;
            Ok(if op == "ge" {
                Clause::Since(at)
            } else {
                Clause::Until(at)
            })
        }
        _ => Err(FilterError::Invalid),
    }
}

/// Parses a `$filter` (see `trace_routes` for the grammar). `now` closes a
/// window without `le`.
pub(super) fn parse_filter(s: &str, now: OffsetDateTime) -> Result<Filter, FilterError> {
    let toks = tokens(s)?;
    let mut terms: Vec<&[Token]> = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::Open => depth += 1,
            Token::Close => depth = depth.checked_sub(1).ok_or(FilterError::Invalid)?,
            _ if depth == 0 && keyword(Some(t), "and") => {
                terms.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(FilterError::Invalid);
    }
    terms.push(&toks[start..]);
    let mut any_of = Vec::new();
    let (mut since, mut until): (Option<OffsetDateTime>, Option<OffsetDateTime>) = (None, None);
    for term in terms {
        let grouped =
            matches!(term.first(), Some(Token::Open)) && matches!(term.last(), Some(Token::Close));
        if grouped {
            // `(f eq 'a' or f eq 'b')`: one field, any of the values.
            let inner = &term[1..term.len() - 1];
            let mut field = None;
            let mut values = Vec::new();
            for part in inner.split(|t| keyword(Some(t), "or")) {
                match clause(part)? {
                    Clause::Eq(f, v) if field.is_none_or(|g| g == f) => {
                        field = Some(f);
                        values.push(v);
                    }
                    _ => return Err(FilterError::Invalid),
                }
            }
            any_of.push((field.ok_or(FilterError::Invalid)?, values));
            continue;
        }
        match clause(term)? {
            Clause::Eq(f, v) => any_of.push((f, vec![v])),
            Clause::Since(t) => since = Some(since.map_or(t, |s| s.max(t))),
            Clause::Until(t) => until = Some(until.map_or(t, |u| u.min(t))),
        }
    }
    let since = since.ok_or(FilterError::Window)?;
    if until.unwrap_or(now) - since > MAX_TRACE_WINDOW {
        return Err(FilterError::Window);
    }
    Ok(Filter {
        any_of,
        since,
        until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn filter_grammar() {
        let now = at("2026-12-05T00:00:00Z");
        let ok = |s: &str| parse_filter(s, now).map(|f| (f.any_of.len(), f.since, f.until));
        assert_eq!(
            ok("senderAddress eq 'a@x' AND receivedDateTime ge 2026-12-01T10:00:00Z"),
            Ok((1, at("2026-12-01T10:00:00Z"), None))
        );
        assert_eq!(
            ok("(recipientAddress eq 'a@x' or recipientAddress eq 'it''s@x') and receivedDateTime ge '2026-12-01T10:00:00Z' and receivedDateTime le 2026-12-02T00:00:00+01:00"),
            Ok((1, at("2026-12-01T10:00:00Z"), Some(at("2026-12-01T23:00:00Z"))))
        );
        let bad = |s: &str| parse_filter(s, now).err();
        let invalid = Some(FilterError::Invalid);
        assert_eq!(
            bad("subject eq 'x' and receivedDateTime ge 2026-12-01T10:00:00Z"),
            invalid
        );
        assert_eq!(
            bad("(senderAddress eq 'a' or recipientAddress eq 'b')"),
            invalid
        );
        assert_eq!(bad("senderAddress eq 'a' or senderAddress eq 'b'"), invalid);
        assert_eq!(bad("senderAddress eq a"), invalid);
        assert_eq!(bad("receivedDateTime ge yesterday"), invalid);
        assert_eq!(bad("status eq 'delivered"), invalid);
        assert_eq!(bad("(status eq 'failed'"), invalid);
        assert_eq!(bad("senderAddress eq 'a'"), Some(FilterError::Window));
        assert_eq!(
            bad("receivedDateTime ge 2026-11-20T00:00:00Z"),
            Some(FilterError::Window)
        );
        assert_eq!(
            bad("receivedDateTime ge 2026-11-01T00:00:00Z and receivedDateTime le 2026-11-11T00:00:01Z"),
            Some(FilterError::Window)
        );
    }
}
