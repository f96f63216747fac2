//! HTTP wiring of the fake Graph: the router, the checks every request goes
//! through (in-flight count, hold, token, faults, permission, mailbox), the
//! sendMail endpoint and the message JSON shared with drafts. The user and
//! folder reads are in `users`, drafts in `drafts`, upload sessions in
//! `upload`, the message trace in `trace_routes`.

// Handlers answer early with a ready `Response`; boxing it buys nothing in a fake.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use super::{
    drafts, mime, trace_routes, upload, users, GraphAttachment, GraphFault, GraphMailbox,
    GraphMessage, RequestKind, Route, Shared, MAX_INLINE_ATTACHMENT_BYTES, MAX_REQUEST_BYTES,
};
use crate::identity::{TokenInfo, GRAPH_RESOURCE};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1.0/users/{id}", get(users::get_user))
        .route(
            "/v1.0/users/{id}/mailFolders/{folder}",
            get(users::get_mail_folder),
        )
        .route("/v1.0/users/{id}/sendMail", post(send_mail))
        .route("/v1.0/users/{id}/messages", post(drafts::create_draft))
        .route(
            "/v1.0/users/{id}/mailFolders/drafts/messages",
            get(drafts::list_drafts),
        )
        .route(
            "/v1.0/users/{id}/messages/{mid}",
            get(drafts::get_draft).delete(drafts::delete_draft),
        )
        .route(
            "/v1.0/users/{id}/messages/{mid}/attachments",
            post(drafts::add_attachment),
        )
        .route(
            "/v1.0/users/{id}/messages/{mid}/attachments/createUploadSession",
            post(upload::create_session),
        )
        .route(
            "/v1.0/users/{id}/messages/{mid}/send",
            post(drafts::send_draft),
        )
        .route(
            "/upload/{token}",
            get(upload::status)
                .put(upload::put_range)
                .delete(upload::cancel),
        )
        .merge(trace_routes::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

/// Graph's error JSON with a status.
pub(super) fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = json!({ "error": {
        "code": code,
        "message": message,
        "innerError": { "request-id": super::random_hex(16), "date": now_rfc3339(0) },
    }});
    (status, Json(body)).into_response()
}

pub(super) fn now_rfc3339(plus_secs: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(plus_secs);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Counts a request as in flight for its mailbox until dropped.
pub(super) struct InFlight {
    shared: Arc<Shared>,
    key: String,
}

impl InFlight {
    /// Counts the request (by kind and in flight), then waits while held.
    pub(super) async fn begin(shared: &Arc<Shared>, kind: RequestKind, mailbox: &str) -> InFlight {
        let key = shared
            .mailbox(mailbox)
            .map(|m| m.address.to_ascii_lowercase())
            .unwrap_or_else(|| mailbox.to_ascii_lowercase());
        {
            let mut st = shared.lock();
            *st.requests.entry(kind).or_default() += 1;
            let n = st.in_flight.entry(key.clone()).or_default();
            *n += 1;
            let n = *n;
            let max = st.max_in_flight.entry(key.clone()).or_default();
            *max = (*max).max(n);
        }
        shared.changed.send_modify(|c| *c += 1);
        let mut held = shared.held.subscribe();
        let _ = held.wait_for(|&h| !h).await;
        InFlight {
            shared: shared.clone(),
            key,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = self.shared.lock().in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
        self.shared.changed.send_modify(|c| *c += 1);
    }
}

/// A queued reply fault for `kind`, as a response.
pub(super) fn reply_fault(shared: &Shared, kind: RequestKind) -> Option<Response> {
    let (status, code, retry) = shared.take_fault(|f| match f {
        GraphFault::Reply {
            kind: k,
            status,
            code,
            retry_after,
        } if *k == kind => Some((*status, code.clone(), *retry_after)),
        _ => None,
    })?;
    let mut resp = error(status, &code, &format!("Injected fault: {code}"));
    if let Some(secs) = retry {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            secs.to_string().parse().expect("digits"),
        );
    }
    Some(resp)
}

/// The bearer token's checks: present, known, unexpired, for this Graph
/// (and the [`GraphFault::InvalidToken`] fault). `None`: no identity fake,
/// any token passes with every permission.
pub(super) fn bearer(shared: &Shared, headers: &HeaderMap) -> Result<Option<TokenInfo>, Response> {
    let invalid = |msg: &str| error(401, "InvalidAuthenticationToken", msg);
    if shared
        .take_fault(|f| (*f == GraphFault::InvalidToken).then_some(()))
        .is_some()
    {
        return Err(invalid("Lifetime validation failed, the token is expired."));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("Access token is empty."))?;
    let Some(inspector) = &shared.inspector else {
        return Ok(None);
    };
    let info = inspector
        .inspect(token)
        .ok_or_else(|| invalid("IDX14100: JWT is not well formed."))?;
    if info.expired {
        return Err(invalid("Lifetime validation failed, the token is expired."));
    }
    let aud = info.audience.trim_end_matches('/');
    let known = aud == GRAPH_RESOURCE
        || aud == shared.endpoint
        || shared.lock().endpoints.iter().any(|e| e == aud);
    if !known {
        return Err(invalid("Invalid audience."));
    }
    Ok(Some(info))
}

/// The checks of an authenticated mail request, in Graph's order: token,
/// injected faults, permission, mailbox. Returns the mailbox.
pub(super) fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    kind: RequestKind,
    id: &str,
    permission: Option<&str>,
    mail: bool,
) -> Result<GraphMailbox, Response> {
    let info = bearer(shared, headers)?;
    if let Some(resp) = reply_fault(shared, kind) {
        return Err(resp);
    }
    if let (Some(info), Some(permission)) = (&info, permission) {
        if !info.permissions.iter().any(|p| p == permission) {
            return Err(error(
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
    }
    let Some(mailbox) = shared.mailbox(id) else {
        return Err(if mail {
            error(
                404,
                "ErrorInvalidUser",
                &format!("The requested user '{id}' is invalid."),
            )
        } else {
            error(
                404,
                "Request_ResourceNotFound",
                &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
            )
        });
    };
    if !mail {
        return Ok(mailbox.clone());
    }
    if let Some(info) = info.as_ref().filter(|i| i.delegated) {
        if !info.user.eq_ignore_ascii_case(&mailbox.address) {
            return Err(error(
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ));
        }
    }
    if let Some(scope) = &shared.opts.rbac_scope {
        if !scope
            .iter()
            .any(|m| m.eq_ignore_ascii_case(&mailbox.address))
        {
            return Err(error(
                403,
                "ErrorAccessDenied",
                "Access to OData is disabled.",
            ));
        }
    }
    if !mailbox.licensed {
        return Err(error(
            404,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    }
    Ok(mailbox.clone())
}

pub(super) fn too_large() -> Response {
    error(
        413,
        "ErrorMessageSizeExceeded",
        "The maximum request length supported is 4MB.",
    )
}

/// From must be the mailbox or one it may send as.
pub(super) fn check_from(mailbox: &GraphMailbox, from: Option<&str>) -> Result<(), Response> {
    let Some(from) = from else { return Ok(()) };
    let ok = from.eq_ignore_ascii_case(&mailbox.address)
        || mailbox.send_as.iter().any(|a| a.eq_ignore_ascii_case(from));
    if ok {
        Ok(())
    } else {
        Err(error(
            403,
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.",
        ))
    }
}

async fn send_mail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::SendMail, &id).await;
    let mailbox = match authorize(
        &shared,
        &headers,
        RequestKind::SendMail,
        &id,
        Some("Mail.Send"),
        true,
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    if body.len() > MAX_REQUEST_BYTES {
        return too_large();
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let message = if ctype.starts_with("text/plain") {
        let text: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let Ok(raw) = STANDARD.decode(&text) else {
            return error(
                400,
                "ErrorMimeContentInvalidBase64String",
                "Invalid base64 string for MIME content.",
            );
        };
        let h = mime::headers(&raw);
        let first = |name: &str| mime::header_addresses(&h, name).into_iter().next();
        let subject = mime::values(&h, "subject").first().map(|s| s.to_string());
        GraphMessage {
            mailbox: mailbox.address.clone(),
            route: Some(Route::Mime),
            from: first("from"),
            to: mime::header_addresses(&h, "to"),
            cc: mime::header_addresses(&h, "cc"),
            bcc: mime::header_addresses(&h, "bcc"),
            reply_to: mime::header_addresses(&h, "reply-to"),
            subject: subject.unwrap_or_default(),
            internet_message_id: mime::values(&h, "message-id")
                .first()
                .map(|s| s.to_string()),
            visible: Some(mime::without_bcc(&raw)),
            raw: Some(raw),
            save_to_sent_items: true,
            ..Default::default()
        }
    } else if ctype.starts_with("application/json") {
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return error(400, "RequestBodyRead", "Invalid JSON in the request body.");
        };
        let mut m = match parse_message(&v["message"], &mailbox, Route::Json) {
            Ok(m) => m,
            Err(r) => return r,
        };
        m.save_to_sent_items = v["saveToSentItems"].as_bool().unwrap_or(true);
        m
    } else {
        return error(
            415,
            "UnsupportedMediaType",
            "Content-Type must be text/plain or application/json.",
        );
    };
    if let Err(r) = check_sendable(&mailbox, &message) {
        return r;
    }
    shared.deliver(message);
    shared.maybe_lose_answer(RequestKind::SendMail).await;
    StatusCode::ACCEPTED.into_response()
}

/// What Graph checks before it sends: at least one recipient, and a From
/// the mailbox may send as.
pub(super) fn check_sendable(
    mailbox: &GraphMailbox,
    message: &GraphMessage,
) -> Result<(), Response> {
    if message.recipients().is_empty() {
        return Err(error(
            400,
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., Recipient is missing.",
        ));
    }
    check_from(mailbox, message.from.as_deref())
}

pub(super) fn address_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["emailAddress"]["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A fileAttachment's JSON → attachment (`contentBytes` base64).
pub(super) fn parse_attachment(v: &Value) -> Result<GraphAttachment, Response> {
    if v["@odata.type"].as_str() != Some("#microsoft.graph.fileAttachment") {
        return Err(error(
            400,
            "ErrorInvalidRequest",
            "Only fileAttachment is supported here.",
        ));
    }
    let bytes = STANDARD
        .decode(v["contentBytes"].as_str().unwrap_or_default())
        .map_err(|_| {
            error(
                400,
                "ErrorInvalidRequest",
                "contentBytes is not valid base64.",
            )
        })?;
    if bytes.len() > MAX_INLINE_ATTACHMENT_BYTES {
        return Err(error(
            413,
            "ErrorMessageSizeExceeded",
            "The attachment is over 3 MB: use an upload session.",
        ));
    }
    Ok(GraphAttachment::new(
        v["name"].as_str().unwrap_or_default(),
        v["contentType"]
            .as_str()
            .unwrap_or("application/octet-stream"),
        bytes,
        v["isInline"].as_bool().unwrap_or(false),
    ))
}

/// A JSON `message` → the recorded parts.
pub(super) fn parse_message(
    v: &Value,
    mailbox: &GraphMailbox,
    route: Route,
) -> Result<GraphMessage, Response> {
    let mut headers = Vec::new();
    for h in v["internetMessageHeaders"].as_array().into_iter().flatten() {
        let name = h["name"].as_str().unwrap_or_default();
        if !name.to_ascii_lowercase().starts_with("x-") {
            return Err(error(
                400,
                "InvalidInternetMessageHeader",
                &format!(
                    "The internet message header name '{name}' should start with 'x-' or 'X-'."
                ),
            ));
        }
        headers.push((
            name.to_string(),
            h["value"].as_str().unwrap_or_default().to_string(),
        ));
    }
    let mut attachments = Vec::new();
    for a in v["attachments"].as_array().into_iter().flatten() {
        attachments.push(parse_attachment(a)?);
    }
    let properties: Vec<(String, String)> = v["singleValueExtendedProperties"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
            (text("id"), text("value"))
        })
        .collect();
    // PidTagDeleteAfterSubmit: Exchange removes the item once submitted,
    // so no copy stays in Sent Items.
    let delete_after_submit = properties.iter().any(|(id, value)| {
        id.eq_ignore_ascii_case("Boolean 0x0E01") && value.eq_ignore_ascii_case("true")
    });
    Ok(GraphMessage {
        mailbox: mailbox.address.clone(),
        route: Some(route),
        from: v["from"]["emailAddress"]["address"]
            .as_str()
            .map(str::to_string),
        to: address_list(&v["toRecipients"]),
        cc: address_list(&v["ccRecipients"]),
        bcc: address_list(&v["bccRecipients"]),
        reply_to: address_list(&v["replyTo"]),
        subject: v["subject"].as_str().unwrap_or_default().to_string(),
        internet_message_id: v["internetMessageId"].as_str().map(str::to_string),
        body_type: v["body"]["contentType"].as_str().map(str::to_string),
        body: v["body"]["content"].as_str().map(str::to_string),
        headers,
        attachments,
        save_to_sent_items: !delete_after_submit,
        properties,
        ..Default::default()
    })
}

pub(super) fn recipients_json(list: &[String]) -> Value {
    Value::Array(
        list.iter()
            .map(|a| json!({ "emailAddress": { "address": a } }))
            .collect(),
    )
}

pub(super) fn message_json(m: &GraphMessage) -> Value {
    json!({
        "id": m.id,
        "isDraft": true,
        "subject": m.subject,
        "body": { "contentType": m.body_type.as_deref().unwrap_or("text"), "content": m.body.as_deref().unwrap_or("") },
        "from": m.from.as_ref().map(|a| json!({ "emailAddress": { "address": a } })),
        "toRecipients": recipients_json(&m.to),
        "ccRecipients": recipients_json(&m.cc),
        "bccRecipients": recipients_json(&m.bcc),
        "replyTo": recipients_json(&m.reply_to),
        "hasAttachments": !m.attachments.is_empty(),
    })
}
