//! Who emitted an event: the agent's class (bounded, a metric label) and its instance name
//! (unbounded, never a label). Its own type so that the two are never confused.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Which agent emitted an event: its Durable Object class and its stable instance name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct AgentRef {
    /// The agent class (a bounded set: a metric label).
    pub class: SmolStr,
    /// The instance name (unbounded: never a metric label).
    pub name: SmolStr,
}

impl AgentRef {
    /// An agent reference.
    pub fn new(class: impl Into<SmolStr>, name: impl Into<SmolStr>) -> Self {
        Self {
            class: class.into(),
            name: name.into(),
        }
    }

    /// Parses `class/name` (the name may itself contain `/`).
    pub fn parse(text: &str) -> Option<Self> {
        let (class, name) = text.split_once('/')?;
        (!class.is_empty() && !name.is_empty()).then(|| Self::new(class, name))
    }
}

impl fmt::Display for AgentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.class, self.name)
    }
}
