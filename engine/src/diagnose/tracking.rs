//! Whether tracking (the message trace after the handoff) can work: the
//! client-credentials app, its token holding `ExchangeMessageTrace.Read.All`
//! (else the exact consent to grant), and one small trace query for the
//! mailbox over the last ten minutes. A warning, never a failure, when it
//! cannot: delivery does not depend on it.

use super::{Check, Context};
use crate::auth::claims;
use crate::delivery::Transcript;
use crate::graph::client::GraphClient;
use crate::spool::now_ms;
use crate::tracker::query::{self, TraceError};
use crate::tracker::{app_tokens, CONSENT_FIX, TRACE_PERMISSION};

const ID: &str = "tracking.trace";
const TITLE: &str = "Delivery tracking (Microsoft's message trace)";

pub(crate) async fn check(cx: &mut Context<'_>) {
    let config = cx.config;
    if !config.tracking.enabled {
        cx.push(Check::skip(
            ID,
            TITLE,
            "Tracking is turned off (tracking.enabled = false).",
        ));
        return;
    }
    let tokens = match app_tokens(config, cx.secrets.clone()) {
        Ok(t) => t,
        Err(why) => {
            // A sign-in choice, not a fault: said, not warned about.
            cx.push(Check::skip(ID, TITLE, why));
            return;
        }
    };
    let token = match tokens.token().await {
        Ok(t) => t,
        Err(e) => {
            cx.push(Check::warn(
                ID,
                TITLE,
                format!("No token for Microsoft Graph: {}", claims::explain(&e)),
                "Fix the app's sign-in (postern account set-secret), then run diagnose again.",
            ));
            return;
        }
    };
    let roles = claims::decode(token.token.expose())
        .map(|c| c.roles)
        .unwrap_or_default();
    if !roles
        .iter()
        .any(|r| r.eq_ignore_ascii_case(TRACE_PERMISSION))
    {
        let held = if roles.is_empty() {
            "none".to_string()
        } else {
            roles.join(", ")
        };
        cx.push(Check::warn(
            ID,
            TITLE,
            format!("The app's Graph token does not carry {TRACE_PERMISSION} (it carries: {held}), so Postern cannot tell whether a message reached its recipients."),
            CONSENT_FIX,
        ));
        return;
    }
    let client = match GraphClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            cx.push(Check::warn(ID, TITLE, e.to_string(), ""));
            return;
        }
    };
    let now = now_ms();
    let sender = if config.upstream.mailbox.is_empty() {
        "postern-diagnose@invalid"
    } else {
        config.upstream.mailbox.as_str()
    };
    let filter = query::list_filter(sender, now.saturating_sub(10 * 60 * 1000), now);
    let mut t = Transcript::default();
    let (rows, _) = query::list(&client, &token.token, &filter, &mut t).await;
    match rows {
        Ok(rows) => cx.push(Check::ok(
            ID,
            TITLE,
            format!("The app holds {TRACE_PERMISSION} and the trace answers ({} row(s) for {sender} in the last 10 minutes): each sent message is followed to its recipients.", rows.len()),
        )),
        Err(TraceError::Denied(why)) => cx.push(Check::warn(
            ID,
            TITLE,
            format!("Microsoft Graph refused the message trace: {why}"),
            CONSENT_FIX,
        )),
        Err(TraceError::Throttled(_)) => cx.push(Check::warn(ID, TITLE, "Microsoft Graph asked to slow down (429); the permission is there.", "Nothing to do: tracking waits and asks again.")),
        Err(TraceError::Unauthorized) => cx.push(Check::warn(ID, TITLE, "Microsoft Graph refused the token (401).", "Check graph.endpoint and the app registration's tenant.")),
        Err(TraceError::Failed(why)) => cx.push(Check::warn(ID, TITLE, format!("The message trace could not be read: {why}"), "")),
    };
}
