//! Keeping the tray app light (BENCHMARKS.md, "Tray app: memory"): Postern
//! sits in the tray all day and opens its window rarely, so what it holds
//! with the window closed matters more than how fast the window opens.
//!
//! - [`prepare_tray_process`], before any thread exists: no OpenGL for
//!   GTK and no accelerated compositing for WebKit (on a machine without a
//!   GPU driver that loaded Mesa's llvmpipe, ~50 MB of LLVM, into the tray
//!   process at start-up and again into the web process; the window is a
//!   form, software rendering is plenty), and at most two glibc malloc
//!   arenas (one per thread by default, up to eight per core).
//! - [`window_closed`], after the window is destroyed: once its web process
//!   has ended, ends WebKit's network process too (WebKit keeps it for the
//!   app's life and starts a new one with the next window) and gives the
//!   freed heap back to the system (`malloc_trim`); [`started`] does the
//!   same once start-up is over.
//!
//! Everything here is Linux (glibc, WebKitGTK) only; elsewhere it does
//! nothing. A variable the user has set is never overridden.

/// Tokio worker threads for the tray app's engine: a small office's
/// devices and one upstream need no more, whatever the core count.
pub const TRAY_WORKER_THREADS: usize = 2;

/// Call first thing in tray mode, while the process has one thread
/// (setting the environment is only sound then; GTK and WebKit read it
/// when they start, and WebKit's helper processes inherit it).
pub fn prepare_tray_process() {
    #[cfg(target_os = "linux")]
    {
        for (key, value) in [
            // GTK 3 opens an OpenGL context on X11 start-up to pick visuals.
            ("GDK_GL", "disable"),
            // The web process renders in software: no GL, no llvmpipe.
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        ] {
            if std::env::var_os(key).is_none() {
                std::env::set_var(key, value);
            }
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; one thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// The window was destroyed: once its web process is gone, end WebKit's
/// network process and return freed memory. `window_open` is asked on the
/// main thread right before, so a window opened meanwhile keeps its
/// network process.
pub fn window_closed<R: tauri::Runtime>(app: &tauri::AppHandle<R>) {
    #[cfg(target_os = "linux")]
    {
        let app = app.clone();
        std::thread::spawn(move || {
            // The web process ends a moment after its view is destroyed.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !children("WebKitWebProcess").is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            let handle = app.clone();
            let _ = app.run_on_main_thread(move || {
                if handle.get_webview_window(crate::tray::WINDOW).is_none() {
                    end_network_process();
                }
            });
            trim();
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
}

/// Start-up is over (tray shown, engine running): give back the heap that
/// GTK's and the engine's start-up used and freed.
pub fn started() {
    #[cfg(target_os = "linux")]
    trim();
}

#[cfg(target_os = "linux")]
use tauri::Manager as _;

/// Ends WebKit's network process, which WebKit does not end when its last
/// view closes (tauri-apps/tauri#14626): a new one is started with the next
/// view. The app keeps no cookies or web storage, so nothing is lost.
#[cfg(target_os = "linux")]
fn end_network_process() {
    if children("WebKitWebProcess").is_empty() {
        for pid in children("WebKitNetworkProcess") {
            tracing::debug!(pid, "window closed: ending WebKit's network process");
            // SAFETY: kill(2) on our own child, found by its parent pid and program.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
}

/// Gives the heap the window's objects used back to the system.
#[cfg(target_os = "linux")]
fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Our child processes whose program file is named `program`.
#[cfg(target_os = "linux")]
fn children(program: &str) -> Vec<i32> {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            ppid == Some(me)
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == program))
        })
        .collect()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_own_children_by_program() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let found = children("sleep");
        child.kill().ok();
        child.wait().ok();
        assert_eq!(found, vec![child.id() as i32]);
        assert!(children("WebKitNetworkProcess").is_empty());
    }
}
