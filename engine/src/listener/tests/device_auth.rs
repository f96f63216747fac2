//! Device AUTH over the wire: PLAIN and LOGIN in all their shapes, wrong
//! passwords, cancel, the block after repeated failures, require_auth.

use std::time::Duration;

use base64::Engine;

use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// No waiting in tests: zero delays, block after 3 failures.
fn quick_auth() -> DeviceAuth {
    DeviceAuth::fixed([("scanner", "s3cret")]).with_policy(LoginPolicy {
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_failures: 3,
        window: Duration::from_secs(900),
    })
}

/// 127.0.0.1 is NOT in allow, so only AUTH lets it relay.
async fn foreign_server() -> Server {
    Server::start(quick_auth(), false, |c| {
        c.allow = vec!["10.0.0.0/8".parse().unwrap()];
        c.users = vec!["scanner".into()];
    })
    .await
}

#[tokio::test]
async fn auth_plain_then_send_from_a_not_allowed_address() {
    let server = foreign_server().await;
    let mut c = server.connect().await;
    let ehlo = c.expect("EHLO x", "250").await;
    assert!(
        ehlo.contains("250-AUTH PLAIN LOGIN"),
        "loopback may AUTH in plaintext: {ehlo}"
    );
    c.expect("MAIL FROM:<a@x.com>", "554 5.7.1").await;
    let creds = b64("\0scanner\0s3cret");
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {creds}")).await,
        "235 2.7.0 Authentication successful"
    );
    c.expect(&format!("AUTH PLAIN {creds}"), "503 5.5.1").await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    assert_eq!(
        server.messages()[0].client.auth_user.as_deref(),
        Some("scanner")
    );
    server.stop().await;
}

#[tokio::test]
async fn every_auth_shape() {
    let server = foreign_server().await;
    let ok = "235 2.7.0 Authentication successful";
    // PLAIN without initial response.
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "334");
    assert_eq!(c.cmd(&b64("\0scanner\0s3cret")).await, ok);
    // LOGIN, both steps.
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64("scanner")).await, "334 UGFzc3dvcmQ6");
    assert_eq!(c.cmd(&b64("s3cret")).await, ok);
    // LOGIN with the user name as initial response.
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    assert_eq!(
        c.cmd(&format!("AUTH LOGIN {}", b64("scanner"))).await,
        "334 UGFzc3dvcmQ6"
    );
    assert_eq!(c.cmd(&b64("s3cret")).await, ok);
    // Cancel at each step.
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.expect("AUTH PLAIN", "334").await;
    assert_eq!(c.cmd("*").await, "501 5.0.0 Authentication cancelled");
    c.expect("AUTH LOGIN", "334").await;
    c.expect(&b64("scanner"), "334").await;
    assert_eq!(c.cmd("*").await, "501 5.0.0 Authentication cancelled");
    // Garbage and unknown mechanisms.
    c.expect("AUTH PLAIN", "334").await;
    c.expect("!!notbase64!!", "501 5.5.2").await;
    c.expect("AUTH CRAM-MD5", "504 5.5.4").await;
    c.expect("MAIL FROM:<a@x.com>", "554 5.7.1").await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_535_then_blocked_454() {
    let server = foreign_server().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let bad = format!("AUTH PLAIN {}", b64("\0scanner\0guess"));
    for _ in 0..3 {
        assert_eq!(
            c.cmd(&bad).await,
            "535 5.7.8 Authentication failed: the username or password the device uses is wrong"
        );
    }
    c.expect(
        &format!("AUTH LOGIN {}", b64("nobody")),
        "454 4.7.0 Too many failed logins from 127.0.0.1, try again later",
    )
    .await;
    // Even the right password is refused while blocked, on a new connection too.
    let mut c2 = server.connect().await;
    c2.expect("EHLO x", "250").await;
    c2.expect(
        &format!("AUTH PLAIN {}", b64("\0scanner\0s3cret")),
        "454 4.7.0",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn require_auth_refuses_allowed_addresses_until_login() {
    let server = Server::start(quick_auth(), false, |c| {
        c.require_auth = true;
        c.users = vec!["scanner".into()];
    })
    .await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.expect("MAIL FROM:<a@x.com>", "530 5.7.0 Authentication required")
        .await;
    c.expect(
        &format!("AUTH PLAIN {}", b64("scanner\0scanner\0s3cret")),
        "235",
    )
    .await;
    queued_id(
        &c.send_message("a@x.com", &["b@x.com"], b"hi\r\n.\r\n")
            .await,
    );
    server.stop().await;
}

#[tokio::test]
async fn failed_login_waits_before_replying() {
    let policy = LoginPolicy {
        first_delay: Duration::from_millis(40),
        ..LoginPolicy::default()
    };
    let auth = DeviceAuth::fixed([("scanner", "s3cret")]).with_policy(policy);
    let server = Server::start(auth, false, |_| {}).await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    // The wait doubles with each failure.
    for at_least in [40, 80] {
        let start = std::time::Instant::now();
        c.expect(
            &format!("AUTH PLAIN {}", b64("\0scanner\0nope")),
            "535 5.7.8",
        )
        .await;
        assert!(
            start.elapsed() >= Duration::from_millis(at_least),
            "{at_least} ms: {:?}",
            start.elapsed()
        );
    }
    server.stop().await;
}
