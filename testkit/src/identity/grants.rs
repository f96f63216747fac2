//! The token endpoint's grants and the device-code start, as functions from a
//! form to a JSON answer or an AAD-shaped error. No HTTP here: `routes` wraps
//! these.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{
    random_token, AccessToken, ClientRegistration, DeviceCode, RefreshToken, Shared, State,
    APP_SCOPE, DEVICE_CODE_LIFETIME, GRAPH_RESOURCE,
};

/// The delegated scope Postern asks for (§4).
pub const DELEGATED_SCOPE: &str = "https://outlook.office.com/SMTP.Send offline_access";

/// The device-code grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An AAD error: HTTP status, `error`, and the AADSTS code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
}

impl OAuthError {
    /// The error AAD gives for an AADSTS code (status, error name).
    pub fn from_code(code: u32) -> OAuthError {
        let (status, error) = match code {
            50076 | 50079 | 50158 => (400, "interaction_required"),
            7000215 | 7000218 => (401, "invalid_client"),
            700016 => (400, "unauthorized_client"),
            70016 => (400, "authorization_pending"),
            70020 => (400, "expired_token"),
            70003 => (400, "unsupported_grant_type"),
            70011 => (400, "invalid_scope"),
            900144 | 90014 => (400, "invalid_request"),
            50196 => (503, "temporarily_unavailable"),
            _ => (400, "invalid_grant"),
        };
        OAuthError {
            status,
            error,
            code,
        }
    }

    /// The JSON body, in AAD's shape.
    pub fn body(&self) -> Value {
        let text = match self.code {
            70008 => "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            700082 => "The refresh token has expired due to inactivity. The token was inactive for 90.00:00:00.",
            50173 => "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
            70043 => "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
            54005 => "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            50076 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
            50079 => "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
            65001 => "The user or administrator has not consented to use the application.",
            53003 => "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
            7000215 => "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            7000218 => "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            700016 => "Application was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant.",
            70016 => "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            70020 => "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            70003 => "The app requested an unsupported grant type.",
            70011 => "The provided value for the input parameter 'scope' is not valid.",
            900144 => "The request body must contain the following parameter: 'grant_type'.",
            90014 => "A required field is missing from the request.",
            9002313 => "Invalid request. Request is malformed or invalid.",
            501481 => "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            50011 => "The redirect URI specified in the request does not match the redirect URIs configured for the application.",
            _ => "Error injected by the Postern testkit fake.",
        };
        let trace = hex::encode(rand::random::<[u8; 16]>());
        let timestamp = crate::clock::aad_timestamp(SystemTime::now());
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {trace}\r\nTimestamp: {timestamp}",
                self.code
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": trace,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        })
    }
}

type Form = HashMap<String, String>;
type Answer = Result<Value, OAuthError>;

fn err(code: u32) -> OAuthError {
    OAuthError::from_code(code)
}

fn field<'f>(form: &'f Form, name: &str) -> Result<&'f str, OAuthError> {
    form.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| err(90014))
}

/// Finds the client and checks its secret. Confidential clients must send
/// the right secret; public clients' (absent) secret is not checked unless
/// `secret_required` (client credentials needs one).
fn authenticate<'s>(
    shared: &'s Shared,
    form: &Form,
    secret_required: bool,
) -> Result<&'s ClientRegistration, OAuthError> {
    let client_id = field(form, "client_id")?;
    let client = shared.client(client_id).ok_or_else(|| err(700016))?;
    let sent = form.get("client_secret").filter(|s| !s.is_empty());
    match (&client.client_secret, sent) {
        (Some(expected), Some(sent)) if expected == sent => Ok(client),
        (Some(_), Some(_)) => Err(err(7000215)),
        (Some(_), None) => Err(err(7000218)),
        (None, _) if secret_required => Err(err(7000218)),
        (None, _) => Ok(client),
    }
}

/// The scope as AAD echoes it: without the OpenID/offline extras.
fn echoed_scope(scope: &str) -> String {
    scope
        .split_whitespace()
        .filter(|s| !matches!(*s, "offline_access" | "openid" | "profile" | "email"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Issues an access token (and for delegated grants a refresh token).
fn issue(
    shared: &Shared,
    st: &mut State,
    client_id: &str,
    user: &str,
    scope: &str,
    delegated: bool,
) -> Value {
    let lifetime = shared.opts.access_token_lifetime;
    let graph = graph_resource(shared, st, scope);
    let (access, audience, permissions) =
        access_jwt(shared, client_id, user, scope, delegated, graph, lifetime);
    st.access.insert(
        access.clone(),
        AccessToken {
            user: user.to_string(),
            expires: Instant::now() + lifetime,
            audience,
            permissions,
            delegated,
        },
    );
    shared.issued.fetch_add(1, Ordering::SeqCst);
    let secs = lifetime.as_secs();
    let mut body = json!({
        "token_type": "Bearer",
        "scope": echoed_scope(scope),
        "expires_in": secs,
        "ext_expires_in": secs,
        "access_token": access,
    });
    if delegated {
        let refresh = random_token("rt.");
        st.refresh.insert(
            refresh.clone(),
            RefreshToken {
                client_id: client_id.to_string(),
                user: user.to_string(),
                scope: scope.to_string(),
            },
        );
        body["refresh_token"] = Value::String(refresh);
    }
    body
}

/// A JWT-shaped access token as Microsoft issues for Exchange: header,
/// base64url JSON claims, and random bytes for the signature (which also
/// make each token unique).
/// The Graph resource a scope names (`<graph>/.default`,
/// `<graph>/Mail.Send`), if any: [`GRAPH_RESOURCE`], one in the options or
/// one added at run time.
pub fn graph_resource(shared: &Shared, st: &State, scope: &str) -> Option<String> {
    echoed_scope(scope).split_whitespace().find_map(|word| {
        let (resource, _) = word.rsplit_once('/')?;
        let known = resource == GRAPH_RESOURCE
            || shared
                .opts
                .graph_resources
                .iter()
                .any(|r| r.trim_end_matches('/') == resource)
            || st.graph_resources.iter().any(|r| r == resource);
        known.then(|| resource.to_string())
    })
}

/// Returns the token, its `aud` and its permissions (`roles` or `scp`).
fn access_jwt(
    shared: &Shared,
    client_id: &str,
    user: &str,
    scope: &str,
    delegated: bool,
    graph: Option<String>,
    lifetime: std::time::Duration,
) -> (String, String, Vec<String>) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let audience = match (&graph, delegated) {
        (Some(g), _) => g.clone(),
        (None, true) => "https://outlook.office.com".to_string(),
        (None, false) => "https://outlook.office365.com".to_string(),
    };
    let mut claims = json!({
        "aud": audience,
        "iss": format!("{}/", shared.authority),
        "iat": now,
        "nbf": now,
        "exp": now + lifetime.as_secs(),
        "appid": client_id,
        "ver": "1.0",
    });
    let permissions: Vec<String> = if delegated {
        let scp: Vec<String> = echoed_scope(scope)
            .split_whitespace()
            .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
            .collect();
        claims["upn"] = json!(user);
        claims["scp"] = json!(scp.join(" "));
        scp
    } else {
        let roles = if graph.is_some() {
            shared.opts.graph_roles.clone()
        } else {
            shared.opts.app_roles.clone()
        };
        claims["roles"] = json!(roles);
        roles
    };
    let header = json!({ "typ": "JWT", "alg": "RS256", "x5t": "postern-testkit" });
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
    );
    (token, audience, permissions)
}

/// `POST {tenant}/oauth2/v2.0/token`.
pub fn token(shared: &Shared, form: &Form) -> Answer {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(code) = shared.lock().errors.pop_front() {
        return Err(err(code));
    }
    let grant = form
        .get("grant_type")
        .map(String::as_str)
        .ok_or_else(|| err(900144))?;
    match grant {
        "client_credentials" => client_credentials(shared, form),
        "refresh_token" => refresh_token(shared, form),
        "authorization_code" => authorization_code(shared, form),
        DEVICE_CODE_GRANT => device_code(shared, form),
        _ => Err(err(70003)),
    }
}

fn client_credentials(shared: &Shared, form: &Form) -> Answer {
    let client = authenticate(shared, form, true)?;
    let scope = form.get("scope").map(String::as_str).unwrap_or_default();
    let mut st = shared.lock();
    let graph_default =
        graph_resource(shared, &st, scope).is_some_and(|g| scope.trim() == format!("{g}/.default"));
    if scope != APP_SCOPE && !graph_default {
        return Err(err(70011));
    }
    Ok(issue(
        shared,
        &mut st,
        &client.client_id,
        &client.user,
        scope.trim(),
        false,
    ))
}

fn refresh_token(shared: &Shared, form: &Form) -> Answer {
    let client = authenticate(shared, form, false)?;
    let token = field(form, "refresh_token")?;
    let mut st = shared.lock();
    if st.dead_refresh.contains(token) {
        return Err(err(70008));
    }
    let Some(old) = st.refresh.get(token) else {
        return Err(err(9002313));
    };
    if old.client_id != client.client_id {
        return Err(err(70008));
    }
    let old = st.refresh.remove(token).expect("present");
    st.dead_refresh.insert(token.to_string());
    let scope = form.get("scope").cloned().unwrap_or(old.scope);
    Ok(issue(
        shared,
        &mut st,
        &client.client_id,
        &old.user,
        &scope,
        true,
    ))
}

/// BASE64URL(SHA256(verifier)), the S256 PKCE challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorization_code(shared: &Shared, form: &Form) -> Answer {
    let client = authenticate(shared, form, false)?;
    let code = field(form, "code")?;
    let redirect_uri = field(form, "redirect_uri")?;
    let verifier = field(form, "code_verifier")?;
    let mut st = shared.lock();
    if st.redeemed_codes.contains(code) {
        return Err(err(54005));
    }
    let Some(grant) = st.codes.remove(code) else {
        return Err(err(70008));
    };
    st.redeemed_codes.insert(code.to_string());
    if grant.client_id != client.client_id {
        return Err(err(70008));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(err(50011));
    }
    if pkce_challenge(verifier) != grant.challenge {
        return Err(err(501481));
    }
    Ok(issue(
        shared,
        &mut st,
        &grant.client_id,
        &grant.user,
        &grant.scope,
        true,
    ))
}

fn device_code(shared: &Shared, form: &Form) -> Answer {
    let client = authenticate(shared, form, false)?;
    let device_code = field(form, "device_code")?;
    let mut st = shared.lock();
    let Some(dev) = st.devices.get(device_code) else {
        return Err(err(70008));
    };
    if dev.client_id != client.client_id {
        return Err(err(70008));
    }
    if Instant::now() >= dev.expires {
        st.devices.remove(device_code);
        return Err(err(70020));
    }
    let Some(user) = dev.approved_user.clone() else {
        return Err(err(70016));
    };
    let dev = st.devices.remove(device_code).expect("present");
    Ok(issue(
        shared,
        &mut st,
        &dev.client_id,
        &user,
        &dev.scope,
        true,
    ))
}

/// `POST {tenant}/oauth2/v2.0/devicecode`.
pub fn start_device_code(shared: &Shared, form: &Form) -> Answer {
    let client = authenticate(shared, form, false)?;
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| DELEGATED_SCOPE.to_string());
    let device_code = random_token("dc.");
    let alphabet = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let user_code: String = (0..9)
        .map(|_| char::from(alphabet[rand::random::<usize>() % alphabet.len()]))
        .collect();
    let verification_uri = format!("{}/devicelogin", shared.authority);
    shared.lock().devices.insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            client_id: client.client_id.clone(),
            scope,
            approved_user: None,
            expires: Instant::now() + DEVICE_CODE_LIFETIME,
        },
    );
    Ok(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "expires_in": DEVICE_CODE_LIFETIME.as_secs(),
        "interval": shared.opts.device_code_interval.as_secs(),
        "message": format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_example() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn error_mapping() {
        for (code, error, status) in [
            (70008, "invalid_grant", 400),
            (700082, "invalid_grant", 400),
            (50076, "interaction_required", 400),
            (7000215, "invalid_client", 401),
            (70016, "authorization_pending", 400),
        ] {
            let e = OAuthError::from_code(code);
            assert_eq!((e.error, e.status), (error, status), "{code}");
            let body = e.body();
            assert_eq!(body["error_codes"][0], code);
            assert!(body["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}: ")));
        }
    }
}
