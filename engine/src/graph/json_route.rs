//! The JSON `sendMail` route, for `graph.save_to_sent_items = false`: the
//! MIME route cannot say "no copy in Sent Items" (`saveToSentItems` exists
//! only in the JSON form), so a message that fits one request is rebuilt
//! from its parts as the draft route does (subject, body, From, Reply-To,
//! exactly the envelope's recipients, `X-` headers) with its attachments
//! inline, and sent with `saveToSentItems: false`. It needs only
//! `Mail.Send`. A message with an attachment of 3 MB or more, or whose
//! request would pass Graph's 4 MB, goes by the draft route instead.

use super::client::{expect, MIME_ROUTE_LIMIT};
use super::draft::{file_attachment, AttachmentRoute, JsonMessage, JsonSendMail};
use super::draft_route::{decode_small, DraftJob, Prepared};
use super::errors::{GraphOutcome, Route};
use crate::delivery::Transcript;

/// What [`DraftJob::send_json`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonSent {
    /// Graph answered `202`.
    Sent,
    /// The message does not fit one request: send it as a draft.
    TooLarge,
}

impl DraftJob<'_> {
    /// Sends the message as JSON `sendMail` without a copy in Sent Items.
    pub async fn send_json(&self, t: &mut Transcript) -> Result<JsonSent, GraphOutcome> {
        let Prepared {
            plan,
            draft,
            path,
            base,
            ..
        } = self.prepare(t).await?;
        if draft
            .attachments
            .iter()
            .any(|a| matches!(a, AttachmentRoute::Upload(_)))
        {
            t.note("an attachment is 3 MB or more: sending the message as a draft");
            return Ok(JsonSent::TooLarge);
        }
        let mut attachments = Vec::new();
        for part in &plan.attachments {
            let decoded = decode_small(part, &path, base).await?;
            attachments.push(file_attachment(part, &decoded));
        }
        let body = serde_json::to_vec(&JsonSendMail {
            message: JsonMessage {
                message: draft.message,
                attachments,
            },
            save_to_sent_items: false,
        })
        .expect("the message serialises");
        if body.len() as u64 > MIME_ROUTE_LIMIT {
            t.note(&format!(
                "the message's JSON is {} bytes, over Graph's 4 MB per request: sending it as a draft",
                body.len()
            ));
            return Ok(JsonSent::TooLarge);
        }
        t.note(&format!(
            "graph.save_to_sent_items is off: sendMail as JSON with saveToSentItems false, {} attachment(s)",
            plan.attachments.len()
        ));
        let url = self.client.user_url(self.mailbox, &["sendMail"]);
        let answer = self.client.post_json(url, self.token, body, t).await?;
        expect(answer, &[202], Route::Mime, t).map(|_| JsonSent::Sent)
    }
}
