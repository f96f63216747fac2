//! The draft route, with its I/O: for a message whose base64 does not fit
//! one `sendMail` request. The stored message is scanned (never loaded
//! whole), a draft created with exactly the envelope's recipients, its id
//! written to the message's spool status before anything is uploaded, the
//! small attachments added in one request each, the large ones through an
//! upload session in ranges of [`UPLOAD_RANGE`] bytes — sent without an
//! Authorization header, resumed from `nextExpectedRanges` after a dropped
//! connection — then the draft is sent. A draft left by an earlier attempt
//! (a crash, a failure whose clean-up did not get through) is deleted
//! first; a failure part way deletes the draft. The rules are in
//! `docs/graph.md` § "The draft route".

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use reqwest::Method;
use serde::Deserialize;

use super::client::{expect, GraphClient};
use super::draft::{draft, file_attachment, AttachmentRoute, GraphRecipient, INLINE_LIMIT};
use super::errors::{network_failure, GraphOutcome, Route};
use super::mime_decode::{chunks, decoded_size, Chunks};
use super::mime_scan::{scan, AttachmentPart, ScanPlan};
use crate::delivery::classify::{Action, Verdict};
use crate::delivery::Transcript;
use crate::secrets::Secret;
use crate::spool::{MessageId, Spool};

/// The size of each upload range: 12 × 320 KiB (Graph wants multiples of
/// 320 KiB), under Graph's 4 MB per request.
pub const UPLOAD_RANGE: usize = 12 * 320 * 1024;

/// How often one range is sent again after a dropped connection.
const RANGE_TRIES: usize = 3;

/// One message to send by the draft route.
pub struct DraftJob<'a> {
    pub client: &'a GraphClient,
    pub token: &'a Secret,
    /// The mailbox in the URL (the sender).
    pub mailbox: &'a str,
    pub spool: &'a Spool,
    pub id: &'a MessageId,
    /// This delivery's recipients.
    pub envelope: &'a [String],
    /// Sender rewriting: the From becomes this mailbox, the device's From
    /// moves to Reply-To.
    pub rewrite_from: Option<&'a str>,
    /// `graph.save_to_sent_items`: off, the draft is marked to leave no
    /// copy in Sent Items ([`super::draft::no_sent_copy`]).
    pub save_to_sent_items: bool,
}

/// A scanned message, ready to go as a draft or as JSON `sendMail`.
pub(super) struct Prepared {
    pub plan: ScanPlan,
    pub sizes: Vec<u64>,
    pub draft: super::draft::Draft,
    pub path: std::path::PathBuf,
    pub base: u64,
}

/// The message content of a spool file: offsets count from the content's
/// first byte (after the envelope line).
struct Window {
    file: File,
    base: u64,
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf)
    }
}

impl Seek for Window {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let at = match pos {
            SeekFrom::Start(n) => self.file.seek(SeekFrom::Start(self.base + n))?,
            other => self.file.seek(other)?,
        };
        Ok(at.saturating_sub(self.base))
    }
}

fn open(path: &Path, base: u64) -> std::io::Result<Window> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(base))?;
    Ok(Window { file, base })
}

pub(super) fn local(what: &str, e: impl std::fmt::Display) -> GraphOutcome {
    let mut o = network_failure();
    o.verdict = Verdict {
        action: Action::Retry,
        summary: "Postern could not read the message from its spool.",
        fix: "Check the disk holding the spool directory.",
    };
    o.error = Some(super::errors::GraphError {
        code: what.into(),
        message: e.to_string(),
    });
    o
}

fn unreadable(e: impl std::fmt::Display) -> GraphOutcome {
    let mut o = local("scan", e);
    o.verdict = Verdict {
        action: Action::FailMessage,
        summary: "Postern could not take the message apart to send it as a draft: it is not well-formed MIME.",
        fix: "Read the problem in the message's transcript; have the device send it again, or send it smaller than 3 MB so that it goes whole.",
    };
    o
}

/// The verdict when creating the draft is refused for want of
/// `Mail.ReadWrite`: this message fails, explained; smaller ones go on.
fn no_read_write(mut o: GraphOutcome) -> GraphOutcome {
    o.verdict = Verdict {
        action: Action::FailMessage,
        summary: "This message is too large for one Microsoft Graph request (4 MB), and sending it as a draft needs the Mail.ReadWrite permission, which the app does not have.",
        fix: "In Microsoft Entra ID, App registrations → Postern's app → API permissions, add the Application permission Mail.ReadWrite and click Grant admin consent; then retry the message from the queue. Messages under about 3 MB do not need it.",
    };
    o
}

/// True when the token says what it may do and Mail.ReadWrite is not in it.
fn lacks_read_write(token: &Secret) -> bool {
    match crate::auth::claims::decode(token.expose()) {
        // App-only tokens list roles, delegated ones scopes (scp).
        Ok(c) => {
            let granted: Vec<&String> = c.roles.iter().chain(&c.scopes).collect();
            !granted.is_empty()
                && !granted
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case("Mail.ReadWrite"))
        }
        Err(_) => false,
    }
}

#[derive(Deserialize)]
pub(super) struct Created {
    pub id: String,
}

/// How the steps after creating the draft failed.
enum Failed {
    /// Before the send, or Graph refused the send: delete the draft.
    Before(GraphOutcome),
    /// The send got no answer: Microsoft may have it; keep the draft id.
    SendUnanswered(GraphOutcome),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Session {
    upload_url: String,
    #[serde(default)]
    next_expected_ranges: Vec<String>,
}

/// The first offset of `nextExpectedRanges` (`"123-"` or `"123-456"`).
fn next_offset(body: &[u8]) -> Option<u64> {
    let s: Session = serde_json::from_slice(body).ok().or_else(|| {
        // A progress answer has no uploadUrl.
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Progress {
            next_expected_ranges: Vec<String>,
        }
        let p: Progress = serde_json::from_slice(body).ok()?;
        Some(Session {
            upload_url: String::new(),
            next_expected_ranges: p.next_expected_ranges,
        })
    })?;
    let first = s.next_expected_ranges.first()?;
    first.split('-').next()?.trim().parse().ok()
}

impl DraftJob<'_> {
    /// Sends the message by the draft route; `Ok` when Graph answered the
    /// final `send` with `202`.
    /// [`Self::recover`] must have run first in this attempt.
    pub async fn send(&self, t: &mut Transcript) -> Result<(), GraphOutcome> {
        let Prepared {
            plan,
            sizes,
            draft: mut d,
            path,
            base,
        } = self.prepare(t).await?;
        if !self.save_to_sent_items {
            d.message
                .single_value_extended_properties
                .push(super::draft::no_sent_copy());
            t.note("graph.save_to_sent_items is off: the draft is marked to leave no copy in Sent Items");
        }
        t.note(&format!(
            "draft route: {} attachment(s), {} bytes decoded",
            plan.attachments.len(),
            sizes.iter().sum::<u64>()
        ));
        d.message
            .single_value_extended_properties
            .push(super::draft::message_tag(self.id.as_str()));
        let body = serde_json::to_vec(&d.message).expect("the draft serialises");
        let url = self.client.user_url(self.mailbox, &["messages"]);
        // Marked before the request: a draft created without Postern
        // hearing of it is found by its tag at the next attempt.
        self.spool
            .update(self.id, |s| s.graph_draft_creating = true)
            .await
            .map_err(|e| local("spool", e))?;
        let answer = self.client.post_json(url, self.token, body, t).await?;
        let created = match expect(answer, &[201], Route::Draft, t) {
            Ok(a) => a,
            Err(o) => {
                // Graph answered, and not 201: no draft was made.
                let _ = self
                    .spool
                    .update(self.id, |s| s.graph_draft_creating = false)
                    .await;
                if o.status == Some(403) && lacks_read_write(self.token) {
                    return Err(no_read_write(o));
                }
                return Err(o);
            }
        };
        let draft_id = serde_json::from_slice::<Created>(&created.body)
            .map_err(|_| network_failure())?
            .id;
        // Known before anything is uploaded: a crash from here on leaves a
        // draft the next attempt finds and deletes.
        self.spool
            .update(self.id, |s| {
                s.graph_draft = Some(draft_id.clone());
                s.graph_draft_creating = false;
            })
            .await
            .map_err(|e| local("spool", e))?;
        t.note(&format!("draft {draft_id} created and recorded"));
        let result = self
            .fill_and_send(&draft_id, &plan, &d.attachments, &path, base, t)
            .await;
        match result {
            Ok(()) => {
                let _ = self
                    .spool
                    .update(self.id, |s| {
                        s.graph_draft = None;
                        s.graph_send_posted = false;
                    })
                    .await;
                Ok(())
            }
            Err(Failed::SendUnanswered(o)) => {
                t.note(&format!(
                    "no answer to the send of draft {draft_id}: Microsoft may have taken it; the next attempt asks Graph before sending anything"
                ));
                Err(o)
            }
            Err(Failed::Before(o)) => {
                self.delete_draft(&draft_id, t).await;
                Err(o)
            }
        }
    }

    /// Scans the stored message and builds its draft (recipients, sender
    /// rewriting), noting what changed in the transcript.
    pub(super) async fn prepare(&self, t: &mut Transcript) -> Result<Prepared, GraphOutcome> {
        let (path, base) = self
            .spool
            .content_location(self.id)
            .map_err(|e| local("spool", e))?;
        let (plan, sizes) = {
            let path = path.to_path_buf();
            tokio::task::spawn_blocking(move || -> Result<_, GraphOutcome> {
                let w = open(&path, base).map_err(|e| local("spool", e))?;
                let plan = scan(BufReader::new(w)).map_err(unreadable)?;
                let mut sizes = Vec::new();
                for a in &plan.attachments {
                    let w = open(&path, base).map_err(|e| local("spool", e))?;
                    sizes.push(decoded_size(w, a.range.clone(), a.encoding).map_err(unreadable)?);
                }
                Ok((plan, sizes))
            })
            .await
            .map_err(|e| local("scan", e))??
        };
        let mut d = draft(&plan, &sizes, self.envelope);
        for note in &d.notes {
            t.note(note);
        }
        if let Some(mailbox) = self.rewrite_from {
            let original = d.message.from.take();
            if d.message.reply_to.is_empty() {
                d.message.reply_to.extend(original);
            }
            d.message.from = Some(GraphRecipient {
                email_address: super::draft::EmailAddress {
                    address: mailbox.to_string(),
                    name: None,
                },
            });
            t.note(&format!(
                "sender rewriting: From is {mailbox}, the device's From moves to Reply-To"
            ));
        }
        Ok(Prepared {
            plan,
            sizes,
            draft: d,
            path: path.to_path_buf(),
            base,
        })
    }

    async fn fill_and_send(
        &self,
        draft_id: &str,
        plan: &ScanPlan,
        routes: &[AttachmentRoute],
        path: &Path,
        base: u64,
        t: &mut Transcript,
    ) -> Result<(), Failed> {
        for (part, route) in plan.attachments.iter().zip(routes) {
            match route {
                AttachmentRoute::Inline => self
                    .inline(draft_id, part, path, base, t)
                    .await
                    .map_err(Failed::Before)?,
                AttachmentRoute::Upload(req) => self
                    .upload(draft_id, part, req, path, base, t)
                    .await
                    .map_err(Failed::Before)?,
            }
        }
        // Recorded before the request: from here a crash or a lost answer
        // leaves "maybe sent", which the next attempt settles by asking.
        self.spool
            .update(self.id, |s| s.graph_send_posted = true)
            .await
            .map_err(|e| Failed::Before(local("spool", e)))?;
        let url = self
            .client
            .user_url(self.mailbox, &["messages", draft_id, "send"]);
        let answer = match self
            .client
            .request(Method::POST, url, Some(self.token), None, t)
            .await
        {
            Ok(a) => a,
            Err(o) => return Err(Failed::SendUnanswered(o)),
        };
        match expect(answer, &[202], Route::Draft, t) {
            Ok(_) => Ok(()),
            Err(o) => {
                // Graph answered, and not 202: the send did not happen.
                let _ = self
                    .spool
                    .update(self.id, |s| s.graph_send_posted = false)
                    .await;
                Err(Failed::Before(o))
            }
        }
    }

    async fn inline(
        &self,
        draft_id: &str,
        part: &AttachmentPart,
        path: &Path,
        base: u64,
        t: &mut Transcript,
    ) -> Result<(), GraphOutcome> {
        let decoded = decode_small(part, path, base).await?;
        let body = serde_json::to_vec(&file_attachment(part, &decoded)).expect("serialises");
        drop(decoded);
        let url = self
            .client
            .user_url(self.mailbox, &["messages", draft_id, "attachments"]);
        let answer = self.client.post_json(url, self.token, body, t).await?;
        expect(answer, &[201], Route::Draft, t).map(|_| ())
    }

    async fn upload(
        &self,
        draft_id: &str,
        part: &AttachmentPart,
        req: &super::draft::UploadSessionRequest,
        path: &Path,
        base: u64,
        t: &mut Transcript,
    ) -> Result<(), GraphOutcome> {
        let total = req.attachment_item.size;
        let url = self.client.user_url(
            self.mailbox,
            &["messages", draft_id, "attachments", "createUploadSession"],
        );
        let body = serde_json::to_vec(req).expect("serialises");
        let answer = self.client.post_json(url, self.token, body, t).await?;
        let answer = expect(answer, &[200, 201], Route::Draft, t)?;
        let session: Session =
            serde_json::from_slice(&answer.body).map_err(|_| network_failure())?;
        let upload_url = url::Url::parse(&session.upload_url).map_err(|_| network_failure())?;
        t.note(&format!(
            "uploading {} ({total} bytes) in ranges of {UPLOAD_RANGE} bytes",
            part.name
        ));
        let w = open(path, base).map_err(|e| local("spool", e))?;
        let mut pieces: Option<Chunks<Window>> = Some(
            chunks(w, part.range.clone(), part.encoding, UPLOAD_RANGE)
                .map_err(|e| local("decode", e))?,
        );
        let mut offset: u64 = 0;
        while offset < total {
            let mut it = pieces.take().expect("the chunks are back");
            let (it, next) = tokio::task::spawn_blocking(move || {
                let n = it.next();
                (it, n)
            })
            .await
            .map_err(|e| local("decode", e))?;
            pieces = Some(it);
            let chunk = match next {
                Some(Ok(c)) => c,
                Some(Err(e)) => return Err(unreadable(e)),
                None => return Err(unreadable("the attachment ended before its size")),
            };
            let end = offset + chunk.len() as u64;
            let mut from = offset;
            let mut tries = 0;
            // Send [from, end) until Graph expects `end` (or is done).
            while from < end {
                let piece = chunk[(from - offset) as usize..].to_vec();
                let range = format!("bytes {from}-{}/{total}", end - 1);
                let sent = self
                    .client
                    .request_with(
                        Method::PUT,
                        upload_url.clone(),
                        None,
                        Some(("application/octet-stream", piece)),
                        &[("Content-Range", range)],
                        t,
                    )
                    .await;
                match sent {
                    Ok(a) => {
                        let a = expect(a, &[200, 201], Route::Draft, t)?;
                        if a.status == 201 {
                            // The last range: the attachment is complete.
                            offset = total.max(end);
                            break;
                        }
                        from = next_offset(&a.body).unwrap_or(end);
                    }
                    Err(o) => {
                        tries += 1;
                        if tries >= RANGE_TRIES {
                            return Err(o);
                        }
                        t.note("the upload broke off; asking Graph where to resume");
                        let a = self
                            .client
                            .request(Method::GET, upload_url.clone(), None, None, t)
                            .await?;
                        let a = expect(a, &[200], Route::Draft, t)?;
                        from = next_offset(&a.body).ok_or_else(network_failure)?;
                    }
                }
                if from < offset || from > end {
                    t.note(&format!(
                        "Graph expects byte {from}, outside the range just sent; starting over later"
                    ));
                    return Err(network_failure());
                }
            }
            offset = offset.max(end);
        }
        Ok(())
    }

    /// Deletes this attempt's draft after a failure; when that does not get
    /// through, the id stays recorded for the next attempt.
    async fn delete_draft(&self, draft_id: &str, t: &mut Transcript) {
        let url = self.client.user_url(self.mailbox, &["messages", draft_id]);
        let gone = match self
            .client
            .request(Method::DELETE, url, Some(self.token), None, t)
            .await
        {
            Ok(a) => expect(a, &[200, 204, 404], Route::Draft, t).is_ok(),
            Err(_) => false,
        };
        if gone {
            let _ = self.spool.update(self.id, |s| s.graph_draft = None).await;
        } else {
            t.note(&format!(
                "draft {draft_id} could not be deleted now; the next attempt deletes it"
            ));
        }
    }
}

/// The decoded bytes of an attachment under [`INLINE_LIMIT`], read from
/// the spool file off the async threads.
pub(super) async fn decode_small(
    part: &AttachmentPart,
    path: &Path,
    base: u64,
) -> Result<Vec<u8>, GraphOutcome> {
    let (path, range, enc) = (path.to_path_buf(), part.range.clone(), part.encoding);
    tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        for c in chunks(open(&path, base)?, range, enc, INLINE_LIMIT as usize)? {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    })
    .await
    .map_err(|e| local("decode", e))?
    .map_err(unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_multiples_of_320_kib_under_4_mb() {
        assert_eq!(UPLOAD_RANGE, 3_932_160);
        const { assert!(UPLOAD_RANGE.is_multiple_of(320 * 1024)) };
        const { assert!(UPLOAD_RANGE < 4 * 1024 * 1024) };
    }

    #[test]
    fn next_expected_ranges() {
        assert_eq!(
            next_offset(br#"{"nextExpectedRanges":["3932160-"]}"#),
            Some(3_932_160)
        );
        assert_eq!(
            next_offset(br#"{"uploadUrl":"x","nextExpectedRanges":["0-"]}"#),
            Some(0)
        );
        assert_eq!(
            next_offset(br#"{"nextExpectedRanges":["12-99"]}"#),
            Some(12)
        );
        assert_eq!(next_offset(b"{}"), None);
    }
}
