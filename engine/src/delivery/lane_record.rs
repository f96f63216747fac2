//! The lane's bookkeeping after an attempt: recording Microsoft's replies
//! and failures on the message (and the throttle of the mailbox it was
//! sent from: busy back-off, quota blocks), deferring a message that waits
//! for its mailbox's budget, and announcing the outcome as events.

use std::time::Duration;

use super::super::classify::{Action, Stage, Verdict};
use super::super::outcome::{set_recipient, settle, Failure};
use super::super::reply::Reply;
use super::super::upstream::SendReport;
use super::super::worker::THREAD_LIMIT_BACKOFF;
use super::{stopping, Lane};
use crate::events::Event;
use crate::spool::{now_ms, Claim, Handoff, RecipientState, State, Status};
use crate::throttle::Wait as ThrottleWait;

impl Lane {
    /// Defers a message that must wait for the recipient budget, a quota
    /// block or a busy server, rather than holding its claim meanwhile.
    pub(super) async fn wait_for_budget(&self, claim: &Claim, wait: ThrottleWait) {
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

    pub(super) async fn record_reports(&mut self, claim: &Claim, reports: Vec<SendReport>) {
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
                    // The first handoff: when and as whom, for the tracker.
                    if !r.accepted.is_empty() && s.handoff.is_none() {
                        s.handoff = Some(Handoff {
                            at: now_ms(),
                            sender: r.sender.clone(),
                        });
                    }
                    for (a, reply) in &r.rejected {
                        let v = super::super::classify::classify(Stage::RcptTo, reply);
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
            w.throttle.server_ok(&self.sending.mailbox);
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

    pub(super) async fn record_failure(&mut self, claim: &Claim, failure: Failure) {
        let w = self.w.clone();
        let (verdict, cause) = failure.verdict();
        // One sender's own mailbox refused: that message waits, the queue
        // does not (send_as = "sender").
        let verdict = self
            .sending
            .own_refusal(&failure, &verdict)
            .unwrap_or(verdict);
        let retry_after = failure.retry_after();
        let now = now_ms();
        let mut wait = None;
        // 554 5.2.0: Microsoft's count wins over ours; re-learn it.
        let quota_block = match verdict.action {
            Action::DeferQuota => w
                .throttle
                .quota_exceeded(&self.sending.mailbox, w.config.delivery.retry_max),
            _ => Duration::ZERO,
        };
        if verdict.action == Action::Retry && failure.is_server_busy() {
            let d = &w.config.delivery;
            let pause = w.throttle.server_busy(
                &self.sending.mailbox,
                d.retry_first,
                d.retry_max,
                retry_after,
            );
            tracing::info!(pause = %humantime::format_duration(pause), mailbox = %self.sending.mailbox, "Microsoft is busy; every connection for the mailbox backs off");
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

    pub(super) fn announce(&self, claim: &Claim, status: &Status) {
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
