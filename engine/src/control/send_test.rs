//! The test message (`postern send-test`, the window's "Send a test"): made
//! and queued by the engine itself, through the spool's own durable path,
//! so nothing the admin types can add SMTP commands (a CR or LF in an
//! address is refused here, as in a device's RCPT) and the queue id comes
//! back as data, never read out of a reply's text.

use std::time::SystemTime;

use super::Controller;
use crate::clock;
use crate::listener::headers::Stamp;
use crate::spool::{ClientInfo, Envelope, MessageId};

/// RFC 5321 §4.5.3.1: local part, domain and path lengths.
const MAX_LOCAL_PART: usize = 64;
const MAX_ADDRESS: usize = 254;

/// A plain mailbox `local@domain`: no spaces, controls, brackets or
/// separators that could end the address or the command it goes into.
pub fn check_address(what: &str, address: &str) -> Result<(), String> {
    let bad = || format!("{what} {address:?} is not an email address (like scanner@contoso.com)");
    if address.is_empty() || address.len() > MAX_ADDRESS {
        return Err(bad());
    }
    if address
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || "<>()[],;:\\\"".contains(c))
    {
        return Err(bad());
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(bad());
    };
    if local.is_empty() || local.len() > MAX_LOCAL_PART || domain.is_empty() || local.contains('@')
    {
        return Err(bad());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err(bad());
    }
    Ok(())
}

impl Controller {
    /// Queues the test message from `from` to `to`; its queue id.
    pub async fn send_test(&self, from: &str, to: &str) -> Result<MessageId, String> {
        check_address("the sender", from)?;
        check_address("the recipient", to)?;
        let host = crate::engine::host_name();
        let envelope = Envelope {
            mail_from: from.to_string(),
            rcpt_to: vec![to.to_string()],
            client: ClientInfo {
                peer: "postern send-test".into(),
                helo: host.clone(),
                auth_user: None,
                tls: None,
            },
            ..Default::default()
        };
        let mut incoming = self
            .spool
            .begin(envelope)
            .await
            .map_err(|e| e.to_string())?;
        let now = SystemTime::now();
        let stamp = Stamp::at(now, &incoming.id().to_string(), &host);
        let subject = format!("Postern test message {}", clock::rfc3339(now));
        let message = format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\n\
             Message-ID: {id}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n\
             This is a test message from Postern on {host}.\r\n\
             If it arrived, Postern can deliver mail to Microsoft 365.\r\n",
            date = clock::rfc5322(now),
            id = stamp.message_id,
        );
        incoming
            .write(message.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let id = incoming.commit().await.map_err(|e| e.to_string())?;
        tracing::info!(%id, %from, %to, "test message queued");
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for (a, ok) in [
            ("bob@contoso.com", true),
            ("anna.berg+scans@contoso.co.uk", true),
            ("bücher@beispiel.de", true),
            ("", false),
            ("bob", false),
            ("@contoso.com", false),
            ("bob@", false),
            ("bob@contoso.com\r\nRCPT TO:<victim@evil.example>", false),
            ("bob@contoso.com>", false),
            ("<bob@contoso.com>", false),
            ("bob smith@contoso.com", false),
            ("a,b@contoso.com", false),
            ("bob@@contoso.com", false),
            ("bob@.contoso.com", false),
            ("bob@contoso..com", false),
            ("bob@contoso.com\x1b[31m", false),
        ] {
            assert_eq!(check_address("x", a).is_ok(), ok, "{a:?}");
        }
    }
}
