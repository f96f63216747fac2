//! Graph mode's checks: TLS to `graph.endpoint` (with the client delivery
//! uses, so `upstream.ca_file` counts), the permissions in the access
//! token (`roles` app-only, `scp` delegated: `Mail.Send`, and
//! `Mail.ReadWrite` for the draft route of messages over about 3 MB), and
//! that the mailbox exists, is licensed and in the app's scope — read from
//! its Drafts folder (`GET /users/{mailbox}/mailFolders/drafts?$select=id`),
//! never by sending mail. Graph's answers are explained by
//! `graph::errors::classify_response`, as delivery explains them.
//!
//! The token's payload is decoded without verifying it (it is only read to
//! explain), and the token itself is never shown.
//!
//! Grants made with RBAC for Applications in Exchange Online do not appear
//! in the token: when the Drafts folder answers although the token lists no
//! `Mail.ReadWrite`, the app has such grants, and a `Mail.Send` missing
//! from the token is then a warning rather than a failure.

use reqwest::header::RETRY_AFTER;
use reqwest::Method;
use url::Url;

use super::{Check, Context};
use crate::auth::claims;
use crate::config::OAuthFlow;
use crate::delivery::classify::Action;
use crate::delivery::Transcript;
use crate::graph::client::GraphClient;
use crate::graph::errors::{classify_response, Route};
use crate::https::{certificate_problem, error_chain, UNTRUSTED_FIX};

pub(crate) const SEND: &str = "Mail.Send";
/// How long the TLS probe may take (a filtered port never answers).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
pub(crate) const READ_WRITE: &str = "Mail.ReadWrite";

/// TLS to the Graph endpoint: connect, handshake, certificate. Any HTTP
/// answer to `GET {endpoint}/v1.0/` (no token sent) means TLS worked.
pub(crate) async fn tls(cx: &mut Context<'_>) {
    let id = "graph.tls";
    let root = cx.config.graph.root().to_string();
    let url = match Url::parse(&root) {
        Ok(u) => u,
        Err(e) => {
            cx.push(Check::fail(
                id,
                "TLS to Microsoft Graph",
                format!("graph.endpoint {root:?} is not a URL: {e}"),
                "Set graph.endpoint to https://graph.microsoft.com (or remove it).",
            ));
            return;
        }
    };
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let title = format!("TLS to Microsoft Graph at {host}:{port}");
    if url.scheme() == "http" {
        cx.graph_tls_ok = true;
        cx.push(Check::skip(
            id,
            title,
            "graph.endpoint is plain HTTP on a loopback host (a test setup): there is no TLS to check",
        ));
        return;
    }
    let client = match GraphClient::new(cx.config) {
        Ok(c) => c,
        Err(e) => {
            cx.push(Check::fail(
                id,
                title,
                e.to_string(),
                "Check upstream.ca_file: it must be a readable file of PEM certificates (or remove the key).",
            ));
            return;
        }
    };
    let mut probe = url.clone();
    if let Ok(mut segs) = probe.path_segments_mut() {
        segs.pop_if_empty().push("v1.0").push("");
    }
    let request = client.http().get(probe).timeout(PROBE_TIMEOUT);
    match request.send().await {
        Ok(_) => {
            cx.graph_tls_ok = true;
            let anchors = if cx.config.upstream.ca_file.is_some() {
                "the web's certificate authorities and upstream.ca_file"
            } else {
                "the web's certificate authorities"
            };
            cx.push(Check::ok(
                id,
                title,
                format!("TLS established; the certificate is valid for {host} and signed by a CA trusted here ({anchors})"),
            ));
        }
        Err(e) => {
            let e = e.without_url();
            let (found, fix) = match certificate_problem(&e, &host) {
                Some(problem) => (problem, UNTRUSTED_FIX.to_string()),
                None => (
                    format!("cannot reach {host}:{port}: {}", error_chain(&e)),
                    "Check that this machine can reach graph.microsoft.com over HTTPS (port 443), through any proxy or firewall, and that graph.endpoint is right.".to_string(),
                ),
            };
            cx.push(Check::fail(id, title, found, fix));
        }
    }
}

/// What reading the Drafts folder showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// 200: the mailbox exists, is licensed and in scope.
    Ok,
    /// Graph answered with an error: status, code, and its explanation.
    Refused {
        status: u16,
        code: String,
        action: Action,
        summary: String,
        fix: String,
    },
    /// No answer (network); the reason.
    NoAnswer(String),
}

/// The permission checks and the mailbox check, after the sign-in check
/// left the token in `cx.graph_token`.
pub(crate) async fn check(cx: &mut Context<'_>) {
    let mailbox = cx.config.upstream.mailbox.clone();
    let titles = titles(&mailbox);
    let Some(token) = cx.graph_token.clone() else {
        for (id, title) in titles {
            cx.push(Check::skip(
                id,
                title,
                "no access token (see the sign-in check)",
            ));
        }
        return;
    };
    let delegated = cx.config.oauth.flow != OAuthFlow::ClientCredentials;
    let perms = claims::decode(token.expose()).map(|c| if delegated { c.scopes } else { c.roles });
    let probe = if !cx.graph_tls_ok {
        None
    } else {
        match GraphClient::new(cx.config) {
            Ok(client) => Some(probe(&client, &mailbox, &token).await),
            Err(e) => Some(Probe::NoAnswer(e.to_string())),
        }
    };
    for c in verdicts(perms, delegated, probe.as_ref(), &mailbox) {
        cx.push(c);
    }
}

fn titles(mailbox: &str) -> [(&'static str, String); 3] {
    [
        (
            "graph.mail_send",
            "Permission to send mail (Mail.Send)".to_string(),
        ),
        (
            "graph.mail_readwrite",
            "Permission for large messages (Mail.ReadWrite)".to_string(),
        ),
        (
            "graph.mailbox",
            format!("Mailbox {mailbox} in Microsoft Graph"),
        ),
    ]
}

/// `GET {endpoint}/v1.0/users/{mailbox}/mailFolders/drafts?$select=id`.
async fn probe(client: &GraphClient, mailbox: &str, token: &crate::secrets::Secret) -> Probe {
    let mut url = client.user_url(mailbox, &["mailFolders", "drafts"]);
    url.set_query(Some("$select=id"));
    let mut t = Transcript::default();
    match client
        .request(Method::GET, url, Some(token), None, &mut t)
        .await
    {
        Ok(a) if a.status == 200 => Probe::Ok,
        Ok(a) => {
            let ra = a.headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
            let o = classify_response(Route::Draft, a.status, ra, &a.body);
            Probe::Refused {
                status: a.status,
                code: o.error.map(|e| e.code).unwrap_or_default(),
                action: o.verdict.action,
                summary: o.verdict.summary.to_string(),
                fix: o.verdict.fix.to_string(),
            }
        }
        Err(o) => Probe::NoAnswer(o.verdict.summary.to_string()),
    }
}

/// Where the consent is given, by kind of token.
fn consent_path(delegated: bool, permission: &str) -> String {
    if delegated {
        format!("In the Microsoft Entra admin center, App registrations → Postern's app → API permissions → Add a permission → Microsoft Graph → Delegated permissions → {permission} → Grant admin consent; then sign in again (`postern account login`).")
    } else {
        format!("In the Microsoft Entra admin center, App registrations → Postern's app → API permissions → Add a permission → Microsoft Graph → Application permissions → {permission} → Grant admin consent.")
    }
}

/// The three checks from what the token lists and what the probe saw.
pub(crate) fn verdicts(
    perms: Result<Vec<String>, String>,
    delegated: bool,
    probe: Option<&Probe>,
    mailbox: &str,
) -> [Check; 3] {
    let [(send_id, send_t), (rw_id, rw_t), (mb_id, mb_t)] = titles(mailbox);
    let claim = if delegated { "scp" } else { "roles" };
    let probe_ok = probe == Some(&Probe::Ok);
    let (send, rw, has_rw) = match &perms {
        Err(e) => (
            Check::skip(send_id, send_t, e.clone()),
            Check::skip(rw_id, rw_t, e.clone()),
            probe_ok,
        ),
        Ok(perms) => {
            let has = |p: &str| perms.iter().any(|x| x.eq_ignore_ascii_case(p));
            let listed = if perms.is_empty() {
                "nothing".to_string()
            } else {
                perms.join(", ")
            };
            let send = if has(SEND) {
                Check::ok(
                    send_id,
                    send_t,
                    format!("the token's {claim} claim holds {SEND}"),
                )
            } else if (probe_ok && !has(READ_WRITE)) || (!delegated && perms.is_empty()) {
                // The Drafts folder answered without Mail.ReadWrite in the
                // token, or an app-only token lists no permission at all
                // (what the README's RBAC setup, with no tenant-wide
                // consent, gives): grants from RBAC for Applications do not
                // show in tokens, so this cannot be called a failure.
                Check::warn(
                    send_id,
                    send_t,
                    format!("the token's {claim} claim holds no {SEND} ({listed}); the app's Exchange role assignments (RBAC for Applications) do not show in tokens"),
                    format!("If Mail.Send was granted with New-ManagementRoleAssignment -Role \"Application Mail.Send\", confirm it with Test-ServicePrincipalAuthorization -Identity <app> -Resource {mailbox}; otherwise: {}", consent_path(delegated, SEND)),
                )
            } else {
                Check::fail(
                    send_id,
                    send_t,
                    format!("the token's {claim} claim holds no {SEND} ({claim}: {listed}): Microsoft Graph will refuse to send"),
                    consent_path(delegated, SEND),
                )
            };
            let rw = if has(READ_WRITE) {
                Check::ok(rw_id, rw_t, format!("the token's {claim} claim holds {READ_WRITE}: messages over about 3 MB (scans) can go as drafts with attachments"))
            } else if probe_ok {
                Check::ok(rw_id, rw_t, "granted outside the token (RBAC for Applications): the mailbox's Drafts folder answered, so messages over about 3 MB can go as drafts")
            } else {
                Check::warn(
                    rw_id,
                    rw_t,
                    format!("the token's {claim} claim holds no {READ_WRITE}: messages over about 3 MB (most scans) need it and will fail; smaller ones go"),
                    format!("{} With RBAC for Applications, also assign -Role \"Application Mail.ReadWrite\" to the same scope.", consent_path(delegated, READ_WRITE)),
                )
            };
            (send, rw, has(READ_WRITE) || probe_ok)
        }
    };
    let mb = match probe {
        None => Check::skip(mb_id, mb_t, "no connection to Microsoft Graph (see the TLS check)"),
        Some(Probe::Ok) => Check::ok(
            mb_id,
            mb_t,
            "the mailbox exists, is licensed and the app may use it (its Drafts folder answered; nothing was sent)",
        ),
        Some(Probe::Refused { status: 403, code, .. }) if !has_rw => Check::skip(
            mb_id,
            mb_t,
            format!("could not be checked without sending: reading the mailbox needs Mail.ReadWrite, which the token lacks (Graph answered 403 {code}); the first message will tell"),
        ),
        Some(Probe::Refused {
            status,
            code,
            action,
            summary,
            fix,
        }) => {
            let found = format!("Microsoft Graph answered {status} {code}: {summary}");
            let fix = fix.replace("<mailbox>", mailbox);
            if matches!(action, Action::Retry | Action::ReduceConnections) {
                Check::warn(mb_id, mb_t, format!("could not be checked now: {found}"), "Run `postern diagnose` again in a few minutes.")
            } else {
                Check::fail(mb_id, mb_t, found, fix)
            }
        }
        Some(Probe::NoAnswer(why)) => Check::fail(
            mb_id,
            mb_t,
            format!("no answer from Microsoft Graph: {why}"),
            "Check the network path to graph.endpoint (see the TLS check).",
        ),
    };
    [send, rw, mb]
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
