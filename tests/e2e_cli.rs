//! The `postern` command line against a real spool: `queue` and `status`
//! with `serve` running (over the control socket) and stopped (from the
//! spool directly), `queue retry/delete/show`, config errors that name the
//! key, and secrets (client secret, device password, access tokens) never
//! written anywhere a person or a log collector can read them.

mod support;

use std::process::Output;
use std::sync::{Arc, Mutex};

use postern_testkit::{FakeExchangeOptions, Fault, IdentityOptions, Stage, TokenValidator};
use support::*;

const SEND_AS_REFUSED: &str =
    "550 5.7.60 SMTP; Client does not have permissions to send as this sender";

/// Sends one message with swaks; asserts it was queued.
fn send(p: &Postern, subject: &str) {
    let out = run(
        "swaks",
        &[
            "--server",
            &p.smtp.to_string(),
            "--from",
            MAILBOX,
            "--to",
            "bob@contoso.com",
            "--header",
            &format!("Subject: {subject}"),
            "--body",
            "A scan.",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("250 2.0.0 Ok: queued as"),
        "{}",
        text(&out)
    );
}

fn id_of(m: &serde_json::Value) -> String {
    m["id"].as_str().unwrap().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_and_status_json_with_serve_running_and_stopped() {
    let up = Upstream::start().await;
    let mut p = Postern::start(&up).await;
    send(&p, "First");
    send(&p, "Second");
    up.wait_for(2).await;
    let q = p.wait_all(2, "sent");
    let mut subjects: Vec<&str> = q.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort();
    assert_eq!(subjects, ["First", "Second"]);
    for m in &q {
        assert_eq!(m["from"], MAILBOX, "{m}");
        assert_eq!(m["to"], serde_json::json!(["bob@contoso.com"]), "{m}");
    }

    let s = p.cli_json(&["status"]);
    assert_eq!(s["running"], true, "{s}");
    assert_eq!(s["queue"]["sent"], 2, "{s}");
    assert_eq!(s["queue"]["queued"], 0, "{s}");
    assert_eq!(s["queue"]["failed"], 0, "{s}");
    assert_eq!(s["upstream"]["mailbox"], MAILBOX, "{s}");
    assert_eq!(s["account"]["state"], "signed-in", "{s}");

    assert!(p.stop().success(), "serve exits cleanly on SIGTERM");
    let s = p.cli_json(&["status"]);
    assert_eq!(s["running"], false, "{s}");
    assert_eq!(s["queue"]["sent"], 2, "{s}");
    let stopped = p.queue();
    assert_eq!(stopped.len(), 2);
    for m in &stopped {
        assert_eq!(m["state"], "sent", "{m}");
    }
    // Plain text too.
    let out = p.cli(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("not running"), "{}", text(&out));
    let out = p.cli(&["queue"]);
    for m in &stopped {
        assert!(stdout(&out).contains(&id_of(m)), "{}", text(&out));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_retry_one_and_all_after_a_permanent_failure() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    up.exchange.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::DataEnd,
        reply: SEND_AS_REFUSED.into(),
    }));
    send(&p, "One");
    send(&p, "Two");
    send(&p, "Three");
    let q = p.wait_all(3, "failed");
    assert!(
        q[0]["last_reply"]
            .as_str()
            .is_some_and(|r| r.contains("5.7.60")),
        "{}",
        q[0]
    );
    assert_eq!(up.exchange.stats().messages, 0);
    up.exchange.set_sticky_fault(None);

    // One message.
    let one = id_of(&q[0]);
    let out = p.cli(&["queue", "retry", &one]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(&one), "{}", text(&out));
    p.wait_queue("the retried message sent", |q| {
        q.iter()
            .all(|m| (m["id"] == one.as_str()) == (m["state"] == "sent"))
            && q.iter().filter(|m| m["state"] == "failed").count() == 2
    });
    assert_eq!(up.wait_for(1).await.len(), 1);

    // The rest.
    let out = p.cli(&["queue", "retry", "--all"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains("2 message(s)"), "{}", text(&out));
    p.wait_all(3, "sent");
    let got = up.wait_for(3).await;
    assert_eq!(got.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_delete_and_show() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    send(&p, "Keep");
    let q = p.wait_all(1, "sent");
    let kept = id_of(&q[0]);
    up.exchange.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::DataEnd,
        reply: SEND_AS_REFUSED.into(),
    }));
    send(&p, "Delete me");
    let q = p.wait_queue("the second message failed", |q| {
        q.len() == 2 && q.iter().any(|m| m["state"] == "failed")
    });
    let doomed = q
        .iter()
        .find(|m| m["state"] == "failed")
        .map(id_of)
        .unwrap();

    // show: status, recipients, explanation and the redacted transcript.
    let out = p.cli(&["queue", "show", &doomed]);
    assert!(out.status.success(), "{}", text(&out));
    let shown = stdout(&out);
    for want in [
        doomed.as_str(),
        "State     failed",
        "Subject   Delete me",
        "bob@contoso.com",
        "5.7.60",
        "Transcript:",
        "AUTH XOAUTH2 [redacted]",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }
    let json = p.cli_json(&["queue", "show", &doomed]);
    assert_eq!(json["id"], doomed.as_str(), "{json}");
    let transcript = json["transcript"].as_str().unwrap();
    assert!(
        transcript.contains("AUTH XOAUTH2 [redacted]"),
        "{transcript}"
    );
    assert!(!transcript.contains("Bearer"), "{transcript}");

    // delete: gone, the other message untouched.
    let out = p.cli(&["queue", "delete", &doomed]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout(&out).contains(&doomed), "{}", text(&out));
    let q = p.queue();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["id"], kept.as_str());

    // The same id again, a well-formed unknown id, and garbage: clear
    // errors on stderr and a non-zero exit.
    for (id, want) in [
        (doomed.as_str(), doomed.as_str()),
        ("0123456789abcdef", "0123456789abcdef"),
        ("not-an-id", "not a message id"),
    ] {
        for args in [
            vec!["queue", "delete", id],
            vec!["queue", "show", id],
            vec!["queue", "retry", id],
        ] {
            let out = p.cli(&args);
            assert!(!out.status.success(), "{args:?}: {}", text(&out));
            let err = stderr(&out);
            assert!(
                err.starts_with("postern: ") && err.contains(want),
                "{args:?}: {}",
                text(&out)
            );
            assert!(stdout(&out).is_empty(), "{args:?}: {}", text(&out));
        }
    }
    assert_eq!(p.queue().len(), 1);
}

/// `postern serve` with `config` (and a spool dir of its own): the output.
fn serve_with_config(config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    let spool = dir.path().join("spool");
    let config = format!(
        "{config}\n[spool]\ndir = \"{}\"\n",
        spool.display().to_string().replace('\\', "/")
    );
    std::fs::write(&path, config).unwrap();
    std::process::Command::new(postern_bin())
        .args(["--config", path.to_str().unwrap(), "serve"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn config_errors_name_the_key_and_serve_does_not_start() {
    for (config, wants) in [
        (
            "[upstream]\nmode = \"carrier-pigeon\"\n",
            &["upstream.mode", "carrier-pigeon", "submission"][..],
        ),
        (
            "[listener]\nlisten_on = [\"127.0.0.1:0\"]\n",
            &["listener.listen_on", "unknown field"][..],
        ),
        (
            "[listener]\nlisten = [\"127.0.0.1:0\"]\nallow = [\"10.0.0.300/8\"]\n",
            &["listener.allow", "10.0.0.300/8", "invalid IP"][..],
        ),
        // The bad entry on a line of its own: the key is still named.
        (
            "[listener]\nlisten = [\"127.0.0.1:0\"]\nallow = [\n  \"10.0.0.0/8\",\n  \"192.168.1.0/33\",\n]\n",
            &["listener.allow[1]", "192.168.1.0/33"][..],
        ),
    ] {
        let out = serve_with_config(config);
        assert_eq!(out.status.code(), Some(2), "{config}\n{}", text(&out));
        let err = stderr(&out);
        for want in wants {
            assert!(err.contains(want), "{config}\nmissing {want:?}:\n{err}");
        }
        assert!(!err.contains("listening for devices"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_and_tokens_never_leak() {
    // Record every bearer token Postern presents upstream.
    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = tokens.clone();
    let opts = FakeExchangeOptions {
        token_validator: Some(TokenValidator::new(move |_user, token| {
            seen.lock().unwrap().push(token.to_string());
            !token.is_empty()
        })),
        ..Default::default()
    };
    let up = Upstream::start_with(opts, IdentityOptions::default()).await;
    let device_pw = "device-pw-Leak-9xQ";
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec!["leak-device"]);
    })
    .await;
    let out = p.cli_stdin(
        &["account", "set-secret", "--device", "leak-device"],
        device_pw,
    );
    assert!(out.status.success(), "{}", text(&out));
    // A good login, a bad one (the wrong password is a secret too).
    let wrong_pw = "wrong-pw-Leak-3zR";
    for pw in [device_pw, wrong_pw] {
        let out = run(
            "swaks",
            &[
                "--server",
                &p.smtp.to_string(),
                "--from",
                MAILBOX,
                "--to",
                "bob@contoso.com",
                "--auth",
                "LOGIN",
                "--auth-user",
                "leak-device",
                "--auth-password",
                pw,
            ],
        );
        assert_eq!(out.status.success(), pw == device_pw, "{}", text(&out));
    }
    up.wait_for(1).await;
    let q = p.wait_all(1, "sent");
    let tokens = tokens.lock().unwrap().clone();
    assert!(!tokens.is_empty(), "Postern presented a token");
    assert!(up.identity.issued_tokens() >= 1);

    let mut secrets: Vec<String> = vec![
        CLIENT_SECRET.into(),
        device_pw.into(),
        wrong_pw.into(),
        "Bearer".into(),
    ];
    secrets.extend(tokens);
    {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        // What went over the wire, encoded: AUTH LOGIN and XOAUTH2 payloads.
        secrets.push(b64.encode(device_pw));
        secrets.push(b64.encode(wrong_pw));
    }

    let mut places: Vec<(String, String)> = vec![
        ("serve log".into(), p.log()),
        (
            "config file".into(),
            std::fs::read_to_string(&p.config_path).unwrap(),
        ),
        ("status --json".into(), p.cli_json(&["status"]).to_string()),
        ("queue --json".into(), p.cli_json(&["queue"]).to_string()),
        (
            "account status --json".into(),
            p.cli_json(&["account", "status"]).to_string(),
        ),
    ];
    let id = id_of(&q[0]);
    let shown = p.cli(&["queue", "show", &id]);
    assert!(
        stdout(&shown).contains("AUTH XOAUTH2 [redacted]"),
        "{}",
        text(&shown)
    );
    places.push(("queue show".into(), stdout(&shown)));
    places.push((
        "queue show --json".into(),
        p.cli_json(&["queue", "show", &id]).to_string(),
    ));
    for file in files_under(&p.spool_dir()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        places.push((
            file.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    assert!(places.len() > 7, "the spool has files");
    for (place, content) in &places {
        for secret in &secrets {
            assert!(
                !content.contains(secret.as_str()),
                "{secret:?} found in {place}"
            );
        }
    }
}

/// Every file under `dir`, recursively (sockets and the like are skipped).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().map_while(Result::ok) {
            let ty = entry.file_type().unwrap();
            if ty.is_dir() {
                todo.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}
