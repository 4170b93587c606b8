//! Runner configuration, as it appears under a sink's table in `sightline.toml`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_bus::{Filter, Overflow, SubscribeOptions};
use sightline_event::{KindSet, Severity};

/// What to do when a sink's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Refuse the newest event and count it; agents never wait. The default.
    #[default]
    DropNewest,
    /// Evict the oldest queued event and count it; agents never wait.
    DropOldest,
    /// Make agents wait up to `block_timeout_ms` for room, then drop and count.
    Block,
}

/// How one sink is fed and supervised. Every field has a default; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunnerConfig {
    /// Event kinds this sink receives: comma-separated names (`schedule:error`), families
    /// (`schedule`), prefixes (`fiber:recovery:*`) or `*`.
    pub kinds: String,
    /// Agent classes this sink receives; empty means all.
    pub agent_classes: Vec<String>,
    /// Lowest severity this sink receives (`trace` .. `fatal`).
    pub min_severity: String,
    /// The redaction policy applied before this sink sees an event: a built-in (`default`,
    /// `archive`, `otlp`, `metrics`, `none`) or a `[policies.<name>]` table.
    pub policy: String,
    /// Capacity of the sink's queue, in events.
    pub queue_capacity: usize,
    /// What happens when the queue is full.
    pub overflow: OverflowPolicy,
    /// With `overflow = "block"`: the longest an agent may wait, in milliseconds.
    pub block_timeout_ms: u64,
    /// Most events handed to the sink in one batch.
    pub batch_max_events: usize,
    /// How long the worker lingers for a fuller batch, and how often it flushes, in ms.
    pub flush_interval_ms: u64,
    /// Retries of a batch that failed with a transient error before it is counted as failed.
    pub max_retries: u32,
    /// Backoff before the first retry, in ms; doubles each retry, capped at 30 s.
    pub retry_backoff_ms: u64,
    /// Deadline for draining and shutting down, in ms.
    pub shutdown_timeout_ms: u64,
    /// Consecutive panics after which the sink is declared dead; its events are then counted
    /// as failed (`sink_dead`) instead of delivered.
    pub max_consecutive_panics: u32,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            kinds: "*".to_owned(),
            agent_classes: Vec::new(),
            min_severity: "trace".to_owned(),
            policy: "default".to_owned(),
            queue_capacity: 8192,
            overflow: OverflowPolicy::DropNewest,
            block_timeout_ms: 100,
            batch_max_events: 512,
            flush_interval_ms: 1000,
            max_retries: 3,
            retry_backoff_ms: 100,
            shutdown_timeout_ms: 5000,
            max_consecutive_panics: 3,
        }
    }
}

/// A runner configuration value that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ConfigError {
    /// The offending key.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl RunnerConfig {
    /// The sink's filter (kinds, agent classes, minimum severity).
    pub fn filter(&self) -> Result<Filter, ConfigError> {
        let kinds = KindSet::parse(&self.kinds).map_err(|e| ConfigError {
            key: "kinds",
            message: e.to_string(),
        })?;
        if kinds.is_empty() {
            return Err(ConfigError {
                key: "kinds",
                message: "selects no event kind".to_owned(),
            });
        }
        let min_severity = Severity::from_name(&self.min_severity).ok_or_else(|| ConfigError {
            key: "min_severity",
            message: format!(
                "unknown severity {:?} (trace, debug, info, warn, error, fatal)",
                self.min_severity
            ),
        })?;
        Ok(Filter::kinds(kinds)
            .classes(self.agent_classes.iter().map(String::as_str))
            .min_severity(min_severity))
    }

    /// Checks values and builds the subscription options.
    pub fn subscribe_options(&self, name: &str) -> Result<SubscribeOptions, ConfigError> {
        let filter = self.filter()?;
        let positive = |key: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError {
                    key,
                    message: "must be at least 1".to_owned(),
                })
            } else {
                Ok(())
            }
        };
        positive("queue_capacity", self.queue_capacity as u64)?;
        positive("batch_max_events", self.batch_max_events as u64)?;
        positive("flush_interval_ms", self.flush_interval_ms)?;
        positive("shutdown_timeout_ms", self.shutdown_timeout_ms)?;
        positive("max_consecutive_panics", self.max_consecutive_panics as u64)?;
        if self.overflow == OverflowPolicy::Block {
            positive("block_timeout_ms", self.block_timeout_ms)?;
        }
        let overflow = match self.overflow {
            OverflowPolicy::DropNewest => Overflow::DropNewest,
            OverflowPolicy::DropOldest => Overflow::DropOldest,
            OverflowPolicy::Block => Overflow::Block {
                timeout: Duration::from_millis(self.block_timeout_ms),
            },
        };
        Ok(SubscribeOptions::new(name)
            .filter(filter)
            .capacity(self.queue_capacity)
            .overflow(overflow)
            // Wake the worker at half a batch: producers almost never pay for a wake-up, and
            // the flush interval bounds latency when traffic is light.
            .wake_threshold((self.batch_max_events / 2).clamp(1, self.queue_capacity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_the_key_name() {
        let err =
            toml::from_str::<RunnerConfig>("queue_capacity = 10\nflush_every = 3\n").unwrap_err();
        assert!(err.to_string().contains("flush_every"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cfg = RunnerConfig {
            kinds: "schedule,nope".into(),
            ..Default::default()
        };
        assert_eq!(cfg.subscribe_options("x").unwrap_err().key, "kinds");
        let cfg = RunnerConfig {
            min_severity: "loud".into(),
            ..Default::default()
        };
        assert_eq!(cfg.subscribe_options("x").unwrap_err().key, "min_severity");
        let cfg = RunnerConfig {
            queue_capacity: 0,
            ..Default::default()
        };
        assert_eq!(
            cfg.subscribe_options("x").unwrap_err().key,
            "queue_capacity"
        );
    }
}
