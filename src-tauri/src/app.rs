//! The tray app: `postern` with no subcommand. Starts the same engine as
//! `postern serve` in-process, then the tray icon; the window comes and
//! goes on demand. The builder is generic over the Tauri `Runtime` so tests
//! can assemble it on `tauri::test::mock_builder()`.

use std::path::PathBuf;
use std::sync::Mutex;

use postern_engine::config::Config;
use tauri::webview::PageLoadEvent;
use tauri::{AppHandle, Builder, Manager, RunEvent, Runtime, WindowEvent};
use tokio::sync::mpsc;

use crate::logs::LogBuffer;
use crate::notify::Input;
use crate::shell::Shell;
use crate::tray::{self, Pending, Shown};

/// The notifier's input, for each engine's event forwarder.
pub struct Notifier(pub mpsc::UnboundedSender<Input>);

/// Set by `tauri-driver`: WebDriver needs a window to attach to at start.
const AUTOMATION_ENV: &str = "TAURI_WEBVIEW_AUTOMATION";

/// Plugins, commands and window hooks: everything but the engine.
pub fn configure<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second `postern` was started: show this one instead.
            tray::open_window(app, None);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .manage(Pending::default())
        .manage(Shown::default())
        .invoke_handler(crate::postern_commands!())
        .on_page_load(|webview, payload| {
            match payload.event() {
                PageLoadEvent::Started => webview.app_handle().state::<Pending>().page_loading(),
                // scripts/bench-tray-memory.sh waits for this line.
                PageLoadEvent::Finished => tracing::info!("the window's page loaded"),
            }
        })
}

/// Starts (or restarts) the engine and forwards its events.
pub async fn start_engine<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let (events, retired) = app.state::<Shell>().start().await?;
    let notifier = app.state::<Notifier>().0.clone();
    crate::events::forward(app.clone(), events, retired, notifier);
    Ok(())
}

/// Runs the tray app until Quit; returns the exit code.
pub fn run(runtime: tokio::runtime::Runtime, config_path: PathBuf) -> i32 {
    let logs = LogBuffer::new();
    crate::logs::init(logs.clone());
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("postern: {e}");
            return crate::commands::EXIT_CONFIG;
        }
    };
    tracing::info!(config = %config_path.display(), "starting Postern {} (tray)", env!("CARGO_PKG_VERSION"));
    tauri::async_runtime::set(runtime.handle().clone());
    let (nudge, nudges) = mpsc::unbounded_channel();
    let nudges = Mutex::new(Some(nudges));
    // No config file yet: the window opens on the setup assistant.
    let setup = crate::setup::Setup::at_start(&config_path);
    let first_run = setup.first_run();
    let app = configure(tauri::Builder::default())
        .manage(Shell::new(config_path, config, logs, nudge))
        .manage(setup)
        .setup(move |app| {
            let handle = app.handle().clone();
            let notifier = crate::notify::spawn(handle.clone());
            app.manage(Notifier(notifier.clone()));
            let nudges = nudges.lock().unwrap_or_else(|e| e.into_inner()).take();
            crate::events::status_pump(handle.clone(), nudges.expect("setup runs once"), notifier);
            crate::events::forward_logs(handle.clone());
            tray::create(&handle)?;
            // Not fatal: the window's Settings page can fix the config.
            let _ = tauri::async_runtime::block_on(start_engine(&handle));
            watch_signals(handle.clone());
            crate::memory::started();
            if first_run {
                tray::open_window(
                    &handle,
                    Some(("navigate", serde_json::json!({ "page": "setup" }))),
                );
            } else if std::env::var_os(AUTOMATION_ENV).is_some_and(|v| v == "true") {
                tray::open_window(&handle, None);
            }
            Ok(())
        })
        .build(tauri::generate_context!());
    let app = match app {
        Ok(a) => a,
        Err(e) => {
            eprintln!("postern: could not start the tray app: {e}");
            return crate::commands::EXIT_FAILED;
        }
    };
    app.run(|app, event| match event {
        // The last window closed: stay in the tray. (Quit exits with a code.)
        RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        RunEvent::Exit => tauri::async_runtime::block_on(app.state::<Shell>().stop()),
        RunEvent::WindowEvent {
            label,
            event: WindowEvent::Destroyed,
            ..
        } if label == tray::WINDOW => crate::memory::window_closed(app),
        _ => {}
    });
    0
}

/// SIGTERM / SIGINT quit cleanly, like Quit in the menu.
fn watch_signals<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tray::quit(&app);
    });
}
