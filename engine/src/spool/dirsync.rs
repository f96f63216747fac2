//! Group commit for directory fsyncs. After a rename, the directory must be
//! fsynced before the new name is durable. When many devices finish a
//! message at once, one fsync of the directory covers all of them: callers
//! queue up while a sync is under way and the next sync serves them all.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

/// Handle to the syncer task. The task ends when the last handle is dropped
/// (its request channel closes).
pub(super) struct DirSync {
    tx: mpsc::UnboundedSender<oneshot::Sender<Result<(), Arc<io::Error>>>>,
}

impl DirSync {
    pub(super) fn new(dir: PathBuf) -> DirSync {
        let (tx, rx) = mpsc::unbounded_channel();
        // The spool may be opened outside a runtime (spawn_blocking in open):
        // spawn onto the current runtime handle, which exists in both cases.
        tokio::runtime::Handle::current().spawn(run(dir, rx));
        DirSync { tx }
    }

    /// Returns once every rename done before this call is durable.
    pub(super) async fn sync(&self) -> io::Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(done_tx).is_err() {
            return Err(io::Error::other("spool is shutting down"));
        }
        match done_rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            Err(_) => Err(io::Error::other("spool is shutting down")),
        }
    }
}

async fn run(
    dir: PathBuf,
    mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), Arc<io::Error>>>>,
) {
    while let Some(first) = rx.recv().await {
        let mut waiters = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiters.push(more);
        }
        let d = dir.clone();
        let result = tokio::task::spawn_blocking(move || sync_dir(&d))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
            .map_err(Arc::new);
        for w in waiters {
            let _ = w.send(result.clone());
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &std::path::Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &std::path::Path) -> io::Result<()> {
    // NTFS makes renames durable with the file's own metadata journal;
    // directories cannot be opened for fsync on Windows.
    Ok(())
}
