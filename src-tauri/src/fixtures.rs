//! The UI tests' fixtures (`ui/e2e/fixtures/*.json`), produced by the real
//! engine: a real spool and listener, messages put through them to the
//! testkit's fake Exchange (sent, failed with 5.7.60, deferred, queued
//! behind the rate limit), and the answers of the IPC commands as the shell
//! builds them. What varies between runs (ids, times, ports, paths) is
//! normalised, so the files are stable.
//!
//! Like the bindings (contract.rs), the test fails when the checked-in files
//! differ from what the engine answers; `UPDATE_FIXTURES=1 cargo test -p
//! postern --lib fixtures` rewrites them. `ui/e2e/fixtures.ts` loads them
//! and shifts the times to the moment the page is shown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use postern_engine::auth::{AccountState, NOT_SIGNED_IN_YET};
use postern_engine::config::Config;
use postern_engine::control::{Controller, MessageDetail, Request, Status};
use postern_engine::engine::Engine;
use postern_engine::spool::{now_ms, MessageId, MessageInfo, State};
use postern_testkit::{FakeExchange, FakeExchangeOptions, Fault, Role, Stage};
use serde::Serialize;
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;

use crate::contract::{AccountReply, SettingsReply};
use crate::logs::{BufferLayer, LogBuffer, LogLine};
use crate::notify::NotifySettings;

/// "Now" in the fixtures: 2026-01-05 10:00 UTC, a Monday morning.
const NOW: u64 = 1_767_607_200_000;
const HOUR: u64 = 3_600_000;
const SPOOL: &str = "/home/office/.local/share/postern/spool";
const CONFIG_PATH: &str = "/home/office/.config/postern/postern.toml";
const RETRY_FIRST_MS: u64 = 5 * 60_000;
/// Fields holding unix milliseconds.
const TIME_KEYS: &[&str] = &[
    "received_at",
    "updated_at",
    "recheck_at",
    "time",
    "eta_unix_ms",
    "access_token_expires_at",
    "expires_at",
    "checked_at",
    "last_poll",
    "next_poll",
];

/// Makes a run's answers comparable with another run's.
struct Normalise {
    /// The run's "now", mapped to [`NOW`].
    now: u64,
    ids: Vec<(String, String)>,
    text: Vec<(String, String)>,
    /// Stored size (with the Received header Postern adds, whose length
    /// varies with the time and the device's port) → the device's bytes.
    sizes: BTreeMap<u64, u64>,
    upstream_port: u16,
    patterns: Vec<(regex::Regex, &'static str)>,
}

impl Normalise {
    fn value(&self, key: &str, v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (self.string(k), self.value(k, v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(key, v)).collect()),
            Value::String(s) => Value::String(self.string(s)),
            Value::Number(n) => self
                .number(key, n.as_f64().unwrap_or(0.0))
                .unwrap_or(v.clone()),
            v => v.clone(),
        }
    }

    fn number(&self, key: &str, n: f64) -> Option<Value> {
        let ms = n as u64;
        if key == "size" {
            return self.sizes.get(&ms).map(|s| json!(s));
        }
        if key == "port" && ms == u64::from(self.upstream_port) {
            return Some(json!(587));
        }
        if key == "next_attempt" || key == "next_attempt_unix" {
            // Retries are jittered ±20 %: the nominal delay.
            return Some(json!(NOW + RETRY_FIRST_MS));
        }
        if key == "at" {
            // Hour buckets: the same number of hours back from now.
            let back = (self.now - ms.min(self.now)) / HOUR;
            return Some(json!(NOW - back * HOUR));
        }
        if TIME_KEYS.contains(&key) && ms > 1_000_000_000_000 {
            let offset = ms as i64 - self.now as i64;
            let minutes = (offset as f64 / 60_000.0).round() as i64;
            return Some(json!((NOW as i64 + minutes * 60_000) as u64));
        }
        if key.ends_with("_secs") && key != "recipient_window_secs" {
            return Some(json!((n / 60.0).round() * 60.0));
        }
        None
    }

    fn string(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in self.ids.iter().chain(&self.text) {
            s = s.replace(from, to);
        }
        for (stored, sent) in &self.sizes {
            for form in ["size={}", "message, {} bytes", "SIZE={}"] {
                s = s.replace(
                    &form.replace("{}", &stored.to_string()),
                    &form.replace("{}", &sent.to_string()),
                );
            }
        }
        for (re, to) in &self.patterns {
            s = re.replace_all(&s, *to).into_owned();
        }
        s
    }
}

async fn wait_for_state(c: &Controller, id: &MessageId, want: State) -> MessageInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = c.spool.get(id).filter(|m| m.status.state == want) {
            return m;
        }
        assert!(Instant::now() < deadline, "{id} never became {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the engine has logged `needle`, so the log's order does not
/// depend on how the tasks were scheduled.
async fn wait_for_log(logs: &LogBuffer, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !logs.since(0).iter().any(|l| l.message.contains(needle)) {
        assert!(Instant::now() < deadline, "never logged {needle:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mail(from: &str, to: &str, subject: &str, lines: usize) -> String {
    let mut m = format!(
        "From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Date: Mon, 05 Jan 2026 09:58:00 +0000\r\nMessage-ID: <{lines}.fixture@contoso.com>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    for i in 0..lines {
        m.push_str(&format!("Line {i} of the scanned document.\r\n"));
    }
    m
}

/// The engine's answers, keyed by fixture file name.
async fn answers(logs: &LogBuffer) -> (BTreeMap<&'static str, Value>, Normalise) {
    let exchange = FakeExchange::start(FakeExchangeOptions {
        // Plays smtp.office365.com without AUTH (the connector role), so no
        // keychain is needed: Postern's submission mode with auth "none".
        role: Role::Connector,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca = exchange.write_ca_file(dir.path());
    let spool = dir.path().join("spool");
    let config_path = dir.path().join("postern.toml");
    let text = format!(
        r#"
[listener]
listen = ["127.0.0.1:0"]
allow = ["127.0.0.0/8", "192.168.1.0/24"]
hostname = "office-pc"

[upstream]
mode = "submission"
auth = "none"
host = "localhost"
port = {port}
mailbox = "scanner@contoso.com"
ca_file = "{ca}"

[limits]
messages_per_minute = 2
max_connections = 1

[delivery]
retry_first = "5m"

[spool]
dir = "{spool}"
"#,
        port = exchange.port(),
        ca = ca.display(),
        spool = spool.display(),
    );
    let config = Config::parse(&text, &config_path).unwrap();
    let engine = Engine::start(config.clone()).await.unwrap();
    let c = engine.controller();
    let addr: SocketAddr = engine.listening()[0].0;
    let sent_bytes = std::sync::Mutex::new(BTreeMap::new());
    let send = |from: &'static str, to: &'static str, subject: &'static str, lines: usize| {
        let body = mail(from, to, subject, lines);
        let sent_bytes = &sent_bytes;
        async move {
            let id = submit(addr, from, &[to], &body).await.unwrap();
            sent_bytes
                .lock()
                .unwrap()
                .insert(id.clone(), body.len() as u64);
            id
        }
    };

    // Refused for good: the mailbox may not send as this sender.
    exchange.push_fault(Fault::Reply {
        stage: Stage::DataEnd,
        reply: "550 5.7.60 SMTP; Client does not have permissions to send as this sender".into(),
    });
    let failed = send(
        "reception@fabrikam.com",
        "legal@contoso.com",
        "Scan to email: Contract signed",
        40,
    )
    .await;
    wait_for_state(&c, &failed, State::Failed).await;
    wait_for_log(logs, &format!("failed id={failed}")).await;
    // A passing fault at Microsoft: tried again later.
    exchange.push_fault(Fault::Reply {
        stage: Stage::DataEnd,
        reply: "450 4.7.0 Temporary server error. Please try again later. PRX4".into(),
    });
    let deferred = send(
        "billing@contoso.com",
        "ar@contoso.com",
        "Invoice INV-2026-0117",
        12,
    )
    .await;
    wait_for_state(&c, &deferred, State::Deferred).await;
    wait_for_log(logs, &format!("deferred id={deferred}")).await;
    // Delivered: it takes the minute's only slot...
    let sent = send(
        "scanner@contoso.com",
        "accounts@contoso.com",
        "Scanned document from RICOH MP C3004",
        200,
    )
    .await;
    wait_for_state(&c, &sent, State::Sent).await;
    wait_for_log(logs, &format!("sent id={sent}")).await;
    // ...so the next one waits for the limit, holding the one connection
    // (it is "sending"), and the one after it waits its turn ("queued").
    let waiting = send(
        "nas@contoso.com",
        "it@contoso.com",
        "Daily backup report",
        8,
    )
    .await;
    wait_for_state(&c, &waiting, State::Sending).await;
    let queued = send(
        "scanner@contoso.com",
        "anna.berg@contoso.com",
        "Scanned document from RICOH MP C3004",
        120,
    )
    .await;
    wait_for_state(&c, &queued, State::Queued).await;
    wait_for_log(logs, &format!("message queued id={queued}")).await;

    let run_now = now_ms();
    let status: Status = c.status().await;
    assert_eq!(status.queue.queued, 1, "the last message waits: {status:?}");
    let mut out: BTreeMap<&'static str, Value> = BTreeMap::new();
    out.insert("status", json!(status));
    out.insert(
        "status-send-as",
        json!(send_as_status(&config, &status).await),
    );
    let queue = c.handle(Request::Queue).await.data.unwrap();
    out.insert("queue", queue);
    let mut messages = serde_json::Map::new();
    for id in [&failed, &deferred, &sent, &waiting, &queued] {
        let d = c
            .handle(Request::Show { id: id.clone() })
            .await
            .data
            .unwrap();
        let d: MessageDetail = serde_json::from_value(d).unwrap();
        messages.insert(id.to_string(), json!(d));
    }
    out.insert("messages", Value::Object(messages));
    out.insert(
        "history",
        c.handle(Request::ThrottleHistory).await.data.unwrap(),
    );
    // The log lines of the run so far (the engine's words; debug lines
    // left out, their number depends on timing between tasks).
    let lines: Vec<LogLine> = logs
        .since(0)
        .into_iter()
        .filter(|l| l.level != "debug" && l.level != "trace")
        .enumerate()
        .map(|(i, l)| LogLine {
            seq: i as u64 + 1,
            ..l
        })
        .collect();
    out.insert("logs", json!(lines));
    // No graceful shutdown: it would wait out the rate limit for the message
    // being sent. The test's runtime ends every task when it is dropped.
    drop(engine);

    // The Account page of a first start with the README's interactive
    // OAuth setup: nothing signed in yet.
    let mut readme = readme_config();
    readme.oauth.flow = postern_engine::config::OAuthFlow::Interactive;
    out.insert(
        "account",
        json!(AccountReply::new(
            &readme,
            AccountState::SignedOut {
                reason: NOT_SIGNED_IN_YET.into()
            }
        )),
    );
    let path = Path::new(CONFIG_PATH).to_path_buf();
    out.insert(
        "settings",
        json!(SettingsReply {
            path: path.clone(),
            config: readme_config(),
        }),
    );
    // No config file at all: the defaults, as the form gets them.
    let first = Config::load(&dir.path().join("absent.toml")).unwrap();
    let first_json = serde_json::to_value(&first).unwrap();
    out.insert(
        "settings-first-start",
        json!(SettingsReply {
            path,
            config: first
        }),
    );
    let mut with_mailbox = first_json.clone();
    with_mailbox["upstream"]["mailbox"] = json!("scanner@contoso.com");
    out.insert(
        "validate-first-start",
        json!(crate::settings::validate(&with_mailbox, &config_path)),
    );
    let first_graph = with_mailbox.clone();
    let mut bad = first_json;
    bad["listener"]["allow"] = json!(["192.168.1.0/24", "10.0.0.0/40"]);
    out.insert(
        "validate-bad",
        json!(crate::settings::validate(&bad, &config_path)),
    );
    out.insert("notifications", json!(NotifySettings::default()));
    graph::answers(&mut out, &first_graph, &config_path, run_now);
    let traced = graph::traced(&mut out, dir.path()).await;

    let sent_bytes = sent_bytes.into_inner().unwrap();
    let sizes = [&failed, &deferred, &sent, &waiting, &queued]
        .iter()
        .map(|id| (c.spool.get(id).unwrap().size, sent_bytes[*id]))
        .chain([traced.size])
        .collect();
    let ids = [&failed, &deferred, &sent, &waiting, &queued, &traced.id]
        .iter()
        .enumerate()
        .map(|(i, id)| (id.to_string(), format!("019b8d2e6a00{:04x}", i + 1)))
        .collect();
    let spool_text = spool.display().to_string();
    let dir_text = dir.path().display().to_string();
    // A placeholder first, so the device-port pattern below leaves it.
    let listen = addr.to_string();
    let upstream = format!("localhost:{}", exchange.port());
    let upstream_ip = format!("127.0.0.1:{}", exchange.port());
    let normalise = Normalise {
        now: run_now,
        ids,
        sizes,
        upstream_port: exchange.port(),
        text: traced
            .text
            .into_iter()
            .chain([
                (spool_text, SPOOL.into()),
                (dir_text, "/home/office/.config/postern".into()),
                (listen, "LISTENER".into()),
                (upstream, "smtp.office365.com:587".into()),
                (upstream_ip, "52.98.160.2:587".into()),
                ("localhost".into(), "smtp.office365.com".into()),
                (postern_engine::engine::host_name(), "office-pc".into()),
            ])
            .collect(),
        patterns: vec![
            (
                regex::Regex::new(r"127\.0\.0\.1:\d{2,5}").unwrap(),
                "192.168.1.20:51234",
            ),
            (regex::Regex::new("LISTENER").unwrap(), "127.0.0.1:2525"),
            (
                regex::Regex::new(r"<[0-9A-F]{16}@smtp\.office365\.com>").unwrap(),
                "<DM6PR10MB4123.namprd10.prod.outlook.com>",
            ),
            (
                regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap(),
                "2026-01-05T10:00:00Z",
            ),
            (
                regex::Regex::new(r"\w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}").unwrap(),
                "Mon, 5 Jan 2026 10:00:00 +0000",
            ),
        ],
    };
    (out, normalise)
}

/// The status with `upstream.send_as = "sender"`: the engine's throttle
/// with the limits of the run above, once each sender has sent from their
/// own mailbox and Microsoft asked Bob's to wait (a 429 with Retry-After).
async fn send_as_status(config: &Config, status: &Status) -> Status {
    use postern_engine::throttle::{Clock, Throttle};
    let throttle = Throttle::open_keyed(
        postern_engine::engine::throttle_limits(config),
        postern_engine::engine::throttle_concurrency(config),
        &config.upstream.mailbox,
        None,
        Clock::system(),
    )
    .unwrap();
    for (mailbox, rcpts) in [
        ("scanner@contoso.com", 1),
        ("scanner@contoso.com", 2),
        ("alice@contoso.com", 3),
        ("bob@contoso.com", 1),
    ] {
        let slot = throttle.try_acquire(mailbox, rcpts).unwrap();
        throttle.accepted(slot).await;
    }
    let retry_after = Some(Duration::from_secs(300));
    throttle.server_busy(
        "bob@contoso.com",
        Duration::from_secs(60),
        Duration::from_secs(3600),
        retry_after,
    );
    let mut out = status.clone();
    out.throttle = Some(throttle.status(&[1]));
    out
}
#[path = "fixtures_graph.rs"]
mod graph;

/// The README's example config (its first ```toml block), as the engine
/// reads it.
fn readme_config() -> Config {
    let readme = include_str!("../../README.md");
    let start = readme.find("```toml\n").unwrap() + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    Config::parse(&readme[start..end], Path::new(CONFIG_PATH)).unwrap()
}

fn pretty(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap();
    s.push('\n');
    s
}

#[test]
fn ui_fixtures_are_the_engines_answers() {
    let logs = LogBuffer::new();
    let subscriber = tracing_subscriber::registry().with(BufferLayer(logs.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so the engine's log lines reach this test's subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (out, n) = rt.block_on(answers(&logs));

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/e2e/fixtures");
    let generated: BTreeMap<String, String> = out
        .iter()
        .map(|(name, v)| (format!("{name}.json"), pretty(&n.value("", v))))
        .collect();
    if std::env::var_os("UPDATE_FIXTURES").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &generated {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let differ: Vec<&str> = generated
        .iter()
        .filter(|(name, text)| std::fs::read_to_string(dir.join(name)).ok().as_ref() != Some(text))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        differ.is_empty(),
        "ui/e2e/fixtures/ is not what the engine answers ({}); \
         run `UPDATE_FIXTURES=1 cargo test -p postern --lib fixtures` and commit the result",
        differ.join(", ")
    );
}

/// Per SMTP command with the engine's listener.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One SMTP transaction with the engine's listener, as a device would; returns the queue id
/// from the `250 ... queued as ID` reply.
async fn submit(
    addr: SocketAddr,
    from: &str,
    to: &[&str],
    message: &str,
) -> Result<MessageId, String> {
    use tokio::io::{AsyncWriteExt, BufReader};
    let tcp = tokio::time::timeout(SMTP_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    let (read, mut write) = tcp.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, 220).await?;
    let host = postern_engine::engine::host_name();
    // Dot-stuffing (RFC 5321 §4.5.2): every line that starts with ".",
    // the first one included.
    let mut data: String = message
        .split_inclusive("\r\n")
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}")
            } else {
                l.to_string()
            }
        })
        .collect();
    data.push_str(".\r\n");
    let steps = [
        (format!("EHLO {host}\r\n"), 250),
        (format!("MAIL FROM:<{from}>\r\n"), 250),
    ]
    .into_iter()
    .chain(to.iter().map(|t| (format!("RCPT TO:<{t}>\r\n"), 250)))
    .chain([("DATA\r\n".to_string(), 354), (data, 250)]);
    let mut last = String::new();
    for (line, code) in steps {
        write
            .write_all(line.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        last = expect(&mut read, code).await?;
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    last.rsplit("queued as ")
        .next()
        .filter(|_| last.contains("queued as "))
        .and_then(|id| id.trim().parse::<MessageId>().ok())
        .ok_or_else(|| format!("unexpected reply: {last}"))
}

/// Reads one (possibly multi-line) reply; an error unless its code is `code`.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(
    read: &mut R,
    code: u16,
) -> Result<String, String> {
    use tokio::io::AsyncBufReadExt;
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(SMTP_TIMEOUT, read.read_line(&mut line))
            .await
            .map_err(|_| "Postern stopped answering".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err(format!("connection closed ({})", reply.trim_end()));
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    let reply = reply.trim_end().to_string();
    if reply.get(..3).and_then(|c| c.parse::<u16>().ok()) == Some(code) {
        Ok(reply)
    } else {
        Err(reply)
    }
}
