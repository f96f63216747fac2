//! The configuration (already loaded and valid by the time we run: what
//! is missing or contradictory for the chosen mode) and the keychain (the
//! secret the sign-in needs can be read).

use std::path::Path;

use super::{Check, Context};
use crate::config::{OAuthFlow, UpstreamAuth, UpstreamMode, OFFICE365_SUBMISSION_HOST};
use crate::secrets::{SecretError, SecretKey};

pub(crate) fn config(cx: &mut Context<'_>, source: &Path) {
    let c = cx.config;
    let u = &c.upstream;
    let found = if source.exists() {
        format!("{} is valid", source.display())
    } else {
        format!("{} does not exist; the defaults apply", source.display())
    };
    cx.push(Check::ok("config.valid", "Configuration file", found));

    let title = "Mailbox Postern sends as";
    cx.push(match (u.mode, u.mailbox.is_empty()) {
        (UpstreamMode::Submission, true) => Check::fail(
            "config.mailbox",
            title,
            "upstream.mailbox is not set",
            "Set upstream.mailbox to the Microsoft 365 mailbox Postern signs in as, e.g. scanner@contoso.com.",
        ),
        (_, false) => Check::ok("config.mailbox", title, u.mailbox.clone()),
        (_, true) => Check::ok(
            "config.mailbox",
            title,
            format!(
                "none needed for {}: devices' own senders are used",
                mode_name(u.mode)
            ),
        ),
    });

    cx.push(mode_check(cx.config));

    let title = "OAuth app registration";
    cx.push(match u.auth {
        UpstreamAuth::OAuth if c.oauth.client_id.is_empty() => Check::fail(
            "config.oauth",
            title,
            "oauth.client_id is not set",
            "Set oauth.client_id to the Application (client) id of your app registration in Microsoft Entra (see the README, \"Signing in to Microsoft 365\").",
        ),
        UpstreamAuth::OAuth => Check::ok(
            "config.oauth",
            title,
            format!(
                "client id {}, tenant {}, {} flow",
                c.oauth.client_id,
                c.oauth.tenant,
                flow_name(c.oauth.flow)
            ),
        ),
        other => Check::skip(
            "config.oauth",
            title,
            format!("not used: upstream.auth = \"{}\"", auth_name(other)),
        ),
    });
}

fn mode_check(c: &crate::config::Config) -> Check {
    let u = &c.upstream;
    let title = "Upstream mode";
    let id = "config.mode";
    let endpoint = if u.effective_host().is_empty() {
        format!("the MX host of {}", u.effective_domain())
    } else {
        u.effective_host().to_string()
    };
    let summary = format!("{} to {endpoint}:{}", mode_name(u.mode), u.effective_port());
    match u.mode {
        UpstreamMode::Graph => Check::ok(
            id,
            title,
            format!("Microsoft Graph at {}", c.graph.root()),
        ),
        UpstreamMode::Submission if u.auth == UpstreamAuth::None => Check::warn(
            id,
            title,
            format!("{summary} without signing in (upstream.auth = \"none\")"),
            "Client submission needs a sign-in: set upstream.auth = \"oauth\" (or \"password\" while Microsoft still allows it).",
        ),
        UpstreamMode::Relay | UpstreamMode::DirectSend
            if u.effective_host().eq_ignore_ascii_case(OFFICE365_SUBMISSION_HOST) =>
        {
            Check::warn(
                id,
                title,
                format!("{summary}: that is the client submission endpoint"),
                "Connector relay and Direct Send go to your tenant's MX endpoint (e.g. contoso-com.mail.protection.outlook.com): clear upstream.host to use the MX record, or switch upstream.mode to \"submission\".",
            )
        }
        UpstreamMode::DirectSend => {
            let domain = u.effective_domain();
            let others: Vec<String> = u
                .internal_domains()
                .into_iter()
                .filter(|d| *d != domain && !d.ends_with(&format!(".{domain}")))
                .collect();
            if others.is_empty() {
                Check::ok(
                    id,
                    title,
                    format!(
                        "{summary}; recipients in {} only",
                        u.internal_domains().join(", ")
                    ),
                )
            } else {
                Check::warn(
                    id,
                    title,
                    format!(
                        "{summary}; upstream.accepted_domains lists {} besides {domain}",
                        others.join(", ")
                    ),
                    "Direct Send delivers only to your tenant's own accepted domains: make sure these are accepted domains of the same tenant (Exchange admin center → Mail flow → Accepted domains), or mail to them is refused with 5.7.54; use client submission or a connector for outside recipients.",
                )
            }
        }
        _ => Check::ok(id, title, summary),
    }
}

pub(crate) async fn keychain(cx: &mut Context<'_>) {
    let c = cx.config;
    let u = &c.upstream;
    let title = "Secret in the OS keychain";
    let id = "keychain.secret";
    let (key, what, fix) = match (u.auth, c.oauth.flow) {
        (UpstreamAuth::None, _) => {
            cx.keychain_ok = true;
            cx.push(Check::skip(id, title, "nothing to read: Postern does not sign in (upstream.auth = \"none\")"));
            return device_passwords(cx).await;
        }
        (UpstreamAuth::Password, _) if u.mailbox.is_empty() => {
            cx.push(Check::skip(id, title, "no mailbox configured"));
            return device_passwords(cx).await;
        }
        (UpstreamAuth::OAuth, _) if c.oauth.client_id.is_empty() => {
            cx.push(Check::skip(id, title, "no oauth.client_id configured"));
            return device_passwords(cx).await;
        }
        (UpstreamAuth::Password, _) => (
            SecretKey::MailboxPassword {
                mailbox: u.mailbox.clone(),
            },
            format!("the password of {}", u.mailbox),
            "Run `postern account set-secret` and type the mailbox password.".to_string(),
        ),
        (UpstreamAuth::OAuth, OAuthFlow::ClientCredentials) => (
            SecretKey::ClientSecret {
                client_id: c.oauth.client_id.clone(),
            },
            "the app's client secret".to_string(),
            "Run `postern account set-secret < client-secret.txt` with the client secret of the app registration.".to_string(),
        ),
        (UpstreamAuth::OAuth, flow) => (
            SecretKey::RefreshToken {
                client_id: c.oauth.client_id.clone(),
            },
            "a sign-in (refresh token)".to_string(),
            if flow == OAuthFlow::DeviceCode {
                "Run `postern account login --device-code` and sign in as the mailbox."
            } else {
                "Run `postern account login` and sign in as the mailbox (add --device-code on a machine without a browser)."
            }
            .to_string(),
        ),
    };
    let check = match cx.secrets.get_async(key).await {
        Ok(Some(_)) => {
            cx.keychain_ok = true;
            Check::ok(id, title, format!("{what} is stored"))
        }
        Ok(None) => Check::fail(id, title, format!("{what} is not in the keychain"), fix),
        Err(e) => keychain_error(id, title, &e),
    };
    cx.push(check);
    device_passwords(cx).await;
}

/// Each device user in `listener.users` has a password stored.
async fn device_passwords(cx: &mut Context<'_>) {
    let users = cx.config.listener.users.clone();
    if users.is_empty() {
        return;
    }
    let title = "Device passwords in the OS keychain";
    let id = "keychain.devices";
    let mut missing = Vec::new();
    for user in &users {
        match cx
            .secrets
            .get_async(SecretKey::DevicePassword { user: user.clone() })
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => missing.push(user.clone()),
            Err(e) => {
                cx.push(keychain_error(id, title, &e));
                return;
            }
        }
    }
    cx.push(if missing.is_empty() {
        Check::ok(id, title, format!("stored for {}", users.join(", ")))
    } else {
        Check::warn(
            id,
            title,
            format!(
                "no password for {}: those devices cannot log in",
                missing.join(", ")
            ),
            format!(
                "Run `postern account set-secret --device {}` for each and type its password.",
                missing[0]
            ),
        )
    });
}

fn keychain_error(id: &'static str, title: &str, e: &SecretError) -> Check {
    let fix = match e {
        SecretError::Locked => "Unlock the keychain (log in to the desktop, or run `gnome-keyring-daemon --unlock`), then run diagnose again.",
        _ => "On Linux Postern needs a Secret Service (gnome-keyring or KWallet) in the session: on a server start one with `dbus-run-session -- sh -c 'gnome-keyring-daemon --unlock; postern serve'`.",
    };
    Check::fail(id, title, format!("cannot read the keychain: {e}"), fix)
}

pub(crate) fn mode_name(mode: UpstreamMode) -> &'static str {
    match mode {
        UpstreamMode::Submission => "client submission",
        UpstreamMode::Relay => "connector relay",
        UpstreamMode::DirectSend => "Direct Send",
        UpstreamMode::Graph => "Microsoft Graph",
    }
}

fn auth_name(auth: UpstreamAuth) -> &'static str {
    match auth {
        UpstreamAuth::OAuth => "oauth",
        UpstreamAuth::Password => "password",
        UpstreamAuth::None => "none",
    }
}

fn flow_name(flow: OAuthFlow) -> &'static str {
    match flow {
        OAuthFlow::Interactive => "interactive",
        OAuthFlow::DeviceCode => "device-code",
        OAuthFlow::ClientCredentials => "client-credentials",
    }
}
