//! The fake identity platform over HTTP: grants, rotation, injected errors,
//! revocation, authorization code with PKCE, and the device flow.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use postern_testkit::{ClientRegistration, FakeIdentity, IdentityOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

const USER: &str = "scanner@contoso.com";
const APP_SCOPE: &str = "https://outlook.office365.com/.default";

async fn start(lifetime: Duration) -> FakeIdentity {
    FakeIdentity::start(IdentityOptions {
        access_token_lifetime: lifetime,
        clients: vec![
            ClientRegistration {
                client_id: "app".into(),
                client_secret: Some("s3cret".into()),
                user: USER.into(),
            },
            ClientRegistration {
                client_id: "public".into(),
                client_secret: None,
                user: USER.into(),
            },
        ],
        device_code_interval: Duration::ZERO,
        ..Default::default()
    })
    .await
}

/// The JSON payload of a JWT-shaped access token.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn post(id: &FakeIdentity, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/contoso.onmicrosoft.com/oauth2/v2.0/{endpoint}",
            id.authority()
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn token(id: &FakeIdentity, form: &[(&str, &str)]) -> (u16, Value) {
    post(id, "token", form).await
}

#[tokio::test]
async fn client_credentials() {
    let id = start(Duration::from_secs(3599)).await;
    let (status, body) = token(
        &id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", APP_SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body.get("refresh_token").is_none());
    let access = body["access_token"].as_str().unwrap();
    let c = claims(access);
    assert_eq!(c["roles"], serde_json::json!(["SMTP.SendAsApp"]), "{c}");
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["appid"], "app");
    assert!(c["exp"].as_u64().unwrap() > c["iat"].as_u64().unwrap() + 3500);
    assert!(id.validator().check(USER, access));
    assert!(id.validator().check("SCANNER@contoso.com", access));
    assert!(!id.validator().check("other@contoso.com", access));

    let (status, body) = token(
        &id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "nope"),
            ("scope", APP_SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215:"));

    let (status, body) = token(
        &id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "s3cret"),
            ("scope", "https://outlook.office.com/SMTP.Send"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert_eq!(id.token_requests(), 3);
    assert_eq!(id.issued_tokens(), 1);
}

fn refresh_form(refresh_token: &str) -> [(&str, &str); 4] {
    [
        ("grant_type", "refresh_token"),
        ("client_id", "public"),
        ("refresh_token", refresh_token),
        (
            "scope",
            "https://outlook.office.com/SMTP.Send offline_access",
        ),
    ]
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let id = start(Duration::from_secs(60)).await;
    let first = id.mint_refresh_token("public", USER);
    let pairs = refresh_form(&first);
    let (status, body) = token(&id, &pairs).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "https://outlook.office.com/SMTP.Send");
    let second = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    // Delegated tokens carry the scope, not app roles.
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        (c["scp"].as_str(), c.get("roles")),
        (Some("SMTP.Send"), None),
        "{c}"
    );
    assert_eq!(c["upn"], USER);
    assert!(id
        .validator()
        .check(USER, body["access_token"].as_str().unwrap()));

    // The old one died on use.
    let (status, body) = token(&id, &pairs).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(body["error_codes"][0], 70008);

    // Revocation kills the new one and its access token.
    id.revoke_all();
    let pairs = refresh_form(&second);
    let (status, body) = token(&id, &pairs).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn pushed_errors_and_expiry() {
    let id = start(Duration::ZERO).await;
    id.push_error("AADSTS50076");
    id.push_error("700082");
    let rt = id.mint_refresh_token("public", USER);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "public"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, body) = token(&id, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("interaction_required"))
    );
    let (_, body) = token(&id, &form).await;
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_codes"][0], 700082);
    // The refresh token survived the injected errors; the zero-lifetime
    // access token is born expired.
    let (status, body) = token(&id, &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(!id
        .validator()
        .check(USER, body["access_token"].as_str().unwrap()));
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let id = start(Duration::from_secs(60)).await;
    let verifier = "a-very-long-verifier-string-of-forty-three-chars-or-more";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let redirect = "http://localhost:8400/callback";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = |challenge: String| {
        http.get(format!(
            "{}/organizations/oauth2/v2.0/authorize",
            id.authority()
        ))
        .query(&[
            ("client_id", "public"),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            (
                "scope",
                "https://outlook.office.com/SMTP.Send offline_access",
            ),
            ("state", "st&ate"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
    };
    let resp = authorize(challenge.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let query = location
        .strip_prefix(&format!("{redirect}?"))
        .expect("redirected to the loopback URI");
    let params: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(query).unwrap();
    assert_eq!(params["state"], "st&ate");
    let code = params["code"].clone();

    let redeem = |code: String, verifier: &'static str| {
        let id = id.clone();
        async move {
            token(
                &id,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "public"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let (status, body) = redeem(code.clone(), "wrong-verifier").await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (400, Some(501481))
    );

    let resp = authorize(challenge).await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let code: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let code = code["code"].clone();
    let (status, body) = redeem(code.clone(), verifier).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    let (_, body) = redeem(code, verifier).await;
    assert_eq!(body["error_codes"][0], 54005);

    // A non-loopback redirect is refused outright.
    let resp = http
        .get(format!("{}/common/oauth2/v2.0/authorize", id.authority()))
        .query(&[
            ("client_id", "public"),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn device_code_flow() {
    let id = start(Duration::from_secs(60)).await;
    let (status, start) = post(
        &id,
        "devicecode",
        &[
            ("client_id", "public"),
            (
                "scope",
                "https://outlook.office.com/SMTP.Send offline_access",
            ),
        ],
    )
    .await;
    assert_eq!(status, 200, "{start}");
    assert_eq!(start["interval"], 0);
    let device_code = start["device_code"].as_str().unwrap();
    let user_code = start["user_code"].as_str().unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "public"),
        ("device_code", device_code),
    ];
    let (status, body) = token(&id, &poll).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    assert!(!id.approve_device_code("NOPE"));
    assert!(id.approve_device_code(user_code));
    let (status, body) = token(&id, &poll).await;
    assert_eq!(status, 200, "{body}");
    assert!(id
        .validator()
        .check(USER, body["access_token"].as_str().unwrap()));
}
