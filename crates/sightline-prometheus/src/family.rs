//! Metric families, made one way: a family's name, help and label names become a
//! `prometheus` vector here, for the event metrics (each family then capped by the
//! [guard](crate::guard)) and for the collectors that read counters at scrape time (the
//! pipeline's health, the OTLP exporter's counters). One set of helpers instead of a macro
//! or a closure per family kind in each place that declares metrics.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{CounterVec, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec};
use prometheus::{Opts, Result};

/// An integer counter family (`_total`) labelled by `labels`.
pub fn counter(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

/// A float counter family (for sums of seconds) labelled by `labels`.
pub fn float_counter(name: &str, help: &str, labels: &[&str]) -> Result<CounterVec> {
    CounterVec::new(Opts::new(name, help), labels)
}

/// An integer gauge family labelled by `labels`.
pub fn gauge(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

/// A float gauge family labelled by `labels`.
pub fn float_gauge(name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec> {
    GaugeVec::new(Opts::new(name, help), labels)
}

/// A histogram family with `buckets` (upper bounds), labelled by `labels`.
pub fn histogram(
    name: &str,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> Result<HistogramVec> {
    HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
}

/// Families that a [`ScrapeCollector`] builds afresh at every scrape and fills from the
/// counters it reads: the values are the source's, never accumulated here.
pub trait ScrapeFamilies: Sized {
    /// Builds every family, empty.
    fn new() -> Result<Self>;
    /// Every family, in exposition order.
    fn all(&self) -> Vec<&dyn Collector>;
}

type Fill<F> = Box<dyn Fn(&F) + Send + Sync>;

/// A collector that reads its values at scrape time: at each scrape it builds fresh
/// families `F`, lets `fill` set them from its source (a stats view, an exporter's counters)
/// and returns them. Its descriptions are those of `F`, fixed at construction.
pub struct ScrapeCollector<F: ScrapeFamilies> {
    descs: Vec<Desc>,
    fill: Fill<F>,
}

impl<F: ScrapeFamilies> std::fmt::Debug for ScrapeCollector<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScrapeCollector")
            .field("families", &self.descs.len())
            .finish_non_exhaustive()
    }
}

impl<F: ScrapeFamilies> ScrapeCollector<F> {
    /// A collector whose `fill` sets the families from what it reads at each scrape.
    pub fn new(fill: impl Fn(&F) + Send + Sync + 'static) -> Result<Self> {
        let descs = F::new()?
            .all()
            .iter()
            .flat_map(|c| c.desc().into_iter().cloned())
            .collect();
        Ok(Self {
            descs,
            fill: Box::new(fill),
        })
    }
}

impl<F: ScrapeFamilies + 'static> Collector for ScrapeCollector<F> {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(families) = F::new() else {
            return Vec::new();
        };
        (self.fill)(&families);
        families.all().iter().flat_map(|c| c.collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    struct Two {
        calls: IntCounterVec,
        depth: IntGaugeVec,
    }

    impl ScrapeFamilies for Two {
        fn new() -> Result<Self> {
            Ok(Self {
                calls: counter("t_calls_total", "Calls.", &["sink"])?,
                depth: gauge("t_depth", "Depth.", &["sink"])?,
            })
        }
        fn all(&self) -> Vec<&dyn Collector> {
            vec![&self.calls, &self.depth]
        }
    }

    #[test]
    fn a_scrape_collector_reports_the_source_as_it_is_at_each_scrape() {
        let n = Arc::new(AtomicU64::new(3));
        let source = n.clone();
        let c = ScrapeCollector::<Two>::new(move |f| {
            let v = source.load(Ordering::Relaxed);
            f.calls.with_label_values(&["a"]).inc_by(v);
            f.depth.with_label_values(&["a"]).set(v as i64 * 2);
        })
        .unwrap();
        assert_eq!(c.desc().len(), 2);
        let registry = prometheus::Registry::new();
        registry.register(Box::new(c)).unwrap();
        let text = crate::render_text(&registry);
        assert!(text.contains("t_calls_total{sink=\"a\"} 3"), "{text}");
        assert!(text.contains("t_depth{sink=\"a\"} 6"), "{text}");
        // The source moved on: the next scrape says so (nothing accumulates here).
        n.store(5, Ordering::Relaxed);
        let text = crate::render_text(&registry);
        assert!(text.contains("t_calls_total{sink=\"a\"} 5"), "{text}");
        assert!(text.contains("t_depth{sink=\"a\"} 10"), "{text}");
    }
}
