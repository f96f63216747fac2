//! What an upstream reply means for a queued message.
//!
//! [`classify`] turns a reply (and the stage of the conversation it came
//! at) into an [`Action`] for the delivery worker plus two plain sentences
//! for an office IT admin: what happened, and what to do about it. The
//! replies, what they mean and what the admin does about each are written
//! out in `docs/exchange-online.md` §3, a table a test here checks row by
//! row against [`classify`]; anything unknown falls back to the reply
//! class and stage.
//!
//! Decisions are made on the reply code and the enhanced status code. Three
//! codes are overloaded by Microsoft (`5.2.0`, `4.3.2`, `5.7.139`); for
//! those, and only those, a short keyword in the text picks the meaning.

use super::reply::Reply;

/// What the delivery worker does with the message after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Transient: retry this message later with backoff (4xx, network).
    Retry,
    /// Permanent for this message: it fails, with explanation.
    FailMessage,
    /// Permanent for this one recipient only (RCPT-stage 5xx).
    FailRecipient,
    /// The admin must fix something (tenant, mailbox, connector, auth
    /// policy): hold the whole queue, do not bounce.
    Hold,
    /// `535 5.7.3`: refresh the OAuth token once and retry; if it happens
    /// again the caller turns it into `Hold` (sign-in needed).
    RefreshAuth,
    /// `554 5.2.0 SubmissionQuotaExceeded`: the day budget is spent; defer,
    /// not a bounce.
    DeferQuota,
    /// `432 4.3.2`: too many concurrent connections; retry with fewer.
    ReduceConnections,
}

/// A decision with its explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub action: Action,
    /// One plain sentence: what happened.
    pub summary: &'static str,
    /// One plain sentence: what the admin does about it; `""` when nothing.
    pub fix: &'static str,
}

/// Where in the SMTP conversation a reply (or failure) came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    Connect,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    MailFrom,
    RcptTo,
    Data,
    DataEnd,
}

impl Stage {
    /// Stages that belong to the session, not to one message: a permanent
    /// refusal there would fail every message the same way.
    fn is_session(self) -> bool {
        matches!(
            self,
            Stage::Connect | Stage::Greeting | Stage::Ehlo | Stage::StartTls | Stage::Auth
        )
    }
}

/// A verdict from its parts (short, for the reply tables).
pub(crate) const fn v(action: Action, summary: &'static str, fix: &'static str) -> Verdict {
    Verdict {
        action,
        summary,
        fix,
    }
}

const SEND_AS_FIX: &str = "In the Exchange admin center grant the mailbox Send As on the sender, or turn on sender rewriting (upstream.rewrite_sender = true).";
const SMTP_AUTH_FIX: &str = "Turn SMTP AUTH on for the mailbox (Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false) and for the tenant (Set-TransportConfig -SmtpClientAuthenticationDisabled $false). If the tenant has Security Defaults on, SMTP AUTH stays blocked: keep them on and send through Microsoft Graph instead (upstream.mode = \"graph\", an app with the Mail.Send permission: see the README), or a connector (upstream.mode = \"relay\").";
const SECURITY_DEFAULTS_FIX: &str = "Keep Security Defaults on (turning them off weakens every account) and send another way: Microsoft Graph (upstream.mode = \"graph\", an app with the Mail.Send permission: see the README), which works with Security Defaults on; a connector (upstream.mode = \"relay\", from a static IP or with a certificate); or Direct Send (upstream.mode = \"direct-send\") if every recipient is inside the organisation. If Conditional Access blocks it instead, exclude this mailbox's SMTP sign-in from the policy.";

/// Decides what `reply`, received at `stage`, means for the message.
pub fn classify(stage: Stage, reply: &Reply) -> Verdict {
    use Action::*;
    let enh = reply.enhanced.as_deref().unwrap_or("");
    let text = reply.text.to_ascii_lowercase();
    let at_rcpt = stage == Stage::RcptTo;

    match enh {
        "5.7.3" => {
            return v(
                RefreshAuth,
                "Microsoft 365 rejected the sign-in token or password.",
                "Postern refreshes the sign-in once by itself; if this comes back, sign in again in Postern's settings.",
            )
        }
        // Overloaded: "SmtpClientAuthentication is disabled for the Tenant",
        // "basic authentication is disabled" and the Security Defaults /
        // Conditional Access block share 5.7.139.
        "5.7.139"
            if text.contains("security defaults") || text.contains("did not meet the criteria") =>
        {
            return v(
                Hold,
                "Microsoft 365's Security Defaults (or a Conditional Access policy) block SMTP sign-in for this mailbox, Microsoft sign-in (OAuth) included.",
                SECURITY_DEFAULTS_FIX,
            )
        }
        "5.7.139" if text.contains("basic") => {
            return v(
                Hold,
                "Microsoft 365 has turned off password (basic) sign-in for SMTP.",
                "Switch Postern to Microsoft sign-in (OAuth); or, while that is not possible, allow SMTP AUTH with Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false. With Security Defaults on neither works: send through Microsoft Graph (upstream.mode = \"graph\") instead.",
            )
        }
        "5.7.139" => {
            return v(
                Hold,
                "SMTP sign-in (SMTP AUTH) is turned off for this mailbox or the whole tenant.",
                SMTP_AUTH_FIX,
            )
        }
        "5.7.30" => {
            return v(
                Hold,
                "Microsoft 365 no longer accepts password (basic) sign-in for sending.",
                "Switch Postern to Microsoft sign-in (OAuth) in its upstream settings.",
            )
        }
        "5.7.57" => {
            return v(
                Retry,
                "Microsoft 365 says Postern was not signed in when it started sending.",
                "Postern reconnects by itself; if this keeps happening, check that upstream sign-in is configured for client submission.",
            )
        }
        "5.7.60" | "5.2.252" => {
            return v(
                FailMessage,
                "The mailbox Postern signs in as is not allowed to send as this sender.",
                SEND_AS_FIX,
            )
        }
        // Overloaded: 4.3.2 is also the generic "system not accepting
        // messages"; Exchange's thread limit says "432" / "thread limit".
        "4.3.2" if reply.code == 432 || text.contains("thread limit") => {
            return v(
                ReduceConnections,
                "Microsoft 365 allows only 3 connections at a time per mailbox, and Postern used more.",
                "Nothing to do: Postern retries with fewer connections; lower upstream.max_connections if this repeats.",
            )
        }
        // Overloaded: 5.2.0 is a catch-all STOREDRV error; only the
        // submission quota variant means "come back tomorrow".
        "5.2.0" if text.contains("submissionquotaexceeded") => {
            return v(
                DeferQuota,
                "The mailbox has reached Microsoft 365's limit of 10,000 recipients per day.",
                "Nothing to do: Postern holds the mail and sends it when the 24-hour window frees up; use more mailboxes if this happens often.",
            )
        }
        "4.7.66" => {
            return v(
                Hold,
                "Microsoft 365 refused the connection because it was not using TLS 1.2 or newer.",
                "Make sure upstream TLS is enabled in Postern and that nothing on the network (a proxy or firewall) intercepts TLS.",
            )
        }
        "5.1.8" => {
            return v(
                Hold,
                "Microsoft 365 has blocked the mailbox from sending, usually after it was flagged for spam.",
                "In the Microsoft Defender portal, under Restricted entities, release the mailbox, and check it has not been compromised.",
            )
        }
        "5.7.64" => {
            return v(
                Hold,
                "Microsoft 365 did not recognise Postern as belonging to your tenant (relay access denied).",
                "Check the inbound connector in the Exchange admin center: it must match Postern's public IP address or its client certificate name.",
            )
        }
        "5.7.68" => {
            return v(
                Hold,
                "Your tenant does not accept Direct Send.",
                "Switch Postern to client submission or a connector relay, or allow Direct Send for the tenant.",
            )
        }
        "5.7.750" => {
            return v(
                Hold,
                "Microsoft 365 has blocked the tenant from sending from domains that are not registered in it.",
                "Add and verify the sender's domain in the Microsoft 365 admin center, or contact Microsoft support to unblock the tenant.",
            )
        }
        "4.4.62" => {
            return v(
                Hold,
                "Microsoft 365 says the mail went to the wrong tenant or region (usually a connector or MX mismatch).",
                "Check that Postern's upstream host is your tenant's own MX host and that the connector belongs to this tenant.",
            )
        }
        "5.1.10" => {
            return v(
                if at_rcpt { FailRecipient } else { FailMessage },
                "Microsoft 365 does not know this recipient address.",
                "Check the address for typos; if the recipient is new, wait until it appears in the directory.",
            )
        }
        "5.4.1" => {
            return v(
                if at_rcpt { FailRecipient } else { FailMessage },
                "Microsoft 365 refused this recipient (no such address in the tenant, or access denied).",
                "Check the address; for Direct Send and relays only addresses that exist in your tenant are accepted.",
            )
        }
        // At RCPT 5.2.2 is the recipient's mailbox; at submission it is
        // the sending mailbox, which holds everything behind it.
        "5.2.2" if at_rcpt => {
            return v(
                FailRecipient,
                "The recipient's mailbox is full.",
                "The recipient must free space in the mailbox.",
            )
        }
        "5.2.2" => {
            return v(
                Hold,
                "The mailbox Postern sends from is full, so Microsoft 365 will not store sent mail.",
                "Free space in the sending mailbox (Sent Items, Deleted Items) or raise its quota.",
            )
        }
        "5.3.4" => {
            return v(
                FailMessage,
                "The message is bigger than the mailbox is allowed to send (35 MB by default).",
                "Send a smaller file, or raise the mailbox's MaxSendSize in the Exchange admin center.",
            )
        }
        // Seen in message-trace bounces (the tracker): the recipient's
        // mailbox forwards outside and the outbound policy forbids it.
        "5.7.520" => {
            return v(
                if at_rcpt { FailRecipient } else { FailMessage },
                "The recipient's mailbox forwards mail outside the organisation, and Microsoft 365's outbound spam policy blocks automatic external forwarding.",
                "Remove that mailbox's forwarding, or allow automatic forwarding for it in the Microsoft Defender portal (Anti-spam policies → Outbound spam filter policy → Forwarding rules).",
            )
        }
        "5.6.11" => {
            return v(
                FailMessage,
                "Microsoft 365 refused the message because it has bare line feeds (a Postern bug).",
                "Report this to the Postern project with the message's transcript.",
            )
        }
        "4.7.0" => return transient_server(),
        _ => {}
    }
    // 4.7.500-699: anti-spam throttling ("Server busy", "Access denied,
    // please try again later").
    if reply.is_transient() && in_range(enh, "4.7.", 500..=699) {
        return v(
            Retry,
            "Microsoft 365 is throttling or temporarily refusing mail from Postern.",
            "Nothing to do: Postern retries later; if it lasts for hours, check Postern's IP address is not on a block list.",
        );
    }
    if stage == Stage::Auth && reply.code == 535 {
        return v(
            RefreshAuth,
            "The server rejected the sign-in.",
            "Postern retries the sign-in once; if this comes back, check the sign-in details in Postern's settings.",
        );
    }

    generic(stage, reply)
}

fn transient_server() -> Verdict {
    v(
        Action::Retry,
        "Microsoft 365 had a temporary problem.",
        "Nothing to do: Postern retries later.",
    )
}

fn generic(stage: Stage, reply: &Reply) -> Verdict {
    if reply.is_transient() {
        return v(
            Action::Retry,
            "The server asked Postern to try again later.",
            "Nothing to do: Postern retries later.",
        );
    }
    if reply.is_permanent() {
        if stage == Stage::RcptTo {
            return v(
                Action::FailRecipient,
                "The server refused this recipient.",
                "Check the recipient address.",
            );
        }
        if stage.is_session() {
            // Not about any one message: bouncing would fail them all.
            return v(
                Action::Hold,
                "The server refused Postern's connection before any mail was sent.",
                "Check Postern's upstream settings (host, port, sign-in) against what the server expects.",
            );
        }
        return v(
            Action::FailMessage,
            "The server refused this message.",
            "Read the server's reply in the transcript; it says why.",
        );
    }
    v(
        Action::Retry,
        "The server sent a reply Postern did not expect.",
        "Nothing to do: Postern retries later; report it if it repeats.",
    )
}

/// True when `enh` is `prefix` followed by a number within `range`.
fn in_range(enh: &str, prefix: &str, range: std::ops::RangeInclusive<u16>) -> bool {
    enh.strip_prefix(prefix)
        .and_then(|d| d.parse::<u16>().ok())
        .is_some_and(|d| range.contains(&d))
}

/// The verdict for a TLS failure with the upstream server (always Retry).
pub fn tls_failure_verdict() -> Verdict {
    v(
        Action::Retry,
        "A secure (TLS) connection with the mail server could not be set up.",
        "Check the upstream host name and, if a TLS-inspecting firewall or proxy is in the way, add its CA with upstream.ca_file; Postern keeps retrying.",
    )
}

/// The verdict for a failed or lost connection (always Retry).
pub fn connect_failure_verdict() -> Verdict {
    v(
        Action::Retry,
        "Postern could not reach the mail server.",
        "Check the internet connection and that the firewall allows outgoing connections on the upstream port (587 or 25); Postern keeps retrying.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;

    #[test]
    fn table() {
        use Stage::*;
        let rows: &[(Stage, &str, Action)] = &[
            (Auth, "535 5.7.3 Authentication unsuccessful", RefreshAuth),
            (Auth, "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.", Hold),
            (Auth, "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.", Hold),
            (Auth, "550 5.7.30 Basic authentication is not supported for Client Submission.", Hold),
            (MailFrom, "530 5.7.57 Client not authenticated to send mail", Retry),
            (DataEnd, "550 5.7.60 SMTP; Client does not have permissions to send as this sender", FailMessage),
            (DataEnd, "554 5.2.252 SendAsDenied; x@y not allowed to send as z@y", FailMessage),
            (MailFrom, "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", ReduceConnections),
            (DataEnd, "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException", DeferQuota),
            (MailFrom, "451 4.7.500 Server busy. Please try again later", Retry),
            (DataEnd, "451 4.7.0 Temporary server error", Retry),
            (Greeting, "421 4.7.66 TLS 1.0 and 1.1 are not supported", Hold),
            (MailFrom, "550 5.1.8 Access denied, bad outbound sender", Hold),
            (RcptTo, "550 5.1.10 RESOLVER.ADR.RecipientNotFound", FailRecipient),
            (RcptTo, "550 5.7.64 TenantAttribution; Relay Access Denied", Hold),
            (MailFrom, "550 5.7.68 TenantInboundAttribution; Direct Send not allowed", Hold),
            (RcptTo, "550 5.4.1 Recipient address rejected: Access denied", FailRecipient),
            (DataEnd, "554 5.2.2 mailbox full", Hold),
            (DataEnd, "552 5.3.4 Message size exceeds fixed maximum message size", FailMessage),
            (DataEnd, "550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal", FailMessage),
            (RcptTo, "451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35", Hold),
            (MailFrom, "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains", Hold),
            (RcptTo, "451 4.7.650 The mail server has been temporarily rate limited", Retry),
            (MailFrom, "451 4.7.699 Access denied, please try again later", Retry),
            // overloaded codes without their keyword fall back
            (MailFrom, "554 5.2.0 STOREDRV.Submission.Exception:SomethingElse", FailMessage),
            (Ehlo, "421 4.3.2 System not accepting network messages", Retry),
            // per-stage refinements
            (RcptTo, "552 5.2.2 mailbox full", FailRecipient),
            (DataEnd, "550 5.1.10 RESOLVER.ADR.RecipientNotFound", FailMessage),
            // generic fallbacks
            (RcptTo, "452 4.5.3 Too many recipients", Retry),
            (DataEnd, "421 Service shutting down", Retry),
            (RcptTo, "550 5.1.1 User unknown", FailRecipient),
            (RcptTo, "553 mailbox name not allowed", FailRecipient),
            (DataEnd, "554 5.6.0 Message rejected", FailMessage),
            (MailFrom, "501 5.1.7 Bad sender address syntax", FailMessage),
            (Auth, "535 Authentication credentials invalid", RefreshAuth),
            (Greeting, "554 5.7.1 Service unavailable; client host blocked", Hold),
            (Ehlo, "500 unrecognised command", Hold),
            (DataEnd, "garbage", Retry),
            (DataEnd, "250 odd success", Retry),
        ];
        for (stage, line, action) in rows {
            let reply = Reply::parse(line);
            let verdict = classify(*stage, &reply);
            assert_eq!(verdict.action, *action, "{stage:?} {line}");
            assert!(!verdict.summary.is_empty(), "{line}");
            assert!(verdict.summary.ends_with('.'), "{line}");
        }
    }

    #[test]
    fn send_as_texts() {
        let v = classify(Stage::DataEnd, &Reply::parse("550 5.7.60 SMTP; x"));
        assert_eq!(
            v.summary,
            "The mailbox Postern signs in as is not allowed to send as this sender."
        );
        assert!(v.fix.contains("rewrite_sender"));
    }

    #[test]
    fn smtp_auth_fix_names_the_cmdlet() {
        for line in [
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
        ] {
            let v = classify(Stage::Auth, &Reply::parse(line));
            assert!(v.fix.contains("Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false"), "{line}");
            assert!(v.fix.contains("Security Defaults"), "{line}");
            assert!(!v.fix.contains("turn off Security Defaults"), "{line}");
        }
    }

    /// Security Defaults block SMTP AUTH, OAuth included: the fix keeps
    /// them on and names the routes that still work.
    #[test]
    fn security_defaults_are_never_advised_off() {
        for line in [
            "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.",
            "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.",
        ] {
            let v = classify(Stage::Auth, &Reply::parse(line));
            assert_eq!(v.action, Action::Hold, "{line}");
            assert!(v.summary.contains("Security Defaults"), "{line}");
            assert!(v.fix.starts_with("Keep Security Defaults on"), "{line}");
            assert!(v.fix.contains("upstream.mode = \"relay\""), "{line}");
        }
    }

    /// docs/exchange-online.md §3 is this table in words: every row there
    /// is what `classify` answers, and every code decided on here has a row.
    #[test]
    fn the_documented_replies() {
        let doc = include_str!("../../../docs/exchange-online.md");
        let table = doc
            .split("<!-- replies: checked by engine/src/delivery/classify.rs -->")
            .nth(1)
            .and_then(|t| t.split("<!-- end of replies -->").next())
            .expect("the replies table in docs/exchange-online.md");
        let mut rows = 0;
        for line in table.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, reply, stage, action, summary, fix, _] = cells[..] else {
                panic!("a row of five cells: {line}");
            };
            let reply = reply.split('`').nth(1).expect("the reply in backquotes");
            let stage: Stage = serde_json::from_value(serde_json::json!(stage)).expect(stage);
            let action: Action = serde_json::from_value(serde_json::json!(action)).expect(action);
            let verdict = classify(stage, &Reply::parse(reply));
            assert_eq!(
                (verdict.action, verdict.summary, verdict.fix),
                (action, summary, fix),
                "docs/exchange-online.md says of {reply:?} at {stage:?}"
            );
            rows += 1;
        }
        assert!(rows >= 25, "{rows} rows");
        let code = include_str!("classify.rs");
        let code = &code[..code.find("#[cfg(test)]").unwrap()];
        for arm in code
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('"') && l.contains("=>"))
        {
            let codes = arm.split('"').skip(1).step_by(2);
            for enh in codes.filter(|c| c.bytes().all(|b| b.is_ascii_digit() || b == b'.')) {
                assert!(
                    table.contains(&format!(" {enh} ")),
                    "{enh} has no row in docs/exchange-online.md §3"
                );
            }
        }
    }

    #[test]
    fn network_verdicts_retry() {
        assert_eq!(tls_failure_verdict().action, Retry);
        assert_eq!(connect_failure_verdict().action, Retry);
    }

    #[test]
    fn action_serializes_kebab_case() {
        assert_eq!(
            serde_json::to_string(&ReduceConnections).unwrap(),
            "\"reduce-connections\""
        );
    }
}
