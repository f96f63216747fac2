//! Upload sessions of the fake Graph: `createUploadSession` on a draft, then
//! `PUT`/`GET`/`DELETE` on the pre-authenticated `uploadUrl`
//! (`{endpoint}/upload/{opaque}`). Ranges come strictly in order; an
//! interrupted range keeps nothing; the completed file becomes an
//! attachment of the draft.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};

use super::drafts::{draft_checks, has_draft, no_draft};
use super::routes::{error, now_rfc3339, reply_fault, InFlight};
use super::{
    GraphAttachment, GraphFault, RequestKind, Shared, UploadSession, MAX_UPLOAD_RANGE_BYTES,
};

/// How long the answered `expirationDateTime` lies ahead (informative only).
const SESSION_SECS: i64 = 6 * 3600;

fn progress(next: usize) -> Value {
    json!({
        "expirationDateTime": now_rfc3339(SESSION_SECS),
        "nextExpectedRanges": [format!("{next}-")],
    })
}

/// `POST /users/{id}/messages/{mid}/attachments/createUploadSession`.
pub(super) async fn create_session(
    State(shared): State<Arc<Shared>>,
    Path((id, mid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = RequestKind::CreateUploadSession;
    let (_call, mailbox) = match draft_checks(&shared, &headers, kind, &id, body.len()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !has_draft(&shared, &mailbox, &mid) {
        return no_draft();
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "RequestBodyRead", "Invalid JSON in the request body.");
    };
    let item = &v["AttachmentItem"];
    let (Some(name), Some(size)) = (item["name"].as_str(), item["size"].as_u64()) else {
        return error(
            400,
            "ErrorInvalidRequest",
            "AttachmentItem needs name and size.",
        );
    };
    if item["attachmentType"].as_str() != Some("file") {
        return error(400, "ErrorInvalidRequest", "attachmentType must be 'file'.");
    }
    let token = super::random_hex(24);
    shared.lock().uploads.insert(
        token.clone(),
        UploadSession {
            mailbox: mailbox.address.clone(),
            draft_id: mid,
            name: name.to_string(),
            content_type: item["contentType"]
                .as_str()
                .unwrap_or("application/octet-stream")
                .to_string(),
            is_inline: item["isInline"].as_bool().unwrap_or(false),
            size: size as usize,
            received: Vec::new(),
        },
    );
    let mut answer = progress(0);
    answer["uploadUrl"] = json!(format!(
        "{}/upload/{token}?authtoken={token}",
        shared.endpoint
    ));
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The session's mailbox (for the in-flight count), if the session exists.
fn session_mailbox(shared: &Shared, token: &str) -> String {
    shared
        .lock()
        .uploads
        .get(token)
        .map(|u| u.mailbox.clone())
        .unwrap_or_default()
}

/// The pre-authentication rule: no Authorization header.
fn refuse_authorization(headers: &HeaderMap) -> Option<Response> {
    headers.contains_key(header::AUTHORIZATION).then(|| {
        error(
            401,
            "InvalidAuthenticationToken",
            "The upload URL is pre-authenticated: send no Authorization header.",
        )
    })
}

fn no_session() -> Response {
    error(
        404,
        "ErrorItemNotFound",
        "The upload session was not found.",
    )
}

/// `bytes a-b/total`.
fn content_range(headers: &HeaderMap) -> Option<(usize, usize, usize)> {
    let v = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((
        a.trim().parse().ok()?,
        b.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

/// `PUT uploadUrl`: one range. A refused range's body is read to its end
/// first, so that the client is not left writing to nobody.
pub(super) async fn put_range(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    mut body: Body,
) -> Response {
    let answer = range(shared, token, headers, &mut body).await;
    while let Some(Ok(_)) = body.frame().await {}
    answer
}

async fn range(
    shared: Arc<Shared>,
    token: String,
    headers: HeaderMap,
    body: &mut Body,
) -> Response {
    let _call = InFlight::begin(
        &shared,
        RequestKind::UploadChunk,
        &session_mailbox(&shared, &token),
    )
    .await;
    if let Some(r) = refuse_authorization(&headers) {
        return r;
    }
    if let Some(r) = reply_fault(&shared, RequestKind::UploadChunk) {
        return r;
    }
    let Some(next) = shared.lock().uploads.get(&token).map(|u| u.received.len()) else {
        return no_session();
    };
    let Some((a, b, total)) = content_range(&headers) else {
        return error(
            400,
            "ErrorInvalidRequest",
            "Content-Range must be 'bytes a-b/total'.",
        );
    };
    let size = shared
        .lock()
        .uploads
        .get(&token)
        .map(|u| u.size)
        .unwrap_or(0);
    let bad_range = |msg: &str| {
        let mut r = error(416, "ErrorInvalidRange", msg);
        *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
        r
    };
    if b < a || total != size || b >= size {
        return bad_range("The Content-Range does not fit the upload session's size.");
    }
    let len = b - a + 1;
    if len > MAX_UPLOAD_RANGE_BYTES {
        return error(
            413,
            "ErrorRequestEntityTooLarge",
            "A range may carry at most 4 MB (4194304 bytes).",
        );
    }
    if a != next {
        return bad_range(&format!("The next expected range starts at {next}."));
    }
    let drop_after = shared.take_fault(|f| match f {
        GraphFault::DropUpload { after_bytes } => Some(*after_bytes),
        _ => None,
    });
    // Read the body; nothing is kept unless it all arrives.
    let mut data = Vec::with_capacity(len);
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            // The client went away mid-range.
            return bad_range("The range was interrupted.");
        };
        if let Some(chunk) = frame.data_ref() {
            data.extend_from_slice(chunk);
        }
        if drop_after.is_some_and(|n| data.len() >= n) {
            // Unwinds this connection's task: the connection closes with no
            // answer. `resume_unwind` skips the panic hook (no noise).
            std::panic::resume_unwind(Box::new("fake Graph: upload dropped on purpose"));
        }
        if data.len() > len {
            break;
        }
    }
    if let Some(n) = drop_after {
        if data.len() < n {
            std::panic::resume_unwind(Box::new("fake Graph: upload dropped on purpose"));
        }
    }
    if data.len() != len {
        return bad_range("The body's length does not match Content-Range.");
    }
    // Some(next offset) while the upload goes on; None once complete.
    let progress_at = {
        let mut st = shared.lock();
        let Some(session) = st.uploads.get_mut(&token) else {
            return no_session();
        };
        if session.received.len() != a {
            // Another PUT of the same range won the race.
            let next = session.received.len();
            drop(st);
            return bad_range(&format!("The next expected range starts at {next}."));
        }
        session.received.extend_from_slice(&data);
        (session.received.len() < session.size).then_some(session.received.len())
    };
    if let Some(next) = progress_at {
        shared.maybe_lose_answer(RequestKind::UploadChunk).await;
        return (StatusCode::OK, Json(progress(next))).into_response();
    }
    let mut st = shared.lock();
    let Some(session) = st.uploads.remove(&token) else {
        return no_session();
    };
    let att = GraphAttachment::new(
        &session.name,
        &session.content_type,
        session.received,
        session.is_inline,
    );
    match st.drafts.get_mut(&session.draft_id) {
        Some(d) => d.message.attachments.push(att),
        None => return no_draft(),
    }
    let location = format!(
        "{}/v1.0/users/{}/messages/{}/attachments/{}",
        shared.endpoint,
        session.mailbox,
        session.draft_id,
        super::random_hex(12)
    );
    (StatusCode::CREATED, [(header::LOCATION, location)]).into_response()
}

/// The common start of a request to an upload URL other than a range:
/// counted in flight for the session's mailbox, refused with an
/// Authorization header, or answered by a queued fault.
async fn session_call(
    shared: &Arc<Shared>,
    token: &str,
    headers: &HeaderMap,
    kind: RequestKind,
) -> Result<InFlight, Response> {
    let call = InFlight::begin(shared, kind, &session_mailbox(shared, token)).await;
    if let Some(r) = refuse_authorization(headers) {
        return Err(r);
    }
    if let Some(r) = reply_fault(shared, kind) {
        return Err(r);
    }
    Ok(call)
}

/// `GET uploadUrl`: where to resume.
pub(super) async fn status(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let _call = match session_call(&shared, &token, &headers, RequestKind::UploadStatus).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let next = shared.lock().uploads.get(&token).map(|u| u.received.len());
    match next {
        Some(next) => Json(progress(next)).into_response(),
        None => no_session(),
    }
}

/// `DELETE uploadUrl`: cancels the session.
pub(super) async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let _call = match session_call(&shared, &token, &headers, RequestKind::UploadCancel).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // Bound first: a lock guard in the tail expression would outlive
    // `_call`, whose drop takes the same lock (edition 2021 drop order).
    let removed = shared.lock().uploads.remove(&token);
    match removed {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => no_session(),
    }
}
