//! An upload's progress: `Connection::send_with_progress` reports how far
//! a large message's content has got while Microsoft is still reading it.
//! The responder here stops reading mid-message until the test lets it go
//! on, so a report in the middle is certain, not a matter of timing.

use std::time::Duration;

use postern_engine::delivery::{Connection, Credentials, TlsMode, Transcript, UpstreamSettings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

const EHLO: &str =
    "250-fake.outlook.test Hello\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n250 PIPELINING\r\n";

/// Answers one session; after DATA's 354 it reads `pause_after` bytes of
/// content, then waits for `go` before reading the rest.
async fn responder(listener: TcpListener, pause_after: usize, go: oneshot::Receiver<()>) -> usize {
    let (stream, _) = listener.accept().await.unwrap();
    let mut rd = BufReader::new(stream);
    rd.get_mut()
        .write_all(b"220 fake.outlook.test ready\r\n")
        .await
        .unwrap();
    let mut go = Some(go);
    let mut content = 0;
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.unwrap() == 0 {
            return content;
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            EHLO.to_string()
        } else if upper == "DATA" {
            rd.get_mut().write_all(b"354 go ahead\r\n").await.unwrap();
            let mut head = vec![0; pause_after];
            rd.read_exact(&mut head).await.unwrap();
            go.take().unwrap().await.unwrap();
            content = pause_after;
            let mut line = Vec::new();
            loop {
                line.clear();
                rd.read_until(b'\n', &mut line).await.unwrap();
                if line == b".\r\n" {
                    break;
                }
                content += line.len();
            }
            "250 2.0.0 OK <id@fake>\r\n".to_string()
        } else if upper == "QUIT" {
            rd.get_mut().write_all(b"221 bye\r\n").await.unwrap();
            return content;
        } else {
            "250 2.0.0 OK\r\n".to_string()
        };
        rd.get_mut().write_all(reply.as_bytes()).await.unwrap();
    }
}

#[tokio::test]
async fn a_large_upload_reports_progress_while_it_lasts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (go, wait) = oneshot::channel();
    let server = tokio::spawn(responder(listener, 1024 * 1024, wait));

    // 16 MiB of 76-character lines: more than the socket buffers between
    // the two ends hold, so the upload cannot finish while the peer waits.
    let line = format!("{}\r\n", "A".repeat(76));
    let mut content = b"Subject: big scan\r\n\r\n".to_vec();
    while content.len() < 16 * 1024 * 1024 {
        content.extend_from_slice(line.as_bytes());
    }
    let total = (content.len() - 2) as u64; // lettre adds the final CRLF itself

    let settings = UpstreamSettings {
        host: "127.0.0.1".to_owned(),
        port,
        addrs: Vec::new(),
        tls: TlsMode::None,
        ca_file: None,
        client_cert: None,
        tls_cache: Default::default(),
        hello_name: "postern.test".to_owned(),
        timeout: Duration::from_secs(30),
    };
    let mut t = Transcript::default();
    let mut conn = Connection::open(&settings, &Credentials::None, &mut t)
        .await
        .unwrap();

    let (tx, mut reports) = mpsc::unbounded_channel();
    let send = async {
        let mut progress = |bytes, total| {
            let _ = tx.send((bytes, total));
        };
        conn.send_with_progress(
            "scanner@contoso.com",
            &["bob@contoso.com".to_string()],
            &content,
            &mut t,
            &mut progress,
        )
        .await
    };
    let watch = async {
        // A report in the middle: past the first MiB the peer read, short
        // of the whole. Then the peer reads on.
        let mut seen = Vec::new();
        loop {
            let (bytes, of) = reports.recv().await.expect("progress reports");
            assert_eq!(of, total);
            seen.push(bytes);
            if bytes >= 1024 * 1024 && bytes < total {
                break;
            }
        }
        go.send(()).unwrap();
        seen
    };
    // Without a report the peer would wait for ever: a deadline, not a timing.
    let (report, mut seen) = tokio::time::timeout(Duration::from_secs(120), async {
        tokio::join!(send, watch)
    })
    .await
    .expect("no progress report while the peer waited");
    let report = report.expect("delivered");
    assert!(report.data_reply.unwrap().is_positive());
    while let Ok((bytes, _)) = reports.try_recv() {
        seen.push(bytes);
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "progress only grows: {seen:?}"
    );
    assert!(
        seen.iter().all(|&b| b <= total),
        "never past the whole: {seen:?}"
    );
    conn.quit(&mut t).await;
    // Everything arrived: the content and lettre's final CRLF before ".".
    assert_eq!(server.await.unwrap(), content.len());
}
