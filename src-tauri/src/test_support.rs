//! Helpers for the shell's unit tests of the setup assistant's commands: a
//! `Shell` on a config file in a temporary directory, the real keychain
//! read with `secret-tool` (run them under `scripts/with-keyring.sh`), and a
//! restart that counts instead of starting an engine.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use postern_engine::config::Config;
use tokio::sync::mpsc;

use crate::logs::LogBuffer;
use crate::shell::Shell;

/// A shell whose config file is `dir/postern.toml` (written with `text`
/// when given). A test that starts the engine puts `spool.dir` in `text`.
pub fn shell_in(dir: &Path, text: Option<&str>) -> Shell {
    let path = dir.join("postern.toml");
    let config = match text {
        Some(t) => {
            std::fs::write(&path, t).unwrap();
            Config::parse(t, &path).unwrap()
        }
        None => Config::default(),
    };
    let (nudge, _) = mpsc::unbounded_channel();
    Shell::new(path, config, LogBuffer::new(), nudge)
}

/// A unique name, so tests running at once never share a keychain entry.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// What the keychain holds for a `postern` account, read by `secret-tool`
/// (libsecret), not by Postern's own code.
pub fn keychain_lookup(account: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", "postern", "username", account])
        .output()
        .expect("secret-tool runs (libsecret-tools; run under scripts/with-keyring.sh)");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

/// A restart that only counts its calls.
pub fn counting(n: &AtomicUsize) -> impl FnOnce() -> std::future::Ready<Result<(), String>> + '_ {
    move || {
        n.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(()))
    }
}
