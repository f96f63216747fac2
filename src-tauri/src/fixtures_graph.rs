//! The UI fixtures of Graph mode (part of `fixtures`): the Account page's
//! answers for an app-only Graph setup, the engine's verdict on a bad
//! `graph.endpoint`, and a traced message — a Graph-mode engine (client
//! credentials, the trace permission granted) sends one message to three
//! recipients and follows them in the fake Graph's message trace until
//! each has its outcome (delivered, bounced with 5.1.10, junk).

use std::collections::BTreeMap;
use std::path::Path;

use postern_engine::auth::AccountState;
use serde_json::{json, Value};

use postern_engine::config::Config;
use postern_engine::control::{MessageDetail, Request};
use postern_engine::engine::Engine;
use postern_engine::spool::{MessageId, Outcome, State};
use postern_testkit::{
    ClientRegistration, FakeGraph, FakeIdentity, GraphMailbox, GraphOptions, IdentityOptions,
    TraceOutcome,
};

use super::{mail, readme_config, submit, HOUR};
use crate::contract::AccountReply;

/// The traced message's recipients and what the trace will say of each.
const TRACED: [&str; 3] = [
    "accounts@contoso.com",
    "old.supplier@fabrikam.com",
    "orders@northwind.example",
];

/// What the traced run adds to the fixtures and to their normalisation.
pub(super) struct Traced {
    pub id: MessageId,
    /// Stored size → the device's bytes.
    pub size: (u64, u64),
    /// Run-specific text → stable text (endpoints, the app's id).
    pub text: Vec<(String, String)>,
}

/// A Graph-mode engine with tracking (`poll = "1s"`) sends one message to
/// [`TRACED`]; the fake trace says delivered / failed 5.1.10 / junk. Once
/// the tracker is done with it: `queue-traced`, `messages-traced` and
/// `status-traced` (tracking on, its counters).
pub(super) async fn traced(out: &mut BTreeMap<&'static str, Value>, dir: &Path) -> Traced {
    let client_id = format!("postern-fixture-{}", std::process::id());
    let secret = "fixture-client-secret";
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: client_id.clone(),
            client_secret: Some(secret.into()),
            user: "scanner@contoso.com".into(),
        }],
        graph_roles: vec!["Mail.Send".into(), "ExchangeMessageTrace.Read.All".into()],
        ..Default::default()
    })
    .await;
    let graph = FakeGraph::start(GraphOptions {
        identity: Some(identity.clone()),
        mailboxes: vec![GraphMailbox::new("scanner@contoso.com")],
        rbac_scope: None,
        ..Default::default()
    })
    .await;
    graph.set_trace_outcome(TRACED[0], TraceOutcome::Delivered);
    graph.set_trace_outcome(TRACED[1], TraceOutcome::failed("5.1.10"));
    graph.set_trace_outcome(TRACED[2], TraceOutcome::FilteredAsSpam);
    postern_engine::secrets::SecretStore::new()
        .set(
            &postern_engine::secrets::SecretKey::ClientSecret {
                client_id: client_id.clone(),
            },
            &postern_engine::secrets::Secret::new(secret),
        )
        .unwrap();
    let spool = dir.join("spool-traced");
    let text = format!(
        r#"
[listener]
listen = ["127.0.0.1:0"]
allow = ["127.0.0.0/8", "192.168.1.0/24"]
hostname = "office-pc"

[upstream]
mode = "graph"
mailbox = "scanner@contoso.com"

[oauth]
authority = "{authority}"
tenant = "contoso.com"
client_id = "{client_id}"
flow = "client-credentials"

[graph]
endpoint = "{endpoint}"

[tracking]
poll = "1s"

[spool]
dir = "{spool}"
"#,
        authority = identity.authority(),
        endpoint = graph.endpoint(),
        spool = spool.display(),
    );
    let config = Config::parse(&text, &dir.join("postern-traced.toml")).unwrap();
    let engine = Engine::start(config).await.unwrap();
    let c = engine.controller();
    let addr = engine.listening()[0].0;
    let body = mail(
        "scanner@contoso.com",
        "accounts@contoso.com",
        "Monthly statement, January",
        30,
    );
    let id = submit(addr, "scanner@contoso.com", &TRACED, &body)
        .await
        .unwrap();
    // Until the tracker is done: every recipient's outcome final, the
    // bounce's reason read from the details.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let m = loop {
        if let Some(m) = c.spool.get(&id).filter(|m| {
            m.status.state == State::Sent
                && m.status.tracking_done
                && m.status.recipients.iter().all(|r| {
                    r.trace
                        .as_ref()
                        .is_some_and(|t| t.outcome != Outcome::Pending)
                })
        }) {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} was never traced: {:?}",
            c.spool.get(&id)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // And until the poll that wrote it has ended (its state, budget and
    // the messages still followed are set last): the same status every run.
    let status = loop {
        let s = c.status().await;
        if s.tracking
            .as_ref()
            .is_some_and(|t| t.tracked == 0 && t.polls > 0)
        {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tracker's poll never ended: {:?}",
            s.tracking
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    out.insert("status-traced", json!(status));
    out.insert("queue-traced", c.handle(Request::Queue).await.data.unwrap());
    let d = c
        .handle(Request::Show { id: id.clone() })
        .await
        .data
        .unwrap();
    let d: MessageDetail = serde_json::from_value(d).unwrap();
    out.insert("messages-traced", json!({ id.to_string(): d }));
    drop(engine);
    Traced {
        id,
        size: (m.size, body.len() as u64),
        text: vec![
            (graph.endpoint(), "https://graph.microsoft.com".into()),
            (
                identity.authority(),
                "https://login.microsoftonline.com".into(),
            ),
            (client_id, "7f3c2a91-4b8e-4d6a-9c1f-2e5b8a0d4c17".into()),
        ],
    }
}

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
