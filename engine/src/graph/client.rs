//! The HTTP side of Graph delivery: one reqwest client (rustls, the
//! `upstream.ca_file` anchors added to the web PKI roots), built once per
//! engine and shared by every lane, and the requests the routes make.
//!
//! [`GraphClient::send_mime`] is the MIME route: the message's header
//! section restricted to exactly the envelope ([`super::envelope`]), the
//! whole message in base64, `POST /v1.0/users/{mailbox}/sendMail` with
//! `Content-Type: text/plain`. Every answer that is not the one wanted is
//! classified by [`super::errors`]. The transcript gets each request line
//! (method and path, never the token) and each status, and the envelope's
//! notes.

use std::time::Duration;

use base64::Engine as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use url::Url;

use super::envelope::restrict_headers;
use super::errors::{classify_response, network_failure, GraphOutcome, Route};
use crate::config::Config;
use crate::delivery::Transcript;
use crate::secrets::Secret;

/// The most base64 the MIME route sends in one request. Graph's limit is
/// "4 MB"; a little under 4 MiB leaves room for the fake's and the real
/// service's counting either way. Larger messages go by the draft route.
pub const MIME_ROUTE_LIMIT: u64 = 4_000_000;

/// How long one request may take as a whole (an upload range of 3.75 MB
/// on a slow office uplink included).
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A Graph answer that was not an error: its status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Talks to Microsoft Graph. Cheap to clone (reqwest's client is shared).
#[derive(Clone, Debug)]
pub struct GraphClient {
    http: reqwest::Client,
    root: Url,
}

/// Why the client could not be built (a bad `ca_file`, a bad endpoint).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

impl GraphClient {
    /// The client for `graph.endpoint`, trusting the web PKI roots and the
    /// certificates in `upstream.ca_file`. No redirects are followed (the
    /// token must not travel elsewhere).
    pub fn new(config: &Config) -> Result<GraphClient, ClientError> {
        let root = Url::parse(config.graph.root())
            .map_err(|e| ClientError(format!("graph.endpoint: {e}")))?;
        let http = crate::https::client_builder(config.upstream.ca_file.as_deref())
            .map_err(ClientError)?
            .connect_timeout(config.upstream.timeout)
            .timeout(config.upstream.timeout.max(MIN_REQUEST_TIMEOUT))
            .build()
            .map_err(|e| ClientError(format!("cannot set up HTTPS for Graph: {e}")))?;
        Ok(GraphClient { http, root })
    }

    /// The service root (`graph.endpoint`).
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// `{endpoint}/v1.0/{segments...}`, each segment escaped.
    pub fn v1_url(&self, segments: &[&str]) -> Url {
        let mut url = self.root.clone();
        {
            let mut segs = url.path_segments_mut().expect("an http(s) URL has a path");
            segs.pop_if_empty();
            segs.push("v1.0");
            segs.extend(segments);
        }
        url
    }

    /// The underlying HTTP client (diagnose's TLS probe).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `{endpoint}/v1.0/users/{mailbox}/{rest...}`, each segment escaped.
    pub fn user_url(&self, mailbox: &str, rest: &[&str]) -> Url {
        let mut url = self.root.clone();
        {
            let mut segs = url.path_segments_mut().expect("an http(s) URL has a path");
            segs.pop_if_empty();
            segs.extend(["v1.0", "users", mailbox]);
            segs.extend(rest);
        }
        url
    }

    /// The MIME route: sends `content` to exactly `envelope` as `mailbox`.
    /// `Ok` is Graph's `202 Accepted`; `Err` what any other answer (or no
    /// answer) means.
    pub async fn send_mime(
        &self,
        mailbox: &str,
        token: &Secret,
        content: &[u8],
        envelope: &[String],
        t: &mut Transcript,
    ) -> Result<(), GraphOutcome> {
        let body = mime_body(content, envelope, t);
        let url = self.user_url(mailbox, &["sendMail"]);
        let answer = self
            .request(
                Method::POST,
                url,
                Some(token),
                Some(("text/plain", body)),
                t,
            )
            .await?;
        expect(answer, &[202], Route::Mime, t).map(|_| ())
    }

    /// One request. `token` is sent as `Authorization: Bearer` (never
    /// written anywhere); `None` sends no Authorization header at all (the
    /// upload URL). The request line and the status go to the transcript.
    /// `Err` only when there was no HTTP answer; any status is an `Answer`.
    pub async fn request(
        &self,
        method: Method,
        url: Url,
        token: Option<&Secret>,
        body: Option<(&str, Vec<u8>)>,
        t: &mut Transcript,
    ) -> Result<Answer, GraphOutcome> {
        self.request_with(method, url, token, body, &[], t).await
    }

    /// `POST` of a JSON `body` with the token.
    pub async fn post_json(
        &self,
        url: Url,
        token: &Secret,
        body: Vec<u8>,
        t: &mut Transcript,
    ) -> Result<Answer, GraphOutcome> {
        self.request(
            Method::POST,
            url,
            Some(token),
            Some(("application/json", body)),
            t,
        )
        .await
    }

    /// [`Self::request`] with extra headers (`Content-Range` for uploads).
    pub async fn request_with(
        &self,
        method: Method,
        url: Url,
        token: Option<&Secret>,
        body: Option<(&str, Vec<u8>)>,
        headers: &[(&str, String)],
        t: &mut Transcript,
    ) -> Result<Answer, GraphOutcome> {
        let size = body.as_ref().map(|(_, b)| b.len()).unwrap_or(0);
        let mut line = format!("{method} {}", request_target(&url, token.is_some()));
        if let Some((ctype, _)) = &body {
            line.push_str(&format!(" (Content-Type: {ctype}, {size} bytes)"));
        }
        for (name, value) in headers {
            line.push_str(&format!(" ({name}: {value})"));
        }
        if token.is_none() {
            line.push_str(" (no Authorization header)");
        }
        t.client(&line);
        let mut req = self.http.request(method, url);
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        for (name, value) in headers {
            req = req.header(*name, value.as_str());
        }
        if let Some((ctype, bytes)) = body {
            req = req.header(CONTENT_TYPE, ctype).body(bytes);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                // Without the URL: the upload URL is a credential.
                let e = e.without_url();
                t.note(&format!(
                    "no answer from Microsoft Graph: {}",
                    crate::https::error_chain(&e)
                ));
                return Err(network_failure());
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                let e = e.without_url();
                t.note(&format!(
                    "the answer from Microsoft Graph broke off: {}",
                    crate::https::error_chain(&e)
                ));
                return Err(network_failure());
            }
        };
        Ok(Answer {
            status: status.as_u16(),
            headers,
            body,
        })
    }
}

/// The answer if its status is one of `ok`; else what it means, with the
/// status (and Graph's error) in the transcript.
pub fn expect(
    answer: Answer,
    ok: &[u16],
    route: Route,
    t: &mut Transcript,
) -> Result<Answer, GraphOutcome> {
    let reason = StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    if ok.contains(&answer.status) {
        t.server_raw(&format!("{} {reason}", answer.status));
        return Ok(answer);
    }
    let retry_after = answer
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    let outcome = classify_response(route, answer.status, retry_after, &answer.body);
    let mut line = format!("{} {reason}", answer.status);
    if let Some(e) = &outcome.error {
        line.push_str(&format!(": {}: {}", e.code, e.message));
    }
    if let Some(ra) = retry_after {
        line.push_str(&format!(" (Retry-After: {ra})"));
    }
    t.server_raw(&line);
    Err(outcome)
}

/// The MIME route's request body: the header section restricted to the
/// envelope (its notes go to the transcript), the body as stored, all in
/// base64.
pub fn mime_body(content: &[u8], envelope: &[String], t: &mut Transcript) -> Vec<u8> {
    let split = header_end(content);
    let restricted = restrict_headers(&content[..split], envelope);
    for note in &restricted.notes {
        t.note(note);
    }
    let mut message = restricted.headers;
    message.extend_from_slice(&content[split..]);
    base64::engine::general_purpose::STANDARD
        .encode(&message)
        .into_bytes()
}

/// About the length of the MIME route's body for a message of `size`
/// bytes, without building it (the restricted headers differ from the
/// stored ones by a line or two; a 413 still switches routes).
pub fn mime_body_len(size: u64) -> u64 {
    size.div_ceil(3) * 4
}

/// Where the header section ends: just after the blank line (or the whole
/// message, when it has no body).
fn header_end(content: &[u8]) -> usize {
    let mut i = 0;
    while i < content.len() {
        let line_end = content[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(content.len());
        let line = &content[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        i = line_end;
    }
    content.len()
}

/// What the transcript shows of a request's URL: the path of a Graph
/// request; of the pre-authenticated upload URL (sent without a token)
/// only its host, since its path and query carry the credential.
fn request_target(url: &Url, graph: bool) -> String {
    if graph {
        url.path().to_string()
    } else {
        format!(
            "[the upload URL at {}]",
            url.host_str().unwrap_or("an unnamed host")
        )
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
