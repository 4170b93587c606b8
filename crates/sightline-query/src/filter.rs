//! What to select, as people type it: a time window (`since`, `until`), kinds and an agent,
//! turned into the archive's [`Query`]. The CLI's `--since/--until/--kind/--agent` and the
//! web view's query parameters share it.

use sightline_archive::{AgentFilter, Query};
use sightline_event::{KindSet, UnknownKind};

use crate::time::{parse_time, TimeError};

/// A selection as text, each part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Events at or after this time (any form [`parse_time`] reads).
    pub since: Option<String>,
    /// Events before this time (same forms).
    pub until: Option<String>,
    /// Kind names, families or prefixes; each may itself be a comma-separated list.
    pub kinds: Vec<String>,
    /// An agent class (`SupportAgent`) or one agent (`SupportAgent/ticket-4411`).
    pub agent: Option<String>,
}

/// Which part of a [`Filter`] is wrong, and why. Its text starts with the part's name
/// (`since: …`), so a front end can prefix its own spelling (`--since: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `since` is not a time.
    #[error("since: {0}")]
    Since(#[source] TimeError),
    /// `until` is not a time.
    #[error("until: {0}")]
    Until(#[source] TimeError),
    /// A kind is unknown.
    #[error("kind: {0}")]
    Kind(#[source] UnknownKind),
}

impl Filter {
    /// The archive query this filter selects.
    pub fn query(&self) -> Result<Query, FilterError> {
        let kinds = if self.kinds.is_empty() {
            None
        } else {
            Some(KindSet::parse(&self.kinds.join(",")).map_err(FilterError::Kind)?)
        };
        Ok(Query {
            since_ns: self
                .since
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(FilterError::Since)?,
            until_ns: self
                .until
                .as_deref()
                .map(parse_time)
                .transpose()
                .map_err(FilterError::Until)?,
            kinds,
            agent: self.agent.as_deref().map(AgentFilter::parse),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_event::{AgentRef, Event, Kind, Rpc, ScheduleError};

    fn event(agent: &AgentRef, ts_ns: u64, schedule: bool) -> Event {
        let mut e = if schedule {
            Event::new(agent.clone(), 1, ScheduleError::default())
        } else {
            Event::new(agent.clone(), 1, Rpc::default())
        };
        e.ts_ns = ts_ns;
        e
    }

    #[test]
    fn the_window_includes_since_and_excludes_until() {
        let q = Filter {
            since: Some("1000".into()),
            until: Some("2000".into()),
            ..Filter::default()
        }
        .query()
        .unwrap();
        assert_eq!((q.since_ns, q.until_ns), (Some(1000), Some(2000)));
        let a = AgentRef::new("A", "a");
        let selected: Vec<u64> = [999, 1000, 1500, 1999, 2000, 2001]
            .into_iter()
            .filter(|ts| q.matches(&event(&a, *ts, false)))
            .collect();
        assert_eq!(selected, [1000, 1500, 1999]);
    }

    #[test]
    fn kinds_and_agents_narrow_the_selection() {
        let q = Filter {
            kinds: vec!["schedule".into(), "rpc:error".into()],
            agent: Some("A/a".into()),
            ..Filter::default()
        }
        .query()
        .unwrap();
        let kinds = q.kinds.unwrap();
        assert!(kinds.contains(Kind::ScheduleError) && kinds.contains(Kind::RpcError));
        assert!(!kinds.contains(Kind::Rpc));
        let (a, b) = (AgentRef::new("A", "a"), AgentRef::new("A", "b"));
        assert!(q.matches(&event(&a, 5, true)));
        assert!(!q.matches(&event(&b, 5, true)));
        assert!(!q.matches(&event(&a, 5, false)));
        let class = Filter {
            agent: Some("A".into()),
            ..Filter::default()
        }
        .query()
        .unwrap();
        assert_eq!(class.agent, Some(AgentFilter::Class("A".into())));
        assert!(class.matches(&event(&b, 5, false)));
    }

    #[test]
    fn a_bad_part_is_named_with_its_input() {
        let err = Filter {
            since: Some("soon".into()),
            ..Filter::default()
        }
        .query()
        .unwrap_err();
        assert!(
            err.to_string().starts_with("since: \"soon\" is not a time"),
            "{err}"
        );
        let err = Filter {
            until: Some("later".into()),
            ..Filter::default()
        }
        .query()
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("until: \"later\" is not a time"),
            "{err}"
        );
        let err = Filter {
            kinds: vec!["nonsense".into()],
            ..Filter::default()
        }
        .query()
        .unwrap_err();
        assert!(
            err.to_string().starts_with("kind: unknown event kind"),
            "{err}"
        );
        assert!(err.to_string().contains("nonsense"), "{err}");
    }
}
