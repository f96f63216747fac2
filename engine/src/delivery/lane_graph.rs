//! A lane in Graph mode (`upstream.mode = "graph"`): instead of an SMTP
//! connection, one HTTP request per message to Microsoft Graph for all its
//! pending recipients, with the lane's usual bookkeeping. Graph's `202` is
//! recorded as Microsoft having taken the message for every recipient (as
//! an SMTP 250 is); any other answer by its verdict (`graph::errors`):
//! retry (after `Retry-After` when Graph gave one), hold the queue, fail
//! the message, or refresh the token once and then hold for a sign-in.
//! Messages whose base64 does not fit one request go by the draft route
//! (`graph::draft_route`).

use super::super::classify::{Action, Verdict};
use super::super::outcome::Failure;
use super::super::reply::Reply;
use super::super::transcript::Transcript;
use super::super::upstream::SendReport;
use super::Lane;
use crate::graph::client::{mime_body_len, GraphClient, MIME_ROUTE_LIMIT};
use crate::graph::draft_route::DraftJob;
use crate::graph::errors::{GraphError, GraphOutcome};
use crate::graph::json_route::JsonSent;
use crate::graph::recovery::Leftover;
use crate::spool::Claim;
use crate::throttle::Slot;

/// What a Graph delivery attempt is recorded with when Graph took it.
pub(super) fn accepted_reply() -> Reply {
    Reply {
        code: 202,
        enhanced: None,
        text: "Accepted by Microsoft Graph".into(),
    }
}

/// The Graph client could not be built (`upstream.ca_file` unreadable or
/// not PEM): nothing can go until the admin fixes the file.
fn client_unusable(problem: &str) -> GraphOutcome {
    GraphOutcome {
        verdict: Verdict {
            action: Action::Hold,
            summary: "Postern cannot set up its HTTPS connection to Microsoft Graph.",
            fix: "Check upstream.ca_file: it must be a readable file of PEM certificates (or remove the key); then restart Postern.",
        },
        retry_after: None,
        use_draft_route: false,
        status: None,
        error: Some(GraphError {
            code: "client".into(),
            message: problem.to_string(),
        }),
    }
}

impl Lane {
    /// One attempt at `claim` through Graph, its throttle `slot` reserved.
    pub(super) async fn deliver_graph(&mut self, claim: Claim, slot: Slot) {
        let w = self.w.clone();
        let mut t = Transcript::default();
        t.note(&format!(
            "attempt {} for message {} ({} recipient(s) pending), through Microsoft Graph as {}{}",
            claim.attempts + 1,
            claim.id,
            claim.pending.len(),
            self.sending.mailbox,
            if self.sending.own {
                " (the sender's own mailbox: upstream.send_as = \"sender\")"
            } else {
                ""
            }
        ));
        // One of the mailbox's concurrent requests (Graph: 4 per mailbox).
        let Some(lease) = w
            .throttle
            .lease(&self.sending.mailbox, &self.shutdown)
            .await
        else {
            w.throttle.release(slot);
            self.release(&claim).await;
            return;
        };
        let outcome = self.graph_transfer(&claim, &mut t).await;
        drop(lease);
        match &outcome {
            Ok(()) => w.throttle.accepted(slot).await,
            Err(_) => w.throttle.release(slot),
        }
        if let Err(e) = w.spool.append_transcript(&claim.id, &t.to_text()).await {
            tracing::warn!(id = %claim.id, error = %e, "could not save the transcript");
        }
        match outcome {
            Ok(()) => {
                let report = SendReport {
                    accepted: claim.pending.clone(),
                    rejected: Vec::new(),
                    deferred: Vec::new(),
                    data_reply: Some(accepted_reply()),
                    sender: self.sending.mailbox.clone(),
                };
                self.record_reports(&claim, vec![report]).await
            }
            Err(failure) => self.record_failure(&claim, failure).await,
        }
    }

    /// Sends the message to all its pending recipients; `Ok` when Graph
    /// answered `202`.
    async fn graph_transfer(&mut self, claim: &Claim, t: &mut Transcript) -> Result<(), Failure> {
        let w = self.w.clone();
        let client: GraphClient = match w.graph.as_ref().expect("graph mode") {
            Ok(c) => c.clone(),
            Err(e) => return Err(Failure::Graph(client_unusable(e))),
        };
        let u = &w.config.upstream;
        // The size decides the route before anything is read: a large
        // scan is never loaded whole.
        let size = w
            .spool
            .content_size(&claim.id)
            .map_err(|e| Failure::Local(e.to_string()))?;
        let mut draft = mime_body_len(size) > MIME_ROUTE_LIMIT;
        if draft {
            t.note(&format!(
                "the message ({size} bytes) is too large for one sendMail request (4 MB of base64): sending it as a draft"
            ));
        }
        let mut content = Vec::new();
        let mut refreshed = false;
        loop {
            let token = w.tokens.token().await.map_err(Failure::Auth)?;
            // What an earlier attempt left is settled first, whatever the
            // route this time: a send that reached Microsoft is not
            // repeated, a leftover draft is deleted.
            let job = self.draft_job(&client, claim, &token.token);
            let sent = match job.recover(t).await {
                Ok(Leftover::AlreadySent) => return Ok(()),
                Err(o) => Err(o),
                Ok(_) if draft => job.send(t).await,
                Ok(_) if !w.config.graph.save_to_sent_items => match job.send_json(t).await {
                    Ok(JsonSent::Sent) => Ok(()),
                    Ok(JsonSent::TooLarge) => {
                        draft = true;
                        continue;
                    }
                    Err(o) => Err(o),
                },
                Ok(_) => {
                    if content.is_empty() {
                        content = w
                            .spool
                            .read_content(&claim.id)
                            .await
                            .map_err(|e| Failure::Local(e.to_string()))?;
                        if self.sending.rewrites(u, claim) {
                            content = super::super::rewrite::rewrite_sender(&content, &u.mailbox);
                        }
                    }
                    client
                        .send_mime(
                            &self.sending.mailbox,
                            &token.token,
                            &content,
                            &claim.pending,
                            t,
                        )
                        .await
                }
            };
            let outcome: GraphOutcome = match sent {
                Ok(()) => return Ok(()),
                Err(o) => o,
            };
            if outcome.use_draft_route && !draft {
                t.note("Microsoft Graph found the message too large for sendMail: sending it as a draft");
                draft = true;
                continue;
            }
            if outcome.verdict.action == Action::RefreshAuth {
                if !refreshed {
                    t.note("Microsoft Graph refused the token; fetching a fresh one and trying once more");
                    w.tokens.invalidate().await;
                    refreshed = true;
                    continue;
                }
                let cause = super::super::outcome::graph_cause(&outcome);
                w.tokens.mark_sign_in_needed(&cause).await;
            }
            return Err(Failure::Graph(outcome));
        }
    }
}

impl Lane {
    /// The draft route ([`crate::graph::draft_route`]) for `claim`.
    fn draft_job<'a>(
        &'a self,
        client: &'a GraphClient,
        claim: &'a Claim,
        token: &'a crate::secrets::Secret,
    ) -> DraftJob<'a> {
        let u = &self.w.config.upstream;
        let rewrite = self.sending.rewrites(u, claim);
        DraftJob {
            client,
            token,
            mailbox: &self.sending.mailbox,
            spool: &self.w.spool,
            id: &claim.id,
            envelope: &claim.pending,
            rewrite_from: rewrite.then_some(u.mailbox.as_str()),
            save_to_sent_items: self.w.config.graph.save_to_sent_items,
        }
    }
}
