//! How the control channel's bytes travel; the protocol on top is shared
//! (`control::serve`, `control::request`). On Unix: a socket file in the
//! spool directory, mode 0600. On Windows: a named pipe whose name is derived
//! from the user and the spool directory, created first-instance-only (a
//! pipe squatted by someone else stops the engine instead of being used),
//! local clients only, with a DACL that grants only the current user; the
//! client checks that the pipe it reached belongs to that user.
//!
//! Each transport has `bind` (a listener whose `accept` yields a stream),
//! `unbind` and `connect` (`ClientError::NotRunning` when no engine listens).

use std::path::{Path, PathBuf};

use super::ClientError;

/// The socket file's name in the spool directory (Unix).
pub const SOCKET_NAME: &str = "control.sock";

/// Where the Unix socket lives; on Windows nothing is kept in the spool for
/// the control channel, and this path is only reported.
pub fn socket_path(spool_dir: &Path) -> PathBuf {
    spool_dir.join(SOCKET_NAME)
}

/// The Windows pipe name for `user` (a SID string) and `spool_dir`:
/// `\\.\pipe\postern-<16 hex digits>`, a 64-bit FNV-1a of both (a hash fixed
/// here, not std's, so every Postern build derives the same name).
#[cfg(any(windows, test))]
pub fn pipe_name(user: &str, spool_dir: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{user}\n{}", spool_dir.to_string_lossy());
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!(r"\\.\pipe\postern-{h:016x}")
}

#[cfg(unix)]
pub use unix::{bind, connect, unbind, Socket};
#[cfg(windows)]
pub use windows::{bind, connect, unbind, Socket};

#[cfg(unix)]
mod unix {
    use super::*;

    pub struct Socket(tokio::net::UnixListener);

    impl Socket {
        pub async fn accept(&mut self) -> std::io::Result<tokio::net::UnixStream> {
            Ok(self.0.accept().await?.0)
        }
    }

    /// Binds the control socket. The spool lock is already held, so a
    /// socket file left behind by a crash is stale and can go.
    pub fn bind(spool_dir: &Path) -> std::io::Result<Socket> {
        use std::os::unix::fs::PermissionsExt;
        let path = socket_path(spool_dir);
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Socket(listener))
    }

    pub fn unbind(spool_dir: &Path) {
        let _ = std::fs::remove_file(socket_path(spool_dir));
    }

    pub async fn connect(spool_dir: &Path) -> Result<tokio::net::UnixStream, ClientError> {
        match tokio::net::UnixStream::connect(socket_path(spool_dir)).await {
            Ok(s) => Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ClientError::NotRunning)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(windows)]
mod windows {
    use super::*;
    use crate::platform::windows::{current_user_sid, handle_owner, SecurityDescriptor};
    use std::io;
    use std::time::{Duration, Instant};
    use tokio::net::windows::named_pipe::{
        ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
    };

    /// All instances busy: Win32 ERROR_PIPE_BUSY.
    const ERROR_PIPE_BUSY: i32 = 231;

    /// The listening end: one pipe instance waits for the next client.
    pub struct Socket {
        name: String,
        next: NamedPipeServer,
    }

    fn create(name: &str, first: bool) -> io::Result<NamedPipeServer> {
        let sd = SecurityDescriptor::only_me()?;
        let mut attrs = sd.attributes();
        // SAFETY: `attrs` and the descriptor it points to outlive the call.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, std::ptr::addr_of_mut!(attrs).cast())
        }
    }

    impl Socket {
        pub async fn accept(&mut self) -> io::Result<NamedPipeServer> {
            // Cancel-safe: a client that connects stays connected to
            // `next` and is returned by the next call. The next instance is
            // always created before one is given away or dropped, so the
            // name never has no instance (which would let anyone take it).
            if let Err(e) = self.next.connect().await {
                // A client that came and went leaves the instance unusable.
                self.next = create(&self.name, false)?;
                return Err(e);
            }
            let fresh = create(&self.name, false)?;
            Ok(std::mem::replace(&mut self.next, fresh))
        }
    }

    /// Creates the pipe. It must be new: if another process already holds
    /// this name (only a squatter can: the spool lock is ours), this fails.
    pub fn bind(spool_dir: &Path) -> io::Result<Socket> {
        let name = pipe_name(&current_user_sid()?, spool_dir);
        let next = create(&name, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the control pipe {name} (another process holds it?): {e}"),
            )
        })?;
        Ok(Socket { name, next })
    }

    /// A pipe goes with its last handle: nothing to remove.
    pub fn unbind(_spool_dir: &Path) {}

    pub async fn connect(spool_dir: &Path) -> Result<NamedPipeClient, ClientError> {
        let name = pipe_name(&current_user_sid()?, spool_dir);
        // Every instance busy lasts only until the engine creates the next
        // one (right after a connect): try again for a while.
        let deadline = Instant::now() + Duration::from_secs(5);
        let client = loop {
            match ClientOptions::new().open(&name) {
                Ok(c) => break c,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(ClientError::NotRunning)
                }
                Err(e)
                    if e.raw_os_error() == Some(ERROR_PIPE_BUSY) && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => return Err(e.into()),
            }
        };
        // The engine's pipe is owned by the user's own SID (`only_me`).
        let owner = handle_owner(&client)?;
        if owner != current_user_sid()? {
            return Err(ClientError::Io(io::Error::other(format!(
                "the control pipe {name} belongs to someone else ({owner}): not using it"
            ))));
        }
        Ok(client)
    }
}
