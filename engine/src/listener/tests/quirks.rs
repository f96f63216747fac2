//! Device quirks at the session level: bare-LF sessions, QUIT at an AUTH
//! prompt, and the header section Postern completes before the 250.

use std::time::Duration;

use base64::Engine;

use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn login_server_auth() -> DeviceAuth {
    DeviceAuth::fixed([("xerox", "pw")]).with_policy(LoginPolicy {
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_failures: 3,
        window: Duration::from_secs(900),
    })
}

async fn content_of(server: &Server, reply: &str) -> String {
    let id: crate::spool::MessageId = queued_id(reply).parse().unwrap();
    String::from_utf8(server.spool.read_content(&id).await.unwrap()).unwrap()
}

#[tokio::test]
async fn bare_lf_session_may_end_data_with_lf_dot_lf() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.send(b"HELO lf\nMAIL FROM:<a@x.com>\nRCPT TO:<b@x.com>\nDATA\n")
        .await;
    for want in ["250 relay.test", "250 2.1.0", "250 2.1.5", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(want), "{want}: {r}");
    }
    c.send(b"Date: d\nMessage-ID: <m@x>\n\n..one\n.\nNOOP\n")
        .await;
    let reply = c.reply().await;
    assert_eq!(
        content_of(&server, &reply).await,
        "Date: d\r\nMessage-ID: <m@x>\r\n\r\n.one\r\n"
    );
    assert_eq!(c.reply().await, "250 2.0.0 Ok", "NOOP after the message");
    server.stop().await;
}

#[tokio::test]
async fn one_crlf_line_makes_the_session_strict() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    // EHLO with CRLF, the rest with bare LF: LF "." LF is content.
    c.send(b"EHLO mixed\r\nMAIL FROM:<a@x.com>\nRCPT TO:<b@x.com>\nDATA\n")
        .await;
    for want in ["250-relay.test", "250 2.1.0", "250 2.1.5", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(want), "{want}: {r}");
    }
    c.send(b"Date: d\nMessage-ID: <m@x>\n\nbody\n.\nRSET\n\r\n.\r\n")
        .await;
    let reply = c.reply().await;
    assert_eq!(
        content_of(&server, &reply).await,
        "Date: d\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n.\r\nRSET\r\n\r\n"
    );
    c.expect("NOOP", "250 2.0.0").await;
    server.stop().await;
}

#[tokio::test]
async fn quit_at_an_auth_prompt_ends_the_session_with_221() {
    let server = Server::start(login_server_auth(), false, |c| {
        c.users = vec!["xerox".into()];
    })
    .await;
    // At the user name prompt.
    let mut c = server.connect().await;
    c.expect("EHLO xrx", "250").await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6");
    assert_eq!(
        c.cmd("QUIT").await,
        "221 2.0.0 relay.test closing connection (login not completed)"
    );
    assert_eq!(c.reply().await, "", "closed");
    // At the password prompt, and at PLAIN's empty prompt.
    let mut c = server.connect().await;
    c.expect("EHLO xrx", "250").await;
    c.expect(&format!("AUTH LOGIN {}", b64("xerox")), "334 UGFzc3dvcmQ6")
        .await;
    c.expect("quit", "221 2.0.0").await;
    assert_eq!(c.reply().await, "", "closed");
    let mut c = server.connect().await;
    c.expect("EHLO xrx", "250").await;
    c.expect("AUTH PLAIN", "334").await;
    c.expect("QUIT", "221 2.0.0").await;
    assert_eq!(c.reply().await, "", "closed");
    // QUIT did not count as a failed login.
    let mut c = server.connect().await;
    c.expect("EHLO xrx", "250").await;
    c.expect(&format!("AUTH PLAIN {}", b64("\0xerox\0pw")), "235")
        .await;
    server.stop().await;
}

#[tokio::test]
async fn the_stored_message_has_its_date_and_message_id_before_the_250() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let subject = format!("Subject: {}", "file.pdf ".repeat(300));
    let wire = format!("{subject}\r\n\r\nbody\r\n.\r\n");
    let reply = c
        .send_message("a@x.com", &["b@x.com"], wire.as_bytes())
        .await;
    let id = queued_id(&reply);
    // Read straight after the 250: the final bytes are already on disk.
    let stored = content_of(&server, &reply).await;
    let (head, body) = stored.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, "body\r\n");
    assert!(head.split("\r\n").all(|l| l.len() <= 998), "{head}");
    let lines: Vec<&str> = head.split("\r\n").collect();
    let date = lines.iter().find(|l| l.starts_with("Date: ")).unwrap();
    assert!(date.ends_with(" +0000"), "{date}");
    let msgid = lines
        .iter()
        .find(|l| l.starts_with("Message-ID: "))
        .unwrap();
    assert!(
        msgid.starts_with(&format!("Message-ID: <{id}.")) && msgid.ends_with("@relay.test>"),
        "{msgid}"
    );
    assert_eq!(
        head.replace("\r\n ", " ")
            .split("\r\n")
            .next()
            .unwrap()
            .trim_end(),
        subject.trim_end(),
        "folding is undone by unfolding"
    );
    server.stop().await;
}
