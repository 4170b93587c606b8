//! One agent's session: its events from the archive, read through the segments' indexes so
//! that only the blocks holding that agent are read, plus what the read cost. The timeline
//! and the state at an event are built from it.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use serde::Serialize;
use sightline_archive::{AgentFilter, Archive, Query, ReadError, ScanStats};
use sightline_event::{AgentRef, Event};

/// Why a session could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The text names a class (or nothing), not one agent.
    #[error(
        "session needs one agent as <class>/<name> (e.g. SupportAgent/ticket-4411), got {0:?}"
    )]
    NotOneAgent(String),
    /// The archive has no event of the agent that passes the filters.
    #[error("no events of {agent} in {dir} with these filters ({segments} segments)")]
    NoEvents {
        /// The agent.
        agent: AgentRef,
        /// The archive directory.
        dir: String,
        /// Segments in the archive.
        segments: usize,
    },
    /// Reading the archive failed.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// `<class>/<name>` as one agent; a class alone (or `Class/*`) is an error.
pub fn one_agent(text: &str) -> Result<AgentRef, SessionError> {
    match AgentFilter::parse(text) {
        AgentFilter::Exact(a) => Ok(a),
        AgentFilter::Class(_) => Err(SessionError::NotOneAgent(text.to_owned())),
    }
}

/// What reading a session cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Cost {
    /// Segments in the archive.
    pub segments: u64,
    /// Segments read (not skipped by their time range).
    pub segments_read: u64,
    /// Index blocks read.
    pub blocks_read: u64,
    /// Bytes read from disk (compressed when compressed).
    pub bytes_read: u64,
}

impl From<ScanStats> for Cost {
    fn from(s: ScanStats) -> Self {
        Cost {
            segments: s.segments,
            segments_read: s.segments - s.segments_pruned,
            blocks_read: s.blocks_read,
            bytes_read: s.bytes_read,
        }
    }
}

/// One agent's events, in archive (emit) order, never empty.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// The agent.
    pub agent: AgentRef,
    /// Its events that pass the filters.
    pub events: Vec<Event>,
    /// Whether kinds were selected (then sequence gaps are expected, not loss).
    pub kinds_filtered: bool,
    /// What the read cost.
    pub cost: Cost,
}

/// Reads `agent`'s events that `query` selects (its agent filter is replaced by `agent`).
pub fn read(
    archive: &Archive,
    agent: &AgentRef,
    mut query: Query,
) -> Result<Session, SessionError> {
    query.agent = Some(AgentFilter::Exact(agent.clone()));
    let mut events = Vec::new();
    let scan = archive.scan(&query, |e| {
        events.push(e);
        ControlFlow::Continue(())
    })?;
    if events.is_empty() {
        return Err(SessionError::NoEvents {
            agent: agent.clone(),
            dir: archive.dir().display().to_string(),
            segments: archive.segments().len(),
        });
    }
    Ok(Session {
        agent: agent.clone(),
        events,
        kinds_filtered: query.kinds.is_some(),
        cost: scan.into(),
    })
}

/// The latest `n` events that `query` selects, oldest first.
pub fn latest(archive: &Archive, query: &Query, n: usize) -> Result<Vec<Event>, ReadError> {
    let mut last: VecDeque<Event> = VecDeque::with_capacity(n.saturating_add(1).min(1 << 16));
    if n > 0 {
        archive.scan(query, |e| {
            last.push_back(e);
            if last.len() > n {
                last.pop_front();
            }
            ControlFlow::Continue(())
        })?;
    }
    Ok(last.into())
}
