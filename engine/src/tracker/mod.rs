//! The tracker: after Microsoft took a message (SMTP `250`, Graph `202`),
//! what became of it for each recipient, from Microsoft's message trace
//! (Graph v1.0 `admin/exchange/tracing/messageTraces`, application
//! permission `ExchangeMessageTrace.Read.All` of the client-credentials
//! app). Sent messages in, per-recipient outcomes out — whatever route
//! sent them: a message is found by its `Message-ID` (the listener adds one
//! when the device sent none), its sender and when Microsoft took it.
//!
//! Each poll (`tracking.poll`) makes **one list query per sending
//! mailbox** for every message still followed (a window from the oldest
//! handoff to now, paged with `@odata.nextLink`) — never one request per
//! message. Only a recipient the trace lists as `failed` costs a details
//! request (its reason), within [`budget::DetailsBudget`] (Graph allows 100
//! per 5 minutes; the tracker uses at most 90). A 429 is waited out for its
//! `Retry-After`. Trace data appears minutes after sending: "not in the
//! trace yet" is `pending`, not an error. What is still not known
//! `tracking.for` after the handoff ends as `unknown`.
//!
//! Outcomes live on the recipients in the spool's state files (durable
//! like every other state), so a restart resumes where tracking was; each
//! change is an event (`Bounced` for a bounce, with the reason and the fix
//! through the same table as SMTP replies; `Traced` otherwise).

pub mod budget;
pub mod outcome;
pub mod query;
mod run;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub(crate) use run::app_tokens;
pub use run::Tracker;

/// The permission the trace needs (application, admin consent).
pub const TRACE_PERMISSION: &str = "ExchangeMessageTrace.Read.All";

/// What the admin does to let tracking work.
pub const CONSENT_FIX: &str = "In the Microsoft Entra admin center → App registrations → Postern's app → API permissions: Add a permission → Microsoft Graph → Application permissions → ExchangeMessageTrace.Read.All, then \"Grant admin consent\". It lets the app read the whole tenant's message trace (who sent what to whom, not the content). Or turn tracking off (tracking.enabled = false).";

/// Whether tracking runs, for `postern status` and the throttling page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(rename = "TrackingState")]
pub enum TrackingState {
    /// `tracking.enabled = false`.
    Off,
    /// On, but it cannot work: no client-credentials app, or its token
    /// lacks the permission (`reason`, `fix` say which).
    Unavailable,
    /// Polling.
    On,
    /// Microsoft asked to slow down (429): the next poll waits.
    Throttled,
    /// The last poll failed (network, an unexpected answer); tried again.
    Failing,
}

/// Tracking's state as `postern status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TrackingStatus {
    pub state: TrackingState,
    /// Why it is off, unavailable or failing, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Unix ms of the last poll and of the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll: Option<u64>,
    /// Messages followed now.
    pub tracked: usize,
    /// Polls since start that had messages to ask about (each makes one
    /// list query per sending mailbox, plus its further pages).
    pub polls: u64,
    /// Requests made since start: list queries (pages included) and details.
    pub list_requests: u64,
    pub detail_requests: u64,
    /// Details requests the budget allows right now.
    pub details_left: u32,
}

impl TrackingStatus {
    fn new(state: TrackingState, reason: Option<String>, fix: Option<String>) -> TrackingStatus {
        TrackingStatus {
            state,
            reason,
            fix,
            last_poll: None,
            next_poll: None,
            tracked: 0,
            polls: 0,
            list_requests: 0,
            detail_requests: 0,
            details_left: budget::DETAILS_PER_WINDOW,
        }
    }
}

/// The tracker's status, shared with the control socket.
#[derive(Clone, Debug)]
pub struct TrackingHandle(Arc<Mutex<TrackingStatus>>);

impl TrackingHandle {
    pub fn status(&self) -> TrackingStatus {
        self.0.lock().unwrap().clone()
    }

    fn update(&self, f: impl FnOnce(&mut TrackingStatus)) {
        f(&mut self.0.lock().unwrap())
    }
}
