//! The OpenMetrics 1.0 text format, for scrapers that ask for it (Prometheus does, first).
//! The `prometheus` crate encodes only the 0.0.4 text format; this renders the same gathered
//! families the OpenMetrics way: counter families named without `_total` (their samples keep
//! it), `le` values as floats, and a closing `# EOF`.

use std::fmt::Write as _;

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn float(v: f64) -> String {
    if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

fn labels(pairs: &[LabelPair], extra: Option<(&str, &str)>, out: &mut String) {
    if pairs.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = pairs.iter().map(|p| (p.name(), p.value())).chain(extra);
    for (name, value) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        escape(value, out);
        out.push('"');
    }
    out.push('}');
}

/// Renders gathered families in the OpenMetrics text format.
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = String::with_capacity(1 << 20);
    for mf in families {
        let name = mf.name();
        let (kind, base) = match mf.get_field_type() {
            MetricType::COUNTER => ("counter", name.strip_suffix("_total").unwrap_or(name)),
            MetricType::GAUGE => ("gauge", name),
            MetricType::HISTOGRAM => ("histogram", name),
            MetricType::SUMMARY => ("summary", name),
            MetricType::UNTYPED => ("unknown", name),
        };
        let _ = writeln!(out, "# TYPE {base} {kind}");
        if !mf.help().is_empty() {
            out.push_str("# HELP ");
            out.push_str(base);
            out.push(' ');
            escape(mf.help(), &mut out);
            out.push('\n');
        }
        for m in mf.get_metric() {
            let pairs = m.get_label();
            match mf.get_field_type() {
                MetricType::COUNTER => {
                    let _ = write!(out, "{base}_total");
                    labels(pairs, None, &mut out);
                    let _ = writeln!(out, " {}", float(m.get_counter().get_value()));
                }
                MetricType::GAUGE => {
                    out.push_str(base);
                    labels(pairs, None, &mut out);
                    let _ = writeln!(out, " {}", float(m.get_gauge().get_value()));
                }
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    for b in h.get_bucket() {
                        let _ = write!(out, "{base}_bucket");
                        labels(pairs, Some(("le", &float(b.upper_bound()))), &mut out);
                        let _ = writeln!(out, " {}", b.cumulative_count());
                    }
                    let _ = write!(out, "{base}_bucket");
                    labels(pairs, Some(("le", "+Inf")), &mut out);
                    let _ = writeln!(out, " {}", h.get_sample_count());
                    let _ = write!(out, "{base}_count");
                    labels(pairs, None, &mut out);
                    let _ = writeln!(out, " {}", h.get_sample_count());
                    let _ = write!(out, "{base}_sum");
                    labels(pairs, None, &mut out);
                    let _ = writeln!(out, " {}", float(h.get_sample_sum()));
                }
                MetricType::SUMMARY | MetricType::UNTYPED => {}
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

    #[test]
    fn counters_histograms_and_eof_follow_the_format() {
        let r = Registry::new();
        let c = IntCounterVec::new(Opts::new("x_total", "Help \"quoted\"."), &["m"]).unwrap();
        let h = HistogramVec::new(
            HistogramOpts::new("d_seconds", "D.").buckets(vec![0.5, 1.0]),
            &["m"],
        )
        .unwrap();
        r.register(Box::new(c.clone())).unwrap();
        r.register(Box::new(h.clone())).unwrap();
        c.with_label_values(&["a\"b"]).inc_by(3);
        h.with_label_values(&["a"]).observe(0.7);
        let text = encode(&r.gather());
        assert!(text.contains("# TYPE x counter\n"), "{text}");
        assert!(text.contains("# HELP x Help \\\"quoted\\\".\n"), "{text}");
        assert!(text.contains("x_total{m=\"a\\\"b\"} 3.0\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{m=\"a\",le=\"0.5\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{m=\"a\",le=\"1.0\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("d_seconds_bucket{m=\"a\",le=\"+Inf\"} 1\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
