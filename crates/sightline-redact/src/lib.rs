//! # sightline-redact: no secret leaves the process
//!
//! Agents' payloads carry user text, tool arguments, OAuth URLs, email addresses, error
//! messages and state diffs; a token leaked through logged props is a real incident in this
//! field. This crate is the one place that decides what of an event may leave: a [`Redactor`]
//! compiled from a [`PolicyConfig`] rewrites an [`Event`] in place before any sink sees it.
//!
//! A policy combines, in this order of precedence, for every value at a dotted path
//! (`payload.args.token`, `agent.name`):
//! 1. **key rules** with globs (`payload.**.password`, `**.authorization`) and an action:
//!    `drop`, `mask` (optionally keeping the first/last characters), `hash` (HMAC-SHA256 with a
//!    key from an environment variable or a file, never from the config), `truncate`, `keep`
//!    or `scan`;
//! 2. the **allow-list** (in `allowlist` mode only listed fields, and optionally the fields the
//!    event model marks safe, pass);
//! 3. the **sensitive-field default**: fields whose type is `Sensitive<T>` get the policy's
//!    `sensitive_fields` action even with no rule;
//! 4. **value detectors** on every string not explicitly kept: email, payment cards (Luhn and
//!    issuer checked), JWTs, `Bearer`/`Basic` credentials, AWS keys, OpenAI/Anthropic/GitHub/
//!    Slack/Google/Stripe tokens, PEM private keys, IPv4/IPv6, E.164 phones, US SSNs, IBANs and
//!    custom regexes — also inside object keys, URL query strings (decoded) and JSON that was
//!    stringified into a string.
//!
//! Payloads deeper than `max_depth` or with more than `max_bytes` of strings are cut with a
//! marker and counted. Every redacted event carries a [`RedactionSummary`] (counts by rule and
//! action, never values), and the redactor keeps running totals for metrics.
//!
//! The modules, bottom to top: `config` (what users write), `path`, `detect` and `key` (globs,
//! value detectors, the HMAC key), `policy` (a config compiled from those), then `fast_path`
//! and `walk` (the two ways of applying a policy, both reading it), and `redactor` (the shared
//! handle that picks between them and keeps totals).
//!
//! ```
//! use sightline_event::{AgentRef, Event, RpcError};
//! use sightline_redact::{PolicyConfig, Redactor};
//!
//! let redactor = Redactor::new("default", &PolicyConfig::default()).unwrap();
//! let mut event = Event::new(AgentRef::new("Support", "t1"), 1, RpcError {
//!     method: "refund".into(),
//!     error: "card 4111 1111 1111 1111 declined for jane@example.com".into(),
//!     ..Default::default()
//! });
//! redactor.redact_event(&mut event);
//! let line = event.to_json_line();
//! assert!(!line.contains("4111") && !line.contains("jane@example.com"));
//! assert!(line.contains("\"redaction\""));
//! ```
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod detect;
mod error;
mod fast_path;
#[doc(hidden)]
pub mod fuzzing;
mod key;
mod path;
mod policy;
mod redactor;
mod walk;

pub use config::{Action, ActionKind, CustomDetector, Mode, PolicyConfig, Rule};
pub use detect::{DetectorError, Detectors, Found, BUILTIN as BUILTIN_DETECTORS};
pub use error::PolicyError;
pub use key::KeySource;
pub use path::PathGlob;
pub use redactor::{build_policies, Redactor, RedactorStats};
