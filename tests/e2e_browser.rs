//! A web page must not be able to send mail through Postern. A page open in
//! a browser on a machine in `listener.allow` can `fetch()` the listener's
//! port with SMTP commands in a POST body (`mode: "no-cors"` needs no
//! answer the browser understands). The real thing: Debian's headless
//! Chromium opens a page served here, the page POSTs a whole SMTP session
//! to the real `postern serve`, then reports that its request settled;
//! nothing may reach the fake Exchange and nothing may be queued.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::mail::send;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The page: a POST to Postern with a whole mail transaction as its body,
/// then a request back to us once that fetch has settled either way.
fn page(smtp_port: u16) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>attack</title><script>
const smtp = "EHLO evil\r\nMAIL FROM:<{MAILBOX}>\r\nRCPT TO:<victim@fabrikam.com>\r\nDATA\r\nSubject: sent by a web page\r\n\r\nspam\r\n.\r\nQUIT\r\n";
fetch("http://127.0.0.1:{smtp_port}/", {{ method: "POST", mode: "no-cors", body: smtp }})
  .then(() => "resolved", (e) => "rejected: " + e)
  .then((how) => fetch("/done?" + encodeURIComponent(how)));
</script>"#
    )
}

/// Serves the page at `/` and returns the query of the `/done` request.
async fn serve_page(listener: TcpListener, html: String) -> String {
    loop {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let (status, body) = if path == "/" {
            ("200 OK", html.clone())
        } else {
            ("204 No Content", String::new())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
        if let Some(q) = path.strip_prefix("/done?") {
            return q.to_string();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_cannot_send_mail_through_postern() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "Debian's chromium is needed (scripts/deps.sh test installs it)"
    );
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;

    let web = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/", web.local_addr().unwrap().port());
    let served = tokio::spawn(serve_page(web, page(p.smtp.port())));

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let settled = tokio::time::timeout(PATIENCE, served).await;
    let _ = browser.kill();
    let _ = browser.wait();
    let how = settled
        .expect("the page's POST to Postern settled")
        .unwrap();

    // The session ended at the request line, and Postern said why.
    let log = p.log();
    assert!(
        log.contains("sent an HTTP request, not SMTP"),
        "page's fetch {how}; log:\n{log}"
    );
    assert!(
        !log.contains("queued"),
        "nothing from the page was queued:\n{log}"
    );
    assert!(p.queue().is_empty(), "{:?}", p.queue());
    // A device still gets through afterwards, and is the only arrival.
    send(&p, "after the page", &["bob@contoso.com"]);
    up.wait_for(1).await;
    let got = up.exchange.messages();
    assert_eq!(got.len(), 1, "only the device's message arrived");
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
}
