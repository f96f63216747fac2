//! The sign-in flows a person goes through once (from the window or with
//! `postern account login`, both through [`SignInUi`]), which leave a refresh
//! token in the OS keychain for `TokenSource` to use unattended:
//!
//! - interactive (the default): authorization code with PKCE (S256) on a
//!   loopback redirect. Postern listens on `localhost` on a free port just
//!   (127.0.0.1 and ::1, the same port) for the sign-in, sends the browser
//!   to Microsoft, ignores any answer without its `state`,
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

use super::{access_token_of, classify_token_error, AccessToken, AuthError};
use crate::config::Config;
use crate::secrets::{Secret, SecretKey, SecretStore};

/// How long the browser sign-in may take before Postern gives up waiting.
pub const INTERACTIVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The path of the loopback redirect.
const REDIRECT_PATH: &str = "/postern/signed-in";
/// A browser's request line and headers fit in this; more is not a sign-in.
const MAX_REQUEST: usize = 16 * 1024;

/// What the sign-in flows tell the person, as it happens.
pub trait SignInUi: Send + Sync {
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

fn http_client(config: &Config) -> Result<reqwest::Client, AuthError> {
    super::http_client(config).map_err(AuthError::NotConfigured)
}

fn require_client_id(config: &Config) -> Result<String, AuthError> {
    if config.oauth.client_id.is_empty() {
        return Err(AuthError::NotConfigured(
            "Set oauth.client_id to your app registration's client id before signing in.".into(),
        ));
    }
    Ok(config.oauth.client_id.clone())
}

fn delegated_scopes(config: &Config) -> Vec<Scope> {
    super::delegated_scopes(config)
        .into_iter()
        .map(Scope::new)
        .collect()
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
    ui: &dyn SignInUi,
    open_browser: bool,
    timeout: Duration,
) -> Result<AccessToken, AuthError> {
    let client_id = require_client_id(config)?;
    let (auth_url, token_url, _) = endpoints(config);
    let http = http_client(config)?;
    let token_host = token_url.clone();
    let (listener, listener6, port) = bind_loopback().await?;
    let redirect = format!("http://localhost:{port}{REDIRECT_PATH}");

    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(auth_url).map_err(bad_authority)?)
        .set_token_uri(TokenUrl::new(token_url).map_err(bad_authority)?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(bad_authority)?);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(delegated_scopes(config))
        .set_pkce_challenge(challenge);
    if !config.upstream.mailbox.is_empty() {
        request = request.add_extra_param("login_hint", config.upstream.mailbox.clone());
    }
    let (url, state) = request.url();
    ui.open_url(url.as_str(), open_browser);

    let params = tokio::time::timeout(
        timeout,
        wait_for_redirect(&listener, listener6.as_ref(), state.secret(), READ_TIMEOUT),
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
        .request_async(&http)
        .await
        .map_err(|e| classify_token_error(e, &token_host));
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

/// Listens for the redirect on 127.0.0.1 and on ::1 with the same port.
/// The redirect names `localhost`, which a browser may resolve to either:
/// if another process already holds `[::1]:port`, the code could land
/// there, so that port is given up and another one tried. Where the
/// machine has no IPv6 loopback at all, nobody can listen there either.
async fn bind_loopback() -> Result<(TcpListener, Option<TcpListener>, u16), AuthError> {
    let cannot = |e: std::io::Error| {
        AuthError::Transient(format!("cannot listen on localhost for the sign-in: {e}"))
    };
    for _ in 0..BIND_TRIES {
        match bind_pair(0).await {
            Ok((v4, v6)) => {
                let port = v4.local_addr().map_err(cannot)?.port();
                return Ok((v4, v6, port));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(cannot(e)),
        }
    }
    Err(AuthError::Transient(
        "cannot find a free port on localhost (both 127.0.0.1 and ::1) for the sign-in".into(),
    ))
}

/// 127.0.0.1 on `port` (0: any free one), then ::1 on the same port.
/// `AddrInUse` when somebody else holds either.
async fn bind_pair(port: u16) -> std::io::Result<(TcpListener, Option<TcpListener>)> {
    let v4 = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = v4.local_addr()?.port();
    match TcpListener::bind(("::1", port)).await {
        Ok(v6) => Ok((v4, Some(v6))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(e),
        // No IPv6 loopback here (EADDRNOTAVAIL, EAFNOSUPPORT).
        Err(_) => Ok((v4, None)),
    }
}

/// Tries at finding a port free on both loopback addresses.
const BIND_TRIES: usize = 20;
/// How long one browser connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the loopback redirect until a request carries the sign-in result
/// for this sign-in's `state`. Connections are served concurrently (a slow
/// or silent one stalls nobody), and a request with another `state` (any
/// local process can send one) is answered and ignored: only Microsoft's
/// redirect of the request Postern made can end the sign-in. Returns the
/// code and the browser connection, still open for the answer.
async fn wait_for_redirect(
    v4: &TcpListener,
    v6: Option<&TcpListener>,
    state: &str,
    read_timeout: Duration,
) -> Result<(String, TcpStream), AuthError> {
    // Each connection's task reads its request and hands it back here; the
    // set is dropped (its tasks aborted) when the sign-in ends.
    let mut reading = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = v4.accept() => a,
            a = async { v6.expect("guarded").accept().await }, if v6.is_some() => a,
            Some(done) = reading.join_next(), if !reading.is_empty() => {
                let Ok(Some((query, stream))) = done else { continue };
                match judge(query, state, stream).await {
                    Some(result) => return result,
                    None => continue,
                }
            }
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        if reading.len() >= MAX_PENDING {
            continue; // dropped: a flood of connections is not a browser
        }
        reading.spawn(async move {
            match read_redirect_query(&mut stream, read_timeout).await {
                Some(query) => Some((query, stream)),
                None => {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .await;
                    None
                }
            }
        });
    }
}

/// Connections read at once, at most.
const MAX_PENDING: usize = 64;

/// What one redirect request means: the end of the sign-in (its code, or
/// Microsoft's error) when it carries this sign-in's `state`, else nothing.
async fn judge(
    query: HashMap<String, String>,
    state: &str,
    mut stream: TcpStream,
) -> Option<Result<(String, TcpStream), AuthError>> {
    if query.get("state").map(String::as_str) != Some(state) {
        tracing::warn!(
            "ignored a sign-in answer that does not belong to this sign-in (state mismatch)"
        );
        let _ = stream
            .write_all(page("Sign-in refused", "This sign-in answer does not belong to the sign-in Postern started (state mismatch); it was ignored.").as_bytes())
            .await;
        return None;
    }
    if let Some(error) = query.get("error") {
        let description = query
            .get("error_description")
            .map(|d| d.lines().next().unwrap_or("").to_string())
            .unwrap_or_default();
        let _ = stream
            .write_all(page("Sign-in failed", &format!("{error}: {description}")).as_bytes())
            .await;
        return Some(Err(AuthError::SignInNeeded(format!(
            "Microsoft did not complete the sign-in: {error}: {description}"
        ))));
    }
    let code = query.get("code")?.clone();
    Some(Ok((code, stream)))
}

/// Reads one HTTP request and returns its query if it is for the redirect path.
async fn read_redirect_query(
    stream: &mut TcpStream,
    read_timeout: Duration,
) -> Option<HashMap<String, String>> {
    let deadline = tokio::time::Instant::now() + read_timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
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
    ui: &dyn SignInUi,
) -> Result<AccessToken, AuthError> {
    let client_id = require_client_id(config)?;
    let (_, token_url, device_url) = endpoints(config);
    let http = http_client(config)?;
    let token_host = token_url.clone();
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_token_uri(TokenUrl::new(token_url).map_err(bad_authority)?)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url).map_err(bad_authority)?,
        );
    let details: DeviceAuthorizationResponse<MicrosoftDeviceFields> = client
        .exchange_device_code()
        .add_scopes(delegated_scopes(config))
        .request_async(&http)
        .await
        .map_err(|e| classify_token_error(e, &token_host))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port: u16, target: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    /// A request with the wrong state (any local process can send one) is
    /// answered and ignored; the real redirect still completes the sign-in.
    /// A silent connection, whose read would stall for an hour, stalls
    /// nobody. (Before: the first ended the sign-in, the second blocked it.)
    #[tokio::test]
    async fn wrong_state_and_a_silent_client_do_not_stop_the_sign_in() {
        let (v4, v6, port) = bind_loopback().await.unwrap();
        let hour = Duration::from_secs(3600);
        let server = tokio::spawn(async move {
            let r = wait_for_redirect(&v4, v6.as_ref(), "right", hour).await;
            r.map(|(code, _browser)| code)
        });
        let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let refused = get(port, &format!("{REDIRECT_PATH}?state=wrong&code=evil")).await;
        assert!(refused.contains("Sign-in refused"), "{refused}");
        let lost = get(port, "/elsewhere?state=right&code=x").await;
        assert!(lost.starts_with("HTTP/1.1 404"), "{lost}");
        let good = format!("{REDIRECT_PATH}?state=right&code=good");
        let _browser = tokio::spawn(async move { get(port, &good).await });
        let code = tokio::time::timeout(Duration::from_secs(60), server)
            .await
            .expect("the sign-in completed while the silent client waits")
            .unwrap()
            .unwrap();
        assert_eq!(code, "good");
    }

    #[tokio::test]
    async fn microsofts_error_with_the_right_state_ends_the_sign_in() {
        let (v4, v6, port) = bind_loopback().await.unwrap();
        let server = tokio::spawn(async move {
            wait_for_redirect(&v4, v6.as_ref(), "s", READ_TIMEOUT)
                .await
                .map(|(code, _)| code)
        });
        let page = get(
            port,
            &format!("{REDIRECT_PATH}?state=s&error=access_denied&error_description=no"),
        )
        .await;
        assert!(page.contains("Sign-in failed"), "{page}");
        let err = server.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("access_denied"), "{err}");
    }

    /// Another process holds [::1] on the port 127.0.0.1 got: that port is
    /// given up (before, the ::1 bind failing was ignored, and a browser
    /// resolving localhost to ::1 took the code to that process).
    #[tokio::test]
    async fn a_port_held_by_another_process_on_ipv6_loopback_is_given_up() {
        let Ok(other) = TcpListener::bind(("::1", 0)).await else {
            return; // no IPv6 loopback on this machine: nobody can hold it
        };
        let port = other.local_addr().unwrap().port();
        let err = bind_pair(port)
            .await
            .expect_err("the port is not Postern's alone");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        let (v4, v6, got) = bind_loopback().await.unwrap();
        assert_ne!(got, port);
        assert_eq!(v4.local_addr().unwrap().port(), got);
        assert_eq!(
            v6.expect("::1 exists here").local_addr().unwrap().port(),
            got
        );
    }
}
