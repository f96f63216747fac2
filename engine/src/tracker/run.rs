//! The tracker's loop: each poll checks that tracking can work (the
//! client-credentials app and its permission), ends what ran past
//! `tracking.for`, asks the trace once per sending mailbox, and writes
//! what changed onto the recipients in the spool.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::budget::DetailsBudget;
use super::outcome::{bounced, normalize_message_id, outcome_of, settled};
use super::query::{self, TraceError, TraceRow};
use super::{TrackingHandle, TrackingState, TrackingStatus, CONSENT_FIX, TRACE_PERMISSION};
use crate::auth::{claims, AccessToken, TokenSource};
use crate::config::{Config, OAuthFlow, UpstreamAuth, UpstreamMode};
use crate::delivery::Transcript;
use crate::events::{Event, Events};
use crate::graph::client::GraphClient;
use crate::secrets::SecretStore;
use crate::spool::{now_ms, MessageInfo, Outcome, RecipientState, Spool, Trace};

/// Trace rows may carry a time a little before Postern's own clock said
/// the handoff happened: the window starts this much earlier.
const WINDOW_SLACK_MS: u64 = 15 * 60 * 1000;

pub struct Tracker {
    config: Arc<Config>,
    spool: Spool,
    events: Events,
    /// `Err`: why tracking cannot work with this configuration.
    tokens: Result<TokenSource, String>,
    client: Result<GraphClient, String>,
    handle: TrackingHandle,
    budget: DetailsBudget,
}

/// What one poll found for one recipient.
enum Found {
    /// Not in the trace yet.
    Missing,
    Row(TraceRow),
}

impl Tracker {
    pub fn new(config: Arc<Config>, spool: Spool, events: Events, secrets: SecretStore) -> Tracker {
        let tokens = app_tokens(&config, secrets);
        let client = GraphClient::new(&config).map_err(|e| e.to_string());
        let initial = if !config.tracking.enabled {
            TrackingStatus::new(
                TrackingState::Off,
                Some("Tracking is turned off (tracking.enabled = false).".into()),
                None,
            )
        } else if let Err(why) = &tokens {
            TrackingStatus::new(
                TrackingState::Unavailable,
                Some(why.clone()),
                Some(CONSENT_FIX.into()),
            )
        } else {
            TrackingStatus::new(TrackingState::On, None, None)
        };
        Tracker {
            config,
            spool,
            events,
            tokens,
            client,
            handle: TrackingHandle(Arc::new(Mutex::new(initial))),
            budget: DetailsBudget::default(),
        }
    }

    pub fn handle(&self) -> TrackingHandle {
        self.handle.clone()
    }

    /// Polls until shutdown. With tracking off it does nothing (nothing is
    /// asked of Microsoft, no outcome is written).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let wait = self.poll().await;
            let next = now_ms() + wait.as_millis() as u64;
            self.handle.update(|s| s.next_poll = Some(next));
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One poll; returns how long to wait before the next.
    pub async fn poll(&mut self) -> Duration {
        let every = self.config.tracking.poll.max(Duration::from_secs(1));
        let now = now_ms();
        let for_ms = self.config.tracking.for_.as_millis() as u64;
        if !self.config.tracking.enabled {
            return every.max(Duration::from_secs(3600));
        }
        let messages = self.spool.list();
        self.expire(&messages, now, for_ms).await;
        let followed: Vec<&MessageInfo> = messages
            .iter()
            .filter(|m| m.status.is_tracked(now, for_ms) && m.message_id.is_some())
            .collect();
        self.handle.update(|s| s.tracked = followed.len());
        if followed.is_empty() {
            // Nothing to ask about: no token, no request (the state stays
            // what the last poll that asked found).
            let left = self.budget.left(now);
            self.handle.update(|s| {
                s.last_poll = Some(now);
                s.details_left = left;
            });
            return every;
        }
        self.handle.update(|s| s.polls += 1);
        let token = match self.token().await {
            Ok(t) => t,
            Err((state, reason, fix)) => {
                self.set(state, Some(reason), fix, now);
                return every;
            }
        };
        let client = match &self.client {
            Ok(c) => c.clone(),
            Err(e) => {
                self.set(TrackingState::Unavailable, Some(e.clone()), None, now);
                return every;
            }
        };
        // One list query per sending mailbox, over its oldest handoff to now.
        let mut by_sender: BTreeMap<String, Vec<&MessageInfo>> = BTreeMap::new();
        for m in followed {
            let sender = m
                .status
                .handoff
                .as_ref()
                .map(|h| h.sender.to_ascii_lowercase());
            by_sender
                .entry(sender.unwrap_or_default())
                .or_default()
                .push(m);
        }
        let mut wait = every;
        let mut state = (TrackingState::On, None, None);
        for (sender, group) in by_sender {
            let from = group
                .iter()
                .filter_map(|m| m.status.handoff.as_ref().map(|h| h.at))
                .min()
                .unwrap_or(now)
                .saturating_sub(WINDOW_SLACK_MS)
                .max(now.saturating_sub(
                    crate::config::tracking::MAX_TRACKING_FOR.as_millis() as u64 - 60_000,
                ));
            let filter = query::list_filter(&sender, from, now + 60_000);
            let mut t = Transcript::default();
            let (rows, requests) = query::list(&client, &token.token, &filter, &mut t).await;
            self.handle.update(|s| s.list_requests += requests as u64);
            tracing::debug!(transcript = %t.to_text(), "message trace");
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    let (s, w) = self.trouble(e, every).await;
                    state = s;
                    wait = wait.max(w);
                    break;
                }
            };
            let index = index_rows(rows);
            for m in group {
                self.apply(&client, &token, m, &index, now).await;
            }
        }
        let (st, reason, fix) = state;
        self.set(st, reason, fix, now);
        // What is still followed after this poll's answers.
        let still = self
            .spool
            .list()
            .iter()
            .filter(|m| m.status.is_tracked(now, for_ms) && m.message_id.is_some())
            .count();
        self.handle.update(|s| s.tracked = still);
        wait
    }

    /// The app token, or why tracking cannot work now.
    async fn token(&self) -> Result<AccessToken, (TrackingState, String, Option<String>)> {
        let tokens = self.tokens.as_ref().map_err(|why| {
            (
                TrackingState::Unavailable,
                why.clone(),
                Some(CONSENT_FIX.to_string()),
            )
        })?;
        let token = tokens.token().await.map_err(|e| {
            let state = if e.is_transient() {
                TrackingState::Failing
            } else {
                TrackingState::Unavailable
            };
            (
                state,
                format!("Tracking cannot get its token: {}", claims::explain(&e)),
                None,
            )
        })?;
        let roles = claims::decode(token.token.expose())
            .map(|c| c.roles)
            .unwrap_or_default();
        if !roles
            .iter()
            .any(|r| r.eq_ignore_ascii_case(TRACE_PERMISSION))
        {
            // Asked again next poll: consent may be granted meanwhile.
            tokens.invalidate().await;
            return Err((
                TrackingState::Unavailable,
                format!("The app's token does not carry the application permission {TRACE_PERMISSION}, so Postern cannot read the message trace."),
                Some(CONSENT_FIX.into()),
            ));
        }
        Ok(token)
    }

    /// What a failed list query means for the state and the next poll.
    async fn trouble(
        &self,
        e: TraceError,
        every: Duration,
    ) -> ((TrackingState, Option<String>, Option<String>), Duration) {
        match e {
            TraceError::Throttled(after) => {
                let wait = after.unwrap_or(every).max(every);
                (
                    (
                        TrackingState::Throttled,
                        Some(format!(
                            "Microsoft asked to slow down: the next trace query waits {}.",
                            humantime::format_duration(Duration::from_secs(wait.as_secs()))
                        )),
                        None,
                    ),
                    wait,
                )
            }
            TraceError::Unauthorized => {
                if let Ok(t) = &self.tokens {
                    t.invalidate().await;
                }
                (
                    (TrackingState::Failing, Some("Microsoft Graph refused the token; a new one is fetched for the next poll.".into()), None),
                    every,
                )
            }
            TraceError::Denied(why) => (
                (
                    TrackingState::Unavailable,
                    Some(format!(
                        "Microsoft Graph refused to show the message trace ({why})."
                    )),
                    Some(CONSENT_FIX.into()),
                ),
                every,
            ),
            TraceError::Failed(why) => (
                (
                    TrackingState::Failing,
                    Some(format!("The message trace could not be read: {why}")),
                    None,
                ),
                every,
            ),
        }
    }

    fn set(&mut self, state: TrackingState, reason: Option<String>, fix: Option<String>, now: u64) {
        let left = self.budget.left(now);
        self.handle.update(|s| {
            s.state = state;
            s.reason = reason;
            s.fix = fix;
            s.last_poll = Some(now);
            s.details_left = left;
        });
    }

    /// Ends the tracking of messages handed over `tracking.for` ago:
    /// what is still not known becomes `unknown` (a listed failure whose
    /// reason never came, `bounced`).
    async fn expire(&self, messages: &[MessageInfo], now: u64, for_ms: u64) {
        for m in messages {
            let s = &m.status;
            let no_id = m.message_id.is_none() && s.handoff.is_some();
            if s.tracking_done || s.handoff.is_none() || (s.is_tracked(now, for_ms) && !no_id) {
                continue;
            }
            let r = self
                .spool
                .update(&m.id, |s| {
                    for r in &mut s.recipients {
                        // Never asked about (tracking could not run): left
                        // without an outcome rather than called unknown.
                        if r.state != RecipientState::Sent
                            || r.trace.as_ref().is_none_or(|t| t.outcome.is_final())
                        {
                            continue;
                        }
                        let listed_failed =
                            r.trace.as_ref().and_then(|t| t.status.as_deref()) == Some("failed");
                        r.trace = Some(if listed_failed {
                            bounced(None, now)
                        } else {
                            unknown(now, for_ms)
                        });
                    }
                    s.tracking_done = true;
                })
                .await;
            if r.is_ok() {
                self.events.emit(Event::Traced { id: m.id.clone() });
            }
        }
    }

    /// Writes what the trace says about `m`'s recipients.
    async fn apply(
        &mut self,
        client: &GraphClient,
        token: &AccessToken,
        m: &MessageInfo,
        index: &HashMap<(String, String), Vec<TraceRow>>,
        now: u64,
    ) {
        let mid = normalize_message_id(m.message_id.as_deref().unwrap_or_default());
        let mut changes: Vec<(String, Trace)> = Vec::new();
        for r in &m.status.recipients {
            if r.state != RecipientState::Sent
                || r.trace.as_ref().is_some_and(|t| t.outcome.is_final())
            {
                continue;
            }
            let handoff_at = m.status.handoff.as_ref().map_or(now, |h| h.at);
            let found = match index
                .get(&(mid.clone(), r.address.to_ascii_lowercase()))
                .and_then(|rows| pick(rows, handoff_at))
            {
                Some(row) => Found::Row(row.clone()),
                None => Found::Missing,
            };
            let new = match found {
                Found::Missing => Trace {
                    outcome: Outcome::Pending,
                    status: None,
                    code: None,
                    diagnostic: None,
                    summary: Some("Not in Microsoft's message trace yet (it shows messages a few minutes after sending).".into()),
                    fix: None,
                    checked_at: now,
                },
                Found::Row(row) => {
                    let status = row.status.clone().unwrap_or_default();
                    if status.eq_ignore_ascii_case("failed") {
                        self.bounce(client, token, &row, &r.address, now).await
                    } else {
                        match outcome_of(&status) {
                            Some(o) => settled(&status, o, now),
                            None => Trace {
                                outcome: Outcome::Pending,
                                status: Some(status),
                                code: None,
                                diagnostic: None,
                                summary: None,
                                fix: None,
                                checked_at: now,
                            },
                        }
                    }
                }
            };
            let same = r
                .trace
                .as_ref()
                .is_some_and(|t| t.outcome == new.outcome && t.status == new.status);
            if !same {
                changes.push((r.address.clone(), new));
            }
        }
        if changes.is_empty() {
            return;
        }
        let result = self
            .spool
            .update(&m.id, |s| {
                for (address, trace) in &changes {
                    if let Some(r) = s
                        .recipients
                        .iter_mut()
                        .find(|r| &r.address == address && r.state == RecipientState::Sent)
                    {
                        r.trace = Some(trace.clone());
                    }
                }
                s.tracking_done = s
                    .recipients
                    .iter()
                    .filter(|r| r.state == RecipientState::Sent)
                    .all(|r| r.trace.as_ref().is_some_and(|t| t.outcome.is_final()));
            })
            .await;
        if result.is_err() {
            return; // deleted meanwhile
        }
        let bounced: Vec<&(String, Trace)> = changes
            .iter()
            .filter(|(_, t)| t.outcome == Outcome::Bounced)
            .collect();
        if let Some((_, first)) = bounced.first() {
            let reply = [first.code.as_deref(), first.diagnostic.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            self.events.emit(Event::Bounced {
                id: m.id.clone(),
                recipients: bounced.iter().map(|(a, _)| a.clone()).collect(),
                reply,
                summary: first.summary.clone().unwrap_or_default(),
                fix: first.fix.clone().unwrap_or_default(),
            });
        }
        if bounced.len() < changes.len() {
            self.events.emit(Event::Traced { id: m.id.clone() });
        }
    }

    /// A recipient the trace lists as failed: its reason from the details,
    /// within the budget; without one left, still pending (asked again at
    /// the next poll).
    async fn bounce(
        &mut self,
        client: &GraphClient,
        token: &AccessToken,
        row: &TraceRow,
        recipient: &str,
        now: u64,
    ) -> Trace {
        let waiting = Trace {
            outcome: Outcome::Pending,
            status: Some("failed".into()),
            code: None,
            diagnostic: None,
            summary: Some(
                "The trace lists a failure; Postern asks Microsoft for its reason.".into(),
            ),
            fix: None,
            checked_at: now,
        };
        if !self.budget.take(now) {
            return waiting;
        }
        let mut t = Transcript::default();
        let r = query::details(client, &token.token, &row.id, recipient, &mut t).await;
        self.handle.update(|s| s.detail_requests += 1);
        match r {
            Ok(events) => bounced(query::failure_reason(&events).as_deref(), now),
            Err(TraceError::Throttled(_)) => {
                self.budget.exhaust(now);
                waiting
            }
            Err(_) => waiting,
        }
    }
}

fn unknown(now: u64, for_ms: u64) -> Trace {
    Trace {
        outcome: Outcome::Unknown,
        status: None,
        code: None,
        diagnostic: None,
        summary: Some(format!(
            "Microsoft's message trace did not say what became of it within {} (tracking.for).",
            humantime::format_duration(Duration::from_secs(for_ms / 1000))
        )),
        fix: None,
        checked_at: now,
    }
}

/// Rows by (Message-ID, recipient), both normalised.
fn index_rows(rows: Vec<TraceRow>) -> HashMap<(String, String), Vec<TraceRow>> {
    let mut index: HashMap<(String, String), Vec<TraceRow>> = HashMap::new();
    for row in rows {
        let (Some(mid), Some(rcpt)) = (&row.message_id, &row.recipient_address) else {
            continue;
        };
        let key = (normalize_message_id(mid), rcpt.to_ascii_lowercase());
        index.entry(key).or_default().push(row);
    }
    index
}

/// Of the rows for one (Message-ID, recipient), the one for the message
/// handed over at `handoff_at`: a device that reuses its Message-IDs (some
/// scanners send the same one every time) leaves rows of older messages
/// in the window, so the first trace message received from the handoff on
/// (less [`WINDOW_SLACK_MS`]) is taken; of its rows (a distribution group
/// expanded), a final status wins over a pending one.
fn pick(rows: &[TraceRow], handoff_at: u64) -> Option<&TraceRow> {
    let since = handoff_at.saturating_sub(WINDOW_SLACK_MS);
    let at = |r: &TraceRow| r.received_ms().unwrap_or(handoff_at);
    let first = rows
        .iter()
        .filter(|r| at(r) >= since)
        .min_by_key(|r| at(r))?;
    let pending = |r: &TraceRow| {
        r.status
            .as_deref()
            .is_none_or(|s| outcome_of(s) == Some(Outcome::Pending))
    };
    let same: Vec<&TraceRow> = rows.iter().filter(|r| r.id == first.id).collect();
    same.iter()
        .find(|r| !pending(r))
        .or_else(|| same.first())
        .copied()
}

/// The token source tracking uses: the client-credentials app, asking for
/// Graph (`<graph.endpoint>/.default`) whatever the upstream mode; `Err`
/// says why this configuration cannot track.
pub(crate) fn app_tokens(config: &Config, secrets: SecretStore) -> Result<TokenSource, String> {
    let o = &config.oauth;
    if o.flow != OAuthFlow::ClientCredentials || o.client_id.is_empty() {
        return Err(format!(
            "Tracking reads Microsoft's message trace with an app registration's own permission ({TRACE_PERMISSION}): it needs the client-credentials sign-in (oauth.flow = \"client-credentials\" with oauth.client_id, oauth.tenant and the client secret in the keychain)."
        ));
    }
    if matches!(
        o.tenant.to_ascii_lowercase().as_str(),
        "organizations" | "common" | "consumers"
    ) {
        return Err(
            "Tracking needs your tenant: set oauth.tenant to your domain or tenant id.".into(),
        );
    }
    let mut c = config.clone();
    c.upstream.auth = UpstreamAuth::OAuth;
    c.upstream.mode = UpstreamMode::Graph;
    Ok(TokenSource::new(&c, secrets))
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
