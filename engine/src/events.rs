//! What happened, broadcast to whoever listens: in the tray app,
//! `src-tauri/src/events.rs` forwards each event to the window (as
//! `engine-event`) and to the desktop notifier; tests subscribe too. The
//! headless `postern serve` has no subscriber: its log is `tracing` (every
//! event is also logged there at debug level). Sending never blocks the
//! engine; a slow listener misses events (it can re-read the queue) rather
//! than slowing delivery down.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::spool::MessageId;

/// How many events a slow subscriber may lag behind before it misses some.
const EVENT_BUFFER: usize = 1024;

/// `EngineEvent` in TypeScript: the payload of the window's `engine-event`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ts_rs::TS)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[ts(rename = "EngineEvent")]
pub enum Event {
    /// A device handed in a message and it is safe on disk.
    Received {
        id: MessageId,
        from: String,
        recipients: usize,
        bytes: u64,
    },
    /// Delivered upstream (to every recipient still pending).
    Sent { id: MessageId, reply: String },
    /// Not delivered yet; will be tried again.
    Deferred {
        id: MessageId,
        reason: String,
        next_attempt_unix: u64,
    },
    /// Failed for good (the whole message, or some recipients of it).
    Failed {
        id: MessageId,
        recipients: Vec<String>,
        reply: String,
        summary: String,
        fix: String,
    },
    /// After Microsoft took the message, the message trace says it bounced
    /// for these recipients (a non-delivery report hours later, say).
    Bounced {
        id: MessageId,
        recipients: Vec<String>,
        /// The status code and Microsoft's reason, e.g. "5.1.10 …".
        reply: String,
        summary: String,
        fix: String,
    },
    /// The message trace settled recipients of a message (delivered,
    /// quarantined, spam, unknown): the queue's marks changed.
    Traced { id: MessageId },
    /// Delivery is held until the admin fixes something.
    NeedsAttention { summary: String, fix: String },
    /// Delivery runs again.
    AttentionCleared,
    /// Removed from the queue by the user.
    Deleted { id: MessageId },
    /// A large message is being uploaded to Microsoft: `bytes` of `total`
    /// so far (sent about twice a second while it lasts, only for messages
    /// of [`PROGRESS_MIN_BYTES`] or more).
    Progress {
        id: MessageId,
        bytes: u64,
        total: u64,
    },
}

/// Messages smaller than this go up too fast to need a progress display.
pub const PROGRESS_MIN_BYTES: u64 = 1024 * 1024;

/// The sending half; cheap to clone. Dropped by the engine on shutdown,
/// which ends every subscriber's stream.
#[derive(Clone, Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Events {
        let (tx, _) = broadcast::channel(EVENT_BUFFER);
        Events { tx }
    }

    pub fn emit(&self, event: Event) {
        tracing::debug!(?event, "event");
        // No subscriber is fine: the headless engine may have none.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
