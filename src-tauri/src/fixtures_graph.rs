//! The UI fixtures of Graph mode (part of `fixtures`): the Account page's
//! answers for an app-only Graph setup and the engine's verdict on a bad
//! `graph.endpoint`.

use std::collections::BTreeMap;
use std::path::Path;

use postern_engine::auth::AccountState;
use serde_json::{json, Value};

use super::{readme_config, HOUR};
use crate::contract::AccountReply;

/// Graph mode (app-only): the Account page's answers — the account, and
/// the permissions of a token whose `roles` hold Mail.Send only, or none
/// (consent never granted) — and the engine's verdict on a plain-http
/// endpoint.
pub(super) fn answers(
    out: &mut BTreeMap<&'static str, Value>,
    first: &Value,
    config_path: &Path,
    now: u64,
) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use postern_engine::auth::{permissions, AccessToken};
    use postern_engine::config::{OAuthFlow, UpstreamMode};

    let mut graph = readme_config();
    graph.upstream.mode = UpstreamMode::Graph;
    graph.oauth.flow = OAuthFlow::ClientCredentials;
    out.insert(
        "account-graph",
        json!(AccountReply::new(
            &graph,
            AccountState::SignedIn {
                access_token_expires_at: now + 55 * 60_000
            }
        )),
    );
    let token = |payload: Value| AccessToken {
        token: postern_engine::secrets::Secret::new(format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode([7u8; 32])
        )),
        expires_at: now + 55 * 60_000,
        lifetime_ms: HOUR,
    };
    let aud = "https://graph.microsoft.com";
    for (name, roles) in [
        ("permissions-graph", json!(["Mail.Send"])),
        ("permissions-graph-no-consent", json!([])),
    ] {
        let p =
            permissions::of_token(&graph, &token(json!({ "aud": aud, "roles": roles }))).unwrap();
        out.insert(name, json!(p));
    }
    let mut bad = first.clone();
    bad["upstream"]["mode"] = json!("graph");
    bad["graph"]["endpoint"] = json!("http://example.com");
    out.insert(
        "validate-graph-bad",
        json!(crate::settings::validate(&bad, config_path)),
    );
}
