//! Limits: recipients, sizes, line lengths, timeouts, connection cap.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn too_many_recipients_452() {
    let server = Server::start(DeviceAuth::none(), false, |c| c.max_recipients = 2).await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.expect("MAIL FROM:<a@x.com>", "250").await;
    c.expect("RCPT TO:<1@x.com>", "250 2.1.5").await;
    c.expect("RCPT TO:<2@x.com>", "250 2.1.5").await;
    assert_eq!(
        c.cmd("RCPT TO:<3@x.com>").await,
        "452 4.5.3 Too many recipients"
    );
    c.expect("DATA", "354").await;
    c.send(b"x\r\n.\r\n").await;
    queued_id(&c.reply().await);
    assert_eq!(server.messages()[0].to, ["1@x.com", "2@x.com"]);
    server.stop().await;
}

#[tokio::test]
async fn declared_size_too_big_552() {
    let server = Server::start(DeviceAuth::none(), false, |c| c.max_message_bytes = 2048).await;
    let mut c = server.connect().await;
    let ehlo = c.expect("EHLO x", "250").await;
    assert!(ehlo.contains("250-SIZE 2048"), "{ehlo}");
    c.expect(
        "MAIL FROM:<a@x.com> SIZE=4096",
        "552 5.3.4 Message too big: the device says the message is 4096 bytes, the limit is 2048 bytes (listener.max_message_bytes)",
    )
    .await;
    c.expect("MAIL FROM:<a@x.com> SIZE=2048", "250 2.1.0").await;
    server.stop().await;
}

#[tokio::test]
async fn content_too_big_is_read_to_the_end_and_refused() {
    let server = Server::start(DeviceAuth::none(), false, |c| c.max_message_bytes = 2048).await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let mut wire = Vec::new();
    for _ in 0..100 {
        wire.extend_from_slice(b"0123456789012345678901234567890123456789\r\n");
    }
    wire.extend_from_slice(b"MAIL FROM:<inside@content>\r\n.\r\n");
    let reply = c.send_message("a@x.com", &["b@x.com"], &wire).await;
    assert!(
        reply.starts_with(
            "552 5.3.4 Message too big: the message is 4228 bytes, the limit is 2048 bytes"
        ),
        "{reply}"
    );
    c.expect("RSET", "250 2.0.0").await;
    assert!(server.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn long_text_line_is_refused_with_its_number() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let mut wire = b"Subject: x\r\n\r\n".to_vec();
    wire.extend(std::iter::repeat_n(b'a', 1200));
    wire.extend_from_slice(b"\r\n.\r\n");
    let reply = c.send_message("a@x.com", &["b@x.com"], &wire).await;
    assert_eq!(reply, "550 5.6.0 Message refused: line 3 is longer than 998 characters (RFC 5321 section 4.5.3.1.6); the device must wrap long lines or encode the text (quoted-printable or base64)");
    assert!(server.messages().is_empty());
    c.expect("NOOP", "250").await;
    server.stop().await;
}

#[tokio::test]
async fn long_command_line_500_and_rest_discarded() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    // Whole line in one write; its tail looks like a command.
    let mut line = vec![b'X'; 600];
    line.extend_from_slice(b"QUIT\r\n");
    c.send(&line).await;
    assert_eq!(c.reply().await, "500 5.5.2 Line too long");
    c.expect("NOOP", "250 2.0.0").await;
    // Over the limit before any LF: 500 at once, the rest skipped to LF.
    c.send(&[b'Y'; 700]).await;
    assert_eq!(c.reply().await, "500 5.5.2 Line too long");
    c.send(b"QUIT\r\nNOOP\r\n").await;
    assert_eq!(
        c.reply().await,
        "250 2.0.0 Ok",
        "QUIT was part of the long line"
    );
    // Exactly 512 octets with CRLF is fine.
    let mut ok = b"NOOP ".to_vec();
    ok.extend(std::iter::repeat_n(b'z', MAX_COMMAND_LINE - 7));
    ok.extend_from_slice(b"\r\n");
    assert_eq!(ok.len(), MAX_COMMAND_LINE);
    c.send(&ok).await;
    assert_eq!(c.reply().await, "250 2.0.0 Ok");
    server.stop().await;
}

#[tokio::test]
async fn idle_timeout_421() {
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.idle_timeout = Duration::from_millis(50);
    })
    .await;
    let mut c = server.connect().await;
    assert_eq!(
        c.reply().await,
        "421 4.4.2 relay.test Timeout, closing connection"
    );
    assert_eq!(c.reply().await, "");
    server.stop().await;
}

#[tokio::test]
async fn data_timeout_421_and_nothing_queued() {
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.data_timeout = Duration::from_millis(50);
    })
    .await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    c.expect("MAIL FROM:<a@x.com>", "250").await;
    c.expect("RCPT TO:<b@x.com>", "250").await;
    c.expect("DATA", "354").await;
    c.send(b"Subject: slow\r\n").await;
    assert_eq!(
        c.reply().await,
        "421 4.4.2 relay.test Timeout, closing connection"
    );
    assert!(server.messages().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn connection_cap_421() {
    let server = Server::start(DeviceAuth::none(), false, |c| c.max_connections = 1).await;
    let mut first = server.connect().await;
    let mut second = Client::new(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(
        second.reply().await,
        "421 4.7.0 Too many connections, try again later"
    );
    assert_eq!(second.reply().await, "");
    first.expect("QUIT", "221").await;
    assert_eq!(first.reply().await, "");
    server.stop().await;
}

#[tokio::test]
async fn bind_errors_name_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Events::new()).await.unwrap();
    let ctx = |cfg: ListenerConfig| ListenerContext {
        config: Arc::new(cfg),
        spool: spool.clone(),
        device_auth: DeviceAuth::none(),
        tls: None,
        legacy_tls: None,
        hostname: HOST.into(),
        internal_domains: None,
    };
    let err = Listener::bind(ctx(ListenerConfig {
        listen: vec![addr],
        ..Default::default()
    }))
    .await
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(&addr.to_string()) && err.contains("already in use"),
        "{err}"
    );
    let tls_addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let err = Listener::bind(ctx(ListenerConfig {
        tls_listen: vec![tls_addr],
        ..Default::default()
    }))
    .await
    .err()
    .unwrap();
    assert!(matches!(err, ListenerError::NoTls { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1:0"), "{err}");
}

#[tokio::test]
async fn large_message_is_streamed_intact() {
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let mut content = b"Subject: big scan\r\nDate: d\r\nMessage-ID: <big@x>\r\n\r\n".to_vec();
    for i in 0..8000 {
        content.extend_from_slice(
            format!("{i:06} base64-ish attachment line .......................\r\n").as_bytes(),
        );
    }
    let mut wire = content.clone();
    wire.extend_from_slice(b".\r\n");
    let id = queued_id(&c.send_message("a@x.com", &["b@x.com"], &wire).await);
    let id: crate::spool::MessageId = id.parse().unwrap();
    assert_eq!(server.spool.read_content(&id).await.unwrap(), content);
    server.stop().await;
}

/// A header section past 256 KB (thousands of one-line headers) is read to
/// the end and refused with 552 saying why; one just under it is taken.
#[tokio::test]
async fn header_section_past_the_limit_552() {
    use crate::listener::headers::MAX_HEADER_BYTES;
    let server = Server::plain().await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let line = b"X-Filler: 0123456789012345678901234567890123456789\r\n";
    let headers = |bytes: usize| {
        let mut wire = Vec::new();
        while wire.len() + line.len() <= bytes {
            wire.extend_from_slice(line);
        }
        wire
    };
    let mut big = headers(MAX_HEADER_BYTES + line.len());
    big.extend_from_slice(b"\r\nbody\r\n.\r\n");
    let reply = c.send_message("a@x.com", &["b@x.com"], &big).await;
    assert_eq!(
        reply,
        "552 5.3.4 Message refused: its header section is over 256 KB, the most Exchange Online accepts; the device must send fewer or shorter header fields"
    );
    c.expect("RSET", "250 2.0.0").await;
    assert!(server.messages().is_empty());

    // Room for the Date and Message-ID Postern adds.
    let mut fits = headers(MAX_HEADER_BYTES - 1024);
    fits.extend_from_slice(b"\r\nbody\r\n.\r\n");
    queued_id(&c.send_message("a@x.com", &["b@x.com"], &fits).await);
    server.stop().await;
}
