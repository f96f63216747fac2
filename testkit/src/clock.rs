//! The dates the fakes write, in the shapes Microsoft writes them.
//!
//! The same calendar crate as the engine's `clock` module (`time`; the
//! testkit cannot use the engine's module: the engine's tests depend on the
//! testkit). These are Microsoft's formats, not Postern's.

use std::time::SystemTime;

use time::macros::format_description;
use time::OffsetDateTime;

/// The date in Exchange Online's 220 banner:
/// `Tue, 1 Oct 2024 09:30:00 +0000`.
pub(crate) fn banner_date(t: SystemTime) -> String {
    let format = format_description!(
        "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    OffsetDateTime::from(t).format(format).unwrap_or_default()
}

/// The `Timestamp:` of an identity-platform error: `2024-10-01 09:30:00Z`.
pub(crate) fn aad_timestamp(t: SystemTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    OffsetDateTime::from(t).format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_500); // leap day
        assert_eq!(banner_date(t), "Thu, 29 Feb 2024 23:59:59 +0000");
        assert_eq!(aad_timestamp(t), "2024-02-29 23:59:59Z");
    }
}
