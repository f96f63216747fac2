//! "Verify" for app-only sign-in (client credentials): fetch a token with the
//! stored client secret and show what Microsoft granted in it — the `roles`
//! claim (`SMTP.SendAsApp` when the Exchange permission was consented) and
//! the audience. The token itself is never handed out; its payload is only
//! decoded for display (no signature check: nothing is trusted because of it).

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{AuthError, TokenSource};
use crate::config::{Config, OAuthFlow, UpstreamAuth};
use crate::secrets::SecretStore;

/// The role Exchange Online needs for app-only SMTP (docs/exchange-online.md §4).
pub const SMTP_APP_ROLE: &str = "SMTP.SendAsApp";

/// What a token's payload says, as far as the window shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Claims {
    /// App roles granted (app-only tokens); empty when none were consented.
    pub roles: Vec<String>,
    /// Delegated permissions (`scp`, space-separated in the token).
    pub scopes: Vec<String>,
    /// `aud`: the resource the token is for.
    pub audience: String,
    /// `exp` in unix seconds, when present.
    pub exp: Option<u64>,
}

/// The answer to "check the app token": never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "AppToken")]
pub struct AppTokenCheck {
    pub roles: Vec<String>,
    /// Unix milliseconds.
    pub expires_at: u64,
    pub audience: String,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    aud: Audience,
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    scp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

/// Decodes a JWT's payload (the middle, base64url JSON part).
pub fn decode(token: &str) -> Result<Claims, String> {
    let not_jwt = || {
        "the access token Microsoft issued is not a JWT, so its permissions cannot be shown"
            .to_string()
    };
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt());
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(payload))
        .map_err(|_| not_jwt())?;
    let p: Payload = serde_json::from_slice(&bytes).map_err(|_| not_jwt())?;
    let audience = match p.aud {
        Audience::One(a) => a,
        Audience::Many(a) => a.join(" "),
        Audience::None => String::new(),
    };
    Ok(Claims {
        roles: p.roles,
        scopes: p
            .scp
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
        audience,
        exp: p.exp,
    })
}

/// Fetches an app-only token with the stored client secret and reports its
/// roles. Only for `upstream.auth = "oauth"` with the client-credentials
/// flow; the error is a plain sentence (AADSTS codes explained).
pub async fn check_app_token(
    config: &Config,
    secrets: SecretStore,
) -> Result<AppTokenCheck, String> {
    if config.upstream.auth != UpstreamAuth::OAuth
        || config.oauth.flow != OAuthFlow::ClientCredentials
    {
        return Err("Checking the app's permissions is for app-only sign-in: set upstream.auth = \"oauth\" and oauth.flow = \"client-credentials\" first.".into());
    }
    if config.oauth.client_id.is_empty() {
        return Err("Set oauth.client_id to the app registration's client id first.".into());
    }
    if matches!(
        config.oauth.tenant.to_ascii_lowercase().as_str(),
        "organizations" | "common" | "consumers"
    ) {
        return Err(format!(
            "App-only sign-in needs your tenant: set oauth.tenant to your domain (e.g. contoso.com) or the tenant id instead of {:?}.",
            config.oauth.tenant
        ));
    }
    let token = TokenSource::new(config, secrets)
        .token()
        .await
        .map_err(|e| explain(&e))?;
    let claims = decode(token.token.expose())?;
    Ok(AppTokenCheck {
        roles: claims.roles,
        expires_at: token.expires_at,
        audience: claims.audience,
    })
}

/// The error, with what to do for the AADSTS codes an admin meets when
/// setting up an app registration.
pub fn explain(e: &AuthError) -> String {
    let text = e.to_string();
    let hint = [
        ("AADSTS7000215", "The client secret is wrong: paste the secret's Value (shown once when it was created), not its Secret ID."),
        ("AADSTS7000222", "The client secret has expired: create a new one under Certificates & secrets and store it."),
        ("AADSTS700016", "Microsoft does not know this client id in that tenant: check oauth.client_id and oauth.tenant, and that the app registration is in this tenant."),
        ("AADSTS90002", "Microsoft does not know this tenant: set oauth.tenant to your domain or the tenant id."),
        ("AADSTS50059", "App-only sign-in needs your tenant: set oauth.tenant to your domain or the tenant id."),
        ("AADSTS7000218", "No client secret was sent: store the app's client secret."),
        ("AADSTS70011", "Microsoft refused the scope: the app asks for https://outlook.office365.com/.default."),
    ]
    .iter()
    .find(|(code, _)| text.contains(&format!("{code}:")))
    .map(|(_, hint)| *hint);
    match hint {
        Some(h) => format!("{h} ({text})"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode([7u8; 32])
        )
    }

    #[test]
    fn decodes_roles_audience_and_expiry() {
        let c = decode(&jwt(
            r#"{"aud":"https://outlook.office365.com","roles":["SMTP.SendAsApp","full_access_as_app"],"exp":1767225600,"oid":"x"}"#,
        ))
        .unwrap();
        assert_eq!(c.roles, [SMTP_APP_ROLE, "full_access_as_app"]);
        assert_eq!(c.audience, "https://outlook.office365.com");
        assert_eq!(c.exp, Some(1767225600));
    }

    #[test]
    fn no_roles_means_none_granted() {
        let c = decode(&jwt(r#"{"aud":["a","b"]}"#)).unwrap();
        assert!(c.roles.is_empty());
        assert_eq!(c.audience, "a b");
        // Padded base64 is taken too.
        let padded = format!("h.{}.s", URL_SAFE.encode(r#"{"aud":"x"}"#));
        assert!(padded.contains('='), "{padded}");
        assert_eq!(decode(&padded).unwrap().audience, "x");
    }

    #[test]
    fn refuses_what_is_not_a_jwt() {
        for t in [
            "at.0123",
            "a.b",
            "a.b.c.d",
            "a.!!!.c",
            &format!("a.{}.c", URL_SAFE_NO_PAD.encode("[1]")),
        ] {
            let e = decode(t).unwrap_err();
            assert!(e.contains("not a JWT"), "{t}: {e}");
        }
    }

    #[test]
    fn explains_aadsts_codes() {
        let e = AuthError::SignInNeeded("Microsoft refused the app registration or its secret (AADSTS7000215: Invalid client secret provided.)".into());
        let text = explain(&e);
        assert!(text.starts_with("The client secret is wrong"), "{text}");
        assert!(text.contains("AADSTS7000215"), "{text}");
        let plain = AuthError::Transient("timeout".into());
        assert_eq!(explain(&plain), plain.to_string());
    }

    #[tokio::test]
    async fn refuses_flows_that_are_not_app_only() {
        let c = Config::default();
        let e = check_app_token(&c, SecretStore::new()).await.unwrap_err();
        assert!(e.contains("client-credentials"), "{e}");
        let mut c = Config::default();
        c.oauth.flow = OAuthFlow::ClientCredentials;
        c.oauth.client_id = "app".into();
        let e = check_app_token(&c, SecretStore::new()).await.unwrap_err();
        assert!(e.contains("oauth.tenant"), "{e}");
    }
}
