//! The IPC contract's replies that the shell builds itself (the engine's
//! own — `Status`, `MessageInfo`, `Check`, `EngineEvent`, `Config`, … —
//! carry their derives where they are defined), and the TypeScript
//! bindings of all of them in `ui/src/bindings/`.
//!
//! The bindings come from [ts-rs]: every type that crosses IPC derives
//! `ts_rs::TS`, which follows its serde attributes (`rename_all`, tags,
//! `flatten`, `skip_serializing_if`), so the TypeScript says exactly what
//! the JSON holds. ts-rs and not tauri-specta: tauri-specta 2 is still a
//! release candidate tied to pinned `specta` release candidates, and it
//! wants the commands registered through its own builder; ts-rs is stable,
//! reads serde's attributes, and needs no change to how the commands are
//! registered (`postern_commands!`). Neither needs node: the bindings are
//! plain files, written by a Rust test.
//!
//! The test `bindings_are_up_to_date` fails when the checked-in files differ
//! from what the code generates (so CI, which runs `cargo test --workspace`,
//! breaks on a renamed variant, and `tsc` then breaks on its users);
//! `UPDATE_BINDINGS=1 cargo test -p postern --lib bindings` rewrites them.
//!
//! [ts-rs]: https://crates.io/crates/ts-rs

use std::path::PathBuf;

use postern_engine::auth::AccountState;
use postern_engine::config::{Config, OAuthFlow, UpstreamAuth, UpstreamMode};
use postern_engine::spool::MessageId;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::settings::FieldError;

/// `get_account` and `postern account status --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(rename = "Account")]
pub struct AccountReply {
    /// How mail goes to Microsoft (the page words Graph app-only sign-in
    /// differently from SMTP's).
    pub mode: UpstreamMode,
    pub mailbox: String,
    pub auth: UpstreamAuth,
    pub flow: OAuthFlow,
    pub client_id: String,
    pub tenant: String,
    pub account: AccountState,
}

impl AccountReply {
    pub fn new(config: &Config, account: AccountState) -> AccountReply {
        AccountReply {
            mode: config.upstream.mode,
            mailbox: config.upstream.mailbox.clone(),
            auth: config.upstream.auth,
            flow: config.oauth.flow,
            client_id: config.oauth.client_id.clone(),
            tenant: config.oauth.tenant.clone(),
            account,
        }
    }
}

/// `get_settings`: the config file's path and its settings (every key, the
/// defaults filled in; durations as "5m" strings). Saveable as it is.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct SettingsReply {
    pub path: PathBuf,
    pub config: Config,
}

/// `validate_settings`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct Validation {
    pub ok: bool,
    pub errors: Vec<FieldError>,
}

/// `save_settings`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
pub struct SaveReply {
    pub ok: bool,
    pub errors: Vec<FieldError>,
    /// The relay was restarted with the saved settings.
    pub restarted: bool,
}

/// What `sign_in` shows the person: the address opened in the browser, or
/// the code to enter on another device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SignIn {
    Browser {
        url: String,
    },
    Device {
        verification_uri: String,
        user_code: String,
        message: String,
    },
}

/// The `signin-finished` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SignInFinished {
    pub ok: bool,
    pub message: String,
}

/// `retry`, `retry_all`, `resend_rewritten`: how many messages go again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Retried {
    pub retried: usize,
}

/// `delete_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Deleted {
    pub deleted: MessageId,
}

/// `set_paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Paused {
    pub paused: bool,
}

/// `send_test`: the queue id of the test message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TestQueued {
    pub id: MessageId,
}

/// A command that answers nothing but "done" (`sign_out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Done {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use postern_engine::control::{HistoryPoint, MessageDetail, Status};
    use postern_engine::diagnose::Check;
    use postern_engine::events::Event;
    use postern_engine::spool::MessageInfo;

    use super::*;

    /// Writes every IPC type (and what it refers to) into `dir`.
    fn export_all(dir: &Path) {
        let cfg = ts_rs::Config::new()
            .with_out_dir(dir)
            // Unix ms and byte counts fit a double; the UI does arithmetic on them.
            .with_large_int("number");
        macro_rules! export {
            ($($t:ty),* $(,)?) => {
                $( <$t as TS>::export_all(&cfg).expect(stringify!($t)); )*
            };
        }
        export!(
            Status,
            MessageInfo,
            MessageDetail,
            HistoryPoint,
            Check,
            Event,
            AccountReply,
            SettingsReply,
            Validation,
            SaveReply,
            SignIn,
            SignInFinished,
            Retried,
            Deleted,
            Paused,
            TestQueued,
            Done,
            crate::logs::LogLine,
            crate::notify::NotifySettings,
            // The setup assistant, the secrets and the device card.
            crate::setup::SetupInfo,
            crate::setup::Restored,
            crate::secrets_ipc::Stored,
            crate::secrets_ipc::Removed,
            crate::secrets_ipc::SecretsState,
            crate::secrets_ipc::SecretKind,
            crate::lan::DeviceCard,
            crate::lan::LanReply,
            postern_engine::auth::claims::AppTokenCheck,
            postern_engine::auth::permissions::Permissions,
            postern_engine::auth::permissions::GrantKind,
            postern_engine::auth::permissions::MissingPermission,
        );
    }

    fn read_dir(dir: &Path) -> BTreeMap<String, String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return BTreeMap::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect()
    }

    /// The checked-in bindings are what the code generates.
    #[test]
    fn bindings_are_up_to_date() {
        let fresh = tempfile::tempdir().unwrap();
        export_all(fresh.path());
        let generated = read_dir(fresh.path());
        let checked_in_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/bindings");
        if std::env::var_os("UPDATE_BINDINGS").is_some_and(|v| v == "1") {
            for name in read_dir(&checked_in_dir).keys() {
                std::fs::remove_file(checked_in_dir.join(name)).unwrap();
            }
            std::fs::create_dir_all(&checked_in_dir).unwrap();
            for (name, text) in &generated {
                std::fs::write(checked_in_dir.join(name), text).unwrap();
            }
            return;
        }
        let checked_in = read_dir(&checked_in_dir);
        let mut differ: Vec<&str> = generated
            .iter()
            .filter(|(n, t)| checked_in.get(*n) != Some(t))
            .map(|(n, _)| n.as_str())
            .collect();
        differ.extend(
            checked_in
                .keys()
                .filter(|n| !generated.contains_key(*n))
                .map(|n| n.as_str()),
        );
        assert!(
            differ.is_empty(),
            "ui/src/bindings/ is not what the Rust types generate ({}); \
             run `UPDATE_BINDINGS=1 cargo test -p postern --lib bindings` and commit the result",
            differ.join(", ")
        );
    }
}
