//! Opening the spool after whatever happened before: rebuilding the index
//! from the files (a message left "sending" by a crash is queued again, a
//! half-written status is ignored), and the lock that keeps two engines off
//! one spool.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{
    io_err, subject_of, Entry, Envelope, MessageId, SpoolError, State, Status, HEADER_PEEK,
};

pub(super) fn load_index(msg_dir: &Path) -> Result<BTreeMap<MessageId, Entry>, SpoolError> {
    use std::io::{BufRead, Read};
    let mut index = BTreeMap::new();
    for item in std::fs::read_dir(msg_dir).map_err(io_err(msg_dir))? {
        let path = item.map_err(io_err(msg_dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".state.tmp") {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        let Some(stem) = name.strip_suffix(".msg") else {
            continue;
        };
        let Ok(id) = stem.parse::<MessageId>() else {
            continue;
        };
        let file = std::fs::File::open(&path).map_err(io_err(&path))?;
        let total = file.metadata().map_err(io_err(&path))?.len();
        let mut reader = io::BufReader::new(file);
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line).map_err(io_err(&path))?;
        let envelope: Envelope = match serde_json::from_slice(&line) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "unreadable message envelope; left in place");
                continue;
            }
        };
        let mut head = Vec::new();
        reader
            .take(HEADER_PEEK as u64)
            .read_to_end(&mut head)
            .map_err(io_err(&path))?;
        let state_path = msg_dir.join(format!("{id}.state"));
        let mut status = match std::fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %state_path.display(), error = %e, "unreadable status; message queued again");
                Status::new(&envelope)
            }),
            Err(_) => Status::new(&envelope),
        };
        if status.state == State::Sending {
            status.state = State::Queued;
        }
        index.insert(
            id,
            Entry::new(
                Arc::new(envelope),
                status,
                total - line.len() as u64,
                subject_of(&head),
                line.len() as u64,
            ),
        );
    }
    Ok(index)
}

/// An exclusive advisory lock on the spool's lock file, on every platform
/// (`flock` on Unix, `LockFileEx` on Windows), held while the file is open.
pub(super) fn try_lock(file: &std::fs::File) -> bool {
    file.try_lock().is_ok()
}

/// Only the user running Postern may read the spool: mode 0700 on Unix; on
/// Windows a protected DACL granting only the current user, which what is
/// created inside inherits.
#[cfg(unix)]
pub(super) fn restrict_permissions(dir: &Path) -> Result<(), SpoolError> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

#[cfg(windows)]
pub(super) fn restrict_permissions(dir: &Path) -> Result<(), SpoolError> {
    crate::platform::windows::restrict_to_me(dir).map_err(io_err(dir))
}

/// The spool must belong to the user running Postern: a spool directory
/// someone else owns (made by another account, or planted in a shared
/// place) could be read or changed by them, so it is refused.
#[cfg(unix)]
pub(super) fn check_owner(dir: &Path) -> Result<(), SpoolError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(io_err(dir))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(SpoolError::NotOwner {
            path: dir.to_path_buf(),
            owner: format!("uid {}", meta.uid()),
            me: format!("uid {me}"),
        });
    }
    Ok(())
}

/// On Windows the owner is a SID; the user's own, or the owner this process
/// gives what it creates (an elevated administrator's: Administrators).
#[cfg(windows)]
pub(super) fn check_owner(dir: &Path) -> Result<(), SpoolError> {
    use crate::platform::windows::{current_user_sid, is_me, path_owner};
    let owner = path_owner(dir).map_err(io_err(dir))?;
    if !is_me(&owner).map_err(io_err(dir))? {
        return Err(SpoolError::NotOwner {
            path: dir.to_path_buf(),
            owner,
            me: current_user_sid().map_err(io_err(dir))?,
        });
    }
    Ok(())
}
