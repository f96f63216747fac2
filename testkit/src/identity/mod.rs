//! A fake Microsoft identity platform (docs/exchange-online.md §4), served over
//! plain HTTP on `127.0.0.1:0` with axum.
//!
//! Endpoints, under `{authority}/{tenant}/oauth2/v2.0/` (any tenant string):
//! - `POST token`: `client_credentials`, `refresh_token` (rotating: each use
//!   kills the old one), `authorization_code` (PKCE S256) and
//!   `urn:ietf:params:oauth:grant-type:device_code`;
//! - `GET authorize`: signs in the client's registered user at once and
//!   redirects to the loopback `redirect_uri` with a code;
//! - `POST devicecode`: starts a device flow that a test approves with
//!   [`FakeIdentity::approve_device_code`].
//!
//! Access tokens are JWT-shaped like Microsoft's (a base64url JSON payload
//! with `aud`, `exp`, `appid`, and `roles` for app-only tokens — see
//! [`IdentityOptions::app_roles`] — or `scp` for delegated ones; the
//! signature is random bytes); refresh tokens and codes are random opaque
//! strings. [`FakeIdentity::validator`] gives the
//! fake Exchange a way to check them, [`FakeIdentity::inspector`] the fake
//! Graph.
//!
//! Resources: Exchange (`https://outlook.office365.com/.default` app-only,
//! `https://outlook.office.com/SMTP.Send` delegated) and Microsoft Graph
//! (`<graph>/.default` app-only with roles [`IdentityOptions::graph_roles`];
//! `<graph>/Mail.Send` delegated → `scp` `Mail.Send`), where `<graph>` is
//! [`GRAPH_RESOURCE`] or a resource a test added (a fake Graph's own
//! address). The token's `aud` is the resource. Errors use AAD's JSON shape
//! (`error`, `error_description` starting with `AADSTSnnnn:`, `error_codes`).

mod grants;
mod routes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Default access-token lifetime (what AAD usually answers, §4).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

/// Default device-code polling interval, seconds (AAD's value).
pub const DEFAULT_DEVICE_CODE_INTERVAL: Duration = Duration::from_secs(5);

/// How long a device code can be approved and redeemed (AAD: 15 minutes).
pub const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(900);

/// The scope an app-only (client credentials) token request must ask for.
pub const APP_SCOPE: &str = "https://outlook.office365.com/.default";

/// The app role Exchange Online needs for app-only SMTP.
pub const SMTP_APP_ROLE: &str = "SMTP.SendAsApp";

/// Microsoft Graph's resource: app-only tokens for it are asked for with
/// scope `https://graph.microsoft.com/.default`.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// Settings of the fake. Build with `..Default::default()`.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// `expires_in` of access tokens; the validator refuses them after.
    pub access_token_lifetime: Duration,
    /// The registered applications.
    pub clients: Vec<ClientRegistration>,
    /// `interval` in device-code responses (whole seconds; 0 lets tests poll
    /// without waiting).
    pub device_code_interval: Duration,
    /// The `roles` claim of app-only (client credentials) tokens: what an
    /// admin consented to. Default `["SMTP.SendAsApp"]`; empty models an
    /// app whose Exchange permission was never granted.
    pub app_roles: Vec<String>,
    /// The `roles` claim of app-only tokens for Microsoft Graph (scope
    /// `<graph>/.default`). Default `["Mail.Send"]`.
    pub graph_roles: Vec<String>,
    /// Resource strings accepted as Graph besides [`GRAPH_RESOURCE`], e.g. a
    /// fake Graph's `http://127.0.0.1:PORT` (see also
    /// [`FakeIdentity::allow_graph_resource`]).
    pub graph_resources: Vec<String>,
    /// The mailboxes an app-only (client credentials) token may sign in to
    /// SMTP as besides its registration's `user`: in Exchange, those whose
    /// FullAccess was given to the app's service principal
    /// (`Add-MailboxPermission`). Default none.
    pub app_mailboxes: Vec<String>,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        IdentityOptions {
            access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            clients: Vec::new(),
            device_code_interval: DEFAULT_DEVICE_CODE_INTERVAL,
            app_roles: vec![SMTP_APP_ROLE.to_string()],
            graph_roles: vec!["Mail.Send".to_string()],
            graph_resources: Vec::new(),
            app_mailboxes: Vec::new(),
        }
    }
}

/// One registered application and the mailbox its tokens are for.
#[derive(Clone)]
pub struct ClientRegistration {
    pub client_id: String,
    /// `None`: a public client (PKCE / device code, no secret).
    pub client_secret: Option<String>,
    /// The mailbox tokens are for.
    pub user: String,
}

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("user", &self.user)
            .finish()
    }
}

/// Decides whether an XOAUTH2 bearer token is good for a mailbox.
#[derive(Clone)]
pub struct TokenValidator(Arc<CheckFn>);

/// `(user, token) -> good?`
type CheckFn = dyn Fn(&str, &str) -> bool + Send + Sync;

impl TokenValidator {
    /// A validator from any `(user, token) -> bool` function.
    pub fn new(check: impl Fn(&str, &str) -> bool + Send + Sync + 'static) -> TokenValidator {
        TokenValidator(Arc::new(check))
    }

    /// Whether `token` is a good bearer token for `user`.
    pub fn check(&self, user: &str, token: &str) -> bool {
        (self.0)(user, token)
    }
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenValidator(..)")
    }
}

struct AccessToken {
    user: String,
    expires: Instant,
    /// The `aud` claim.
    audience: String,
    /// `roles` (app-only) or `scp` (delegated) permissions.
    permissions: Vec<String>,
    delegated: bool,
}

/// What a fake Graph learns from a bearer token issued here
/// ([`FakeIdentity::inspector`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The mailbox the token was issued for.
    pub user: String,
    /// The `aud` claim (a resource such as [`GRAPH_RESOURCE`]).
    pub audience: String,
    /// `roles` for app-only tokens, the `scp` words for delegated ones.
    pub permissions: Vec<String>,
    /// A delegated (signed-in user) token rather than an app-only one.
    pub delegated: bool,
    /// Past its lifetime (or revoked tokens are simply unknown: `None`).
    pub expired: bool,
}

/// Looks a bearer token up: `None` when it was never issued (or revoked).
#[derive(Clone)]
pub struct TokenInspector(Arc<InspectFn>);

type InspectFn = dyn Fn(&str) -> Option<TokenInfo> + Send + Sync;

impl TokenInspector {
    /// An inspector from any function (tests of a fake Graph alone).
    pub fn new(f: impl Fn(&str) -> Option<TokenInfo> + Send + Sync + 'static) -> TokenInspector {
        TokenInspector(Arc::new(f))
    }

    pub fn inspect(&self, token: &str) -> Option<TokenInfo> {
        (self.0)(token)
    }
}

impl fmt::Debug for TokenInspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenInspector(..)")
    }
}

struct RefreshToken {
    client_id: String,
    user: String,
    scope: String,
}

struct AuthCode {
    client_id: String,
    user: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
}

struct DeviceCode {
    user_code: String,
    client_id: String,
    scope: String,
    /// Set by `approve_device_code`: the user who signed in.
    approved_user: Option<String>,
    expires: Instant,
}

#[derive(Default)]
struct State {
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    /// Refresh tokens that existed and were rotated away or revoked.
    dead_refresh: HashSet<String>,
    /// AADSTS codes for the next token requests ([`FakeIdentity::push_error`]).
    errors: VecDeque<u32>,
    codes: HashMap<String, AuthCode>,
    redeemed_codes: HashSet<String>,
    devices: HashMap<String, DeviceCode>,
    /// Graph resources added at run time ([`FakeIdentity::allow_graph_resource`]).
    graph_resources: Vec<String>,
}

/// What the HTTP handlers and the validator share. The handle's guard
/// closes `shutdown`; the axum server waits on it.
struct Shared {
    opts: IdentityOptions,
    authority: String,
    state: Mutex<State>,
    issued: AtomicU64,
    requests: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn client(&self, client_id: &str) -> Option<&ClientRegistration> {
        self.opts.clients.iter().find(|c| c.client_id == client_id)
    }
}

/// Random opaque token with a readable prefix.
fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 24]>()))
}

/// Stops the server when the last handle goes.
struct Shutdown(Arc<Shared>);

impl Drop for Shutdown {
    fn drop(&mut self) {
        self.0.shutdown.send_replace(true);
    }
}

/// Handle to a running fake identity platform. Clones share it; it stops
/// when the last clone is dropped.
#[derive(Clone)]
pub struct FakeIdentity {
    shared: Arc<Shared>,
    addr: SocketAddr,
    _shutdown: Arc<Shutdown>,
}

impl fmt::Debug for FakeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeIdentity")
            .field("authority", &self.shared.authority)
            .finish()
    }
}

impl FakeIdentity {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(opts: IdentityOptions) -> FakeIdentity {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            opts,
            authority: format!("http://{addr}"),
            state: Mutex::new(State::default()),
            issued: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            shutdown: watch::channel(false).0,
        });
        let mut down = shared.shutdown.subscribe();
        let app = routes::router(shared.clone());
        tokio::spawn(async move {
            let stop = async move {
                let _ = down.wait_for(|&d| d).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await;
        });
        FakeIdentity {
            _shutdown: Arc::new(Shutdown(shared.clone())),
            shared,
            addr,
        }
    }

    /// `http://127.0.0.1:PORT`; endpoints are `{authority}/{tenant}/oauth2/v2.0/...`.
    pub fn authority(&self) -> String {
        self.shared.authority.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Checks that a bearer token was issued here, is unexpired and
    /// unrevoked, and is for the given mailbox (case-insensitive; an
    /// app-only token also for [`IdentityOptions::app_mailboxes`]). Graph
    /// tokens are refused: their audience is not Exchange.
    pub fn validator(&self) -> TokenValidator {
        let shared = self.shared.clone();
        TokenValidator::new(move |user, token| {
            let st = shared.lock();
            let granted = |t: &AccessToken| {
                !t.delegated
                    && shared
                        .opts
                        .app_mailboxes
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(user))
            };
            st.access.get(token).is_some_and(|t| {
                (t.user.eq_ignore_ascii_case(user) || granted(t))
                    && Instant::now() < t.expires
                    && t.audience.starts_with("https://outlook.office")
            })
        })
    }

    /// Tells a fake Graph who a bearer token is for, its audience,
    /// permissions and whether it expired.
    pub fn inspector(&self) -> TokenInspector {
        let shared = self.shared.clone();
        TokenInspector::new(move |token| {
            let st = shared.lock();
            st.access.get(token).map(|t| TokenInfo {
                user: t.user.clone(),
                audience: t.audience.clone(),
                permissions: t.permissions.clone(),
                delegated: t.delegated,
                expired: Instant::now() >= t.expires,
            })
        })
    }

    /// Accepts `resource` (e.g. a fake Graph's `http://127.0.0.1:PORT`) as a
    /// Graph resource in scopes from now on.
    pub fn allow_graph_resource(&self, resource: &str) {
        let resource = resource.trim_end_matches('/').to_string();
        let mut st = self.shared.lock();
        if !st.graph_resources.contains(&resource) {
            st.graph_resources.push(resource);
        }
    }

    /// Access tokens issued so far.
    pub fn issued_tokens(&self) -> u64 {
        self.shared.issued.load(Ordering::SeqCst)
    }

    /// Requests to the token endpoint so far (successful or not).
    pub fn token_requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Kills every refresh and access token issued so far.
    pub fn revoke_all(&self) {
        let mut st = self.shared.lock();
        st.access.clear();
        let dead: Vec<String> = st.refresh.drain().map(|(k, _)| k).collect();
        st.dead_refresh.extend(dead);
    }

    /// Makes the next token request fail with this AADSTS code (`"70008"` or
    /// `"AADSTS70008"`); the error name and HTTP status follow the code.
    /// Panics if the code is not a number.
    pub fn push_error(&self, aadsts: &str) {
        let digits = aadsts.trim().trim_start_matches("AADSTS");
        let code = digits
            .parse::<u32>()
            .unwrap_or_else(|_| panic!("push_error: not an AADSTS code: {aadsts:?}"));
        self.shared.lock().errors.push_back(code);
    }

    /// A refresh token for `user` via `client_id`, as if the user had signed in.
    pub fn mint_refresh_token(&self, client_id: &str, user: &str) -> String {
        let token = random_token("rt.");
        self.shared.lock().refresh.insert(
            token.clone(),
            RefreshToken {
                client_id: client_id.to_string(),
                user: user.to_string(),
                scope: grants::DELEGATED_SCOPE.to_string(),
            },
        );
        token
    }

    // authorize + device code: issue 3 (implemented: see `routes`).

    /// Approves a pending device code as its client's registered user.
    /// Returns false if no pending code has this user code.
    pub fn approve_device_code(&self, user_code: &str) -> bool {
        let mut st = self.shared.lock();
        let Some(dev) = st
            .devices
            .values_mut()
            .find(|d| d.user_code.eq_ignore_ascii_case(user_code))
        else {
            return false;
        };
        let Some(client) = self.shared.client(&dev.client_id) else {
            return false;
        };
        dev.approved_user = Some(client.user.clone());
        true
    }
}
