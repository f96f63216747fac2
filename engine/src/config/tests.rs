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

/// The README's words for the config values, in TOML and in JSON; the old
/// GUI's `o-auth` is still read (never written).
#[test]
fn config_values_are_the_readmes_words() {
    let c = parse("[upstream]\nauth = \"oauth\"").unwrap();
    assert_eq!(c.upstream.auth, UpstreamAuth::OAuth);
    let c = parse("[upstream]\nauth = \"o-auth\"").unwrap();
    assert_eq!(c.upstream.auth, UpstreamAuth::OAuth);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["upstream"]["auth"], "oauth");
    assert_eq!(json["upstream"]["mode"], "submission");
    assert_eq!(json["oauth"]["flow"], "interactive");
    let words = |v: serde_json::Value| v.as_str().unwrap().to_string();
    for (mode, word) in [
        (UpstreamMode::Submission, "submission"),
        (UpstreamMode::Relay, "relay"),
        (UpstreamMode::DirectSend, "direct-send"),
        (UpstreamMode::Graph, "graph"),
    ] {
        assert_eq!(words(serde_json::to_value(mode).unwrap()), word);
    }
    for (auth, word) in [
        (UpstreamAuth::OAuth, "oauth"),
        (UpstreamAuth::Password, "password"),
        (UpstreamAuth::None, "none"),
    ] {
        assert_eq!(words(serde_json::to_value(auth).unwrap()), word);
        let toml = format!("[upstream]\nauth = \"{word}\"");
        assert_eq!(parse(&toml).unwrap().upstream.auth, auth, "{toml}");
    }
    for (flow, word) in [
        (OAuthFlow::Interactive, "interactive"),
        (OAuthFlow::DeviceCode, "device-code"),
        (OAuthFlow::ClientCredentials, "client-credentials"),
    ] {
        assert_eq!(words(serde_json::to_value(flow).unwrap()), word);
        let toml = format!("[oauth]\nflow = \"{word}\"");
        assert_eq!(parse(&toml).unwrap().oauth.flow, flow, "{toml}");
    }
}

/// Every ```toml block of the README is a config Postern accepts, and each
/// `key = "value"` the README's prose names is too.
#[test]
fn the_readmes_examples_parse() {
    let readme = include_str!("../../../README.md");
    let mut blocks = 0;
    let mut rest = readme;
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```").expect("a closed ```toml block");
        parse(&body[..end]).unwrap_or_else(|e| panic!("README example:\n{}\n{e}", &body[..end]));
        blocks += 1;
        rest = &body[end..];
    }
    assert!(blocks >= 1, "the README has no ```toml example any more");
    // Inline mentions such as `upstream.auth = "oauth"`, in the prose
    // (fenced blocks left out).
    let prose: String = readme
        .split("```")
        .step_by(2)
        .collect::<Vec<_>>()
        .join("\n");
    let mut inline = 0;
    for piece in prose.split('`').skip(1).step_by(2) {
        let Some((key, value)) = piece.split_once(" = ") else {
            continue;
        };
        let Some((section, name)) = key.split_once('.') else {
            continue;
        };
        if !section.chars().all(|c| c.is_ascii_lowercase()) || name.contains(' ') {
            continue;
        }
        let toml = format!("[{section}]\n{name} = {value}");
        parse(&toml).unwrap_or_else(|e| panic!("README mentions `{piece}`: {e}"));
        inline += 1;
    }
    assert!(inline >= 2, "found {inline} inline config mentions");
}

/// No `upstream.port` means the mode's default, shown as null in JSON;
/// the `port = 0` older files hold means the same.
#[test]
fn an_unset_port_is_the_modes_default() {
    let c = parse("").unwrap();
    assert_eq!(c.upstream.port, None);
    assert_eq!(
        serde_json::to_value(&c).unwrap()["upstream"]["port"],
        serde_json::Value::Null
    );
    assert_eq!(c.upstream.effective_port(), 587);
    let c = parse("[upstream]\nport = 0").unwrap();
    assert_eq!(c.upstream.port, None);
    let c = parse("[upstream]\nmode = \"relay\"\ndomain = \"contoso.com\"").unwrap();
    assert_eq!(c.upstream.effective_port(), 25);
    let c = parse("[upstream]\nport = 2587").unwrap();
    assert_eq!(c.upstream.effective_port(), 2587);
}

#[test]
fn the_disk_reserve_is_a_size() {
    let c = parse("").unwrap();
    assert_eq!(c.spool.min_free, None);
    // Default: 100 MB, or two of the largest message when that is more.
    assert_eq!(c.spool.effective_min_free(36_700_160), 100 << 20);
    assert_eq!(c.spool.effective_min_free(200 << 20), 400 << 20);
    let c = parse("[spool]\nmin_free = \"5 MB\"").unwrap();
    assert_eq!(c.spool.min_free, Some(5 << 20));
    assert_eq!(c.spool.effective_min_free(36_700_160), 5 << 20);
    let c = parse("[spool]\nmin_free = 0").unwrap();
    assert_eq!(c.spool.effective_min_free(36_700_160), 0);
    let again = parse(&toml::to_string(&parse("[spool]\nmin_free = \"1.5 GB\"").unwrap()).unwrap())
        .unwrap();
    assert_eq!(again.spool.min_free, Some(3 << 29));
    let e = parse("[spool]\nmin_free = \"lots\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("spool.min_free") && e.contains("is not a size"),
        "{e}"
    );
}

/// `upstream.mode = "graph"`: signs in with OAuth (the default kept, not
/// turned to none as for relay), needs no domain, and the `[graph]` keys
/// have their defaults and their checks.
#[test]
fn graph_mode() {
    let c = parse("[upstream]\nmode = \"graph\"\nmailbox = \"scanner@contoso.com\"").unwrap();
    assert_eq!(c.upstream.mode, UpstreamMode::Graph);
    assert_eq!(c.upstream.auth, UpstreamAuth::OAuth);
    assert_eq!(c.graph.endpoint, "https://graph.microsoft.com");
    assert!(c.graph.save_to_sent_items);
    let c = parse("[upstream]\nmode = \"graph\"\n[graph]\nendpoint = \"http://127.0.0.1:9999/\"\nsave_to_sent_items = false").unwrap();
    assert_eq!(c.graph.root(), "http://127.0.0.1:9999");
    assert!(!c.graph.save_to_sent_items);
    let err = parse("[upstream]\nmode = \"graph\"\nauth = \"password\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upstream.auth") && err.contains("only with OAuth"),
        "{err}"
    );
    let err = parse("[graph]\nendpoint = \"http://graph.example.com\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("graph.endpoint") && err.contains("https"),
        "{err}"
    );
    let err = parse("[graph]\nendpoint = \"https://graph.microsoft.com/v1.0\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("graph.endpoint") && err.contains("service root"),
        "{err}"
    );
    let err = parse("[upstream]\nmode = \"graph\"\n[limits]\nmax_connections = 5")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("limits.max_connections") && err.contains("at most 4"),
        "{err}"
    );
    parse("[upstream]\nmode = \"graph\"\n[limits]\nmax_connections = 4").unwrap();
    parse("[limits]\nmax_connections = 5").unwrap();
    let err = parse("[graph]\nendpont = \"https://graph.microsoft.com\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("endpont"), "{err}");
}

#[test]
fn send_as_sender_needs_the_apps_own_sign_in_and_accepted_domains() {
    let app = "[oauth]\nflow = \"client-credentials\"\n";
    let ok = |mode: &str| {
        format!("[upstream]\nmode = \"{mode}\"\nsend_as = \"sender\"\naccepted_domains = [\"contoso.com\"]\n{app}")
    };
    assert_eq!(
        parse(&ok("graph")).unwrap().upstream.send_as,
        SendAs::Sender
    );
    parse(&ok("submission")).unwrap();
    assert_eq!(parse("").unwrap().upstream.send_as, SendAs::Mailbox);
    let cases = [
        // No accepted domains: nobody's own mailbox can be chosen.
        (
            format!("[upstream]\nmode = \"graph\"\nsend_as = \"sender\"\n{app}"),
            "accepted_domains",
        ),
        // A delegated sign-in is one user: it cannot send as others.
        (
            "[upstream]\nmode = \"graph\"\nsend_as = \"sender\"\naccepted_domains = [\"contoso.com\"]\n[oauth]\nflow = \"device-code\"\n".to_string(),
            "client-credentials",
        ),
        (
            "[upstream]\nsend_as = \"sender\"\naccepted_domains = [\"contoso.com\"]\nauth = \"password\"\n".to_string(),
            "client-credentials",
        ),
        (
            "[upstream]\nmode = \"relay\"\nhost = \"contoso-com.mail.protection.outlook.com\"\nauth = \"none\"\nsend_as = \"sender\"\naccepted_domains = [\"contoso.com\"]\n".to_string(),
            "mode = \"graph\"",
        ),
    ];
    for (text, fix) in cases {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(
            err.contains("upstream.send_as") && err.contains(fix),
            "{text:?} -> {err}"
        );
    }
    let err = parse("[upstream]\nsend_as = \"everyone\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("send_as"), "{err}");
}

#[test]
fn graph_keeps_a_message_within_one_request() {
    let graph = "[upstream]\nmode = \"graph\"\nmailbox = \"scanner@contoso.com\"\n[oauth]\nclient_id = \"x\"\nflow = \"client-credentials\"\n";
    assert!(parse(graph).is_ok(), "the defaults (500 and 500) fit");
    let more = format!("{graph}[listener]\nmax_recipients = 600\n");
    let e = parse(&more).unwrap_err().to_string();
    assert!(e.contains("listener.max_recipients"), "{e}");
    assert!(e.contains("one request"), "{e}");
}
