//! Quantities as people read them: `12.3ms`, `1.4 KiB`, text cut to a width. They live here,
//! not in a front end, because the per-event detail text uses them and every front end must
//! show the same figures.

/// `850µs`, `12.3ms`, `1.20s`, `3m05s`.
pub fn duration(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}µs", ns / 1_000)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", ns as f64 / 1e6)
    } else if ns < 60_000_000_000 {
        format!("{:.2}s", ns as f64 / 1e9)
    } else {
        let s = ns / 1_000_000_000;
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// `512 B`, `1.2 KiB`, `3.4 MiB`, `1.1 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `text` cut to `max` characters with an ellipsis.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_well() {
        assert_eq!(duration(999), "999ns");
        assert_eq!(duration(850_000), "850µs");
        assert_eq!(duration(12_340_000), "12.3ms");
        assert_eq!(duration(1_200_000_000), "1.20s");
        assert_eq!(duration(185_000_000_000), "3m05s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1300), "1.3 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
