//! The MIME route against the fake Graph: exactly the envelope delivered,
//! the transcript's request lines, errors classified.

use postern_testkit::{FakeGraph, GraphFault, GraphMailbox, GraphOptions, RequestKind};

use super::*;
use crate::delivery::classify::Action;

const MAILBOX: &str = "scanner@contoso.com";

async fn setup() -> (FakeGraph, GraphClient) {
    let graph = FakeGraph::start(GraphOptions {
        mailboxes: vec![GraphMailbox::new(MAILBOX)],
        ..Default::default()
    })
    .await;
    let mut config = Config::default();
    config.upstream.mode = crate::config::UpstreamMode::Graph;
    config.graph.endpoint = graph.endpoint();
    (graph, GraphClient::new(&config).unwrap())
}

fn message() -> Vec<u8> {
    b"From: Scanner <scanner@contoso.com>\r\n\
      To: Alice <alice@contoso.com>, bob@contoso.com\r\n\
      Subject: scan\r\n\
      \r\n\
      the scan\r\n"
        .to_vec()
}

#[tokio::test]
async fn mime_route_delivers_to_exactly_the_envelope() {
    let (graph, client) = setup().await;
    let token = Secret::new("not-a-real-token-1234");
    let envelope = vec!["alice@contoso.com".to_string(), "carol@fabrikam.com".into()];
    let mut t = Transcript::new();
    client
        .send_mime(MAILBOX, &token, &message(), &envelope, &mut t)
        .await
        .unwrap();
    let got = graph.delivered();
    assert_eq!(got.len(), 1);
    let mut rcpts = got[0].recipients();
    rcpts.sort();
    assert_eq!(rcpts, envelope, "{:?}", got[0]);
    assert_eq!(got[0].bcc, ["carol@fabrikam.com"]);
    let visible = String::from_utf8(got[0].visible.clone().unwrap()).unwrap();
    assert!(visible.ends_with("\r\n\r\nthe scan\r\n"), "{visible}");
    assert!(!visible.contains("bob@"), "{visible}");
    let text = t.to_text();
    assert!(
        text.contains(
            "C: POST /v1.0/users/scanner@contoso.com/sendMail (Content-Type: text/plain, "
        ),
        "{text}"
    );
    assert!(text.contains("S: 202 Accepted"), "{text}");
    assert!(
        text.contains("bob@contoso.com is in the To header"),
        "{text}"
    );
    assert!(!text.contains("not-a-real-token"), "{text}");
}

#[tokio::test]
async fn errors_are_classified_with_retry_after() {
    let (graph, client) = setup().await;
    let token = Secret::new("t");
    graph.push_fault(GraphFault::Reply {
        kind: RequestKind::SendMail,
        status: 429,
        code: "ApplicationThrottled".into(),
        retry_after: Some(7),
    });
    let mut t = Transcript::new();
    let env = vec!["alice@contoso.com".to_string()];
    let err = client
        .send_mime(MAILBOX, &token, &message(), &env, &mut t)
        .await
        .unwrap_err();
    assert_eq!(err.verdict.action, Action::Retry);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));
    let text = t.to_text();
    assert!(
        text.contains("S: 429 Too Many Requests: ApplicationThrottled"),
        "{text}"
    );
    assert!(text.contains("(Retry-After: 7)"), "{text}");
    assert!(graph.delivered().is_empty());

    // An unknown mailbox holds; the network failing retries.
    let err = client
        .send_mime("nobody@contoso.com", &token, &message(), &env, &mut t)
        .await
        .unwrap_err();
    assert_eq!(err.verdict.action, Action::Hold);
    assert_eq!(err.status, Some(404));
    drop(graph);
    let mut config = Config::default();
    config.graph.endpoint = "http://127.0.0.1:1".into();
    let dead = GraphClient::new(&config).unwrap();
    let err = dead
        .send_mime(MAILBOX, &token, &message(), &env, &mut t)
        .await
        .unwrap_err();
    assert_eq!(err.status, None);
    assert_eq!(err.verdict.action, Action::Retry);
}

#[test]
fn urls_are_escaped_and_upload_urls_not_shown() {
    let mut config = Config::default();
    config.graph.endpoint = "https://graph.microsoft.com/".into();
    let client = GraphClient::new(&config).unwrap();
    let url = client.user_url("a/b@contoso.com", &["messages", "AAk=", "send"]);
    assert_eq!(
        url.as_str(),
        "https://graph.microsoft.com/v1.0/users/a%2Fb@contoso.com/messages/AAk=/send"
    );
    let upload = Url::parse("https://outlook.office.com/api/v2.0/x?authtoken=secret").unwrap();
    assert_eq!(
        request_target(&upload, false),
        "[the upload URL at outlook.office.com]"
    );
}

#[test]
fn a_bad_ca_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let mut config = Config::default();
    config.upstream.ca_file = Some(ca);
    let err = GraphClient::new(&config).unwrap_err().to_string();
    assert!(err.contains("upstream.ca_file"), "{err}");
}

#[test]
fn header_section_ends_after_the_blank_line() {
    assert_eq!(header_end(b"A: b\r\n\r\nbody"), 8);
    assert_eq!(header_end(b"A: b\n\nbody"), 6);
    assert_eq!(header_end(b"A: b\r\n"), 6);
}
