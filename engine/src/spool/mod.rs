//! The durable store: every message a device handed in, until it is
//! delivered or fails, plus a history of recent outcomes.
//!
//! On disk, under the spool directory:
//!
//! - `tmp/<id>.part` — a message being received. Deleted on start-up: a
//!   device that never heard 250 will send it again.
//! - `msg/<id>.msg` — one line of JSON (the envelope), then the content.
//!   Written to `tmp/`, fsynced, renamed here, then the directory is fsynced;
//!   only after that does the device hear 250. Never modified afterwards.
//! - `msg/<id>.state` — the delivery status (JSON), replaced atomically on
//!   each transition. Missing means "queued".
//! - `msg/<id>.log` — the upstream transcripts of every attempt, redacted.
//! - `lock` — held while an engine runs, so two engines never share a spool.
//!
//! Concurrent messages share directory fsyncs (group commit, `dirsync`).
//! The in-memory index is rebuilt from the files at start; a message left
//! "sending" by a crash is simply queued again.

mod dirsync;
mod incoming;
mod persist;
mod record;
mod recovery;
pub mod space;

pub use incoming::Incoming;
pub use record::{
    now_ms, ClientInfo, Envelope, Handoff, MessageId, MessageInfo, Outcome, Recipient,
    RecipientState, State, Status, Trace,
};

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::events::{Event, Events};
use dirsync::DirSync;
use recovery::{check_owner, load_index, restrict_permissions, try_lock};

/// Write buffer for incoming content: big enough to keep syscalls few, small
/// enough that 20 devices sending 25 MB each use little memory.
const WRITE_BUFFER: usize = 64 * 1024;
/// How long a held spool lock is tried again before the spool counts as
/// in use by another Postern (see `Spool::open_blocking`).
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);
/// How much of the start of a message is kept to read its Subject.
const HEADER_PEEK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the spool {0} is in use by another Postern (is `postern serve` or the tray app already running?)")]
    Locked(PathBuf),
    #[error("no message {0} in the queue")]
    NotFound(MessageId),
    #[error("message {0} is being sent right now; try again in a moment")]
    Busy(MessageId),
    /// `owner` and `me`: "uid 1000" on Unix, a SID on Windows.
    #[error("the spool {path} belongs to another user ({owner}, Postern runs as {me}); use a spool directory of your own (spool.dir), or fix its owner")]
    NotOwner {
        path: PathBuf,
        owner: String,
        me: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Entry {
    envelope: Arc<Envelope>,
    status: Status,
    size: u64,
    subject: String,
    /// The Message-ID, without angle brackets.
    message_id: Option<String>,
    /// Where the content starts in the .msg file (after the envelope line).
    content_offset: u64,
    /// Bumped under the index lock by every change of `status`.
    version: u64,
    /// The version last written to `<id>.state`. Whoever writes the status
    /// file holds this lock and writes the *current* status, so writes of
    /// one message never interleave and an older state can never land on
    /// disk after a newer one. Deleting a message takes it too, so no
    /// write recreates a file after the message is gone.
    written: Arc<tokio::sync::Mutex<u64>>,
}

impl Entry {
    fn new(
        envelope: Arc<Envelope>,
        status: Status,
        size: u64,
        (subject, message_id): (String, Option<String>),
        content_offset: u64,
    ) -> Entry {
        Entry {
            envelope,
            status,
            size,
            subject,
            message_id,
            content_offset,
            version: 0,
            written: Arc::new(tokio::sync::Mutex::new(0)),
        }
    }
}

impl Entry {
    fn info(&self, id: &MessageId) -> MessageInfo {
        MessageInfo {
            id: id.clone(),
            from: self.envelope.mail_from.clone(),
            to: self.envelope.rcpt_to.clone(),
            subject: self.subject.clone(),
            message_id: self.message_id.clone(),
            size: self.size,
            received_at: self.envelope.received_at,
            client: self.envelope.client.clone(),
            status: self.status.clone(),
        }
    }

    fn is_due(&self, now: u64) -> bool {
        match self.status.state {
            State::Queued => true,
            State::Deferred | State::Held => self.status.next_attempt.unwrap_or(0) <= now,
            _ => false,
        }
    }
}

struct Inner {
    dir: PathBuf,
    msg_dir: PathBuf,
    tmp_dir: PathBuf,
    /// The index. A std mutex: every critical section is short and never awaits.
    index: Mutex<BTreeMap<MessageId, Entry>>,
    /// Woken when a message becomes due (received, retried); the delivery
    /// worker waits on it.
    wake: Notify,
    dirsync: DirSync,
    events: Events,
    /// Whose turn it is (locked after `index`, never before).
    fairness: Mutex<Fairness>,
    /// The disk reserve in bytes (`spool.min_free`; 0 until set: `space`).
    min_free: std::sync::atomic::AtomicU64,
    /// Keeps the advisory lock for as long as the spool is open.
    _lock: std::fs::File,
    /// Places tests can hold a write at, to make races happen on purpose.
    #[cfg(test)]
    hooks: race_tests::Hooks,
}

/// When each sending device was last served, in claim turns.
#[derive(Default)]
struct Fairness {
    turn: u64,
    last_served: std::collections::HashMap<String, u64>,
}

/// Who sent a message, for fairness: the device user, else the IP address.
fn device_of(client: &ClientInfo) -> String {
    match &client.auth_user {
        Some(user) => format!("user:{user}"),
        None => client
            .peer
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| client.peer.clone()),
    }
}

/// A handle to the spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

/// A message claimed for delivery: the worker owns it until it reports back.
#[derive(Debug, Clone)]
pub struct Claim {
    pub id: MessageId,
    /// Send as the mailbox for this message (see `Status::rewrite_sender`).
    pub rewrite_sender: bool,
    pub envelope: Arc<Envelope>,
    /// Recipients still to deliver.
    pub pending: Vec<String>,
    pub attempts: u32,
    pub received_at: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir`, takes its lock, cleans
    /// up after a crash and loads the index.
    pub async fn open(dir: &Path, events: Events) -> Result<Spool, SpoolError> {
        let dir = dir.to_path_buf();
        let events2 = events.clone();
        tokio::task::spawn_blocking(move || Spool::open_blocking(dir, events2))
            .await
            .expect("spool open task panicked")
    }

    fn open_blocking(dir: PathBuf, events: Events) -> Result<Spool, SpoolError> {
        let msg_dir = dir.join("msg");
        let tmp_dir = dir.join("tmp");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        check_owner(&dir)?;
        for d in [&msg_dir, &tmp_dir] {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        restrict_permissions(&dir)?;
        let lock_path = dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        // Another Postern holds it for as long as it runs. Within this one,
        // an engine restarting in-process (settings saved, setup
        // cancelled) can find the lock still held for an instant by a
        // child process being started elsewhere in the program: between
        // fork and exec a child holds a copy of every descriptor, the lock
        // file's included. So a lock is tried again for a moment before
        // the spool counts as in use.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        while !try_lock(&lock) {
            if std::time::Instant::now() >= deadline {
                return Err(SpoolError::Locked(dir));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Half-received messages: their devices never heard 250.
        for entry in std::fs::read_dir(&tmp_dir).map_err(io_err(&tmp_dir))? {
            let path = entry.map_err(io_err(&tmp_dir))?.path();
            let _ = std::fs::remove_file(&path);
        }
        let index = load_index(&msg_dir)?;
        tracing::info!(dir = %dir.display(), messages = index.len(), "spool opened");
        Ok(Spool {
            inner: Arc::new(Inner {
                dirsync: DirSync::new(msg_dir.clone()),
                dir,
                msg_dir,
                tmp_dir,
                index: Mutex::new(index),
                fairness: Mutex::new(Fairness::default()),
                wake: Notify::new(),
                events,
                min_free: Default::default(),
                _lock: lock,
                #[cfg(test)]
                hooks: Default::default(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Every message in the spool, oldest first.
    pub fn list(&self) -> Vec<MessageInfo> {
        let index = self.inner.index.lock().unwrap();
        index.iter().map(|(id, e)| e.info(id)).collect()
    }

    pub fn get(&self, id: &MessageId) -> Option<MessageInfo> {
        self.inner.index.lock().unwrap().get(id).map(|e| e.info(id))
    }

    /// Counts per state.
    pub fn counts(&self) -> BTreeMap<State, usize> {
        let mut counts = BTreeMap::new();
        for e in self.inner.index.lock().unwrap().values() {
            *counts.entry(e.status.state).or_insert(0) += 1;
        }
        counts
    }

    /// Messages of which the message trace says a recipient bounced after
    /// Microsoft took it (the tracker).
    pub fn bounced_after_sending(&self) -> usize {
        self.inner
            .index
            .lock()
            .unwrap()
            .values()
            .filter(|e| {
                e.status.recipients.iter().any(|r| {
                    r.trace
                        .as_ref()
                        .is_some_and(|t| t.outcome == Outcome::Bounced)
                })
            })
            .count()
    }

    /// Claims the next message that is due now, marking it `Sending`.
    ///
    /// Round-robin by sending device (the device user when it logged in,
    /// else its IP address), oldest first within a device: one device's
    /// burst of 500 does not make the scanner that sends one scan now wait
    /// behind all of it at 30 a minute. Oldest-first across all senders
    /// would do exactly that.
    pub fn claim_next(&self, now: u64) -> Option<Claim> {
        let mut index = self.inner.index.lock().unwrap();
        let mut fair = self.inner.fairness.lock().unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut best: Option<(MessageId, String, u64)> = None;
        for (id, e) in index.iter().filter(|(_, e)| e.is_due(now)) {
            let device = device_of(&e.envelope.client);
            if !seen.insert(device.clone()) {
                continue;
            }
            let served = fair.last_served.get(&device).copied().unwrap_or(0);
            if best.as_ref().is_none_or(|(_, _, b)| served < *b) {
                best = Some((id.clone(), device, served));
            }
        }
        let (id, device, _) = best?;
        fair.turn += 1;
        let turn = fair.turn;
        fair.last_served.insert(device, turn);
        let entry = index.get_mut(&id).expect("just found");
        entry.status.state = State::Sending;
        Some(Claim {
            rewrite_sender: entry.status.rewrite_sender,
            id,
            envelope: entry.envelope.clone(),
            pending: entry.status.pending(),
            attempts: entry.status.attempts,
            received_at: entry.envelope.received_at,
        })
    }

    /// When the earliest deferred or held message becomes due (unix ms).
    pub fn next_due(&self) -> Option<u64> {
        let index = self.inner.index.lock().unwrap();
        index
            .values()
            .filter_map(|e| match e.status.state {
                State::Queued => Some(0),
                State::Deferred | State::Held => Some(e.status.next_attempt.unwrap_or(0)),
                _ => None,
            })
            .min()
    }

    /// Resolves when a message may have become due.
    pub async fn wait_for_work(&self) {
        self.inner.wake.notified().await
    }

    /// Wakes the delivery worker.
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// The message content (without the envelope line).
    pub async fn read_content(&self, id: &MessageId) -> Result<Vec<u8>, SpoolError> {
        let offset = {
            let index = self.inner.index.lock().unwrap();
            index
                .get(id)
                .ok_or_else(|| SpoolError::NotFound(id.clone()))?
                .content_offset
        };
        let path = self.msg_path(id);
        let mut file = tokio::fs::File::open(&path).await.map_err(io_err(&path))?;
        file.seek(io::SeekFrom::Start(offset))
            .await
            .map_err(io_err(&path))?;
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .await
            .map_err(io_err(&path))?;
        Ok(content)
    }

    /// Where the message content is: its file and the offset the content
    /// starts at (after the envelope line), for reading it piece by piece.
    pub fn content_location(&self, id: &MessageId) -> Result<(PathBuf, u64), SpoolError> {
        let offset = {
            let index = self.inner.index.lock().unwrap();
            index
                .get(id)
                .ok_or_else(|| SpoolError::NotFound(id.clone()))?
                .content_offset
        };
        Ok((self.msg_path(id), offset))
    }

    /// The content's size in bytes (the file without the envelope line).
    pub fn content_size(&self, id: &MessageId) -> Result<u64, SpoolError> {
        let (path, offset) = self.content_location(id)?;
        let len = std::fs::metadata(&path).map_err(io_err(&path))?.len();
        Ok(len.saturating_sub(offset))
    }

    /// Applies `change` to a message's status and persists it. Final states
    /// (sent, failed) are fsynced so a crash right after does not resend.
    pub async fn update(
        &self,
        id: &MessageId,
        change: impl FnOnce(&mut Status),
    ) -> Result<Status, SpoolError> {
        self.modify(id, |s| {
            change(s);
            Ok(())
        })
        .await
    }

    /// Appends one attempt's transcript to the message's log.
    pub async fn append_transcript(&self, id: &MessageId, text: &str) -> Result<(), SpoolError> {
        let path = self.inner.msg_dir.join(format!("{id}.log"));
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await
            .map_err(io_err(&path))?;
        f.write_all(text.as_bytes()).await.map_err(io_err(&path))?;
        if !text.ends_with('\n') {
            f.write_all(b"\n").await.map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// All transcripts recorded for a message (empty when none).
    pub async fn transcript(&self, id: &MessageId) -> String {
        let path = self.inner.msg_dir.join(format!("{id}.log"));
        tokio::fs::read_to_string(path).await.unwrap_or_default()
    }

    /// Makes a message due now: deferred, held and failed messages are tried
    /// again (failed recipients become pending again).
    pub async fn retry(&self, id: &MessageId) -> Result<(), SpoolError> {
        self.requeue(id, false).await
    }

    /// Tries a message again with sender rewriting on for it (the fix for
    /// 5.7.60 when Send As cannot be granted).
    pub async fn resend_rewritten(&self, id: &MessageId) -> Result<(), SpoolError> {
        self.requeue(id, true).await
    }

    /// Queues a message again in one status change, so no worker can claim
    /// it half-way (e.g. before `rewrite` is set).
    async fn requeue(&self, id: &MessageId, rewrite: bool) -> Result<(), SpoolError> {
        self.modify(id, |s| {
            // Checked in the same step as the change: a lane cannot claim
            // the message in between and then see it claimed again.
            if s.state == State::Sending {
                return Err(SpoolError::Busy(id.clone()));
            }
            let any_failed = s
                .recipients
                .iter()
                .any(|r| r.state == RecipientState::Failed);
            if s.state == State::Sent && !any_failed {
                return Ok(());
            }
            for r in &mut s.recipients {
                if r.state == RecipientState::Failed {
                    r.state = RecipientState::Pending;
                }
            }
            s.rewrite_sender |= rewrite;
            s.state = State::Queued;
            s.next_attempt = None;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// Makes every waiting or failed message due now; returns how many.
    pub async fn retry_all(&self) -> Result<usize, SpoolError> {
        let ids: Vec<MessageId> = {
            let index = self.inner.index.lock().unwrap();
            index
                .iter()
                .filter(|(_, e)| {
                    matches!(
                        e.status.state,
                        State::Deferred | State::Held | State::Failed | State::Queued
                    )
                })
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &ids {
            self.retry(id).await?;
        }
        Ok(ids.len())
    }

    /// Makes every held message due now; returns how many.
    pub async fn release_held(&self) -> Result<usize, SpoolError> {
        let ids: Vec<MessageId> = {
            let index = self.inner.index.lock().unwrap();
            index
                .iter()
                .filter(|(_, e)| e.status.state == State::Held)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in &ids {
            self.update(id, |s| {
                if s.state == State::Held {
                    s.state = State::Queued;
                    s.next_attempt = None;
                }
            })
            .await?;
        }
        Ok(ids.len())
    }

    /// Removes a message and its files.
    pub async fn delete(&self, id: &MessageId) -> Result<(), SpoolError> {
        let written = {
            let mut index = self.inner.index.lock().unwrap();
            match index.get(id) {
                None => return Err(SpoolError::NotFound(id.clone())),
                Some(e) if e.status.state == State::Sending => {
                    return Err(SpoolError::Busy(id.clone()))
                }
                Some(_) => index.remove(id).expect("just found").written,
            }
        };
        // A status write in flight finishes first; later ones find no entry.
        let _no_writes = written.lock().await;
        self.remove_files(id).await;
        self.inner.events.emit(Event::Deleted { id: id.clone() });
        Ok(())
    }

    async fn remove_files(&self, id: &MessageId) {
        // The .msg goes last: a crash in between leaves a message that is
        // still whole, never a status without content.
        for ext in ["log", "state", "msg"] {
            let _ = tokio::fs::remove_file(self.inner.msg_dir.join(format!("{id}.{ext}"))).await;
        }
    }

    /// Forgets sent and failed messages whose last change is older than
    /// `keep_ms` and that the tracker no longer follows (handed over less
    /// than `tracking_ms` ago, not done: kept); returns how many.
    pub async fn prune(&self, now: u64, keep_ms: u64, tracking_ms: u64) -> usize {
        let old: Vec<(MessageId, Arc<tokio::sync::Mutex<u64>>)> = {
            let mut index = self.inner.index.lock().unwrap();
            let old: Vec<MessageId> = index
                .iter()
                .filter(|(_, e)| {
                    e.status.state.is_final()
                        && e.status.updated_at + keep_ms <= now
                        && !e.status.is_tracked(now, tracking_ms)
                })
                .map(|(id, _)| id.clone())
                .collect();
            old.into_iter()
                .filter_map(|id| index.remove(&id).map(|e| (id, e.written)))
                .collect()
        };
        for (id, written) in &old {
            let _no_writes = written.lock().await;
            self.remove_files(id).await;
        }
        old.len()
    }

    fn msg_path(&self, id: &MessageId) -> PathBuf {
        self.inner.msg_dir.join(format!("{id}.msg"))
    }
}

/// The decoded Subject and the Message-ID (without angle brackets) of a
/// message, from its first bytes.
fn subject_of(head: &[u8]) -> (String, Option<String>) {
    match mail_parser::MessageParser::default().parse_headers(head) {
        Some(m) => (
            m.subject().map(str::to_string).unwrap_or_default(),
            m.message_id().map(str::to_string),
        ),
        None => (String::new(), None),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod race_tests;
