//! Tests of the secrets commands against the real keychain (run under
//! `scripts/with-keyring.sh`): what is stored is found by `secret-tool`,
//! and never in the config file nor in any answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use postern_engine::config::Config;
use postern_testkit::{ClientRegistration, FakeIdentity, IdentityOptions};

use super::*;
use crate::test_support::{counting, keychain_lookup, shell_in, unique};

fn config_text(client_id: &str, mailbox: &str) -> String {
    format!(
        "[upstream]\nmailbox = \"{mailbox}\"\n\n[oauth]\nclient_id = \"{client_id}\"\ntenant = \"contoso.com\"\nflow = \"client-credentials\"\n"
    )
}

fn answers(values: &[serde_json::Value]) -> String {
    values
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_client_secret_goes_to_the_keychain_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let client_id = unique("app");
    let text = config_text(&client_id, "scanner@contoso.com");
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);
    let value = unique("S3cr3t~value");

    let before = state(&shell).await.unwrap();
    assert!(!before.client_secret && !before.refresh_token && !before.mailbox_password);

    let stored = store(
        &shell,
        &setup,
        SecretKind::ClientSecret,
        &format!("{value}\r\n"),
    )
    .await
    .unwrap();
    assert_eq!(stored, Stored { stored: true });
    let account = format!("client-secret:{client_id}");
    assert_eq!(
        keychain_lookup(&account).as_deref().map(str::trim_end),
        Some(value.as_str())
    );

    let after = state(&shell).await.unwrap();
    assert!(after.client_secret && !after.mailbox_password);
    let said = answers(&[
        serde_json::to_value(&stored).unwrap(),
        serde_json::to_value(&after).unwrap(),
        serde_json::to_value(info_of(&shell)).unwrap(),
    ]);
    assert!(!said.contains(&value), "{said}");
    let file = std::fs::read_to_string(&shell.config_path).unwrap();
    assert_eq!(file, text, "the config file is untouched");
    assert!(!file.contains(&value));

    let removed = remove(&shell, &setup, SecretKind::ClientSecret)
        .await
        .unwrap();
    assert_eq!(removed, Removed { removed: true });
    assert_eq!(keychain_lookup(&account), None);
    assert!(!state(&shell).await.unwrap().client_secret);
}

fn info_of(shell: &Shell) -> crate::setup::SetupInfo {
    crate::setup::info(shell, &Setup::new(false))
}

#[tokio::test]
async fn the_mailbox_password_uses_the_cli_key() {
    let dir = tempfile::tempdir().unwrap();
    let mailbox = format!("{}@contoso.com", unique("box"));
    let shell = shell_in(dir.path(), Some(&config_text("x", &mailbox)));
    let setup = Setup::new(false);
    store(&shell, &setup, SecretKind::MailboxPassword, "pass word")
        .await
        .unwrap();
    let account = format!("password:{mailbox}");
    assert_eq!(
        keychain_lookup(&account).as_deref().map(str::trim_end),
        Some("pass word")
    );
    assert!(state(&shell).await.unwrap().mailbox_password);
    remove(&shell, &setup, SecretKind::MailboxPassword)
        .await
        .unwrap();
    assert_eq!(keychain_lookup(&account), None);
}

#[tokio::test]
async fn empty_values_and_missing_owners_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let shell = shell_in(dir.path(), None);
    let setup = Setup::new(false);
    let e = store(&shell, &setup, SecretKind::ClientSecret, "x")
        .await
        .unwrap_err();
    assert!(e.contains("oauth.client_id"), "{e}");
    let e = store(&shell, &setup, SecretKind::MailboxPassword, "x")
        .await
        .unwrap_err();
    assert!(e.contains("upstream.mailbox"), "{e}");

    let shell = shell_in(dir.path(), Some(&config_text(&unique("app"), "a@b.c")));
    for empty in ["", "  ", "\r\n"] {
        let e = store(&shell, &setup, SecretKind::ClientSecret, empty)
            .await
            .unwrap_err();
        assert!(e.contains("empty"), "{e}");
    }
    let e = store(&shell, &setup, SecretKind::RefreshToken, "rt")
        .await
        .unwrap_err();
    assert!(e.contains("signing in"), "{e}");
    assert!(!state(&shell).await.unwrap().client_secret);
}

#[tokio::test]
async fn device_users_are_added_and_removed_with_their_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let shell = shell_in(dir.path(), None);
    let setup = Setup::new(false);
    let restarts = AtomicUsize::new(0);
    let name = unique("scanner");
    let password = unique("pw");

    for bad in ["", "two words", "tab\tname"] {
        let e = add_user(&shell, &setup, bad, "pw", counting(&restarts))
            .await
            .unwrap_err();
        assert!(
            e.contains("listener.users") && e.contains("not a usable user name"),
            "{e}"
        );
    }
    let e = add_user(&shell, &setup, &name, "", counting(&restarts))
        .await
        .unwrap_err();
    assert!(e.contains("empty"), "{e}");
    assert_eq!(restarts.load(Ordering::SeqCst), 0);
    assert!(!shell.config_path.exists(), "nothing written for a refusal");

    let r = add_user(&shell, &setup, &name, &password, counting(&restarts))
        .await
        .unwrap();
    assert_eq!(r, Stored { stored: true });
    assert_eq!(restarts.load(Ordering::SeqCst), 1);
    let account = format!("device:{name}");
    assert_eq!(
        keychain_lookup(&account).as_deref().map(str::trim_end),
        Some(password.as_str())
    );
    let file = std::fs::read_to_string(&shell.config_path).unwrap();
    assert!(!file.contains(&password), "{file}");
    let on_disk = Config::parse(&file, &shell.config_path).unwrap();
    assert_eq!(on_disk.listener.users, [name.as_str()]);
    assert_eq!(*shell.config.read().await, on_disk);
    let s = state(&shell).await.unwrap();
    assert_eq!(
        s.device_users,
        [DeviceUserSecret {
            name: name.clone(),
            stored: true
        }]
    );
    assert!(!serde_json::to_string(&s).unwrap().contains(&password));

    // A new password for the same user: stored, the config is unchanged.
    add_user(&shell, &setup, &name, "second", counting(&restarts))
        .await
        .unwrap();
    assert_eq!(restarts.load(Ordering::SeqCst), 1);
    assert_eq!(
        keychain_lookup(&account).as_deref().map(str::trim_end),
        Some("second")
    );

    let r = remove_user(&shell, &setup, &name, counting(&restarts))
        .await
        .unwrap();
    assert_eq!(r, Removed { removed: true });
    assert_eq!(keychain_lookup(&account), None);
    let file = std::fs::read_to_string(&shell.config_path).unwrap();
    assert!(Config::parse(&file, &shell.config_path)
        .unwrap()
        .listener
        .users
        .is_empty());
}

#[tokio::test]
async fn the_last_user_stays_while_logins_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("copier");
    let text = format!("[listener]\nrequire_auth = true\nusers = [\"{name}\"]\n");
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);
    let restarts = AtomicUsize::new(0);
    add_user(&shell, &setup, &name, "pw", counting(&restarts))
        .await
        .unwrap();
    let e = remove_user(&shell, &setup, &name, counting(&restarts))
        .await
        .unwrap_err();
    assert!(e.contains("require_auth"), "{e}");
    assert_eq!(std::fs::read_to_string(&shell.config_path).unwrap(), text);
    let account = format!("device:{name}");
    assert!(keychain_lookup(&account).is_some(), "the password is kept");
    remove_user(&shell, &setup, "", counting(&restarts))
        .await
        .unwrap_err();
    SecretStore::new()
        .delete(&SecretKey::DevicePassword { user: name })
        .unwrap();
}

#[tokio::test]
async fn the_app_token_check_shows_the_granted_roles_and_never_the_token() {
    let client_id = unique("app");
    let secret = unique("cs");
    let registration = |roles: Vec<String>| IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: client_id.clone(),
            client_secret: Some(secret.clone()),
            user: "scanner@contoso.com".into(),
        }],
        app_roles: roles,
        ..Default::default()
    };
    let id = FakeIdentity::start(registration(vec!["SMTP.SendAsApp".into()])).await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}authority = \"{}\"\n",
        config_text(&client_id, "scanner@contoso.com"),
        id.authority()
    );
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);
    let config = shell.config.read().await.clone();

    // No secret stored yet: said so.
    let e = postern_engine::auth::claims::check_app_token(&config, SecretStore::new())
        .await
        .unwrap_err();
    assert!(e.contains("No client secret"), "{e}");

    store(&shell, &setup, SecretKind::ClientSecret, &secret)
        .await
        .unwrap();
    let check = postern_engine::auth::claims::check_app_token(&config, SecretStore::new())
        .await
        .unwrap();
    assert_eq!(check.roles, ["SMTP.SendAsApp"]);
    assert_eq!(check.audience, "https://outlook.office365.com");
    let now = postern_engine::spool::now_ms();
    assert!(check.expires_at > now + 50 * 60_000, "{check:?}");
    let answer = serde_json::to_string(&check).unwrap();
    assert!(
        !answer.contains(&secret) && !answer.contains("eyJ"),
        "{answer}"
    );
    assert_eq!(id.issued_tokens(), 1);

    // A wrong secret: AADSTS7000215, explained.
    store(&shell, &setup, SecretKind::ClientSecret, "wrong")
        .await
        .unwrap();
    let e = postern_engine::auth::claims::check_app_token(&config, SecretStore::new())
        .await
        .unwrap_err();
    assert!(
        e.starts_with("The client secret is wrong") && e.contains("AADSTS7000215"),
        "{e}"
    );

    // Consent never given: a token without roles.
    let id = FakeIdentity::start(registration(vec![])).await;
    let mut config = config.clone();
    config.oauth.authority = id.authority();
    store(&shell, &setup, SecretKind::ClientSecret, &secret)
        .await
        .unwrap();
    let check = postern_engine::auth::claims::check_app_token(&config, SecretStore::new())
        .await
        .unwrap();
    assert!(check.roles.is_empty(), "{check:?}");
    remove(&shell, &setup, SecretKind::ClientSecret)
        .await
        .unwrap();
}

/// `get_permissions` in Graph mode, app-only: the roles Microsoft granted
/// and what is missing, from the token the engine holds; never the token.
#[tokio::test]
async fn graph_permissions_come_from_the_token_roles_and_never_hold_the_token() {
    use postern_engine::auth::permissions::GrantKind;
    let client_id = unique("app");
    let secret = unique("cs");
    let id = FakeIdentity::start(IdentityOptions {
        clients: vec![ClientRegistration {
            client_id: client_id.clone(),
            client_secret: Some(secret.clone()),
            user: "scanner@contoso.com".into(),
        }],
        graph_roles: vec!["Mail.Send".into()],
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}authority = \"{}\"\n",
        config_text(&client_id, "scanner@contoso.com"),
        id.authority()
    )
    .replace("[upstream]\n", "[upstream]\nmode = \"graph\"\n");
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);

    // No secret yet: the reason, no answer.
    let e = crate::ipc::permissions(&shell).await.unwrap_err();
    assert!(e.contains("No client secret"), "{e}");

    store(&shell, &setup, SecretKind::ClientSecret, &secret)
        .await
        .unwrap();
    let p = crate::ipc::permissions(&shell).await.unwrap();
    assert_eq!(p.kind, GrantKind::App);
    assert_eq!(p.granted, ["Mail.Send"]);
    assert_eq!(p.audience, "https://graph.microsoft.com");
    let missing: Vec<_> = p.missing.iter().map(|m| m.permission.as_str()).collect();
    assert_eq!(missing, ["Mail.ReadWrite"]);
    let answer = serde_json::to_string(&p).unwrap();
    assert!(
        !answer.contains(&secret) && !answer.contains("eyJ"),
        "{answer}"
    );
    remove(&shell, &setup, SecretKind::ClientSecret)
        .await
        .unwrap();
}
