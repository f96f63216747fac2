//! What a Microsoft Graph answer means for a queued message.
//!
//! [`classify_response`] turns an HTTP answer from Graph (status, the
//! `Retry-After` header, the JSON body `{"error":{"code","message"}}`) into
//! a [`GraphOutcome`]: the same [`Verdict`] the SMTP classifier gives (an
//! [`Action`] plus two plain sentences: what happened, what to do), the
//! delay Graph asked for, and whether the message should go again through
//! the draft route because it is too large for the MIME route.
//! [`network_failure`] is the answer when there was no HTTP answer at all.
//!
//! The rules are the table in `docs/graph.md` § "Errors", which a test here
//! checks row by row. Decisions are made on the HTTP status and the JSON
//! `error.code` only, never on the message text.

use std::time::Duration;

use crate::delivery::classify::{v, Action, Verdict};

/// Which way the message was being sent when Graph answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /users/{id}/sendMail` with the MIME bytes in base64.
    Mime,
    /// Draft, attachments (upload sessions), then `send`.
    Draft,
}

/// The `error` object of a Graph error body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: GraphError,
}

/// Reads the `error` object of a Graph answer body; `None` when the body is
/// not Graph's error JSON (empty, HTML from a proxy, …).
pub fn parse_error(body: &[u8]) -> Option<GraphError> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error)
}

/// Reads a `Retry-After` value in seconds. An HTTP date (which Graph does
/// not send) or anything else unreadable gives `None`: default backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// What Graph's answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphOutcome {
    pub verdict: Verdict,
    /// The wait Graph asked for (`Retry-After`), for retrying verdicts;
    /// `None`: the worker's default backoff.
    pub retry_after: Option<Duration>,
    /// The MIME route was refused as too large: send the message again
    /// right away through the draft route (the verdict is then `Retry`).
    pub use_draft_route: bool,
    /// The HTTP status, `None` for a network failure.
    pub status: Option<u16>,
    /// Graph's error object, for the transcript.
    pub error: Option<GraphError>,
}

const CONSENT_FIX: &str = "In Microsoft Entra ID, App registrations → Postern's app → API permissions, add the Application permission Mail.Send (and Mail.ReadWrite for large scans) and click Grant admin consent.";
const RBAC_FIX: &str = "Give the app the right on this mailbox: New-ManagementRoleAssignment -App <app id> -Role \"Application Mail.Send\" -CustomResourceScope <scope> (the scope must include the mailbox), or remove the application access policy that excludes it; also check that OData (REST) access is not disabled for the mailbox.";
const BOTH_FIX: &str = "Check both: in Microsoft Entra ID, App registrations → API permissions, that Mail.Send has admin consent; and in Exchange Online, that the app's role assignment (New-ManagementRoleAssignment -App <app id> -Role \"Application Mail.Send\" -CustomResourceScope <scope>) covers the mailbox.";
const SEND_AS_FIX: &str = "Send from a mailbox the app may send as: with oauth.flow = \"client-credentials\" set upstream.send_as = \"sender\" (a sender in upstream.accepted_domains then sends from their own mailbox), or turn on sender rewriting (upstream.rewrite_sender = true), or in the Exchange admin center grant the mailbox Send As on the sender.";
const MAILBOX_FIX: &str = "Check the mailbox address in Postern's upstream settings: it must be an existing Exchange Online mailbox of your tenant.";
const SIZE_FIX: &str = "Send a smaller file, or raise the mailbox's limit: Set-Mailbox -Identity <mailbox> -MaxSendSize 35MB.";

/// The verdict for an answer with no usable HTTP status decision: the
/// connection failed, timed out or broke before Graph answered.
pub fn network_failure() -> GraphOutcome {
    GraphOutcome {
        verdict: v(
            Action::Retry,
            "Postern could not reach Microsoft Graph (network error).",
            "Postern retries by itself; if this keeps happening, check the internet connection, the proxy or firewall, and graph.endpoint.",
        ),
        retry_after: None,
        use_draft_route: false,
        status: None,
        error: None,
    }
}

/// Decides what Graph's answer (`status`, the `Retry-After` header value if
/// any, the body bytes), received on `route`, means for the message.
pub fn classify_response(
    route: Route,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
) -> GraphOutcome {
    let error = parse_error(body);
    let code = error.as_ref().map(|e| e.code.as_str()).unwrap_or("");
    let (verdict, draft) = decide(route, status, code);
    let retrying = matches!(verdict.action, Action::Retry | Action::ReduceConnections);
    GraphOutcome {
        verdict,
        retry_after: if retrying && !draft {
            retry_after.and_then(parse_retry_after)
        } else {
            None
        },
        use_draft_route: draft,
        status: Some(status),
        error,
    }
}

fn decide(route: Route, status: u16, code: &str) -> (Verdict, bool) {
    use Action::*;
    let is = |c: &str| code.eq_ignore_ascii_case(c);
    let too_large = || {
        match route {
        Route::Mime => (
            v(
                Retry,
                "The message is too large to send in one request to Microsoft Graph.",
                "Nothing to do: Postern sends it again as a draft with its attachments uploaded separately.",
            ),
            true,
        ),
        Route::Draft => (
            v(
                FailMessage,
                "The message is larger than Microsoft 365 lets this mailbox send.",
                SIZE_FIX,
            ),
            false,
        ),
    }
    };
    let verdict = if is("ErrorMimeContentInvalidBase64String") || is("ErrorInvalidMimeContent") {
        v(
            FailMessage,
            "Microsoft Graph could not read the message Postern gave it (a bug in Postern).",
            "Report this to Postern's developers with the message's transcript; the device can send the message again meanwhile.",
        )
    } else if is("ErrorInvalidRecipients") {
        v(
            FailMessage,
            "Microsoft Graph refused a recipient address of this message as invalid.",
            "Check the recipient addresses the device sends to.",
        )
    } else if is("ErrorSendAsDenied") {
        v(
            FailMessage,
            "The mailbox Postern sends from is not allowed to send as this sender.",
            SEND_AS_FIX,
        )
    } else if is("MailboxNotEnabledForRESTAPI") {
        v(
            Hold,
            "The mailbox cannot be used through Microsoft Graph: it is unlicensed, inactive, soft-deleted or on-premises.",
            "Assign the mailbox an Exchange Online license in the Microsoft 365 admin center (and make sure it is not an on-premises mailbox).",
        )
    } else if is("ErrorInvalidUser") || is("ResourceNotFound") || is("Request_ResourceNotFound") {
        v(Hold, "Microsoft Graph has no such mailbox.", MAILBOX_FIX)
    } else if is("Authorization_RequestDenied") {
        v(
            Hold,
            "The app Postern signs in as has no consented permission to send mail.",
            CONSENT_FIX,
        )
    } else if is("ErrorAccessDenied") {
        v(
            Hold,
            "The app Postern signs in as may not use this mailbox (outside its allowed scope, or REST access is off).",
            RBAC_FIX,
        )
    } else if is("ErrorMessageSizeExceeded") {
        return too_large();
    } else if is("ApplicationThrottled") {
        v(
            Retry,
            "Microsoft Graph is slowing Postern down (too many requests).",
            "Nothing to do: Postern waits as long as Microsoft asks and sends again.",
        )
    } else if is("MailboxConcurrency") {
        v(
            ReduceConnections,
            "Microsoft Graph allows only 4 requests at a time per mailbox, and Postern used more.",
            "Nothing to do: Postern waits as long as Microsoft asks and sends with fewer requests at a time.",
        )
    } else {
        match status {
            401 => v(
                RefreshAuth,
                "Microsoft Graph rejected Postern's sign-in token.",
                "Postern refreshes the sign-in once by itself; if this comes back, sign in again in Postern's settings.",
            ),
            403 => v(
                Hold,
                "Microsoft Graph refused the app Postern signs in as access to the mailbox.",
                BOTH_FIX,
            ),
            404 => v(Hold, "Microsoft Graph has no such mailbox.", MAILBOX_FIX),
            413 => return too_large(),
            408 | 429 => v(
                Retry,
                "Microsoft Graph is slowing Postern down (too many requests).",
                "Nothing to do: Postern waits as long as Microsoft asks and sends again.",
            ),
            503 | 504 => v(
                Retry,
                "Microsoft Graph is busy or unavailable for the moment.",
                "Nothing to do: Postern waits as long as Microsoft asks and sends again.",
            ),
            500..=599 => v(
                Retry,
                "Microsoft Graph had an internal error.",
                "Nothing to do: Postern retries by itself; if this lasts for hours, check the Microsoft 365 service health page.",
            ),
            400..=499 => v(
                FailMessage,
                "Microsoft Graph refused this message with an error Postern does not know.",
                "Read Graph's error in the message's transcript; if it looks like a bug in Postern, report it with the transcript.",
            ),
            _ => v(
                Retry,
                "Microsoft Graph gave an answer Postern did not expect.",
                "Postern retries by itself; if this keeps happening, check graph.endpoint and any proxy in between.",
            ),
        }
    };
    (verdict, false)
}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
