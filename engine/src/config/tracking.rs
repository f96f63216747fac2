//! `[tracking]`: following each message past Microsoft's 250 / 202 in the
//! message trace (the tracker, `crate::tracker`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The longest `tracking.for`: one trace query covers at most 10 days.
pub const MAX_TRACKING_FOR: Duration = Duration::from_secs(10 * 24 * 3600);

/// Message trace after the handoff (Microsoft Graph, application permission
/// `ExchangeMessageTrace.Read.All`, with the client-credentials app).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, TS)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    /// Follow sent messages in the message trace. Without a
    /// client-credentials app holding `ExchangeMessageTrace.Read.All` it
    /// stays idle and `postern status` says why.
    pub enabled: bool,
    /// How often to ask the trace (one list query per sending mailbox).
    #[serde(with = "humantime_serde")]
    #[ts(type = "string")]
    pub poll: Duration,
    /// How long after the handoff to keep asking; what is still not known
    /// then ends as `unknown`. At most 10 days.
    #[serde(rename = "for", with = "humantime_serde")]
    #[ts(rename = "for", type = "string")]
    pub for_: Duration,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            enabled: true,
            poll: Duration::from_secs(5 * 60),
            for_: Duration::from_secs(48 * 3600),
        }
    }
}
