//! The sign-in flows a person goes through once, which leave a refresh
//! token in the OS keychain for `TokenSource` to use unattended:
//!
//! - interactive (the default): authorization code with PKCE (S256) on a
//!   loopback redirect. Postern listens on `localhost` on a free port just
//!   for the sign-in, sends the browser to Microsoft, checks `state`,
//!   exchanges the code and answers the browser with a short page;
//! - device code: for a machine without a browser; prints a code to enter
//!   at Microsoft's device login page on any other device.
//!
//! Client credentials need no sign-in (a client secret, `set-secret`).

use std::collections::HashMap;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationResponse,
    DeviceAuthorizationUrl, ExtraDeviceAuthorizationFields, PkceCodeChallenge, RedirectUrl, Scope,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{access_token_of, classify_token_error, AccessToken, AuthError, DELEGATED_SCOPE};
use crate::config::Config;
use crate::secrets::{Secret, SecretKey, SecretStore};

/// How long the browser sign-in may take before Postern gives up waiting.
pub const INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The path of the loopback redirect.
const REDIRECT_PATH: &str = "/postern/signed-in";
/// A browser's request line and headers fit in this; more is not a sign-in.
const MAX_REQUEST: usize = 16 * 1024;

/// What the sign-in flows tell the person, as it happens.
pub trait LoginUi: Send + Sync {
    /// The URL to open (always shown, so `--no-browser` and remote shells work).
    fn open_url(&self, url: &str, open_browser: bool);
    /// The device code and where to enter it.
    fn device_code(&self, verification_uri: &str, user_code: &str, message: &str);
}

fn endpoints(config: &Config) -> (String, String, String) {
    let base = format!(
        "{}/{}/oauth2/v2.0",
        config.oauth.authority.trim_end_matches('/'),
        config.oauth.tenant
    );
    (
        format!("{base}/authorize"),
        format!("{base}/token"),
        format!("{base}/devicecode"),
    )
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client builds")
}

fn require_client_id(config: &Config) -> Result<String, AuthError> {
    if config.oauth.client_id.is_empty() {
        return Err(AuthError::NotConfigured(
            "Set oauth.client_id to your app registration's client id before signing in.".into(),
        ));
    }
    Ok(config.oauth.client_id.clone())
}

fn delegated_scopes() -> Vec<Scope> {
    vec![
        Scope::new(DELEGATED_SCOPE.into()),
        Scope::new("offline_access".into()),
    ]
}

/// Keeps the refresh token the flow produced; without one there is nothing
/// to run unattended on, which is an error worth saying plainly.
async fn keep(
    secrets: &SecretStore,
    client_id: &str,
    resp: &oauth2::basic::BasicTokenResponse,
) -> Result<AccessToken, AuthError> {
    let refresh = resp.refresh_token().ok_or_else(|| {
        AuthError::SignInNeeded(
            "Microsoft did not hand out a refresh token; make sure the app registration allows the offline_access permission.".into(),
        )
    })?;
    secrets
        .set_async(
            SecretKey::RefreshToken {
                client_id: client_id.to_string(),
            },
            Secret::new(refresh.secret().clone()),
        )
        .await?;
    Ok(access_token_of(resp))
}

/// Authorization code + PKCE on a loopback redirect.
pub async fn interactive(
    config: &Config,
    secrets: &SecretStore,
    ui: &dyn LoginUi,
    open_browser: bool,
    timeout: Duration,
) -> Result<AccessToken, AuthError> {
    let client_id = require_client_id(config)?;
    let (auth_url, token_url, _) = endpoints(config);
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
        AuthError::Transient(format!("cannot listen on localhost for the sign-in: {e}"))
    })?;
    let port = listener
        .local_addr()
        .map_err(|e| AuthError::Transient(e.to_string()))?
        .port();
    // Browsers may resolve "localhost" to ::1 first; listen there too when we can.
    let listener6 = TcpListener::bind(("::1", port)).await.ok();
    let redirect = format!("http://localhost:{port}{REDIRECT_PATH}");

    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(auth_url).map_err(bad_authority)?)
        .set_token_uri(TokenUrl::new(token_url).map_err(bad_authority)?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(bad_authority)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(delegated_scopes())
        .set_pkce_challenge(challenge);
    if !config.upstream.mailbox.is_empty() {
        request = request.add_extra_param("login_hint", config.upstream.mailbox.clone());
    }
    let (url, state) = request.url();
    ui.open_url(url.as_str(), open_browser);

    let params = tokio::time::timeout(
        timeout,
        wait_for_redirect(&listener, listener6.as_ref(), state.secret()),
    )
    .await
    .map_err(|_| {
        AuthError::SignInNeeded(format!(
            "The sign-in was not completed within {}; run `postern account login` again.",
            humantime::format_duration(timeout)
        ))
    })??;
    let (code, mut browser) = params;
    let result = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http_client())
        .await
        .map_err(classify_token_error);
    let outcome = match result {
        Ok(resp) => keep(secrets, &client_id, &resp).await,
        Err(e) => Err(e),
    };
    let page = match &outcome {
        Ok(_) => page(
            "Signed in",
            "Postern is signed in to Microsoft 365. You can close this tab.",
        ),
        Err(e) => page("Sign-in failed", &e.to_string()),
    };
    let _ = browser.write_all(page.as_bytes()).await;
    let _ = browser.shutdown().await;
    outcome
}

fn bad_authority(e: impl std::fmt::Display) -> AuthError {
    AuthError::NotConfigured(format!("oauth.authority does not make a valid URL: {e}"))
}

/// Serves the loopback redirect until a request carries the sign-in result.
/// Returns the code and the browser connection, still open for the answer.
async fn wait_for_redirect(
    v4: &TcpListener,
    v6: Option<&TcpListener>,
    state: &str,
) -> Result<(String, TcpStream), AuthError> {
    loop {
        let accepted = match v6 {
            Some(v6) => tokio::select! { a = v4.accept() => a, a = v6.accept() => a },
            None => v4.accept().await,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let Some(query) = read_redirect_query(&mut stream).await else {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        };
        if query.get("state").map(String::as_str) != Some(state) {
            let _ = stream
                .write_all(page("Sign-in refused", "This sign-in answer does not belong to the sign-in Postern started (state mismatch). Start again with `postern account login`.").as_bytes())
                .await;
            return Err(AuthError::SignInNeeded(
                "The browser returned a sign-in that Postern did not start (state mismatch); nothing was stored.".into(),
            ));
        }
        if let Some(error) = query.get("error") {
            let description = query
                .get("error_description")
                .map(|d| d.lines().next().unwrap_or("").to_string())
                .unwrap_or_default();
            let _ = stream
                .write_all(page("Sign-in failed", &format!("{error}: {description}")).as_bytes())
                .await;
            return Err(AuthError::SignInNeeded(format!(
                "Microsoft did not complete the sign-in: {error}: {description}"
            )));
        }
        if let Some(code) = query.get("code") {
            return Ok((code.clone(), stream));
        }
    }
}

/// Reads one HTTP request and returns its query if it is for the redirect path.
async fn read_redirect_query(stream: &mut TcpStream) -> Option<HashMap<String, String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buf.len() > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = std::str::from_utf8(&buf[..buf.iter().position(|b| *b == b'\r')?]).ok()?;
    let target = line.strip_prefix("GET ")?.split(' ').next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != REDIRECT_PATH {
        return None;
    }
    Some(
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    )
}

fn page(title: &str, text: &str) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Postern: {t}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40em;margin:4em auto\">\
         <h1>{t}</h1><p>{x}</p></body></html>",
        t = esc(title),
        x = esc(text)
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Microsoft's device authorization answer also carries a sentence to show.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MicrosoftDeviceFields {
    #[serde(default)]
    message: Option<String>,
}

impl ExtraDeviceAuthorizationFields for MicrosoftDeviceFields {}

/// The device code flow: show a code, poll until the person has entered it.
pub async fn device_code(
    config: &Config,
    secrets: &SecretStore,
    ui: &dyn LoginUi,
) -> Result<AccessToken, AuthError> {
    let client_id = require_client_id(config)?;
    let (_, token_url, device_url) = endpoints(config);
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(token_url).map_err(bad_authority)?)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url).map_err(bad_authority)?,
        );
    let http = http_client();
    let details: DeviceAuthorizationResponse<MicrosoftDeviceFields> = client
        .exchange_device_code()
        .add_scopes(delegated_scopes())
        .request_async(&http)
        .await
        .map_err(classify_token_error)?;
    let message = details.extra_fields().message.clone().unwrap_or_default();
    ui.device_code(
        details.verification_uri().as_str(),
        details.user_code().secret(),
        &message,
    );
    let resp = client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, None)
        .await
        .map_err(|e| match e {
            oauth2::RequestTokenError::ServerResponse(r) => AuthError::SignInNeeded(format!(
                "The device sign-in did not complete: {}{}",
                r.error().as_ref(),
                r.error_description()
                    .map(|d| format!(": {}", d.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            )),
            other => AuthError::Transient(other.to_string()),
        })?;
    keep(secrets, &client_id, &resp).await
}
