//! Operating-system specifics that have no portable std API. Today only
//! Windows needs any: access control (who may read the spool and talk to the
//! control pipe), in [`windows`].

#[cfg(windows)]
pub mod windows;
