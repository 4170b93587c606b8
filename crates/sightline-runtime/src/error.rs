//! The error every agent-facing call returns ([`RpcError`]). It sits at the bottom of the
//! crate because everything speaks it: the host's mailboxes, the agent trait, the model
//! clients and each feature module.

/// Why an RPC failed, as its caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct RpcError {
    /// A short, bounded class (`NotFound`, `Overloaded`, `TypeError`): a metric label.
    pub error_type: String,
    /// What happened (may carry user data: sensitive in events).
    pub message: String,
}

impl RpcError {
    /// An error of class `error_type`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// The error type of the default [`Agent::on_fiber_recovered`](crate::Agent::on_fiber_recovered)
/// (and of the other default handlers): the agent has no handler for this input.
pub const NO_HANDLER: &str = "NoHandler";
