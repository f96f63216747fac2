//! The fake Exchange driven over raw SMTP: the submission conversation of
//! docs/exchange-online.md §2, its refusals, faults, and the connector and
//! Direct Send roles.

mod common;

use std::time::{Duration, Instant};

use common::{b64, tls_config, xoauth2, Client};
use postern_testkit::{
    ClientRegistration, FakeExchange, FakeExchangeOptions, FakeIdentity, Fault, IdentityOptions,
    Role, Stage,
};

const USER: &str = "scanner@contoso.com";
const WAIT: Duration = Duration::from_secs(2);

/// A submission fake that accepts any token, and a client already
/// authenticated through it.
async fn authed_client(fake: &FakeExchange) -> Client {
    let mut c = Client::connect(fake.addr()).await;
    c.secure(fake.ca_pem()).await;
    let r = c
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, "any-token")))
        .await;
    assert_eq!(r.first(), "235 2.7.0 Authentication successful");
    c
}

#[tokio::test]
async fn xoauth2_with_token_from_identity_fake() {
    let identity = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: "postern-test".into(),
            client_secret: Some("test-secret".into()),
            user: USER.into(),
        }],
        ..Default::default()
    })
    .await;
    let fake = FakeExchange::start(FakeExchangeOptions {
        token_validator: Some(identity.validator()),
        ..Default::default()
    })
    .await;

    let token: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/organizations/oauth2/v2.0/token",
            identity.authority()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "postern-test"),
            ("client_secret", "test-secret"),
            ("scope", "https://outlook.office365.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();

    let mut c = Client::connect(fake.addr()).await;
    assert!(c
        .banner
        .first()
        .starts_with("220 localhost Microsoft ESMTP MAIL Service ready at "));
    let ehlo = c.cmd("EHLO scanner").await;
    assert!(ehlo.has_line("STARTTLS"));
    assert!(ehlo.has_line("SIZE 157286400"));
    assert!(!ehlo.lines.iter().any(|l| l.starts_with("AUTH")));
    // AUTH before TLS is refused.
    let r = c
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, token)))
        .await;
    assert_eq!(r.code, 504);
    c.starttls(tls_config(fake.ca_pem(), None)).await.unwrap();
    // Commands before the second EHLO.
    let r = c.cmd("MAIL FROM:<scanner@contoso.com>").await;
    assert_eq!(r.first(), "503 5.5.2 Send hello first");
    let ehlo = c.cmd("EHLO scanner").await;
    assert!(ehlo.has_line("AUTH LOGIN XOAUTH2"));
    assert!(!ehlo.has_line("STARTTLS"));
    // MAIL before AUTH.
    let r = c.cmd("MAIL FROM:<scanner@contoso.com>").await;
    assert_eq!(
        r.first(),
        "530 5.7.57 Client not authenticated to send mail"
    );
    // A token that was never issued.
    let r = c
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, "forged")))
        .await;
    assert_eq!(r.first(), "535 5.7.3 Authentication unsuccessful");
    // The right token for the wrong mailbox.
    let r = c
        .cmd(&format!(
            "AUTH XOAUTH2 {}",
            xoauth2("other@contoso.com", token)
        ))
        .await;
    assert_eq!(r.code, 535);
    let r = c
        .cmd(&format!("AUTH XOAUTH2 {}", xoauth2(USER, token)))
        .await;
    assert_eq!(r.first(), "235 2.7.0 Authentication successful");

    let r = c
        .send_mail(
            USER,
            &["x@example.com"],
            b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n",
        )
        .await;
    assert_eq!(r.code, 250);
    assert!(r.first().starts_with("250 2.0.0 OK <"), "{r:?}");
    assert!(r.first().ends_with("[Hostname=localhost]"), "{r:?}");
    assert_eq!(c.cmd("QUIT").await.code, 221);

    let got = fake.wait_for_messages(1, WAIT).await;
    let m = &got[0];
    assert_eq!(m.mail_from, USER);
    assert_eq!(m.rcpt_to, vec!["x@example.com".to_string()]);
    assert_eq!(m.data, b"Subject: hi\r\n\r\n.leading dot\r\nbody\r\n");
    assert_eq!(m.auth_user.as_deref(), Some(USER));
    assert_eq!(m.auth_mechanism.as_deref(), Some("XOAUTH2"));
    assert!(m.tls);
    assert!(m.tls_version.as_deref().unwrap().starts_with("TLSv1_"));
    let stats = fake.stats();
    assert_eq!((stats.auth_successes, stats.auth_failures), (1, 2));
    assert_eq!(stats.messages, 1);
    assert!(
        !fake.transcripts()[0].contains("forged"),
        "AUTH data redacted"
    );
}

#[tokio::test]
async fn sasl_two_step_forms() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        accept_password: Some((USER.into(), "secret".into())),
        ..Default::default()
    })
    .await;
    let mut c = Client::connect(fake.addr()).await;
    c.secure(fake.ca_pem()).await;
    // XOAUTH2 without initial response: "334 " with the trailing space.
    c.send_raw(b"AUTH XOAUTH2\r\n").await;
    let r = c.read_reply().await.unwrap();
    assert_eq!((r.code, r.lines[0].as_str()), (334, ""));
    let r = c.cmd(&xoauth2(USER, "tok")).await;
    assert_eq!(r.code, 235);

    // LOGIN, two steps.
    let mut c = Client::connect(fake.addr()).await;
    c.secure(fake.ca_pem()).await;
    assert_eq!(c.cmd("AUTH LOGIN").await.first(), "334 VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(USER)).await.first(), "334 UGFzc3dvcmQ6");
    assert_eq!(
        c.cmd(&b64("wrong")).await.first(),
        "535 5.7.3 Authentication unsuccessful"
    );
    // LOGIN with the user name on the AUTH line.
    let r = c.cmd(&format!("AUTH LOGIN {}", b64(USER))).await;
    assert_eq!(r.first(), "334 UGFzc3dvcmQ6");
    assert_eq!(c.cmd(&b64("secret")).await.code, 235);
    let m = c.send_mail(USER, &["a@example.com"], b"x\r\n").await;
    assert_eq!(m.code, 250);
    let got = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(got[0].auth_mechanism.as_deref(), Some("LOGIN"));

    // Basic auth switched off.
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut c = Client::connect(fake.addr()).await;
    c.secure(fake.ca_pem()).await;
    let r = c
        .cmd(&format!("AUTH PLAIN {}", b64(&format!("\0{USER}\0secret"))))
        .await;
    assert_eq!(
        r.first(),
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
    );
}

#[tokio::test]
async fn bare_lf_is_refused_and_not_recorded() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut c = authed_client(&fake).await;
    let r = c
        .send_mail(USER, &["a@example.com"], b"line one\nline two\r\n")
        .await;
    assert_eq!(r.code, 550);
    assert!(r
        .first()
        .starts_with("550 5.6.11 SMTPSEND.BareLinefeedsAreIllegal"));
    // "\n.\n" did not end the message; the session goes on.
    let r = c.send_mail(USER, &["a@example.com"], b"fine\r\n").await;
    assert_eq!(r.code, 250);
    let got = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"fine\r\n");
}

#[tokio::test]
async fn rcpt_fault_fails_one_recipient_only() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let notfound =
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup";
    fake.push_fault(Fault::RcptReply {
        rcpt: "Gone@Contoso.com".into(),
        reply: notfound.into(),
    });
    let mut c = authed_client(&fake).await;
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<a@contoso.com>").await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<gone@contoso.com>").await.first(), notfound);
    assert_eq!(c.cmd("RCPT TO:<b@contoso.com>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send_raw(b"hello\r\n").await;
    assert_eq!(c.cmd(".").await.code, 250);
    let got = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(got[0].rcpt_to, vec!["a@contoso.com", "b@contoso.com"]);

    // With no good recipient, DATA is refused.
    fake.push_fault(Fault::RcptReply {
        rcpt: "gone@contoso.com".into(),
        reply: notfound.into(),
    });
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<gone@contoso.com>").await.code, 550);
    assert_eq!(
        c.cmd("DATA").await.first(),
        "554 5.5.1 Error: no valid recipients"
    );
}

#[tokio::test]
async fn fourth_concurrent_authenticated_session_is_throttled() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(authed_client(&fake).await);
    }
    for c in &mut clients[..3] {
        assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    }
    let r = clients[3].cmd(&format!("MAIL FROM:<{USER}>")).await;
    assert_eq!(
        r.first(),
        "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"
    );
    let stats = fake.stats();
    assert_eq!(stats.throttle_replies, 1);
    assert_eq!(stats.max_concurrent, 4);
    assert_eq!(stats.connections, 4);

    // One leaves; the fourth gets its turn.
    let mut first = clients.remove(0);
    assert_eq!(first.cmd("QUIT").await.code, 221);
    assert!(first.read_reply().await.is_none(), "server closed");
    let r = clients[2].cmd(&format!("MAIL FROM:<{USER}>")).await;
    assert_eq!(r.code, 250, "{}", fake.transcripts().join("\n"));
}

#[tokio::test]
async fn wait_for_messages_returns_when_the_message_arrives() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let waiter = {
        let fake = fake.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let got = fake.wait_for_messages(1, Duration::from_secs(30)).await;
            (got, start.elapsed())
        })
    };
    let mut c = authed_client(&fake).await;
    assert_eq!(
        c.send_mail(USER, &["a@b.example"], b"x\r\n").await.code,
        250
    );
    let (got, elapsed) = waiter.await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
#[should_panic(expected = "waited")]
async fn wait_for_messages_panics_on_timeout() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    fake.wait_for_messages(1, Duration::from_millis(20)).await;
}

#[tokio::test]
async fn pipelined_transaction() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut c = authed_client(&fake).await;
    c.send_raw(
        b"MAIL FROM:<scanner@contoso.com>\r\nRCPT TO:<a@x.example>\r\nRCPT TO:<b@x.example>\r\nDATA\r\n",
    )
    .await;
    for expected in [250, 250, 250, 354] {
        assert_eq!(c.read_reply().await.unwrap().code, expected);
    }
    c.send_raw(b"one\r\n.\r\nMAIL FROM:<scanner@contoso.com>\r\nRCPT TO:<c@x.example>\r\nDATA\r\n")
        .await;
    for expected in [250, 250, 250, 354] {
        assert_eq!(c.read_reply().await.unwrap().code, expected);
    }
    c.send_raw(b"two\r\n.\r\nQUIT\r\n").await;
    assert_eq!(c.read_reply().await.unwrap().code, 250);
    assert_eq!(c.read_reply().await.unwrap().code, 221);
    let got = fake.wait_for_messages(2, WAIT).await;
    assert_eq!(got[0].data, b"one\r\n");
    assert_eq!(got[1].data, b"two\r\n");
    assert_eq!(got[0].connection_id, got[1].connection_id);
}

#[tokio::test]
async fn reply_drop_and_sticky_faults() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let busy = "451 4.7.500 Server busy. Please try again later";
    fake.push_fault(Fault::Reply {
        stage: Stage::MailFrom,
        reply: busy.into(),
    });
    let mut c = authed_client(&fake).await;
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.first(), busy);
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RSET").await.code, 250);

    // Drop mid-DATA: nothing recorded.
    fake.push_fault(Fault::DropConnection { stage: Stage::Data });
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<a@x.example>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send_raw(b"partial content\r\n").await;
    assert!(c.read_reply().await.is_none());
    assert!(fake.messages().is_empty());

    // Sticky at DataEnd until cleared.
    fake.set_sticky_fault(Some(Fault::Reply {
        stage: Stage::DataEnd,
        reply: "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException".into(),
    }));
    let mut c = authed_client(&fake).await;
    for _ in 0..2 {
        assert_eq!(
            c.send_mail(USER, &["a@x.example"], b"x\r\n").await.code,
            554
        );
    }
    fake.set_sticky_fault(None);
    assert_eq!(
        c.send_mail(USER, &["a@x.example"], b"x\r\n").await.code,
        250
    );
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn tls_faults() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    fake.push_fault(Fault::NoStartTls);
    let mut c = Client::connect(fake.addr()).await;
    let ehlo = c.cmd("EHLO x").await;
    assert!(!ehlo.has_line("STARTTLS"));
    assert_eq!(
        c.cmd("STARTTLS").await.first(),
        "502 5.5.1 Command not implemented"
    );

    fake.push_fault(Fault::BadTlsCertificate);
    let mut c = Client::connect(fake.addr()).await;
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    let err = c
        .starttls(tls_config(fake.ca_pem(), None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not valid for name"), "{err}");
}

#[tokio::test]
async fn size_limit() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        max_message_bytes: 10,
        ..Default::default()
    })
    .await;
    let mut c = authed_client(&fake).await;
    let r = c.cmd(&format!("MAIL FROM:<{USER}> SIZE=11")).await;
    assert_eq!(
        r.first(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    let r = c
        .send_mail(USER, &["a@x.example"], b"0123456789abc\r\n")
        .await;
    assert_eq!(
        r.first(),
        "552 5.3.4 Message size exceeds fixed maximum message size"
    );
    assert!(fake.messages().is_empty());
}

fn client_cert(name: &str) -> common::ClientCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("relay.{name}")]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

#[tokio::test]
async fn connector_role_matches_client_certificate() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        role: Role::Connector,
        required_client_cert_name: Some("contoso.com".into()),
        ..Default::default()
    })
    .await;
    // Plain: TLS first.
    let mut c = Client::connect(fake.addr()).await;
    let ehlo = c.cmd("EHLO x").await;
    assert!(!ehlo.lines.iter().any(|l| l.starts_with("AUTH")));
    let r = c.cmd("MAIL FROM:<scanner@contoso.com>").await;
    assert_eq!(r.first(), "530 5.7.0 Must issue a STARTTLS command first");
    // TLS without a certificate.
    c.starttls(tls_config(fake.ca_pem(), None)).await.unwrap();
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    let r = c.cmd("MAIL FROM:<scanner@contoso.com>").await;
    assert_eq!(
        r.first(),
        "550 5.7.64 TenantAttribution; Relay Access Denied"
    );
    // TLS with the right certificate.
    let mut c = Client::connect(fake.addr()).await;
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    c.starttls(tls_config(fake.ca_pem(), Some(client_cert("contoso.com"))))
        .await
        .unwrap();
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    let r = c
        .send_mail("scanner@contoso.com", &["a@example.com"], b"x\r\n")
        .await;
    assert_eq!(r.code, 250);
    let got = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(
        got[0].client_cert_names,
        vec!["contoso.com", "relay.contoso.com"]
    );
    assert_eq!(got[0].auth_user, None);
}

#[tokio::test]
async fn direct_send_role_takes_internal_recipients_only() {
    let fake = FakeExchange::start(FakeExchangeOptions {
        role: Role::DirectSend,
        internal_domains: vec!["contoso.com".into()],
        ..Default::default()
    })
    .await;
    let mut c = Client::connect(fake.addr()).await;
    assert_eq!(c.cmd("EHLO x").await.code, 250);
    assert_eq!(c.cmd("MAIL FROM:<scanner@contoso.com>").await.code, 250);
    let r = c.cmd("RCPT TO:<someone@example.com>").await;
    assert_eq!(
        r.first(),
        "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain"
    );
    assert_eq!(c.cmd("RCPT TO:<boss@CONTOSO.com>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send_raw(b"x\r\n").await;
    assert_eq!(c.cmd(".").await.code, 250);
    let got = fake.wait_for_messages(1, WAIT).await;
    assert!(!got[0].tls);
    assert_eq!(got[0].rcpt_to, vec!["boss@CONTOSO.com"]);
}

#[tokio::test]
async fn bdat_chunks_and_connect_faults() {
    let fake = FakeExchange::start(FakeExchangeOptions::default()).await;
    let mut c = authed_client(&fake).await;
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<a@x.example>").await.code, 250);
    c.send_raw(b"BDAT 5\r\nab\ncd").await;
    assert_eq!(c.read_reply().await.unwrap().code, 250);
    c.send_raw(b"BDAT 3 LAST\r\n.\r\n").await;
    let r = c.read_reply().await.unwrap();
    assert!(r.first().starts_with("250 2.0.0 OK <"), "{r:?}");
    let got = fake.wait_for_messages(1, WAIT).await;
    assert_eq!(got[0].data, b"ab\ncd.\r\n", "BDAT is binary: no unstuffing");

    fake.push_fault(Fault::Reply {
        stage: Stage::Connect,
        reply: "421 4.3.2 Service not available".into(),
    });
    let mut c = Client::connect(fake.addr()).await;
    assert_eq!(c.banner.first(), "421 4.3.2 Service not available");
    assert!(c.read_reply().await.is_none());

    fake.push_fault(Fault::DropConnection {
        stage: Stage::DataEnd,
    });
    let mut c = authed_client(&fake).await;
    assert_eq!(c.cmd(&format!("MAIL FROM:<{USER}>")).await.code, 250);
    assert_eq!(c.cmd("RCPT TO:<a@x.example>").await.code, 250);
    assert_eq!(c.cmd("DATA").await.code, 354);
    c.send_raw(b"x\r\n.\r\n").await;
    assert!(c.read_reply().await.is_none());
    assert_eq!(fake.messages().len(), 1);
}
