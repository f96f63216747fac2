//! Abuse: devices (or attackers) that trickle bytes, send a line without
//! end, or open connection after connection from one address.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpSocket;

use super::*;

/// Connects from a chosen loopback address (any 127/8 address works).
async fn connect_from(server: &Server, local: &str) -> Client<TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    Client::new(socket.connect(server.addr).await.unwrap())
}

/// The read side of a connection whose write side a task owns.
struct Replies(BufReader<tokio::net::tcp::OwnedReadHalf>);

impl Replies {
    /// One reply line, without CRLF; empty when the connection ended.
    async fn reply(&mut self) -> String {
        let mut line = String::new();
        if self.0.read_line(&mut line).await.unwrap_or(0) == 0 {
            return String::new();
        }
        line.trim_end().to_string()
    }
}

/// Writes `bytes` one at a time with `gap` between them until the server
/// hangs up; returns how many were sent.
fn dribble(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    bytes: Vec<u8>,
    gap: Duration,
) -> JoinHandle<usize> {
    tokio::spawn(async move {
        for (i, b) in bytes.iter().enumerate() {
            if w.write_all(std::slice::from_ref(b)).await.is_err() {
                return i;
            }
            tokio::time::sleep(gap).await;
        }
        bytes.len()
    })
}

#[tokio::test]
async fn trickled_command_line_is_cut_by_its_deadline() {
    // A byte every 20 ms never leaves the connection silent for the idle
    // timeout (300 ms), but the whole line takes 2 s: the line's deadline
    // cuts it. (Before: every byte restarted the clock, and the NOOP got
    // its 250 after 2 s.)
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let mut c = server.connect().await;
    c.expect("EHLO slow", "250").await;
    let (r, w) = c.into_inner().into_split();
    let mut line = b"NOOP ".to_vec();
    line.extend_from_slice(&[b'z'; 95]);
    line.extend_from_slice(b"\r\n");
    let sender = dribble(w, line, Duration::from_millis(20));
    let mut c = Replies(BufReader::new(r));
    assert_eq!(
        c.reply().await,
        "421 4.4.2 relay.test Timeout, closing connection"
    );
    assert_eq!(c.reply().await, "");
    sender.abort();
    server.stop().await;
}

#[tokio::test]
async fn trickled_data_is_cut_by_the_data_deadline_and_nothing_queued() {
    // data_timeout 200 ms: silence of 200 ms ends DATA, and the whole DATA
    // phase may take 600 ms. A byte every 20 ms for 300 bytes (6 s) is
    // never silent that long, so only the total deadline can stop it.
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.data_timeout = Duration::from_millis(200);
    })
    .await;
    let mut c = server.connect().await;
    c.expect("EHLO slow", "250").await;
    c.expect("MAIL FROM:<a@x.com>", "250").await;
    c.expect("RCPT TO:<b@x.com>", "250").await;
    c.expect("DATA", "354").await;
    let (r, w) = c.into_inner().into_split();
    let mut body = vec![b'y'; 300];
    body.extend_from_slice(b"\r\n.\r\n");
    let sender = dribble(w, body, Duration::from_millis(20));
    let mut c = Replies(BufReader::new(r));
    assert_eq!(
        c.reply().await,
        "421 4.4.2 relay.test Timeout, closing connection"
    );
    assert!(server.messages().is_empty());
    sender.abort();
    server.stop().await;
}

#[tokio::test]
async fn endless_line_gets_500_then_disconnect() {
    let server = Server::plain().await;
    let c = server.connect().await;
    let (r, mut w) = c.into_inner().into_split();
    // 64 MB without a line break; the server must hang up long before.
    const TOTAL: usize = 64 << 20;
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
    let mut c = Replies(BufReader::new(r));
    assert_eq!(c.reply().await, "500 5.5.2 Line too long");
    // The 421 may be lost to the reset that closing on unread bytes sends.
    let last = c.reply().await;
    assert!(
        last.is_empty() || last == "421 4.7.0 relay.test Line too long, closing connection",
        "{last}"
    );
    while !c.reply().await.is_empty() {}
    let sent = writer.await.unwrap();
    assert!(sent < TOTAL, "the server read the whole endless line");
    server.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_capped_others_still_served() {
    let server = Server::start(DeviceAuth::none(), false, |c| {
        c.max_connections_per_ip = 2;
    })
    .await;
    let mut first = connect_from(&server, "127.0.0.1").await;
    assert!(first.reply().await.starts_with("220 "));
    let mut second = connect_from(&server, "127.0.0.1").await;
    assert!(second.reply().await.starts_with("220 "));
    let mut third = connect_from(&server, "127.0.0.1").await;
    assert_eq!(
        third.reply().await,
        "421 4.7.0 Too many connections from 127.0.0.1, try again later"
    );
    assert_eq!(third.reply().await, "");
    // Another device is served.
    let mut other = connect_from(&server, "127.0.0.2").await;
    assert!(other.reply().await.starts_with("220 "));
    other.expect("EHLO printer", "250").await;
    let reply = other
        .send_message("p@x.com", &["b@x.com"], b"hi\r\n.\r\n")
        .await;
    queued_id(&reply);
    // When one of the first two leaves, its address has the place back by
    // the time it has read the 221 (so a device that reconnects at once for
    // its next message is not refused).
    first.expect("QUIT", "221").await;
    let mut again = connect_from(&server, "127.0.0.1").await;
    assert!(again.reply().await.starts_with("220 "));
    second.expect("QUIT", "221").await;
    server.stop().await;
}

#[tokio::test]
async fn added_headers_count_against_the_size_limit() {
    // Found by the session fuzz target: a message just under
    // max_message_bytes without Date and Message-ID grew past the limit
    // when Postern added them, so the spool held more than Exchange takes.
    let server = Server::start(DeviceAuth::none(), false, |c| c.max_message_bytes = 2048).await;
    let mut c = server.connect().await;
    c.expect("EHLO x", "250").await;
    let mut body = b"Subject: edge\r\n\r\n".to_vec();
    while body.len() < 2040 {
        body.extend_from_slice(b"0123456789\r\n");
    }
    body.truncate(2040);
    body.extend_from_slice(b"\r\n.\r\n");
    let reply = c.send_message("a@x.com", &["b@x.com"], &body).await;
    assert!(reply.starts_with("552 5.3.4 "), "{reply}");
    // Well under the limit, the same message is stored, headers and all,
    // and the stored size stays within the limit.
    let reply = c
        .send_message(
            "a@x.com",
            &["b@x.com"],
            b"Subject: small\r\n\r\nhi\r\n.\r\n",
        )
        .await;
    queued_id(&reply);
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].size <= 2048, "{}", stored[0].size);
    server.stop().await;
}
