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
