//! The tracker's two Graph requests: the message-trace list for one sender
//! and a time window (`GET /v1.0/admin/exchange/tracing/messageTraces`,
//! followed through `@odata.nextLink`), and one recipient's details
//! (`.../messageTraces/{id}/getDetailsByRecipient(recipientAddress='…')`)
//! for the reason of a bounce. Answers other than 200 become a
//! [`TraceError`] the tracker acts on.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::RETRY_AFTER;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

use crate::delivery::Transcript;
use crate::graph::client::GraphClient;
use crate::secrets::Secret;

/// At most this many pages per list query (5,000 rows each at most): a
/// tenant sending more than that from one mailbox in the window is asked
/// again at the next poll.
pub const MAX_PAGES: usize = 20;
/// Rows asked for per page (Graph's most).
pub const PAGE_SIZE: usize = 5000;

/// One row of the trace: one recipient of one message.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TraceRow {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub recipient_address: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub received_date_time: Option<String>,
}

impl TraceRow {
    /// `receivedDateTime` in Unix ms, when it parses (RFC 3339).
    pub fn received_ms(&self) -> Option<u64> {
        let t = time::OffsetDateTime::parse(
            self.received_date_time.as_deref()?,
            &time::format_description::well_known::Rfc3339,
        )
        .ok()?;
        u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    }
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<String>,
}

/// One event of a recipient's details.
#[derive(Debug, Clone, Deserialize)]
pub struct TraceEvent {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Why a trace request gave nothing usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceError {
    /// 429 / 503: wait this long (Retry-After, else the poll interval).
    Throttled(Option<Duration>),
    /// 401: the token was refused; fetch a new one.
    Unauthorized,
    /// 403: the app may not read the trace (no `ExchangeMessageTrace.Read.All`).
    Denied(String),
    /// Anything else: the answer, in a sentence.
    Failed(String),
}

/// `2026-12-01T10:00:00Z` for a Unix-ms time.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The `$filter` of the list query: one sender, a window.
pub fn list_filter(sender: &str, from_ms: u64, to_ms: u64) -> String {
    format!(
        "senderAddress eq '{}' and receivedDateTime ge {} and receivedDateTime le {}",
        sender.replace('\'', "''"),
        rfc3339(from_ms),
        rfc3339(to_ms)
    )
}

/// Every row for `filter`, page after page (at most [`MAX_PAGES`]).
/// `@odata.nextLink` is followed only when it points under the configured
/// Graph endpoint: the request carries the token, which must not travel
/// elsewhere. Returns the rows and the number of requests made.
pub async fn list(
    client: &GraphClient,
    token: &Secret,
    filter: &str,
    t: &mut Transcript,
) -> (Result<Vec<TraceRow>, TraceError>, u32) {
    let mut url = client.v1_url(&["admin", "exchange", "tracing", "messageTraces"]);
    url.query_pairs_mut()
        .append_pair("$filter", filter)
        .append_pair("$top", &PAGE_SIZE.to_string());
    let mut rows = Vec::new();
    let mut requests = 0;
    for _ in 0..MAX_PAGES {
        requests += 1;
        let page: Page<TraceRow> = match get(client, url.clone(), token, t).await {
            Ok(p) => p,
            Err(e) => return (Err(e), requests),
        };
        rows.extend(page.value);
        match page.next_link {
            Some(next) => match same_service(client.root(), &next) {
                Some(u) => url = u,
                None => {
                    t.note("the trace's next page points outside graph.endpoint: not followed");
                    break;
                }
            },
            None => break,
        }
    }
    (Ok(rows), requests)
}

/// The events of one recipient of trace row `id`.
pub async fn details(
    client: &GraphClient,
    token: &Secret,
    id: &str,
    recipient: &str,
    t: &mut Transcript,
) -> Result<Vec<TraceEvent>, TraceError> {
    let call = format!(
        "getDetailsByRecipient(recipientAddress='{}')",
        recipient.replace('\'', "''")
    );
    let url = client.v1_url(&["admin", "exchange", "tracing", "messageTraces", id, &call]);
    let page: Page<TraceEvent> = get(client, url, token, t).await?;
    Ok(page.value)
}

/// The `Fail` event's description (the reason of a bounce), if any.
pub fn failure_reason(events: &[TraceEvent]) -> Option<String> {
    events
        .iter()
        .rev()
        .find(|e| {
            e.event
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case("fail"))
        })
        .and_then(|e| e.description.clone())
        .filter(|d| !d.trim().is_empty())
}

async fn get<T: for<'de> Deserialize<'de>>(
    client: &GraphClient,
    url: Url,
    token: &Secret,
    t: &mut Transcript,
) -> Result<T, TraceError> {
    let answer = client
        .request(Method::GET, url, Some(token), None, t)
        .await
        .map_err(|_| TraceError::Failed("Microsoft Graph did not answer".into()))?;
    t.server_raw(&format!("HTTP {}", answer.status));
    let retry_after = answer
        .headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let error = || graph_error(&answer.body);
    match answer.status {
        200 => serde_json::from_slice(&answer.body).map_err(|e| {
            TraceError::Failed(format!(
                "Microsoft Graph's trace answer is not understood: {e}"
            ))
        }),
        401 => Err(TraceError::Unauthorized),
        403 => Err(TraceError::Denied(error())),
        429 | 503 | 504 => Err(TraceError::Throttled(retry_after)),
        s => Err(TraceError::Failed(format!("HTTP {s}: {}", error()))),
    }
}

/// `Retry-After` in seconds, or as an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate_parse(v)?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn httpdate_parse(v: &str) -> Option<SystemTime> {
    // "Tue, 01 Dec 2026 10:00:00 GMT" → RFC 3339 for humantime.
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 {
        return None;
    }
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])?
        + 1;
    let s = format!("{}-{month:02}-{:0>2}T{}Z", parts[3], parts[1], parts[4]);
    humantime::parse_rfc3339(&s).ok()
}

/// Graph's `{"error": {"code", "message"}}` as "code: message".
fn graph_error(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or("");
    let message = v["error"]["message"].as_str().unwrap_or("");
    match (code, message) {
        ("", "") => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        (c, "") => c.to_string(),
        ("", m) => m.to_string(),
        (c, m) => format!("{c}: {m}"),
    }
}

/// `next` when it is under `root` (same scheme, host, port and path prefix).
fn same_service(root: &Url, next: &str) -> Option<Url> {
    let u = Url::parse(next).ok()?;
    let prefix = root.path().trim_end_matches('/');
    (u.scheme() == root.scheme()
        && u.host_str() == root.host_str()
        && u.port_or_known_default() == root.port_or_known_default()
        && u.path().starts_with(prefix))
    .then_some(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_names_the_sender_and_the_window() {
        let f = list_filter("scan'ner@contoso.com", 1_796_119_200_000, 1_796_122_800_000);
        assert_eq!(f, "senderAddress eq 'scan''ner@contoso.com' and receivedDateTime ge 2026-12-01T10:00:00Z and receivedDateTime le 2026-12-01T11:00:00Z");
    }

    #[test]
    fn next_links_are_followed_only_to_the_same_service() {
        let root = Url::parse("https://graph.microsoft.com").unwrap();
        assert!(same_service(
            &root,
            "https://graph.microsoft.com/v1.0/admin/x?$skiptoken=1"
        )
        .is_some());
        assert!(same_service(&root, "https://evil.example/v1.0/admin/x").is_none());
        assert!(same_service(&root, "http://graph.microsoft.com/v1.0/admin/x").is_none());
        assert!(same_service(&root, "https://graph.microsoft.com:8443/v1.0/").is_none());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("30"), Some(Duration::from_secs(30)));
        assert_eq!(
            retry_after("Tue, 01 Dec 2020 10:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn the_fail_event_gives_the_reason() {
        let ev = |e: &str, d: &str| TraceEvent {
            event: Some(e.into()),
            description: Some(d.into()),
        };
        let events = vec![
            ev("Receive", "received"),
            ev("Fail", "550 5.1.10 not found"),
        ];
        assert_eq!(
            failure_reason(&events).as_deref(),
            Some("550 5.1.10 not found")
        );
        assert_eq!(failure_reason(&events[..1]), None);
    }
}
