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

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Run {
    deliver: Duration,
    hwm_kb: u64,
}

async fn graph_once(message: &[u8]) -> Run {
    let g = GraphUpstream::start(&["Mail.Send", "Mail.ReadWrite"]).await;
    let p = g.serve(|_| {}).await;
    assert!(send_raw(&p, message, &[ALICE]).starts_with("250"));
    let t0 = Instant::now();
    let got = g.graph.wait_for_delivered(1, PATIENCE).await;
    let deliver = t0.elapsed();
    assert_eq!(got[0].attachments[0].size, SIZE);
    p.wait_all(1, "sent");
    Run {
        deliver,
        hwm_kb: vm_hwm_kb(p.pid()),
    }
}

async fn submission_once(message: &[u8]) -> Run {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    assert!(send_raw(&p, message, &[ALICE]).starts_with("250"));
    let t0 = Instant::now();
    let got = up.wait_for(1).await;
    let deliver = t0.elapsed();
    assert!(got[0].data.len() > SIZE);
    p.wait_all(1, "sent");
    Run {
        deliver,
        hwm_kb: vm_hwm_kb(p.pid()),
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
    let (mut graph, mut smtp) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
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
        println!("| {name} | {secs:.2} s | {hwm:.1} MB (max {max:.1} MB) |");
    };
    println!(
        "\n{} bytes of scan ({} bytes of message), {ROUNDS} rounds, medians:\n",
        SIZE,
        message.len()
    );
    println!("| route | 250 → upstream has it | peak RSS of postern serve (VmHWM) |");
    println!("|---|---|---|");
    row("Graph, draft route (7 upload ranges)", &graph);
    row("SMTP client submission (XOAUTH2)", &smtp);
}
