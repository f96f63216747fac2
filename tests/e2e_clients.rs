//! Real SMTP clients (swaks, Python's smtplib, curl) talking to the real
//! `postern serve`, which delivers to the fake Exchange Online: plain, with
//! STARTTLS, and with device AUTH. What is asserted is what arrived
//! upstream and what the device was told.

mod support;

use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn swaks_plain_message_arrives_upstream_with_xoauth2() {
    let up = Upstream::start().await;
    let p = Postern::start(&up).await;
    let out = run(
        "swaks",
        &[
            "--server",
            &p.smtp.to_string(),
            "--from",
            MAILBOX,
            "--to",
            "bob@contoso.com",
            "--header",
            "Subject: Scan 0001",
            "--body",
            "Here is your scan.",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("<-  250 2.0.0 Ok: queued as"),
        "{}",
        text(&out)
    );
    let got = up.wait_for(1).await;
    assert_eq!(got[0].mail_from, MAILBOX);
    assert_eq!(got[0].rcpt_to, vec!["bob@contoso.com"]);
    assert_eq!(got[0].auth_mechanism.as_deref(), Some("XOAUTH2"));
    assert_eq!(got[0].auth_user.as_deref(), Some(MAILBOX));
    assert!(got[0].tls, "upstream must be TLS");
    let body = String::from_utf8_lossy(&got[0].data);
    assert!(
        body.contains("Subject: Scan 0001") && body.contains("Here is your scan."),
        "{body}"
    );
    let q = p.wait_all(1, "sent");
    assert_eq!(q[0]["subject"], "Scan 0001");
}
