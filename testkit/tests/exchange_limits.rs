//! The fake Exchange's submission limits driven over raw SMTP: the
//! per-minute rate is counted (not refused, like Exchange), the recipient
//! budget is refused with `554 5.2.0 ...SubmissionQuotaExceededException`,
//! and the default options enforce neither.

mod common;

use std::time::Duration;

use common::{xoauth2, Client};
use postern_testkit::{max_in_window, FakeExchange, FakeExchangeOptions, MINUTE, QUOTA_REPLY};

const USER: &str = "scanner@contoso.com";

async fn authed_client(fake: &FakeExchange) -> Client {
    let mut c = Client::connect(fake.addr()).await;
    c.secure(fake.ca_pem()).await;
    let r = c
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, "any-token")))
        .await;
    assert_eq!(r.first(), "235 2.7.0 Authentication successful");
    c
}

fn rcpts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}@example.com")).collect()
}

async fn send(c: &mut Client, n_rcpts: usize) -> String {
    let to = rcpts(n_rcpts);
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    c.send_mail(USER, &to, b"Subject: x\r\n\r\nbody\r\n")
        .await
        .first()
}

#[tokio::test]
async fn messages_over_the_minute_are_accepted_but_counted() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        messages_per_minute: Some(3),
        ..Default::default()
    })
    .await;
    let mut c = authed_client(&fake).await;
    // Five in far less than a minute: like Exchange, all are accepted.
    for _ in 0..5 {
        assert!(send(&mut c, 1).await.starts_with("250 2.0.0 OK"));
    }
    let stats = fake.stats();
    assert_eq!(stats.messages, 5);
    assert_eq!(stats.over_limit_submissions, 2, "the 4th and 5th");
    assert_eq!(stats.quota_replies, 0);
    let times = fake.submission_times();
    assert_eq!(times.len(), 5);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(max_in_window(&times, MINUTE), 5);
    assert_eq!(fake.submission_wall_times().len(), 5);
}

#[tokio::test]
async fn spent_recipient_budget_gets_554_5_2_0_and_is_not_recorded() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        recipients_per_window: Some((5, Duration::from_secs(3600))),
        ..Default::default()
    })
    .await;
    let mut c = authed_client(&fake).await;
    assert!(send(&mut c, 3).await.starts_with("250 2.0.0 OK"));
    // 3 + 3 > 5: refused at the end of the content, whole message.
    let r = send(&mut c, 3).await;
    assert_eq!(r, QUOTA_REPLY);
    assert!(r.starts_with(
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; \
         Failed to process message due to a permanent exception with message [BeginDiagnosticData]"
    ));
    // The session goes on, and what still fits is accepted: 3 + 2 = 5.
    assert!(send(&mut c, 2).await.starts_with("250 2.0.0 OK"));
    assert_eq!(send(&mut c, 1).await, QUOTA_REPLY);
    let stats = fake.stats();
    assert_eq!(stats.quota_replies, 2);
    assert_eq!(stats.messages, 2);
    let got = fake.messages();
    assert_eq!(
        got.iter().map(|m| m.rcpt_to.len()).collect::<Vec<_>>(),
        [3, 2]
    );
    assert_eq!(fake.submission_times().len(), 2);
}

#[tokio::test]
async fn default_options_enforce_no_rate_or_budget() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut c = authed_client(&fake).await;
    for _ in 0..40 {
        assert!(send(&mut c, 300).await.starts_with("250 2.0.0 OK"));
    }
    let stats = fake.stats();
    assert_eq!(stats.messages, 40);
    assert_eq!(stats.over_limit_submissions, 0);
    assert_eq!(stats.quota_replies, 0);
    assert_eq!(stats.throttle_replies, 0);
}
