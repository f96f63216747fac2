//! SMTP AUTH inside a session (RFC 4954), a device logging in: PLAIN and
//! LOGIN with and without initial response, "*" to cancel, the brute-force
//! pause before a 535, and the block (454) after too many failures (the
//! policy and the password check are `listener::device_auth`). SASL responses are never
//! logged; only the user name is.
//!
//! Device quirk: some (Xerox) units answer the first 334 with QUIT instead
//! of a user name when SMTP authentication is switched on but not filled in
//! on the device. That QUIT is honoured (221, connection closed) and logged
//! as a warning that says what to check on the device.

use std::time::Duration;

use super::{End, Line, Session};
use crate::listener::device_auth::{self, SaslError};
use crate::secrets::Secret;

impl Session {
    /// AUTH; a QUIT at a prompt sets `quit`, which ends the session.
    pub(super) async fn auth(&mut self, mechanism: u64, initial: String) -> Result<(), End> {
        let auth = self.shared.device_auth.clone();
        if !auth.has_users() {
            self.bad("502 5.5.1 AUTH not available: no device users are configured");
            return Ok(());
        }
        if self.helo.is_none() {
            self.bad("503 5.5.1 Send EHLO first");
            return Ok(());
        }
        if self.auth_user.is_some() {
            self.bad("503 5.5.1 Already authenticated");
            return Ok(());
        }
        if self.tx.is_some() {
            self.bad("503 5.5.1 AUTH is not allowed during a mail transaction");
            return Ok(());
        }
        if !self.auth_offered() {
            self.reply("538 5.7.11 Encryption required for requested authentication mechanism: use STARTTLS first");
            return Ok(());
        }
        if auth.is_blocked(self.ip, tokio::time::Instant::now()) {
            tracing::warn!(peer = %self.peer, "refused AUTH: too many failed logins");
            let text = format!(
                "454 4.7.0 Too many failed logins from {}, try again later",
                self.ip
            );
            self.reply(&text);
            return Ok(());
        }
        let credentials = match mechanism {
            smtp_proto::AUTH_PLAIN => {
                let response = if initial.is_empty() {
                    self.reply("334 ");
                    self.sasl_line("its credentials").await?
                } else {
                    Some(initial)
                };
                response.map(|r| device_auth::decode_plain(&r))
            }
            smtp_proto::AUTH_LOGIN => self.login_exchange(initial).await?,
            _ => {
                self.bad("504 5.5.4 Unrecognized authentication type (use PLAIN or LOGIN)");
                return Ok(());
            }
        };
        let (user, password) = match credentials {
            None => return Ok(()), // line too long, already answered
            Some(Ok(c)) => c,
            Some(Err(SaslError::Cancelled)) => {
                self.reply("501 5.0.0 Authentication cancelled");
                return Ok(());
            }
            Some(Err(SaslError::Malformed)) => {
                self.bad("501 5.5.2 Cannot decode the authentication response");
                return Ok(());
            }
        };
        self.check_login(&auth, user, password).await
    }

    /// LOGIN: user name (maybe the initial response), then password.
    async fn login_exchange(
        &mut self,
        initial: String,
    ) -> Result<Option<Result<(String, Secret), SaslError>>, End> {
        let user_line = if initial.is_empty() {
            self.reply("334 VXNlcm5hbWU6");
            match self.sasl_line("its user name").await? {
                Some(l) => l,
                None => return Ok(None),
            }
        } else {
            initial
        };
        let user = match device_auth::decode_text(&user_line) {
            Ok(u) => u,
            Err(e) => return Ok(Some(Err(e))),
        };
        self.reply("334 UGFzc3dvcmQ6");
        let Some(pass_line) = self.sasl_line("its password").await? else {
            return Ok(None);
        };
        Ok(Some(
            device_auth::decode_text(&pass_line).map(|p| (user, Secret::new(p))),
        ))
    }

    /// One SASL response line (never logged); None when it was answered
    /// here already (too long, or QUIT: see the module docs). `wanted`
    /// names what the prompt asked for, for the log.
    async fn sasl_line(&mut self, wanted: &str) -> Result<Option<String>, End> {
        match self.conn.read_line(self.shared.config.idle_timeout).await? {
            Line::Text(l) => {
                self.crlf_seen |= l.ends_with(b"\r\n");
                if l.trim_ascii().eq_ignore_ascii_case(b"QUIT") {
                    tracing::warn!(
                        peer = %self.peer,
                        "the device gave up at the AUTH prompt (it sent QUIT instead of {wanted}): check that SMTP authentication (a user name and password from listener.users) is configured on the device; if it should send without logging in, turn SMTP authentication off on the device and add its address to [listener] allow"
                    );
                    let bye = format!(
                        "221 2.0.0 {} closing connection (login not completed)",
                        self.shared.hostname
                    );
                    self.reply(&bye);
                    self.quit = true;
                    return Ok(None);
                }
                Ok(Some(String::from_utf8_lossy(&l).into_owned()))
            }
            Line::TooLong => {
                self.bad("500 5.5.2 Line too long");
                Ok(None)
            }
        }
    }

    async fn check_login(
        &mut self,
        auth: &device_auth::DeviceAuth,
        user: String,
        password: Secret,
    ) -> Result<(), End> {
        match auth.verify(&user, &password).await {
            Ok(true) => {
                auth.record_success(self.ip);
                tracing::info!(peer = %self.peer, %user, "device logged in");
                self.auth_user = Some(user);
                self.reply("235 2.7.0 Authentication successful");
            }
            Ok(false) => {
                let delay = auth.record_failure(self.ip, tokio::time::Instant::now());
                tracing::warn!(peer = %self.peer, %user, delay_ms = delay.as_millis() as u64, "failed device login");
                self.conn.flush().await?;
                self.pause(delay).await?;
                self.reply("535 5.7.8 Authentication failed: the username or password the device uses is wrong");
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, %user, error = %e, "cannot check a device password");
                self.reply("454 4.7.0 Temporary authentication failure, try again later");
            }
        }
        Ok(())
    }

    /// Waits (brute-force slow-down) unless the listener shuts down.
    async fn pause(&mut self, delay: Duration) -> Result<(), End> {
        if delay.is_zero() {
            return Ok(());
        }
        let mut shutdown = self.conn.shutdown();
        tokio::select! {
            _ = tokio::time::sleep(delay) => Ok(()),
            _ = shutdown.wait_for(|s| *s) => Err(End::Shutdown),
        }
    }
}
