//! Abuse against the real `postern serve`: a flood of idle connections,
//! slowloris clients trickling bytes, an endless command line, 10,000 RCPTs
//! and an AUTH brute force. In each, a well-behaved device (Python's
//! smtplib) still gets its message delivered to the fake Exchange Online,
//! Postern's memory stays bounded, and nothing from the abuser is queued.
//! The numbers (RSS, how long the device waited) are measured by
//! scripts/bench-abuse.sh, not asserted here.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use support::mail;
use support::smtp::{plain, Raw};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// Postern's resident memory must stay under this through every test
/// (it idles near 20 MB; 1,000 idle sessions add a few MB).
const RSS_BOUND_KIB: u64 = 256 * 1024;

fn rss_kib(p: &Postern) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

fn assert_memory_bounded(p: &Postern, when: &str) {
    let rss = rss_kib(p);
    assert!(
        rss < RSS_BOUND_KIB,
        "{when}: postern uses {rss} KiB (bound {RSS_BOUND_KIB} KiB)"
    );
}

/// Connects from a chosen loopback address (any address in 127/8 works on
/// Linux), so the abuser and the device are different hosts to Postern.
async fn connect_from(to: SocketAddr, from: IpAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.expect("connect to postern")
}

/// The first reply line the server sends ("" when it closed).
async fn first_line(tcp: &mut TcpStream) -> String {
    let mut line = String::new();
    let mut r = BufReader::new(tcp);
    tokio::time::timeout(PATIENCE, r.read_line(&mut line))
        .await
        .expect("no greeting")
        .ok();
    line.trim_end().to_string()
}

/// A device sends one message with smtplib and it reaches Exchange.
async fn device_gets_through(up: &Upstream, p: &Postern, subject: &str) {
    let reply = tokio::task::block_in_place(|| mail::send(p, subject, &["bob@contoso.com"]));
    assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
    let want = format!("Subject: {subject}\r\n");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !up
        .exchange
        .messages()
        .iter()
        .any(|m| String::from_utf8_lossy(&m.data).contains(&want))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{subject} never reached Exchange\n{}",
            p.log()
        );
        up.wait_for(up.exchange.messages().len() + 1).await;
    }
}

/// Nothing in the queue failed, and every message reached Exchange once.
fn nothing_harmed(up: &Upstream, p: &Postern) {
    let n = up.exchange.messages().len();
    let q = p.wait_all(n, "sent");
    assert!(mail::none_failed(&q));
}

#[tokio::test(flavor = "multi_thread")]
async fn device_is_served_while_1000_idle_connections_are_open() {
    postern_engine::engine::raise_fd_limit();
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.max_connections", 1100);
    })
    .await;
    let before = rss_kib(&p);
    // 1,000 connections that say nothing, from 50 hosts at 20 each (the
    // per-address share).
    let mut idle = Vec::new();
    for host in 0..50u8 {
        let from = IpAddr::from([127, 0, 1, host + 1]);
        for _ in 0..20 {
            let mut tcp = connect_from(p.smtp, from).await;
            let greeting = first_line(&mut tcp).await;
            assert!(greeting.starts_with("220 "), "{greeting}");
            idle.push(tcp);
        }
    }
    assert_eq!(idle.len(), 1000);
    let held = rss_kib(&p);
    assert_memory_bounded(&p, "1,000 idle connections");
    device_gets_through(&up, &p, "during-idle-flood").await;
    // They are still open: the device did not get in by pushing them out.
    for tcp in idle.iter().take(5) {
        let mut buf = [0u8; 1];
        assert!(
            tcp.try_read(&mut buf).is_err(),
            "an idle connection was closed"
        );
    }
    drop(idle);
    nothing_harmed(&up, &p);
    eprintln!("RSS: {before} KiB idle, {held} KiB with 1,000 idle connections");
}

#[tokio::test(flavor = "multi_thread")]
async fn flood_from_one_address_gets_421_past_its_share_device_still_served() {
    postern_engine::engine::raise_fd_limit();
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let flooder: IpAddr = [127, 0, 0, 9].into();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..1000 {
        let mut tcp = connect_from(p.smtp, flooder).await;
        let greeting = first_line(&mut tcp).await;
        if greeting.starts_with("220 ") {
            held.push(tcp);
        } else {
            assert_eq!(
                greeting,
                "421 4.7.0 Too many connections from 127.0.0.9, try again later"
            );
            refused += 1;
        }
    }
    assert_eq!(held.len(), 20, "the per-address share (default 20)");
    assert_eq!(refused, 980);
    assert_memory_bounded(&p, "a flood from one address");
    device_gets_through(&up, &p, "during-one-host-flood").await;
    drop(held);
    nothing_harmed(&up, &p);
}

/// Sends `bytes` one at a time, `gap` apart, until the server hangs up;
/// returns the server's last reply line.
async fn trickle(mut tcp: TcpStream, prefix: &[&str], bytes: &[u8], gap: Duration) -> String {
    let (r, mut w) = tcp.split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    for cmd in prefix {
        w.write_all(format!("{cmd}\r\n").as_bytes()).await.unwrap();
        line.clear();
        while r.read_line(&mut line).await.unwrap() > 0 && line.as_bytes().get(3) == Some(&b'-') {
            line.clear();
        }
    }
    let reader = async {
        let mut last = String::new();
        loop {
            let mut l = String::new();
            match r.read_line(&mut l).await {
                Ok(0) | Err(_) => return last,
                Ok(_) => last = l.trim_end().to_string(),
            }
        }
    };
    let writer = async {
        for b in bytes {
            if w.write_all(std::slice::from_ref(b)).await.is_err() {
                break;
            }
            tokio::time::sleep(gap).await;
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        last = reader => last,
        _ = writer => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_clients_are_cut_by_their_deadlines_device_still_served() {
    let up = Upstream::start().await;
    // A byte every 100 ms is never 1 s of silence, but a whole command may
    // take 2 s and the whole DATA phase 3 s.
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.idle_timeout", "2s");
        set(cfg, "listener.data_timeout", "1s");
    })
    .await;
    let gap = Duration::from_millis(100);
    let mut line = b"NOOP ".to_vec();
    line.extend_from_slice(&[b'z'; 400]);
    line.extend_from_slice(b"\r\n");
    let mut body = b"Subject: slowloris\r\n\r\n".to_vec();
    body.extend_from_slice(&[b'y'; 400]);
    body.extend_from_slice(b"\r\n.\r\n");
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let tcp = connect_from(p.smtp, [127, 0, 2, i + 1].into()).await;
        let (line, body) = (line.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                trickle(tcp, &[], &line, gap).await
            } else {
                let prefix = [
                    "EHLO slow",
                    "MAIL FROM:<slow@contoso.com>",
                    "RCPT TO:<bob@contoso.com>",
                    "DATA",
                ];
                trickle(tcp, &prefix, &body, gap).await
            }
        }));
    }
    device_gets_through(&up, &p, "during-slowloris").await;
    assert_memory_bounded(&p, "20 slowloris clients");
    for t in tasks {
        let last = tokio::time::timeout(PATIENCE, t)
            .await
            .expect("a slowloris client was never cut")
            .unwrap();
        assert!(last.starts_with("421 4.4.2 "), "{last}");
    }
    nothing_harmed(&up, &p);
    assert!(
        p.queue().iter().all(|m| m["subject"] != "slowloris"),
        "a trickled message was queued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn endless_line_gets_500_and_disconnect_memory_bounded() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let (c, greeting) = Raw::connect(p.smtp).await;
    assert!(greeting.starts_with("220 "));
    drop(c);
    let mut tcp = connect_from(p.smtp, [127, 0, 3, 1].into()).await;
    assert!(first_line(&mut tcp).await.starts_with("220 "));
    let (r, mut w) = tcp.into_split();
    const TOTAL: usize = 256 << 20;
    let writer = tokio::spawn(async move {
        let chunk = vec![b'A'; 64 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut r = BufReader::new(r);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert_eq!(line, "500 5.5.2 Line too long\r\n");
    // Then the connection ends (a 421 first, unless the reset that closing
    // on unread bytes sends overtakes it).
    loop {
        line.clear();
        match tokio::time::timeout(PATIENCE, r.read_line(&mut line))
            .await
            .expect("postern did not hang up")
        {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(line.starts_with("421 4.7.0 "), "{line}"),
        }
    }
    let sent = writer.await.unwrap();
    assert!(
        sent < TOTAL,
        "postern read all {sent} bytes of the endless line"
    );
    assert_memory_bounded(&p, "an endless line");
    device_gets_through(&up, &p, "after-endless-line").await;
    nothing_harmed(&up, &p);
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_rcpts_get_452_past_the_limit_and_the_rest_is_delivered() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let mut tcp = connect_from(p.smtp, [127, 0, 5, 1].into()).await;
    assert!(first_line(&mut tcp).await.starts_with("220 "));
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    // EHLO, MAIL, 10,000 RCPTs, NOOP, DATA, all pipelined, written while
    // the replies are read.
    let mut wire = format!("EHLO bulk\r\nMAIL FROM:<{MAILBOX}>\r\n");
    for i in 0..10_000 {
        wire.push_str(&format!("RCPT TO:<user{i}@contoso.com>\r\n"));
    }
    wire.push_str("NOOP\r\nDATA\r\n");
    let writer = tokio::spawn(async move {
        w.write_all(wire.as_bytes()).await.unwrap();
        w
    });
    let mut replies = Vec::new();
    while replies.len() < 10_004 {
        let mut line = String::new();
        let n = tokio::time::timeout(PATIENCE, r.read_line(&mut line))
            .await
            .expect("postern stopped answering")
            .unwrap();
        assert!(n > 0, "postern hung up after {} replies", replies.len());
        if line.as_bytes().get(3) != Some(&b'-') {
            replies.push(line.trim_end().to_string());
        }
    }
    assert!(replies[0].starts_with("250 "), "{}", replies[0]);
    assert!(replies[1].starts_with("250 2.1.0"), "{}", replies[1]);
    let rcpt = &replies[2..10_002];
    assert!(rcpt[..500].iter().all(|r| r.starts_with("250 2.1.5")));
    assert!(
        rcpt[500..]
            .iter()
            .all(|r| r == "452 4.5.3 Too many recipients"),
        "listener.max_recipients = 500"
    );
    assert!(
        replies[10_002].starts_with("250 2.0.0"),
        "NOOP: {}",
        replies[10_002]
    );
    assert!(
        replies[10_003].starts_with("354"),
        "DATA: {}",
        replies[10_003]
    );
    let mut w = writer.await.unwrap();
    w.write_all(b"Subject: bulk\r\n\r\nto 500\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("250 2.0.0 Ok: queued as"), "{line}");
    assert_memory_bounded(&p, "10,000 RCPTs");
    let got = up.wait_for(1).await;
    assert_eq!(got[0].rcpt_to.len(), 500);
    assert_eq!(got[0].rcpt_to[499], "user499@contoso.com");
    device_gets_through(&up, &p, "after-bulk").await;
    nothing_harmed(&up, &p);
}

/// One AUTH PLAIN attempt from `from`; returns the reply to it.
async fn try_login(
    smtp: SocketAddr,
    from: IpAddr,
    user: &str,
    pw: &str,
) -> (Raw<TcpStream>, String) {
    let mut c = Raw::new(connect_from(smtp, from).await);
    assert!(c.reply().await.starts_with("220 "));
    let ehlo = c.expect("EHLO brute", "250").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    let reply = c.cmd(&format!("AUTH PLAIN {}", plain(user, pw))).await;
    (c, reply)
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_brute_force_is_slowed_then_the_address_is_blocked() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.users", vec!["brute-device"]);
        set(cfg, "listener.require_auth", true);
    })
    .await;
    let out = p.cli_stdin(
        &["account", "set-secret", "--device", "brute-device"],
        "right-pw",
    );
    assert!(out.status.success(), "{}", text(&out));
    // Ten guesses in parallel from one address (one at a time would take
    // 1+2+4+8+16*6 s); each waits its growing pause, then gets 535.
    let attacker: IpAddr = [127, 0, 4, 1].into();
    let guesses: Vec<_> = (0..10)
        .map(|i| {
            let smtp = p.smtp;
            tokio::spawn(async move {
                try_login(smtp, attacker, "brute-device", &format!("guess-{i}"))
                    .await
                    .1
            })
        })
        .collect();
    for g in guesses {
        let reply = g.await.unwrap();
        assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    }
    // The pauses grew: 1 s, doubling, capped at 16 s (from the log, not a clock).
    let log = p.log();
    let mut delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("failed device login") && l.contains("127.0.4.1"))
        .filter_map(|l| l.split("delay_ms=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    delays.sort_unstable();
    assert_eq!(
        delays,
        [1000, 2000, 4000, 8000, 16000, 16000, 16000, 16000, 16000, 16000],
        "{log}"
    );
    // Blocked now, even with the right password...
    let (_, reply) = try_login(p.smtp, attacker, "brute-device", "right-pw").await;
    assert_eq!(
        reply,
        "454 4.7.0 Too many failed logins from 127.0.4.1, try again later"
    );
    // ...while the real device, elsewhere, logs in and sends.
    let (mut c, reply) = try_login(p.smtp, [127, 0, 4, 2].into(), "brute-device", "right-pw").await;
    assert!(reply.starts_with("235 2.7.0"), "{reply}");
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250 2.1.0")
        .await;
    c.expect("RCPT TO:<bob@contoso.com>", "250 2.1.5").await;
    c.expect("DATA", "354").await;
    c.send(b"Subject: real-device\r\n\r\nhello\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued as"));
    c.expect("QUIT", "221").await;
    let got = up.wait_for(1).await;
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: real-device"));
    nothing_harmed(&up, &p);
}

/// Outsiders (addresses not in `allow`) from eight hosts try to take every
/// slot and keep them with NOOPs. They get at most their share (a quarter
/// of `max_connections`), an allowed device still delivers while they hold
/// it, and NOOPs cannot keep a slot: each outsider session is closed after
/// a few commands.
#[tokio::test(flavor = "multi_thread")]
async fn outsiders_cannot_hold_the_slots_an_allowed_device_needs() {
    postern_engine::engine::raise_fd_limit();
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(
            cfg,
            "listener.allow",
            toml::Value::Array(vec!["127.0.0.1/32".into()]),
        );
    })
    .await;
    let mut held = Vec::new();
    let mut refused = 0;
    for host in 2..=9u8 {
        for _ in 0..20 {
            let mut tcp = connect_from(p.smtp, IpAddr::from([127, 0, 0, host])).await;
            let greeting = first_line(&mut tcp).await;
            if greeting.starts_with("220 ") {
                held.push(tcp);
            } else {
                assert!(greeting.starts_with("421 4.7.0"), "{greeting}");
                refused += 1;
            }
        }
    }
    assert_eq!(held.len(), 100 / 4, "outsiders' share of max_connections");
    assert_eq!(refused, 160 - 25);
    // While they hold their share, the office's device gets in.
    device_gets_through(&up, &p, "during-outsider-flood").await;

    // Keeping a slot with NOOPs does not work: closed after a few.
    for tcp in held {
        let (r, mut w) = tcp.into_split();
        let mut r = BufReader::new(r);
        let mut noops = 0;
        let last = loop {
            if w.write_all(b"NOOP\r\n").await.is_err() {
                break String::new();
            }
            let mut line = String::new();
            let n = tokio::time::timeout(PATIENCE, r.read_line(&mut line))
                .await
                .expect("an answer")
                .unwrap_or(0);
            if n == 0 || !line.starts_with("250") {
                break line;
            }
            noops += 1;
            assert!(noops <= 20, "an outsider kept its slot with NOOPs");
        };
        assert!(
            last.starts_with("421 4.7.0 Session limit reached") || last.is_empty(),
            "{last:?}"
        );
    }
    nothing_harmed(&up, &p);
}
