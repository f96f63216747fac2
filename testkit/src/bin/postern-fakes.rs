//! `postern-fakes --dir DIR`: runs a fake Exchange (submission role) and a
//! fake identity platform for benchmarks and GUI tests.
//!
//! Prints one JSON line `{"smtp_port":..,"authority":"..","ca_file":".."}`,
//! then one JSON line per accepted message
//! (`{"mail_from":..,"rcpt_to":[..],"bytes":N,"sha256":"hex"}`), and runs
//! until killed (or Ctrl-C).
//!
//! Faults: each line on standard input `fault STAGE REPLY` (STAGE one of
//! `mail-from`, `rcpt-to`, `data-end`) makes the next transaction get REPLY
//! at that stage, e.g. `fault data-end 550 5.7.60 SMTP; Client does not
//! have permissions to send as this sender`.
//!
//! Accounts: password `scanner@contoso.com` / `secret`; OAuth client
//! `postern-test` with secret `test-secret`, for `scanner@contoso.com`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use postern_testkit::{
    ClientRegistration, FakeExchange, FakeExchangeOptions, FakeIdentity, Fault, IdentityOptions,
    Stage,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;

const USER: &str = "scanner@contoso.com";

/// How long one wait for the next message lasts before waiting again.
const WAIT_ROUND: Duration = Duration::from_secs(365 * 24 * 3600);

fn usage() -> ! {
    eprintln!("usage: postern-fakes --dir DIR");
    std::process::exit(2);
}

fn parse_dir() -> PathBuf {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = Some(args.next().unwrap_or_else(|| usage())),
            _ => match arg.strip_prefix("--dir=") {
                Some(d) => dir = Some(d.to_string()),
                None => usage(),
            },
        }
    }
    PathBuf::from(dir.unwrap_or_else(|| usage()))
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
    let dir = parse_dir();
    std::fs::create_dir_all(&dir).expect("create --dir");
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: "postern-test".to_string(),
            client_secret: Some("test-secret".to_string()),
            user: USER.to_string(),
        }],
        ..Default::default()
    })
    .await;
    let exchange = FakeExchange::start(FakeExchangeOptions {
        accept_password: Some((USER.to_string(), "secret".to_string())),
        token_validator: Some(identity.validator()),
        ..Default::default()
    })
    .await;
    let ca_file = exchange.write_ca_file(&dir);
    print_line(json!({
        "smtp_port": exchange.port(),
        "authority": identity.authority(),
        "ca_file": ca_file.display().to_string(),
    }));

    let relay = async {
        let mut seen = 0;
        loop {
            let messages = exchange.wait_for_messages(seen + 1, WAIT_ROUND).await;
            for m in &messages[seen..] {
                print_line(json!({
                    "mail_from": m.mail_from,
                    "rcpt_to": m.rcpt_to,
                    "bytes": m.data.len(),
                    "sha256": hex::encode(Sha256::digest(&m.data)),
                }));
            }
            seen = messages.len();
        }
    };
    let faults = async {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
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
        () = faults => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `fault STAGE REPLY` → a reply fault.
fn parse_fault(line: &str) -> Option<Fault> {
    let rest = line.trim().strip_prefix("fault ")?;
    let (stage, reply) = rest.split_once(' ')?;
    let stage = match stage {
        "mail-from" => Stage::MailFrom,
        "rcpt-to" => Stage::RcptTo,
        "data-end" => Stage::DataEnd,
        _ => return None,
    };
    Some(Fault::Reply {
        stage,
        reply: reply.to_string(),
    })
}
