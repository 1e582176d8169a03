//! RFC 3339 timestamps built from the date, time and UTC-offset fields legacy sources carry.
//!
//! ```ignore
//! let at = timestamp::from_compact("20260302", "061500", "+01:00")?;
//! assert_eq!(at, "2026-03-02T06:15:00+01:00");
//! ```

use time::format_description::well_known::Rfc3339;
use time::{Month, OffsetDateTime, PrimitiveDateTime, Weekday};

use crate::{MapError, config};

pub use time::{Date, Time, UtcOffset};

/// Why date, time or offset fields do not make a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The date is not `YYYYMMDD` or `YYYY-MM-DD`, or is not a calendar date.
    #[error("'{text}' is not a valid date (expected YYYYMMDD)")]
    Date {
        /// The offending text.
        text: String,
    },
    /// The time is not `HHMMSS`, `HHMM`, `HH:MM:SS` or `HH:MM`, or is out of range.
    #[error("'{text}' is not a valid time (expected HHMMSS)")]
    Time {
        /// The offending text.
        text: String,
    },
    /// The offset is not `Z`, `±HH:MM`, `±HHMM` or `±HH`, or is out of range.
    #[error("'{text}' is not a valid UTC offset (expected +HH:MM)")]
    Offset {
        /// The offending text.
        text: String,
    },
    /// The moment is not an RFC 3339 timestamp (`2026-03-02T06:15:00+01:00`).
    #[error("'{text}' is not an RFC 3339 timestamp (expected 2026-03-02T06:15:00+01:00)")]
    Moment {
        /// The offending text.
        text: String,
    },
    /// The moment cannot be written as RFC 3339 (for example a year beyond 9999).
    #[error("cannot be written as an RFC 3339 timestamp: {reason}")]
    Format {
        /// What the formatter reported.
        reason: String,
    },
}

/// Parses a calendar date written `YYYYMMDD` or `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, TimestampError> {
    let error = || TimestampError::Date {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    let (year, month, day) = match bytes.len() {
        8 => (0..4, 4..6, 6..8),
        10 if bytes.get(4) == Some(&b'-') && bytes.get(7) == Some(&b'-') => (0..4, 5..7, 8..10),
        _ => return Err(error()),
    };
    let year = number(bytes, year).ok_or_else(error)?;
    let month = number(bytes, month).ok_or_else(error)?;
    let day = number(bytes, day).ok_or_else(error)?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(error)?;
    let year = i32::try_from(year).map_err(|_| error())?;
    let day = u8::try_from(day).map_err(|_| error())?;
    Date::from_calendar_date(year, month, day).map_err(|_| error())
}

/// `text` (at most 8 bytes of it) without the byte `mark` when there is one: `12:30` gives
/// `1230`.
fn without(text: &[u8], mark: Option<u8>) -> ([u8; 8], usize) {
    let mut kept = [0u8; 8];
    let mut length = 0;
    for &byte in text.iter().filter(|b| Some(**b) != mark).take(kept.len()) {
        kept[length] = byte;
        length += 1;
    }
    (kept, length)
}

/// Parses a time of day written `HHMMSS`, `HHMM`, `HH:MM:SS` or `HH:MM`.
pub fn parse_time(text: &str) -> Result<Time, TimestampError> {
    let error = || TimestampError::Time {
        text: text.to_owned(),
    };
    let bytes = text.as_bytes();
    let (kept, length) = match bytes.len() {
        5 | 8 if bytes.get(2) == Some(&b':') => without(bytes, Some(b':')),
        4 | 6 => without(bytes, None),
        _ => return Err(error()),
    };
    let compact = &kept[..length];
    if compact.len() != 4 && compact.len() != 6 {
        return Err(error());
    }
    let hour = number(compact, 0..2).ok_or_else(error)?;
    let minute = number(compact, 2..4).ok_or_else(error)?;
    let second = if compact.len() == 6 {
        number(compact, 4..6).ok_or_else(error)?
    } else {
        0
    };
    let [hour, minute, second] = [hour, minute, second].map(|n| u8::try_from(n).unwrap_or(u8::MAX));
    Time::from_hms(hour, minute, second).map_err(|_| error())
}

/// Parses a UTC offset written `Z`, `±HH:MM`, `±HHMM` or `±HH`.
pub fn parse_offset(text: &str) -> Result<UtcOffset, TimestampError> {
    let error = || TimestampError::Offset {
        text: text.to_owned(),
    };
    if text == "Z" || text == "z" {
        return Ok(UtcOffset::UTC);
    }
    let (sign, rest) = match text.split_at_checked(1) {
        Some(("+", rest)) => (1i8, rest.as_bytes()),
        Some(("-", rest)) => (-1i8, rest.as_bytes()),
        _ => return Err(error()),
    };
    let (kept, length) = match rest.len() {
        5 if rest.get(2) == Some(&b':') => without(rest, Some(b':')),
        2 | 4 => without(rest, None),
        _ => return Err(error()),
    };
    let digits = &kept[..length];
    if digits.len() != 2 && digits.len() != 4 {
        return Err(error());
    }
    let hours = number(digits, 0..2).ok_or_else(error)?;
    let minutes = if digits.len() == 4 {
        number(digits, 2..4).ok_or_else(error)?
    } else {
        0
    };
    if hours > 23 || minutes > 59 {
        return Err(error());
    }
    let hours = i8::try_from(hours).map_err(|_| error())?;
    let minutes = i8::try_from(minutes).map_err(|_| error())?;
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| error())
}

/// Writes a local date and time at `offset` as RFC 3339 text, for example
/// `2026-03-02T06:15:00+01:00` (`Z` for a zero offset).
pub fn rfc3339(date: Date, time: Time, offset: UtcOffset) -> Result<String, TimestampError> {
    let plain = (0..=9999).contains(&date.year())
        && time.nanosecond() == 0
        && offset.seconds_past_minute() == 0
        && offset.whole_hours().unsigned_abs() < 24;
    if !plain {
        // What the digits below cannot write (or must refuse) is left to the formatter.
        return PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .format(&Rfc3339)
            .map_err(|error| TimestampError::Format {
                reason: error.to_string(),
            });
    }
    let mut text = [0u8; 25];
    let two = |at: &mut [u8], n: u8| {
        at[0] = b'0' + n / 10;
        at[1] = b'0' + n % 10;
    };
    let year = date.year().unsigned_abs();
    for (at, divisor) in [1000, 100, 10, 1].into_iter().enumerate() {
        text[at] = b'0' + (year / divisor % 10) as u8;
    }
    text[4] = b'-';
    two(&mut text[5..], u8::from(date.month()));
    text[7] = b'-';
    two(&mut text[8..], date.day());
    text[10] = b'T';
    two(&mut text[11..], time.hour());
    text[13] = b':';
    two(&mut text[14..], time.minute());
    text[16] = b':';
    two(&mut text[17..], time.second());
    let length = if offset.is_utc() {
        text[19] = b'Z';
        20
    } else {
        text[19] = if offset.is_negative() { b'-' } else { b'+' };
        two(&mut text[20..], offset.whole_hours().unsigned_abs());
        text[22] = b':';
        two(&mut text[23..], offset.minutes_past_hour().unsigned_abs());
        25
    };
    Ok(String::from_utf8_lossy(&text[..length]).into_owned())
}

/// Builds an RFC 3339 timestamp from date, time and offset fields:
/// `("20260302", "061500", "+01:00")` gives `2026-03-02T06:15:00+01:00`.
pub fn from_compact(date: &str, time: &str, offset: &str) -> Result<String, TimestampError> {
    rfc3339(parse_date(date)?, parse_time(time)?, parse_offset(offset)?)
}

/// Writes a date in the WIT `date` form (RFC 3339 `full-date`), for example `2026-03-02`.
pub fn full_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The calendar date of the moment `time` (RFC 3339) where the clocks show standard time at
/// `offset`, and one hour more in summer when `eu_summer_time` (EU rules: from 01:00 UTC on the
/// last Sunday of March to 01:00 UTC on the last Sunday of October). `2026-04-01T01:30:00Z` is
/// 31 March at `-05:00`.
pub fn local_date(
    time: &str,
    offset: UtcOffset,
    eu_summer_time: bool,
) -> Result<Date, TimestampError> {
    let utc = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| TimestampError::Moment {
            text: time.to_owned(),
        })?
        .to_offset(UtcOffset::UTC);
    let summer = if eu_summer_time && in_eu_summer_time(utc) {
        3600
    } else {
        0
    };
    let offset = UtcOffset::from_whole_seconds(offset.whole_seconds() + summer).map_err(|_| {
        TimestampError::Offset {
            text: format!("{offset} plus summer time"),
        }
    })?;
    Ok(utc.to_offset(offset).date())
}

/// Whether a UTC moment falls in EU summer time: from 01:00 UTC on the last Sunday of March to
/// 01:00 UTC on the last Sunday of October.
fn in_eu_summer_time(utc: OffsetDateTime) -> bool {
    let change = |month: Month| {
        let mut day = Date::from_calendar_date(utc.year(), month, 31).ok()?;
        while day.weekday() != Weekday::Sunday {
            day = day.previous_day()?;
        }
        Some(day.with_hms(1, 0, 0).ok()?.assume_utc())
    };
    match (change(Month::March), change(Month::October)) {
        (Some(start), Some(end)) => start <= utc && utc < end,
        _ => false,
    }
}

/// The calendar date, as `YYYY-MM-DD`, of an event at `time` (RFC 3339) at the site `site`, as
/// the route configures the site's clock: `utc-offset` (`+01:00`, standard time) and
/// `daylight-saving` (`eu` or `none`), each read for the site (`utc-offset.<site>`) before the
/// route's own (`utc-offset`). Without an offset, the date as the source wrote `time`.
pub fn site_date(time: &str, site: &str) -> Result<String, MapError> {
    let Some((offset_key, offset_text)) = config::site_setting("utc-offset", site) else {
        return time.get(..10).map(str::to_owned).ok_or_else(|| {
            MapError::other(TimestampError::Moment { text: time.into() }.to_string())
        });
    };
    let offset = parse_offset(offset_text.trim()).map_err(|_| {
        MapError::other(format!(
            "route config key '{offset_key}' is '{offset_text}', but a UTC offset is written \
             +HH:MM (+01:00, -05:00)"
        ))
    })?;
    let eu_summer_time = match config::site_setting("daylight-saving", site) {
        None => false,
        Some((key, value)) => match value.trim() {
            "none" => false,
            "eu" => true,
            other => {
                return Err(MapError::other(format!(
                    "route config key '{key}' is '{other}', but the accepted values are eu and \
                     none"
                )));
            }
        },
    };
    local_date(time, offset, eu_summer_time)
        .map(full_date)
        .map_err(|error| MapError::other(error.to_string()))
}

/// Reads the ASCII digits at `range` of `text` as a number; none if any is not a digit.
fn number(text: &[u8], range: std::ops::Range<usize>) -> Option<u32> {
    let digits = text.get(range)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |n, digit| n * 10 + u32::from(digit - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_timestamps_from_compact_fields() {
        assert_eq!(
            from_compact("20260302", "061500", "+01:00").unwrap(),
            "2026-03-02T06:15:00+01:00"
        );
        assert_eq!(
            from_compact("2026-03-02", "23:59", "-0530").unwrap(),
            "2026-03-02T23:59:00-05:30"
        );
        assert_eq!(
            from_compact("20260101", "0000", "+00:00").unwrap(),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            from_compact("20240229", "120000", "Z").unwrap(),
            "2024-02-29T12:00:00Z"
        );
        assert_eq!(
            from_compact("20260302", "061500", "+09").unwrap(),
            "2026-03-02T06:15:00+09:00"
        );
    }

    #[test]
    fn rejects_bad_dates() {
        for text in [
            "20260230",
            "20261301",
            "2026030",
            "2026-0302",
            "2026O302",
            "",
            "+0260302",
        ] {
            assert!(
                matches!(parse_date(text), Err(TimestampError::Date { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_times() {
        for text in [
            "246000", "126000", "120060", "1215a0", "12:5", "1", "12-15", "+12345",
        ] {
            assert!(
                matches!(parse_time(text), Err(TimestampError::Time { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_offsets() {
        for text in [
            "01:00", "+1:00", "+24:00", "+01:60", "CET", "", "+01:0", "±01:00",
        ] {
            assert!(
                matches!(parse_offset(text), Err(TimestampError::Offset { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_text() {
        let error = from_compact("20260230", "061500", "+01:00").unwrap_err();
        assert_eq!(
            error.to_string(),
            "'20260230' is not a valid date (expected YYYYMMDD)"
        );
    }

    #[test]
    fn writes_what_the_rfc3339_formatter_writes() {
        let dates = ["00000101", "09991231", "19991231", "20240229", "99991231"];
        let times = ["000000", "061500", "235959", "120001"];
        let offsets = [
            "Z", "+00:00", "-00:00", "+01:00", "-05:30", "-00:30", "+23:59", "-23:59", "+05:45",
        ];
        for date in dates {
            for time in times {
                for offset in offsets {
                    let (date, time) = (parse_date(date).unwrap(), parse_time(time).unwrap());
                    let offset = parse_offset(offset).unwrap();
                    let expected = PrimitiveDateTime::new(date, time)
                        .assume_offset(offset)
                        .format(&Rfc3339)
                        .unwrap();
                    assert_eq!(rfc3339(date, time, offset).unwrap(), expected);
                }
            }
        }
        let odd = UtcOffset::from_hms(1, 0, 30).unwrap();
        let date = parse_date("20260302").unwrap();
        assert!(rfc3339(date, Time::MIDNIGHT, odd).is_err());
    }

    fn local(time: &str, offset: &str, eu_summer_time: bool) -> String {
        full_date(local_date(time, parse_offset(offset).unwrap(), eu_summer_time).unwrap())
    }

    #[test]
    fn local_dates_cross_midnight_and_month_ends() {
        assert_eq!(local("2026-04-01T01:30:00Z", "-05:00", false), "2026-03-31");
        assert_eq!(local("2026-04-01T01:30:00Z", "Z", false), "2026-04-01");
        assert_eq!(local("2026-03-31T22:30:00Z", "+01:00", true), "2026-04-01");
        assert_eq!(local("2026-03-31T22:30:00Z", "+01:00", false), "2026-03-31");
        assert_eq!(
            local("2026-12-31T23:30:00-01:00", "+00:00", false),
            "2027-01-01"
        );
        assert_eq!(local("2024-02-29T23:00:00Z", "+01:00", false), "2024-03-01");
        assert_eq!(local("2026-03-01T04:59:59Z", "-05:00", false), "2026-02-28");
        assert_eq!(
            local("2026-03-02T14:05:00.512+01:00", "+01:00", false),
            "2026-03-02"
        );
    }

    #[test]
    fn eu_summer_time_starts_and_ends_at_one_utc_on_the_last_sundays() {
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC. At -01:30
        // standard time, 01:00 UTC is 23:30 the day before in winter, 00:30 in summer.
        assert_eq!(local("2026-03-29T00:59:59Z", "-01:30", true), "2026-03-28");
        assert_eq!(local("2026-03-29T01:00:00Z", "-01:30", true), "2026-03-29");
        assert_eq!(local("2026-03-29T01:00:00Z", "-01:30", false), "2026-03-28");
        assert_eq!(local("2026-10-25T00:59:59Z", "-01:30", true), "2026-10-25");
        assert_eq!(local("2026-10-25T01:00:00Z", "-01:30", true), "2026-10-24");
        assert_eq!(local("2026-10-24T23:30:00Z", "+00:00", true), "2026-10-25");
        assert_eq!(local("2026-10-25T23:30:00Z", "+00:00", true), "2026-10-25");
        assert_eq!(local("2026-03-28T23:30:00Z", "+00:00", true), "2026-03-28");
        assert_eq!(local("2026-03-29T23:30:00Z", "+00:00", true), "2026-03-30");
        // Linz (+01:00 with EU summer time) at month ends.
        assert_eq!(local("2026-10-31T23:30:00Z", "+01:00", true), "2026-11-01");
        assert_eq!(local("2026-09-30T22:30:00Z", "+01:00", true), "2026-10-01");
        assert_eq!(local("2026-09-30T21:30:00Z", "+01:00", true), "2026-09-30");
    }

    #[test]
    fn local_dates_name_what_is_wrong() {
        let error = local_date("2026-03-02 14:05", UtcOffset::UTC, false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "'2026-03-02 14:05' is not an RFC 3339 timestamp (expected 2026-03-02T06:15:00+01:00)"
        );
    }

    #[test]
    fn site_dates_follow_the_route_configuration() {
        config::set_for_tests([
            ("utc-offset", "-05:00"),
            ("utc-offset.PLANT1", "+01:00"),
            ("daylight-saving.PLANT1", "eu"),
        ]);
        assert_eq!(
            site_date("2026-04-01T01:30:00Z", "PLANT9").unwrap(),
            "2026-03-31"
        );
        assert_eq!(
            site_date("2026-03-31T22:30:00Z", "PLANT1").unwrap(),
            "2026-04-01"
        );
        config::set_for_tests([("daylight-saving", "us")]);
        assert_eq!(
            site_date("2026-04-01T01:30:00Z", "PLANT1").unwrap(),
            "2026-04-01"
        );
        config::set_for_tests([("utc-offset.PLANT1", "-05:00"), ("daylight-saving", "us")]);
        assert_eq!(
            site_date("2026-04-01T01:30:00Z", "PLANT1").unwrap_err(),
            MapError::other(
                "route config key 'daylight-saving' is 'us', but the accepted values are eu and none"
            )
        );
        config::set_for_tests([("utc-offset.PLANT1", "EST")]);
        assert!(
            site_date("2026-04-01T01:30:00Z", "PLANT1")
                .unwrap_err()
                .to_string()
                .contains("'utc-offset.PLANT1' is 'EST'")
        );
        config::set_for_tests::<&str, &str>([]);
    }

    #[test]
    fn writes_full_dates() {
        assert_eq!(full_date(parse_date("20260302").unwrap()), "2026-03-02");
    }
}
