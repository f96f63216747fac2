//! The fake Graph's message trace over HTTP, with tokens from the fake
//! identity platform: the helpers here; rows, filters, paging and late rows
//! in `rows`; details, the permission, the rate limit and faults in
//! `details`.

mod details;
mod rows;

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use postern_testkit::{
    ClientRegistration, FakeGraph, FakeIdentity, GraphFault, GraphMailbox, GraphOptions,
    IdentityOptions, RequestKind, TraceOptions, TraceOutcome,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const USER: &str = "scanner@contoso.com";
const BOSS: &str = "boss@contoso.com";
const TRACE: &str = "ExchangeMessageTrace.Read.All";
const WAIT: Duration = Duration::from_secs(10);

struct Env {
    graph: FakeGraph,
    http: reqwest::Client,
    token: String,
}

async fn start_with(roles: &[&str], trace: TraceOptions) -> Env {
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
    let graph = FakeGraph::start(GraphOptions {
        identity: Some(identity.clone()),
        mailboxes: vec![GraphMailbox::new(USER), GraphMailbox::new(BOSS)],
        trace,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!(
            "{}/contoso/oauth2/v2.0/token",
            identity.authority()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", &format!("{}/.default", graph.endpoint())),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().expect("a token").to_string();
    Env { graph, http, token }
}

async fn start() -> Env {
    start_with(
        &["Mail.Send", "Mail.ReadWrite", TRACE],
        TraceOptions::default(),
    )
    .await
}

fn at(plus_secs: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::seconds(plus_secs))
        .format(&Rfc3339)
        .unwrap()
}

/// The last hour, until a minute from now.
fn window() -> String {
    format!(
        "receivedDateTime ge {} and receivedDateTime le {}",
        at(-3600),
        at(60)
    )
}

async fn answer(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// The rows' `field` values.
fn column(body: &Value, field: &str) -> Vec<String> {
    body["value"]
        .as_array()
        .expect("a value array")
        .iter()
        .map(|r| r[field].as_str().unwrap_or("null").to_string())
        .collect()
}

/// A MIME message for three recipients (one of them Bcc), with a Message-ID.
const SCAN: &[u8] = b"From: Scanner <scanner@contoso.com>\r\nTo: A@Fabrikam.com, b@fabrikam.com\r\nBcc: hidden@fabrikam.com\r\nSubject: Scan 1\r\nMessage-ID: <scan-1@scanner.contoso.com>\r\n\r\nhello\r\n";

impl Env {
    fn traces(&self) -> String {
        format!(
            "{}/v1.0/admin/exchange/tracing/messageTraces",
            self.graph.endpoint()
        )
    }

    async fn get(&self, url: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    async fn list(&self, filter: &str, top: Option<usize>) -> (StatusCode, Value) {
        let mut query = vec![("$filter", filter.to_string())];
        if let Some(top) = top {
            query.push(("$top", top.to_string()));
        }
        let resp = self
            .http
            .get(self.traces())
            .query(&query)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    async fn details(&self, id: &str, recipient: &str) -> (StatusCode, Value) {
        let url = format!(
            "{}/{id}/getDetailsByRecipient(recipientAddress='{recipient}')",
            self.traces()
        );
        self.get(&url).await
    }

    async fn send_mime(&self, mailbox: &str, mime: &[u8]) {
        let resp = self
            .http
            .post(format!(
                "{}/v1.0/users/{mailbox}/sendMail",
                self.graph.endpoint()
            ))
            .bearer_auth(&self.token)
            .header("content-type", "text/plain")
            .body(STANDARD.encode(mime))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }

    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1.0/users/{path}", self.graph.endpoint()))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        answer(resp).await
    }

    async fn simple(&self, mailbox: &str, to: &str) {
        let mime = format!("From: {mailbox}\r\nTo: {to}\r\nSubject: hi\r\n\r\nbody\r\n");
        self.send_mime(mailbox, mime.as_bytes()).await;
    }
}
