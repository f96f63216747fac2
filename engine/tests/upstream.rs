//! Integration tests for `delivery::upstream::Connection` against a tiny
//! scripted SMTP responder on 127.0.0.1 (plain TCP, and STARTTLS with an
//! rcgen self-signed certificate trusted through `ca_file`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use postern_engine::delivery::{
    Connection, Credentials, Secret, Stage, TlsMode, Transcript, UpstreamError, UpstreamSettings,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

type Handler = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the responder saw.
#[derive(Default, Debug)]
struct Seen {
    lines: Vec<String>,
    data: Vec<Vec<u8>>,
}

struct Script {
    ehlo_plain: String,
    ehlo_tls: String,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
    seen: Arc<Mutex<Seen>>,
}

const EHLO_PLAIN: &str =
    "250-fake.outlook.test Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-AUTH LOGIN XOAUTH2\r\n250 SMTPUTF8\r\n";

fn default_reply(line: &str) -> String {
    let upper = line.to_ascii_uppercase();
    let reply = if upper.starts_with("MAIL FROM") {
        "250 2.1.0 Sender OK"
    } else if upper.starts_with("RCPT TO") {
        "250 2.1.5 Recipient OK"
    } else if upper == "DATA" {
        "354 Start mail input; end with <CRLF>.<CRLF>"
    } else if upper == "<END-OF-DATA>" {
        "250 2.0.0 OK <id@fake> [Hostname=fake]"
    } else if upper.starts_with("AUTH") {
        "235 2.7.0 Authentication successful"
    } else if upper == "RSET" || upper == "NOOP" {
        "250 2.0.0 OK"
    } else if upper == "QUIT" {
        "221 2.0.0 Service closing transmission channel"
    } else {
        "500 5.3.3 Unrecognized command"
    };
    format!("{reply}\r\n")
}

/// Serves one session on `stream`. Returns the stream when the client
/// asked for STARTTLS (after the 220), else `None` at the end.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    script: &Script,
    tls: bool,
) -> Option<S> {
    let mut rd = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if rd.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        script.seen.lock().unwrap().lines.push(line.clone());
        let upper = line.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            if tls {
                script.ehlo_tls.clone()
            } else {
                script.ehlo_plain.clone()
            }
        } else if upper == "STARTTLS" && script.tls.is_some() && !tls {
            rd.get_mut()
                .write_all(b"220 2.0.0 SMTP server ready\r\n")
                .await
                .ok()?;
            return Some(rd.into_inner());
        } else if let Some(r) = (script.handler)(&line) {
            r
        } else {
            default_reply(&line)
        };
        rd.get_mut().write_all(reply.as_bytes()).await.ok()?;
        if reply.starts_with("354") {
            let mut data = Vec::new();
            while !data.ends_with(b"\r\n.\r\n") {
                let mut chunk = Vec::new();
                if rd.read_until(b'\n', &mut chunk).await.ok()? == 0 {
                    return None;
                }
                data.extend_from_slice(&chunk);
            }
            script.seen.lock().unwrap().data.push(data);
            let end =
                (script.handler)("<END-OF-DATA>").unwrap_or_else(|| default_reply("<END-OF-DATA>"));
            rd.get_mut().write_all(end.as_bytes()).await.ok()?;
        }
        if upper == "QUIT" {
            return None;
        }
    }
}

/// Starts a one-connection responder; returns its port.
async fn responder(script: Script) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(b"220 fake.outlook.test Microsoft ESMTP MAIL Service ready\r\n")
            .await
            .unwrap();
        if let Some(tcp) = session(tcp, &script, false).await {
            let acceptor = tokio_rustls::TlsAcceptor::from(script.tls.clone().unwrap());
            let tls = acceptor.accept(tcp).await.unwrap();
            session(tls, &script, true).await;
        }
    });
    port
}

fn script(
    handler: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (Script, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let script = Script {
        ehlo_plain: EHLO_PLAIN.to_owned(),
        ehlo_tls: EHLO_PLAIN.to_owned(),
        handler: Arc::new(handler),
        tls: None,
        seen: seen.clone(),
    };
    (script, seen)
}

fn settings(port: u16, tls: TlsMode) -> UpstreamSettings {
    UpstreamSettings {
        host: "127.0.0.1".to_owned(),
        port,
        addrs: Vec::new(),
        tls,
        ca_file: None,
        client_cert: None,
        tls_cache: Default::default(),
        hello_name: "postern.test".to_owned(),
        timeout: Duration::from_secs(5),
    }
}

const CONTENT: &[u8] = b"From: scanner@contoso.com\r\nTo: a@contoso.com\r\nSubject: scan\r\n\r\n.leading dot\r\nline\r\n";

#[tokio::test]
async fn one_refused_recipient_only_removes_that_one() {
    let (script, seen) = script(|line| match line {
        "RCPT TO:<b@contoso.com>" => {
            Some("550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found\r\n".into())
        }
        "RCPT TO:<c@contoso.com>" => Some("452 4.5.3 Too many recipients\r\n".into()),
        _ => None,
    });
    let port = responder(script).await;
    let mut t = Transcript::default();
    let mut conn = Connection::open(&settings(port, TlsMode::None), &Credentials::None, &mut t)
        .await
        .unwrap();
    let rcpts: Vec<String> = [
        "a@contoso.com",
        "b@contoso.com",
        "c@contoso.com",
        "d@contoso.com",
    ]
    .map(String::from)
    .to_vec();
    let report = conn
        .send("scanner@contoso.com", &rcpts, CONTENT, &mut t)
        .await
        .unwrap();
    assert_eq!(report.accepted, vec!["a@contoso.com", "d@contoso.com"]);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, "b@contoso.com");
    assert_eq!(report.rejected[0].1.enhanced.as_deref(), Some("5.1.10"));
    assert_eq!(report.deferred.len(), 1);
    assert_eq!(report.deferred[0].0, "c@contoso.com");
    assert_eq!(report.data_reply.as_ref().unwrap().code, 250);
    assert!(conn.is_usable().await);
    conn.quit(&mut t).await;

    let seen = seen.lock().unwrap();
    // Content arrives byte for byte (dot-stuffed on the wire), no extra line.
    assert_eq!(
        seen.data[0],
        b"From: scanner@contoso.com\r\nTo: a@contoso.com\r\nSubject: scan\r\n\r\n..leading dot\r\nline\r\n.\r\n"
    );
    let text = t.to_text();
    assert!(
        text.contains("S: 220 fake.outlook.test Microsoft ESMTP MAIL Service ready"),
        "{text}"
    );
    assert!(text.contains("C: EHLO postern.test"), "{text}");
    assert!(text.contains("S: 250-AUTH LOGIN XOAUTH2"), "{text}");
    assert!(text.contains("C: RCPT TO:<b@contoso.com>"), "{text}");
    assert!(
        text.contains("S: 550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found"),
        "{text}"
    );
    assert!(text.contains("S: 250 2.0.0 OK <id@fake>"), "{text}");
}

#[tokio::test]
async fn refused_mail_from_is_an_error_and_connection_stays_usable() {
    let (script, seen) = script(|line| {
        line.starts_with("MAIL FROM")
            .then(|| "451 4.7.500 Server busy. Please try again later\r\n".into())
    });
    let port = responder(script).await;
    let mut t = Transcript::default();
    let mut conn = Connection::open(&settings(port, TlsMode::None), &Credentials::None, &mut t)
        .await
        .unwrap();
    let err = conn
        .send(
            "scanner@contoso.com",
            &["a@contoso.com".into()],
            CONTENT,
            &mut t,
        )
        .await
        .unwrap_err();
    match &err {
        UpstreamError::Reply { stage, reply } => {
            assert_eq!(*stage, Stage::MailFrom);
            assert_eq!(reply.code, 451);
            assert_eq!(reply.enhanced.as_deref(), Some("4.7.500"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.verdict().action,
        postern_engine::delivery::Action::Retry
    );
    assert!(conn.is_usable().await);
    conn.quit(&mut t).await;
    let seen = seen.lock().unwrap();
    assert!(seen.lines.iter().any(|l| l == "RSET"), "{:?}", seen.lines);
    assert!(!seen.lines.iter().any(|l| l == "DATA"));
}

#[tokio::test]
async fn no_accepted_recipient_sends_rset_not_data() {
    let (script, seen) = script(|line| {
        line.starts_with("RCPT")
            .then(|| "550 5.4.1 Recipient address rejected: Access denied\r\n".into())
    });
    let port = responder(script).await;
    let mut t = Transcript::default();
    let mut conn = Connection::open(&settings(port, TlsMode::None), &Credentials::None, &mut t)
        .await
        .unwrap();
    // The null sender, and one address lettre refuses before the wire.
    let report = conn
        .send(
            "",
            &["x@contoso.com".into(), "not an address".into()],
            CONTENT,
            &mut t,
        )
        .await
        .unwrap();
    assert!(report.accepted.is_empty());
    assert_eq!(report.rejected.len(), 2);
    assert!(report.data_reply.is_none());
    conn.quit(&mut t).await;
    let seen = seen.lock().unwrap();
    assert!(
        seen.lines.iter().any(|l| l == "MAIL FROM:<>"),
        "{:?}",
        seen.lines
    );
    assert!(seen.lines.iter().any(|l| l == "RSET"));
    assert!(!seen.lines.iter().any(|l| l == "DATA"));
    assert!(!seen.lines.iter().any(|l| l.contains("not an address")));
}

#[tokio::test]
async fn xoauth2_initial_response_and_redaction() {
    let (script, seen) = script(|_| None);
    let port = responder(script).await;
    let mut t = Transcript::default();
    let creds = Credentials::XOAuth2 {
        user: "relay@contoso.com".into(),
        token: Secret::new("eyJ0eXAiOiJKV1Qi.secret-token"),
    };
    let conn = Connection::open(&settings(port, TlsMode::None), &creds, &mut t)
        .await
        .unwrap();
    conn.quit(&mut t).await;

    let seen = seen.lock().unwrap();
    let auth = seen
        .lines
        .iter()
        .find(|l| l.starts_with("AUTH"))
        .expect("AUTH sent");
    let b64 = auth
        .strip_prefix("AUTH XOAUTH2 ")
        .expect("XOAUTH2 with initial response");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert_eq!(
        decoded,
        b"user=relay@contoso.com\x01auth=Bearer eyJ0eXAiOiJKV1Qi.secret-token\x01\x01"
    );
    let text = t.to_text();
    assert!(text.contains("C: AUTH XOAUTH2 [redacted]"), "{text}");
    assert!(
        text.contains("S: 235 2.7.0 Authentication successful"),
        "{text}"
    );
    assert!(!text.contains("secret-token"), "{text}");
    assert!(!text.contains(b64), "{text}");
}

#[tokio::test]
async fn refused_token_classifies_as_refresh() {
    let (script, _) = script(|line| {
        line.starts_with("AUTH")
            .then(|| "535 5.7.3 Authentication unsuccessful [X.prod]\r\n".into())
    });
    let port = responder(script).await;
    let mut t = Transcript::default();
    let creds = Credentials::XOAuth2 {
        user: "relay@contoso.com".into(),
        token: Secret::new("tok"),
    };
    let err = Connection::open(&settings(port, TlsMode::None), &creds, &mut t)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpstreamError::Reply {
                stage: Stage::Auth,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.verdict().action,
        postern_engine::delivery::Action::RefreshAuth
    );
}

#[tokio::test]
async fn login_answers_both_challenges() {
    let (script, seen) = script(|line| match line {
        "AUTH LOGIN" => Some("334 VXNlcm5hbWU6\r\n".into()),
        l if l == base64::engine::general_purpose::STANDARD.encode("relay@contoso.com") => {
            Some("334 UGFzc3dvcmQ6\r\n".into())
        }
        l if l == base64::engine::general_purpose::STANDARD.encode("pa55word") => {
            Some("235 2.7.0 Authentication successful\r\n".into())
        }
        _ => None,
    });
    let port = responder(script).await;
    let mut t = Transcript::default();
    let creds = Credentials::Login {
        user: "relay@contoso.com".into(),
        password: Secret::new("pa55word"),
    };
    let conn = Connection::open(&settings(port, TlsMode::None), &creds, &mut t)
        .await
        .unwrap();
    conn.quit(&mut t).await;
    assert!(seen.lock().unwrap().lines.iter().any(|l| l == "AUTH LOGIN"));
    let text = t.to_text();
    assert!(!text.contains("cGE1NXdvcmQ"), "{text}");
    assert!(text.contains("C: [redacted password]"), "{text}");
}

#[tokio::test]
async fn required_tls_without_starttls_is_refused() {
    let (script, seen) = script(|_| None);
    let port = responder(script).await;
    let mut t = Transcript::default();
    let creds = Credentials::XOAuth2 {
        user: "u@contoso.com".into(),
        token: Secret::new("tok"),
    };
    let err = Connection::open(&settings(port, TlsMode::Required), &creds, &mut t)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::NoStartTls { .. }), "{err:?}");
    // Opportunistic with credentials must not sign in in the clear either.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!seen
        .lock()
        .unwrap()
        .lines
        .iter()
        .any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn greeting_refusal_has_greeting_stage() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut tcp, _): (TcpStream, _) = listener.accept().await.unwrap();
        tcp.write_all(b"554 5.7.1 Service unavailable; Client host blocked\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let mut t = Transcript::default();
    let err = Connection::open(&settings(port, TlsMode::None), &Credentials::None, &mut t)
        .await
        .unwrap_err();
    match err {
        UpstreamError::Reply { stage, reply } => {
            assert_eq!(stage, Stage::Greeting);
            assert_eq!(reply.enhanced.as_deref(), Some("5.7.1"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(t.to_text().contains("S: 554 5.7.1 Service unavailable"));
}

#[tokio::test]
async fn connect_refused_is_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut t = Transcript::default();
    let err = Connection::open(&settings(port, TlsMode::None), &Credentials::None, &mut t)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Connect { .. }), "{err:?}");
    assert_eq!(
        err.verdict().action,
        postern_engine::delivery::Action::Retry
    );
}

fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    (Arc::new(config), cert_pem)
}

#[tokio::test]
async fn starttls_with_ca_file_then_xoauth2() {
    let (config, cert_pem) = tls_config();
    let (mut script, seen) = script(|_| None);
    script.tls = Some(config);
    script.ehlo_plain = "250-fake.outlook.test Hello\r\n250-STARTTLS\r\n250 8BITMIME\r\n".into();
    script.ehlo_tls =
        "250-fake.outlook.test Hello\r\n250-AUTH LOGIN XOAUTH2\r\n250 8BITMIME\r\n".into();
    let port = responder(script).await;

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert_pem).unwrap();
    let mut s = settings(port, TlsMode::Required);
    s.host = "localhost".into();
    s.ca_file = Some(ca);

    let mut t = Transcript::default();
    let creds = Credentials::XOAuth2 {
        user: "relay@contoso.com".into(),
        token: Secret::new("tls-secret"),
    };
    let mut conn = Connection::open(&s, &creds, &mut t).await.unwrap();
    assert!(conn.is_encrypted());
    assert_eq!(conn.tls_version().as_deref(), Some("TLSv1.3"));
    let report = conn
        .send(
            "relay@contoso.com",
            &["a@contoso.com".into()],
            CONTENT,
            &mut t,
        )
        .await
        .unwrap();
    assert_eq!(report.accepted.len(), 1);
    conn.quit(&mut t).await;

    let text = t.to_text();
    assert!(text.contains("C: STARTTLS"), "{text}");
    assert!(text.contains("S: 220 2.0.0 SMTP server ready"), "{text}");
    assert!(text.contains("TLSv1.3 established"), "{text}");
    assert!(
        text.contains("offers: AUTH XOAUTH2 LOGIN, 8BITMIME"),
        "{text}"
    );
    assert!(!text.contains("tls-secret"), "{text}");
    let seen = seen.lock().unwrap();
    let ehlos = seen.lines.iter().filter(|l| l.starts_with("EHLO")).count();
    assert_eq!(ehlos, 2, "EHLO again after STARTTLS: {:?}", seen.lines);
}

#[tokio::test]
async fn starttls_with_untrusted_certificate_is_tls_error() {
    let (config, _) = tls_config();
    let (mut script, seen) = script(|_| None);
    script.tls = Some(config);
    script.ehlo_plain = "250-fake.outlook.test Hello\r\n250 STARTTLS\r\n".into();
    let port = responder(script).await;
    let mut s = settings(port, TlsMode::Required);
    s.host = "localhost".into();
    let mut t = Transcript::default();
    let creds = Credentials::XOAuth2 {
        user: "relay@contoso.com".into(),
        token: Secret::new("tok"),
    };
    let err = Connection::open(&s, &creds, &mut t).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Tls { .. }), "{err:?}");
    assert!(!seen
        .lock()
        .unwrap()
        .lines
        .iter()
        .any(|l| l.starts_with("AUTH")));
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let (server, cert_pem) = tls_config();
    // A self-signed client certificate, trusted by the server as its own root.
    let client = rcgen::generate_simple_self_signed(vec!["relay.contoso.com".to_owned()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let server_cert = server.cert_resolver.clone();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(server_cert);

    let (mut script, _) = script(|_| None);
    script.tls = Some(Arc::new(config));
    script.ehlo_plain = "250-fake.outlook.test Hello\r\n250 STARTTLS\r\n".into();
    script.ehlo_tls = "250 fake.outlook.test Hello\r\n".into();
    let port = responder(script).await;

    let dir = tempfile::tempdir().unwrap();
    let (ca, crt, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("c.pem"),
        dir.path().join("k.pem"),
    );
    std::fs::write(&ca, cert_pem).unwrap();
    std::fs::write(&crt, client.cert.pem()).unwrap();
    std::fs::write(&key, client.key_pair.serialize_pem()).unwrap();
    let mut s = settings(port, TlsMode::Required);
    s.host = "localhost".into();
    s.ca_file = Some(ca);
    s.client_cert = Some((crt, key));

    let mut t = Transcript::default();
    let mut conn = Connection::open(&s, &Credentials::None, &mut t)
        .await
        .unwrap();
    assert!(conn.is_usable().await, "{}", t.to_text());
    conn.quit(&mut t).await;
}
