//! Credentials for the upstream connection: where the delivery worker gets
//! an OAuth access token (or the legacy password) from. This is Postern
//! signing in to Microsoft; devices logging in to Postern (SMTP AUTH on the
//! listener) are `listener::device_auth`.
//!
//! `TokenSource` is the seam. It caches the access token in memory only,
//! refreshes it well before it expires, and lets one refresh run at a time
//! even when three connections ask at once. The refresh token and client
//! secret come from the OS keychain; a rotated refresh token is stored back
//! before the new access token is used, so a crash cannot strand the account
//! on a token Microsoft has already retired.
//!
//! The interactive sign-in flows (auth code + PKCE, device code) that put
//! the first refresh token in the keychain live in `auth::signin`;
//! this module is what runs unattended afterwards.

pub mod claims;
pub mod permissions;
pub mod signin;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::config::{Config, OAuthFlow, UpstreamAuth, UpstreamMode};
use crate::secrets::{Secret, SecretError, SecretKey, SecretStore};
use crate::spool::now_ms;

/// Delegated scope for client submission.
pub const DELEGATED_SCOPE: &str = "https://outlook.office.com/SMTP.Send";
/// App-only scope (client credentials).
pub const APP_SCOPE: &str = "https://outlook.office365.com/.default";
/// The scopes a token is asked for, by upstream mode: client submission
/// wants Exchange's SMTP scopes, Graph mode the Graph resource at
/// `graph.endpoint` (`<endpoint>/.default` app-only; `<endpoint>/Mail.Send`
/// and `offline_access` delegated).
pub fn scopes(config: &Config) -> Vec<String> {
    if config.oauth.flow == OAuthFlow::ClientCredentials {
        if config.upstream.mode == UpstreamMode::Graph {
            vec![format!("{}/.default", config.graph.root())]
        } else {
            vec![APP_SCOPE.into()]
        }
    } else {
        delegated_scopes(config)
    }
}

/// The delegated scopes (a person signs in), whatever `oauth.flow` says.
pub fn delegated_scopes(config: &Config) -> Vec<String> {
    if config.upstream.mode == UpstreamMode::Graph {
        // Mail.ReadWrite: a scan over about 3 MB goes as a draft in the
        // user's own mailbox.
        let root = config.graph.root();
        return vec![
            format!("{root}/Mail.Send"),
            format!("{root}/Mail.ReadWrite"),
            "offline_access".into(),
        ];
    }
    vec![DELEGATED_SCOPE.into(), "offline_access".into()]
}

/// Refresh this long before the access token expires, so a message is never
/// sent with a token about to die (Microsoft's tokens live 60–90 minutes).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The token endpoint gets this long to answer before we call it a network problem.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// An access token and when it stops working.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: Secret,
    /// Unix milliseconds.
    pub expires_at: u64,
    /// How long it was issued for, in milliseconds.
    pub lifetime_ms: u64,
}

impl AccessToken {
    /// Fresh enough to start a connection with: more than the refresh
    /// margin left, where the margin is `REFRESH_MARGIN` or half the token's
    /// lifetime, whichever is shorter (short-lived test tokens still get
    /// used more than once).
    pub fn is_fresh(&self, now: u64) -> bool {
        let margin = (REFRESH_MARGIN.as_millis() as u64).min(self.lifetime_ms / 2);
        self.expires_at > now + margin
    }
}

/// The account as the CLI and GUI show it (never a token). Its TypeScript
/// name is `AccountBrief` (the `state` tag is `AccountState` there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "state", rename_all = "kebab-case")]
#[ts(rename = "AccountBrief")]
pub enum AccountState {
    /// Nothing to sign in with yet.
    NotConfigured {
        reason: String,
    },
    /// Credentials are there; no token fetched yet in this run.
    Ready,
    SignedIn {
        access_token_expires_at: u64,
    },
    /// Nobody has signed in yet (interactive or device-code flow, no
    /// refresh token ever stored): a first start, or after a sign-out.
    SignedOut {
        reason: String,
    },
    /// Microsoft refused the stored sign-in (or the app's secret); a person
    /// must sign in again. Delivery waits.
    SignInNeeded {
        reason: String,
    },
}

/// What `SignedOut` says, everywhere it is shown.
pub const NOT_SIGNED_IN_YET: &str =
    "Not signed in yet: sign in from the Account page, or run `postern account login`.";

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// Microsoft wants a new interactive sign-in (or a new client secret).
    #[error("sign-in needed: {0}")]
    SignInNeeded(String),
    /// Nobody has signed in yet: no refresh token was ever stored.
    #[error("{0}")]
    SignedOut(String),
    /// Something to set up first (no client id, no secret in the keychain).
    #[error("{0}")]
    NotConfigured(String),
    /// Network trouble or a hiccup at the token endpoint: try again later.
    #[error("could not reach the Microsoft sign-in service: {0}")]
    Transient(String),
    /// The token endpoint's certificate was refused (a TLS-inspecting
    /// proxy whose CA is not in `upstream.ca_file`, a wrong clock, …): what
    /// was wrong with it. Retried like a network problem; what to do is
    /// [`crate::https::UNTRUSTED_FIX`].
    #[error("Postern cannot trust the Microsoft sign-in service: {0}")]
    Untrusted(String),
    #[error(transparent)]
    Keychain(#[from] SecretError),
}

impl AuthError {
    pub fn is_transient(&self) -> bool {
        matches!(self, AuthError::Transient(_) | AuthError::Untrusted(_))
    }
}

/// What to log in with upstream.
#[derive(Debug, Clone)]
pub enum UpstreamSecret {
    /// Connector relay / Direct Send: no AUTH.
    None,
    /// AUTH LOGIN with the mailbox password (legacy basic auth).
    Password { user: String, password: Secret },
    /// AUTH XOAUTH2.
    OAuth { user: String, token: AccessToken },
}

/// Where upstream credentials come from. Cheap to clone.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    auth: UpstreamAuth,
    mailbox: String,
    flow: OAuthFlow,
    client_id: String,
    token_url: String,
    /// What the token is asked for ([`scopes`]).
    scopes: Vec<String>,
    secrets: SecretStore,
    /// Trusting `upstream.ca_file` too; `Err` when that file is unusable.
    http: Result<reqwest::Client, String>,
    /// The cached token. Holding this async mutex across a refresh is what
    /// makes refreshes single-flight: other callers wait, then reuse.
    cache: tokio::sync::Mutex<Option<AccessToken>>,
    state: Mutex<AccountState>,
}

impl TokenSource {
    pub fn new(config: &Config, secrets: SecretStore) -> TokenSource {
        let o = &config.oauth;
        let token_url = format!(
            "{}/{}/oauth2/v2.0/token",
            o.authority.trim_end_matches('/'),
            o.tenant
        );
        let http = http_client(config);
        let state = match config.upstream_gap() {
            Some(reason) if config.upstream.auth == UpstreamAuth::OAuth => {
                AccountState::NotConfigured { reason }
            }
            _ => AccountState::Ready,
        };
        TokenSource {
            inner: Arc::new(Inner {
                auth: config.upstream.auth,
                mailbox: config.upstream.mailbox.clone(),
                flow: o.flow,
                client_id: o.client_id.clone(),
                token_url,
                scopes: scopes(config),
                secrets,
                http,
                cache: tokio::sync::Mutex::new(None),
                state: Mutex::new(state),
            }),
        }
    }

    pub fn state(&self) -> AccountState {
        self.inner.state.lock().unwrap().clone()
    }

    fn set_state(&self, state: AccountState) {
        *self.inner.state.lock().unwrap() = state;
    }

    pub fn mailbox(&self) -> &str {
        &self.inner.mailbox
    }

    /// The state as far as it can be known without asking Microsoft: after
    /// a token was fetched, what happened; before, whether the keychain
    /// holds what the configured flow needs.
    pub async fn check_stored(&self) -> AccountState {
        let state = self.state();
        if state != AccountState::Ready {
            return state;
        }
        let i = &self.inner;
        let (key, missing) = match (i.auth, i.flow) {
            (UpstreamAuth::None, _) => return state,
            (UpstreamAuth::Password, _) => (
                SecretKey::MailboxPassword {
                    mailbox: i.mailbox.clone(),
                },
                AccountState::NotConfigured {
                    reason:
                        "No mailbox password in the keychain: run `postern account set-secret`."
                            .into(),
                },
            ),
            (UpstreamAuth::OAuth, OAuthFlow::ClientCredentials) => (
                SecretKey::ClientSecret {
                    client_id: i.client_id.clone(),
                },
                AccountState::NotConfigured {
                    reason: "No client secret in the keychain: run `postern account set-secret`."
                        .into(),
                },
            ),
            (UpstreamAuth::OAuth, _) => (
                SecretKey::RefreshToken {
                    client_id: i.client_id.clone(),
                },
                AccountState::SignedOut {
                    reason: NOT_SIGNED_IN_YET.into(),
                },
            ),
        };
        match i.secrets.get_async(key).await {
            Ok(Some(_)) => state,
            Ok(None) => missing,
            Err(e) => AccountState::NotConfigured {
                reason: e.to_string(),
            },
        }
    }

    /// Credentials for the next upstream connection.
    pub async fn credentials(&self) -> Result<UpstreamSecret, AuthError> {
        let user = self.inner.mailbox.clone();
        match self.inner.auth {
            UpstreamAuth::None => Ok(UpstreamSecret::None),
            UpstreamAuth::Password => {
                let key = SecretKey::MailboxPassword {
                    mailbox: user.clone(),
                };
                match self.inner.secrets.get_async(key).await? {
                    Some(password) => Ok(UpstreamSecret::Password { user, password }),
                    None => Err(AuthError::NotConfigured(format!(
                        "No password for {user} in the keychain: run `postern account set-secret` and type it."
                    ))),
                }
            }
            UpstreamAuth::OAuth => Ok(UpstreamSecret::OAuth {
                user,
                token: self.token().await?,
            }),
        }
    }

    /// A valid access token, refreshed ahead of expiry.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        let mut cache = self.inner.cache.lock().await;
        if let Some(t) = cache.as_ref().filter(|t| t.is_fresh(now_ms())) {
            return Ok(t.clone());
        }
        match self.fetch().await {
            Ok(t) => {
                self.set_state(AccountState::SignedIn {
                    access_token_expires_at: t.expires_at,
                });
                *cache = Some(t.clone());
                Ok(t)
            }
            Err(e) => {
                *cache = None;
                match &e {
                    AuthError::SignInNeeded(reason) => self.set_state(AccountState::SignInNeeded {
                        reason: reason.clone(),
                    }),
                    AuthError::SignedOut(reason) => self.set_state(AccountState::SignedOut {
                        reason: reason.clone(),
                    }),
                    AuthError::NotConfigured(reason) => {
                        self.set_state(AccountState::NotConfigured {
                            reason: reason.clone(),
                        })
                    }
                    _ => {}
                }
                Err(e)
            }
        }
    }

    /// Forgets the cached token (Exchange said 535 5.7.3 to it).
    pub async fn invalidate(&self) {
        *self.inner.cache.lock().await = None;
    }

    /// Forgets the cached token and what is known of the account, so the
    /// state is read again from the keychain: after a sign-in (a new
    /// refresh token) or a sign-out (none any more).
    pub async fn forget(&self) {
        *self.inner.cache.lock().await = None;
        if !matches!(self.state(), AccountState::NotConfigured { .. }) {
            self.set_state(AccountState::Ready);
        }
    }

    /// Marks the account as needing a sign-in (Exchange refused a fresh
    /// token). The refused token is dropped, so the next attempt fetches a
    /// new one and the state shows whether that works.
    pub async fn mark_sign_in_needed(&self, reason: &str) {
        *self.inner.cache.lock().await = None;
        self.set_state(AccountState::SignInNeeded {
            reason: reason.to_string(),
        });
    }

    async fn fetch(&self) -> Result<AccessToken, AuthError> {
        let i = &self.inner;
        if i.client_id.is_empty() {
            return Err(AuthError::NotConfigured(
                "No OAuth application is configured: set oauth.client_id.".into(),
            ));
        }
        let token_url = TokenUrl::new(i.token_url.clone())
            .map_err(|e| AuthError::NotConfigured(format!("oauth.authority: {e}")))?;
        let http = i
            .http
            .as_ref()
            .map_err(|e| AuthError::NotConfigured(e.clone()))?;
        let client = BasicClient::new(ClientId::new(i.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        if i.flow == OAuthFlow::ClientCredentials {
            let key = SecretKey::ClientSecret {
                client_id: i.client_id.clone(),
            };
            let secret = i.secrets.get_async(key).await?.ok_or_else(|| {
                AuthError::NotConfigured(
                    "No client secret in the keychain: run `postern account set-secret` and paste the app's client secret.".into(),
                )
            })?;
            let client = client.set_client_secret(ClientSecret::new(secret.expose().to_string()));
            let resp = client
                .exchange_client_credentials()
                .add_scopes(i.scopes.iter().cloned().map(Scope::new))
                .request_async(http)
                .await
                .map_err(|e| classify_token_error(e, &i.token_url))?;
            return Ok(access_token_of(&resp));
        }
        let key = SecretKey::RefreshToken {
            client_id: i.client_id.clone(),
        };
        let refresh = i
            .secrets
            .get_async(key.clone())
            .await?
            .ok_or_else(|| AuthError::SignedOut(NOT_SIGNED_IN_YET.into()))?;
        let resp = client
            .exchange_refresh_token(&RefreshToken::new(refresh.expose().to_string()))
            .add_scopes(i.scopes.iter().cloned().map(Scope::new))
            .request_async(http)
            .await
            .map_err(|e| classify_token_error(e, &i.token_url))?;
        // Microsoft rotates refresh tokens: store the new one before using
        // the access token, so the keychain always holds a live one.
        if let Some(new_refresh) = resp.refresh_token() {
            i.secrets
                .set_async(key, Secret::new(new_refresh.secret().clone()))
                .await?;
        }
        Ok(access_token_of(&resp))
    }
}

/// The HTTP client for the token (and device-code) endpoints: rustls,
/// trusting the web PKI roots and `upstream.ca_file`, no redirects.
pub(crate) fn http_client(config: &Config) -> Result<reqwest::Client, String> {
    crate::https::client(config.upstream.ca_file.as_deref(), TOKEN_TIMEOUT)
}

pub(crate) fn access_token_of(resp: &oauth2::basic::BasicTokenResponse) -> AccessToken {
    let lifetime = resp
        .expires_in()
        .unwrap_or(Duration::from_secs(3599))
        .as_millis() as u64;
    AccessToken {
        token: Secret::new(resp.access_token().secret().clone()),
        expires_at: now_ms() + lifetime,
        lifetime_ms: lifetime,
    }
}

/// `invalid_grant` / `interaction_required` (and a refused client) need a
/// person; anything else at the token endpoint is worth retrying. Decided by
/// the OAuth error code, never by the AADSTS description text.
pub(crate) fn classify_token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
    token_url: &str,
) -> AuthError {
    match e {
        RequestTokenError::ServerResponse(resp) => {
            let described = resp
                .error_description()
                .map(|d| d.lines().next().unwrap_or("").to_string())
                .unwrap_or_default();
            match resp.error() {
                BasicErrorResponseType::InvalidGrant => AuthError::SignInNeeded(format!(
                    "Microsoft no longer accepts Postern's sign-in ({described}); sign in again."
                )),
                BasicErrorResponseType::Extension(code) if code == "interaction_required" => {
                    AuthError::SignInNeeded(format!(
                        "Microsoft needs you to sign in again ({described})."
                    ))
                }
                BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                    AuthError::SignInNeeded(format!(
                        "Microsoft refused the app registration or its secret ({described}); check oauth.client_id and the client secret."
                    ))
                }
                other => AuthError::Transient(format!("{}: {described}", other.as_ref())),
            }
        }
        RequestTokenError::Request(e) => {
            let host = url::Url::parse(token_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| token_url.to_string());
            match crate::https::certificate_problem(&e, &host) {
                Some(problem) => AuthError::Untrusted(problem),
                None => AuthError::Transient(crate::https::error_chain(&e)),
            }
        }
        RequestTokenError::Parse(e, _) => {
            AuthError::Transient(format!("unexpected answer from the token endpoint: {e}"))
        }
        RequestTokenError::Other(e) => AuthError::Transient(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expires_in_s: u64, lifetime_s: u64, now: u64) -> AccessToken {
        AccessToken {
            token: Secret::new("t"),
            expires_at: now + expires_in_s * 1000,
            lifetime_ms: lifetime_s * 1000,
        }
    }

    #[test]
    fn scopes_follow_the_mode() {
        let mut c = Config::default();
        assert_eq!(scopes(&c), [DELEGATED_SCOPE, "offline_access"]);
        c.oauth.flow = OAuthFlow::ClientCredentials;
        assert_eq!(scopes(&c), [APP_SCOPE]);
        c.upstream.mode = UpstreamMode::Graph;
        assert_eq!(scopes(&c), ["https://graph.microsoft.com/.default"]);
        c.graph.endpoint = "http://127.0.0.1:4444/".into();
        assert_eq!(scopes(&c), ["http://127.0.0.1:4444/.default"]);
        c.oauth.flow = OAuthFlow::DeviceCode;
        assert_eq!(
            scopes(&c),
            [
                "http://127.0.0.1:4444/Mail.Send",
                "http://127.0.0.1:4444/Mail.ReadWrite",
                "offline_access"
            ]
        );
    }

    #[test]
    fn refresh_margin_is_five_minutes_or_half_the_lifetime() {
        let now = 1_000_000;
        // Microsoft's hour-long tokens: refreshed 5 minutes ahead.
        assert!(token(301, 3599, now).is_fresh(now));
        assert!(!token(299, 3599, now).is_fresh(now));
        // 30-second tokens: refreshed with 15 s left.
        assert!(token(16, 30, now).is_fresh(now));
        assert!(!token(15, 30, now).is_fresh(now));
    }
}
