//! The fake Microsoft Graph over HTTP, with tokens from the fake identity
//! platform: MIME sendMail and its recipients, the 4 MB limit, Send As,
//! RBAC and licensing errors, drafts with inline and uploaded attachments,
//! upload-session rules (no Authorization, in order, resume), faults and
//! the concurrency counter.

use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use postern_testkit::graph::MAX_REQUEST_BYTES;
use postern_testkit::{
    ClientRegistration, FakeGraph, FakeIdentity, GraphFault, GraphMailbox, GraphOptions,
    IdentityOptions, RequestKind, Route, GRAPH_RESOURCE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const USER: &str = "scanner@contoso.com";
const WAIT: Duration = Duration::from_secs(10);
const MB4: usize = 4 * 1024 * 1024;

struct Env {
    identity: FakeIdentity,
    graph: FakeGraph,
    http: reqwest::Client,
    token: String,
}

async fn start_with(roles: &[&str], tweak: impl FnOnce(&mut GraphOptions)) -> Env {
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: "app".into(),
            client_secret: Some("s3cret".into()),
            user: USER.into(),
        }],
        graph_roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    })
    .await;
    let mut scanner = GraphMailbox::new(USER);
    scanner.send_as = vec!["printer@contoso.com".into()];
    let mut unlicensed = GraphMailbox::new("gone@contoso.com");
    unlicensed.licensed = false;
    let mut opts = GraphOptions {
        identity: Some(identity.clone()),
        mailboxes: vec![scanner, GraphMailbox::new("boss@contoso.com"), unlicensed],
        rbac_scope: None,
        ..Default::default()
    };
    tweak(&mut opts);
    let graph = FakeGraph::start(opts).await;
    let http = reqwest::Client::new();
    let scope = format!("{}/.default", graph.endpoint());
    let token = app_token(&http, &identity, &scope).await.0["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    Env {
        identity,
        graph,
        http,
        token,
    }
}

async fn start() -> Env {
    start_with(&["Mail.Send", "Mail.ReadWrite"], |_| {}).await
}

async fn app_token(http: &reqwest::Client, id: &FakeIdentity, scope: &str) -> (Value, u16) {
    let resp = http
        .post(format!("{}/contoso/oauth2/v2.0/token", id.authority()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (resp.json().await.unwrap(), status)
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}/v1.0/users/{path}", self.graph.endpoint())
    }

    async fn send_mime(&self, mailbox: &str, mime: &[u8]) -> (StatusCode, Value) {
        self.send_raw(mailbox, STANDARD.encode(mime)).await
    }

    async fn send_raw(&self, mailbox: &str, body: String) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(&format!("{mailbox}/sendMail")))
            .bearer_auth(&self.token)
            .header("content-type", "text/plain")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    async fn draft(&self) -> String {
        let (status, body) = self
            .post_json(
                &format!("{USER}/messages"),
                json!({
                    "subject": "Scan 7",
                    "body": { "contentType": "text", "content": "see attached" },
                    "toRecipients": [{ "emailAddress": { "address": "a@fabrikam.com" } }],
                    "bccRecipients": [{ "emailAddress": { "address": "hidden@fabrikam.com" } }],
                    "internetMessageHeaders": [{ "name": "X-Scanner", "value": "MFP-1" }],
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn upload_session(&self, mid: &str, size: usize) -> String {
        let (status, body) = self
            .post_json(
                &format!("{USER}/messages/{mid}/attachments/createUploadSession"),
                json!({ "AttachmentItem": {
                    "attachmentType": "file", "name": "scan.pdf", "size": size,
                    "contentType": "application/pdf" } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["nextExpectedRanges"], json!(["0-"]));
        body["uploadUrl"].as_str().unwrap().to_string()
    }

    /// One range, no Authorization header.
    async fn put(
        &self,
        url: &str,
        data: &[u8],
        at: usize,
        total: usize,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .put(url)
            .header(
                "content-range",
                format!("bytes {at}-{}/{total}", at + data.len() - 1),
            )
            .body(data.to_vec())
            .send()
            .await
    }
}

async fn answer(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 7 + i / 4099) as u8).collect()
}

#[tokio::test]
async fn graph_tokens_carry_audience_and_roles() {
    let env = start_with(&["Mail.Send", "ExchangeMessageTrace.Read.All"], |_| {}).await;
    let c = claims(&env.token);
    assert_eq!(c["aud"], env.graph.endpoint());
    assert_eq!(
        c["roles"],
        json!(["Mail.Send", "ExchangeMessageTrace.Read.All"])
    );
    let (real, _) = app_token(
        &env.http,
        &env.identity,
        &format!("{GRAPH_RESOURCE}/.default"),
    )
    .await;
    assert_eq!(
        claims(real["access_token"].as_str().unwrap())["aud"],
        GRAPH_RESOURCE
    );
    // Exchange tokens are unchanged, and refused by Graph; Graph tokens are
    // refused by the Exchange validator.
    let (exo, _) = app_token(
        &env.http,
        &env.identity,
        "https://outlook.office365.com/.default",
    )
    .await;
    let exo = exo["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&exo)["roles"], json!(["SMTP.SendAsApp"]));
    assert!(env.identity.validator().check(USER, &exo));
    assert!(!env.identity.validator().check(USER, &env.token));
    let resp = env
        .http
        .get(env.url(USER))
        .bearer_auth(&exo)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(resp).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "InvalidAuthenticationToken")
    );
    let (_, status) = app_token(
        &env.http,
        &env.identity,
        "https://graph.evil.example/.default",
    )
    .await;
    assert_eq!(status, 400);
    // Delegated: scp Mail.Send, aud Graph.
    let rt = env.identity.mint_refresh_token("app", USER);
    let resp = env
        .http
        .post(format!(
            "{}/contoso/oauth2/v2.0/token",
            env.identity.authority()
        ))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("refresh_token", &rt),
            (
                "scope",
                &format!("{GRAPH_RESOURCE}/Mail.Send offline_access"),
            ),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["aud"].as_str(), c["scp"].as_str()),
        (Some(GRAPH_RESOURCE), Some("Mail.Send"))
    );
    // Users: found by address or id; unknown is Request_ResourceNotFound.
    let resp = env
        .http
        .get(env.url("Scanner@Contoso.com"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let (status, user) = answer(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["mail"], USER);
    let resp = env
        .http
        .get(env.url("nobody@contoso.com"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let (status, body) = answer(resp).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (404, "Request_ResourceNotFound")
    );
}

#[tokio::test]
async fn mime_send_delivers_to_the_header_recipients_bcc_included() {
    let env = start().await;
    let mime = b"From: Scanner <scanner@contoso.com>\r\nTo: a@fabrikam.com, \"B, Bee\" <b@fabrikam.com>\r\nCc: c@fabrikam.com\r\nBcc: secret@fabrikam.com\r\nSubject: Scan 1\r\n\r\nhello\r\n";
    let (status, body) = env.send_mime(USER, mime).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let got = env.graph.wait_for_delivered(1, WAIT).await;
    let m = &got[0];
    assert_eq!(m.route, Some(Route::Mime));
    assert_eq!(
        m.recipients(),
        [
            "a@fabrikam.com",
            "b@fabrikam.com",
            "c@fabrikam.com",
            "secret@fabrikam.com"
        ]
    );
    assert_eq!(m.bcc, ["secret@fabrikam.com"]);
    assert_eq!(m.subject, "Scan 1");
    assert_eq!(m.raw.as_deref(), Some(&mime[..]));
    let visible = String::from_utf8(m.visible.clone().unwrap()).unwrap();
    assert!(!visible.contains("secret@"), "{visible}");
    assert_eq!(env.graph.requests(RequestKind::SendMail), 1);
    // Not base64 → 400.
    let (status, body) = env.send_raw(USER, "%%% not base64".into()).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (400, "ErrorMimeContentInvalidBase64String")
    );
}

#[tokio::test]
async fn request_over_4_mib_is_413_and_exactly_4_mib_passes() {
    let env = start().await;
    let head = b"From: scanner@contoso.com\r\nTo: a@fabrikam.com\r\nSubject: big\r\n\r\n";
    // Base64 of n bytes is 4*ceil(n/3): pick n so the body is exactly 4 MiB.
    let n = MAX_REQUEST_BYTES / 4 * 3;
    let mut mime = head.to_vec();
    mime.resize(n, b'x');
    assert_eq!(STANDARD.encode(&mime).len(), MAX_REQUEST_BYTES);
    assert_eq!(env.send_mime(USER, &mime).await.0, StatusCode::ACCEPTED);
    mime.push(b'y');
    let (status, body) = env.send_mime(USER, &mime).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (413, "ErrorMessageSizeExceeded")
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("The maximum request length supported is 4MB"));
    assert_eq!(env.graph.delivered().len(), 1);
}

#[tokio::test]
async fn send_as_rbac_and_licensing() {
    let env = start_with(&["Mail.Send"], |o| {
        o.rbac_scope = Some(vec![USER.into(), "gone@contoso.com".into()]);
    })
    .await;
    let mime =
        |from: &str| format!("From: {from}\r\nTo: a@fabrikam.com\r\nSubject: s\r\n\r\nx\r\n");
    let (status, body) = env
        .send_mime(USER, mime("ceo@contoso.com").as_bytes())
        .await;
    assert_eq!((status.as_u16(), code(&body)), (403, "ErrorSendAsDenied"));
    let (status, _) = env
        .send_mime(USER, mime("printer@contoso.com").as_bytes())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = env
        .send_mime("boss@contoso.com", mime("boss@contoso.com").as_bytes())
        .await;
    assert_eq!((status.as_u16(), code(&body)), (403, "ErrorAccessDenied"));
    let (status, body) = env
        .send_mime("gone@contoso.com", mime("gone@contoso.com").as_bytes())
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (404, "MailboxNotEnabledForRESTAPI")
    );
    let (status, body) = env
        .send_mime("nobody@contoso.com", mime("nobody@contoso.com").as_bytes())
        .await;
    assert_eq!((status.as_u16(), code(&body)), (404, "ErrorInvalidUser"));
    // No Mail.ReadWrite: drafts are refused.
    let (status, body) = env
        .post_json(&format!("{USER}/messages"), json!({ "subject": "x" }))
        .await;
    assert_eq!((status.as_u16(), code(&body)), (403, "ErrorAccessDenied"));
    assert_eq!(env.graph.delivered().len(), 1);
}

#[tokio::test]
async fn a_25_mb_scan_through_an_upload_session_in_4_mib_ranges() {
    let env = start().await;
    let mid = env.draft().await;
    let small = payload(1000);
    let (status, body) = env
        .post_json(
            &format!("{USER}/messages/{mid}/attachments"),
            json!({ "@odata.type": "#microsoft.graph.fileAttachment", "name": "note.txt",
                    "contentType": "text/plain", "contentBytes": STANDARD.encode(&small) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let scan = payload(25 * 1000 * 1000);
    let url = env.upload_session(&mid, scan.len()).await;
    let mut at = 0;
    while at < scan.len() {
        let end = (at + MB4).min(scan.len());
        let resp = env.put(&url, &scan[at..end], at, scan.len()).await.unwrap();
        if end < scan.len() {
            assert_eq!(resp.status(), StatusCode::OK);
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["nextExpectedRanges"], json!([format!("{end}-")]));
        } else {
            assert_eq!(resp.status(), StatusCode::CREATED);
        }
        at = end;
    }
    assert_eq!(env.graph.requests(RequestKind::UploadChunk), 6);
    let (status, _) = env
        .post_json(&format!("{USER}/messages/{mid}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let m = &env.graph.wait_for_delivered(1, WAIT).await[0];
    assert_eq!(m.route, Some(Route::Draft));
    assert_eq!(m.recipients(), ["a@fabrikam.com", "hidden@fabrikam.com"]);
    assert_eq!(m.headers, [("X-Scanner".to_string(), "MFP-1".to_string())]);
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[1].name, "scan.pdf");
    assert_eq!(m.attachments[1].sha256, hex::encode(Sha256::digest(&scan)));
    assert_eq!(m.attachments[0].bytes, small);
    assert!(env.graph.drafts(USER).is_empty());
}

#[tokio::test]
async fn upload_url_refuses_authorization_out_of_order_and_oversized_ranges() {
    let env = start().await;
    let mid = env.draft().await;
    let data = payload(MB4 + 10);
    let url = env.upload_session(&mid, data.len()).await;
    let resp = env
        .http
        .put(&url)
        .bearer_auth(&env.token)
        .header("content-range", "bytes 0-9/4194314")
        .body(data[..10].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = env.put(&url, &data[10..20], 10, data.len()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let resp = env
        .put(&url, &data[..MB4 + 1], 0, data.len())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let status: Value = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["nextExpectedRanges"], json!(["0-"]));
    // A draft over 3 MiB inline is refused too.
    let (status, body) = env
        .post_json(
            &format!("{USER}/messages/{mid}/attachments"),
            json!({ "@odata.type": "#microsoft.graph.fileAttachment", "name": "big",
                    "contentBytes": STANDARD.encode(payload(3 * 1024 * 1024 + 1)) }),
        )
        .await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (413, "ErrorMessageSizeExceeded")
    );
    // DELETE cancels the session.
    assert_eq!(
        env.http.delete(&url).send().await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(env.graph.open_upload_sessions(), 0);
}

#[tokio::test]
async fn resume_after_a_dropped_put_from_next_expected_ranges() {
    let env = start().await;
    let mid = env.draft().await;
    let data = payload(2 * MB4 + 123);
    let url = env.upload_session(&mid, data.len()).await;
    assert_eq!(
        env.put(&url, &data[..MB4], 0, data.len())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    env.graph
        .push_fault(GraphFault::DropUpload { after_bytes: 1000 });
    let dropped = env.put(&url, &data[MB4..2 * MB4], MB4, data.len()).await;
    assert!(dropped.is_err(), "the connection must drop: {dropped:?}");
    let status: Value = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["nextExpectedRanges"], json!([format!("{MB4}-")]));
    assert_eq!(
        env.put(&url, &data[MB4..2 * MB4], MB4, data.len())
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let last = env
        .put(&url, &data[2 * MB4..], 2 * MB4, data.len())
        .await
        .unwrap();
    assert_eq!(last.status(), StatusCode::CREATED);
    let draft = &env.graph.drafts(USER)[0];
    assert_eq!(
        draft.attachments[0].sha256,
        hex::encode(Sha256::digest(&data))
    );
}

#[tokio::test]
async fn faults_429_with_retry_after_and_one_invalid_token() {
    let env = start().await;
    env.graph.push_fault(GraphFault::Reply {
        kind: RequestKind::SendMail,
        status: 429,
        code: "ApplicationThrottled".into(),
        retry_after: Some(7),
    });
    let mime = b"To: a@fabrikam.com\r\nSubject: t\r\n\r\nx\r\n";
    let resp = env
        .http
        .post(env.url(&format!("{USER}/sendMail")))
        .bearer_auth(&env.token)
        .header("content-type", "text/plain")
        .body(STANDARD.encode(mime))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "7");
    env.graph.push_fault(GraphFault::InvalidToken);
    let (status, body) = env.send_mime(USER, mime).await;
    assert_eq!(
        (status.as_u16(), code(&body)),
        (401, "InvalidAuthenticationToken")
    );
    assert_eq!(env.send_mime(USER, mime).await.0, StatusCode::ACCEPTED);
    assert_eq!(env.graph.delivered().len(), 1);
    assert_eq!(env.graph.requests(RequestKind::SendMail), 3);
}

#[tokio::test]
async fn a_deleted_draft_leaves_no_draft() {
    let env = start().await;
    let mid = env.draft().await;
    assert_eq!(env.graph.drafts(USER).len(), 1);
    let url = env.url(&format!("{USER}/messages/{mid}"));
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = env
        .http
        .delete(&url)
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(env.graph.drafts(USER).is_empty());
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, _) = env
        .post_json(&format!("{USER}/messages/{mid}/send"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(env.graph.delivered().is_empty());
}

#[tokio::test]
async fn the_concurrency_counter_sees_requests_in_flight_together() {
    let env = start().await;
    env.graph.hold(true);
    let mime = b"To: a@fabrikam.com\r\nSubject: c\r\n\r\nx\r\n";
    let sends: Vec<_> = (0..5)
        .map(|_| {
            let (http, url, token) = (
                env.http.clone(),
                env.url(&format!("{USER}/sendMail")),
                env.token.clone(),
            );
            tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(token)
                    .header("content-type", "text/plain")
                    .body(STANDARD.encode(mime))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    assert!(env.graph.wait_in_flight(USER, 5, WAIT).await);
    env.graph.hold(false);
    for s in sends {
        assert_eq!(s.await.unwrap(), StatusCode::ACCEPTED);
    }
    assert_eq!(env.graph.max_concurrency(USER), 5);
    assert_eq!(env.graph.in_flight(USER), 0);
}
