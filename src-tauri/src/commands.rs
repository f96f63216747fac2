//! What each CLI command does: load the config, then either run the engine
//! (`serve`) or ask it something over its control socket — or, when no
//! engine is running, answer from the spool directly.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use postern_engine::auth::TokenSource;
use postern_engine::config::{Config, OAuthFlow, UpstreamAuth};
use postern_engine::control::{self, ClientError, Controller, Request, Response};
use postern_engine::engine::Engine;
use postern_engine::secrets::{Secret, SecretKey, SecretStore};
use postern_engine::spool::{MessageId, MessageInfo, Spool};
use serde_json::Value;

use crate::cli::{AccountCommand, Command, QueueAction};

/// Exit codes: 0 ok, 1 the operation failed, 2 bad usage or configuration.
pub(crate) const EXIT_FAILED: i32 = 1;
pub(crate) const EXIT_CONFIG: i32 = 2;

pub async fn run(command: Command, config_path: PathBuf) -> i32 {
    let config = match Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("postern: {e}");
            return EXIT_CONFIG;
        }
    };
    match command {
        Command::Serve => serve(config, &config_path).await,
        Command::Queue(args) => match args.action {
            None => queue_list(&config, args.json).await,
            Some(QueueAction::Show { id, json }) => {
                with_id(&id, |id| {
                    ask(&config, Request::Show { id }, move |v| show(v, json))
                })
                .await
            }
            Some(QueueAction::Retry { all: true, .. }) => {
                ask(&config, Request::RetryAll, |v| {
                    println!("{} message(s) will be tried again now.", v["retried"]);
                })
                .await
            }
            Some(QueueAction::Retry {
                id, rewrite_sender, ..
            }) => {
                let id = id.unwrap_or_default();
                with_id(&id, |id| {
                    let req = if rewrite_sender {
                        Request::ResendRewritten { id: id.clone() }
                    } else {
                        Request::Retry { id: id.clone() }
                    };
                    ask(&config, req, move |_| {
                        let how = if rewrite_sender {
                            ", sent as the mailbox"
                        } else {
                            ""
                        };
                        println!("Message {id} will be tried again now{how}.")
                    })
                })
                .await
            }
            Some(QueueAction::Delete { id }) => {
                with_id(&id, |id| {
                    ask(
                        &config,
                        Request::Delete { id: id.clone() },
                        move |v| match v["draft_left"].as_str() {
                            Some(note) => println!(
                                "Message {id} deleted; {}.",
                                crate::terminal::clean(note, false)
                            ),
                            None if v["drafts_deleted"].as_u64().unwrap_or(0) > 0 => println!(
                            "Message {id} deleted, and its unsent draft removed from the mailbox."
                        ),
                            None => println!("Message {id} deleted."),
                        },
                    )
                })
                .await
            }
        },
        Command::Status { json } => {
            ask(&config, Request::Status, move |v| {
                if json {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap());
                } else {
                    let mut v = v;
                    crate::terminal::clean_value(&mut v);
                    print_status(&v);
                }
            })
            .await
        }
        Command::Account(cmd) => account(cmd, &config).await,
        Command::Diagnose { json } => crate::diagnose::run(&config, &config_path, json).await,
        Command::SendTest { to, from, no_wait } => {
            crate::send_test::run(&config, &to, from, !no_wait).await
        }
    }
}

async fn serve(config: Config, config_path: &Path) -> i32 {
    init_logging();
    tracing::info!(config = %config_path.display(), "starting Postern {}", env!("CARGO_PKG_VERSION"));
    if let Some(gap) = config.upstream_gap() {
        tracing::warn!("{gap} Mail from devices is accepted and kept until this is fixed.");
    }
    let engine = match Engine::start(config).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("postern: {e}");
            return EXIT_FAILED;
        }
    };
    wait_for_signal().await;
    tracing::info!("stopping: finishing what is in flight");
    engine.shutdown().await;
    0
}

pub(crate) fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn with_id<F, Fut>(id: &str, f: F) -> i32
where
    F: FnOnce(MessageId) -> Fut,
    Fut: std::future::Future<Output = i32>,
{
    match id.parse::<MessageId>() {
        Ok(id) => f(id).await,
        Err(e) => {
            eprintln!("postern: {e}");
            EXIT_CONFIG
        }
    }
}

/// Sends a request to the running engine, or handles it on the spool
/// directly when none runs; prints the result with `print`.
async fn ask(config: &Config, req: Request, print: impl FnOnce(Value)) -> i32 {
    let resp = match request(config, req).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postern: {e}");
            return EXIT_FAILED;
        }
    };
    match resp {
        Response { ok: true, data, .. } => {
            print(data.unwrap_or(Value::Null));
            0
        }
        Response { error, .. } => {
            eprintln!("postern: {}", error.unwrap_or_else(|| "failed".into()));
            EXIT_FAILED
        }
    }
}

async fn request(config: &Config, req: Request) -> Result<Response, String> {
    let dir = config.spool_dir();
    match control::request(&dir, &req).await {
        Ok(r) => return Ok(r),
        Err(ClientError::NotRunning) => {}
        Err(e) => return Err(e.to_string()),
    }
    if !dir.join("msg").exists() {
        // Never ran: nothing queued, and no reason to create the spool now.
        if matches!(req, Request::Queue) {
            return Ok(Response {
                ok: true,
                data: Some(Value::Array(vec![])),
                error: None,
            });
        }
    }
    let spool = Spool::open(&dir, Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let controller = Controller {
        config: Arc::new(config.clone()),
        spool,
        tokens: TokenSource::new(config, SecretStore::new()),
        worker: None,
        throttle: None,
        tracking: None,
        listening: vec![],
    };
    Ok(controller.handle(req).await)
}

async fn queue_list(config: &Config, json: bool) -> i32 {
    ask(config, Request::Queue, move |mut v| {
        if json {
            println!("{}", serde_json::to_string_pretty(&v).unwrap());
            return;
        }
        crate::terminal::clean_value(&mut v);
        let list: Vec<MessageInfo> = serde_json::from_value(v).unwrap_or_default();
        if list.is_empty() {
            println!("The queue is empty.");
            return;
        }
        println!(
            "{:<16}  {:<8}  {:<19}  {:<28}  {:<28}  {:>8}  {:>3}  {:<24}  LAST REPLY",
            "ID", "STATE", "RECEIVED", "FROM", "TO", "SIZE", "TRY", "TRACE"
        );
        for m in list {
            let to = match m.to.len() {
                1 => m.to[0].clone(),
                n => format!("{} (+{})", m.to[0], n - 1),
            };
            println!(
                "{:<16}  {:<8}  {:<19}  {:<28}  {:<28}  {:>8}  {:>3}  {:<24}  {}",
                m.id,
                m.status.state.to_string(),
                time_of(m.received_at),
                clip(if m.from.is_empty() { "<>" } else { &m.from }, 28),
                clip(&to, 28),
                m.size,
                m.status.attempts,
                crate::trace_text::trace_mark(&m),
                m.status.last_reply.as_deref().unwrap_or("")
            );
        }
    })
    .await
}

fn show(mut v: Value, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap());
        return;
    }
    crate::terminal::clean_value(&mut v);
    let transcript = v["transcript"].as_str().unwrap_or("").to_string();
    let Ok(m) = serde_json::from_value::<MessageInfo>(v) else {
        return;
    };
    println!("Message   {}", m.id);
    println!("State     {}", m.status.state);
    println!(
        "Received  {} from {} ({})",
        time_of(m.received_at),
        m.client.peer,
        m.client.helo
    );
    println!(
        "From      {}",
        if m.from.is_empty() { "<>" } else { &m.from }
    );
    println!("Subject   {}", m.subject);
    if let Some(mid) = &m.message_id {
        println!("Message-ID <{mid}>");
    }
    println!("Size      {} bytes", m.size);
    println!("Attempts  {}", m.status.attempts);
    if let Some(r) = &m.status.last_reply {
        println!("Reply     {r}");
    }
    if let Some(s) = &m.status.summary {
        println!("Meaning   {s}");
    }
    if let Some(f) = m.status.fix.as_deref().filter(|f| !f.is_empty()) {
        println!("Fix       {f}");
    }
    println!("Recipients:");
    for r in &m.status.recipients {
        let state = format!("{:?}", r.state).to_lowercase();
        println!(
            "  {:<8} {}  {}",
            state,
            r.address,
            r.reply.as_deref().unwrap_or("")
        );
        for line in crate::trace_text::trace_lines(r) {
            println!("           {line}");
        }
    }
    if !transcript.is_empty() {
        println!("Transcript:\n{transcript}");
    }
}

fn print_status(v: &Value) {
    let running = v["running"].as_bool().unwrap_or(false);
    println!(
        "Postern   {}",
        if !running {
            "not running"
        } else if v["paused"].as_bool() == Some(true) {
            "running, delivery paused"
        } else {
            "running"
        }
    );
    let q = &v["queue"];
    println!(
        "Queue     {} queued, {} sending, {} deferred, {} held, {} failed, {} sent{}",
        q["queued"],
        q["sending"],
        q["deferred"],
        q["held"],
        q["failed"],
        q["sent"],
        match q["bounced"].as_u64() {
            Some(n) if n > 0 => format!(" ({n} bounced after sending)"),
            _ => String::new(),
        }
    );
    let u = &v["upstream"];
    println!(
        "Upstream  {} to {}:{} as {}",
        u["mode"].as_str().unwrap_or(""),
        u["host"].as_str().unwrap_or(""),
        u["port"],
        u["mailbox"]
            .as_str()
            .filter(|m| !m.is_empty())
            .unwrap_or("(no mailbox set)")
    );
    println!("Account   {}", account_line(&v["account"]));
    for line in crate::trace_text::tracking_lines(v, postern_engine::spool::now_ms()) {
        println!("{line}");
    }
    if let Some(t) = v["throttle"].as_object() {
        let secs = |k: &str| t[k].as_f64();
        if let Some(limit) = t["messages_per_minute"].as_u64() {
            println!(
                "Pacing    {}/{} messages in the last minute, next slot in {}, {} connection(s) open",
                t["messages_last_minute"],
                limit,
                span(secs("next_slot_in_secs").unwrap_or(0.0)),
                v["connections"]
            );
        }
        if let Some(limit) = t["recipients_per_day"].as_u64() {
            let frees = secs("recipients_free_in_secs")
                .map(|s| format!("; the oldest stop counting in {}", span(s)))
                .unwrap_or_default();
            println!(
                "Budget    {}/{} recipients in the last {}{frees}",
                t["recipients_in_window"],
                limit,
                span(secs("recipient_window_secs").unwrap_or(0.0))
            );
        }
        if let Some(b) = secs("quota_blocked_for_secs") {
            println!(
                "          Microsoft reported the daily quota spent: sending resumes in {}",
                span(b)
            );
        }
        let rows = t["mailboxes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if rows.len() > 1 {
            for m in rows {
                println!("Mailbox   {}", mailbox_line(&v["throttle"], m));
            }
        }
        match secs("eta_secs") {
            Some(0.0) => {}
            Some(e) => println!("Queue ETA everything submitted in {}", span(e)),
            None if t.contains_key("eta_secs") => {
                println!("Queue ETA unknown: a waiting message can never fit the budget")
            }
            None => {}
        }
    }
    if let Some(a) = v["attention"].as_object() {
        println!("ATTENTION {}", a["summary"].as_str().unwrap_or(""));
        println!("          {}", a["cause"].as_str().unwrap_or(""));
        if let Some(fix) = a["fix"].as_str().filter(|f| !f.is_empty()) {
            println!("Fix       {fix}");
        }
    }
}

/// One sending mailbox's budget (`upstream.send_as = "sender"`).
fn mailbox_line(t: &Value, m: &Value) -> String {
    let of = |k: &str| t[k].as_u64().map(|l| format!("/{l}")).unwrap_or_default();
    let mut line = format!(
        "{}: {}{} messages in the last minute, {}{} recipients in the window, next slot in {}",
        m["address"].as_str().unwrap_or(""),
        m["messages_last_minute"],
        of("messages_per_minute"),
        m["recipients_in_window"],
        of("recipients_per_day"),
        span(m["next_slot_in_secs"].as_f64().unwrap_or(0.0))
    );
    if let Some(b) = m["busy_for_secs"].as_f64() {
        line.push_str(&format!("; Microsoft asked it to wait {}", span(b)));
    }
    if let Some(b) = m["quota_blocked_for_secs"].as_f64() {
        line.push_str(&format!("; quota spent for {}", span(b)));
    }
    line
}

fn account_line(a: &Value) -> String {
    match a["state"].as_str().unwrap_or("") {
        "signed-in" => format!(
            "signed in (access token valid until {})",
            time_of(a["access_token_expires_at"].as_u64().unwrap_or(0))
        ),
        "ready" => "credentials stored; not used yet".into(),
        // The reason says it: "Not signed in yet: sign in from …".
        "signed-out" => a["reason"]
            .as_str()
            .unwrap_or("Not signed in yet.")
            .to_string(),
        "sign-in-needed" => format!("SIGN-IN NEEDED: {}", a["reason"].as_str().unwrap_or("")),
        "not-configured" => format!("not configured: {}", a["reason"].as_str().unwrap_or("")),
        other => other.to_string(),
    }
}

async fn account(cmd: AccountCommand, config: &Config) -> i32 {
    let store = SecretStore::new();
    match cmd {
        AccountCommand::Login {
            device_code,
            no_browser,
        } => crate::account_login::run(config, &store, device_code, no_browser).await,
        AccountCommand::Status { json } => {
            let running = match control::request(&config.spool_dir(), &Request::Status).await {
                Ok(Response { data: Some(v), .. }) => {
                    serde_json::from_value::<control::Status>(v).ok()
                }
                _ => None,
            };
            let state = match running {
                Some(status) => status.account,
                None => TokenSource::new(config, store.clone()).check_stored().await,
            };
            let reply = crate::contract::AccountReply::new(config, state);
            let v = serde_json::to_value(&reply).expect("the account serialises");
            if json {
                println!("{}", serde_json::to_string_pretty(&v).unwrap());
            } else {
                println!("Mailbox   {}", config.upstream.mailbox);
                println!("Auth      {}", v["auth"].as_str().unwrap_or(""));
                println!("Flow      {}", v["flow"].as_str().unwrap_or(""));
                println!("State     {}", account_line(&v["account"]));
            }
            0
        }
        AccountCommand::Logout => {
            let keys = account_keys(config);
            for key in &keys {
                if let Err(e) = store.delete(key) {
                    eprintln!("postern: {e}");
                    return EXIT_FAILED;
                }
            }
            println!("Removed Postern's sign-in and secrets for this account from the keychain.");
            0
        }
        AccountCommand::SetSecret { device } => set_secret(config, &store, device),
    }
}

pub(crate) fn account_keys(config: &Config) -> Vec<SecretKey> {
    let mut keys = vec![SecretKey::MailboxPassword {
        mailbox: config.upstream.mailbox.clone(),
    }];
    if !config.oauth.client_id.is_empty() {
        keys.push(SecretKey::RefreshToken {
            client_id: config.oauth.client_id.clone(),
        });
        keys.push(SecretKey::ClientSecret {
            client_id: config.oauth.client_id.clone(),
        });
    }
    keys
}

fn set_secret(config: &Config, store: &SecretStore, device: Option<String>) -> i32 {
    let (key, what) = match device {
        Some(user) => {
            if !config.listener.users.contains(&user) {
                eprintln!("postern: note: {user:?} is not in listener.users yet; add it there so the device can log in.");
            }
            (
                SecretKey::DevicePassword { user: user.clone() },
                format!("password for device {user}"),
            )
        }
        None if config.upstream.auth == UpstreamAuth::Password => {
            if config.upstream.mailbox.is_empty() {
                eprintln!(
                    "postern: set upstream.mailbox first: the password belongs to that mailbox"
                );
                return EXIT_CONFIG;
            }
            (
                SecretKey::MailboxPassword {
                    mailbox: config.upstream.mailbox.clone(),
                },
                format!("password for {}", config.upstream.mailbox),
            )
        }
        None if config.upstream.auth == UpstreamAuth::OAuth
            && config.oauth.flow == OAuthFlow::ClientCredentials =>
        {
            if config.oauth.client_id.is_empty() {
                eprintln!("postern: set oauth.client_id first: the secret belongs to that app registration");
                return EXIT_CONFIG;
            }
            (
                SecretKey::ClientSecret {
                    client_id: config.oauth.client_id.clone(),
                },
                "client secret".to_string(),
            )
        }
        None => {
            eprintln!("postern: nothing to store: with auth = \"oauth\" and the interactive or device-code flow, Postern keeps a refresh token from `postern account login`. Use --device NAME for a device password.");
            return EXIT_CONFIG;
        }
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("postern: cannot read standard input: {e}");
        return EXIT_FAILED;
    }
    let value = input.trim_end_matches(['\r', '\n']);
    if value.is_empty() {
        eprintln!("postern: no {what} on standard input; nothing stored");
        return EXIT_CONFIG;
    }
    match store.set(&key, &Secret::new(value)) {
        Ok(()) => {
            println!("Stored the {what} in the OS keychain.");
            0
        }
        Err(e) => {
            eprintln!("postern: {e}");
            EXIT_FAILED
        }
    }
}

/// Seconds as a short human span: "14 s", "3 min 20 s", "5 h 2 min".
fn span(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n - 1).collect();
        c.push('…');
        c
    }
}

/// Unix ms as local-agnostic UTC "YYYY-MM-DD HH:MM:SS".
fn time_of(ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    postern_engine::clock::plain(t)
}
