//! `postern account login` (the command keeps its name; everywhere else
//! this is "sign-in"): runs the engine's sign-in flow (`auth::signin`) from
//! the config (or the device-code flow on request) in the terminal, prints
//! what the person needs on stdout, and tells a running engine to pick up
//! the new sign-in. The window's sign-in is `signin`.

use postern_engine::auth::signin::{self, SignInUi, INTERACTIVE_TIMEOUT};
use postern_engine::config::{Config, OAuthFlow, UpstreamAuth};
use postern_engine::control::{self, Request};
use postern_engine::secrets::SecretStore;

struct Terminal;

impl SignInUi for Terminal {
    fn open_url(&self, url: &str, open_browser: bool) {
        println!("To sign in to Microsoft 365, open this address in a browser on this computer:\n\n  {url}\n");
        if open_browser {
            if let Err(e) = open_in_browser(url) {
                println!("(Could not open a browser by itself: {e}. Copy the address above.)");
            }
        }
        println!("Waiting for the sign-in to finish…");
    }

    fn device_code(&self, verification_uri: &str, user_code: &str, message: &str) {
        println!("To sign in, open {verification_uri} on any device and enter the code:\n\n  {user_code}\n");
        if !message.is_empty() {
            println!("({message})");
        }
        println!("Waiting for the sign-in to finish…");
    }
}

pub async fn run(config: &Config, store: &SecretStore, device_code: bool, no_browser: bool) -> i32 {
    if config.upstream.auth != UpstreamAuth::OAuth {
        eprintln!("postern: upstream.auth is not \"oauth\"; there is nothing to sign in to.");
        return 2;
    }
    if config.oauth.flow == OAuthFlow::ClientCredentials && !device_code {
        eprintln!("postern: oauth.flow is \"client-credentials\": Postern signs in as the app, with no person involved. Store the client secret with `postern account set-secret`.");
        return 2;
    }
    let use_device = device_code || config.oauth.flow == OAuthFlow::DeviceCode;
    let result = if use_device {
        signin::device_code(config, store, &Terminal).await
    } else {
        signin::interactive(config, store, &Terminal, !no_browser, INTERACTIVE_TIMEOUT).await
    };
    match result {
        Ok(token) => {
            let mailbox = if config.upstream.mailbox.is_empty() {
                "(set upstream.mailbox to the mailbox you signed in with)"
            } else {
                &config.upstream.mailbox
            };
            println!(
                "Signed in for {mailbox}. The sign-in is kept in the OS keychain; Postern renews it by itself (access token valid until {}).",
                postern_engine::clock::rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(token.expires_at)
                )
            );
            match control::request(&config.spool_dir(), &Request::Recheck).await {
                Ok(r) if r.ok => println!("The running Postern will use it now."),
                _ => {}
            }
            0
        }
        Err(e) => {
            eprintln!("postern: {e}");
            1
        }
    }
}

pub(crate) fn open_in_browser(url: &str) -> std::io::Result<()> {
    #[cfg(target_os = "windows")]
    let mut cmd = {
        let mut c = std::process::Command::new("rundll32");
        c.args(["url.dll,FileProtocolHandler", url]);
        c
    };
    #[cfg(target_os = "macos")]
    let mut cmd = {
        let mut c = std::process::Command::new("open");
        c.arg(url);
        c
    };
    #[cfg(not(any(target_os = "windows", target_os = "macos")))]
    let mut cmd = {
        let mut c = std::process::Command::new("xdg-open");
        c.arg(url);
        c
    };
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
}
