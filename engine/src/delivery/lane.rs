//! One upstream connection slot ("lane") of the delivery worker: it claims
//! due messages, keeps an authenticated connection open across them (and
//! retires it when idle or when its sign-in ages), sends, and records what
//! happened. `Worker::run` starts `limits.max_connections` of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::classify::Action;
use super::outcome::{to_credentials, Failure};
use super::rewrite::{envelope_sender, rewrite_sender};
use super::route;
use super::send_as::{self, Sending};
use super::transcript::Transcript;
use super::upstream::{Connection, SendReport, UpstreamError};
use super::worker::{Worker, MAX_IDLE_WAIT};
use crate::auth::AccessToken;
use crate::config::SendAs;
use crate::events::{Event, PROGRESS_MIN_BYTES};
use crate::spool::{now_ms, Claim, State};
use crate::throttle::{Lease, Slot, Wait as ThrottleWait};

#[path = "lane_graph.rs"]
mod graph;
#[path = "lane_record.rs"]
mod record;

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
    /// The mailbox the open connection signed in for, and its share of
    /// that mailbox's concurrent connections.
    conn_lease: Option<(String, Lease)>,
    /// The mailbox the current message is sent from (`send_as`).
    sending: Sending,
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
            sending: Sending::configured(&w.config.upstream),
            w,
            index,
            conn: None,
            conn_token: None,
            conn_setup: Vec::new(),
            conn_lease: None,
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
            // A full minute window or a quota block holds every message
            // sent from the one mailbox: wait without claiming one.
            let one_mailbox = self.w.config.upstream.send_as == SendAs::Mailbox;
            if let Some(
                w @ (ThrottleWait::Minute(_) | ThrottleWait::Quota(_) | ThrottleWait::Busy(_)),
            ) = one_mailbox
                .then(|| self.w.throttle.wait_for(&self.w.config.upstream.mailbox, 1))
                .flatten()
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
            self.sending = send_as::resolve(&self.w.config.upstream, &self.w.spool, &claim).await;
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
                a = self.w.throttle.acquire(&self.sending.mailbox, first as u32, &self.shutdown) => a,
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
        self.conn_lease = None;
        if let Some(conn) = self.conn.take() {
            let mut t = Transcript::default();
            conn.quit(&mut t).await;
            *self.w.state.active.lock().unwrap() -= 1;
        }
    }

    fn drop_connection(&mut self) {
        self.conn_lease = None;
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
        let mailbox = self.sending.mailbox.clone();
        if self.conn_lease.as_ref().is_some_and(|(m, _)| *m != mailbox) {
            t.note(&format!(
                "this message is sent from {mailbox}: closing the connection signed in for another mailbox"
            ));
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
        // One of the mailbox's concurrent connections (Exchange: 3).
        let Some(lease) = self.w.throttle.lease(&mailbox, &self.shutdown).await else {
            return Err(Failure::Local("Postern is stopping".into()));
        };
        let mut refreshed = false;
        loop {
            let (creds, token) = match self.w.tokens.credentials().await {
                Ok(c) => to_credentials(c),
                Err(e) => return Err(Failure::Auth(e)),
            };
            let creds = self.sending.credentials(creds);
            let before = t.lines().len();
            match route::open_first(&targets, &creds, t).await {
                Ok(conn) => {
                    self.conn_setup = t.lines()[before..].to_vec();
                    self.conn = Some(conn);
                    self.conn_token = token;
                    self.conn_lease = Some((mailbox, lease));
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
                    if verdict.action == Action::RefreshAuth && !self.sending.own {
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
        if self.sending.rewrites(&w.config.upstream, claim) {
            content = rewrite_sender(&content, &w.config.upstream.mailbox);
            mail_from = w.config.upstream.mailbox.clone();
        } else if self.sending.own {
            // Its own mailbox: the envelope names the mailbox signed in.
            mail_from = self.sending.mailbox.clone();
        }
        let submission = w.config.upstream.mode == crate::config::UpstreamMode::Submission;
        let mail_from = envelope_sender(&mail_from, submission, &self.sending.mailbox);
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
                None => match w
                    .throttle
                    .acquire(&self.sending.mailbox, chunk.len() as u32, &self.shutdown)
                    .await
                {
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
                Ok(mut report) => {
                    report.sender = mail_from.to_string();
                    reports.push(report)
                }
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
}
