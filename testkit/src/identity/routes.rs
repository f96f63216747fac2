//! HTTP wiring of the fake identity platform: the axum router, form parsing,
//! and the authorize endpoint (which answers with redirects, not JSON).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::grants::{self, OAuthError};
use super::{random_token, AuthCode, Shared};

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode))
        .route("/{tenant}/oauth2/v2.0/authorize", get(authorize))
        .with_state(shared)
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(self.body())).into_response()
    }
}

fn parse_form(body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| OAuthError::from_code(90014))?;
    Ok(pairs.into_iter().collect())
}

async fn token(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    parse_form(&body)
        .and_then(|form| grants::token(&shared, &form))
        .map(Json)
        .into_response()
}

async fn devicecode(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    parse_form(&body)
        .and_then(|form| grants::start_device_code(&shared, &form))
        .map(Json)
        .into_response()
}

/// `http://localhost[:port]/...`, `http://127.0.0.1...` or `http://[::1]...`
/// (the loopback redirects AAD allows for public clients).
fn is_loopback_http(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if authority.starts_with('[') {
        authority.split(']').next().map(|h| format!("{h}]"))
    } else {
        authority.split(':').next().map(str::to_string)
    };
    matches!(host.as_deref(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// An error page (when there is no trustworthy redirect URI).
fn error_page(code: u32) -> Response {
    let body = OAuthError::from_code(code).body();
    let text = body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("{redirect_uri}{sep}{query}"))],
    )
        .into_response()
}

/// `GET {tenant}/oauth2/v2.0/authorize`: the registered user "signs in" at
/// once; the code goes to the loopback redirect URI.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let Some(client) = shared.client(get("client_id")) else {
        return error_page(700016);
    };
    let redirect_uri = get("redirect_uri");
    if !is_loopback_http(redirect_uri) {
        return error_page(50011);
    }
    let state = get("state");
    let fail = |error: &str, description: &str| {
        redirect(
            redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("state", state),
            ],
        )
    };
    if get("response_type") != "code" {
        return fail(
            "unsupported_response_type",
            "AADSTS70005: response_type 'code' is required.",
        );
    }
    let challenge = get("code_challenge");
    if get("code_challenge_method") != "S256" || challenge.is_empty() {
        return fail(
            "invalid_request",
            "AADSTS501491: Invalid size of Code_Challenge parameter or code_challenge_method is not S256.",
        );
    }
    let code = random_token("ac.");
    let scope = q
        .get("scope")
        .cloned()
        .unwrap_or_else(|| grants::DELEGATED_SCOPE.to_string());
    shared.lock().codes.insert(
        code.clone(),
        AuthCode {
            client_id: client.client_id.clone(),
            user: client.user.clone(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            scope,
        },
    );
    redirect(redirect_uri, &[("code", &code), ("state", state)])
}

#[cfg(test)]
mod tests {
    use super::is_loopback_http;

    #[test]
    fn loopback_table() {
        for (uri, ok) in [
            ("http://localhost", true),
            ("http://localhost:8400/callback", true),
            ("http://127.0.0.1:1/x?y", true),
            ("http://[::1]:99/", true),
            ("https://localhost/", false),
            ("http://localhost.evil.example/", false),
            ("http://evil.example/?localhost", false),
            ("http://127.0.0.1.evil/", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_http(uri), ok, "{uri}");
        }
    }
}
