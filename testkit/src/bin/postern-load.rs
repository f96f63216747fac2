//! `postern-load`: an SMTP load generator that measures accept latency.
//!
//! ```text
//! postern-load --server 127.0.0.1:2525 --clients 20 --messages 5000 --size 4096 [--json]
//! ```
//!
//! `--clients` sessions run in parallel; each connects, sends one message
//! (EHLO, MAIL, RCPT, DATA, content, ".", QUIT) and reconnects for the next,
//! until `--messages` messages were sent in all (the same shape as Postfix's
//! `smtp-source -s CLIENTS -m MESSAGES -l SIZE`). The content is `--size`
//! bytes (headers included, terminator excluded) of 78-character lines.
//!
//! Reported: messages/s over the whole run, and the p50/p90/p99/max of
//!
//! - **accept**: from writing the end-of-data `.` line to reading the reply
//!   (for a durable server this is the fsync of the content and of the
//!   directory), and
//! - **session**: from connect to the reply to QUIT, per message.
//!
//! A reply other than 2xx/3xx where expected counts the message as failed;
//! it is not retried and its latencies are not recorded. The exit status is
//! 1 when any message failed. `--json` prints one JSON object instead of the
//! table (for scripts/bench.sh).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Give up on a server that is silent for this long at any step.
const STEP_TIMEOUT: Duration = Duration::from_secs(300);

struct Args {
    server: String,
    clients: usize,
    messages: usize,
    size: usize,
    json: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: postern-load --server HOST:PORT [--clients 20] [--messages 1000] [--size 4096] [--json]"
    );
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut args = Args {
        server: String::new(),
        clients: 20,
        messages: 1000,
        size: 4096,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        if key == "--json" {
            args.json = true;
            continue;
        }
        let value = inline.or_else(|| it.next()).unwrap_or_else(|| usage());
        let number = || value.parse::<usize>().unwrap_or_else(|_| usage());
        match key.as_str() {
            "--server" => args.server = value.clone(),
            "--clients" => args.clients = number().max(1),
            "--messages" => args.messages = number(),
            "--size" => args.size = number(),
            _ => usage(),
        }
    }
    if args.server.is_empty() {
        usage();
    }
    args
}

/// A message of exactly `size` bytes (when `size` leaves room for the
/// headers): headers, a blank line, then lines of 76 letters and CRLF.
/// No line starts with ".", so nothing needs dot-stuffing.
fn make_message(size: usize) -> Vec<u8> {
    let mut m = b"From: <load@example.com>\r\nTo: <scanner@contoso.com>\r\n\
Subject: postern-load\r\nMessage-ID: <load@example.com>\r\n\r\n"
        .to_vec();
    let letters = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut row = 0;
    while m.len() + 2 < size {
        let len = (size - m.len() - 2).min(76);
        m.extend((0..len).map(|i| letters[(row + i) % letters.len()]));
        m.extend_from_slice(b"\r\n");
        row += 1;
    }
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    m
}

/// Latencies of one delivered message.
struct Sample {
    accept: Duration,
    session: Duration,
}

struct Session {
    r: BufReader<OwnedReadHalf>,
    w: OwnedWriteHalf,
    line: String,
}

impl Session {
    /// Reads a (possibly multi-line) reply; Ok(code) or Err(text).
    async fn reply(&mut self) -> Result<u16, String> {
        loop {
            self.line.clear();
            let n = tokio::time::timeout(STEP_TIMEOUT, self.r.read_line(&mut self.line))
                .await
                .map_err(|_| "timed out waiting for a reply".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed".to_string());
            }
            let b = self.line.as_bytes();
            if b.len() < 4 {
                return Err(format!("bad reply {:?}", self.line));
            }
            if b[3] != b'-' {
                return self.line[..3]
                    .parse()
                    .map_err(|_| format!("bad reply {:?}", self.line));
            }
        }
    }

    /// Sends bytes, then expects a reply with this first digit.
    async fn step(&mut self, send: &[u8], want: u16) -> Result<(), String> {
        if !send.is_empty() {
            self.w.write_all(send).await.map_err(|e| e.to_string())?;
        }
        let code = self.reply().await?;
        if code / 100 != want {
            return Err(format!("{}: {}", show(send), self.line.trim_end()));
        }
        Ok(())
    }
}

fn show(cmd: &[u8]) -> String {
    let s = String::from_utf8_lossy(&cmd[..cmd.len().min(20)]);
    if s.is_empty() {
        "greeting".to_string()
    } else {
        s.trim_end().to_string()
    }
}

async fn send_one(server: &str, message: &[u8], n: usize) -> Result<Sample, String> {
    let start = Instant::now();
    let tcp = tokio::time::timeout(STEP_TIMEOUT, TcpStream::connect(server))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (r, w) = tcp.into_split();
    let mut s = Session {
        r: BufReader::with_capacity(4096, r),
        w,
        line: String::new(),
    };
    s.step(b"", 2).await?;
    s.step(b"EHLO postern-load.example\r\n", 2).await?;
    s.step(b"MAIL FROM:<load@example.com>\r\n", 2).await?;
    let rcpt = format!("RCPT TO:<user{n}@contoso.com>\r\n");
    s.step(rcpt.as_bytes(), 2).await?;
    s.step(b"DATA\r\n", 3).await?;
    s.w.write_all(message).await.map_err(|e| e.to_string())?;
    let dot = Instant::now();
    s.step(b".\r\n", 2).await?;
    let accept = dot.elapsed();
    s.step(b"QUIT\r\n", 2).await?;
    Ok(Sample {
        accept,
        session: start.elapsed(),
    })
}

/// Nearest-rank percentile of sorted samples, in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

fn summary(mut v: Vec<Duration>) -> serde_json::Value {
    v.sort();
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().map(Duration::as_secs_f64).sum::<f64>() * 1000.0 / v.len() as f64
    };
    json!({
        "p50_ms": pct(&v, 50.0),
        "p90_ms": pct(&v, 90.0),
        "p99_ms": pct(&v, 99.0),
        "max_ms": pct(&v, 100.0),
        "mean_ms": mean,
    })
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let message: Arc<[u8]> = make_message(args.size).into();
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(args.messages)));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients.min(args.messages.max(1)) {
        let (server, message) = (args.server.clone(), message.clone());
        let (next, samples, errors) = (next.clone(), samples.clone(), errors.clone());
        let total = args.messages;
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return;
                }
                match send_one(&server, &message, n).await {
                    Ok(s) => samples.lock().unwrap().push(s),
                    Err(e) => errors.lock().unwrap().push(e),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task panicked");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let errors = std::mem::take(&mut *errors.lock().unwrap());
    let ok = samples.len();
    let accept = summary(samples.iter().map(|s| s.accept).collect());
    let session = summary(samples.iter().map(|s| s.session).collect());
    let rate = ok as f64 / elapsed;
    let result = json!({
        "server": args.server,
        "clients": args.clients,
        "size": message.len(),
        "sent": ok,
        "failed": errors.len(),
        "seconds": elapsed,
        "msgs_per_s": rate,
        "accept": accept,
        "session": session,
        "first_error": errors.first(),
    });
    if args.json {
        println!("{result}");
    } else {
        println!(
            "{} messages of {} bytes, {} clients, to {}: {ok} accepted, {} failed in {elapsed:.2} s = {rate:.1} msgs/s",
            args.messages,
            message.len(),
            args.clients,
            args.server,
            errors.len()
        );
        println!(
            "{:<28} {:>9} {:>9} {:>9} {:>9}",
            "latency (ms)", "p50", "p90", "p99", "max"
        );
        for (name, s) in [
            ("accept (\".\" -> 250)", &accept),
            ("session (connect -> 221)", &session),
        ] {
            println!(
                "{name:<28} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                s["p50_ms"].as_f64().unwrap_or(0.0),
                s["p90_ms"].as_f64().unwrap_or(0.0),
                s["p99_ms"].as_f64().unwrap_or(0.0),
                s["max_ms"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(e) = errors.first() {
            println!("first error: {e}");
        }
    }
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
