//! Sign-in from the window: runs the engine's flow (browser with PKCE, or
//! device code) in the background. `sign_in` answers as soon as the flow
//! has something to show (the URL it opened, or the code to enter); the
//! outcome arrives later as `signin-finished`, after which the engine is
//! told to use the new sign-in (`Request::Recheck`).

use postern_engine::auth::signin::{self, SignInUi, INTERACTIVE_TIMEOUT};
use postern_engine::config::{OAuthFlow, UpstreamAuth};
use postern_engine::control::Request;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::mpsc;

use crate::contract::{SignIn, SignInFinished};
use crate::shell::Shell;

/// Hands what the person needs to the waiting `sign_in` command.
struct Window(mpsc::UnboundedSender<SignIn>);

impl SignInUi for Window {
    fn open_url(&self, url: &str, open_browser: bool) {
        if open_browser {
            if let Err(e) = crate::account_login::open_in_browser(url) {
                tracing::warn!("could not open a browser for the sign-in: {e}");
            }
        }
        let _ = self.0.send(SignIn::Browser { url: url.into() });
    }

    fn device_code(&self, verification_uri: &str, user_code: &str, message: &str) {
        let _ = self.0.send(SignIn::Device {
            verification_uri: verification_uri.into(),
            user_code: user_code.into(),
            message: message.into(),
        });
    }
}

pub async fn start<R: Runtime>(app: AppHandle<R>, device_code: bool) -> Result<SignIn, String> {
    let config = app.state::<Shell>().config.read().await.clone();
    if config.upstream.auth != UpstreamAuth::OAuth {
        return Err("upstream.auth is not \"oauth\": there is nothing to sign in to.".into());
    }
    if config.oauth.flow == OAuthFlow::ClientCredentials && !device_code {
        return Err("oauth.flow is \"client-credentials\": Postern signs in as the app, with no person involved. Store the client secret instead.".into());
    }
    let use_device = device_code || config.oauth.flow == OAuthFlow::DeviceCode;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut flow = tauri::async_runtime::spawn(async move {
        let store = postern_engine::secrets::SecretStore::new();
        let ui = Window(tx);
        let result = if use_device {
            signin::device_code(&config, &store, &ui).await
        } else {
            signin::interactive(&config, &store, &ui, true, INTERACTIVE_TIMEOUT).await
        };
        let shell = app.state::<Shell>();
        let finished = match result {
            Ok(_) => {
                let _ = shell.ask(Request::Recheck).await;
                let _ = shell.nudge.send(());
                SignInFinished {
                    ok: true,
                    message: "Signed in. Postern renews the sign-in by itself.".into(),
                }
            }
            Err(e) => SignInFinished {
                ok: false,
                message: e.to_string(),
            },
        };
        let _ = app.emit("signin-finished", &finished);
        finished
    });
    tokio::select! {
        shown = rx.recv() => shown.ok_or_else(|| "the sign-in ended early".to_string()),
        // Ended before showing anything: a configuration or network error.
        done = &mut flow => match done {
            Ok(finished) => Err(finished.message),
            Err(e) => Err(e.to_string()),
        },
    }
}
