//! The families kinds are grouped in (`schedule`, `fiber`, `mcp`, ...): the unit users filter
//! and read by, and the channel Cloudflare publishes each group on. A plain enum below the
//! kinds; the kinds of a family are listed by [`Family::kinds`], defined with them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A group of related kinds; Cloudflare publishes each on its own `agents:<family>` channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Callable methods.
    Rpc,
    /// Agent state.
    State,
    /// Connections, hibernation, destruction, the job dispatcher.
    Lifecycle,
    /// Scheduled callbacks.
    Schedule,
    /// Queued callbacks.
    Queue,
    /// Durable fibers, their runs and recovery.
    Fiber,
    /// MCP client connections.
    Mcp,
    /// Workflows.
    Workflow,
    /// Email.
    Email,
    /// Chat protocol messages.
    Message,
    /// Tool calls.
    Tool,
    /// Model calls.
    Model,
    /// Chat turns and streams.
    Chat,
    /// Human approvals.
    Approval,
}

impl Family {
    /// Every family.
    pub const ALL: &'static [Family] = &[
        Family::Rpc,
        Family::State,
        Family::Lifecycle,
        Family::Schedule,
        Family::Queue,
        Family::Fiber,
        Family::Mcp,
        Family::Workflow,
        Family::Email,
        Family::Message,
        Family::Tool,
        Family::Model,
        Family::Chat,
        Family::Approval,
    ];

    /// The family's name (`"schedule"`).
    pub const fn name(self) -> &'static str {
        match self {
            Family::Rpc => "rpc",
            Family::State => "state",
            Family::Lifecycle => "lifecycle",
            Family::Schedule => "schedule",
            Family::Queue => "queue",
            Family::Fiber => "fiber",
            Family::Mcp => "mcp",
            Family::Workflow => "workflow",
            Family::Email => "email",
            Family::Message => "message",
            Family::Tool => "tool",
            Family::Model => "model",
            Family::Chat => "chat",
            Family::Approval => "approval",
        }
    }

    /// Looks a family up by name.
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.name() == name)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
