//! Windows access control for Postern: the counterpart of Unix modes 0700 /
//! 0600 and of the spool owner check. Everything Postern keeps private — the
//! spool directory (its files inherit), the control pipe — gets a protected
//! DACL that grants the current user, and only them, full access; owners are
//! compared as SIDs.
//!
//! Compiled in CI for `x86_64-pc-windows-gnu`, not run there (no Windows
//! runner): keep it small, and keep everything portable out of it.

use std::ffi::OsStr;
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, GetSecurityInfo,
    SetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorDacl, GetTokenInformation, TokenOwner, TokenUser, ACL,
    DACL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION,
    PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES, TOKEN_OWNER, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(Some(0)).collect()
}

/// A Win32 error code (as returned, not via GetLastError) as an io::Error.
fn win32(code: u32) -> io::Error {
    io::Error::from_raw_os_error(code as i32)
}

/// Reads and frees a NUL-terminated wide string allocated with LocalAlloc.
///
/// # Safety
/// `s` must be such a string, not used afterwards.
unsafe fn take_local_string(s: *mut u16) -> String {
    let len = (0..).take_while(|&i| *s.add(i) != 0).count();
    let text = String::from_utf16_lossy(std::slice::from_raw_parts(s, len));
    LocalFree(s.cast());
    text
}

/// A SID as its string form (`S-1-5-21-…`), which is canonical: two SIDs are
/// equal exactly when their strings are.
fn sid_string(sid: PSID) -> io::Result<String> {
    let mut s: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is a valid SID owned by the caller; on success `s` is a
    // LocalAlloc'd string, taken (and freed) once.
    unsafe {
        if ConvertSidToStringSidW(sid, &mut s) == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(take_local_string(s))
    }
}

/// One piece of the process token's information whose first field is a SID
/// pointer (TOKEN_USER, TOKEN_OWNER), as a SID string.
fn token_sid(class: i32) -> io::Result<String> {
    // SAFETY: the token handle is closed on every path; the buffer is sized
    // by the first call and aligned for the TOKEN_* struct (u64 words); the
    // SID it points to lives inside the buffer.
    unsafe {
        let mut token: HANDLE = ptr::null_mut();
        if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
            return Err(io::Error::last_os_error());
        }
        let mut len = 0u32;
        GetTokenInformation(token, class, ptr::null_mut(), 0, &mut len);
        let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
        let ok = GetTokenInformation(token, class, buf.as_mut_ptr().cast(), len, &mut len);
        let err = io::Error::last_os_error();
        CloseHandle(token);
        if ok == 0 {
            return Err(err);
        }
        let sid = if class == TokenUser {
            (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid
        } else {
            (*buf.as_ptr().cast::<TOKEN_OWNER>()).Owner
        };
        sid_string(sid)
    }
}

/// The SID of the user this process runs as.
pub fn current_user_sid() -> io::Result<String> {
    token_sid(TokenUser)
}

/// Whether `owner` (a SID string) is this user: the user's own SID, or the
/// owner this process gives new objects (an elevated administrator's
/// objects belong to BUILTIN\Administrators, not to the user).
pub fn is_me(owner: &str) -> io::Result<bool> {
    Ok(owner == current_user_sid()? || owner == token_sid(TokenOwner)?)
}

/// A self-relative security descriptor made from SDDL, freed on drop.
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    /// For a directory: grants the current user full access and nobody
    /// else anything (a protected DACL: nothing inherited from the parent);
    /// files and folders created inside inherit the entry.
    pub fn only_me_dir() -> io::Result<SecurityDescriptor> {
        Self::from_sddl(&dir_sddl(&current_user_sid()?))
    }

    /// For a kernel object (the control pipe): owned by the current user
    /// (also when elevated, where the default owner would be
    /// Administrators), who may do everything; nobody else anything.
    pub fn only_me() -> io::Result<SecurityDescriptor> {
        let me = current_user_sid()?;
        Self::from_sddl(&format!("O:{me}D:P(A;;GA;;;{me})"))
    }

    fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        let sddl = wide(OsStr::new(&sddl));
        let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; on success `sd` is LocalAlloc'd
        // and owned by the returned value.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SecurityDescriptor(sd))
    }

    /// SECURITY_ATTRIBUTES pointing at this descriptor (not inheritable
    /// handles); valid while `self` lives.
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }

    fn dacl(&self) -> io::Result<*mut ACL> {
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = ptr::null_mut();
        // SAFETY: self.0 is a valid descriptor; `dacl` points into it.
        let ok =
            unsafe { GetSecurityDescriptorDacl(self.0, &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 || present == 0 || dacl.is_null() {
            return Err(io::Error::other("security descriptor without a DACL"));
        }
        Ok(dacl)
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

fn dir_sddl(me: &str) -> String {
    format!("D:P(A;OICI;FA;;;{me})")
}

/// Replaces `path`'s DACL with one that grants only the current user, not
/// inheriting from the parent; what is created inside inherits it (what
/// exists already gets it too: Windows propagates inheritable entries, a
/// walk of the whole tree, so it is skipped when the DACL is already so).
pub fn restrict_to_me(path: &Path) -> io::Result<()> {
    let name = wide(path.as_os_str());
    // Windows marks the DACL it set auto-inherited: "D:PAI(…)".
    let now = dacl_sddl(&name).map(|d| d.replacen("D:PAI(", "D:P(", 1));
    if now.ok() == Some(dir_sddl(&current_user_sid()?)) {
        return Ok(());
    }
    let sd = SecurityDescriptor::only_me_dir()?;
    // SAFETY: `name` is NUL-terminated; the DACL lives in `sd`.
    let code = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            sd.dacl()?,
            ptr::null(),
        )
    };
    if code != ERROR_SUCCESS {
        return Err(win32(code));
    }
    Ok(())
}

/// A file's DACL as SDDL (`D:P(A;OICI;FA;;;S-1-…)`); `name` NUL-terminated.
fn dacl_sddl(name: &[u16]) -> io::Result<String> {
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; `sd` is LocalAlloc'd and freed after
    // it is converted; the string is taken (and freed) once.
    unsafe {
        let code = GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            &mut sd,
        );
        if code != ERROR_SUCCESS {
            return Err(win32(code));
        }
        let mut s: *mut u16 = ptr::null_mut();
        let ok = ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut s,
            ptr::null_mut(),
        );
        let err = io::Error::last_os_error();
        LocalFree(sd);
        if ok == 0 {
            return Err(err);
        }
        Ok(take_local_string(s))
    }
}

/// The owner of a file or directory, as a SID string.
pub fn path_owner(path: &Path) -> io::Result<String> {
    let name = wide(path.as_os_str());
    // SAFETY: `name` is NUL-terminated and outlives the call.
    owner_from(|owner, sd| unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION,
            owner,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            sd,
        )
    })
}

/// The owner of an open kernel object (the control pipe), as a SID string.
pub fn handle_owner(object: &impl AsRawHandle) -> io::Result<String> {
    // SAFETY: the handle is open for the call.
    owner_from(|owner, sd| unsafe {
        GetSecurityInfo(
            object.as_raw_handle(),
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION,
            owner,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            sd,
        )
    })
}

/// The owner SID string from a security query: `query` fills the owner
/// pointer and the LocalAlloc'd descriptor it points into, and returns a
/// Win32 error code.
fn owner_from(
    query: impl FnOnce(*mut PSID, *mut PSECURITY_DESCRIPTOR) -> u32,
) -> io::Result<String> {
    let mut owner: PSID = ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = ptr::null_mut();
    let code = query(&mut owner, &mut sd);
    if code != ERROR_SUCCESS {
        return Err(win32(code));
    }
    // SAFETY: on success `owner` points into `sd`; the SID is read before
    // `sd` is freed.
    unsafe {
        let s = sid_string(owner);
        LocalFree(sd);
        s
    }
}

/// These run only on Windows (CI compiles them; it has no Windows runner).
#[cfg(test)]
mod tests {
    use super::*;

    /// The spool's DACL: one entry, the current user's, inherited by what
    /// is created inside; the owner is the user; applying it twice is fine.
    #[test]
    fn a_restricted_directory_is_the_users_alone() {
        let dir = tempfile::tempdir().unwrap();
        restrict_to_me(dir.path()).unwrap();
        let me = current_user_sid().unwrap();
        let d = dacl_sddl(&wide(dir.path().as_os_str())).unwrap();
        assert_eq!(d.replacen("D:PAI(", "D:P(", 1), dir_sddl(&me));
        assert!(is_me(&path_owner(dir.path()).unwrap()).unwrap());
        let file = dir.path().join("inside");
        std::fs::write(&file, b"x").unwrap();
        let d = dacl_sddl(&wide(file.as_os_str())).unwrap();
        assert_eq!(d.matches("(A;").count(), 1, "{d}");
        assert!(d.contains(&me), "{d}");
        restrict_to_me(dir.path()).unwrap();
    }
}
