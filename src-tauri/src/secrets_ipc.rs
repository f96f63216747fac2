//! The secrets commands of docs/ipc.md ("Setup assistant and secrets"):
//! the window types the client secret, the mailbox password or a device
//! user's password, and the shell puts it straight into the OS keychain
//! under the same key `postern account set-secret` uses. Write-only: the
//! answers say "stored" or "removed", and `get_secrets` says only whether
//! each one is there. Keychain calls block, so they run on tokio's blocking
//! pool, never on an async worker. No secret is logged (`Secret` redacts).

use postern_engine::config::{check_device_user, Config};
use postern_engine::control::Request;
use postern_engine::secrets::{Secret, SecretError, SecretKey, SecretStore};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime, State};

use crate::settings;
use crate::setup::Setup;
use crate::shell::Shell;

/// `{stored: true}`.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct Stored {
    pub stored: bool,
}

/// `{removed: true}`.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct Removed {
    pub removed: bool,
}

/// One `listener.users` name and whether its password is in the keychain.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct DeviceUserSecret {
    pub name: String,
    pub stored: bool,
}

/// `get_secrets`: stored / not stored, for the current config.
#[derive(Debug, Serialize, PartialEq, ts_rs::TS)]
pub struct SecretsState {
    pub client_secret: bool,
    pub mailbox_password: bool,
    pub refresh_token: bool,
    pub device_users: Vec<DeviceUserSecret>,
}

/// Which account secret (`kind` in the commands' arguments).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    ClientSecret,
    MailboxPassword,
    RefreshToken,
}

/// Runs a keychain call on the blocking pool; its error in words.
pub async fn keychain<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&SecretStore) -> Result<T, SecretError> + Send + 'static,
{
    let store = SecretStore::new();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| format!("the keychain call did not finish: {e}"))?
        .map_err(|e| e.to_string())
}

/// The keychain key for `kind` under `config` (the keys of `postern
/// account set-secret`), or what to set first.
pub fn key_for(config: &Config, kind: SecretKind) -> Result<SecretKey, String> {
    let client_id = || {
        if config.oauth.client_id.is_empty() {
            Err(
                "Set oauth.client_id first: the secret belongs to that app registration."
                    .to_string(),
            )
        } else {
            Ok(config.oauth.client_id.clone())
        }
    };
    Ok(match kind {
        SecretKind::ClientSecret => SecretKey::ClientSecret {
            client_id: client_id()?,
        },
        SecretKind::RefreshToken => SecretKey::RefreshToken {
            client_id: client_id()?,
        },
        SecretKind::MailboxPassword => {
            if config.upstream.mailbox.is_empty() {
                return Err(
                    "Set upstream.mailbox first: the password belongs to that mailbox.".into(),
                );
            }
            SecretKey::MailboxPassword {
                mailbox: config.upstream.mailbox.clone(),
            }
        }
    })
}

/// A typed value, or the plain refusal when there is nothing in it. A
/// trailing line break (pasted) is dropped; other spaces are kept.
fn typed(value: &str, what: &str) -> Result<Secret, String> {
    let v = value.trim_end_matches(['\r', '\n']);
    if v.trim().is_empty() {
        return Err(format!("The {what} is empty: nothing was stored."));
    }
    Ok(Secret::new(v))
}

/// The engine forgets its cached token and looks at the keychain again.
async fn recheck(shell: &Shell) {
    let _ = shell.ask(Request::Recheck).await;
    let _ = shell.nudge.send(());
}

pub async fn store(
    shell: &Shell,
    setup: &Setup,
    kind: SecretKind,
    value: &str,
) -> Result<Stored, String> {
    let what = match kind {
        SecretKind::ClientSecret => "client secret",
        SecretKind::MailboxPassword => "mailbox password",
        SecretKind::RefreshToken => {
            return Err("A refresh token comes from signing in; it cannot be typed in.".into())
        }
    };
    let key = key_for(&*shell.config.read().await, kind)?;
    let secret = typed(value, what)?;
    setup.put_secret(key, Some(secret)).await?;
    tracing::info!("stored the {what} in the OS keychain");
    recheck(shell).await;
    Ok(Stored { stored: true })
}

pub async fn remove(shell: &Shell, setup: &Setup, kind: SecretKind) -> Result<Removed, String> {
    let key = key_for(&*shell.config.read().await, kind)?;
    setup.put_secret(key, None).await?;
    tracing::info!("removed a secret from the OS keychain");
    recheck(shell).await;
    Ok(Removed { removed: true })
}

pub async fn state(shell: &Shell) -> Result<SecretsState, String> {
    let config = shell.config.read().await.clone();
    let client = key_for(&config, SecretKind::ClientSecret).ok();
    let refresh = key_for(&config, SecretKind::RefreshToken).ok();
    let mailbox = key_for(&config, SecretKind::MailboxPassword).ok();
    let users = config.listener.users.clone();
    keychain(move |store| {
        let has = |key: &Option<SecretKey>| -> Result<bool, SecretError> {
            match key {
                Some(k) => Ok(store.get(k)?.is_some()),
                None => Ok(false),
            }
        };
        let mut device_users = Vec::new();
        for name in users {
            let stored = store
                .get(&SecretKey::DevicePassword { user: name.clone() })?
                .is_some();
            device_users.push(DeviceUserSecret { name, stored });
        }
        Ok(SecretsState {
            client_secret: has(&client)?,
            mailbox_password: has(&mailbox)?,
            refresh_token: has(&refresh)?,
            device_users,
        })
    })
    .await
}

/// Stores the password, then lists the name in `listener.users` (saved and
/// applied when it was not there yet).
pub async fn add_user<F, Fut>(
    shell: &Shell,
    setup: &Setup,
    name: &str,
    password: &str,
    restart: F,
) -> Result<Stored, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let name = name.trim();
    check_device_user(name).map_err(|m| format!("listener.users: {m}"))?;
    let secret = typed(password, "password")?;
    let _edit = setup.edit.lock().await;
    setup
        .put_secret(
            SecretKey::DevicePassword {
                user: name.to_string(),
            },
            Some(secret),
        )
        .await?;
    if !shell
        .config
        .read()
        .await
        .listener
        .users
        .iter()
        .any(|u| u == name)
    {
        let user = name.to_string();
        settings::edit_and_apply(
            shell,
            move |c| {
                c.listener.users.push(user);
                Ok(())
            },
            restart,
        )
        .await?;
    }
    tracing::info!(user = name, "stored a device user's password");
    Ok(Stored { stored: true })
}

/// Takes the name out of `listener.users` (saved and applied), then its
/// password out of the keychain. Refused, with nothing changed, when the
/// config would not be valid without it (the last user while logins are
/// required).
pub async fn remove_user<F, Fut>(
    shell: &Shell,
    setup: &Setup,
    name: &str,
    restart: F,
) -> Result<Removed, String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let name = name.trim();
    if name.is_empty() {
        return Err("Which device user? The name is empty.".into());
    }
    let _edit = setup.edit.lock().await;
    if shell
        .config
        .read()
        .await
        .listener
        .users
        .iter()
        .any(|u| u == name)
    {
        settings::edit_and_apply(
            shell,
            |c| {
                c.listener.users.retain(|u| u != name);
                Ok(())
            },
            restart,
        )
        .await?;
    }
    setup
        .put_secret(
            SecretKey::DevicePassword {
                user: name.to_string(),
            },
            None,
        )
        .await?;
    tracing::info!(user = name, "removed a device user");
    Ok(Removed { removed: true })
}

#[tauri::command]
pub async fn get_secrets(shell: State<'_, Shell>) -> Result<SecretsState, String> {
    state(&shell).await
}

#[tauri::command]
pub async fn store_secret(
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
    kind: SecretKind,
    value: String,
) -> Result<Stored, String> {
    store(&shell, &setup, kind, &value).await
}

#[tauri::command]
pub async fn remove_secret(
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
    kind: SecretKind,
) -> Result<Removed, String> {
    remove(&shell, &setup, kind).await
}

#[tauri::command]
pub async fn add_device_user<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
    name: String,
    password: String,
) -> Result<Stored, String> {
    add_user(&shell, &setup, &name, &password, || {
        crate::app::start_engine(&app)
    })
    .await
}

#[tauri::command]
pub async fn remove_device_user<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    setup: State<'_, Setup>,
    name: String,
) -> Result<Removed, String> {
    remove_user(&shell, &setup, &name, || crate::app::start_engine(&app)).await
}

/// App-only sign-in: fetches a token with the stored client secret and
/// shows the roles Microsoft put in it (never the token).
#[tauri::command]
pub async fn check_app_token(
    shell: State<'_, Shell>,
) -> Result<postern_engine::auth::claims::AppTokenCheck, String> {
    let config = shell.config.read().await.clone();
    postern_engine::auth::claims::check_app_token(&config, SecretStore::new()).await
}

#[cfg(test)]
#[path = "secrets_ipc_tests.rs"]
mod tests;
