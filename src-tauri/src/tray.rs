//! The tray icon and its menu, and the window it opens.
//!
//! The icon shows one of four states (all good, sending a backlog, needs
//! attention, paused) with a one-line tooltip; it is updated by the status
//! pump (events.rs) from each `status-changed`, never on a timer. The window
//! is created when asked for and destroyed when closed, so the webview's
//! memory is given back while Postern sits in the tray.

use std::sync::Mutex;

use serde_json::{json, Value};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};
use tauri_plugin_autostart::ManagerExt;

use crate::shell::Shell;

pub const TRAY_ID: &str = "postern";
pub const WINDOW: &str = "main";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    Ok,
    Sending,
    Attention,
    Paused,
}

impl Look {
    fn icon(self) -> Image<'static> {
        let bytes: &'static [u8] = match self {
            Look::Ok => include_bytes!("../../icons/tray-ok.png"),
            Look::Sending => include_bytes!("../../icons/tray-sending.png"),
            Look::Attention => include_bytes!("../../icons/tray-attention.png"),
            Look::Paused => include_bytes!("../../icons/tray-paused.png"),
        };
        Image::from_bytes(bytes).expect("the tray icons are valid PNGs")
    }
}

/// What the tray shows for a `get_status` object: icon, tooltip, and
/// whether the menu offers Resume (paused) and Sign in (needed).
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub look: Look,
    pub tooltip: String,
    pub paused: bool,
    pub sign_in: bool,
}

pub fn view(status: &Value) -> View {
    let q = &status["queue"];
    let n = |k: &str| q[k].as_u64().unwrap_or(0);
    let waiting = n("queued") + n("sending") + n("deferred");
    let paused = status["paused"].as_bool().unwrap_or(false);
    let sign_in = status["account"]["state"] == "sign-in-needed";
    let attention = status["attention"]["summary"].as_str();
    let (look, tooltip) = if paused {
        (Look::Paused, format!("Delivery paused — {waiting} waiting"))
    } else if let Some(summary) = attention {
        (Look::Attention, format!("Needs attention: {summary}"))
    } else if sign_in {
        (Look::Attention, "Sign-in needed".to_string())
    } else if waiting > 0 {
        let next = status["throttle"]["next_slot_in_secs"]
            .as_f64()
            .unwrap_or(0.0);
        let when = if next >= 1.0 {
            format!("next slot in {} s", next.ceil() as u64)
        } else {
            "sending".to_string()
        };
        (Look::Sending, format!("{waiting} queued — {when}"))
    } else {
        let failed = n("failed");
        let text = if failed > 0 {
            format!("Nothing waiting — {failed} failed")
        } else {
            "All sent — nothing waiting".to_string()
        };
        (Look::Ok, text)
    };
    View {
        look,
        tooltip: tooltip.lines().next().unwrap_or("").to_string(),
        paused,
        sign_in,
    }
}

/// The last view shown, so the menu is rebuilt only when it changes.
#[derive(Default)]
pub struct Shown(Mutex<Option<View>>);

fn menu<R: Runtime>(app: &AppHandle<R>, v: &View) -> tauri::Result<Menu<R>> {
    let autostart = app.autolaunch().is_enabled().unwrap_or(false);
    let menu = Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, "open", "Open Postern", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(
                app,
                "pause",
                if v.paused {
                    "Resume delivery"
                } else {
                    "Pause delivery"
                },
                true,
                None::<&str>,
            )?,
            &MenuItem::with_id(app, "send-test", "Send test message…", true, None::<&str>)?,
            &MenuItem::with_id(app, "setup", "Set up…", true, None::<&str>)?,
            &MenuItem::with_id(app, "devices", "Point a device here…", true, None::<&str>)?,
            &CheckMenuItem::with_id(
                app,
                "autostart",
                "Start at login",
                true,
                autostart,
                None::<&str>,
            )?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?,
        ],
    )?;
    if v.sign_in {
        menu.insert(
            &MenuItem::with_id(app, "signin", "Sign in…", true, None::<&str>)?,
            1,
        )?;
    }
    Ok(menu)
}

pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<TrayIcon<R>> {
    let v = view(&json!({}));
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(v.look.icon())
        .tooltip(&v.tooltip)
        .menu(&menu(app, &v)?)
        .on_menu_event(on_menu)
        .build(app)?;
    *app.state::<Shown>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(v);
    Ok(tray)
}

/// Shows a status: icon, tooltip, and the menu when its items change.
pub fn update<R: Runtime>(app: &AppHandle<R>, status: &Value) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let v = view(status);
    let mut shown = app
        .state::<Shown>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let result = (|| -> tauri::Result<()> {
        if shown.as_ref().map(|s| s.look) != Some(v.look) {
            tray.set_icon(Some(v.look.icon()))?;
        }
        if shown.as_ref().map(|s| &s.tooltip) != Some(&v.tooltip) {
            tray.set_tooltip(Some(&v.tooltip))?;
        }
        if shown.as_ref().map(|s| (s.paused, s.sign_in)) != Some((v.paused, v.sign_in)) {
            tray.set_menu(Some(menu(app, &v)?))?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!("could not update the tray icon: {e}");
    }
    shown = Some(v);
    *app.state::<Shown>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = shown;
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, event: MenuEvent) {
    match event.id().as_ref() {
        "open" => open_window(app, None),
        "signin" => open_window(app, Some(("navigate", json!({ "page": "account" })))),
        "send-test" => open_window(app, Some(("navigate", json!({ "page": "diagnostics" })))),
        "setup" => open_window(app, Some(("navigate", json!({ "page": "setup" })))),
        "devices" => open_window(app, Some(("navigate", json!({ "page": "devices" })))),
        "pause" => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                let shell = app.state::<Shell>();
                let paused = shell.status().await["paused"].as_bool().unwrap_or(false);
                let req = if paused {
                    postern_engine::control::Request::Resume
                } else {
                    postern_engine::control::Request::Pause
                };
                if let Err(e) = shell.ask(req).await {
                    tracing::warn!("{e}");
                }
                let _ = shell.nudge.send(());
            });
        }
        "autostart" => {
            let auto = app.autolaunch();
            let result = if auto.is_enabled().unwrap_or(false) {
                auto.disable()
            } else {
                auto.enable()
            };
            if let Err(e) = result {
                tracing::warn!("could not change start at login: {e}");
            }
        }
        "quit" => quit(app),
        _ => {}
    }
}

/// Stops the engine cleanly (in-flight deliveries finish), then exits.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tracing::info!("quitting: finishing what is in flight");
        app.state::<Shell>().stop().await;
        app.exit(0);
    });
}

/// What the window was opened for (`navigate`, `open-message`), kept until
/// the page asks for it with `take_pending`: a page that is still loading
/// has not registered its listeners yet, so an event sent then is lost.
#[derive(Default)]
pub struct Pending(Mutex<PendingState>);

#[derive(Default)]
struct PendingState {
    /// The page has loaded and asked once: it listens for events now.
    listening: bool,
    next: Option<(&'static str, Value)>,
}

impl Pending {
    /// A page (re)started loading: hold what comes until it asks.
    pub fn page_loading(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).listening = false;
    }

    /// The page asks what it was opened for; from now on it gets events.
    pub fn take(&self) -> Option<Value> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        s.listening = true;
        s.next
            .take()
            .map(|(event, payload)| json!({ "event": event, "payload": payload }))
    }

    /// Keeps `then` for the page unless it listens already; returns it back
    /// when it should be sent as an event instead.
    fn hold(&self, then: (&'static str, Value)) -> Option<(&'static str, Value)> {
        let mut s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if s.listening {
            return Some(then);
        }
        s.next = Some(then);
        None
    }
}

/// Shows the window (creating it if closed), then sends it `then`.
pub fn open_window<R: Runtime>(app: &AppHandle<R>, then: Option<(&'static str, Value)>) {
    let then = then.and_then(|t| app.state::<Pending>().hold(t));
    if let Some(w) = app.get_webview_window(WINDOW) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        if let Some((event, payload)) = then {
            let _ = w.emit(event, payload);
        }
        return;
    }
    let built = WebviewWindowBuilder::new(app, WINDOW, WebviewUrl::App("index.html".into()))
        .title("Postern")
        .inner_size(1000.0, 680.0)
        .min_inner_size(640.0, 420.0)
        .build();
    if let Err(e) = built {
        tracing::error!("could not open the window: {e}");
    }
}

/// Opens the window on one message (a notification was clicked). Only
/// freedesktop notifications report clicks (notify.rs), so only there.
#[cfg(all(unix, not(target_os = "macos")))]
pub fn open_message<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let payload = json!({ "id": id });
    let handle = app.clone();
    let _ = app.run_on_main_thread(move || open_window(&handle, Some(("open-message", payload))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views() {
        let s = |v: Value| view(&v);
        assert_eq!(s(json!({})).look, Look::Ok);
        assert_eq!(s(json!({})).tooltip, "All sent — nothing waiting");
        let busy = s(
            json!({"queue": {"queued": 10, "deferred": 2}, "throttle": {"next_slot_in_secs": 13.2}}),
        );
        assert_eq!(
            (busy.look, busy.tooltip.as_str()),
            (Look::Sending, "12 queued — next slot in 14 s")
        );
        let p = s(json!({"paused": true, "queue": {"queued": 3}}));
        assert_eq!((p.look, p.paused), (Look::Paused, true));
        let a = s(
            json!({"attention": {"summary": "Sign-in expired.\nmore"}, "account": {"state": "sign-in-needed"}}),
        );
        assert_eq!(
            (a.look, a.tooltip.as_str(), a.sign_in),
            (Look::Attention, "Needs attention: Sign-in expired.", true)
        );
        assert_eq!(
            s(json!({"queue": {"failed": 2}})).tooltip,
            "Nothing waiting — 2 failed"
        );
    }
}
