//! The draft route's requests, as JSON bodies.
//!
//! From a [`ScanPlan`] and this delivery's envelope, [`draft`] builds the
//! body of `POST /users/{id}/messages` (subject, body, From, Reply-To, the
//! recipients — exactly the envelope, see [`super::envelope`] — and the
//! `X-` headers), and sorts the attachments: under 3 MB decoded each is
//! added with `POST .../attachments` as a `#microsoft.graph.fileAttachment`
//! ([`file_attachment`]), larger ones through an upload session whose
//! `AttachmentItem` is given here. The rules are in `docs/graph.md`
//! § "The draft route".

use base64::Engine as _;
use serde::Serialize;

use super::envelope::{draft_recipients, Recipient};
use super::mime_scan::{AttachmentPart, BodyType, ScanPlan};

/// Attachments with a decoded size under this go inline (base64 in one
/// request); the others through an upload session.
pub const INLINE_LIMIT: u64 = 3 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EmailAddress {
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Graph's `recipient`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphRecipient {
    pub email_address: EmailAddress,
}

impl From<&Recipient> for GraphRecipient {
    fn from(r: &Recipient) -> Self {
        GraphRecipient {
            email_address: EmailAddress {
                address: r.address.clone(),
                name: r.name.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `"text"` or `"html"`.
    pub content_type: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InternetMessageHeader {
    pub name: String,
    pub value: String,
}

/// The body of `POST /users/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftMessage {
    pub subject: String,
    pub body: ItemBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<GraphRecipient>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<GraphRecipient>,
    pub to_recipients: Vec<GraphRecipient>,
    pub cc_recipients: Vec<GraphRecipient>,
    pub bcc_recipients: Vec<GraphRecipient>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub internet_message_headers: Vec<InternetMessageHeader>,
    /// The device's Message-ID (`<…>`), kept so the message trace can be
    /// searched for it (the tracker); Graph would make up its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internet_message_id: Option<String>,
    /// [`no_sent_copy`] when `graph.save_to_sent_items` is off.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub single_value_extended_properties: Vec<ExtendedProperty>,
}

/// A `singleValueLegacyExtendedProperty`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtendedProperty {
    pub id: &'static str,
    pub value: String,
}

/// A named property of Postern's own (its GUID is Postern's), set on each
/// draft to the spool message id: a draft whose creation was not answered
/// (a crash, a lost answer) is found by it and deleted.
pub const MESSAGE_TAG: &str = "String {5e0f3b8a-2c4d-4a71-9b6e-7d18c2a9f043} Name PosternMessage";

/// The tag of the drafts made for spool message `id`.
pub fn message_tag(id: &str) -> ExtendedProperty {
    ExtendedProperty {
        id: MESSAGE_TAG,
        value: id.to_string(),
    }
}

/// Exchange's `PidTagDeleteAfterSubmit`: the message is removed once it is
/// submitted, so sending a draft leaves no copy in Sent Items. (A draft has
/// no `saveToSentItems`; that parameter exists only on `sendMail`.)
pub fn no_sent_copy() -> ExtendedProperty {
    ExtendedProperty {
        id: "Boolean 0x0E01",
        value: "true".into(),
    }
}

/// The JSON body of `POST /users/{id}/sendMail`: the message with its
/// (small) attachments inline, and whether Graph keeps a copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonSendMail {
    pub message: JsonMessage,
    pub save_to_sent_items: bool,
}

/// A message with its attachments, for [`JsonSendMail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonMessage {
    #[serde(flatten)]
    pub message: DraftMessage,
    pub attachments: Vec<FileAttachment>,
}

/// A `#microsoft.graph.fileAttachment`, for `POST .../attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileAttachment {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
    pub name: String,
    pub content_type: String,
    pub content_bytes: String,
    pub is_inline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// Graph's `attachmentItem`, for `createUploadSession`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentItem {
    /// Always `"file"`.
    pub attachment_type: &'static str,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub is_inline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// The body of `POST .../attachments/createUploadSession`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadSessionRequest {
    #[serde(rename = "AttachmentItem")]
    pub attachment_item: AttachmentItem,
}

/// How one attachment goes to the draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentRoute {
    /// Decode it whole (under [`INLINE_LIMIT`]) and post
    /// [`file_attachment`].
    Inline,
    /// Create an upload session with this body and send its bytes in ranges.
    Upload(UploadSessionRequest),
}

/// The draft route's plan for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub message: DraftMessage,
    /// For each attachment of the scan plan, in order.
    pub attachments: Vec<AttachmentRoute>,
    /// Transcript lines about recipients (see [`super::envelope`]).
    pub notes: Vec<String>,
}

/// Builds the draft for `plan`, delivered to `envelope`; `sizes` are the
/// attachments' decoded sizes, in the plan's order.
pub fn draft(plan: &ScanPlan, sizes: &[u64], envelope: &[String]) -> Draft {
    assert_eq!(
        sizes.len(),
        plan.attachments.len(),
        "one size per attachment"
    );
    let recipients = draft_recipients(&plan.header_section, envelope);
    let list = |l: &[Recipient]| l.iter().map(GraphRecipient::from).collect::<Vec<_>>();
    let h = &plan.headers;
    let body = match &plan.body {
        Some(b) => ItemBody {
            content_type: match b.content_type {
                BodyType::Html => "html",
                BodyType::Text => "text",
            },
            content: b.content.clone(),
        },
        None => ItemBody {
            content_type: "text",
            content: String::new(),
        },
    };
    let message = DraftMessage {
        subject: h.subject.clone().unwrap_or_default(),
        body,
        from: h.from.as_ref().map(GraphRecipient::from),
        reply_to: list(&h.reply_to),
        to_recipients: list(&recipients.to),
        cc_recipients: list(&recipients.cc),
        bcc_recipients: list(&recipients.bcc),
        internet_message_headers: h
            .x_headers
            .iter()
            .filter(|(n, _)| n.len() > 2 && n[..2].eq_ignore_ascii_case("x-"))
            .map(|(name, value)| InternetMessageHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        internet_message_id: h.message_id.as_ref().map(|id| format!("<{id}>")),
        single_value_extended_properties: Vec::new(),
    };
    let attachments = plan
        .attachments
        .iter()
        .zip(sizes)
        .map(|(a, &size)| {
            if size < INLINE_LIMIT {
                AttachmentRoute::Inline
            } else {
                AttachmentRoute::Upload(UploadSessionRequest {
                    attachment_item: AttachmentItem {
                        attachment_type: "file",
                        name: a.name.clone(),
                        size,
                        content_type: a.content_type.clone(),
                        is_inline: a.inline,
                        content_id: a.content_id.clone(),
                    },
                })
            }
        })
        .collect();
    Draft {
        message,
        attachments,
        notes: recipients.notes,
    }
}

/// The `fileAttachment` for a small attachment and its decoded bytes.
pub fn file_attachment(part: &AttachmentPart, decoded: &[u8]) -> FileAttachment {
    FileAttachment {
        odata_type: "#microsoft.graph.fileAttachment",
        name: part.name.clone(),
        content_type: part.content_type.clone(),
        content_bytes: base64::engine::general_purpose::STANDARD.encode(decoded),
        is_inline: part.inline,
        content_id: part.content_id.clone(),
    }
}

#[cfg(test)]
#[path = "draft_tests.rs"]
mod tests;
