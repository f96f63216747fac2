//! The tray app's state: the running engine (restartable in-process when
//! settings change), the config it runs with, the log buffer and the
//! notification settings. Commands, the tray and the event forwarders all
//! reach the engine through here; none of them keeps an engine of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use postern_engine::config::Config;
use postern_engine::control::{Controller, Request, Status};
use postern_engine::engine::Engine;
use postern_engine::events::Events;
use serde_json::Value;
use tokio::sync::{mpsc, watch, Mutex, RwLock};

use crate::logs::LogBuffer;
use crate::notify::NotifySettings;

/// One running engine and what was taken from it when it started.
pub struct Running {
    pub engine: Engine,
    pub controller: Arc<Controller>,
    pub listening: Vec<SocketAddr>,
    /// Turned true when this engine is replaced or stopped: its event
    /// forwarder watches it and ends (the engine's `Events` outlive it in
    /// the controller's spool, so the stream alone would not end).
    pub retired: watch::Sender<bool>,
}

pub struct Shell {
    pub config_path: PathBuf,
    pub config: RwLock<Config>,
    /// `None` while stopped, or when the engine could not start (the reason
    /// is in `start_error`); the window's Settings page can still fix it.
    /// Held across the engine's start and shutdown, so restarts never overlap.
    pub running: Mutex<Option<Running>>,
    pub start_error: RwLock<Option<String>>,
    pub logs: LogBuffer,
    pub notify: std::sync::Mutex<NotifySettings>,
    /// "Status may have changed": read by the status pump (events.rs), which
    /// coalesces a burst into one `status-changed`. Commands that change
    /// state (pause, retry, …) send here too.
    pub nudge: mpsc::UnboundedSender<()>,
}

impl Shell {
    pub fn new(
        config_path: PathBuf,
        config: Config,
        logs: LogBuffer,
        nudge: mpsc::UnboundedSender<()>,
    ) -> Shell {
        Shell {
            config_path,
            config: RwLock::new(config),
            running: Mutex::new(None),
            start_error: RwLock::new(None),
            logs,
            notify: std::sync::Mutex::new(NotifySettings::load()),
            nudge,
        }
    }

    /// Starts the engine with the current config. Returns its event source
    /// and retirement signal for a forwarder, or the error (also kept for
    /// `get_status`).
    pub async fn start(&self) -> Result<(Events, watch::Receiver<bool>), String> {
        let mut running = self.running.lock().await;
        if let Some(old) = running.take() {
            old.retired.send_replace(true);
            old.engine.shutdown().await;
        }
        let config = self.config.read().await.clone();
        if let Some(gap) = config.upstream_gap() {
            tracing::warn!("{gap} Mail from devices is accepted and kept until this is fixed.");
        }
        match Engine::start(config).await {
            Ok(engine) => {
                let (retired, retired_rx) = watch::channel(false);
                let events = engine.events().clone();
                *running = Some(Running {
                    controller: engine.controller(),
                    listening: engine.listening().iter().map(|(a, _)| *a).collect(),
                    engine,
                    retired,
                });
                *self.start_error.write().await = None;
                let _ = self.nudge.send(());
                Ok((events, retired_rx))
            }
            Err(e) => {
                let message = format!("Postern could not start: {e}");
                tracing::error!("{message}");
                *self.start_error.write().await = Some(message.clone());
                let _ = self.nudge.send(());
                Err(message)
            }
        }
    }

    /// Stops the engine (Quit): finishes what is in flight; nothing
    /// acknowledged is lost.
    pub async fn stop(&self) {
        if let Some(old) = self.running.lock().await.take() {
            old.retired.send_replace(true);
            old.engine.shutdown().await;
        }
    }

    pub async fn controller(&self) -> Result<Arc<Controller>, String> {
        if let Some(r) = self.running.lock().await.as_ref() {
            return Ok(r.controller.clone());
        }
        Err(self
            .start_error
            .read()
            .await
            .clone()
            .unwrap_or_else(|| "Postern's relay is not running.".into()))
    }

    pub async fn listening(&self) -> Vec<SocketAddr> {
        match self.running.lock().await.as_ref() {
            Some(r) => r.listening.clone(),
            None => Vec::new(),
        }
    }

    /// Asks the engine; its error string (plain language) on failure.
    pub async fn ask(&self, req: Request) -> Result<Value, String> {
        let resp = self.controller().await?.handle(req).await;
        if resp.ok {
            Ok(resp.data.unwrap_or(Value::Null))
        } else {
            Err(resp.error.unwrap_or_else(|| "failed".into()))
        }
    }

    /// `get_status`; when the engine is not running, the reason as attention.
    pub async fn engine_status(&self) -> Status {
        match self.controller().await {
            Ok(c) => c.status().await,
            Err(reason) => Status::stopped(&*self.config.read().await, &reason),
        }
    }

    /// [`Self::engine_status`] as JSON, for the tray and the notifier.
    pub async fn status(&self) -> Value {
        serde_json::to_value(self.engine_status().await).expect("the status serialises")
    }
}
