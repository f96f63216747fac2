//! `postern-fakes --dir DIR [--messages-per-minute N]
//! [--recipients-per-window N --recipient-window-secs S]`: runs a fake
//! Exchange (submission role), a fake identity platform and a fake
//! Microsoft Graph for benchmarks and GUI tests. The optional limits are those of `FakeExchangeOptions`
//! (off by default).
//!
//! Prints one JSON line
//! `{"smtp_port":..,"authority":"..","ca_file":"..","graph_endpoint":".."}`
//! (`graph_endpoint` is what `graph.endpoint` is set to; its app-only
//! tokens carry the roles `Mail.Send`, `Mail.ReadWrite` and
//! `ExchangeMessageTrace.Read.All`, or those of `--graph-roles A,B`), then
//! one JSON line per message accepted by the fake Exchange
//! (`{"subject":"..","mail_from":..,"rcpt_to":[..],"bytes":N,"sha256":"hex",
//! "at_unix_ms":N,"over_limit_submissions":N,"throttle_replies":N,
//! "quota_replies":N}`: when it was accepted, and the fake's counters when
//! the line was written), and runs until killed (or Ctrl-C).
//!
//! Faults: each line on standard input `fault STAGE REPLY` (STAGE one of
//! `connect`, `ehlo`, `mail-from`, `rcpt-to`, `data`, `data-end`) makes the
//! next transaction get REPLY at that stage, e.g. `fault data-end 550 5.7.60
//! SMTP; Client does not have permissions to send as this sender`; REPLY
//! `drop` closes the connection there instead (at `data-end`: after the
//! whole content, before the reply, and the message is not recorded).
//!
//! Graph faults, on standard input too: `graph-fault KIND STATUS CODE
//! [retry-after=S]` (KIND a request kind: `sendMail`, `createDraft`,
//! `uploadChunk`, `send`, ...), `graph-fault upload-drop N` (the next upload
//! range drops after N bytes), `graph-fault invalid-token` (the next request
//! answers 401). One JSON line per message Graph delivered:
//! `{"graph":true,"subject":..,"mailbox":..,"route":..,"recipients":[..]}`.
//!
//! Message trace: the fake Graph also serves
//! `/v1.0/admin/exchange/tracing/messageTraces` (and its
//! `getDetailsByRecipient`), with a row per recipient of each message it
//! delivered **and of each message the fake Exchange accepted** (its
//! Message-ID header, sender = MAIL FROM, recipients = RCPT TO), so a
//! tracker can be tried with SMTP submission too. Every row is `delivered`
//! unless a line `graph-trace RECIPIENT OUTCOME [CODE]` on standard input
//! says otherwise (OUTCOME `delivered`, `failed` — CODE default `5.1.10`,
//! with Exchange's text for it —, `quarantined`, `filteredAsSpam`,
//! `expanded` or `pending`; for that recipient's rows past and future).
//! Rows show at once (no delays here). Faults on it: `graph-fault
//! listTraces 429 TooManyRequests retry-after=5`, `graph-fault
//! traceDetails 503 ServiceUnavailable`.
//!
//! Accounts: password `scanner@contoso.com` / `secret`; OAuth client
//! `postern-test` with secret `test-secret` (confidential), and the public
//! client `postern-public` (PKCE, device code), both for `scanner@contoso.com`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use postern_testkit::graph::TRACE_ROLE;
use postern_testkit::{
    ClientRegistration, FakeExchange, FakeExchangeOptions, FakeGraph, FakeIdentity, Fault,
    GraphFault, GraphMailbox, GraphOptions, IdentityOptions, RequestKind, Stage, TraceOutcome,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

const USER: &str = "scanner@contoso.com";

/// How long one wait for the next message lasts before waiting again.
const WAIT_ROUND: Duration = Duration::from_secs(365 * 24 * 3600);

fn usage() -> ! {
    eprintln!(
        "usage: postern-fakes --dir DIR [--messages-per-minute N] \
         [--recipients-per-window N --recipient-window-secs S] [--graph-roles A,B]"
    );
    std::process::exit(2);
}

/// The command line.
struct Args {
    dir: PathBuf,
    messages_per_minute: Option<u32>,
    recipients_per_window: Option<u32>,
    recipient_window_secs: Option<u64>,
    graph_roles: Vec<String>,
}

fn number<T: std::str::FromStr>(value: Option<String>) -> T {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage())
}

fn parse_args() -> Args {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut parsed = Args {
        dir: PathBuf::new(),
        messages_per_minute: None,
        recipients_per_window: None,
        recipient_window_secs: None,
        graph_roles: ["Mail.Send", "Mail.ReadWrite", TRACE_ROLE]
            .map(String::from)
            .to_vec(),
    };
    while let Some(arg) = args.next() {
        // `--flag=value` and `--flag value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg, None),
        };
        let value = inline.or_else(|| args.next());
        match flag.as_str() {
            "--dir" => dir = Some(value.unwrap_or_else(|| usage())),
            "--messages-per-minute" => parsed.messages_per_minute = Some(number(value)),
            "--recipients-per-window" => parsed.recipients_per_window = Some(number(value)),
            "--recipient-window-secs" => parsed.recipient_window_secs = Some(number(value)),
            "--graph-roles" => {
                parsed.graph_roles = value
                    .unwrap_or_else(|| usage())
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect()
            }
            _ => usage(),
        }
    }
    parsed.dir = PathBuf::from(dir.unwrap_or_else(|| usage()));
    if parsed.recipients_per_window.is_some() != parsed.recipient_window_secs.is_some() {
        usage();
    }
    parsed
}

fn print_line(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means nobody listens any more: stop.
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let dir = args.dir;
    std::fs::create_dir_all(&dir).expect("create --dir");
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![
            ClientRegistration {
                client_id: "postern-test".to_string(),
                client_secret: Some("test-secret".to_string()),
                user: USER.to_string(),
            },
            ClientRegistration {
                client_id: "postern-public".to_string(),
                client_secret: None,
                user: USER.to_string(),
            },
        ],
        graph_roles: args.graph_roles.clone(),
        ..Default::default()
    })
    .await;
    let graph = FakeGraph::start(GraphOptions {
        identity: Some(identity.clone()),
        mailboxes: vec![GraphMailbox::new(USER)],
        ..Default::default()
    })
    .await;
    let exchange = FakeExchange::start(FakeExchangeOptions {
        accept_password: Some((USER.to_string(), "secret".to_string())),
        token_validator: Some(identity.validator()),
        messages_per_minute: args.messages_per_minute,
        recipients_per_window: args
            .recipients_per_window
            .zip(args.recipient_window_secs.map(Duration::from_secs)),
        ..Default::default()
    })
    .await;
    let ca_file = exchange.write_ca_file(&dir);
    print_line(json!({
        "smtp_port": exchange.port(),
        "authority": identity.authority(),
        "ca_file": ca_file.display().to_string(),
        "graph_endpoint": graph.endpoint(),
    }));

    let relay = async {
        let mut seen = 0;
        loop {
            let messages = exchange.wait_for_messages(seen + 1, WAIT_ROUND).await;
            let times = exchange.submission_wall_times();
            let stats = exchange.stats();
            for (m, at) in messages[seen..].iter().zip(&times[seen..]) {
                let at_ms = at
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis();
                // What Exchange Online's trace would show for it.
                graph.record_trace(
                    &header_of(&m.data, "message-id"),
                    &m.mail_from,
                    &m.rcpt_to,
                    &header_of(&m.data, "subject"),
                    m.data.len() as u64,
                );
                print_line(json!({
                    "subject": header_of(&m.data, "subject"),
                    "mail_from": m.mail_from,
                    "rcpt_to": m.rcpt_to,
                    "bytes": m.data.len(),
                    "sha256": hex::encode(Sha256::digest(&m.data)),
                    "at_unix_ms": at_ms as u64,
                    "over_limit_submissions": stats.over_limit_submissions,
                    "throttle_replies": stats.throttle_replies,
                    "quota_replies": stats.quota_replies,
                }));
            }
            seen = messages.len();
        }
    };
    let graph_relay = async {
        let mut seen = 0;
        loop {
            let messages = graph.wait_for_delivered(seen + 1, WAIT_ROUND).await;
            for m in &messages[seen.min(messages.len())..] {
                print_line(json!({
                    "graph": true,
                    "subject": m.subject,
                    "mailbox": m.mailbox,
                    "route": m.route.map(|r| r.as_str()),
                    "recipients": m.recipients(),
                }));
            }
            seen = seen.max(messages.len());
        }
    };
    let faults = async {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.trim().strip_prefix("graph-trace ") {
                match parse_trace_outcome(rest) {
                    Some((recipient, outcome)) => graph.set_trace_outcome(&recipient, outcome),
                    None => eprintln!("postern-fakes: not understood: {line}"),
                }
                continue;
            }
            if let Some(rest) = line.trim().strip_prefix("graph-fault ") {
                match parse_graph_fault(rest) {
                    Some(f) => graph.push_fault(f),
                    None => eprintln!("postern-fakes: not understood: {line}"),
                }
                continue;
            }
            match parse_fault(&line) {
                Some(f) => exchange.push_fault(f),
                None => eprintln!("postern-fakes: not understood: {line}"),
            }
        }
        // Standard input closed (or /dev/null): keep relaying.
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = relay => {}
        () = graph_relay => {}
        () = faults => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `fault STAGE REPLY` → a reply fault.
fn parse_fault(line: &str) -> Option<Fault> {
    let rest = line.trim().strip_prefix("fault ")?;
    let (stage, reply) = rest.split_once(' ')?;
    let stage = match stage {
        "connect" => Stage::Connect,
        "ehlo" => Stage::Ehlo,
        "mail-from" => Stage::MailFrom,
        "rcpt-to" => Stage::RcptTo,
        "data" => Stage::Data,
        "data-end" => Stage::DataEnd,
        _ => return None,
    };
    if reply.trim() == "drop" {
        return Some(Fault::DropConnection { stage });
    }
    Some(Fault::Reply {
        stage,
        reply: reply.to_string(),
    })
}

/// `KIND STATUS CODE [retry-after=S]`, `upload-drop N` or `invalid-token`
/// (after `graph-fault `) → a Graph fault.
fn parse_graph_fault(rest: &str) -> Option<GraphFault> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        ["invalid-token"] => Some(GraphFault::InvalidToken),
        ["upload-drop", n] => Some(GraphFault::DropUpload {
            after_bytes: n.parse().ok()?,
        }),
        [kind, status, code, more @ ..] if more.len() <= 1 => {
            let retry_after = match more {
                [] => None,
                [r] => Some(r.strip_prefix("retry-after=")?.parse().ok()?),
                _ => return None,
            };
            Some(GraphFault::Reply {
                kind: RequestKind::parse(kind)?,
                status: status.parse().ok()?,
                code: code.to_string(),
                retry_after,
            })
        }
        _ => None,
    }
}

/// `RECIPIENT OUTCOME [CODE]` (after `graph-trace `) → the outcome to
/// script for that recipient.
fn parse_trace_outcome(rest: &str) -> Option<(String, TraceOutcome)> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let (recipient, outcome, code) = match words.as_slice() {
        [r, o] => (r, o, None),
        [r, o, c] => (r, o, Some(*c)),
        _ => return None,
    };
    let outcome = match (*outcome, code) {
        ("failed", code) => TraceOutcome::failed(code.unwrap_or("5.1.10")),
        (_, Some(_)) => return None,
        ("delivered", None) => TraceOutcome::Delivered,
        ("quarantined", None) => TraceOutcome::Quarantined,
        ("filteredAsSpam", None) => TraceOutcome::FilteredAsSpam,
        ("expanded", None) => TraceOutcome::Expanded,
        ("pending", None) => TraceOutcome::Pending,
        _ => return None,
    };
    Some((recipient.to_string(), outcome))
}

/// The first `name` header's value, unfolded ("" when there is none): the
/// Subject for scripts that match what arrived with what they sent, the
/// Message-ID for the trace.
fn header_of(data: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(data);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut found: Option<String> = None;
    for line in head.split("\r\n") {
        match &mut found {
            Some(v) if line.starts_with([' ', '\t']) => {
                v.push(' ');
                v.push_str(line.trim());
            }
            Some(_) => break,
            None => {
                found = line
                    .split_once(':')
                    .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_string());
            }
        }
    }
    found.unwrap_or_default()
}
