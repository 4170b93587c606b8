//! The one error a policy can raise: it cannot be compiled (a bad glob, an unknown detector, a
//! missing or short key). Its own module because compiling, key loading and building the
//! policy set all report it, naming the offending key as a user would write it.

use std::fmt;

/// A policy that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("policy {policy:?}: {key}: {message}")]
pub struct PolicyError {
    /// The policy.
    pub policy: String,
    /// The offending key (`rules[2].path`, `detectors`, `hash_key_env`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A [`PolicyError`] for `policy` at `key`.
pub(crate) fn err(policy: &str, key: impl Into<String>, message: impl fmt::Display) -> PolicyError {
    PolicyError {
        policy: policy.to_owned(),
        key: key.into(),
        message: message.to_string(),
    }
}
