//! The commands of docs/ipc.md: thin adapters from the webview to the
//! engine's control surface (`Controller::handle`, the same one the CLI
//! uses) and to the shell's settings, logs and notifications. Each rejects
//! with a plain-language string. Nothing here hands out a token or secret.

use postern_engine::auth::permissions::Permissions;
use postern_engine::auth::TokenSource;
use postern_engine::control::{HistoryPoint, MessageDetail, Request, Status};
use postern_engine::diagnose::Check;
use postern_engine::secrets::SecretStore;
use postern_engine::spool::{MessageId, MessageInfo};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tauri::{AppHandle, Runtime, State};

use crate::contract::{
    AccountReply, Deleted, Done, Paused, Retried, SaveReply, SettingsReply, SignIn, TestQueued,
    Validation,
};
use crate::logs::LogLine;
use crate::notify::NotifySettings;
use crate::settings;
use crate::shell::Shell;

type Reply<T> = Result<T, String>;

fn id(id: &str) -> Result<MessageId, String> {
    id.parse::<MessageId>().map_err(|e| e.to_string())
}

/// Asks the engine; its answer as the command's reply type.
async fn ask<T: DeserializeOwned>(shell: &Shell, req: Request) -> Reply<T> {
    let v = shell.ask(req).await?;
    serde_json::from_value(v).map_err(|e| format!("unexpected answer from the relay: {e}"))
}

/// Asks the engine, then lets the status pump push the change.
async fn act<T: DeserializeOwned>(shell: &Shell, req: Request) -> Reply<T> {
    let r = ask(shell, req).await;
    let _ = shell.nudge.send(());
    r
}

#[tauri::command]
pub async fn get_status(shell: State<'_, Shell>) -> Reply<Status> {
    Ok(shell.engine_status().await)
}

#[tauri::command]
pub async fn get_queue(shell: State<'_, Shell>) -> Reply<Vec<MessageInfo>> {
    ask(&shell, Request::Queue).await
}

#[tauri::command]
pub async fn get_message(shell: State<'_, Shell>, id: String) -> Reply<MessageDetail> {
    ask(&shell, Request::Show { id: self::id(&id)? }).await
}

#[tauri::command]
pub async fn retry(shell: State<'_, Shell>, id: String) -> Reply<Retried> {
    act(&shell, Request::Retry { id: self::id(&id)? }).await
}

#[tauri::command]
pub async fn retry_all(shell: State<'_, Shell>) -> Reply<Retried> {
    act(&shell, Request::RetryAll).await
}

#[tauri::command]
pub async fn delete_message(shell: State<'_, Shell>, id: String) -> Reply<Deleted> {
    act(&shell, Request::Delete { id: self::id(&id)? }).await
}

#[tauri::command]
pub async fn resend_rewritten(shell: State<'_, Shell>, id: String) -> Reply<Retried> {
    act(&shell, Request::ResendRewritten { id: self::id(&id)? }).await
}

#[tauri::command]
pub async fn set_paused(shell: State<'_, Shell>, paused: bool) -> Reply<Paused> {
    act(
        &shell,
        if paused {
            Request::Pause
        } else {
            Request::Resume
        },
    )
    .await
}

#[tauri::command]
pub async fn get_throttle_history(shell: State<'_, Shell>) -> Reply<Vec<HistoryPoint>> {
    ask(&shell, Request::ThrottleHistory).await
}

#[tauri::command]
pub async fn get_account(shell: State<'_, Shell>) -> Reply<AccountReply> {
    let config = shell.config.read().await.clone();
    let state = match shell.controller().await {
        Ok(c) => c.status().await.account,
        Err(_) => {
            TokenSource::new(&config, SecretStore::new())
                .check_stored()
                .await
        }
    };
    Ok(AccountReply::new(&config, state))
}

/// What the access token grants (`roles` app-only, `scp` delegated) and
/// what the mode still needs: the running engine's cached token (fetched
/// when it holds none), or, with no engine, one fetched here. Never the token.
#[tauri::command]
pub async fn get_permissions(shell: State<'_, Shell>) -> Reply<Permissions> {
    permissions(&shell).await
}

pub(crate) async fn permissions(shell: &Shell) -> Reply<Permissions> {
    if let Ok(c) = shell.controller().await {
        return postern_engine::auth::permissions::current(&c.config, &c.tokens).await;
    }
    let config = shell.config.read().await.clone();
    let tokens = TokenSource::new(&config, SecretStore::new());
    postern_engine::auth::permissions::current(&config, &tokens).await
}

#[tauri::command]
pub async fn sign_in<R: Runtime>(app: AppHandle<R>, device_code: bool) -> Reply<SignIn> {
    crate::signin::start(app, device_code).await
}

#[tauri::command]
pub async fn sign_out(shell: State<'_, Shell>) -> Reply<Done> {
    let config = shell.config.read().await.clone();
    let keys = crate::commands::account_keys(&config);
    // The keychain is blocking I/O (D-Bus, the Windows credential store):
    // on the blocking pool, like every other keychain call here.
    crate::secrets_ipc::keychain(move |store| {
        for key in &keys {
            store.delete(key)?;
        }
        Ok(())
    })
    .await?;
    let _ = act::<Value>(&shell, Request::Recheck).await;
    Ok(Done {})
}

#[tauri::command]
pub async fn get_settings(shell: State<'_, Shell>) -> Reply<SettingsReply> {
    Ok(SettingsReply {
        path: shell.config_path.clone(),
        config: shell.config.read().await.clone(),
    })
}

#[tauri::command]
pub async fn validate_settings(shell: State<'_, Shell>, config: Value) -> Reply<Validation> {
    Ok(settings::validate(&config, &shell.config_path))
}

#[tauri::command]
pub async fn save_settings<R: Runtime>(
    app: AppHandle<R>,
    shell: State<'_, Shell>,
    config: Value,
) -> Reply<SaveReply> {
    let (parsed, text) = match settings::check(&config, &shell.config_path) {
        Ok(ok) => ok,
        Err(errors) => {
            return Ok(SaveReply {
                ok: false,
                errors,
                restarted: false,
            })
        }
    };
    let restarted =
        settings::save_and_apply(&shell, parsed, &text, || crate::app::start_engine(&app)).await?;
    Ok(SaveReply {
        ok: true,
        errors: vec![],
        restarted,
    })
}

#[tauri::command]
pub async fn run_diagnostics(shell: State<'_, Shell>) -> Reply<Vec<Check>> {
    let config = shell.config.read().await.clone();
    Ok(postern_engine::diagnose::run(&config, &shell.config_path).await)
}

#[tauri::command]
pub fn get_logs(shell: State<'_, Shell>, since: Option<u64>) -> Vec<LogLine> {
    shell.logs.since(since.unwrap_or(0))
}

#[tauri::command]
pub async fn send_test(shell: State<'_, Shell>, to: String) -> Reply<TestQueued> {
    let config = shell.config.read().await.clone();
    let id = crate::send_test::queue_test(&shell, &config, &to).await?;
    Ok(TestQueued { id })
}

/// What the window was opened for (`{event, payload}` of `navigate` or
/// `open-message`), or null; asked once by the page when its listeners are
/// in place.
#[tauri::command]
pub fn take_pending(pending: State<'_, crate::tray::Pending>) -> Option<serde_json::Value> {
    pending.take()
}

#[tauri::command]
pub fn get_notification_settings(shell: State<'_, Shell>) -> NotifySettings {
    *shell.notify.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes the object `get_notification_settings` returns (its own keys,
/// not camelCase); a kind left out keeps its current setting.
#[tauri::command(rename_all = "snake_case")]
pub fn set_notification_settings(
    shell: State<'_, Shell>,
    failed: Option<bool>,
    sign_in: Option<bool>,
    unreachable: Option<bool>,
    budget: Option<bool>,
    stuck: Option<bool>,
) -> Result<NotifySettings, String> {
    let mut s = *shell.notify.lock().unwrap_or_else(|e| e.into_inner());
    for (slot, value) in [
        (&mut s.failed, failed),
        (&mut s.sign_in, sign_in),
        (&mut s.unreachable, unreachable),
        (&mut s.budget, budget),
        (&mut s.stuck, stuck),
    ] {
        if let Some(v) = value {
            *slot = v;
        }
    }
    s.save()?;
    *shell.notify.lock().unwrap_or_else(|e| e.into_inner()) = s;
    Ok(s)
}

/// Every command, for the builder (and the capability's allow list).
#[macro_export]
macro_rules! postern_commands {
    () => {
        tauri::generate_handler![
            $crate::ipc::get_status,
            $crate::ipc::get_queue,
            $crate::ipc::get_message,
            $crate::ipc::retry,
            $crate::ipc::retry_all,
            $crate::ipc::delete_message,
            $crate::ipc::resend_rewritten,
            $crate::ipc::set_paused,
            $crate::ipc::get_throttle_history,
            $crate::ipc::get_account,
            $crate::ipc::get_permissions,
            $crate::ipc::sign_in,
            $crate::ipc::sign_out,
            $crate::ipc::get_settings,
            $crate::ipc::validate_settings,
            $crate::ipc::save_settings,
            $crate::ipc::run_diagnostics,
            $crate::ipc::get_logs,
            $crate::ipc::send_test,
            $crate::ipc::get_notification_settings,
            $crate::ipc::set_notification_settings,
            $crate::ipc::take_pending,
            // Setup assistant and secrets (setup.rs, secrets_ipc.rs, lan.rs).
            $crate::setup::get_setup,
            $crate::setup::setup_begin,
            $crate::setup::setup_cancel,
            $crate::setup::setup_finish,
            $crate::secrets_ipc::get_secrets,
            $crate::secrets_ipc::store_secret,
            $crate::secrets_ipc::remove_secret,
            $crate::secrets_ipc::add_device_user,
            $crate::secrets_ipc::remove_device_user,
            $crate::secrets_ipc::check_app_token,
            $crate::lan::get_device_card,
            $crate::lan::listen_on_lan,
        ]
    };
}
