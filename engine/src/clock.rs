//! Wall-clock times written as text: the one place Postern turns a
//! `SystemTime` into a date string.
//!
//! The calendar is the `time` crate's; nothing here counts days by hand.
//! All times are UTC. A time before 1970 is written as the epoch (as an
//! unset clock would read); one past year 9999 likewise.
//!
//! - [`rfc5322`]: the `Date:` header and `Received:` stamps the listener adds
//!   (`Tue, 1 Oct 2024 09:30:00 +0000`, RFC 5322 §3.3).
//! - [`rfc3339`]: transcripts, logs, CLI output (`2024-10-01T09:30:00Z`).
//! - [`plain`]: tables a person reads (`2024-10-01 09:30:00`, UTC).

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// `t` in UTC, whole seconds.
fn utc(t: SystemTime) -> OffsetDateTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `Tue, 1 Oct 2024 09:30:00 +0000` (RFC 5322 §3.3 date-time, in UTC; the
/// day without a leading zero, as Exchange writes it).
pub fn rfc5322(t: SystemTime) -> String {
    let format = format_description!(
        "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second] +0000"
    );
    utc(t).format(format).unwrap_or_default()
}

/// `2024-10-01T09:30:00Z` (RFC 3339, UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    utc(t).format(&Rfc3339).unwrap_or_default()
}

/// `2024-10-01 09:30:00` (UTC, whole seconds): for a table a person reads.
pub fn plain(t: SystemTime) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    utc(t).format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// Each was checked against the hand-written calendar this module
    /// replaced (every day of 1970..2110 gave the same text) before that
    /// code was deleted.
    #[test]
    fn fixed_times() {
        let cases: [(u64, &str, &str); 8] = [
            (0, "Thu, 1 Jan 1970 00:00:00 +0000", "1970-01-01T00:00:00Z"),
            (
                951_782_400,
                "Tue, 29 Feb 2000 00:00:00 +0000",
                "2000-02-29T00:00:00Z",
            ),
            (
                1_709_251_199,
                "Thu, 29 Feb 2024 23:59:59 +0000",
                "2024-02-29T23:59:59Z",
            ),
            (
                1_727_775_000,
                "Tue, 1 Oct 2024 09:30:00 +0000",
                "2024-10-01T09:30:00Z",
            ),
            (
                2_147_483_647,
                "Tue, 19 Jan 2038 03:14:07 +0000",
                "2038-01-19T03:14:07Z",
            ),
            (
                2_147_483_648,
                "Tue, 19 Jan 2038 03:14:08 +0000",
                "2038-01-19T03:14:08Z",
            ),
            (
                4_107_542_400,
                "Mon, 1 Mar 2100 00:00:00 +0000",
                "2100-03-01T00:00:00Z",
            ),
            (
                253_402_300_799,
                "Fri, 31 Dec 9999 23:59:59 +0000",
                "9999-12-31T23:59:59Z",
            ),
        ];
        for (secs, mail, iso) in cases {
            assert_eq!(rfc5322(at(secs)), mail, "{secs}");
            assert_eq!(rfc3339(at(secs)), iso, "{secs}");
            assert_eq!(plain(at(secs)), iso.replace('T', " ").replace('Z', ""));
        }
    }

    #[test]
    fn fractions_are_dropped() {
        let t = at(1_727_775_000) + Duration::from_millis(999);
        assert_eq!(rfc3339(t), "2024-10-01T09:30:00Z");
        assert_eq!(rfc5322(t), "Tue, 1 Oct 2024 09:30:00 +0000");
    }

    #[test]
    fn out_of_range_is_the_epoch() {
        let before = UNIX_EPOCH - Duration::from_secs(5);
        assert_eq!(rfc3339(before), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc5322(at(253_402_300_800)),
            "Thu, 1 Jan 1970 00:00:00 +0000"
        );
    }
}
