//! Pushes what happens to the webview and the tray, so nothing polls:
//!
//! - a forwarder per engine: each engine event goes out as `engine-event`,
//!   to the notifier, and nudges the status pump;
//! - the status pump: after a nudge it waits [`COALESCE`] for the rest of a
//!   burst, then asks the engine once and pushes `status-changed` (and
//!   updates the tray icon, tooltip and menu);
//! - the log forwarder: each new log line as `log-line`.

use std::time::Duration;

use postern_engine::events::{Event, Events};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use crate::notify::Input;
use crate::shell::Shell;

/// A burst of events (50 messages received at once) makes one status push.
const COALESCE: Duration = Duration::from_millis(250);

/// Forwards one engine's events until it is retired.
pub fn forward<R: Runtime>(
    app: AppHandle<R>,
    events: Events,
    mut retired: watch::Receiver<bool>,
    notifier: mpsc::UnboundedSender<Input>,
) {
    let mut rx = events.subscribe();
    drop(events);
    tauri::async_runtime::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = retired.wait_for(|r| *r) => return,
                e = rx.recv() => e,
            };
            match event {
                // Progress changes no count: the window alone wants it.
                Ok(e @ Event::Progress { .. }) => {
                    let _ = app.emit("engine-event", &e);
                    continue;
                }
                Ok(e) => {
                    if let Err(err) = app.emit("engine-event", &e) {
                        tracing::debug!("engine-event not delivered: {err}");
                    }
                    let _ = notifier.send(Input::Event(e));
                }
                // Missed some: the status push below re-reads everything.
                Err(RecvError::Lagged(n)) => tracing::debug!(missed = n, "event forwarder lagged"),
                Err(RecvError::Closed) => return,
            }
            let _ = app.state::<Shell>().nudge.send(());
        }
    });
}

/// Runs the status pump until every nudge sender is gone.
pub fn status_pump<R: Runtime>(
    app: AppHandle<R>,
    mut nudges: mpsc::UnboundedReceiver<()>,
    notifier: mpsc::UnboundedSender<Input>,
) {
    tauri::async_runtime::spawn(async move {
        while nudges.recv().await.is_some() {
            tokio::time::sleep(COALESCE).await;
            while nudges.try_recv().is_ok() {}
            let status = app.state::<Shell>().status().await;
            crate::tray::update(&app, &status);
            let _ = app.emit("status-changed", &status);
            let _ = notifier.send(Input::Status(status));
        }
    });
}

/// Forwards new log lines as `log-line` events.
pub fn forward_logs<R: Runtime>(app: AppHandle<R>) {
    let mut rx = app.state::<Shell>().logs.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(line) => {
                    let _ = app.emit("log-line", &line);
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
}
