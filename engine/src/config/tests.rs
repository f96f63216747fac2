//! Config tests: defaults that work, and errors that name the key.

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("test.toml"))
}

#[test]
fn empty_file_gives_working_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.listener.listen, vec!["127.0.0.1:2525".parse().unwrap()]);
    assert_eq!(c.upstream.effective_host(), "smtp.office365.com");
    assert_eq!(c.upstream.effective_port(), 587);
    assert_eq!(c.limits.messages_per_minute, 30);
    assert_eq!(c.limits.recipients_per_day, 10_000);
    assert_eq!(c.limits.max_connections, 3);
    assert_eq!(c.listener.max_message_bytes, 36_700_160);
    assert!(c.upstream_gap().is_some());
}

#[test]
fn errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("[upstream]\nmode = \"smoke-signals\"", "mode"),
        (
            "[upstream]\nmailbox = \"not an address\"",
            "upstream.mailbox",
        ),
        (
            "[oauth]\nauthority = \"http://login.example.com\"",
            "oauth.authority",
        ),
        ("[listener]\nlisten = [\"nonsense\"]", "listen"),
        ("[listener]\nallow = [\"10.0.0.0/99\"]", "allow"),
        ("[listener]\nrequire_auth = true", "listener.users"),
        (
            "[limits]\nmessages_per_minute = 0",
            "limits.messages_per_minute",
        ),
        ("[upstream]\nmode = \"relay\"", "upstream.host"),
        ("[listener]\nbogus = 1", "bogus"),
        ("[delivery]\nretry_first = \"soon\"", "retry_first"),
    ];
    for (text, key) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(key), "{text:?} -> {err}");
    }
}

#[test]
fn loopback_http_authority_is_allowed() {
    for a in [
        "http://127.0.0.1:9999",
        "http://localhost:1",
        "http://[::1]:80",
    ] {
        let text = format!("[oauth]\nauthority = \"{a}\"");
        parse(&text).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
}

#[test]
fn full_config_round_trips() {
    let text = r#"
[listener]
listen = ["0.0.0.0:2525"]
tls_listen = ["0.0.0.0:4650"]
allow = ["192.168.1.0/24"]
require_auth = true
users = ["scanner"]
idle_timeout = "2m"
[upstream]
mailbox = "scanner@contoso.com"
rewrite_sender = true
[oauth]
client_id = "00000000-0000-0000-0000-000000000000"
tenant = "contoso.com"
[spool]
dir = "/var/spool/postern"
"#;
    let c = parse(text).unwrap();
    assert_eq!(c.listener.idle_timeout, Duration::from_secs(120));
    assert!(c.upstream_gap().is_none());
    let again = parse(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(c, again);
}

#[test]
fn relay_and_direct_send_need_only_a_domain() {
    let c = parse("[upstream]\nmode = \"direct-send\"\nmailbox = \"scanner@Contoso.com\"").unwrap();
    assert_eq!(c.upstream.auth, UpstreamAuth::None);
    assert_eq!(c.upstream.effective_domain(), "contoso.com");
    assert_eq!(
        c.upstream.internal_domains(),
        vec!["contoso.com".to_string()]
    );
    assert_eq!(c.upstream.effective_port(), 25);
    let c = parse("[upstream]\nmode = \"relay\"\ndomain = \"contoso.com\"\naccepted_domains = [\"contoso.com\", \"fabrikam.com\"]").unwrap();
    assert_eq!(c.upstream.internal_domains().len(), 2);
}

#[cfg(unix)]
#[test]
fn a_client_key_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "[upstream]\nmode = \"relay\"\ndomain = \"contoso.com\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        cert.display(),
        key.display()
    );
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.contains("upstream.client_key") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    parse(&text).unwrap();
}
