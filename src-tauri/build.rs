//! Tauri's build step: reads tauri.conf.json and capabilities/ (beside the
//! root Cargo.toml) and embeds the app context. The web UI (`ui/dist`) is
//! built by `npm --prefix ui run build`; when it has not been built, a
//! one-line placeholder page stands in so the Rust side still compiles.
use std::path::Path;

/// The commands of docs/ipc.md (src-tauri/src/ipc.rs; the setup assistant's
/// in setup.rs, secrets_ipc.rs and lan.rs).
const COMMANDS: &[&str] = &[
    "get_status",
    "get_queue",
    "get_message",
    "retry",
    "retry_all",
    "delete_message",
    "resend_rewritten",
    "set_paused",
    "get_throttle_history",
    "get_account",
    "sign_in",
    "sign_out",
    "get_settings",
    "validate_settings",
    "save_settings",
    "run_diagnostics",
    "get_logs",
    "send_test",
    "get_notification_settings",
    "set_notification_settings",
    "take_pending",
    // Setup assistant and secrets.
    "get_setup",
    "setup_begin",
    "setup_cancel",
    "setup_finish",
    "get_secrets",
    "store_secret",
    "remove_secret",
    "add_device_user",
    "remove_device_user",
    "check_app_token",
    "get_permissions",
    "get_device_card",
    "listen_on_lan",
];

fn main() {
    let dist = Path::new("ui/dist");
    if !dist.join("index.html").exists() {
        println!("cargo:warning=ui/dist is missing: using a placeholder page (run `npm --prefix ui ci && npm --prefix ui run build`)");
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>Postern</title><p id=placeholder>Postern: the web UI has not been built.</p>\n",
        )
        .expect("write the placeholder page");
    }
    println!("cargo:rerun-if-changed=ui/dist");
    // Each command gets an `allow-…` permission; capabilities/default.json
    // grants exactly these to the window (docs/ipc.md).
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build step");
}
