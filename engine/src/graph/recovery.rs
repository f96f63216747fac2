//! What an earlier attempt of the draft route left, settled before the
//! next one sends anything (the rules in `docs/graph.md` § "The draft
//! route"): a draft whose `send` was posted without a known answer is
//! asked about — gone, or no longer a draft, means Microsoft took the
//! message and it is never sent again; a recorded draft is deleted; a
//! draft whose creation was never answered is found by Postern's tag and
//! deleted. [`delete_tagged`] also serves a message deleted from the queue.

use reqwest::Method;
use serde::Deserialize;

use super::client::{expect, GraphClient};
use super::draft_route::{local, Created, DraftJob};
use super::errors::{network_failure, GraphOutcome, Route};
use crate::delivery::Transcript;
use crate::secrets::Secret;
use crate::spool::MessageId;

#[derive(Deserialize)]
struct Listed {
    value: Vec<Created>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IsDraft {
    is_draft: bool,
}

/// What [`DraftJob::recover`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Leftover {
    Nothing,
    /// A draft left by an earlier attempt was deleted.
    Deleted,
    /// An earlier attempt's send reached Microsoft: the message is sent.
    AlreadySent,
}

impl DraftJob<'_> {
    /// Settles what an earlier attempt left (recorded in the status): a
    /// draft whose `send` was posted without a known answer is asked about
    /// (`GET`): gone, or no longer a draft, means Microsoft took the message
    /// — [`Leftover::AlreadySent`], never sent again; still a draft, or a
    /// draft never sent, is deleted.
    pub async fn recover(&self, t: &mut Transcript) -> Result<Leftover, GraphOutcome> {
        let Some(status) = self.spool.get(self.id).map(|m| m.status) else {
            return Ok(Leftover::Nothing);
        };
        let Some(old) = status.graph_draft else {
            if status.graph_draft_creating {
                return self.delete_untracked(t).await;
            }
            return Ok(Leftover::Nothing);
        };
        let url = self.client.user_url(self.mailbox, &["messages", &old]);
        if status.graph_send_posted {
            let mut ask = url.clone();
            ask.query_pairs_mut().append_pair("$select", "isDraft");
            let answer = self
                .client
                .request(Method::GET, ask, Some(self.token), None, t)
                .await?;
            let answer = expect(answer, &[200, 404], Route::Draft, t)?;
            let sent = answer.status == 404
                || !serde_json::from_slice::<IsDraft>(&answer.body)
                    .map_err(|_| network_failure())?
                    .is_draft;
            if sent {
                t.note(&format!(
                    "the send of draft {old} was posted by an earlier attempt and Graph no longer holds it as a draft: Microsoft took the message; it is not sent again"
                ));
                self.spool
                    .update(self.id, |s| {
                        s.graph_draft = None;
                        s.graph_send_posted = false;
                    })
                    .await
                    .map_err(|e| local("spool", e))?;
                return Ok(Leftover::AlreadySent);
            }
            t.note(&format!(
                "draft {old} is still a draft: its send did not reach Microsoft"
            ));
        }
        t.note(&format!(
            "an earlier attempt left draft {old}; deleting it first"
        ));
        let answer = self
            .client
            .request(Method::DELETE, url, Some(self.token), None, t)
            .await?;
        expect(answer, &[200, 204, 404], Route::Draft, t)?;
        self.spool
            .update(self.id, |s| {
                s.graph_draft = None;
                s.graph_send_posted = false;
            })
            .await
            .map_err(|e| local("spool", e))?;
        Ok(Leftover::Deleted)
    }

    /// A draft's creation got no answer: deletes every draft tagged with
    /// this message ([`super::draft::message_tag`]).
    async fn delete_untracked(&self, t: &mut Transcript) -> Result<Leftover, GraphOutcome> {
        t.note(
            "an earlier attempt got no answer when creating its draft; looking for it by its tag",
        );
        let n = delete_tagged(self.client, self.token, self.mailbox, self.id, t).await?;
        self.spool
            .update(self.id, |s| s.graph_draft_creating = false)
            .await
            .map_err(|e| local("spool", e))?;
        Ok(if n == 0 {
            Leftover::Nothing
        } else {
            Leftover::Deleted
        })
    }
}

/// Deletes every draft in `mailbox` tagged with spool message `id`
/// ([`super::draft::message_tag`]); returns how many there were.
pub async fn delete_tagged(
    client: &GraphClient,
    token: &Secret,
    mailbox: &str,
    id: &MessageId,
    t: &mut Transcript,
) -> Result<usize, GraphOutcome> {
    let mut url = client.user_url(mailbox, &["mailFolders", "drafts", "messages"]);
    url.query_pairs_mut()
        .append_pair(
            "$filter",
            &format!(
                "singleValueExtendedProperties/Any(ep: ep/id eq '{}' and ep/value eq '{}')",
                super::draft::MESSAGE_TAG,
                id.as_str()
            ),
        )
        .append_pair("$select", "id");
    let answer = client
        .request(Method::GET, url, Some(token), None, t)
        .await?;
    let answer = expect(answer, &[200], Route::Draft, t)?;
    let found: Listed = serde_json::from_slice(&answer.body).map_err(|_| network_failure())?;
    for d in &found.value {
        t.note(&format!("deleting draft {} left by that attempt", d.id));
        let url = client.user_url(mailbox, &["messages", &d.id]);
        let answer = client
            .request(Method::DELETE, url, Some(token), None, t)
            .await?;
        expect(answer, &[200, 204, 404], Route::Draft, t)?;
    }
    Ok(found.value.len())
}

/// A message deleted from the queue had a draft in the mailbox (recorded,
/// or being created): its tagged drafts are deleted so the mailbox does
/// not keep a half-sent scan. `Ok(n)`: how many; `Err`: in plain words
/// why they could not be, for the person who deleted it.
pub async fn drafts_of_deleted(
    config: &crate::config::Config,
    tokens: &crate::auth::TokenSource,
    mailbox: &str,
    id: &MessageId,
) -> Result<usize, String> {
    let left = |why: &str| {
        format!(
            "its draft could not be removed from {mailbox} ({why}): delete it in that mailbox's Drafts folder"
        )
    };
    let client = GraphClient::new(config).map_err(|e| left(&e.to_string()))?;
    let token = tokens.token().await.map_err(|e| left(&e.to_string()))?;
    let mut t = Transcript::default();
    delete_tagged(&client, &token.token, mailbox, id, &mut t)
        .await
        .map_err(|o| {
            let why = match &o.error {
                Some(e) => format!("{}: {}", e.code, e.message),
                None => o.verdict.summary.to_string(),
            };
            left(&why)
        })
}
