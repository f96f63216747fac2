//! Every secret Postern keeps lives in the OS keychain under the service
//! name `postern`: Secret Service on Linux (gnome-keyring, KWallet),
//! Credential Manager on Windows, Keychain on macOS. Nothing secret is ever
//! written to disk by Postern itself, and when the keychain is missing or
//! locked the error says so in words an admin can act on.

use std::fmt;

/// The keychain service name every entry lives under.
pub const SERVICE: &str = "postern";

/// A string that never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which secret: each kind has its own keychain entry (the "account" name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKey {
    /// Legacy basic-auth password of the upstream mailbox.
    MailboxPassword { mailbox: String },
    /// OAuth client secret (client-credentials flow).
    ClientSecret { client_id: String },
    /// OAuth refresh token of the signed-in mailbox.
    RefreshToken { client_id: String },
    /// Password a device uses to AUTH to Postern's listener.
    DevicePassword { user: String },
}

impl SecretKey {
    /// The keychain account name (never a secret itself).
    pub fn account(&self) -> String {
        match self {
            SecretKey::MailboxPassword { mailbox } => format!("password:{mailbox}"),
            SecretKey::ClientSecret { client_id } => format!("client-secret:{client_id}"),
            SecretKey::RefreshToken { client_id } => format!("refresh-token:{client_id}"),
            SecretKey::DevicePassword { user } => format!("device:{user}"),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum SecretError {
    #[error("the OS keychain is not available: {0}. On Linux, Postern needs a Secret Service (gnome-keyring or KWallet) running in your desktop session; on a server, start one with `dbus-run-session` and `gnome-keyring-daemon --unlock`.")]
    Unavailable(String),
    #[error("the OS keychain is locked: unlock it (log in to the desktop, or run `gnome-keyring-daemon --unlock`) and try again")]
    Locked,
    #[error("the OS keychain refused the request: {0}")]
    Other(String),
}

/// Access to the keychain. Cheap to clone; every call is blocking (the
/// platform APIs are), so async callers use `get_async`/`set_async`.
#[derive(Clone, Debug, Default)]
pub struct SecretStore {
    _private: (),
}

impl SecretStore {
    pub fn new() -> SecretStore {
        SecretStore { _private: () }
    }

    fn entry(&self, key: &SecretKey) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(SERVICE, &key.account()).map_err(map_err)
    }

    /// `Ok(None)` when there is no such entry.
    pub fn get(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        match self.entry(key)?.get_password() {
            Ok(s) => Ok(Some(Secret(s))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    pub fn set(&self, key: &SecretKey, value: &Secret) -> Result<(), SecretError> {
        self.entry(key)?
            .set_password(value.expose())
            .map_err(map_err)
    }

    /// Removing an entry that does not exist is not an error.
    pub fn delete(&self, key: &SecretKey) -> Result<(), SecretError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    pub async fn get_async(&self, key: SecretKey) -> Result<Option<Secret>, SecretError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .map_err(|e| SecretError::Other(e.to_string()))?
    }

    pub async fn set_async(&self, key: SecretKey, value: Secret) -> Result<(), SecretError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.set(&key, &value))
            .await
            .map_err(|e| SecretError::Other(e.to_string()))?
    }
}

fn map_err(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(inner) => {
            let text = inner.to_string();
            if text.to_ascii_lowercase().contains("lock") {
                SecretError::Locked
            } else {
                SecretError::Unavailable(text)
            }
        }
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable(inner.to_string()),
        other => SecretError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn account_names_are_distinct() {
        let keys = [
            SecretKey::MailboxPassword {
                mailbox: "a".into(),
            },
            SecretKey::ClientSecret {
                client_id: "a".into(),
            },
            SecretKey::RefreshToken {
                client_id: "a".into(),
            },
            SecretKey::DevicePassword { user: "a".into() },
        ];
        let names: std::collections::HashSet<_> = keys.iter().map(|k| k.account()).collect();
        assert_eq!(names.len(), keys.len());
    }
}
