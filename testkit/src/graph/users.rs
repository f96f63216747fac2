//! The fake Graph's read-only directory and folder endpoints: `GET
//! /users/{id}` and `GET /users/{id}/mailFolders/{name}` (a well-known
//! folder, with `$select`).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::routes::{authorize, error, InFlight};
use super::{RequestKind, Shared};

pub(super) async fn get_user(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::GetUser, &id).await;
    // Any Graph token reads a user here (real Graph: User.Read.All).
    let m = match authorize(&shared, &headers, RequestKind::GetUser, &id, None, false) {
        Ok(m) => m,
        Err(r) => return r,
    };
    Json(json!({
        "id": m.id(),
        "mail": m.address,
        "userPrincipalName": m.address,
        "displayName": m.display_name,
    }))
    .into_response()
}

/// The well-known folders Graph names (a subset), with their display names.
const WELL_KNOWN_FOLDERS: [(&str, &str); 5] = [
    ("drafts", "Drafts"),
    ("inbox", "Inbox"),
    ("sentitems", "Sent Items"),
    ("deleteditems", "Deleted Items"),
    ("outbox", "Outbox"),
];

pub(super) async fn get_mail_folder(
    State(shared): State<Arc<Shared>>,
    Path((id, folder)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let _call = InFlight::begin(&shared, RequestKind::GetMailFolder, &id).await;
    let mailbox = match authorize(
        &shared,
        &headers,
        RequestKind::GetMailFolder,
        &id,
        Some("Mail.ReadWrite"),
        true,
    ) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let Some((name, display)) = WELL_KNOWN_FOLDERS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&folder))
    else {
        return error(
            404,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        );
    };
    let drafts = if *name == "drafts" {
        let st = shared.lock();
        st.drafts
            .values()
            .filter(|d| d.message.mailbox.eq_ignore_ascii_case(&mailbox.address))
            .count()
    } else {
        0
    };
    let full = json!({
        "id": format!("{}-{name}", mailbox.id()),
        "displayName": display,
        "parentFolderId": format!("{}-msgfolderroot", mailbox.id()),
        "childFolderCount": 0,
        "unreadItemCount": 0,
        "totalItemCount": drafts,
        "isHidden": false,
    });
    let select = query.as_deref().and_then(|q| {
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            matches!(k, "$select" | "%24select").then(|| v.to_string())
        })
    });
    let mut body = serde_json::Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "https://graph.microsoft.com/v1.0/$metadata#users('{}')/mailFolders/$entity",
            mailbox.address
        )),
    );
    for (k, v) in full.as_object().expect("an object") {
        let wanted = match &select {
            None => true,
            Some(fields) => fields.split(',').any(|f| f.trim() == k),
        };
        if wanted {
            body.insert(k.clone(), v.clone());
        }
    }
    Json(Value::Object(body)).into_response()
}
