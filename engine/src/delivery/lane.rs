//! One upstream connection slot ("lane") of the delivery worker: it claims
//! due messages, keeps an authenticated connection open across them (and
//! retires it when idle or when its sign-in ages), sends, and records what
//! happened. `Worker::run` starts `limits.max_connections` of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::classify::{Action, Stage, Verdict};
use super::outcome::{set_recipient, settle, to_credentials, Failure};
use super::reply::Reply;
use super::rewrite::{envelope_sender, rewrite_sender};
use super::route;
use super::transcript::Transcript;
use super::upstream::{Connection, SendReport, UpstreamError};
use super::worker::{Worker, MAX_IDLE_WAIT, THREAD_LIMIT_BACKOFF};
use crate::auth::AccessToken;
use crate::events::{Event, PROGRESS_MIN_BYTES};
use crate::spool::{now_ms, Claim, RecipientState, State, Status};
use crate::throttle::{Slot, Wait as ThrottleWait};

#[path = "lane_graph.rs"]
mod graph;

/// Resolves once shutdown is requested, at once if it already was (or
/// when the engine that could request it is gone).
pub(crate) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One upstream connection slot.
pub(super) struct Lane {
    w: Arc<Worker>,
    index: usize,
    conn: Option<Connection>,
    /// The OAuth token the open connection authenticated with: once it is
    /// no longer fresh the connection is retired and a new one signs in.
    conn_token: Option<AccessToken>,
    /// The open connection's greeting, EHLO, STARTTLS and AUTH lines, so
    /// every message's transcript shows how its session was established.
    conn_setup: Vec<String>,
    last_used: tokio::time::Instant,
    /// Turns true at shutdown; every wait of the lane watches it.
    shutdown: watch::Receiver<bool>,
}

enum Wait {
    Shutdown,
    Continue,
}

impl Lane {
    pub(super) fn new(w: Arc<Worker>, index: usize, shutdown: watch::Receiver<bool>) -> Lane {
        Lane {
            w,
            index,
            conn: None,
            conn_token: None,
            conn_setup: Vec::new(),
            last_used: tokio::time::Instant::now(),
            shutdown,
        }
    }

    pub(super) async fn run(mut self) {
        let mut shutdown = self.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if let Some(wait) = self.blocked() {
                if let Wait::Shutdown = self.wait(wait, &mut shutdown).await {
                    break;
                }
                continue;
            }
            // A full minute window or a quota block holds every message:
            // wait without claiming one.
            if let Some(
                w @ (ThrottleWait::Minute(_) | ThrottleWait::Quota(_) | ThrottleWait::Busy(_)),
            ) = self.w.throttle.wait_for(1)
            {
                if let Wait::Shutdown = self.wait(w.duration(), &mut shutdown).await {
                    break;
                }
                continue;
            }
            let Some(claim) = self.w.spool.claim_next(now_ms()) else {
                let until_due = self
                    .w
                    .spool
                    .next_due()
                    .map(|t| Duration::from_millis(t.saturating_sub(now_ms())))
                    .unwrap_or(MAX_IDLE_WAIT);
                let mut wait = until_due.min(MAX_IDLE_WAIT);
                if self.conn.is_some() {
                    let idle_left = self
                        .w
                        .config
                        .delivery
                        .idle_close
                        .saturating_sub(self.last_used.elapsed());
                    if idle_left.is_zero() {
                        self.close().await;
                    } else {
                        wait = wait.min(idle_left);
                    }
                }
                if let Wait::Shutdown = self.wait(wait, &mut shutdown).await {
                    break;
                }
                continue;
            };
            if self.w.throttle.exceeds_budget(claim.pending.len()) {
                let failure = Failure::TooManyRecipients {
                    rcpts: claim.pending.len(),
                    limit: self.w.throttle.limits().per_window.unwrap_or(0),
                };
                self.record_failure(&claim, failure).await;
                continue;
            }
            // Graph sends a message to all its pending recipients at once.
            let first = if self.w.graph.is_some() {
                claim.pending.len()
            } else {
                claim
                    .pending
                    .len()
                    .min(self.w.config.upstream.max_recipients.max(1))
            };
            let acquired = tokio::select! {
                a = self.w.throttle.acquire(first as u32, &self.shutdown) => a,
                _ = stopping(&mut shutdown) => {
                    self.release(&claim).await;
                    break;
                }
            };
            let slot = match acquired {
                Ok(slot) => slot,
                Err(wait) => {
                    self.wait_for_budget(&claim, wait).await;
                    continue;
                }
            };
            self.deliver(claim, slot).await;
            self.last_used = tokio::time::Instant::now();
        }
        self.close().await;
    }

    /// Why this lane may not claim a message now, and for how long at most.
    fn blocked(&self) -> Option<Duration> {
        if self.w.state.is_paused() {
            return Some(MAX_IDLE_WAIT);
        }
        let attention = self.w.state.attention();
        match attention {
            None => None,
            // Only lane 0 probes during a hold; the others wait for it.
            Some(_) if self.index != 0 => Some(MAX_IDLE_WAIT),
            Some(a) if a.recheck_at > now_ms() => {
                Some(Duration::from_millis(a.recheck_at - now_ms()).min(MAX_IDLE_WAIT))
            }
            Some(_) => None,
        }
    }

    async fn wait(&self, d: Duration, shutdown: &mut watch::Receiver<bool>) -> Wait {
        let mut attention = self.w.state.attention.subscribe();
        tokio::select! {
            _ = stopping(shutdown) => Wait::Shutdown,
            _ = self.w.spool.wait_for_work() => Wait::Continue,
            _ = self.w.state.poke.notified() => Wait::Continue,
            _ = attention.changed() => Wait::Continue,
            _ = tokio::time::sleep(d) => Wait::Continue,
        }
    }

    async fn release(&self, claim: &Claim) {
        let _ = self
            .w
            .spool
            .update(&claim.id, |s| {
                if s.state == State::Sending {
                    s.state = if s.attempts == 0 {
                        State::Queued
                    } else {
                        State::Deferred
                    };
                }
            })
            .await;
    }

    async fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            let mut t = Transcript::default();
            conn.quit(&mut t).await;
            *self.w.state.active.lock().unwrap() -= 1;
        }
    }

    fn drop_connection(&mut self) {
        if self.conn.take().is_some() {
            *self.w.state.active.lock().unwrap() -= 1;
        }
    }

    /// An open, authenticated connection, or what went wrong opening one.
    async fn connection(&mut self, t: &mut Transcript) -> Result<(), Failure> {
        let stale = self
            .conn_token
            .as_ref()
            .is_some_and(|t| !t.is_fresh(now_ms()));
        if stale {
            t.note("the open connection's sign-in is about to expire; reconnecting");
            self.close().await;
        }
        if let Some(conn) = self.conn.as_mut() {
            if conn.is_usable().await {
                t.note("reusing the open connection, which was set up as follows:");
                t.replay(&self.conn_setup);
                return Ok(());
            }
            self.drop_connection();
        }
        // Where to connect (the tenant's MX for relay / Direct Send), at
        // which addresses: found once per attempt, see `route`.
        let targets = self
            .w
            .route
            .targets(&self.w.settings, t)
            .await
            .map_err(Failure::Route)?;
        let mut refreshed = false;
        loop {
            let (creds, token) = match self.w.tokens.credentials().await {
                Ok(c) => to_credentials(c),
                Err(e) => return Err(Failure::Auth(e)),
            };
            let before = t.lines().len();
            match route::open_first(&targets, &creds, t).await {
                Ok(conn) => {
                    self.conn_setup = t.lines()[before..].to_vec();
                    self.conn = Some(conn);
                    self.conn_token = token;
                    *self.w.state.active.lock().unwrap() += 1;
                    return Ok(());
                }
                Err(e) => {
                    let verdict = e.verdict();
                    if verdict.action == Action::RefreshAuth && !refreshed {
                        // 535 5.7.3 with an OAuth token: refresh once, try again.
                        t.note(
                            "authentication refused; fetching a fresh token and trying once more",
                        );
                        self.w.tokens.invalidate().await;
                        refreshed = true;
                        continue;
                    }
                    if verdict.action == Action::RefreshAuth {
                        self.w.tokens.mark_sign_in_needed(&e.to_string()).await;
                    }
                    return Err(Failure::Upstream(e));
                }
            }
        }
    }

    /// One attempt at `claim`, its first submission's `slot` already reserved.
    async fn deliver(&mut self, claim: Claim, slot: Slot) {
        if self.w.graph.is_some() {
            return self.deliver_graph(claim, slot).await;
        }
        let w = self.w.clone();
        let mut t = Transcript::default();
        t.note(&format!(
            "attempt {} for message {} ({} recipient(s) pending)",
            claim.attempts + 1,
            claim.id,
            claim.pending.len()
        ));
        let outcome = match self.connection(&mut t).await {
            Err(f) => {
                w.throttle.release(slot);
                Err(f)
            }
            Ok(()) => self.transfer(&claim, slot, &mut t).await,
        };
        let (outcome, budget_wait) = match outcome {
            Ok((reports, wait)) => (Ok(reports), wait),
            Err(f) => (Err(f), None),
        };
        // The transcript before the outcome: whoever sees the new state
        // (the CLI, the GUI reacting to the event) finds the transcript that
        // explains it. It is an append without fsync, so it barely widens
        // the window in which a crash after Microsoft's 250 resends.
        if let Err(e) = w.spool.append_transcript(&claim.id, &t.to_text()).await {
            tracing::warn!(id = %claim.id, error = %e, "could not save the transcript");
        }
        match outcome {
            Ok(reports) => self.record_reports(&claim, reports).await,
            Err(failure) => self.record_failure(&claim, failure).await,
        }
        if let Some(wait) = budget_wait {
            let pending = w
                .spool
                .get(&claim.id)
                .map(|m| m.status.state == State::Deferred);
            if pending == Some(true) {
                self.wait_for_budget(&claim, wait).await;
            }
        }
    }

    /// Sends the message to its pending recipients, split into submissions
    /// of at most `upstream.max_recipients`.
    ///
    /// Each submission holds a throttle slot: accepted when Microsoft took
    /// the message (that is when it counts), released when it did not.
    async fn transfer(
        &mut self,
        claim: &Claim,
        first: Slot,
        t: &mut Transcript,
    ) -> Result<(Vec<SendReport>, Option<ThrottleWait>), Failure> {
        let w = self.w.clone();
        let mut content = match w.spool.read_content(&claim.id).await {
            Ok(c) => c,
            Err(e) => {
                w.throttle.release(first);
                return Err(Failure::Local(e.to_string()));
            }
        };
        let mut mail_from = claim.envelope.mail_from.clone();
        let rewrite = w.config.upstream.rewrite_sender || claim.rewrite_sender;
        if rewrite && !w.config.upstream.mailbox.is_empty() {
            content = rewrite_sender(&content, &w.config.upstream.mailbox);
            mail_from = w.config.upstream.mailbox.clone();
        }
        let submission = w.config.upstream.mode == crate::config::UpstreamMode::Submission;
        let mail_from = envelope_sender(&mail_from, submission, &w.config.upstream.mailbox);
        let mut reports = Vec::new();
        let mut first = Some(first);
        for chunk in claim
            .pending
            .chunks(w.config.upstream.max_recipients.max(1))
        {
            // Every submission counts against the limits; when the budget
            // runs out mid-message the rest waits for it.
            let slot = match first.take() {
                Some(slot) => slot,
                // At shutdown the wait is cut short and returned: the rest
                // of the message is deferred like any budget wait.
                None => match w.throttle.acquire(chunk.len() as u32, &self.shutdown).await {
                    Ok(slot) => slot,
                    Err(wait) => return Ok((reports, Some(wait))),
                },
            };
            let conn = self.conn.as_mut().expect("connected");
            let (events, id) = (w.events.clone(), claim.id.clone());
            let mut progress = move |bytes, total| {
                if total >= PROGRESS_MIN_BYTES {
                    let id = id.clone();
                    events.emit(Event::Progress { id, bytes, total });
                }
            };
            let sent = conn
                .send_with_progress(&mail_from, chunk, &content, t, &mut progress)
                .await;
            match &sent {
                Ok(r) if r.data_reply.as_ref().is_some_and(|d| d.is_positive()) => {
                    w.throttle.accepted(slot).await
                }
                _ => w.throttle.release(slot),
            }
            match sent {
                Ok(report) => reports.push(report),
                Err(e) => {
                    if !reports.is_empty() {
                        // Keep what was delivered; the rest is retried.
                        self.record_reports(claim, std::mem::take(&mut reports))
                            .await;
                    }
                    if !matches!(e, UpstreamError::Reply { .. }) {
                        self.drop_connection();
                    }
                    return Err(Failure::Upstream(e));
                }
            }
        }
        Ok((reports, None))
    }

    /// Defers a message that must wait for the recipient budget, a quota
    /// block or a busy server, rather than holding its claim meanwhile.
    async fn wait_for_budget(&self, claim: &Claim, wait: ThrottleWait) {
        let w = &self.w;
        let until = now_ms() + wait.duration().as_millis() as u64;
        let (summary, reply) = match wait {
            ThrottleWait::Busy(_) | ThrottleWait::Minute(_) => (
                "Microsoft asked Postern to slow down; the message goes out shortly, by itself.",
                "waiting: Microsoft reported it is busy".to_string(),
            ),
            ThrottleWait::Quota(_) => (
                "Microsoft says the mailbox's daily recipient budget is used up; the message waits until it frees.",
                "waiting: Microsoft reported the daily sending quota as exceeded (554 5.2.0)".to_string(),
            ),
            _ => (
                "The mailbox's daily recipient budget is used up for now; the message goes out by itself when it frees.",
                format!(
                    "waiting for the daily recipient budget ({} recipients per {})",
                    w.throttle.limits().per_window.unwrap_or(0),
                    humantime::format_duration(w.throttle.limits().window)
                ),
            ),
        };
        let status = w
            .spool
            .update(&claim.id, |s| {
                s.state = State::Deferred;
                s.next_attempt = Some(until);
                s.last_reply = Some(reply.clone());
                s.summary = Some(summary.to_string());
                s.fix = Some(String::new());
            })
            .await;
        if let Ok(status) = status {
            self.announce(claim, &status);
        }
    }

    async fn record_reports(&mut self, claim: &Claim, reports: Vec<SendReport>) {
        let w = self.w.clone();
        let mut failed = Vec::new();
        let mut hold: Option<(Verdict, Reply)> = None;
        let mut last_reply = None;
        let status = w
            .spool
            .update(&claim.id, |s| {
                for r in &reports {
                    if let Some(reply) = &r.data_reply {
                        last_reply = Some(reply.to_string());
                    }
                    for a in &r.accepted {
                        set_recipient(s, a, RecipientState::Sent, r.data_reply.as_ref());
                    }
                    for (a, reply) in &r.rejected {
                        let v = super::classify::classify(Stage::RcptTo, reply);
                        match v.action {
                            Action::Hold => hold = Some((v, reply.clone())),
                            Action::FailRecipient | Action::FailMessage => {
                                set_recipient(s, a, RecipientState::Failed, Some(reply));
                                failed.push((a.clone(), reply.clone(), v));
                            }
                            _ => {}
                        }
                    }
                    for (a, reply) in &r.deferred {
                        set_recipient(s, a, RecipientState::Pending, Some(reply));
                    }
                }
                s.attempts += 1;
                s.last_reply = last_reply.clone();
                settle(s, &w, claim.received_at);
            })
            .await;
        let Ok(status) = status else { return };
        if let Some((v, reply)) = hold {
            w.hold(v, &reply.to_string(), "");
        } else if status.state == State::Sent || !reports.is_empty() {
            w.clear_hold();
            w.throttle.server_ok();
        }
        if let Some((_, reply, v)) = failed.first() {
            w.events.emit(Event::Failed {
                id: claim.id.clone(),
                recipients: failed.iter().map(|(a, _, _)| a.clone()).collect(),
                reply: reply.to_string(),
                summary: v.summary.to_string(),
                fix: v.fix.to_string(),
            });
        }
        self.announce(claim, &status);
    }

    async fn record_failure(&mut self, claim: &Claim, failure: Failure) {
        let w = self.w.clone();
        let (verdict, cause) = failure.verdict();
        let retry_after = failure.retry_after();
        let now = now_ms();
        let mut wait = None;
        // 554 5.2.0: Microsoft's count wins over ours; re-learn it.
        let quota_block = match verdict.action {
            Action::DeferQuota => w.throttle.quota_exceeded(w.config.delivery.retry_max),
            _ => Duration::ZERO,
        };
        if verdict.action == Action::Retry && failure.is_server_busy() {
            let d = &w.config.delivery;
            let pause = w.throttle.server_busy(d.retry_first, d.retry_max);
            tracing::info!(pause = %humantime::format_duration(pause), "Microsoft is busy; all connections back off");
        }
        match verdict.action {
            // RefreshAuth here means the refreshed token was refused too:
            // sign-in needed, which holds the queue like any admin fix.
            Action::Hold | Action::RefreshAuth => w.hold(verdict, &cause, failure.fix_override()),
            Action::ReduceConnections => {
                self.drop_connection();
                wait = Some(THREAD_LIMIT_BACKOFF);
            }
            _ => {}
        }
        let status = w
            .spool
            .update(&claim.id, |s| {
                s.last_reply = Some(cause.clone());
                s.summary = Some(verdict.summary.to_string());
                s.fix = Some(verdict.fix.to_string());
                match verdict.action {
                    Action::FailMessage | Action::FailRecipient => {
                        s.attempts += 1;
                        for r in &mut s.recipients {
                            if r.state == RecipientState::Pending {
                                r.state = RecipientState::Failed;
                                r.reply = Some(cause.clone());
                            }
                        }
                        settle(s, &w, claim.received_at);
                    }
                    Action::Hold | Action::RefreshAuth => {
                        s.state = State::Held;
                        s.next_attempt =
                            Some(now + w.config.delivery.hold_recheck.as_millis() as u64);
                    }
                    Action::DeferQuota => {
                        s.state = State::Deferred;
                        s.next_attempt = Some(now + quota_block.as_millis() as u64);
                    }
                    Action::Retry | Action::ReduceConnections => {
                        s.attempts += 1;
                        settle(s, &w, claim.received_at);
                        // Graph's Retry-After: exactly as long as asked.
                        if let (Some(d), State::Deferred) = (retry_after, s.state) {
                            s.next_attempt = Some(now + d.as_millis() as u64);
                        }
                    }
                }
            })
            .await;
        if let Ok(status) = status {
            if matches!(verdict.action, Action::FailMessage | Action::FailRecipient) {
                w.events.emit(Event::Failed {
                    id: claim.id.clone(),
                    recipients: claim.pending.clone(),
                    reply: cause.clone(),
                    summary: verdict.summary.to_string(),
                    fix: verdict.fix.to_string(),
                });
            }
            self.announce(claim, &status);
        }
        if let Some(d) = wait {
            // The back-off ends early at shutdown (it must not hold up
            // the engine's stop for a minute).
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = stopping(&mut shutdown) => {}
            }
        }
    }

    fn announce(&self, claim: &Claim, status: &Status) {
        let w = &self.w;
        match status.state {
            State::Sent => {
                tracing::info!(id = %claim.id, reply = status.last_reply.as_deref().unwrap_or(""), "sent");
                w.events.emit(Event::Sent {
                    id: claim.id.clone(),
                    reply: status.last_reply.clone().unwrap_or_default(),
                });
            }
            State::Deferred | State::Held => {
                let reason = status.last_reply.clone().unwrap_or_default();
                tracing::info!(id = %claim.id, %reason, "deferred");
                w.events.emit(Event::Deferred {
                    id: claim.id.clone(),
                    reason,
                    next_attempt_unix: status.next_attempt.unwrap_or(0) / 1000,
                });
            }
            State::Failed => {
                tracing::warn!(id = %claim.id, reply = status.last_reply.as_deref().unwrap_or(""), "failed");
            }
            State::Queued | State::Sending => {}
        }
    }
}
