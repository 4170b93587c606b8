//! The time forms `--since` and `--until` accept: RFC 3339 (`2026-11-23T22:15:00Z`), a
//! duration ago (`15m`, `2h`), or Unix nanoseconds. One parser for every front end, so that a
//! window typed in the CLI means the same in the web view.

use std::time::SystemTime;

/// Text that is none of the accepted time forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a time: use RFC 3339 (2026-11-23T22:15:00Z), a duration ago (15m), or Unix nanoseconds"
)]
pub struct TimeError {
    /// What was given.
    pub input: String,
}

/// Parses a time as Unix nanoseconds; durations count back from now.
pub fn parse_time(text: &str) -> Result<u64, TimeError> {
    parse_time_at(text, SystemTime::now())
}

/// Parses a time as Unix nanoseconds; durations count back from `now`.
pub fn parse_time_at(text: &str, now: SystemTime) -> Result<u64, TimeError> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<u64>() {
        return Ok(ns);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(sightline_archive::segment::unix_ns(t));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        let t = now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH);
        return Ok(sightline_archive::segment::unix_ns(t));
    }
    Err(TimeError {
        input: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW_NS: u64 = 1_763_936_129_000_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(NOW_NS)
    }

    #[test]
    fn rfc3339_is_read_as_utc_to_the_nanosecond() {
        // 2025-11-23T22:15:29Z is NOW_NS.
        assert_eq!(parse_time_at("2025-11-23T22:15:29Z", now()), Ok(NOW_NS));
        assert_eq!(
            parse_time_at("2025-11-23T22:15:29.000000250Z", now()),
            Ok(NOW_NS + 250)
        );
        // The weak form: a space and no zone, read as UTC.
        assert_eq!(parse_time_at("2025-11-23 22:15:29", now()), Ok(NOW_NS));
        assert_eq!(
            parse_time_at("1970-01-01T00:00:01Z", now()),
            Ok(1_000_000_000)
        );
    }

    #[test]
    fn a_duration_counts_back_from_now() {
        assert_eq!(
            parse_time_at("15m", now()),
            Ok(NOW_NS - 15 * 60 * 1_000_000_000)
        );
        assert_eq!(
            parse_time_at("2h 30s", now()),
            Ok(NOW_NS - (2 * 3600 + 30) * 1_000_000_000)
        );
        assert_eq!(parse_time_at("250ms", now()), Ok(NOW_NS - 250_000_000));
        // Further back than the epoch: the epoch.
        assert_eq!(parse_time_at("100000000h", now()), Ok(0));
        // parse_time uses the wall clock: 1h ago lies within the last two hours.
        let before = sightline_archive::segment::unix_ns(SystemTime::now());
        let t = parse_time("1h").unwrap();
        let after = sightline_archive::segment::unix_ns(SystemTime::now());
        let hour = 3_600_000_000_000;
        assert!(
            t >= before - hour && t <= after - hour,
            "{t} {before} {after}"
        );
    }

    #[test]
    fn unix_nanoseconds_are_taken_as_they_are() {
        assert_eq!(parse_time_at("0", now()), Ok(0));
        assert_eq!(
            parse_time_at("1763936129123456789", now()),
            Ok(1_763_936_129_123_456_789)
        );
        assert_eq!(parse_time_at(" 42 ", now()), Ok(42));
    }

    #[test]
    fn anything_else_is_an_error_naming_the_input() {
        for bad in [
            "",
            "yesterday",
            "15 parsecs",
            "-5",
            "2025-13-45T00:00:00Z",
            "1.5e9",
        ] {
            let err = parse_time_at(bad, now()).unwrap_err();
            assert_eq!(err.input, bad.trim());
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("{:?} is not a time", bad.trim())),
                "{text}"
            );
            assert!(
                text.contains("RFC 3339") && text.contains("Unix nanoseconds"),
                "{text}"
            );
        }
    }
}
