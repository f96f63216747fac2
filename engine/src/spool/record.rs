//! The records the spool keeps for each message: the envelope (written once,
//! with the content) and the delivery state (rewritten on each transition),
//! plus the message id format.

use std::fmt;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Milliseconds since the Unix epoch: the one clock every record uses.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A message id: 16 lowercase hex digits, the receive time in milliseconds
/// followed by a counter, so ids sort by arrival and are safe as file names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, TS)]
#[serde(try_from = "String", into = "String")]
#[ts(type = "string")]
pub struct MessageId(String);

static COUNTER: AtomicU16 = AtomicU16::new(0);

impl MessageId {
    pub fn generate() -> MessageId {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        MessageId(format!("{:012x}{:04x}", now_ms() & 0xffff_ffff_ffff, n))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(MessageId(s))
        } else {
            Err(format!(
                "{s:?} is not a message id (16 hex digits, as `postern queue` shows them)"
            ))
        }
    }
}

impl std::str::FromStr for MessageId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageId::try_from(s.to_ascii_lowercase())
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who handed the message in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ClientInfo {
    /// The device's address, e.g. "192.168.1.40:51234".
    pub peer: String,
    /// What it said in EHLO/HELO.
    pub helo: String,
    /// Device user name, when it authenticated.
    pub auth_user: Option<String>,
    /// TLS protocol version, when the session was encrypted.
    pub tls: Option<String>,
}

/// The SMTP envelope and where it came from; fixed once received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Empty for the null sender `<>`.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub client: ClientInfo,
    /// Unix milliseconds; set by the spool when it starts storing the
    /// message (`Spool::begin`, once the device has sent DATA), whatever the
    /// caller put here. `delivery.give_up_after` counts from it.
    #[serde(default)]
    pub received_at: u64,
    #[serde(default)]
    pub smtputf8: bool,
    #[serde(default)]
    pub eight_bit: bool,
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "MsgState")]
pub enum State {
    /// Waiting for its first attempt.
    Queued,
    /// A delivery attempt is under way (never persisted: after a crash it is queued again).
    Sending,
    /// Not delivered yet; `next_attempt` says when it is tried again.
    Deferred,
    /// Waiting for the admin to fix something (sign-in, tenant, connector).
    Held,
    /// Delivered upstream (possibly with some recipients failed).
    Sent,
    /// Failed for good.
    Failed,
}

impl State {
    pub fn is_final(self) -> bool {
        matches!(self, State::Sent | State::Failed)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            State::Queued => "queued",
            State::Sending => "sending",
            State::Deferred => "deferred",
            State::Held => "held",
            State::Sent => "sent",
            State::Failed => "failed",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum RecipientState {
    Pending,
    Sent,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Recipient {
    pub address: String,
    pub state: RecipientState,
    /// The upstream reply that decided it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// After Microsoft took the message: what became of it for this
    /// recipient, from the message trace (the tracker). `None`: not
    /// tracked (tracking off, or the recipient was never sent to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

/// What the message trace says became of a message for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "TraceOutcome")]
pub enum Outcome {
    /// Not known yet: not in the trace yet, or Microsoft is still on it.
    Pending,
    /// In the recipient's mailbox (or handed to their server).
    Delivered,
    /// Refused after Microsoft took it: a non-delivery report.
    Bounced,
    /// Held in quarantine by the tenant's filters.
    Quarantined,
    /// Delivered to the recipient's Junk folder as spam.
    Spam,
    /// Still not known when tracking ended (`tracking.for`).
    Unknown,
}

impl Outcome {
    /// Tracking of this recipient is over.
    pub fn is_final(self) -> bool {
        !matches!(self, Outcome::Pending)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Pending => "pending",
            Outcome::Delivered => "delivered",
            Outcome::Bounced => "bounced",
            Outcome::Quarantined => "quarantined",
            Outcome::Spam => "spam",
            Outcome::Unknown => "unknown",
        })
    }
}

/// One recipient's trace result, kept in the message's state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Trace {
    pub outcome: Outcome,
    /// The trace's own word for it (`delivered`, `failed`,
    /// `filteredAsSpam`, `gettingStatus`, …); `None` while not in the
    /// trace yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// A bounce's enhanced status code, e.g. "5.1.10".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The reason as Microsoft wrote it (the failure event's description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostic: Option<String>,
    /// What it means, in one plain sentence (bounces, quarantine, spam).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Unix ms of the poll that last changed it.
    pub checked_at: u64,
}

/// How Microsoft took the message, for finding it in the message trace:
/// set when a delivery attempt hands recipients over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Handoff {
    /// Unix ms of Microsoft's 250 / 202 (the first one, when the message
    /// went out in several parts).
    pub at: u64,
    /// The envelope sender Microsoft saw (MAIL FROM after any rewriting;
    /// the mailbox in the Graph URL): the trace's `senderAddress`.
    pub sender: String,
}

/// The mutable part of a message, kept in `<id>.state` (`MessageStatus`
/// in TypeScript, where `Status` is the engine's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(rename = "MessageStatus")]
pub struct Status {
    pub state: State,
    pub attempts: u32,
    /// Unix ms of the next attempt (deferred and held messages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<u64>,
    /// The last upstream reply or error, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reply: Option<String>,
    /// What the last reply means, in one plain sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub recipients: Vec<Recipient>,
    pub updated_at: u64,
    /// Send this message as the mailbox (sender rewriting) even when
    /// `upstream.rewrite_sender` is off: "resend with sender rewriting".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rewrite_sender: bool,
    /// Graph's draft route: the id of the draft created for this message
    /// and not yet sent or deleted. Written before any attachment is
    /// uploaded, so a crash leaves no draft Postern does not know of: the
    /// next attempt deletes it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_draft: Option<String>,
    /// The draft's `send` was posted and its answer is not known yet (a
    /// crash, a lost answer): Microsoft may have taken the message. The
    /// next attempt asks Graph whether the draft is still a draft before
    /// anything else, and never sends a message twice.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graph_send_posted: bool,
    /// A draft is being created and its id is not known yet: after a
    /// crash or a lost answer the next attempt looks for drafts tagged
    /// with this message's id and deletes them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graph_draft_creating: bool,
    /// When and as whom Microsoft took the message (for the tracker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    /// The tracker is done with this message: every recipient handed over
    /// has a final outcome, or `tracking.for` ran out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracking_done: bool,
}

impl Status {
    pub fn new(envelope: &Envelope) -> Status {
        Status {
            state: State::Queued,
            attempts: 0,
            next_attempt: None,
            last_reply: None,
            summary: None,
            fix: None,
            recipients: envelope
                .rcpt_to
                .iter()
                .map(|a| Recipient {
                    address: a.clone(),
                    state: RecipientState::Pending,
                    reply: None,
                    trace: None,
                })
                .collect(),
            updated_at: envelope.received_at,
            rewrite_sender: false,
            graph_draft: None,
            graph_send_posted: false,
            graph_draft_creating: false,
            handoff: None,
            tracking_done: false,
        }
    }

    /// The tracker still follows this message: handed over, not done, and
    /// handed over less than `for_ms` ago.
    pub fn is_tracked(&self, now: u64, for_ms: u64) -> bool {
        !self.tracking_done
            && self
                .handoff
                .as_ref()
                .is_some_and(|h| h.at.saturating_add(for_ms) > now)
    }

    pub fn pending(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
            .map(|r| r.address.clone())
            .collect()
    }
}

/// One message as the queue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MessageInfo {
    pub id: MessageId,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// The `Message-ID` header without its angle brackets (the listener
    /// adds one when the device sent none): how the tracker finds the
    /// message in Microsoft's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Content size in bytes.
    pub size: u64,
    /// Unix milliseconds: the envelope's `received_at`.
    pub received_at: u64,
    pub client: ClientInfo,
    #[serde(flatten)]
    pub status: Status,
}
