//! Signing in to Microsoft 365 and staying signed in, end to end: the real
//! `postern account login` (curl plays the browser, following the printed
//! URL to the fake authorize endpoint and on to Postern's loopback
//! redirect), the refresh token in the real OS keychain, short-lived access
//! tokens refreshed while `postern serve` delivers, and a revoked sign-in
//! that holds the queue until the admin signs in again.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use postern_testkit::IdentityOptions;
use support::*;

fn interactive(cfg: &mut toml::Table) {
    set(cfg, "oauth.flow", "interactive");
}

/// Starts `postern account login <args>`; its stdout lines arrive on the channel.
fn start_login(p: &Postern, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(postern_bin())
        .args([
            "--config",
            p.config_path.to_str().unwrap(),
            "account",
            "login",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn next_line_matching(rx: &mpsc::Receiver<String>, pred: impl Fn(&str) -> bool) -> String {
    loop {
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("login printed nothing useful");
        if pred(&line) {
            return line;
        }
    }
}

/// `postern account login --no-browser`, with curl as the browser.
fn login_with_curl_browser(p: &Postern) {
    let (mut child, rx) = start_login(p, &["--no-browser"]);
    let url = next_line_matching(&rx, |l| l.trim_start().starts_with("http"));
    let url = url.trim();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(url.contains("state="), "{url}");
    // The authorize endpoint signs the (fake) user in and redirects to Postern.
    let redirect = run(
        "curl",
        &["-s", "-o", "/dev/null", "-w", "%{redirect_url}", url],
    );
    let location = String::from_utf8(redirect.stdout).unwrap();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let page = run("curl", &["-s", &location]);
    let page = String::from_utf8_lossy(&page.stdout);
    assert!(page.contains("Signed in"), "{page}");
    let status = child.wait().unwrap();
    assert!(status.success(), "login failed: {}", drain(&mut child));
}

fn drain(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

/// The refresh token Postern keeps, read straight from the keychain.
fn keychain_refresh_token(up: &Upstream) -> String {
    let account = format!("refresh-token:{}", up.client_id);
    let out = run(
        "secret-tool",
        &["lookup", "service", "postern", "username", &account],
    );
    assert!(
        out.status.success(),
        "no refresh token in the keychain: {}",
        text(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Sends `n` messages through one SMTP connection with Python's smtplib.
fn send_many(p: &Postern, n: usize, tag: &str) {
    let script = r#"
import smtplib, sys
host, port, n, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with smtplib.SMTP(host, port) as s:
    for i in range(n):
        msg = f"From: scanner@contoso.com\r\nTo: bob@contoso.com\r\nSubject: {tag}-{i:04}\r\n\r\nscan {i}\r\n"
        s.sendmail("scanner@contoso.com", ["bob@contoso.com"], msg)
"#;
    let out = python(
        script,
        &[
            &p.smtp.ip().to_string(),
            &p.smtp.port().to_string(),
            &n.to_string(),
            tag,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn interactive_sign_in_then_tokens_refresh_while_100_messages_go_out() {
    let up = Upstream::start_public(IdentityOptions {
        access_token_lifetime: Duration::from_secs(30),
        ..Default::default()
    })
    .await;
    let mut p = Postern::prepare(&up, |cfg| {
        interactive(cfg);
        // 100 messages at 45 a minute take over two minutes: several
        // 30-second tokens come and go while they are sent.
        set(cfg, "limits.messages_per_minute", 45);
    });
    login_with_curl_browser(&p);
    let first = keychain_refresh_token(&up);
    let status = p.cli_json(&["account", "status"]);
    assert_eq!(status["account"]["state"], "ready", "{status}");

    p.spawn();
    send_many(&p, 100, "refresh");
    let got = up
        .exchange
        .wait_for_messages(100, Duration::from_secs(600))
        .await;
    assert_eq!(got.len(), 100);
    for m in &got {
        assert_eq!(m.auth_mechanism.as_deref(), Some("XOAUTH2"));
        assert_eq!(m.auth_user.as_deref(), Some(MAILBOX));
    }
    // The sign-in gave one access token; every other one came from a refresh.
    // The minute window lets each minute's 45 go out in a burst (at about 0,
    // 60 and 120 s), and a token is needed only when a connection signs in,
    // so at least the bursts after the first needed a refreshed token. The
    // fake refuses expired tokens at AUTH, so 100 arrivals prove none was used.
    let refreshes = up.identity.issued_tokens() - 1;
    assert!(
        refreshes >= 2,
        "only {refreshes} refreshes over two minutes of 30 s tokens"
    );
    // Refresh tokens rotate: the keychain holds the newest, and it still works.
    let last = keychain_refresh_token(&up);
    assert_ne!(first, last, "the rotated refresh token was not stored");
    let token_url = format!("{}/contoso.com/oauth2/v2.0/token", up.identity.authority());
    let check = run(
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &token_url,
            "-d",
            "grant_type=refresh_token",
            "-d",
            &format!("client_id={}", up.client_id),
            "--data-urlencode",
            &format!("refresh_token={}", last.trim()),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        "200",
        "the stored refresh token is dead"
    );
    // And it is nowhere on disk or in the log.
    let p_log = p.log();
    assert!(!p_log.contains(last.trim()), "refresh token in the log");
    for entry in walk(&p.dir.path().to_path_buf()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(last.trim()) && !hay.contains(first.trim()),
            "refresh token in {}",
            entry.display()
        );
    }
    p.stop();
}

fn walk(dir: &std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.is_file() {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_sign_in_holds_the_queue_until_the_admin_signs_in_again() {
    let up = Upstream::start_public(IdentityOptions {
        access_token_lifetime: Duration::from_secs(4),
        ..Default::default()
    })
    .await;
    let mut p = Postern::prepare(&up, interactive);
    login_with_curl_browser(&p);
    p.spawn();
    send_many(&p, 1, "before");
    up.wait_for(1).await;
    p.wait_all(1, "sent");

    // Revoked while Postern is down, so no session opened before the
    // revocation can carry the next messages (an established SMTP session
    // stays authenticated; the running-engine case is the AADSTS test).
    p.stop();
    up.identity.revoke_all();
    p.spawn();
    send_many(&p, 2, "after");
    let q = p.wait_queue("the new messages held", |q| {
        q.iter().filter(|m| m["state"] == "held").count() == 2
    });
    assert!(
        q.iter().all(|m| m["state"] != "failed"),
        "a sign-in problem bounced mail: {q:?}"
    );
    let status = p.cli_json(&["account", "status"]);
    assert_eq!(status["account"]["state"], "sign-in-needed", "{status}");
    let status = p.cli_json(&["status"]);
    assert!(status["attention"]["summary"].is_string(), "{status}");
    assert_eq!(up.exchange.messages().len(), 1);

    // The admin signs in again; the running Postern picks it up by itself.
    login_with_curl_browser(&p);
    let got = up.wait_for(3).await;
    assert_eq!(got.len(), 3);
    p.wait_all(3, "sent");
    let status = p.cli_json(&["status"]);
    assert!(status["attention"].is_null(), "{status}");
    p.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn device_code_sign_in_then_delivery() {
    let up = Upstream::start_public(IdentityOptions {
        device_code_interval: Duration::from_millis(0),
        ..Default::default()
    })
    .await;
    let mut p = Postern::prepare(&up, |cfg| set(cfg, "oauth.flow", "device-code"));
    let (mut child, rx) = start_login(&p, &[]);
    let intro = next_line_matching(&rx, |l| l.contains("enter the code"));
    assert!(intro.contains("/devicelogin"), "{intro}");
    let code = next_line_matching(&rx, |l| !l.trim().is_empty());
    assert!(
        up.identity.approve_device_code(code.trim()),
        "unknown code {code:?}"
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "device login failed: {}",
        drain(&mut child)
    );
    keychain_refresh_token(&up);

    p.spawn();
    send_many(&p, 1, "device");
    let got = up.wait_for(1).await;
    assert_eq!(got[0].auth_mechanism.as_deref(), Some("XOAUTH2"));
    p.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn not_signed_in_is_said_plainly_and_nothing_bounces() {
    let up = Upstream::start_public(IdentityOptions::default()).await;
    let mut p = Postern::prepare(&up, interactive);
    // Nothing was ever stored: "not signed in yet", not "Microsoft refused
    // the saved sign-in"; and the README's words for the config values.
    let status = p.cli_json(&["account", "status"]);
    assert_eq!(status["account"]["state"], "signed-out", "{status}");
    assert_eq!(status["auth"], "oauth", "{status}");
    assert_eq!(status["flow"], "interactive", "{status}");
    assert!(status["account"]["reason"]
        .as_str()
        .unwrap()
        .contains("postern account login"));
    p.spawn();
    send_many(&p, 1, "early");
    p.wait_all(1, "held");
    let status = p.cli_json(&["account", "status"]);
    assert_eq!(status["account"]["state"], "signed-out", "{status}");
    login_with_curl_browser(&p);
    up.wait_for(1).await;
    p.wait_all(1, "sent");
    p.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn aadsts_interaction_required_holds_then_sign_in_releases() {
    let up = Upstream::start_public(IdentityOptions {
        access_token_lifetime: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    let mut p = Postern::prepare(&up, interactive);
    login_with_curl_browser(&p);
    // The next refresh is answered as Microsoft does when MFA is now required.
    up.identity.push_error("50076");
    p.spawn();
    send_many(&p, 1, "mfa");
    p.wait_all(1, "held");
    let status = p.cli_json(&["account", "status"]);
    assert_eq!(status["account"]["state"], "sign-in-needed", "{status}");
    assert_eq!(up.exchange.messages().len(), 0);
    login_with_curl_browser(&p);
    up.wait_for(1).await;
    p.wait_all(1, "sent");
    p.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_sign_in_service_is_transient_not_sign_in_needed() {
    let up = Upstream::start().await;
    // A loopback port with nothing listening: the token endpoint is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut p = Postern::start_with(&up, |cfg| set(cfg, "oauth.authority", dead.as_str())).await;
    send_many(&p, 1, "offline");
    let q = p.wait_queue("deferred for a network problem", |q| {
        q.len() == 1 && q[0]["state"] == "deferred"
    });
    let reply = q[0]["last_reply"].as_str().unwrap_or("");
    assert!(reply.contains("sign-in service"), "{reply}");
    let status = p.cli_json(&["status"]);
    assert_ne!(status["account"]["state"], "sign-in-needed", "{status}");
    assert!(
        status["attention"].is_null(),
        "a network blip must not hold the queue: {status}"
    );
    p.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_keychain_is_explained_and_nothing_is_written_to_disk() {
    let up = Upstream::start().await;
    let p = Postern::prepare(&up, |_| {});
    let out = Command::new(postern_bin())
        .args([
            "--config",
            p.config_path.to_str().unwrap(),
            "account",
            "set-secret",
        ])
        // No session bus, hence no Secret Service.
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"s3cret-never-on-disk\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keychain is not available"), "{err}");
    assert!(err.contains("gnome-keyring"), "the fix is named: {err}");
    for f in walk(&p.dir.path().to_path_buf()) {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("s3cret-never-on-disk"),
            "secret written to {}",
            f.display()
        );
    }
}
