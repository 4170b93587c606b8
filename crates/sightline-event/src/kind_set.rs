//! Sets of kinds as bit masks: what a subscriber asks for, parsed from the kind lists users
//! write (`schedule:*,rpc`), and what the bus's interest mask is made of.

use crate::family::Family;
use crate::kinds::{Kind, KIND_WORDS};

/// A set of kinds as a bit mask: what a subscriber wants, and what the bus is interested in.
///
/// ```
/// use sightline_event::{Family, Kind, KindSet};
/// let set = KindSet::family(Family::Schedule);
/// assert!(set.contains(Kind::ScheduleError));
/// assert!(!set.contains(Kind::Rpc));
/// assert!(KindSet::parse("schedule:*,rpc").unwrap().contains(Kind::Rpc));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KindSet(pub [u64; KIND_WORDS]);

impl KindSet {
    /// No kinds.
    pub const EMPTY: KindSet = KindSet([0; KIND_WORDS]);

    /// Every kind.
    pub fn all() -> Self {
        Kind::ALL.iter().copied().collect()
    }

    /// Every kind of one family.
    pub fn family(family: Family) -> Self {
        family.kinds().collect()
    }

    /// Adds a kind.
    pub fn insert(&mut self, kind: Kind) {
        self.0[kind.index() / 64] |= 1 << (kind.index() % 64);
    }

    /// Whether the set has the kind.
    #[inline(always)]
    pub const fn contains(&self, kind: Kind) -> bool {
        self.0[kind.index() / 64] & (1 << (kind.index() % 64)) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The union of two sets.
    pub fn union(mut self, other: KindSet) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    /// The kinds in the set.
    pub fn iter(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.iter().copied().filter(|k| self.contains(*k))
    }

    /// Parses a comma-separated list of kind names (`schedule:error`), family names
    /// (`schedule`), prefixes ending in `*` (`fiber:recovery:*`) or `*` for everything.
    pub fn parse(list: &str) -> Result<Self, UnknownKind> {
        let mut set = KindSet::EMPTY;
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let selected = if item == "*" {
                KindSet::all()
            } else if let Some(prefix) = item.strip_suffix('*') {
                Kind::ALL
                    .iter()
                    .copied()
                    .filter(|k| k.name().starts_with(prefix))
                    .collect()
            } else if let Some(kind) = Kind::from_name(item) {
                std::iter::once(kind).collect()
            } else if let Some(family) = Family::from_name(item) {
                KindSet::family(family)
            } else {
                KindSet::EMPTY
            };
            if selected.is_empty() {
                return Err(UnknownKind(item.to_owned()));
            }
            set = set.union(selected);
        }
        Ok(set)
    }
}

impl FromIterator<Kind> for KindSet {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        let mut set = KindSet::EMPTY;
        iter.into_iter().for_each(|k| set.insert(k));
        set
    }
}

/// A name in a kind list that is no kind, family or prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event kind or family {0:?} (try `schedule:error`, `schedule`, `fiber:recovery:*`)"
)]
pub struct UnknownKind(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_set_parsing() {
        let set = KindSet::parse("fiber:recovery:*").unwrap();
        assert_eq!(set.iter().count(), 5);
        assert!(KindSet::parse("bogus").is_err());
        assert!(KindSet::parse("bogus:*").is_err());
        assert_eq!(KindSet::parse("*").unwrap(), KindSet::all());
        assert_eq!(
            KindSet::parse("schedule").unwrap(),
            KindSet::family(Family::Schedule)
        );
    }
}
