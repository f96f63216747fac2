//! Tests of the setup assistant's snapshot: Cancel puts the config file and
//! the keychain back (real keychain: run under `scripts/with-keyring.sh`).

use std::sync::atomic::{AtomicUsize, Ordering};

use postern_engine::secrets::SecretStore;

use super::*;
use crate::secrets_ipc::{self, SecretKind};
use crate::test_support::{counting, keychain_lookup, shell_in, unique};

#[tokio::test]
async fn first_run_is_no_config_file_until_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("postern.toml");
    let setup = Setup::at_start(&path);
    let shell = shell_in(dir.path(), None);
    let i = info(&shell, &setup);
    assert!(i.first_run);
    assert_eq!(i.config_path, path.display().to_string());
    begin(&shell, &setup).await.unwrap();
    assert_eq!(finish(&setup), Done {});
    assert!(!setup.first_run());
    assert_eq!(
        serde_json::to_value(info(&shell, &setup)).unwrap(),
        serde_json::json!({"first_run": false, "config_path": path.display().to_string()})
    );
    // Finished: a later cancel has nothing to restore.
    let n = AtomicUsize::new(0);
    assert_eq!(
        cancel(&shell, &setup, counting(&n)).await.unwrap(),
        Restored { restored: false }
    );
    assert_eq!(n.load(Ordering::SeqCst), 0);

    std::fs::write(&path, "").unwrap();
    assert!(!Setup::at_start(&path).first_run());
}

#[tokio::test]
async fn cancel_restores_the_file_and_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let old_app = unique("app");
    let user = unique("scanner");
    let text = format!(
        "# the admin's own comment\n[upstream]\nmailbox = \"scanner@contoso.com\"\n\n[oauth]\nclient_id = \"{old_app}\"\ntenant = \"contoso.com\"\nflow = \"client-credentials\"\n"
    );
    let shell = shell_in(dir.path(), Some(&text));
    let setup = Setup::new(false);
    let restarts = AtomicUsize::new(0);
    let old_secret = unique("old");
    secrets_ipc::store(&shell, &setup, SecretKind::ClientSecret, &old_secret)
        .await
        .unwrap();

    begin(&shell, &setup).await.unwrap();
    // The assistant replaces the secret, adds a device user, and saves a
    // config with a new app registration and its secret.
    secrets_ipc::store(&shell, &setup, SecretKind::ClientSecret, "replaced")
        .await
        .unwrap();
    secrets_ipc::add_user(&shell, &setup, &user, "devpw", counting(&restarts))
        .await
        .unwrap();
    let new_app = unique("app");
    let na = new_app.clone();
    crate::settings::edit_and_apply(
        &shell,
        move |c| {
            c.oauth.client_id = na;
            Ok(())
        },
        counting(&restarts),
    )
    .await
    .unwrap();
    secrets_ipc::store(&shell, &setup, SecretKind::ClientSecret, "for-the-new-app")
        .await
        .unwrap();
    assert_ne!(std::fs::read_to_string(&shell.config_path).unwrap(), text);
    assert!(keychain_lookup(&format!("client-secret:{new_app}")).is_some());
    let before = restarts.load(Ordering::SeqCst);

    let r = cancel(&shell, &setup, counting(&restarts)).await.unwrap();
    assert_eq!(r, Restored { restored: true });
    assert_eq!(
        restarts.load(Ordering::SeqCst),
        before + 1,
        "the engine restarted"
    );
    assert_eq!(
        std::fs::read_to_string(&shell.config_path).unwrap(),
        text,
        "byte for byte, comment and all"
    );
    assert_eq!(shell.config.read().await.oauth.client_id, old_app);
    assert_eq!(
        keychain_lookup(&format!("client-secret:{old_app}"))
            .as_deref()
            .map(str::trim_end),
        Some(old_secret.as_str())
    );
    assert_eq!(keychain_lookup(&format!("client-secret:{new_app}")), None);
    assert_eq!(keychain_lookup(&format!("device:{user}")), None);
    // Once is enough.
    assert_eq!(
        cancel(&shell, &setup, counting(&restarts)).await.unwrap(),
        Restored { restored: false }
    );
    SecretStore::new()
        .delete(&SecretKey::ClientSecret { client_id: old_app })
        .unwrap();
}

#[tokio::test]
async fn cancel_of_a_first_run_removes_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let shell = shell_in(dir.path(), None);
    let setup = Setup::at_start(&shell.config_path);
    let restarts = AtomicUsize::new(0);
    begin(&shell, &setup).await.unwrap();
    let mailbox = format!("{}@contoso.com", unique("m"));
    let mb = mailbox.clone();
    crate::settings::edit_and_apply(
        &shell,
        move |c| {
            c.upstream.mailbox = mb;
            c.upstream.auth = postern_engine::config::UpstreamAuth::Password;
            Ok(())
        },
        counting(&restarts),
    )
    .await
    .unwrap();
    assert!(shell.config_path.exists());
    secrets_ipc::store(&shell, &setup, SecretKind::MailboxPassword, "pw")
        .await
        .unwrap();
    assert!(keychain_lookup(&format!("password:{mailbox}")).is_some());

    cancel(&shell, &setup, counting(&restarts)).await.unwrap();
    assert!(
        !shell.config_path.exists(),
        "no file, as before the assistant"
    );
    assert_eq!(keychain_lookup(&format!("password:{mailbox}")), None);
    assert!(setup.first_run(), "still the first run");
    assert_eq!(
        *shell.config.read().await,
        postern_engine::config::Config::default()
    );
    assert_eq!(restarts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn cancel_restarts_the_real_engine_on_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[listener]\nlisten = [\"127.0.0.1:0\"]\n\n[spool]\ndir = {:?}\n",
        dir.path().join("spool")
    );
    let shell = shell_in(dir.path(), Some(&text));
    let restart = || async { shell.start().await.map(|_| ()) };
    restart().await.unwrap();
    let setup = Setup::new(false);
    begin(&shell, &setup).await.unwrap();
    crate::settings::edit_and_apply(
        &shell,
        |c| {
            c.listener.listen = vec!["127.0.0.2:0".parse().unwrap()];
            Ok(())
        },
        restart,
    )
    .await
    .unwrap();
    let ips =
        |l: Vec<std::net::SocketAddr>| l.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>();
    assert_eq!(ips(shell.listening().await), ["127.0.0.2"]);

    cancel(&shell, &setup, restart).await.unwrap();
    assert_eq!(std::fs::read_to_string(&shell.config_path).unwrap(), text);
    assert_eq!(
        ips(shell.listening().await),
        ["127.0.0.1"],
        "running on the old config"
    );
    assert_eq!(shell.status().await["running"], true);
    shell.stop().await;
}
