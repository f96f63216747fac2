//! HTTP side of the fake Graph's message trace (the rows and their rules
//! are in `trace`):
//!
//! - `GET /v1.0/admin/exchange/tracing/messageTraces?$filter=..&$top=N`
//!   → `{"@odata.context", "value": [rows], "@odata.nextLink"}` (nextLink
//!   only when there is more: this path with an opaque `$skiptoken`, on the
//!   address the request came to).
//! - `GET .../messageTraces/{id}/getDetailsByRecipient(recipientAddress='x')`
//!   (the parenthesis may be percent-encoded) → `{"value": [events]}`.
//!
//! Both need the application permission `ExchangeMessageTrace.Read.All` in
//! the token's `roles` (a delegated token never has it here), else `403
//! Authorization_RequestDenied`.
//!
//! `$filter` grammar: clauses joined by `and`, each `senderAddress eq 'x'`,
//! `recipientAddress eq 'x'`, `messageId eq 'x'` (with or without angle
//! brackets), `status eq 'x'`, or `receivedDateTime ge|le T` (RFC 3339,
//! bare or quoted), or a parenthesised `(f eq 'a' or f eq 'b' ...)` over
//! one of the `eq` fields. Keywords (`and`, `or`, `eq`, `ge`, `le`) in any
//! case; field names as Graph spells them; `''` is a quote inside a string.
//! Anything else → `400 BadRequest` "Invalid filter clause". No `ge`, or a
//! window over 10 days (an open `le` ends now) → `400 BadRequest` "The time
//! range must be at most 10 days". `$top`: default and cap
//! `min(page_size, 5000)` (a larger one is lowered, not refused).

// Handlers answer early with a ready `Response`; boxing it buys nothing in a fake.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::routes::{bearer, error, reply_fault, InFlight};
use super::trace::MAX_TRACE_PAGE;
use super::trace_filter::{parse_filter, FilterError};
use super::{RequestKind, Shared};

/// The application permission both endpoints need.
pub const TRACE_ROLE: &str = "ExchangeMessageTrace.Read.All";

const LIST_PATH: &str = "/v1.0/admin/exchange/tracing/messageTraces";

/// The key trace requests are counted in flight under (no mailbox).
const IN_FLIGHT_KEY: &str = "admin/exchange/tracing";

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(LIST_PATH, get(list))
        .route(&format!("{LIST_PATH}/{{id}}/{{call}}"), get(details))
}

/// Token, injected faults, then the permission (Graph's order).
fn authorize(shared: &Shared, headers: &HeaderMap, kind: RequestKind) -> Result<(), Response> {
    let info = bearer(shared, headers)?;
    if let Some(resp) = reply_fault(shared, kind) {
        return Err(resp);
    }
    let allowed =
        info.is_none_or(|i| !i.delegated && i.permissions.iter().any(|p| p == TRACE_ROLE));
    if allowed {
        Ok(())
    } else {
        Err(error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ))
    }
}

fn bad_request(message: &str) -> Response {
    error(400, "BadRequest", message)
}

/// The address the request came to: one of this fake's endpoints whose
/// host and port are the `Host` header, else its own.
fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let others = shared.lock().endpoints.clone();
    std::iter::once(shared.endpoint.clone())
        .chain(others)
        .find(|e| {
            e.split_once("://")
                .is_some_and(|(_, authority)| authority == host)
        })
        .unwrap_or_else(|| shared.endpoint.clone())
}

async fn list(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::ListTraces, IN_FLIGHT_KEY).await;
    if let Some(f) = q.get("$filter") {
        shared.lock().trace.filters.push(f.clone());
    }
    if let Err(r) = authorize(&shared, &headers, RequestKind::ListTraces) {
        return r;
    }
    let opts = &shared.opts.trace;
    let page = if let Some(token) = q.get("$skiptoken") {
        match shared.lock().trace.next_page(token) {
            Some(p) => p,
            None => return bad_request("The skip token is not valid."),
        }
    } else {
        let cap = opts.page_size.clamp(1, MAX_TRACE_PAGE);
        let top = match q.get("$top").map(|t| t.trim().parse::<usize>()) {
            None => cap,
            Some(Ok(n)) if n > 0 => n.min(cap),
            Some(_) => return bad_request("Invalid value for $top."),
        };
        let text = q.get("$filter").map(String::as_str).unwrap_or_default();
        let filter = match parse_filter(text, time::OffsetDateTime::now_utc()) {
            Ok(f) => f,
            Err(FilterError::Invalid) => return bad_request("Invalid filter clause"),
            Err(FilterError::Window) => {
                return bad_request("The time range must be at most 10 days")
            }
        };
        shared.lock().trace.list(opts, &filter, top)
    };
    let (rows, next) = page;
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#admin/exchange/tracing/messageTraces",
        "value": rows,
    });
    if let Some(token) = next {
        body["@odata.nextLink"] = Value::String(format!(
            "{}{LIST_PATH}?$skiptoken={token}",
            base_url(&shared, &headers)
        ));
    }
    Json(body).into_response()
}

/// `getDetailsByRecipient(recipientAddress='x')` → `x`.
fn recipient_of(call: &str) -> Option<String> {
    let args = call
        .strip_prefix("getDetailsByRecipient(")?
        .strip_suffix(')')?;
    let (name, value) = args.split_once('=')?;
    if name.trim() != "recipientAddress" {
        return None;
    }
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    Some(value.replace("''", "'"))
}

async fn details(
    State(shared): State<Arc<Shared>>,
    Path((id, call)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::TraceDetails, IN_FLIGHT_KEY).await;
    if let Err(r) = authorize(&shared, &headers, RequestKind::TraceDetails) {
        return r;
    }
    let Some(recipient) = recipient_of(&call) else {
        return bad_request(&format!("Resource not found for the segment '{call}'."));
    };
    let opts = &shared.opts.trace;
    let mut st = shared.lock();
    if let Err(secs) = st.trace.admit_details(opts) {
        drop(st);
        let mut resp = error(
            429,
            "TooManyRequests",
            &format!("Too many requests. Retry after {secs} seconds."),
        );
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
        return resp;
    }
    match st.trace.details(opts, &id, &recipient) {
        Some(body) => Json(body).into_response(),
        None => error(
            404,
            "ResourceNotFound",
            &format!("No message trace '{id}' for recipient '{recipient}'."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::recipient_of;

    #[test]
    fn details_call_segment() {
        assert_eq!(
            recipient_of("getDetailsByRecipient(recipientAddress='a@x.com')").as_deref(),
            Some("a@x.com")
        );
        assert_eq!(
            recipient_of("getDetailsByRecipient(recipientAddress = 'o''neil@x.com')").as_deref(),
            Some("o'neil@x.com")
        );
        assert_eq!(recipient_of("getDetails(recipientAddress='a@x.com')"), None);
        assert_eq!(
            recipient_of("getDetailsByRecipient(sender='a@x.com')"),
            None
        );
    }
}
