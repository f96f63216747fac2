//! The `postern-fakes` binary: its start-up line, the accounts it promises,
//! and one JSON line per accepted message.

mod common;

use std::process::Stdio;

use common::{b64, xoauth2, Client};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test]
async fn fakes_binary_reports_messages() {
    let dir = std::env::temp_dir().join(format!("postern-fakes-test-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern-fakes"))
        .arg("--dir")
        .arg(&dir)
        .args(["--messages-per-minute", "1"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(first["ca_file"].as_str().unwrap()).unwrap();
    let port = first["smtp_port"].as_u64().unwrap() as u16;
    let authority = first["authority"].as_str().unwrap();

    let token: Value = reqwest::Client::new()
        .post(format!("{authority}/common/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "postern-test"),
            ("client_secret", "test-secret"),
            ("scope", "https://outlook.office365.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = "scanner@contoso.com";
    let addr = ([127, 0, 0, 1], port).into();

    // OAuth, then password: both accounts work.
    let mut c = Client::connect(addr).await;
    c.secure(&ca_pem).await;
    let auth = xoauth2(user, token["access_token"].as_str().unwrap());
    assert_eq!(c.cmd(&format!("AUTH XOAUTH2 {auth}")).await.code, 235);
    let content = b"Subject: one\r\n\r\nbody\r\n";
    assert_eq!(
        c.send_mail(user, &["a@example.com"], content).await.code,
        250
    );

    let mut c = Client::connect(addr).await;
    c.secure(&ca_pem).await;
    assert_eq!(c.cmd(&format!("AUTH LOGIN {}", b64(user))).await.code, 334);
    assert_eq!(c.cmd(&b64("secret")).await.code, 235);
    assert_eq!(
        c.send_mail(user, &["b@example.com"], b"x\r\n").await.code,
        250
    );

    let line: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(line["mail_from"], user);
    assert_eq!(line["rcpt_to"][0], "a@example.com");
    assert_eq!(line["bytes"], content.len());
    assert_eq!(line["sha256"], hex::encode(Sha256::digest(content)));
    let line: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(line["rcpt_to"][0], "b@example.com");
    // Two in one minute with --messages-per-minute 1: the second is counted.
    assert_eq!(line["over_limit_submissions"], 1);
    assert_eq!(line["throttle_replies"], 0);
    assert!(line["at_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);

    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The fake Graph beside them: `graph_endpoint` in the first line, app-only
/// tokens with the `--graph-roles`, a JSON line per delivery, and the
/// `graph-fault` lines on standard input.
#[tokio::test]
async fn fakes_binary_serves_graph_and_takes_graph_faults() {
    use base64::Engine as _;
    use tokio::io::AsyncWriteExt;

    let dir = std::env::temp_dir().join(format!("postern-fakes-graph-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern-fakes"))
        .arg("--dir")
        .arg(&dir)
        .args(["--graph-roles", "Mail.Send"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let authority = first["authority"].as_str().unwrap();
    let graph = first["graph_endpoint"].as_str().unwrap().to_string();
    assert!(graph.starts_with("http://127.0.0.1:"), "{first}");

    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{authority}/contoso.com/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "postern-test"),
            ("client_secret", "test-secret"),
            ("scope", &format!("{graph}/.default")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["roles"],
        serde_json::json!(["Mail.Send"]),
        "{claims}"
    );

    let mime =
        b"From: scanner@contoso.com\r\nTo: bob@example.com\r\nSubject: via graph\r\n\r\nbody\r\n";
    let send = || {
        http.post(format!("{graph}/v1.0/users/scanner@contoso.com/sendMail"))
            .bearer_auth(&access)
            .header("Content-Type", "text/plain")
            .body(base64::engine::general_purpose::STANDARD.encode(mime))
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 202);
    let line: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(line["graph"], true, "{line}");
    assert_eq!(line["subject"], "via graph");
    assert_eq!(line["recipients"], serde_json::json!(["bob@example.com"]));

    // Faults: a line not understood is skipped, the others apply. Each is
    // queued when its line is read: send until it applies (a message that
    // went through before that is reported on its own line).
    let mut until = async |fault: &[u8], status: u16| {
        stdin.write_all(fault).await.unwrap();
        stdin.flush().await.unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = send().await.unwrap();
            if r.status() == status {
                break r;
            }
            assert_eq!(r.status(), 202);
            assert!(tokio::time::Instant::now() < deadline, "no {status} came");
            lines.next_line().await.unwrap().unwrap();
        }
    };
    let throttled = until(
        b"graph-fault sendMail 429 bogus retry-after=x\ngraph-fault sendMail 429 ApplicationThrottled retry-after=7\n",
        429,
    )
    .await;
    assert_eq!(throttled.headers()["retry-after"], "7");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ApplicationThrottled");
    let refused = until(b"graph-fault invalid-token\n", 401).await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(send().await.unwrap().status(), 202);

    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mail the fake Exchange accepted shows in the fake Graph's message trace
/// (default roles include `ExchangeMessageTrace.Read.All`), and a
/// `graph-trace` line scripts a recipient's outcome.
#[tokio::test]
async fn fakes_binary_traces_smtp_mail_and_takes_trace_outcomes() {
    use tokio::io::AsyncWriteExt;

    let dir = std::env::temp_dir().join(format!("postern-fakes-trace-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_postern-fakes"))
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(first["ca_file"].as_str().unwrap()).unwrap();
    let port = first["smtp_port"].as_u64().unwrap() as u16;
    let graph = first["graph_endpoint"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!(
            "{}/contoso.com/oauth2/v2.0/token",
            first["authority"].as_str().unwrap()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "postern-test"),
            ("client_secret", "test-secret"),
            ("scope", &format!("{graph}/.default")),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();

    let user = "scanner@contoso.com";
    let mut c = Client::connect(([127, 0, 0, 1], port).into()).await;
    c.secure(&ca_pem).await;
    assert_eq!(c.cmd(&format!("AUTH LOGIN {}", b64(user))).await.code, 334);
    assert_eq!(c.cmd(&b64("secret")).await.code, 235);
    let content = b"Subject: traced\r\nMessage-ID: <t-1@scanner>\r\n\r\nbody\r\n";
    let sent = c
        .send_mail(user, &["a@example.com", "b@example.com"], content)
        .await;
    assert_eq!(sent.code, 250);
    lines.next_line().await.unwrap().unwrap();
    stdin
        .write_all(b"graph-trace b@example.com bogus\ngraph-trace B@example.com failed 5.7.520\n")
        .await
        .unwrap();
    stdin.flush().await.unwrap();

    let since = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let filter = format!("messageId eq 't-1@scanner' and receivedDateTime ge {since}");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let rows = loop {
        let body: Value = http
            .get(format!("{graph}/v1.0/admin/exchange/tracing/messageTraces"))
            .query(&[("$filter", &filter)])
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = body["value"].as_array().cloned().unwrap_or_default();
        if rows.iter().any(|r| r["status"] == "failed") {
            break rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let seen: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["recipientAddress"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("a@example.com", "delivered"), ("b@example.com", "failed")]
    );
    assert_eq!(rows[0]["senderAddress"], user);
    assert_eq!(rows[0]["subject"], "traced");
    assert_eq!(rows[0]["size"], content.len());
    assert_eq!(rows[0]["messageId"], "<t-1@scanner>");

    child.kill().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
