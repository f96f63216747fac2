//! What a message-trace row means for one recipient: the trace's status
//! word → an [`Outcome`], and a bounce's reason (the `Fail` event's
//! description) → its status code, explained through the same table as
//! SMTP replies (`delivery::classify`).

use crate::delivery::classify::{classify, Stage};
use crate::delivery::Reply;
use crate::spool::{Outcome, Trace};

/// The outcome a trace status word stands for; `None` for `failed` (a
/// bounce: its reason comes from the details) and words not known.
pub fn outcome_of(status: &str) -> Option<Outcome> {
    Some(match status.to_ascii_lowercase().as_str() {
        "delivered" | "expanded" => Outcome::Delivered,
        "quarantined" => Outcome::Quarantined,
        "filteredasspam" => Outcome::Spam,
        "pending" | "gettingstatus" | "none" => Outcome::Pending,
        _ => return None,
    })
}

/// The trace's result for a status other than `failed`, as kept on the
/// recipient.
pub fn settled(status: &str, outcome: Outcome, now: u64) -> Trace {
    let (summary, fix) = match (outcome, status.eq_ignore_ascii_case("expanded")) {
        (Outcome::Delivered, true) => (
            Some("A distribution group: Microsoft expanded it and delivered to its members."),
            None,
        ),
        (Outcome::Quarantined, _) => (
            Some("Microsoft 365 put the message in quarantine: the recipient has not received it."),
            Some("An admin can review and release it in the Microsoft Defender portal (Email & collaboration → Review → Quarantine); if scans are quarantined often, add the scanner's sender to an allow rule."),
        ),
        (Outcome::Spam, _) => (
            Some("Delivered, but to the recipient's Junk Email folder: it was filtered as spam."),
            Some("Ask the recipient to look in Junk Email and mark it \"Not junk\"; an admin can allow the sender in the anti-spam policy."),
        ),
        _ => (None, None),
    };
    Trace {
        outcome,
        status: Some(status.to_string()),
        code: None,
        diagnostic: None,
        summary: summary.map(str::to_string),
        fix: fix.map(str::to_string),
        checked_at: now,
    }
}

/// A bounce, from the `Fail` event's description (`None`: the details
/// were not available; the outcome is still a bounce).
pub fn bounced(description: Option<&str>, now: u64) -> Trace {
    let code = description.and_then(status_code);
    let (summary, fix) = match &code {
        Some(code) => {
            let reply = Reply::parse(&format!(
                "{} {code} {}",
                if code.starts_with('4') { 450 } else { 550 },
                description.unwrap_or_default()
            ));
            let v = classify(Stage::RcptTo, &reply);
            (v.summary.to_string(), v.fix.to_string())
        }
        None => (
            "The recipient's side refused the message after Microsoft 365 took it.".to_string(),
            String::new(),
        ),
    };
    Trace {
        outcome: Outcome::Bounced,
        status: Some("failed".into()),
        code,
        diagnostic: description.map(|d| d.trim().to_string()),
        summary: Some(summary),
        fix: (!fix.is_empty()).then_some(fix),
        checked_at: now,
    }
}

/// The first enhanced status code (`5.1.10`, `4.4.7`) in a text.
pub fn status_code(text: &str) -> Option<String> {
    let b = text.as_bytes();
    for start in 0..b.len() {
        if !matches!(b[start], b'2' | b'4' | b'5') {
            continue;
        }
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'.') {
            continue;
        }
        let mut i = start + 1;
        let mut parts = 1;
        while parts < 3 && i < b.len() && b[i] == b'.' {
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 3 {
                break;
            }
            i += 1 + digits;
            parts += 1;
        }
        let ends_clean = i == b.len() || !(b[i].is_ascii_alphanumeric() || b[i] == b'.');
        if parts == 3 && ends_clean {
            return Some(text[start..i].to_string());
        }
    }
    None
}

/// A Message-ID as compared: no angle brackets, no surrounding space,
/// lower case (the trace and the message may differ in case).
pub fn normalize_message_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_in_exchange_reasons() {
        let led = "Reason: [{LED=550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup};{MSG=};{FQDN=};{IP=};{LRT=}]. OriginalClientIP [10.1.2.3]";
        assert_eq!(status_code(led).as_deref(), Some("5.1.10"));
        assert_eq!(
            status_code("550 5.7.520 Access denied").as_deref(),
            Some("5.7.520")
        );
        assert_eq!(status_code("IP 10.1.2.3 at 2026.12.01"), None);
        assert_eq!(status_code("version 15.20.4.2"), None);
        assert_eq!(status_code("no code here"), None);
    }

    #[test]
    fn a_bounce_is_explained_through_the_reply_table() {
        let t = bounced(
            Some("550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found"),
            7,
        );
        assert_eq!(t.outcome, Outcome::Bounced);
        assert_eq!(t.code.as_deref(), Some("5.1.10"));
        assert!(t.summary.unwrap().contains("does not know this recipient"));
        assert!(t.fix.unwrap().contains("typos"));
        let t = bounced(None, 7);
        assert_eq!(t.code, None);
        assert!(t.summary.unwrap().contains("refused"));
    }

    #[test]
    fn trace_words_map_to_outcomes() {
        assert_eq!(outcome_of("Delivered"), Some(Outcome::Delivered));
        assert_eq!(outcome_of("expanded"), Some(Outcome::Delivered));
        assert_eq!(outcome_of("filteredAsSpam"), Some(Outcome::Spam));
        assert_eq!(outcome_of("quarantined"), Some(Outcome::Quarantined));
        assert_eq!(outcome_of("gettingStatus"), Some(Outcome::Pending));
        assert_eq!(outcome_of("failed"), None);
        assert_eq!(outcome_of("somethingNew"), None);
        assert_eq!(normalize_message_id(" <AbC@Host> "), "abc@host");
    }
}
