//! Rendering for people: timestamps, thousands separators, margin marks and colour. What an
//! event says (its detail text, its mark) and the units (`12.3ms`, `1.4 KiB`) come from
//! `sightline-query`, shared with every other front end; this module only lays them out.

use std::time::{Duration, UNIX_EPOCH};

use sightline_query::Mark;

pub use sightline_query::units::{bytes, duration};

/// The margin marker of a line: `!` a failure, `~` a warning (a retry, a rejection), blank
/// otherwise.
pub fn mark_char(mark: Mark) -> &'static str {
    match mark {
        Mark::Failure => "!",
        Mark::Warning => "~",
        Mark::Plain => " ",
    }
}

/// A rendered line, coloured by its mark.
pub fn paint_mark(mark: Mark, line: String, paint: Paint) -> String {
    match mark {
        Mark::Failure => paint.fail(&line),
        Mark::Warning => paint.warn(&line),
        Mark::Plain => line,
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 with microseconds, UTC.
pub fn timestamp(ts_ns: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_nanos(ts_ns)).to_string()
}

/// `22:15:29.123456` (the time of day of [`timestamp`]).
pub fn time_of_day(ts_ns: u64) -> String {
    let t = timestamp(ts_ns);
    t.get(11..26).unwrap_or(&t).to_owned()
}

/// ANSI colour, only when asked.
#[derive(Debug, Clone, Copy)]
pub struct Paint(pub bool);

impl Paint {
    /// Red, bold.
    pub fn fail(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[1;31m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Yellow.
    pub fn warn(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[33m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Dim.
    pub fn dim(self, s: &str) -> String {
        if self.0 {
            format!("\x1b[2m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(duration(850_000), "850µs");
        assert_eq!(duration(12_340_000), "12.3ms");
        assert_eq!(duration(1_200_000_000), "1.20s");
        assert_eq!(duration(185_000_000_000), "3m05s");
        assert_eq!(bytes(1300), "1.3 KiB");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(sightline_query::units::cut("abcdef", 4), "abc…");
        assert_eq!(time_of_day(1_763_936_129_123_456_789), "22:15:29.123456");
    }

    #[test]
    fn marks_colour_their_lines() {
        assert_eq!(mark_char(Mark::Failure), "!");
        assert_eq!(mark_char(Mark::Warning), "~");
        assert_eq!(mark_char(Mark::Plain), " ");
        assert_eq!(
            paint_mark(Mark::Failure, "x".into(), Paint(true)),
            "\x1b[1;31mx\x1b[0m"
        );
        assert_eq!(paint_mark(Mark::Warning, "x".into(), Paint(false)), "x");
        assert_eq!(paint_mark(Mark::Plain, "x".into(), Paint(true)), "x");
    }
}
