//! What a subscriber wants. A filter exists apart from the subscription so that the emitter
//! can test it before an event is built (kind, severity and agent class are known early) and
//! so that the union of every filter's kinds can become the bus's interest mask.

use smol_str::SmolStr;

use sightline_event::{Event, Kind, KindSet, Severity};

/// What a subscriber wants: kinds, agent classes, minimum severity. All must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The kinds wanted. This is also what the bus's interest mask is made of.
    pub kinds: KindSet,
    /// Agent classes wanted; empty means every class.
    pub classes: Vec<SmolStr>,
    /// The lowest severity wanted.
    pub min_severity: Severity,
}

impl Default for Filter {
    fn default() -> Self {
        Self::all()
    }
}

impl Filter {
    /// Every event.
    pub fn all() -> Self {
        Self {
            kinds: KindSet::all(),
            classes: Vec::new(),
            min_severity: Severity::Trace,
        }
    }

    /// Every event of these kinds.
    pub fn kinds(kinds: KindSet) -> Self {
        Self {
            kinds,
            ..Self::all()
        }
    }

    /// Restricts to these agent classes.
    pub fn classes<I, S>(mut self, classes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<SmolStr>,
    {
        self.classes = classes.into_iter().map(Into::into).collect();
        self
    }

    /// Restricts to this severity and above.
    pub fn min_severity(mut self, severity: Severity) -> Self {
        self.min_severity = severity;
        self
    }

    /// Whether an event matches.
    #[inline]
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_parts(event.kind(), event.severity, &event.agent.class)
    }

    /// Whether an event with this kind, severity and agent class would match.
    #[inline(always)]
    pub fn matches_parts(&self, kind: Kind, severity: Severity, class: &str) -> bool {
        self.kinds.contains(kind)
            && severity >= self.min_severity
            && (self.classes.is_empty() || self.classes.iter().any(|c| c == class))
    }
}
