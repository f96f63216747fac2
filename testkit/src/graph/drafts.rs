//! The fake Graph's draft endpoints: create, read and delete a draft, add a
//! small attachment inline, and send it (the draft becomes a delivered
//! message). Upload sessions for big attachments are in `upload`.

use std::sync::Arc;

use axum::body::Bytes;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::routes::{
    authorize, check_sendable, error, message_json, parse_attachment, parse_message, too_large,
    InFlight,
};
use super::{Draft, GraphMailbox, RequestKind, Route, Shared, MAX_REQUEST_BYTES};

/// Runs the common checks for a draft request (`Mail.ReadWrite`); the body
/// size too.
pub(super) async fn draft_checks(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    kind: RequestKind,
    id: &str,
    body_len: usize,
) -> Result<(InFlight, GraphMailbox), Response> {
    let call = InFlight::begin(shared, kind, id).await;
    let mailbox = authorize(shared, headers, kind, id, Some("Mail.ReadWrite"), true)?;
    if body_len > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    Ok((call, mailbox))
}

/// Whether draft `mid` is in `mailbox`.
pub(super) fn has_draft(shared: &Shared, mailbox: &GraphMailbox, mid: &str) -> bool {
    shared
        .lock()
        .drafts
        .get(mid)
        .is_some_and(|d| d.message.mailbox == mailbox.address)
}

pub(super) fn no_draft() -> Response {
    error(
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

pub(super) async fn create_draft(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_call, mailbox) =
        match draft_checks(&shared, &headers, RequestKind::CreateDraft, &id, body.len()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "RequestBodyRead", "Invalid JSON in the request body.");
    };
    let mut m = match parse_message(&v, &mailbox, Route::Draft) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mid = {
        let mut st = shared.lock();
        st.next_id += 1;
        format!("AAMk{:08}{}", st.next_id, super::random_hex(8))
    };
    m.id = Some(mid.clone());
    let answer = message_json(&m);
    shared.lock().drafts.insert(mid, Draft { message: m });
    shared.maybe_lose_answer(RequestKind::CreateDraft).await;
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// `GET .../mailFolders/drafts/messages` with the one `$filter` Graph
/// documents for extended properties:
/// `singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and ep/value eq '<value>')`;
/// answers `{"value": [{"id"}...]}` for the mailbox's drafts that have it.
pub(super) async fn list_drafts(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let (_call, mailbox) =
        match draft_checks(&shared, &headers, RequestKind::ListDrafts, &id, 0).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let filter = q.get("$filter").map(String::as_str).unwrap_or_default();
    let quoted = |after: &str| -> Option<String> {
        let rest = &filter[filter.find(after)? + after.len()..];
        let rest = rest.strip_prefix('\'')?;
        Some(rest[..rest.find('\'')?].to_string())
    };
    let (Some(pid), Some(value)) = (quoted("ep/id eq "), quoted("ep/value eq ")) else {
        return error(
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        );
    };
    if !filter.starts_with("singleValueExtendedProperties/Any(ep: ") {
        return error(
            400,
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        );
    }
    let st = shared.lock();
    let found: Vec<Value> = st
        .drafts
        .values()
        .filter(|d| d.message.mailbox == mailbox.address)
        .filter(|d| {
            d.message
                .properties
                .iter()
                .any(|(i, v)| i.eq_ignore_ascii_case(&pid) && *v == value)
        })
        .map(|d| json!({ "id": d.message.id }))
        .collect();
    Json(json!({ "value": found })).into_response()
}

pub(super) async fn get_draft(
    State(shared): State<Arc<Shared>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_call, mailbox) =
        match draft_checks(&shared, &headers, RequestKind::GetDraft, &id, 0).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    let st = shared.lock();
    match st
        .drafts
        .get(&mid)
        .filter(|d| d.message.mailbox == mailbox.address)
    {
        Some(d) => Json(message_json(&d.message)).into_response(),
        None => no_draft(),
    }
}

pub(super) async fn delete_draft(
    State(shared): State<Arc<Shared>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_call, mailbox) =
        match draft_checks(&shared, &headers, RequestKind::DeleteDraft, &id, 0).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    if !has_draft(&shared, &mailbox, &mid) {
        return no_draft();
    }
    let mut st = shared.lock();
    st.drafts.remove(&mid);
    st.uploads.retain(|_, u| u.draft_id != mid);
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn add_attachment(
    State(shared): State<Arc<Shared>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_call, mailbox) =
        match draft_checks(&shared, &headers, RequestKind::Attachment, &id, body.len()).await {
            Ok(x) => x,
            Err(r) => return r,
        };
    if !has_draft(&shared, &mailbox, &mid) {
        return no_draft();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "RequestBodyRead", "Invalid JSON in the request body.");
    };
    let att = match parse_attachment(&v) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let answer = json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": super::random_hex(12),
        "name": att.name,
        "contentType": att.content_type,
        "size": att.size,
        "isInline": att.is_inline,
    });
    let mut st = shared.lock();
    match st.drafts.get_mut(&mid) {
        Some(d) => d.message.attachments.push(att),
        None => return no_draft(),
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

pub(super) async fn send_draft(
    State(shared): State<Arc<Shared>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::Send, &id).await;
    let mailbox = match authorize(
        &shared,
        &headers,
        RequestKind::Send,
        &id,
        Some("Mail.Send"),
        true,
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let message = {
        let st = shared.lock();
        match st
            .drafts
            .get(&mid)
            .filter(|d| d.message.mailbox == mailbox.address)
        {
            Some(d) => d.message.clone(),
            None => return no_draft(),
        }
    };
    if let Err(r) = check_sendable(&mailbox, &message) {
        return r;
    }
    {
        let mut st = shared.lock();
        st.drafts.remove(&mid);
        st.uploads.retain(|_, u| u.draft_id != mid);
    }
    shared.deliver(message);
    shared.maybe_lose_answer(RequestKind::Send).await;
    StatusCode::ACCEPTED.into_response()
}
