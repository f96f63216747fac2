//! The sign-in (client submission): a token (or the password) can be had,
//! and Exchange accepts it at AUTH. The connection is closed with QUIT
//! right after: no mail is sent.

use super::{Check, Context};
use crate::auth::{AuthError, TokenSource, UpstreamSecret};
use crate::config::{UpstreamAuth, UpstreamMode};
use crate::delivery::upstream::{Connection, Credentials};
use crate::delivery::Transcript;
use crate::spool::now_ms;

pub(crate) async fn check(cx: &mut Context<'_>) {
    let u = &cx.config.upstream;
    let token_title = "Sign-in credentials";
    let auth_title = format!("SMTP AUTH as {}", u.mailbox);
    if !u.mode.signs_in() || u.auth == UpstreamAuth::None {
        let why = if !u.mode.signs_in() {
            "connector relay and Direct Send do not sign in"
        } else {
            "upstream.auth = \"none\""
        };
        cx.push(Check::skip("auth.token", token_title, why));
        cx.push(Check::skip("auth.smtp", "SMTP AUTH", why));
        return;
    }
    if let Some(gap) = cx.config.upstream_gap() {
        cx.push(Check::skip("auth.token", token_title, gap.clone()));
        cx.push(Check::skip("auth.smtp", auth_title, gap));
        return;
    }
    if !cx.keychain_ok {
        let why = "the keychain does not hold what the sign-in needs (see above)";
        cx.push(Check::skip("auth.token", token_title, why));
        cx.push(Check::skip("auth.smtp", auth_title, why));
        return;
    }
    let tokens = TokenSource::new(cx.config, cx.secrets.clone());
    let secret = match tokens.credentials().await {
        Ok(s) => s,
        Err(e) => {
            let (found, fix) = auth_error(&e);
            cx.push(Check::fail("auth.token", token_title, found, fix));
            cx.push(Check::skip(
                "auth.smtp",
                auth_title,
                "no credentials to sign in with",
            ));
            return;
        }
    };
    let (creds, found) = match secret {
        UpstreamSecret::None => (Credentials::None, "none needed".to_string()),
        UpstreamSecret::Password { user, password } => (
            Credentials::Login { user, password },
            "the mailbox password is stored".to_string(),
        ),
        UpstreamSecret::OAuth { user, token } => {
            if u.mode == UpstreamMode::Graph {
                cx.graph_token = Some(token.token.clone());
            }
            let minutes = token.expires_at.saturating_sub(now_ms()) / 60_000;
            let found = format!(
                "Microsoft issued an access token for {user} (valid {minutes} more minutes)"
            );
            (
                Credentials::XOAuth2 {
                    user,
                    token: token.token,
                },
                found,
            )
        }
    };
    cx.push(Check::ok("auth.token", token_title, found));
    if u.mode == UpstreamMode::Graph {
        cx.push(Check::skip(
            "auth.smtp",
            "SMTP AUTH",
            "Microsoft Graph mode does not use SMTP",
        ));
        return;
    }

    if !cx.tls_ok {
        cx.push(Check::skip(
            "auth.smtp",
            auth_title,
            "no encrypted connection to sign in over (see above)",
        ));
        return;
    }
    let Some(settings) = super::network::settings(cx) else {
        cx.push(Check::skip("auth.smtp", auth_title, "no upstream host"));
        return;
    };
    let mut transcript = Transcript::default();
    match Connection::open(&settings, &creds, &mut transcript).await {
        Ok(conn) => {
            conn.quit(&mut transcript).await;
            cx.push(Check::ok(
                "auth.smtp",
                auth_title,
                format!("{} accepted the sign-in (nothing was sent)", settings.host),
            ));
        }
        Err(e) => {
            let v = e.verdict();
            let found = match e.reply() {
                Some(r) => format!("{r} — {}", v.summary),
                None => format!("{e} — {}", v.summary),
            };
            let fix = if v.fix.contains("<mailbox>") {
                v.fix.replace("<mailbox>", &u.mailbox)
            } else {
                v.fix.to_string()
            };
            cx.push(Check::fail("auth.smtp", auth_title, found, fix));
        }
    }
}

fn auth_error(e: &AuthError) -> (String, String) {
    match e {
        AuthError::SignInNeeded(reason) => (
            reason.clone(),
            "Run `postern account login` (or, for client-credentials, check the client secret and store a new one with `postern account set-secret`).".into(),
        ),
        AuthError::NotConfigured(reason) => (reason.clone(), reason.clone()),
        AuthError::SignedOut(reason) => (
            reason.clone(),
            "Sign in from the Account page, or run `postern account login`.".into(),
        ),
        AuthError::Transient(reason) => (
            format!("could not reach the Microsoft sign-in service: {reason}"),
            "Check that this machine can reach login.microsoftonline.com over HTTPS (port 443), through any proxy.".into(),
        ),
        AuthError::Untrusted(_) => (e.to_string(), crate::https::UNTRUSTED_FIX.into()),
        AuthError::Keychain(k) => (
            format!("cannot read the keychain: {k}"),
            "Start or unlock the keychain (see the keychain check).".into(),
        ),
    }
}
