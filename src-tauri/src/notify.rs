//! Desktop notifications from engine events (notify-rust, over D-Bus on
//! Linux): a bounce with what happened, why and the fix; sign-in or other
//! attention needed; upstream not reachable for a while; the daily budget
//! spent; the queue stuck. Bursts are coalesced ("50 messages failed: …").
//! Each kind can be turned off; the choice is kept as JSON in the data dir.
//! With no notification server, a warning is logged and relaying goes on.

use std::path::PathBuf;
use std::time::Duration;

use postern_engine::events::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tauri::{AppHandle, Manager, Runtime};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::shell::Shell;

/// Failures within this long of the first one make one notification.
const FAILURE_BURST: Duration = Duration::from_secs(2);
/// Deferred again and again, nothing sent, for this long: "unreachable".
const UNREACHABLE_AFTER: Duration = Duration::from_secs(10 * 60);
/// Mail waiting and nothing sent or failed for this long: "stuck".
const STUCK_AFTER: Duration = Duration::from_secs(30 * 60);
/// How long a notification stays up (the server may ignore it).
const SHOW_FOR_MS: i32 = 30_000;

/// Which kinds of notification are on (`get/set_notification_settings`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(default)]
#[ts(rename = "NotificationSettings")]
pub struct NotifySettings {
    pub failed: bool,
    pub sign_in: bool,
    pub unreachable: bool,
    pub budget: bool,
    pub stuck: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            failed: true,
            sign_in: true,
            unreachable: true,
            budget: true,
            stuck: true,
        }
    }
}

impl NotifySettings {
    fn path() -> PathBuf {
        postern_engine::config::default_data_dir().join("notifications.json")
    }

    /// The saved settings; all on when none were saved (or unreadable).
    pub fn load() -> NotifySettings {
        std::fs::read(Self::path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self) -> Result<(), String> {
        let path = Self::path();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("serialises"))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot save {}: {e}", path.display()))
    }
}

/// What the notifier watches: engine events and fresh status snapshots.
#[derive(Debug)]
pub enum Input {
    Event(Event),
    Status(Value),
}

/// One failed message, as the notification tells it.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    id: String,
    to: String,
    summary: String,
    code: String,
    fix: String,
    /// Bounced after Microsoft took it (the tracker), not refused upfront.
    after_handoff: bool,
}

/// The reply's enhanced status code ("5.7.60"), else its basic code
/// ("550"): the first word of either shape (a reply may be prefixed with
/// the stage, "Data: 550 5.7.60 …").
pub fn reply_code(reply: &str) -> String {
    let digits = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let words = || {
        reply
            .split([' ', '-'])
            .map(|w| w.trim_end_matches([',', ';', ':']))
    };
    let enhanced = words().find(|w| {
        let parts: Vec<_> = w.split('.').collect();
        parts.len() == 3 && parts.iter().all(|p| digits(p)) && matches!(parts[0], "2" | "4" | "5")
    });
    let basic = || words().find(|w| w.len() == 3 && digits(w));
    enhanced.or_else(basic).unwrap_or("").to_string()
}

/// The text of one notification for a burst of failures.
fn failure_text(failures: &[Failure]) -> (String, String) {
    let first = &failures[0];
    let why = format!("{} ({}). {}", first.summary, first.code, first.fix);
    if failures.len() == 1 && first.after_handoff {
        (
            "Message bounced after sending".into(),
            format!(
                "Scan to {} was accepted by Microsoft 365, then bounced: {}",
                first.to,
                why.trim_end()
            ),
        )
    } else if failures.len() == 1 {
        (
            "Message bounced".into(),
            format!("Scan to {} bounced: {}", first.to, why.trim_end()),
        )
    } else {
        let same = failures.iter().all(|f| f.summary == first.summary);
        let why = if same {
            why
        } else {
            format!("{why} (and other reasons: see the queue)")
        };
        (
            format!("{} messages failed", failures.len()),
            format!("{} messages failed: {}", failures.len(), why.trim_end()),
        )
    }
}

/// Starts the notifier task; engine events and status snapshots go to the
/// returned sender. The task ends when every sender is gone.
pub fn spawn<R: Runtime>(app: AppHandle<R>) -> mpsc::UnboundedSender<Input> {
    let (tx, rx) = mpsc::unbounded_channel();
    tauri::async_runtime::spawn(run(app, rx));
    tx
}

#[derive(Default)]
struct Watch {
    failures: Vec<Failure>,
    flush_at: Option<Instant>,
    deferring_since: Option<(Instant, String)>,
    unreachable_told: bool,
    waiting: bool,
    last_progress: Option<Instant>,
    stuck_told: bool,
    budget_told: bool,
    attention_told: Option<String>,
}

impl Watch {
    /// A bounce for the next notification (coalesced over FAILURE_BURST).
    fn bounce(
        &mut self,
        id: String,
        to: &[String],
        reply: &str,
        summary: &str,
        fix: String,
        after_handoff: bool,
    ) {
        self.failures.push(Failure {
            id,
            to: to.join(", "),
            summary: summary.trim_end_matches('.').to_string(),
            code: reply_code(reply),
            fix,
            after_handoff,
        });
        self.flush_at.get_or_insert(Instant::now() + FAILURE_BURST);
    }
}

async fn run<R: Runtime>(app: AppHandle<R>, mut rx: mpsc::UnboundedReceiver<Input>) {
    let mut w = Watch {
        last_progress: Some(Instant::now()),
        ..Default::default()
    };
    loop {
        let next = [
            w.flush_at,
            w.deferring_since
                .as_ref()
                .filter(|_| !w.unreachable_told)
                .map(|(t, _)| *t + UNREACHABLE_AFTER),
            w.last_progress
                .filter(|_| w.waiting && !w.stuck_told)
                .map(|t| t + STUCK_AFTER),
        ]
        .into_iter()
        .flatten()
        .min();
        let input = match next {
            Some(at) => tokio::select! {
                i = rx.recv() => match i { Some(i) => Some(i), None => return },
                () = tokio::time::sleep_until(at) => None,
            },
            None => match rx.recv().await {
                Some(i) => Some(i),
                None => return,
            },
        };
        let settings = *app
            .state::<Shell>()
            .notify
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match input {
            Some(Input::Event(e)) => on_event(&app, &mut w, e, &settings),
            Some(Input::Status(s)) => on_status(&app, &mut w, &s, &settings),
            None => {}
        }
        let now = Instant::now();
        if w.flush_at.is_some_and(|t| t <= now) {
            w.flush_at = None;
            let failures = std::mem::take(&mut w.failures);
            if settings.failed && !failures.is_empty() {
                let (title, body) = failure_text(&failures);
                let open = (failures.len() == 1).then(|| failures[0].id.clone());
                show(&app, &title, &body, open);
            }
        }
        if let Some((since, reason)) = &w.deferring_since {
            if !w.unreachable_told && *since + UNREACHABLE_AFTER <= now {
                w.unreachable_told = true;
                if settings.unreachable {
                    let mins = UNREACHABLE_AFTER.as_secs() / 60;
                    show(&app, "Microsoft 365 unreachable", &format!("Nothing could be delivered for {mins} minutes: {reason}. Mail is kept and sent when the connection is back."), None);
                }
            }
        }
        if let Some(t) = w.last_progress {
            if w.waiting && !w.stuck_told && t + STUCK_AFTER <= now {
                w.stuck_told = true;
                if settings.stuck {
                    let mins = STUCK_AFTER.as_secs() / 60;
                    show(&app, "Queue stuck", &format!("Mail is waiting and nothing was delivered for {mins} minutes. Open Postern to see why."), None);
                }
            }
        }
    }
}

fn on_event<R: Runtime>(app: &AppHandle<R>, w: &mut Watch, e: Event, s: &NotifySettings) {
    match e {
        Event::Failed {
            id,
            recipients,
            reply,
            summary,
            fix,
        } => {
            w.last_progress = Some(Instant::now());
            w.stuck_told = false;
            w.bounce(id.to_string(), &recipients, &reply, &summary, fix, false);
        }
        // The same switch and coalescing as a bounce at sending time.
        Event::Bounced {
            id,
            recipients,
            reply,
            summary,
            fix,
        } => w.bounce(id.to_string(), &recipients, &reply, &summary, fix, true),
        Event::Sent { .. } => {
            w.last_progress = Some(Instant::now());
            w.stuck_told = false;
            w.deferring_since = None;
            w.unreachable_told = false;
        }
        Event::Deferred { reason, .. } => {
            let now = Instant::now();
            match &mut w.deferring_since {
                Some((_, r)) => *r = reason,
                None => w.deferring_since = Some((now, reason)),
            }
        }
        Event::NeedsAttention { summary, fix } => {
            if w.attention_told.as_deref() != Some(summary.as_str()) {
                w.attention_told = Some(summary.clone());
                if s.sign_in {
                    show(
                        app,
                        "Postern needs attention",
                        &format!("{summary} {fix}"),
                        None,
                    );
                }
            }
        }
        Event::AttentionCleared => w.attention_told = None,
        Event::Received { .. }
        | Event::Deleted { .. }
        | Event::Progress { .. }
        | Event::Traced { .. } => {}
    }
}

fn on_status<R: Runtime>(app: &AppHandle<R>, w: &mut Watch, status: &Value, s: &NotifySettings) {
    let q = &status["queue"];
    let n = |k: &str| q[k].as_u64().unwrap_or(0);
    let waiting = n("queued") + n("deferred") + n("sending") > 0;
    if waiting && !w.waiting {
        w.last_progress = Some(Instant::now());
    }
    w.waiting = waiting;
    let t = &status["throttle"];
    let spent = t["quota_blocked_for_secs"].as_f64().is_some()
        || matches!(
            (t["recipients_in_window"].as_u64(), t["recipients_per_day"].as_u64()),
            (Some(used), Some(limit)) if used >= limit
        );
    if spent && !w.budget_told && s.budget {
        show(app, "Daily sending limit reached", "Microsoft 365's daily recipient limit for this mailbox is used up. Mail waits in the queue and goes out as the limit frees up.", None);
    }
    w.budget_told = spent;
}

/// Shows one notification on a thread of its own (the D-Bus call blocks,
/// and waiting for a click blocks until the notification closes). With a
/// message id, clicking it opens the window on that message.
fn show<R: Runtime>(app: &AppHandle<R>, title: &str, body: &str, open: Option<String>) {
    tracing::info!(title, body, "notification");
    let app = app.clone();
    let (title, body) = (title.to_string(), body.to_string());
    std::thread::spawn(move || {
        let mut n = notify_rust::Notification::new();
        n.appname("Postern")
            .summary(&title)
            .body(&body)
            .timeout(notify_rust::Timeout::Milliseconds(SHOW_FOR_MS as u32));
        if open.is_some() {
            n.action("default", "Show");
        }
        match n.show() {
            #[cfg(all(unix, not(target_os = "macos")))]
            Ok(handle) => {
                if let Some(id) = open {
                    handle.wait_for_action(|action| {
                        if action == "default" {
                            crate::tray::open_message(&app, &id);
                        }
                    });
                }
            }
            #[cfg(not(all(unix, not(target_os = "macos"))))]
            Ok(_) => {
                let _ = (&app, open);
            }
            Err(e) => tracing::warn!(
                "could not show a desktop notification (is a notification service running?): {e}"
            ),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(to: &str, summary: &str) -> Failure {
        Failure {
            id: "m1".into(),
            to: to.into(),
            summary: summary.into(),
            code: "5.7.60".into(),
            fix: "Grant Send As.".into(),
            after_handoff: false,
        }
    }

    #[test]
    fn a_bounce_after_sending_says_microsoft_took_it_first() {
        let mut b = f(
            "bob@fabrikam.com",
            "Microsoft 365 does not know this recipient address",
        );
        b.after_handoff = true;
        b.code = "5.1.10".into();
        b.fix = "Check the address for typos.".into();
        let (title, body) = failure_text(&[b]);
        assert_eq!(title, "Message bounced after sending");
        assert_eq!(body, "Scan to bob@fabrikam.com was accepted by Microsoft 365, then bounced: Microsoft 365 does not know this recipient address (5.1.10). Check the address for typos.");
    }

    #[test]
    fn reply_codes() {
        for (reply, code) in [
            (
                "550 5.7.60 SMTP; Client does not have permissions",
                "5.7.60",
            ),
            ("554 5.2.0 STOREDRV.Submission.Exception", "5.2.0"),
            ("550 Mailbox unavailable", "550"),
            ("550-5.7.1 first line", "5.7.1"),
            ("", ""),
            ("Data: 550 5.7.60 SMTP; no", "5.7.60"),
            ("550 1.2.3", "550"),
        ] {
            assert_eq!(reply_code(reply), code, "{reply}");
        }
    }

    #[test]
    fn one_failure_says_what_why_and_the_fix() {
        let (_, body) = failure_text(&[f(
            "bob@contoso.com",
            "The mailbox may not send as this sender",
        )]);
        assert_eq!(body, "Scan to bob@contoso.com bounced: The mailbox may not send as this sender (5.7.60). Grant Send As.");
    }

    #[test]
    fn a_burst_is_one_notification() {
        let many: Vec<_> = (0..50).map(|_| f("a@b", "No send as")).collect();
        let (title, body) = failure_text(&many);
        assert_eq!(title, "50 messages failed");
        assert!(
            body.starts_with("50 messages failed: No send as (5.7.60)."),
            "{body}"
        );
        let mixed = vec![f("a@b", "One"), f("a@b", "Two")];
        assert!(failure_text(&mixed).1.contains("other reasons"));
    }

    #[test]
    fn settings_default_on_and_round_trip() {
        let s: NotifySettings = serde_json::from_str(r#"{"failed": false}"#).unwrap();
        assert!(!s.failed && s.sign_in && s.stuck);
        let back: NotifySettings =
            serde_json::from_value(serde_json::to_value(s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
