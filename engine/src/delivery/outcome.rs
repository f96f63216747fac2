//! How one delivery attempt's result becomes the message's new state:
//! per-recipient bookkeeping, retry scheduling and give-up, and the reasons
//! an attempt can fail before Microsoft answers at all.

use std::time::Duration;

use super::classify::{Action, Verdict};
use super::reply::Reply;
use super::route::RouteError;
use super::upstream::{Credentials, UpstreamError};
use super::worker::Worker;
use crate::auth::{AccessToken, AuthError, UpstreamSecret};
use crate::graph::errors::GraphOutcome;
use crate::spool::{now_ms, RecipientState, State, Status};

pub(super) fn set_recipient(
    s: &mut Status,
    address: &str,
    state: RecipientState,
    reply: Option<&Reply>,
) {
    if let Some(r) = s
        .recipients
        .iter_mut()
        .find(|r| r.address == address && r.state == RecipientState::Pending)
    {
        r.state = state;
        r.reply = reply.map(|r| r.to_string());
    }
}

/// Decides the message state from its recipients: all settled → sent (if
/// any was delivered) or failed; otherwise deferred with backoff, or failed
/// once it is older than `delivery.give_up_after`.
pub(super) fn settle(s: &mut Status, w: &Worker, received_at: u64) {
    let pending = s
        .recipients
        .iter()
        .filter(|r| r.state == RecipientState::Pending)
        .count();
    let any_sent = s.recipients.iter().any(|r| r.state == RecipientState::Sent);
    if pending == 0 {
        s.state = if any_sent { State::Sent } else { State::Failed };
        s.next_attempt = None;
        return;
    }
    let now = now_ms();
    if now.saturating_sub(received_at) >= w.config.delivery.give_up_after.as_millis() as u64 {
        let reason = format!(
            "Postern gave up after trying for {}: {}",
            humantime::format_duration(w.config.delivery.give_up_after),
            s.last_reply.clone().unwrap_or_default()
        );
        for r in &mut s.recipients {
            if r.state == RecipientState::Pending {
                r.state = RecipientState::Failed;
                r.reply = Some(reason.clone());
            }
        }
        s.summary = Some(reason);
        s.state = if any_sent { State::Sent } else { State::Failed };
        s.next_attempt = None;
        return;
    }
    s.state = State::Deferred;
    s.next_attempt = Some(now + w.backoff(s.attempts));
}

/// Lettre's credentials, and the OAuth token behind them (if any).
pub(super) fn to_credentials(secret: UpstreamSecret) -> (Credentials, Option<AccessToken>) {
    match secret {
        UpstreamSecret::None => (Credentials::None, None),
        UpstreamSecret::Password { user, password } => {
            (Credentials::Login { user, password }, None)
        }
        UpstreamSecret::OAuth { user, token } => (
            Credentials::XOAuth2 {
                user,
                token: token.token.clone(),
            },
            Some(token),
        ),
    }
}

/// Why an attempt did not get through.
pub(super) enum Failure {
    /// More recipients than the mailbox may send in the whole budget window.
    TooManyRecipients {
        rcpts: usize,
        limit: u32,
    },
    Auth(AuthError),
    Upstream(UpstreamError),
    /// The endpoint could not be found in DNS.
    Route(RouteError),
    /// Microsoft Graph refused the request, or could not be reached.
    Graph(GraphOutcome),
    Local(String),
}

impl Failure {
    pub(super) fn verdict(&self) -> (Verdict, String) {
        match self {
            Failure::Auth(e) if e.is_transient() => (
                Verdict {
                    action: Action::Retry,
                    summary: "Postern could not reach the Microsoft sign-in service.",
                    fix: "Check this computer's internet connection; Postern keeps trying.",
                },
                e.to_string(),
            ),
            Failure::Auth(e) => (
                Verdict {
                    action: Action::Hold,
                    summary: "Postern cannot sign in to Microsoft 365.",
                    fix: "",
                },
                e.to_string(),
            ),
            Failure::Upstream(e) => (e.verdict(), e.to_string()),
            Failure::Route(e) => (e.verdict(), e.to_string()),
            Failure::Graph(o) => (o.verdict, graph_cause(o)),
            Failure::TooManyRecipients { rcpts, limit } => (
                Verdict {
                    action: Action::FailMessage,
                    summary: "This message has more recipients than the mailbox may send in a day, so it can never go out whole.",
                    fix: "Send it to fewer recipients at a time (or to a distribution group), or raise limits.recipients_per_day if your tenant allows more.",
                },
                format!("{rcpts} recipients; the recipient budget is {limit}"),
            ),
            Failure::Local(e) => (
                Verdict {
                    action: Action::Retry,
                    summary: "Postern could not read the message from its spool.",
                    fix: "Check the disk holding the spool directory.",
                },
                e.clone(),
            ),
        }
    }

    /// How long Microsoft asked to wait (Graph's `Retry-After`).
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Graph(o) => o.retry_after,
            _ => None,
        }
    }

    /// Microsoft's "busy, try later" (421, or 451 4.7.x / 4.3.x; Graph's
    /// 429 and 503): the sending mailbox backs off as a whole.
    pub(super) fn is_server_busy(&self) -> bool {
        match self {
            Failure::Graph(o) => matches!(o.status, Some(429 | 503)),
            Failure::Upstream(e) => e.reply().is_some_and(|r| {
                r.code == 421
                    || (r.code == 451
                        && r.enhanced
                            .as_deref()
                            .is_some_and(|e| e.starts_with("4.7.") || e.starts_with("4.3.")))
            }),
            _ => false,
        }
    }

    /// Auth errors carry their own instructions (run `postern account login`, …).
    pub(super) fn fix_override(&self) -> &str {
        match self {
            Failure::Auth(
                AuthError::SignInNeeded(m) | AuthError::SignedOut(m) | AuthError::NotConfigured(m),
            ) => m,
            Failure::Auth(AuthError::Untrusted(_)) => crate::https::UNTRUSTED_FIX,
            _ => "",
        }
    }
}

/// What Graph said, as the message's last reply: the status and Graph's
/// error code and message, or that there was no answer.
pub(super) fn graph_cause(o: &GraphOutcome) -> String {
    let Some(status) = o.status else {
        // No HTTP answer: a local problem says what it was.
        return match &o.error {
            Some(e) => e.message.clone(),
            None => "no answer from Microsoft Graph (network error)".into(),
        };
    };
    let mut cause = format!("Microsoft Graph answered {status}");
    if let Some(e) = &o.error {
        cause.push_str(&format!(" {}", e.code));
        if !e.message.is_empty() {
            cause.push_str(&format!(": {}", e.message));
        }
    }
    if let Some(d) = o.retry_after {
        cause.push_str(&format!(" (retry after {})", humantime::format_duration(d)));
    }
    cause
}
