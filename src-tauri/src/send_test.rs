//! `postern send-test --to ADDR`: asks the running Postern to queue a small
//! test message (`Request::SendTest`: the engine checks both addresses and
//! writes the message through its spool, like any device's mail), then
//! follows it through the queue over the control socket until it is sent,
//! failed or held, and prints the outcome with its explanation. Exit code
//! 0 only when it was sent.

use std::time::{Duration, Instant};

use postern_engine::config::Config;
use postern_engine::control::{self, ClientError, Request, Response};
use postern_engine::spool::{MessageId, MessageInfo, State};

use crate::commands::{EXIT_CONFIG, EXIT_FAILED};

/// How long to follow the message before giving up waiting (it stays
/// queued; `postern queue show ID` follows it further).
const WAIT_FOR_OUTCOME: Duration = Duration::from_secs(120);
/// How often the queue is asked while waiting.
const POLL_EVERY: Duration = Duration::from_millis(200);

pub async fn run(config: &Config, to: &str, from: Option<String>, wait: bool) -> i32 {
    let from = from.unwrap_or_else(|| config.upstream.mailbox.clone());
    if from.is_empty() {
        eprintln!("postern: no sender: give --from ADDR, or set upstream.mailbox");
        return EXIT_CONFIG;
    }
    let spool = config.spool_dir();
    match control::request(&spool, &Request::Status).await {
        Ok(Response { data: Some(_), .. }) => {}
        Ok(Response { error, .. }) => {
            eprintln!("postern: {}", error.unwrap_or_default());
            return EXIT_FAILED;
        }
        Err(ClientError::NotRunning) => {
            eprintln!("postern: Postern is not running: start `postern serve` first (send-test goes through its queue).");
            return EXIT_FAILED;
        }
        Err(e) => {
            eprintln!("postern: {e}");
            return EXIT_FAILED;
        }
    }
    let id = match control::request(
        &spool,
        &Request::SendTest {
            from: from.clone(),
            to: to.to_string(),
        },
    )
    .await
    {
        Ok(Response {
            ok: true,
            data: Some(v),
            ..
        }) => match v["id"].as_str().and_then(|s| s.parse::<MessageId>().ok()) {
            Some(id) => id,
            None => {
                eprintln!("postern: the running Postern answered without a queue id");
                return EXIT_FAILED;
            }
        },
        Ok(Response { error, .. }) => {
            eprintln!(
                "postern: the test message was not queued: {}",
                error.unwrap_or_default()
            );
            return EXIT_CONFIG;
        }
        Err(e) => {
            eprintln!("postern: {e}");
            return EXIT_FAILED;
        }
    };
    println!("Queued as {id} (a test message from {from} to {to}).");
    if !wait {
        println!("Follow it with `postern queue show {id}`.");
        return 0;
    }
    follow(config, &id).await
}

/// For the tray app: queues a test message from `upstream.mailbox` to `to`
/// in the running engine; its queue id.
pub(crate) async fn queue_test(
    shell: &crate::shell::Shell,
    config: &Config,
    to: &str,
) -> Result<MessageId, String> {
    let from = config.upstream.mailbox.clone();
    if from.is_empty() {
        return Err("Set upstream.mailbox first: the test message is sent from it.".into());
    }
    let v = shell
        .ask(Request::SendTest {
            from,
            to: to.to_string(),
        })
        .await?;
    v["id"]
        .as_str()
        .and_then(|s| s.parse::<MessageId>().ok())
        .ok_or_else(|| "the engine answered without a queue id".to_string())
}

/// Polls the queue until the message is sent, failed or held.
async fn follow(config: &Config, id: &MessageId) -> i32 {
    let spool = config.spool_dir();
    let deadline = Instant::now() + WAIT_FOR_OUTCOME;
    let mut last_state = None;
    loop {
        let info = match control::request(&spool, &Request::Show { id: id.clone() }).await {
            Ok(Response { data: Some(v), .. }) => serde_json::from_value::<MessageInfo>(v).ok(),
            Ok(_) => None,
            Err(e) => {
                eprintln!("postern: lost touch with Postern while waiting: {e}");
                return EXIT_FAILED;
            }
        };
        if let Some(m) = info {
            let state = m.status.state;
            if last_state != Some(state) {
                last_state = Some(state);
                if matches!(state, State::Deferred) {
                    println!("Deferred: {} (Postern keeps trying)", reply_of(&m));
                }
            }
            match state {
                State::Sent => {
                    println!("Sent: Microsoft 365 accepted it ({}).", reply_of(&m));
                    return 0;
                }
                State::Failed | State::Held => {
                    println!(
                        "{}: {}",
                        if state == State::Failed {
                            "Failed"
                        } else {
                            "Held"
                        },
                        reply_of(&m)
                    );
                    explain(&m);
                    return EXIT_FAILED;
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            println!(
                "Still not delivered after {} s; it stays in the queue: `postern queue show {id}`.",
                WAIT_FOR_OUTCOME.as_secs()
            );
            return EXIT_FAILED;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn reply_of(m: &MessageInfo) -> String {
    m.status
        .last_reply
        .clone()
        .or_else(|| m.status.recipients.iter().find_map(|r| r.reply.clone()))
        .unwrap_or_else(|| "no reply recorded".into())
}

fn explain(m: &MessageInfo) {
    if let Some(s) = &m.status.summary {
        println!("Meaning   {s}");
    }
    if let Some(f) = m.status.fix.as_deref().filter(|f| !f.is_empty()) {
        println!("Fix       {f}");
    }
}
