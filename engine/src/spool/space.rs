//! The disk reserve (`spool.min_free`, like Postfix's `queue_minfree`):
//! how much free space the spool's file system has, and whether a new
//! message still fits above the reserve. The listener asks at MAIL (with
//! the size the device declared, if any) and once more at the end of DATA,
//! before the 250; never per chunk. Below the reserve new mail gets
//! `452 4.3.1` and the device tries again later; what is already queued is
//! untouched. A disk that fills anyway (another program) still gives
//! `451` and loses nothing: the reserve is an early warning, not the only
//! defence.
//!
//! Free space is `statvfs` on unix (blocks available to this user) and
//! `GetDiskFreeSpaceExW` on Windows (bytes available to this user).

use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;

use super::{Incoming, Spool};

/// Too little room: what is free, and the reserve it would cut into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowSpace {
    /// Bytes free on the spool's file system now.
    pub free: u64,
    /// `spool.min_free`.
    pub reserve: u64,
}

/// Whether `incoming` more bytes fit on a disk with `free` bytes free and
/// still leave `reserve`. A reserve of 0 turns the check off.
pub fn check(free: u64, reserve: u64, incoming: u64) -> Result<(), LowSpace> {
    if reserve == 0 || free.saturating_sub(incoming) >= reserve {
        Ok(())
    } else {
        Err(LowSpace { free, reserve })
    }
}

impl Spool {
    /// Sets the disk reserve (the engine does, from `spool.min_free`).
    pub fn set_min_free(&self, bytes: u64) {
        self.inner.min_free.store(bytes, Ordering::Relaxed);
    }

    /// The disk reserve in effect.
    pub fn min_free(&self) -> u64 {
        self.inner.min_free.load(Ordering::Relaxed)
    }

    /// Whether a message of `incoming` bytes may still be accepted. When the
    /// free space cannot be measured the answer is yes (and a warning is
    /// logged): a full disk is still caught by the write failing (451).
    pub async fn room_for(&self, incoming: u64) -> Result<(), LowSpace> {
        let reserve = self.min_free();
        if reserve == 0 {
            return Ok(());
        }
        let dir = self.inner.dir.clone();
        let free = tokio::task::spawn_blocking(move || free_bytes(&dir))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
        match free {
            Ok(free) => check(free, reserve, incoming),
            Err(e) => {
                tracing::warn!(dir = %self.inner.dir.display(), error = %e, "cannot tell how much disk space is free; spool.min_free is not checked");
                Ok(())
            }
        }
    }
}

impl Incoming {
    /// Whether this message, received whole, leaves the reserve free. Its
    /// bytes are on disk already except what is still in the write buffer.
    pub async fn room(&self) -> Result<(), LowSpace> {
        let unwritten = self.file.as_ref().map_or(0, |f| f.buffer().len()) as u64;
        self.spool.room_for(unwritten).await
    }
}

/// Bytes free for this user on the file system holding `dir`.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)] // statvfs's field types differ by platform
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `st` points to writable
    // memory of the right type; statvfs fills it when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Bytes free for this user on the volume holding `dir`.
#[cfg(windows)]
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::GetDiskFreeSpaceExW;
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut available: u64 = 0;
    // SAFETY: `wide` is NUL-terminated; the out pointers are valid or null.
    let ok = unsafe {
        GetDiskFreeSpaceExW(
            wide.as_ptr(),
            &mut available,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(available)
}

/// Neither unix nor Windows: said plainly, and the reserve is not checked.
#[cfg(not(any(unix, windows)))]
pub fn free_bytes(_dir: &Path) -> io::Result<u64> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "free disk space cannot be measured on this platform",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_kept() {
        const MB: u64 = 1 << 20;
        assert_eq!(check(200 * MB, 100 * MB, 0), Ok(()));
        assert_eq!(check(200 * MB, 100 * MB, 100 * MB), Ok(()));
        assert_eq!(
            check(200 * MB, 100 * MB, 100 * MB + 1),
            Err(LowSpace {
                free: 200 * MB,
                reserve: 100 * MB
            })
        );
        assert!(check(99 * MB, 100 * MB, 0).is_err());
        assert!(check(10, 100, 1000).is_err(), "no underflow");
        assert_eq!(check(0, 0, 1000), Ok(()), "a reserve of 0 is off");
    }

    #[test]
    fn free_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn the_spool_refuses_below_its_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), crate::events::Events::new())
            .await
            .unwrap();
        assert_eq!(spool.min_free(), 0);
        assert_eq!(spool.room_for(u64::MAX).await, Ok(()), "off by default");
        spool.set_min_free(1);
        assert_eq!(spool.room_for(0).await, Ok(()));
        spool.set_min_free(u64::MAX);
        let low = spool.room_for(0).await.unwrap_err();
        assert_eq!(low.reserve, u64::MAX);
        assert!(low.free > 0);
    }
}
