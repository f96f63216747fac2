//! `upstream.send_as`: which mailbox a message goes out from.
//!
//! With `"mailbox"` (the default) every message is sent from the configured
//! `upstream.mailbox`, with sender rewriting as configured. With `"sender"`
//! a message whose sender is in `upstream.accepted_domains` is sent from
//! that sender's own mailbox: Graph's `/users/{sender}/...`, or for client
//! submission XOAUTH2 with `user=<sender>` (the app-only token is for the
//! resource, not for one user). No Send As grant is needed, the copy lands
//! in the sender's own Sent Items, and nothing is rewritten.
//!
//! The sender is the From header's address: that is what Exchange and
//! Graph check against the mailbox (5.7.60, `ErrorSendAsDenied`). Only a
//! message without a usable From falls back to the envelope's MAIL FROM.
//! A From outside the accepted domains goes from the configured mailbox,
//! even when MAIL FROM is inside them.

use mail_parser::MessageParser;

use super::classify::{Action, Verdict};
use super::outcome::Failure;
use super::upstream::Credentials;
use crate::config::{SendAs, UpstreamConfig};
use crate::spool::{Claim, Spool};

/// How much of a message is read to find its From header.
const HEAD_BYTES: usize = 64 * 1024;

/// The mailbox one message is sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sending {
    /// The address, as Microsoft is given it.
    pub mailbox: String,
    /// True when it is the sender's own mailbox (`send_as = "sender"`):
    /// no sender rewriting, and the sign-in names this mailbox.
    pub own: bool,
}

impl Sending {
    pub fn configured(u: &UpstreamConfig) -> Sending {
        Sending {
            mailbox: u.mailbox.clone(),
            own: false,
        }
    }

    /// Whether the message's From is rewritten to the configured mailbox.
    pub fn rewrites(&self, u: &UpstreamConfig, claim: &Claim) -> bool {
        !self.own && (u.rewrite_sender || claim.rewrite_sender) && !u.mailbox.is_empty()
    }

    /// The sign-in for this mailbox: XOAUTH2 names it as the user.
    pub fn credentials(&self, creds: Credentials) -> Credentials {
        match creds {
            Credentials::XOAuth2 { token, .. } if self.own => Credentials::XOAuth2 {
                user: self.mailbox.clone(),
                token,
            },
            other => other,
        }
    }
}

/// What a refusal of one sender's own mailbox means: that message waits
/// and is retried, instead of the whole queue being held (the other
/// mailboxes work).
const OWN_MAILBOX_REFUSED: Verdict = Verdict {
    action: Action::Retry,
    summary: "Microsoft refused to send from the sender's own mailbox (upstream.send_as = \"sender\"); this message waits, the others keep going.",
    fix: "Give the app access to that mailbox (Graph: Mail.Send within its RBAC scope; SMTP: Add-MailboxPermission with FullAccess for the app's service principal), or remove its domain from upstream.accepted_domains.",
};

impl Sending {
    /// A refusal that concerns only this sender's own mailbox (its sign-in
    /// refused over SMTP, or Graph's 403 / 404 for that user), which
    /// would otherwise hold the whole queue: retried with the fix instead.
    /// A token that cannot be had at all is everyone's problem: not this.
    pub(super) fn own_refusal(&self, failure: &Failure, verdict: &Verdict) -> Option<Verdict> {
        if !self.own || !matches!(verdict.action, Action::Hold | Action::RefreshAuth) {
            return None;
        }
        let only_this_mailbox = match failure {
            Failure::Upstream(_) => true,
            Failure::Graph(o) => matches!(o.status, Some(403 | 404)),
            _ => false,
        };
        only_this_mailbox.then_some(OWN_MAILBOX_REFUSED)
    }
}

/// The sender's own address if the message may go from its mailbox:
/// the From header's address (else MAIL FROM's when there is no From)
/// when its domain is accepted.
pub fn own_mailbox(u: &UpstreamConfig, mail_from: &str, head: &[u8]) -> Option<String> {
    if u.send_as != SendAs::Sender {
        return None;
    }
    let from = MessageParser::default().parse_headers(head).and_then(|m| {
        m.from()
            .and_then(|a| a.first())
            .and_then(|a| a.address.as_deref())
            .map(|a| a.trim().to_string())
            .filter(|a| a.contains('@'))
    });
    let address = match from {
        Some(a) => a,
        None => mail_from
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string(),
    };
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || local.contains(char::is_whitespace) {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    u.accepted_domains
        .iter()
        .any(|d| d.trim().eq_ignore_ascii_case(&domain))
        .then_some(address)
}

/// The mailbox `claim` is sent from.
pub async fn resolve(u: &UpstreamConfig, spool: &Spool, claim: &Claim) -> Sending {
    resolve_stored(u, spool, &claim.id, &claim.envelope.mail_from).await
}

/// The mailbox stored message `id` (envelope sender `mail_from`) is sent from.
pub async fn resolve_stored(
    u: &UpstreamConfig,
    spool: &Spool,
    id: &crate::spool::MessageId,
    mail_from: &str,
) -> Sending {
    if u.send_as != SendAs::Sender {
        return Sending::configured(u);
    }
    let head = match spool.content_location(id) {
        Ok((path, offset)) => tokio::task::spawn_blocking(move || read_head(&path, offset))
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    match own_mailbox(u, mail_from, &head) {
        Some(mailbox) => Sending { mailbox, own: true },
        None => Sending::configured(u),
    }
}

fn read_head(path: &std::path::Path, offset: u64) -> Vec<u8> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let _ = f.take(HEAD_BYTES as u64).read_to_end(&mut head);
        }
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender_mode() -> UpstreamConfig {
        UpstreamConfig {
            send_as: SendAs::Sender,
            mailbox: "relay@contoso.com".into(),
            accepted_domains: vec!["contoso.com".into(), "Fabrikam.com".into()],
            ..UpstreamConfig::default()
        }
    }

    #[test]
    fn the_from_header_decides_and_must_be_in_an_accepted_domain() {
        let u = sender_mode();
        let own = |mail_from: &str, head: &str| own_mailbox(&u, mail_from, head.as_bytes());
        let msg = |from: &str| format!("From: \"Alice\" <{from}>\r\nSubject: s\r\n\r\nbody\r\n");
        assert_eq!(
            own("scanner@contoso.com", &msg("alice@contoso.com")).as_deref(),
            Some("alice@contoso.com")
        );
        assert_eq!(
            own("", &msg("bob@FABRIKAM.com")).as_deref(),
            Some("bob@FABRIKAM.com")
        );
        // Graph checks From: an outside From is not sent as MAIL FROM's.
        assert_eq!(own("alice@contoso.com", &msg("alice@gmail.com")), None);
        // No From header: the envelope sender.
        assert_eq!(
            own("<carol@contoso.com>", "Subject: s\r\n\r\nbody\r\n").as_deref(),
            Some("carol@contoso.com")
        );
        assert_eq!(own("", "Subject: s\r\n\r\nbody\r\n"), None);
        assert_eq!(own("x@sub.contoso.com", "Subject: s\r\n\r\n"), None);
        let mailbox_mode = UpstreamConfig {
            send_as: SendAs::Mailbox,
            ..sender_mode()
        };
        assert_eq!(
            own_mailbox(&mailbox_mode, "", msg("alice@contoso.com").as_bytes()),
            None
        );
    }

    #[test]
    fn a_refusal_of_one_own_mailbox_does_not_hold_the_queue() {
        let graph = |status: u16, action: Action| {
            let verdict = Verdict {
                action,
                summary: "",
                fix: "",
            };
            let failure = Failure::Graph(crate::graph::errors::GraphOutcome {
                verdict,
                retry_after: None,
                use_draft_route: false,
                status: Some(status),
                error: None,
            });
            (failure, verdict)
        };
        let own = Sending {
            mailbox: "alice@contoso.com".into(),
            own: true,
        };
        // Outside the app's RBAC scope, or no such user: only Alice's.
        for status in [403, 404] {
            let (f, v) = graph(status, Action::Hold);
            assert_eq!(
                own.own_refusal(&f, &v).map(|v| v.action),
                Some(Action::Retry)
            );
        }
        // A refused token is everyone's problem; so is the configured mailbox's.
        let (f, v) = graph(401, Action::RefreshAuth);
        assert_eq!(own.own_refusal(&f, &v), None);
        let (f, v) = graph(403, Action::Hold);
        let configured = Sending::configured(&sender_mode());
        assert_eq!(configured.own_refusal(&f, &v), None);
        let (f, v) = graph(403, Action::FailMessage);
        assert_eq!(own.own_refusal(&f, &v), None, "a failure stays one");
    }

    #[test]
    fn the_own_mailbox_signs_in_as_itself_and_is_not_rewritten() {
        let own = Sending {
            mailbox: "alice@contoso.com".into(),
            own: true,
        };
        let token = crate::secrets::Secret::new("t");
        let creds = own.credentials(Credentials::XOAuth2 {
            user: "relay@contoso.com".into(),
            token,
        });
        assert!(matches!(&creds, Credentials::XOAuth2 { user, .. } if user == "alice@contoso.com"));
        let configured = Sending::configured(&sender_mode());
        let back = configured.credentials(creds);
        assert!(
            matches!(&back, Credentials::XOAuth2 { user, .. } if user == "alice@contoso.com"),
            "the configured mailbox keeps the sign-in's own user"
        );
    }
}
