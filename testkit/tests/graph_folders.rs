//! The fake Graph's mail-folder endpoint (what `postern diagnose` reads to
//! learn that a mailbox exists without sending) and the fake reached
//! through a `TlsFront`: HTTPS with the front's CA, tokens for the front's
//! address accepted.

use postern_testkit::{
    ClientRegistration, FakeGraph, FakeIdentity, GraphMailbox, GraphOptions, IdentityOptions,
    RequestKind, TlsFront,
};
use serde_json::Value;

const USER: &str = "scanner@contoso.com";

async fn token(http: &reqwest::Client, id: &FakeIdentity, resource: &str) -> String {
    let resp = http
        .post(format!("{}/contoso/oauth2/v2.0/token", id.authority()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", &format!("{resource}/.default")),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().expect("a token").to_string()
}

async fn start(roles: &[&str]) -> (FakeIdentity, FakeGraph) {
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: "app".into(),
            client_secret: Some("s3cret".into()),
            user: USER.into(),
        }],
        graph_roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    })
    .await;
    let mut gone = GraphMailbox::new("gone@contoso.com");
    gone.licensed = false;
    let graph = FakeGraph::start(GraphOptions {
        identity: Some(identity.clone()),
        mailboxes: vec![
            GraphMailbox::new(USER),
            GraphMailbox::new("boss@contoso.com"),
            gone,
        ],
        rbac_scope: Some(vec![USER.into(), "gone@contoso.com".into()]),
        ..Default::default()
    })
    .await;
    (identity, graph)
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> (u16, Value) {
    let resp = http.get(url).bearer_auth(token).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_drafts_folder_answers_with_mail_readwrite_and_explains_the_rest() {
    let (identity, graph) = start(&["Mail.Send", "Mail.ReadWrite"]).await;
    let http = reqwest::Client::new();
    let t = token(&http, &identity, &graph.endpoint()).await;
    let url = |mb: &str, folder: &str| {
        format!(
            "{}/v1.0/users/{mb}/mailFolders/{folder}?$select=id",
            graph.endpoint()
        )
    };
    let (status, body) = get(&http, &url(USER, "drafts"), &t).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().ends_with("-drafts"), "{body}");
    assert!(body.get("displayName").is_none(), "$select=id: {body}");
    let (status, body) = get(
        &http,
        &format!("{}/v1.0/users/{USER}/mailFolders/Drafts", graph.endpoint()),
        &t,
    )
    .await;
    assert_eq!(
        (status, body["displayName"].as_str()),
        (200, Some("Drafts"))
    );
    for (mb, folder, want) in [
        ("nobody@contoso.com", "drafts", (404, "ErrorInvalidUser")),
        (
            "gone@contoso.com",
            "drafts",
            (404, "MailboxNotEnabledForRESTAPI"),
        ),
        ("boss@contoso.com", "drafts", (403, "ErrorAccessDenied")),
        (USER, "nosuchfolder", (404, "ErrorItemNotFound")),
    ] {
        let (status, body) = get(&http, &url(mb, folder), &t).await;
        assert_eq!(
            (status, body["error"]["code"].as_str().unwrap()),
            want,
            "{mb}/{folder}"
        );
    }
    assert_eq!(graph.requests(RequestKind::GetMailFolder), 6);
    assert!(graph.delivered().is_empty());

    // Mail.Send alone cannot read the folder.
    let (identity, graph) = start(&["Mail.Send"]).await;
    let t = token(&http, &identity, &graph.endpoint()).await;
    let (status, body) = get(
        &http,
        &format!("{}/v1.0/users/{USER}/mailFolders/drafts", graph.endpoint()),
        &t,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("ErrorAccessDenied"))
    );
}

#[tokio::test]
async fn behind_a_tls_front_with_its_ca_and_its_audience() {
    let (identity, graph) = start(&["Mail.Send", "Mail.ReadWrite"]).await;
    let front = TlsFront::start(graph.addr()).await;
    graph.add_endpoint(&front.url());
    let ca = reqwest::Certificate::from_pem(front.ca_pem().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let t = token(&trusting, &identity, &front.url()).await;
    let url = format!("{}/v1.0/users/{USER}/mailFolders/drafts", front.url());
    let (status, body) = get(&trusting, &url, &t).await;
    assert_eq!(status, 200, "{body}");
    // Without the CA the handshake is refused.
    let plain = reqwest::Client::new();
    let e = plain.get(&url).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
}
