//! Text timestamps to Unix seconds UTC.
//!
//! Accepted forms (surrounding ASCII whitespace is ignored):
//!
//! | form | example | read as |
//! |---|---|---|
//! | date | `2024-01-16` | midnight UTC |
//! | date and time, no offset | `2024-01-16 14:30:00`, `2024-01-16T14:30` | UTC |
//! | date, time and offset (RFC 3339, pandas tz-aware) | `2024-01-16T14:30:00.123Z`, `2024-01-16 09:30:00-05:00` | the instant |
//! | Unix seconds | `1705415400`, `-86400`, `1705415400.0` | as is |
//!
//! The date/time separator is `T`, `t` or a space; seconds and their fraction
//! (`.` or `,`, any number of digits) are optional; the offset is `Z`, `z`, `±HH:MM`,
//! `±HHMM` or `±HH`. Fractions are floored to the second (the bar's start second).
//! A second of `60` (a leap second) counts as the next minute's `:00`, as POSIX time
//! does. Compact dates (`20240116`) are not dates here: all-digit text is Unix seconds.
//!
//! Hand-written rather than chrono's `parse_from_rfc3339`/`parse_from_str`: those each
//! take one layout, so trying them in turn costs several parses per CSV row; here one
//! pass reads fixed-width digit fields and chrono does the calendar (date validity and
//! the day count). The tests compare the result with chrono's parsers.

use chrono::{Datelike, NaiveDate};

/// `NaiveDate::num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;
const SECONDS_PER_DAY: i64 = 86_400;

/// Why a text is not a timestamp.
pub(crate) type Reason = &'static str;

/// The value of exactly `count` ASCII digits at `text[at..]`.
fn digits(text: &[u8], at: usize, count: usize) -> Option<u32> {
    let field = text.get(at..at + count)?;
    field.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

/// Parses one timestamp; see the [module docs](self) for the forms.
pub(crate) fn parse_timestamp(text: &[u8]) -> Result<i64, Reason> {
    let text = text.trim_ascii();
    if text.is_empty() {
        return Err("empty value");
    }
    if text.len() >= 10 && text[4] == b'-' {
        parse_date_time(text)
    } else {
        parse_unix_seconds(text)
    }
}

fn parse_unix_seconds(text: &[u8]) -> Result<i64, Reason> {
    const NOT_A_TIMESTAMP: Reason = "not a date, a date-time or Unix seconds";
    let (integer, fraction) = match text.iter().position(|&b| b == b'.') {
        Some(dot) => (&text[..dot], Some(&text[dot + 1..])),
        None => (text, None),
    };
    let unsigned = integer.strip_prefix(b"-").unwrap_or(integer);
    if unsigned.is_empty() || !unsigned.iter().all(u8::is_ascii_digit) {
        return Err(NOT_A_TIMESTAMP);
    }
    if let Some(fraction) = fraction
        && (fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit))
    {
        return Err(NOT_A_TIMESTAMP);
    }
    let negative = integer.first() == Some(&b'-');
    // Accumulate towards the sign so that i64::MIN is reachable.
    let seconds = unsigned
        .iter()
        .try_fold(0i64, |value, &digit| {
            let digit = i64::from(digit - b'0');
            let value = value.checked_mul(10)?;
            if negative {
                value.checked_sub(digit)
            } else {
                value.checked_add(digit)
            }
        })
        .ok_or("Unix seconds out of range")?;
    let has_fraction = fraction.is_some_and(|f| f.iter().any(|&b| b != b'0'));
    if negative && has_fraction {
        // Floor: -1.5 s is in the second that starts at -2.
        seconds.checked_sub(1).ok_or("Unix seconds out of range")
    } else {
        Ok(seconds)
    }
}

fn parse_date_time(text: &[u8]) -> Result<i64, Reason> {
    const BAD_DATE: Reason = "expected a date as YYYY-MM-DD";
    const BAD_TIME: Reason = "expected a time as HH:MM or HH:MM:SS";
    // The caller checked `text.len() >= 10` and the `-` at index 4.
    if text[7] != b'-' {
        return Err(BAD_DATE);
    }
    let year = digits(text, 0, 4).ok_or(BAD_DATE)?;
    let month = digits(text, 5, 2).ok_or(BAD_DATE)?;
    let day = digits(text, 8, 2).ok_or(BAD_DATE)?;
    // `year` has 4 digits, so the cast is exact.
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("no such calendar date")?;
    let days = i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE;
    let midnight = days * SECONDS_PER_DAY;
    if text.len() == 10 {
        return Ok(midnight);
    }

    if !matches!(text[10], b'T' | b't' | b' ') {
        return Err("expected `T` or a space after the date");
    }
    let hour = digits(text, 11, 2).ok_or(BAD_TIME)?;
    let minute = digits(text, 14, 2)
        .filter(|_| text[13] == b':')
        .ok_or(BAD_TIME)?;
    let mut at = 16;
    let mut second = 0;
    if text.get(at) == Some(&b':') {
        second = digits(text, at + 1, 2).ok_or(BAD_TIME)?;
        at += 3;
        if matches!(text.get(at), Some(b'.' | b',')) {
            let count = text[at + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if count == 0 {
                return Err("expected digits after the decimal point of the seconds");
            }
            at += 1 + count;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range");
    }
    let offset = parse_offset(&text[at..])?;
    let time = i64::from(hour * 3600 + minute * 60 + second);
    Ok(midnight + time - offset)
}

/// The UTC offset in seconds (east positive), from what follows the time.
fn parse_offset(text: &[u8]) -> Result<i64, Reason> {
    const BAD_OFFSET: Reason = "expected `Z` or an offset as ±HH:MM after the time";
    let sign = match text.first() {
        None => return Ok(0),
        Some(b'Z' | b'z') if text.len() == 1 => return Ok(0),
        Some(b'+') => 1,
        Some(b'-') => -1,
        Some(_) => return Err(BAD_OFFSET),
    };
    let hours = digits(text, 1, 2).ok_or(BAD_OFFSET)?;
    let minutes = match text.len() {
        3 => 0,
        5 => digits(text, 3, 2).ok_or(BAD_OFFSET)?,
        6 if text[3] == b':' => digits(text, 4, 2).ok_or(BAD_OFFSET)?,
        _ => return Err(BAD_OFFSET),
    };
    if hours > 23 || minutes > 59 {
        return Err("offset out of range");
    }
    Ok(sign * i64::from(hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
    use proptest::prelude::*;

    fn ts(text: &str) -> Result<i64, Reason> {
        parse_timestamp(text.as_bytes())
    }

    #[test]
    fn documented_forms_hand_checked() {
        // 2024-01-16 is day 19738 after 1970-01-01 (54 years with 13 leap days:
        // 54 * 365 + 13 = 19723, plus 15 days into January).
        let midnight = 19_738 * 86_400;
        assert_eq!(midnight, 1_705_363_200);
        let cases = [
            ("2024-01-16", midnight),
            ("2024-01-16T14:30:00Z", midnight + 14 * 3600 + 30 * 60),
            ("2024-01-16t14:30:00z", midnight + 52_200),
            ("2024-01-16 14:30:00", midnight + 52_200),
            ("2024-01-16T14:30", midnight + 52_200),
            ("2024-01-16T14:30:59.999999999Z", midnight + 52_259),
            ("2024-01-16T14:30:00,5+00:00", midnight + 52_200),
            // pandas tz-aware, New York winter: 09:30-05:00 is 14:30Z.
            ("2024-01-16 09:30:00-05:00", midnight + 52_200),
            ("2024-01-16 09:30:00-0500", midnight + 52_200),
            ("2024-01-16 09:30:00-05", midnight + 52_200),
            ("2024-01-16T20:00:00+05:30", midnight + 52_200),
            ("2024-01-16 00:00:00+01:00", midnight - 3600),
            ("  2024-01-16  ", midnight),
            ("1705415400", 1_705_415_400),
            ("1705415400.0", 1_705_415_400),
            ("1705415400.75", 1_705_415_400),
            ("-86400", -86_400),
            ("-1.5", -2),
            ("0", 0),
            ("1970-01-01", 0),
            ("1969-12-31T23:59:59Z", -1),
            ("2016-12-31T23:59:60Z", 1_483_228_800), // leap second = 2017-01-01 00:00:00
            ("2000-02-29", 951_782_400),
        ];
        for (text, expected) in cases {
            assert_eq!(ts(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_timestamps_are_rejected_with_a_reason() {
        for text in [
            "",
            "   ",
            "2024-13-01",
            "2023-02-29",
            "2024-01-32",
            "2024-1-16",
            "2024/01/16",
            "2024-01-16X14:30",
            "2024-01-16T24:00:00Z",
            "2024-01-16T14:60:00Z",
            "2024-01-16T14:30:61Z",
            "2024-01-16T14:30:00.Z",
            "2024-01-16T14:30:00+24:00",
            "2024-01-16T14:30:00+05:60",
            "2024-01-16T14:30:00 UTC",
            "2024-01-16T14:30:00+5",
            "2024-01-16T14",
            "2024-01-16T14:3",
            "abc",
            "-",
            "1.",
            "1e9",
            "99999999999999999999",
            "2024-01-16é",
        ] {
            assert!(ts(text).is_err(), "{text:?} was accepted");
        }
    }

    proptest! {
        /// Agrees with chrono's RFC 3339 parser over the whole 4-digit-year range.
        #[test]
        fn agrees_with_chrono_rfc3339(
            seconds in -62_135_596_800i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
            offset_minutes in -23 * 60 - 59..=23 * 60 + 59i32,
            with_fraction: bool,
        ) {
            let offset = chrono::FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let utc = Utc.timestamp_opt(seconds, if with_fraction { nanos } else { 0 }).unwrap();
            let local = utc.with_timezone(&offset);
            if local.format("%Y").to_string().len() != 4 {
                return Ok(()); // the offset pushed it to year 0 or 10000
            }
            let text = local.to_rfc3339();
            let reference = DateTime::parse_from_rfc3339(&text).unwrap().timestamp();
            prop_assert_eq!(ts(&text), Ok(reference), "{}", text);
            prop_assert_eq!(reference, seconds);
            // pandas writes a space instead of `T`.
            let pandas = text.replacen('T', " ", 1);
            prop_assert_eq!(ts(&pandas), Ok(seconds));
        }

        /// Naive `YYYY-MM-DD HH:MM:SS` agrees with chrono's `parse_from_str` read as UTC.
        #[test]
        fn agrees_with_chrono_naive(seconds in -62_135_596_800i64..253_402_300_799) {
            let naive = DateTime::from_timestamp(seconds, 0).unwrap().naive_utc();
            let text = naive.format("%Y-%m-%d %H:%M:%S").to_string();
            let reference = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
                .unwrap()
                .and_utc()
                .timestamp();
            prop_assert_eq!(ts(&text), Ok(reference));
            let date = naive.format("%Y-%m-%d").to_string();
            prop_assert_eq!(ts(&date), Ok(reference - reference.rem_euclid(86_400)));
        }

        /// Arbitrary text never panics, and integers read back as themselves.
        #[test]
        fn never_panics(text in "\\PC{0,40}", seconds: i64) {
            let _ = ts(&text);
            prop_assert_eq!(ts(&seconds.to_string()), Ok(seconds));
        }
    }
}
