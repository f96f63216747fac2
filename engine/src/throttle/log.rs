//! The throttle's history file in the spool: one line per accepted
//! submission, `<unix ms> <recipients> <mailbox>`. Lines written before
//! submissions were counted per mailbox have no mailbox: they are the
//! configured mailbox's. Rewritten compactly at start, appended to after.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the file: when, how many recipients, whose mailbox
/// (lowercased; `None` on an old line).
pub(super) type Entry = (u64, u32, Option<String>);

pub(super) fn line(at: u64, rcpts: u32, mailbox: &str) -> String {
    if mailbox.is_empty() {
        format!("{at} {rcpts}\n")
    } else {
        format!("{at} {rcpts} {mailbox}\n")
    }
}

/// The entries of the file at `path` newer than `since` (none if missing).
pub(super) fn load(path: &Path, since: u64) -> Vec<Entry> {
    let Ok(f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let mut parts = line.split_whitespace();
        let (Some(at), Some(rcpts)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let (Ok(at), Ok(rcpts)) = (at.parse::<u64>(), rcpts.parse::<u32>()) {
            if at > since {
                out.push((at, rcpts, parts.next().map(str::to_ascii_lowercase)));
            }
        }
    }
    out
}

/// Replaces the file with `lines` and opens it for appending.
pub(super) fn rewrite(path: &Path, lines: &[String]) -> std::io::Result<std::fs::File> {
    let tmp: PathBuf = path.with_extension("tmp");
    std::fs::write(&tmp, lines.concat())?;
    std::fs::rename(&tmp, path)?;
    std::fs::OpenOptions::new().append(true).open(path)
}

/// The history file, written on the blocking pool (never on an async
/// thread). Lines are queued under the history lock, so the file gets them
/// in the order the history did; whichever blocking task holds the file
/// writes every queued line, oldest first.
pub(super) struct Log {
    pub file: Mutex<std::fs::File>,
    pub pending: Mutex<VecDeque<String>>,
}

impl Log {
    pub fn write_pending(&self) {
        let mut file = self.file.lock().unwrap();
        loop {
            let Some(line) = self.pending.lock().unwrap().pop_front() else {
                return;
            };
            // No fsync: losing the last few entries to a power cut costs at
            // most a short burst; a crashed process loses nothing (the
            // line is written before `accepted` returns).
            if let Err(e) = file.write_all(line.as_bytes()) {
                tracing::warn!(error = %e, "could not record a submission in the throttle history");
            }
        }
    }
}
