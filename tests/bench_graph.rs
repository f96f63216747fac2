//! Benchmark, not a test (ignored by `cargo test`): one 25 MB scan through
//! the real `postern serve` by Microsoft Graph's draft route and by SMTP
//! client submission, against the fakes, side by side — the time from the
//! device's `250` to the upstream having the whole message, and the peak
//! resident memory (`VmHWM`) of a fresh `postern serve` over receiving and
//! delivering it. Run on a release build, as BENCHMARKS.md says:
//!
//! ```sh
//! scripts/with-keyring.sh cargo test --release --test bench_graph -- --ignored --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use support::graph::{scan_message, send_raw, GraphUpstream};
use support::*;

const ALICE: &str = "alice@contoso.com";
const SIZE: usize = 25 * 1024 * 1024;
const ROUNDS: usize = 3;

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn vm_hwm_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM:")
}

/// Samples `RssAnon` (the process's own memory: heap, stacks — not the
/// shared libraries' pages, which VmHWM counts too) every 2 ms until
/// dropped; [`AnonPeak::stop`] gives the highest seen. Sampling can miss
/// a short peak, so this is a lower bound of the true peak.
struct AnonPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl AnonPeak {
    fn start(pid: u32) -> AnonPeak {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(Ordering::Relaxed) {
                max = max.max(status_kb(pid, "RssAnon:"));
                std::thread::sleep(Duration::from_millis(2));
            }
            max
        });
        AnonPeak {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

struct Run {
    deliver: Duration,
    hwm_kb: u64,
    /// Graph: the peak before the first request (receiving and scanning).
    before_upload_kb: u64,
    /// VmRSS just after start (mostly the shared libraries' pages).
    idle_kb: u64,
    /// The highest RssAnon sampled over the run.
    anon_kb: u64,
}

async fn graph_once(message: &[u8]) -> Run {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    let p = g.serve(|_| {}).await;
    let idle_kb = status_kb(p.pid(), "VmRSS:");
    let anon = AnonPeak::start(p.pid());
    // Held at its first request (creating the draft): what receiving and
    // scanning the message took, before anything is uploaded.
    g.graph.hold(true);
    assert!(send_raw(&p, message, &[ALICE]).starts_with("250"));
    let t0 = Instant::now();
    assert!(g.graph.wait_in_flight(MAILBOX, 1, PATIENCE).await);
    let before_upload_kb = vm_hwm_kb(p.pid());
    let held = t0.elapsed();
    g.graph.hold(false);
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    let deliver = t0.elapsed();
    assert_eq!(got[0].attachments[0].size, SIZE);
    p.wait_all(1, "sent");
    Run {
        deliver: deliver - held,
        hwm_kb: vm_hwm_kb(p.pid()),
        before_upload_kb,
        idle_kb,
        anon_kb: anon.stop(),
    }
}

async fn submission_once(message: &[u8]) -> Run {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let idle_kb = status_kb(p.pid(), "VmRSS:");
    let anon = AnonPeak::start(p.pid());
    assert!(send_raw(&p, message, &[ALICE]).starts_with("250"));
    let t0 = Instant::now();
    let got = up.wait_for(1).await;
    let deliver = t0.elapsed();
    assert!(got[0].data.len() > SIZE);
    p.wait_all(1, "sent");
    Run {
        deliver,
        hwm_kb: vm_hwm_kb(p.pid()),
        before_upload_kb: 0,
        idle_kb,
        anon_kb: anon.stop(),
    }
}

/// Receiving only: no mailbox configured, so delivery is held.
async fn receive_once(message: &[u8]) -> Run {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |c| set(c, "upstream.mailbox", "")).await;
    let idle_kb = status_kb(p.pid(), "VmRSS:");
    let anon = AnonPeak::start(p.pid());
    let t0 = Instant::now();
    assert!(send_raw(&p, message, &[ALICE]).starts_with("250"));
    Run {
        deliver: t0.elapsed(),
        hwm_kb: vm_hwm_kb(p.pid()),
        before_upload_kb: 0,
        idle_kb,
        anon_kb: anon.stop(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it on a release build (see the module doc)"]
async fn graph_and_submission_with_a_25_mb_scan() {
    let (message, _) = scan_message("bench", SIZE);
    let (mut graph, mut smtp, mut recv) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        recv.push(receive_once(&message).await);
        // Alternate which goes first.
        if round % 2 == 0 {
            graph.push(graph_once(&message).await);
            smtp.push(submission_once(&message).await);
        } else {
            smtp.push(submission_once(&message).await);
            graph.push(graph_once(&message).await);
        }
    }
    let row = |name: &str, runs: &[Run]| {
        let secs = median(runs.iter().map(|r| r.deliver.as_secs_f64()).collect());
        let hwm = median(runs.iter().map(|r| r.hwm_kb as f64).collect()) / 1024.0;
        let max = runs.iter().map(|r| r.hwm_kb).max().unwrap() as f64 / 1024.0;
        let before = median(runs.iter().map(|r| r.before_upload_kb as f64).collect()) / 1024.0;
        let before = if before > 0.0 {
            format!("{before:.1} MB")
        } else {
            "—".into()
        };
        let idle = median(runs.iter().map(|r| r.idle_kb as f64).collect()) / 1024.0;
        let anon = median(runs.iter().map(|r| r.anon_kb as f64).collect()) / 1024.0;
        println!(
            "| {name} | {secs:.2} s | {hwm:.1} MB (max {max:.1} MB) | {before} | {idle:.1} MB | {anon:.1} MB |"
        );
    };
    println!(
        "\n{} bytes of scan ({} bytes of message), {ROUNDS} rounds, medians:\n",
        SIZE,
        message.len()
    );
    println!("| route | 250 → upstream has it | peak RSS (VmHWM) | VmHWM before the first request | RSS idle after start | peak RssAnon (sampled) |");
    println!("|---|---|---|---|---|---|");
    row("Graph, draft route (7 upload ranges)", &graph);
    row("SMTP client submission (XOAUTH2)", &smtp);
    row(
        "receiving only (delivery held; time = the device's DATA)",
        &recv,
    );
}
