//! Attacks on the device side of the real `postern serve`, asserted by what
//! reaches the fake Exchange Online: SMTP smuggling (every non-CRLF end-of-
//! data look-alike), STARTTLS command injection, and open-relay tricks from
//! an address that is not allowed to relay.

mod support;

use support::smtp::{plain, Raw};
use support::*;

/// Line-break look-alikes that must NOT end DATA (SMTP smuggling, 2023).
const SMUGGLING: &[&str] = &[
    "\n.\n",
    "\r.\r",
    "\n.\r\n",
    "\r\n.\n",
    "\r.\r\n",
    "\r\n.\r",
    "\r\n\x00.\r\n",
];

#[tokio::test(flavor = "multi_thread")]
async fn smtp_smuggling_sequences_do_not_end_data() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    for (i, seq) in SMUGGLING.iter().enumerate() {
        let (mut c, greeting) = Raw::connect(p.smtp).await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        c.expect("EHLO device", "250").await;
        c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250 2.1.0")
            .await;
        c.expect("RCPT TO:<bob@contoso.com>", "250 2.1.5").await;
        c.expect("DATA", "354").await;
        let wire = format!(
            "Subject: a\r\nDate: Tue, 1 Oct 2024 09:30:00 +0000\r\nMessage-ID: <a@test>\r\n\r\nbody{seq}MAIL FROM:<evil@x.com>\r\nRCPT TO:<victim@contoso.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n\r\n.\r\nQUIT\r\n"
        );
        c.send(wire.as_bytes()).await;
        // Exactly one message: its 250, then the QUIT's 221, then nothing.
        let queued = c.reply().await;
        assert!(
            queued.starts_with("250 2.0.0 Ok: queued as"),
            "{seq:?}: {queued}"
        );
        let bye = c.reply().await;
        assert!(bye.starts_with("221 "), "{seq:?}: {bye}");
        assert_eq!(c.rest().await, "", "{seq:?}: replies after QUIT");

        let n = i + 1;
        p.wait_all(n, "sent");
        let got = up.exchange.messages();
        assert_eq!(got.len(), n, "{seq:?}: one message per connection");
        let m = &got[i];
        assert_eq!(m.mail_from, MAILBOX, "{seq:?}");
        assert_eq!(m.rcpt_to, vec!["bob@contoso.com"], "{seq:?}");
        let data = String::from_utf8_lossy(&m.data);
        assert!(
            data.starts_with("Subject: a\r\nDate: Tue, 1 Oct 2024 09:30:00 +0000\r\nMessage-ID: <a@test>\r\n\r\nbody"),
            "{seq:?}: {data:?}"
        );
        assert!(
            data.contains("Subject: smuggled\r\n\r\nevil\r\n"),
            "{seq:?}: the smuggled part is body text: {data:?}"
        );
        assert!(!m.data.contains(&0), "{seq:?}: NUL passed on");
        // No lone CR or LF reaches the next hop.
        let bare = data.replace("\r\n", "");
        assert!(
            !bare.contains('\r') && !bare.contains('\n'),
            "{seq:?}: {data:?}"
        );
    }
    for m in up.exchange.messages() {
        assert_ne!(m.mail_from, "evil@x.com");
        assert!(!m.rcpt_to.iter().any(|r| r.contains("victim")));
    }
    let said = up.exchange.transcripts().join("\n");
    assert!(!said.contains("MAIL FROM:<evil@x.com>"), "{said}");
    assert!(!said.contains("victim@contoso.com"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_injected_after_starttls_are_discarded() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let (mut c, _) = Raw::connect(p.smtp).await;
    let ehlo = c.expect("EHLO device", "250").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    // One write: the RSET rides in the plaintext buffer (CVE-2011-0411).
    c.send(b"STARTTLS\r\nRSET\r\n").await;
    assert_eq!(c.reply().await, "220 2.0.0 Ready to start TLS");
    let mut c = c.start_tls(&p.spool_dir()).await;
    let first = c.cmd("EHLO device").await;
    assert!(
        first.starts_with("250-") && first.contains("PIPELINING"),
        "the first reply inside TLS must answer EHLO, got {first:?}"
    );
    assert!(!first.contains("STARTTLS"), "{first}");
    // Nothing else is pending: the next reply answers the next command.
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok");
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250 2.1.0")
        .await;
    c.expect("RCPT TO:<bob@contoso.com>", "250 2.1.5").await;
    c.expect("DATA", "354").await;
    c.send(b"Subject: inside tls\r\n\r\nok\r\n.\r\n").await;
    assert!(c.reply().await.starts_with("250 2.0.0 Ok: queued as"));
    c.expect("QUIT", "221").await;
    let got = up.wait_for(1).await;
    assert!(String::from_utf8_lossy(&got[0].data).contains("Subject: inside tls"));
    p.wait_all(1, "sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_client_cannot_get_mail_queued() {
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec!["sec-device"]);
    })
    .await;
    let out = p.cli_stdin(
        &["account", "set-secret", "--device", "sec-device"],
        "sec-device-pw",
    );
    assert!(out.status.success(), "{}", text(&out));
    let from = format!("MAIL FROM:<{MAILBOX}>");

    // RCPT and DATA without MAIL.
    let (mut c, _) = Raw::connect(p.smtp).await;
    c.expect("EHLO device", "250").await;
    c.expect("RCPT TO:<bob@contoso.com>", "503 5.5.1").await;
    c.expect("DATA", "503 5.5.1").await;
    c.expect(&from, "554 5.7.1").await;
    // Pipelined: MAIL refused, so RCPT and DATA are out of sequence and the
    // content is answered as (bad) commands, never stored.
    c.send(
        format!("{from}\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n")
            .as_bytes(),
    )
    .await;
    assert!(c.reply().await.starts_with("554 5.7.1"));
    assert!(c.reply().await.starts_with("503 5.5.1"));
    assert!(c.reply().await.starts_with("503 5.5.1"));
    for _ in 0..4 {
        let r = c.reply().await;
        assert!(r.starts_with('5'), "content line answered with {r:?}");
    }
    c.expect("QUIT", "221").await;

    // AUTH with empty credentials, with the wrong password, and a
    // cancelled exchange: none logs in.
    // (Each failure costs a growing pause: keep the list short.)
    for creds in [String::new(), plain("", ""), plain("sec-device", "wrong")] {
        let (mut c, _) = Raw::connect(p.smtp).await;
        c.expect("EHLO device", "250").await;
        let reply = if creds.is_empty() {
            c.expect("AUTH PLAIN", "334").await;
            c.cmd("").await
        } else {
            c.cmd(&format!("AUTH PLAIN {creds}")).await
        };
        assert!(reply.starts_with('5'), "{creds:?}: {reply}");
        c.expect(&from, "554 5.7.1").await;
        c.expect("QUIT", "221").await;
    }
    let (mut c, _) = Raw::connect(p.smtp).await;
    c.expect("EHLO device", "250").await;
    c.expect("AUTH LOGIN", "334").await;
    assert!(c.cmd("*").await.starts_with("501"));
    c.expect(&from, "554 5.7.1").await;
    drop(c);

    assert!(p.queue().is_empty(), "{:?}", p.queue());
    assert_eq!(up.exchange.stats().messages, 0);
}

/// This machine's first non-loopback IPv4 address, if it has one.
fn lan_ip() -> Option<std::net::IpAddr> {
    let out = run("hostname", &["-I"]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_auth_refused_where_not_offered() {
    // No device users: AUTH is not offered and does not work at all.
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| set(cfg, "listener.allow", vec!["10.0.0.0/8"])).await;
    let (mut c, _) = Raw::connect(p.smtp).await;
    let ehlo = c.expect("EHLO device", "250").await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    c.expect(
        &format!("AUTH PLAIN {}", plain("scanner", "pw")),
        "502 5.5.1",
    )
    .await;
    c.expect("AUTH LOGIN", "502 5.5.1").await;
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "554 5.7.1")
        .await;
    // It can never log in here: the connection ends after the refusal.
    assert_eq!(c.cmd("QUIT").await, "", "closed");
    assert!(p.queue().is_empty());
    assert_eq!(up.exchange.stats().messages, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_lan_client_must_use_tls_before_auth() {
    let Some(lan) = lan_ip() else {
        eprintln!("skipped: this machine has no non-loopback IPv4 address");
        return;
    };
    let up = Upstream::start().await;
    let p = Postern::start_with(&up, |cfg| {
        set(cfg, "listener.listen", vec!["0.0.0.0:0"]);
        set(cfg, "listener.allow", vec!["10.0.0.0/8"]);
        set(cfg, "listener.users", vec!["lan-device"]);
    })
    .await;
    let out = p.cli_stdin(
        &["account", "set-secret", "--device", "lan-device"],
        "lan-pw",
    );
    assert!(out.status.success(), "{}", text(&out));
    let addr = std::net::SocketAddr::new(lan, p.smtp.port());
    let (mut c, _) = Raw::connect(addr).await;
    let ehlo = c.expect("EHLO device", "250").await;
    assert!(
        !ehlo.contains("AUTH"),
        "no AUTH offered in plaintext: {ehlo}"
    );
    // Even the right password is not accepted over plaintext.
    c.expect(
        &format!("AUTH PLAIN {}", plain("lan-device", "lan-pw")),
        "538 5.7.11",
    )
    .await;
    let reply = c.cmd(&format!("MAIL FROM:<{MAILBOX}>")).await;
    assert!(
        reply.starts_with(&format!("554 5.7.1 Relaying denied: {lan} ")),
        "{reply}"
    );
    c.send(b"STARTTLS\r\n").await;
    assert!(c.reply().await.starts_with("220"));
    let mut c = c.start_tls(&p.spool_dir()).await;
    let ehlo = c.expect("EHLO device", "250").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    c.expect(
        &format!("AUTH PLAIN {}", plain("lan-device", "lan-pw")),
        "235",
    )
    .await;
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250").await;
    c.expect("QUIT", "221").await;
    assert!(p.queue().is_empty());
}

/// Device data reaches the admin's terminal escaped: an ESC sequence in the
/// Subject and From comes out of `postern queue` and `queue show` as
/// visible `\x1b` text, never as the byte; a HELO name with one is refused.
#[tokio::test(flavor = "multi_thread")]
async fn control_characters_never_reach_the_terminal() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let (mut c, _) = Raw::connect(p.smtp).await;
    let refused = c.cmd("EHLO \x1b]0;owned\x07").await;
    assert!(refused.starts_with("501 5.5.4"), "{refused}");
    c.expect("EHLO printer", "250").await;
    c.expect(&format!("MAIL FROM:<{MAILBOX}>"), "250").await;
    c.expect("RCPT TO:<bob@contoso.com>", "250").await;
    c.expect("DATA", "354").await;
    c.send(b"Subject: \x1b[2J\x1b[31mINVOICE\x1b]0;pwned\x07\r\nMessage-ID: <esc@test>\r\nDate: Tue, 1 Oct 2024 09:30:00 +0000\r\n\r\nhi\r\n.\r\n")
        .await;
    assert!(c.reply().await.starts_with("250 "));
    let q = p.wait_all(1, "sent");
    let id = q[0]["id"].as_str().unwrap();
    for args in [vec!["queue"], vec!["queue", "show", id]] {
        let out = p.cli(&args);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            !out.stdout.contains(&0x1b) && !out.stdout.contains(&0x07),
            "{args:?} printed a control byte: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        if args.len() == 3 {
            let shown = String::from_utf8_lossy(&out.stdout);
            assert!(shown.contains("\\x1b[2J\\x1b[31mINVOICE"), "{shown}");
        }
    }
    // JSON keeps the real text (escaped by JSON itself).
    let show = p.cli_json(&["queue", "show", id]);
    assert!(show["subject"].as_str().unwrap().contains('\x1b'));
}
