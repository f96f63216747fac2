//! The setup assistant's commands (docs/ipc.md, "Setup assistant and
//! secrets"): whether this is the first run, and a snapshot taken when the
//! assistant opens so that Cancel puts everything back — the config file's
//! text (or its absence) and the secrets the assistant may replace. Secret
//! values of the snapshot are held in this process's memory only, as
//! `Secret` (which never prints), and dropped when the assistant finishes.
//!
//! Every secret the secrets commands write while a snapshot is held is
//! recorded first (`put_secret`), so a secret stored under a new client id
//! or device name is removed again by Cancel.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use postern_engine::config::Config;
use postern_engine::secrets::{Secret, SecretKey};
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};

use crate::secrets_ipc::keychain;
use crate::shell::Shell;

/// `get_setup`.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct SetupInfo {
    pub first_run: bool,
    pub config_path: String,
}

pub use crate::contract::Done;

/// `setup_cancel`: whether there was a snapshot to go back to.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
#[ts(rename = "SetupCancelled")]
pub struct Restored {
    pub restored: bool,
}

/// What the assistant found when it opened.
struct Snapshot {
    /// The config file's text; None: there was no file.
    file: Option<String>,
    /// Each key and its value before the assistant (None: not stored).
    secrets: Vec<(SecretKey, Option<Secret>)>,
}

/// The assistant's state, managed by the tray app.
pub struct Setup {
    first_run: AtomicBool,
    snapshot: Mutex<Option<Snapshot>>,
    /// Held while a command edits the config file (device users, LAN), so
    /// two edits cannot overwrite each other.
    pub edit: tokio::sync::Mutex<()>,
}

impl Setup {
    pub fn new(first_run: bool) -> Setup {
        Setup {
            first_run: AtomicBool::new(first_run),
            snapshot: Mutex::new(None),
            edit: tokio::sync::Mutex::new(()),
        }
    }

    /// First run: no config file at `path` when the app starts.
    pub fn at_start(path: &Path) -> Setup {
        Setup::new(!path.exists())
    }

    pub fn first_run(&self) -> bool {
        self.first_run.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        self.snapshot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A snapshot is held and does not know this key yet.
    fn unrecorded(&self, key: &SecretKey) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|s| !s.secrets.iter().any(|(k, _)| k == key))
    }

    /// Stores (`Some`) or deletes (`None`) a secret in the keychain; while
    /// the assistant runs, the value before is kept for Cancel first.
    pub async fn put_secret(&self, key: SecretKey, value: Option<Secret>) -> Result<(), String> {
        if self.unrecorded(&key) {
            let k = key.clone();
            let before = keychain(move |s| s.get(&k)).await?;
            if let Some(snap) = self.lock().as_mut() {
                if !snap.secrets.iter().any(|(k, _)| *k == key) {
                    snap.secrets.push((key.clone(), before));
                }
            }
        }
        keychain(move |s| match value {
            Some(v) => s.set(&key, &v),
            None => s.delete(&key),
        })
        .await
    }
}

/// The keys a config's secrets live under: the account's (as `postern
/// account logout` removes them) and each device user's.
pub fn keys_of(config: &Config) -> Vec<SecretKey> {
    let mut keys = crate::commands::account_keys(config);
    keys.extend(
        config
            .listener
            .users
            .iter()
            .map(|u| SecretKey::DevicePassword { user: u.clone() }),
    );
    keys
}

pub fn info(shell: &Shell, setup: &Setup) -> SetupInfo {
    SetupInfo {
        first_run: setup.first_run(),
        config_path: shell.config_path.display().to_string(),
    }
}

/// Takes the snapshot (replacing one left from an assistant never closed).
pub async fn begin(shell: &Shell, setup: &Setup) -> Result<Done, String> {
    let path = &shell.config_path;
    let file = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let keys = keys_of(&*shell.config.read().await);
    let secrets = keychain(move |s| {
        keys.into_iter()
            .map(|k| s.get(&k).map(|v| (k, v)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    *setup.lock() = Some(Snapshot { file, secrets });
    tracing::info!("setup assistant opened: the config and secrets can be restored on cancel");
    Ok(Done {})
}

/// Puts the config file and the secrets back as the snapshot found them,
/// then restarts the engine on that config. Without a snapshot, nothing.
pub async fn cancel<F, Fut>(shell: &Shell, setup: &Setup, restart: F) -> Result<Restored, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let _edit = setup.edit.lock().await;
    let Some(snap) = setup.lock().take() else {
        return Ok(Restored { restored: false });
    };
    let path = shell.config_path.clone();
    let file_restored = match &snap.file {
        Some(text) => crate::settings::write(&path, text),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", path.display()))
            }
            _ => Ok(()),
        },
    };
    let secrets = snap.secrets.clone();
    let secrets_restored = keychain(move |s| {
        for (key, before) in &secrets {
            match before {
                Some(v) => s.set(key, v)?,
                None => s.delete(key)?,
            }
        }
        Ok(())
    })
    .await;
    if let Err(e) = file_restored.and(secrets_restored) {
        // Keep it, so Cancel can be tried again once the cause is fixed.
        *setup.lock() = Some(snap);
        return Err(e);
    }
    let config = Config::parse(snap.file.as_deref().unwrap_or(""), &path)
        .map_err(|e| format!("the config was restored, but {e}"))?;
    *shell.config.write().await = config;
    tracing::info!("setup assistant cancelled: the config and secrets are as before");
    // The restore itself worked; an engine that cannot start on the old
    // config says so in `get_status` (as it did before the assistant).
    let _ = restart().await;
    Ok(Restored { restored: true })
}

/// Drops the snapshot; the first run is over.
pub fn finish(setup: &Setup) -> Done {
    *setup.lock() = None;
    setup.first_run.store(false, Ordering::SeqCst);
    Done {}
}

#[tauri::command]
pub fn get_setup(shell: State<'_, Shell>, setup: State<'_, Setup>) -> SetupInfo {
    info(&shell, &setup)
}

#[tauri::command]
pub async fn setup_begin(shell: State<'_, Shell>, setup: State<'_, Setup>) -> Result<Done, String> {
    begin(&shell, &setup).await
}

#[tauri::command]
pub async fn setup_cancel<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
) -> Result<Restored, String> {
    cancel(&shell, &setup, || crate::app::start_engine(&app)).await
}

#[tauri::command]
pub fn setup_finish(setup: State<'_, Setup>) -> Done {
    finish(&setup)
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
