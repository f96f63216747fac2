//! What the access token Postern delivers with lets it do: the permissions
//! Microsoft granted, read from the token's payload (`roles` for app-only
//! tokens, `scp` for delegated ones; no signature check — nothing is
//! trusted because of it, it is only shown), and the ones the configured
//! mode needs but the token lacks, each with what breaks and the fix. The
//! token itself is never part of the answer (`get_permissions`, the account
//! page).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::claims::{self, SMTP_APP_ROLE};
use super::{AccessToken, TokenSource};
use crate::config::{Config, OAuthFlow, UpstreamAuth, UpstreamMode};

/// Graph's permission to send (`sendMail`, a draft's `send`).
pub const GRAPH_SEND: &str = "Mail.Send";
/// Graph's permission for drafts: messages too big for one request.
pub const GRAPH_READ_WRITE: &str = "Mail.ReadWrite";

/// Whose permissions the token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
pub enum GrantKind {
    /// App-only (client credentials): the `roles` claim, granted by admin consent.
    App,
    /// A signed-in person (interactive, device code): the `scp` claim.
    Delegated,
}

/// A permission the mode needs and the token does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MissingPermission {
    pub permission: String,
    /// What fails without it, in plain words.
    pub effect: String,
    /// What the admin does about it.
    pub fix: String,
}

/// `get_permissions`: what the current access token grants. Never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Permissions {
    pub kind: GrantKind,
    /// `roles` (app-only) or the `scp` words (delegated), as Microsoft wrote them.
    pub granted: Vec<String>,
    /// `aud`: the resource the token is for.
    pub audience: String,
    /// Unix milliseconds.
    pub expires_at: u64,
    /// Needed by the configured mode, absent from the token.
    pub missing: Vec<MissingPermission>,
}

const CONSENT: &str = "In Microsoft Entra ID, App registrations → Postern's app → API permissions, add the Application permission";

/// The permissions `config`'s mode and flow need, with what fails without each.
fn needed(config: &Config, kind: GrantKind) -> Vec<MissingPermission> {
    let need = |permission: &str, effect: &str, fix: String| MissingPermission {
        permission: permission.into(),
        effect: effect.into(),
        fix,
    };
    match (config.upstream.mode, kind) {
        (UpstreamMode::Graph, GrantKind::App) => vec![
            need(
                GRAPH_SEND,
                "No mail can be sent: Microsoft Graph refuses every message.",
                format!("{CONSENT} Microsoft Graph → Mail.Send and click Grant admin consent."),
            ),
            need(
                GRAPH_READ_WRITE,
                "Messages over about 3 MB (big scans) fail: they go as drafts, which need this permission. Smaller ones are sent.",
                format!("{CONSENT} Microsoft Graph → Mail.ReadWrite and click Grant admin consent."),
            ),
        ],
        (UpstreamMode::Graph, GrantKind::Delegated) => vec![
            need(
                GRAPH_SEND,
                "No mail can be sent: Microsoft Graph refuses every message.",
                "Sign in again and accept the Mail.Send permission (or have an admin grant consent for the app).".into(),
            ),
            need(
                GRAPH_READ_WRITE,
                "Messages over about 3 MB (big scans) fail: they go as drafts, which need this permission. Smaller ones are sent.",
                "Sign in again and accept the Mail.ReadWrite permission (or have an admin grant consent for the app).".into(),
            ),
        ],
        (_, GrantKind::App) => vec![need(
            SMTP_APP_ROLE,
            "Exchange refuses the sign-in (535 5.7.3): no mail can be sent.",
            format!("{CONSENT} Office 365 Exchange Online → SMTP.SendAsApp and click Grant admin consent."),
        )],
        (_, GrantKind::Delegated) => vec![need(
            "SMTP.Send",
            "Exchange refuses the sign-in (535 5.7.3): no mail can be sent.",
            "Sign in again and accept the SMTP.Send permission (or have an admin grant consent for the app).".into(),
        )],
    }
}

/// What `token` grants against what `config` needs.
pub fn of_token(config: &Config, token: &AccessToken) -> Result<Permissions, String> {
    let c = claims::decode(token.token.expose())?;
    let kind = if config.oauth.flow == OAuthFlow::ClientCredentials {
        GrantKind::App
    } else {
        GrantKind::Delegated
    };
    let granted = match kind {
        GrantKind::App => c.roles,
        GrantKind::Delegated => c.scopes,
    };
    let missing = needed(config, kind)
        .into_iter()
        .filter(|m| {
            !granted
                .iter()
                .any(|g| g.eq_ignore_ascii_case(&m.permission))
        })
        .collect();
    Ok(Permissions {
        kind,
        granted,
        audience: c.audience,
        expires_at: token.expires_at,
        missing,
    })
}

/// The permissions of the token `tokens` holds (fetched when it holds none
/// or it is about to expire, as for the next delivery). The error is a
/// plain sentence.
pub async fn current(config: &Config, tokens: &TokenSource) -> Result<Permissions, String> {
    if config.upstream.auth != UpstreamAuth::OAuth {
        return Err("Postern does not sign in with OAuth here, so there is no access token whose permissions could be shown.".into());
    }
    let token = tokens.token().await.map_err(|e| claims::explain(&e))?;
    of_token(config, &token)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    use super::*;
    use crate::secrets::Secret;

    fn token(payload: &str) -> AccessToken {
        let jwt = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode([7u8; 32])
        );
        AccessToken {
            token: Secret::new(jwt),
            expires_at: 1_767_225_600_000,
            lifetime_ms: 3_600_000,
        }
    }

    fn graph(flow: OAuthFlow) -> Config {
        let mut c = Config::default();
        c.upstream.mode = UpstreamMode::Graph;
        c.oauth.flow = flow;
        c
    }

    #[test]
    fn app_only_graph_reads_roles_and_names_what_is_missing() {
        let c = graph(OAuthFlow::ClientCredentials);
        let p = of_token(
            &c,
            &token(r#"{"aud":"https://graph.microsoft.com","roles":["Mail.Send","Mail.ReadWrite"],"scp":"ignored"}"#),
        )
        .unwrap();
        assert_eq!(p.kind, GrantKind::App);
        assert_eq!(p.granted, ["Mail.Send", "Mail.ReadWrite"]);
        assert_eq!(p.audience, "https://graph.microsoft.com");
        assert_eq!(p.expires_at, 1_767_225_600_000);
        assert!(p.missing.is_empty(), "{p:?}");

        let p = of_token(&c, &token(r#"{"roles":["Mail.Send"]}"#)).unwrap();
        let names: Vec<_> = p.missing.iter().map(|m| m.permission.as_str()).collect();
        assert_eq!(names, [GRAPH_READ_WRITE]);
        assert!(p.missing[0].effect.contains("big scans"), "{p:?}");

        // No consent at all: both, Mail.Send first.
        let p = of_token(&c, &token(r#"{"aud":"x"}"#)).unwrap();
        let names: Vec<_> = p.missing.iter().map(|m| m.permission.as_str()).collect();
        assert_eq!(names, [GRAPH_SEND, GRAPH_READ_WRITE]);
        assert!(p.missing[0].fix.contains("Grant admin consent"), "{p:?}");
    }

    #[test]
    fn delegated_reads_scp_words() {
        let c = graph(OAuthFlow::DeviceCode);
        let p = of_token(&c, &token(r#"{"scp":"Mail.Send User.Read","roles":["x"]}"#)).unwrap();
        assert_eq!(p.kind, GrantKind::Delegated);
        assert_eq!(p.granted, ["Mail.Send", "User.Read"]);
        let names: Vec<_> = p.missing.iter().map(|m| m.permission.as_str()).collect();
        assert_eq!(names, [GRAPH_READ_WRITE], "big scans need it delegated too");
        let p = of_token(&c, &token(r#"{"scp":"Mail.Send Mail.ReadWrite"}"#)).unwrap();
        assert!(p.missing.is_empty(), "{p:?}");
        let mut smtp = Config::default();
        smtp.oauth.flow = OAuthFlow::Interactive;
        let p = of_token(&smtp, &token(r#"{"scp":"offline_access"}"#)).unwrap();
        assert_eq!(p.missing[0].permission, "SMTP.Send");
    }

    #[test]
    fn the_answer_never_holds_the_token() {
        let c = graph(OAuthFlow::ClientCredentials);
        let t = token(r#"{"roles":["Mail.Send"]}"#);
        let answer = serde_json::to_string(&of_token(&c, &t).unwrap()).unwrap();
        assert!(!answer.contains(t.token.expose()), "{answer}");
        assert!(!answer.contains("eyJ"), "{answer}");
    }

    #[test]
    fn a_token_that_is_not_a_jwt_is_explained() {
        let c = graph(OAuthFlow::ClientCredentials);
        let e = of_token(&c, &token("x")).map(|_| ()).unwrap_err();
        assert!(e.contains("not a JWT") || e.contains("permissions"), "{e}");
        let mut t = token("{}");
        t.token = Secret::new("opaque".to_string());
        assert!(of_token(&c, &t).unwrap_err().contains("not a JWT"));
    }
}
