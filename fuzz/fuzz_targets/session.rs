//! Fuzzes a whole device session: arbitrary client bytes go through the
//! listener's SMTP state machine (framing, command parsing, AUTH, DATA, the
//! relay decision) over an in-memory stream, with a real spool in a temp
//! directory.
//!
//! Input: one header byte (bit 0: the device connects from an allowed
//! address or a foreign one), then the client's bytes, sent at once and
//! followed by end-of-stream.
//!
//! Invariants checked on every input:
//! - the session ends (no hang) and never panics;
//! - every reply line is `ddd` + space or hyphen + text + CRLF, and the
//!   last one is final (not a continuation);
//! - a message is in the spool exactly when the device heard
//!   "250 2.0.0 Ok: queued as <id>" for it, with at most `max_recipients`
//!   recipients and no more content than `max_message_bytes`;
//! - never an open relay: a foreign device that did not authenticate
//!   (no 235) gets nothing queued.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use postern_engine::config::ListenerConfig;
use postern_engine::events::Events;
use postern_engine::listener::{DeviceAuth, Listener, ListenerContext, LoginPolicy};
use postern_engine::spool::Spool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const MAX_RECIPIENTS: usize = 5;
const MAX_MESSAGE_BYTES: u64 = 2048;
/// A session fed a finite input must end long before this.
const SESSION_BOUND: Duration = Duration::from_secs(20);

struct Rig {
    rt: tokio::runtime::Runtime,
    listener: Listener,
    spool: Spool,
    /// Never sent: sessions end by end-of-stream.
    _shutdown: watch::Sender<bool>,
    shutdown_rx: watch::Receiver<bool>,
    _dir: tempfile::TempDir,
}

fn rig() -> &'static Rig {
    static RIG: OnceLock<Rig> = OnceLock::new();
    RIG.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // tmpfs when there is one: every queued message is fsynced.
        let base = std::path::Path::new("/dev/shm");
        let dir = if base.is_dir() {
            tempfile::tempdir_in(base).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let (listener, spool) = rt.block_on(async {
            let spool = Spool::open(&dir.path().join("spool"), Events::new())
                .await
                .unwrap();
            let config = ListenerConfig {
                listen: vec!["127.0.0.1:0".parse().unwrap()],
                max_recipients: MAX_RECIPIENTS,
                max_message_bytes: MAX_MESSAGE_BYTES,
                ..ListenerConfig::default()
            };
            // No pauses, never a block: every input behaves the same however
            // many failed logins came before it.
            let auth = DeviceAuth::fixed([("scanner", "s3cret")]).with_policy(LoginPolicy {
                first_delay: Duration::ZERO,
                max_delay: Duration::ZERO,
                max_failures: 10,
                window: Duration::ZERO,
            });
            let listener = Listener::bind(ListenerContext {
                config: Arc::new(config),
                spool: spool.clone(),
                device_auth: auth,
                tls: None,
                legacy_tls: None,
                hostname: "relay.fuzz".into(),
                internal_domains: None,
            })
            .await
            .unwrap();
            (listener, spool)
        });
        let (tx, rx) = watch::channel(false);
        Rig {
            rt,
            listener,
            spool,
            _shutdown: tx,
            shutdown_rx: rx,
            _dir: dir,
        }
    })
}

fn check_replies(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8(out.to_vec()).expect("replies are UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "unterminated reply: {text:?}"
    );
    let lines: Vec<String> = text.split_terminator("\r\n").map(str::to_string).collect();
    for line in &lines {
        let b = line.as_bytes();
        assert!(
            b.len() >= 4
                && b[..3].iter().all(u8::is_ascii_digit)
                && (b'2'..=b'5').contains(&b[0])
                && (b[3] == b' ' || b[3] == b'-'),
            "malformed reply line {line:?}"
        );
        assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
    }
    if let Some(last) = lines.last() {
        assert_eq!(last.as_bytes()[3], b' ', "ends in a continuation: {last:?}");
    }
    lines
}

fuzz_target!(|data: &[u8]| {
    let Some((&header, input)) = data.split_first() else {
        return;
    };
    let rig = rig();
    let peer: SocketAddr = if header & 1 == 0 {
        "127.0.0.1:40000".parse().unwrap()
    } else {
        "192.0.2.7:40000".parse().unwrap()
    };
    let out = rig.rt.block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (mut rd, mut wr) = tokio::io::split(client);
        let session = rig
            .listener
            .run_session_in_memory(server, peer, rig.shutdown_rx.clone());
        let send = async {
            // The session may hang up first (QUIT, too many errors).
            let _ = wr.write_all(input).await;
            let _ = wr.shutdown().await;
        };
        let mut out = Vec::new();
        let recv = async {
            let _ = rd.read_to_end(&mut out).await;
        };
        tokio::time::timeout(SESSION_BOUND, async { tokio::join!(session, send, recv) })
            .await
            .expect("the session did not end after the device's input ended");
        out
    });
    let lines = check_replies(&out);

    let queued: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("250 2.0.0 Ok: queued as "))
        .collect();
    let authenticated = lines.iter().any(|l| l.starts_with("235 "));
    let stored = rig.spool.list();
    assert_eq!(
        stored.len(),
        queued.len(),
        "spool and replies disagree: {lines:?}"
    );
    for msg in &stored {
        assert!(
            queued.contains(&msg.id.to_string().as_str()),
            "{} stored but never acknowledged",
            msg.id
        );
        assert!(!msg.to.is_empty() && msg.to.len() <= MAX_RECIPIENTS);
        assert!(msg.size <= MAX_MESSAGE_BYTES);
    }
    if header & 1 == 1 && !authenticated {
        assert!(
            stored.is_empty(),
            "open relay: a foreign device queued mail"
        );
    }
    rig.rt.block_on(async {
        for msg in stored {
            rig.spool.delete(&msg.id).await.unwrap();
        }
    });
});
