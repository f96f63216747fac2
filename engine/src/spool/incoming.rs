//! A message being received: its part file in `tmp/`, written through a
//! buffer as DATA arrives, then made durable and queued by `commit` (only
//! then may the device hear 250), or given up by `discard` (or, as a
//! fallback, by dropping it), which removes the part file off the async
//! threads.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufWriter};

use super::{
    io_err, now_ms, subject_of, Entry, Envelope, MessageId, Spool, SpoolError, Status, HEADER_PEEK,
    WRITE_BUFFER,
};
use crate::events::Event;

impl Spool {
    /// Starts receiving a message with this envelope.
    pub async fn begin(&self, mut envelope: Envelope) -> Result<Incoming, SpoolError> {
        let id = MessageId::generate();
        envelope.received_at = now_ms();
        let tmp_path = self.inner.tmp_dir.join(format!("{id}.part"));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await
            .map_err(io_err(&tmp_path))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut line = serde_json::to_vec(&envelope).expect("envelope serialises");
        line.push(b'\n');
        writer.write_all(&line).await.map_err(io_err(&tmp_path))?;
        Ok(Incoming {
            spool: self.clone(),
            id,
            envelope,
            tmp_path,
            file: Some(writer),
            content_offset: line.len() as u64,
            size: 0,
            head: Vec::new(),
        })
    }
}

/// A message being received. Dropping it without `commit` discards it.
pub struct Incoming {
    pub(super) spool: Spool,
    pub(super) id: MessageId,
    pub(super) envelope: Envelope,
    pub(super) tmp_path: PathBuf,
    pub(super) file: Option<BufWriter<tokio::fs::File>>,
    pub(super) content_offset: u64,
    pub(super) size: u64,
    pub(super) head: Vec<u8>,
}

impl Incoming {
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// Content bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends content (already CRLF-normalised and dot-unstuffed).
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), SpoolError> {
        if self.head.len() < HEADER_PEEK {
            let take = chunk.len().min(HEADER_PEEK - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.size += chunk.len() as u64;
        let file = self.file.as_mut().expect("write after commit");
        file.write_all(chunk).await.map_err(io_err(&self.tmp_path))
    }

    /// Makes the message durable and queues it. Only after this returns
    /// `Ok` may the device hear 250.
    pub async fn commit(mut self) -> Result<MessageId, SpoolError> {
        let mut writer = self.file.take().expect("commit twice");
        writer.flush().await.map_err(io_err(&self.tmp_path))?;
        let file = writer.into_inner();
        file.sync_all().await.map_err(io_err(&self.tmp_path))?;
        drop(file);
        let inner = &self.spool.inner;
        let final_path = inner.msg_dir.join(format!("{}.msg", self.id));
        tokio::fs::rename(&self.tmp_path, &final_path)
            .await
            .map_err(io_err(&final_path))?;
        // From here the file is no longer ours to delete on drop.
        self.tmp_path = PathBuf::new();
        inner.dirsync.sync().await.map_err(io_err(&final_path))?;

        let envelope = std::mem::take(&mut self.envelope);
        let status = Status::new(&envelope);
        let entry = Entry::new(
            Arc::new(envelope),
            status,
            self.size,
            subject_of(&self.head),
            self.content_offset,
        );
        inner.events.emit(Event::Received {
            id: self.id.clone(),
            from: entry.envelope.mail_from.clone(),
            recipients: entry.envelope.rcpt_to.len(),
            bytes: self.size,
        });
        inner.index.lock().unwrap().insert(self.id.clone(), entry);
        self.spool.wake();
        Ok(self.id.clone())
    }
}

impl Incoming {
    /// Gives up the message: its part file is removed before this returns
    /// (off the async threads). The listener's way to drop a refused one.
    pub async fn discard(mut self) {
        let path = std::mem::take(&mut self.tmp_path);
        drop(self.file.take());
        if !path.as_os_str().is_empty() {
            let _ = tokio::fs::remove_file(&path).await;
        }
    }
}

/// The fallback for an `Incoming` dropped without `commit` or `discard`
/// (a device that vanished mid-DATA): the part file is removed on the
/// blocking pool when a runtime is there, never on an async thread.
impl Drop for Incoming {
    fn drop(&mut self) {
        if self.tmp_path.as_os_str().is_empty() {
            return;
        }
        let path = std::mem::take(&mut self.tmp_path);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(move || {
                    let _ = std::fs::remove_file(&path);
                });
            }
            Err(_) => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}
