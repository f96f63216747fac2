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
    if u.send_as != SendAs::Sender {
        return Sending::configured(u);
    }
    let head = match spool.content_location(&claim.id) {
        Ok((path, offset)) => tokio::task::spawn_blocking(move || read_head(&path, offset))
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    match own_mailbox(u, &claim.envelope.mail_from, &head) {
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
