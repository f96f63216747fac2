//! Writing a message's status: checked and changed under the index lock,
//! then persisted so that writes of one message never interleave and an
//! older state can never land on disk after a newer one (each write holds
//! the message's `written` lock and writes the *current* status, under a
//! temporary name unique to its version).

use std::io;

use super::{io_err, now_ms, MessageId, Spool, SpoolError, State, Status};

impl Spool {
    /// Checks and changes a message's status in one step under the index
    /// lock (`change` may refuse with an error, leaving it as it was), then
    /// persists it. A change that changes nothing writes nothing.
    pub(super) async fn modify(
        &self,
        id: &MessageId,
        change: impl FnOnce(&mut Status) -> Result<(), SpoolError>,
    ) -> Result<Status, SpoolError> {
        let (status, written) = {
            let mut index = self.inner.index.lock().unwrap();
            let entry = index
                .get_mut(id)
                .ok_or_else(|| SpoolError::NotFound(id.clone()))?;
            let mut next = entry.status.clone();
            change(&mut next)?;
            if next == entry.status {
                return Ok(next);
            }
            next.updated_at = now_ms();
            entry.status = next;
            entry.version += 1;
            (entry.status.clone(), entry.written.clone())
        };
        self.persist(id, &written).await?;
        if matches!(status.state, State::Queued) || status.next_attempt.is_some() {
            self.wake();
        }
        Ok(status)
    }

    /// Writes the message's current status unless a write of it (or of a
    /// newer one) has already finished.
    async fn persist(
        &self,
        id: &MessageId,
        written: &tokio::sync::Mutex<u64>,
    ) -> Result<(), SpoolError> {
        let mut done = written.lock().await;
        #[cfg(test)]
        self.inner.hooks.before_write().await;
        let current = {
            let index = self.inner.index.lock().unwrap();
            index.get(id).map(|e| (e.status.clone(), e.version))
        };
        let Some((status, version)) = current else {
            return Ok(()); // deleted meanwhile
        };
        if version <= *done {
            return Ok(());
        }
        self.write_status(id, &status, version, status.state.is_final())
            .await?;
        *done = version;
        Ok(())
    }

    /// Replaces the status file. The rename comes first so that a process
    /// killed right after sees the new state on restart (the window in which
    /// a delivered message could be sent twice stays as short as a write and
    /// a rename); for final states the file and directory are then fsynced
    /// so the state also survives a power cut. Should a power cut leave the
    /// file unreadable, the message is queued again: possibly sent twice,
    /// never lost.
    async fn write_status(
        &self,
        id: &MessageId,
        status: &Status,
        version: u64,
        durable: bool,
    ) -> Result<(), SpoolError> {
        let path = self.inner.msg_dir.join(format!("{id}.state"));
        // Unique per version; recovery removes leftovers (`*.state.tmp`).
        let tmp = self.inner.msg_dir.join(format!("{id}.{version}.state.tmp"));
        let mut persisted = status.clone();
        if persisted.state == State::Sending {
            persisted.state = State::Queued;
        }
        let bytes = serde_json::to_vec_pretty(&persisted).expect("status serialises");
        let (tmp2, path2) = (tmp.clone(), path.clone());
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::write(&tmp2, &bytes)?;
            std::fs::rename(&tmp2, &path2)?;
            if durable {
                std::fs::File::open(&path2)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .expect("status write task panicked")
        .map_err(io_err(&tmp))?;
        if durable {
            self.inner.dirsync.sync().await.map_err(io_err(&path))?;
        }
        Ok(())
    }
}
