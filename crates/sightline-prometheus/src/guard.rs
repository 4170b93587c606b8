//! The cardinality guard: every labelled metric goes through a [`Guarded`] family that caches
//! its label handles (a hash lookup instead of the `prometheus` crate's per-call label
//! resolution) and caps its series. Past the cap, new label combinations are folded into one
//! series whose every label is [`OVERFLOW`], and each fold is counted in
//! `sightline_metric_series_overflow_total{metric}`.

use std::hash::{Hash, Hasher};

use prometheus::core::Collector;
use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Registry};
use smol_str::SmolStr;

/// The label value excess series are folded into.
pub const OVERFLOW: &str = "__overflow__";

/// Up to three label values: the cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key([SmolStr; 3]);

/// The same, borrowed: what a lookup hashes, so a hit builds nothing.
struct KeyRef<'a>([&'a str; 3]);

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for part in &self.0 {
            part.as_str().hash(h);
        }
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for part in &self.0 {
            part.hash(h);
        }
    }
}

impl hashbrown::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.0
            .iter()
            .zip(&key.0)
            .all(|(a, b)| eq_short(a.as_bytes(), b.as_bytes()))
    }
}

/// Byte equality without a `memcmp` call: label values are short, and the call costs more
/// than the comparison (it was 40% of a cache hit).
#[inline]
pub(crate) fn eq_short(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(b.len() / 8 * 8);
    a8.chunks_exact(8).zip(b8.chunks_exact(8)).all(|(x, y)| {
        u64::from_ne_bytes(x.try_into().unwrap_or([0; 8]))
            == u64::from_ne_bytes(y.try_into().unwrap_or([1; 8]))
    }) && a_rest.iter().zip(b_rest).all(|(x, y)| x == y)
}

/// A labelled family of the `prometheus` crate.
pub trait LabelledVec: Collector + Clone + 'static {
    /// The handle of one series.
    type Handle: Clone;
    /// The handle for these label values.
    fn handle(&self, values: &[&str]) -> Self::Handle;
}

macro_rules! labelled {
    ($($vec:ty => $m:ty),*) => {$(
        impl LabelledVec for $vec {
            type Handle = $m;
            fn handle(&self, values: &[&str]) -> $m {
                self.with_label_values(values)
            }
        }
    )*};
}

labelled!(
    IntCounterVec => IntCounter,
    IntGaugeVec => prometheus::IntGauge,
    HistogramVec => prometheus::Histogram
);

/// A labelled metric family with cached handles and a series cap. Owned by the sink's worker
/// thread, so the cache needs no lock.
pub struct Guarded<V: LabelledVec> {
    vec: V,
    labels: usize,
    cap: usize,
    /// Label values to an index into `handles`: one hash lookup on the hot path. FxHash: the
    /// keys are few (at most `cap`) and the cap bounds what colliding keys could cost.
    index: hashbrown::HashMap<Key, usize, rustc_hash::FxBuildHasher>,
    handles: Vec<V::Handle>,
    overflow: Option<V::Handle>,
    folds: IntCounter,
}

impl<V: LabelledVec> Guarded<V> {
    /// Registers `vec` (with `labels` labels, at most 3) in `registry`, capped at `cap` series.
    pub fn register(
        registry: &Registry,
        vec: V,
        labels: usize,
        cap: usize,
        overflow: &IntCounterVec,
    ) -> prometheus::Result<Self> {
        let name = vec
            .desc()
            .first()
            .map(|d| d.fq_name.clone())
            .unwrap_or_default();
        registry.register(Box::new(vec.clone()))?;
        Ok(Self {
            vec,
            labels: labels.min(3),
            cap: cap.max(1),
            index: hashbrown::HashMap::default(),
            handles: Vec::new(),
            overflow: None,
            folds: overflow.with_label_values(&[name.as_str()]),
        })
    }

    /// The handle of one label combination (`values` beyond the family's labels are ignored).
    #[inline]
    pub fn get(&mut self, values: [&str; 3]) -> &V::Handle {
        if let Some(&i) = self.index.get(&KeyRef(values)) {
            return &self.handles[i];
        }
        if self.handles.len() >= self.cap {
            self.folds.inc();
            let (vec, labels) = (&self.vec, self.labels);
            return self
                .overflow
                .get_or_insert_with(|| vec.handle(&[OVERFLOW; 3][..labels]));
        }
        let handle = self.vec.handle(&values[..self.labels]);
        self.index
            .insert(Key(values.map(SmolStr::new)), self.handles.len());
        self.handles.push(handle);
        &self.handles[self.handles.len() - 1]
    }

    /// Updates folded into the overflow series so far.
    pub fn folds(&self) -> u64 {
        self.folds.get()
    }

    /// Series created (not counting the overflow series).
    pub fn series(&self) -> usize {
        self.handles.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_equality_is_byte_equality() {
        let words = [
            "",
            "a",
            "ab",
            "getTicket",
            "getTickets",
            "12345678",
            "123456789",
            "12345679",
            "a\u{e9}",
        ];
        for a in words {
            for b in words {
                assert_eq!(eq_short(a.as_bytes(), b.as_bytes()), a == b, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn series_past_the_cap_fold_into_one_overflow_series_and_are_counted() {
        let registry = Registry::new();
        let overflow =
            IntCounterVec::new(prometheus::Opts::new("overflow_total", "o"), &["metric"]).unwrap();
        registry.register(Box::new(overflow.clone())).unwrap();
        let vec =
            IntCounterVec::new(prometheus::Opts::new("calls_total", "c"), &["method"]).unwrap();
        let mut g = Guarded::register(&registry, vec, 1, 3, &overflow).unwrap();
        for i in 0..10 {
            g.get([&format!("m{i}"), "", ""]).inc();
        }
        g.get(["m0", "", ""]).inc();
        assert_eq!(g.series(), 3);
        let text = crate::render_text(&registry);
        assert!(text.contains("calls_total{method=\"m0\"} 2"), "{text}");
        assert!(
            text.contains("calls_total{method=\"__overflow__\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("overflow_total{metric=\"calls_total\"} 7"),
            "{text}"
        );
        assert_eq!(text.matches("calls_total{").count(), 4, "{text}");
    }
}
