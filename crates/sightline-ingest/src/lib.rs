//! # sightline-ingest: other people's events, as Sightline events
//!
//! Events recorded elsewhere enter Sightline through here: `sightline ingest` reads them from
//! stdin, and a long-running receiver can take the same inputs over the network. This crate
//! only converts; reading, counting and feeding a pipeline stay with the caller.
//!
//! One input (a line of JSONL, or one JSON document) may be:
//! - a Sightline event (the event model's JSON form), kept as it is;
//! - a Tail Worker `TraceItem` (`{"diagnosticsChannelEvents": [...], ...}`), or an array of
//!   them (what a Tail Worker's `tail(events)` handler receives);
//! - one `diagnosticsChannelEvents` entry (`{"channel", "timestamp", "message"}`);
//! - one Cloudflare Agents `ObservabilityEvent` (`{"type", "agent", "name", "payload",
//!   "timestamp"}`).
//!
//! Cloudflare events are mapped onto the event model (the kind names are the same); what the
//! anchor lacks is filled in: a time-ordered id, and a per-agent sequence number in arrival
//! order, continuing from what an archive holds ([`Converter::continuing`]). Types Sightline
//! does not model are reported in [`Converted::unknown_types`] and skipped. An input converts
//! whole or not at all; what is wrong with it is a [`ConvertError`], with its line a
//! [`LineError`].
//!
//! ```
//! use sightline_ingest::{is_blank, ConvertError, Converter};
//!
//! let input: &[&[u8]] = &[
//!     br#"{"type":"schedule:execute","agent":"ReminderAgent","name":"u-1","timestamp":1763936129000,"payload":{"callback":"remind","id":"s1"}}"#,
//!     b"",
//!     b"{\"type\": \"rpc\xff\"}",
//! ];
//! let mut converter = Converter::new();
//! let mut events = Vec::new();
//! let mut invalid = Vec::new();
//! for (n, line) in input.iter().enumerate() {
//!     if is_blank(line) {
//!         continue;
//!     }
//!     match converter.line(n as u64 + 1, line) {
//!         Ok(converted) => events.extend(converted.events),
//!         Err(e) => invalid.push(e),
//!     }
//! }
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].seq, 1);
//! assert_eq!(events[0].ts_ns, 1_763_936_129_000_000_000);
//! assert_eq!(invalid[0].line, 3);
//! assert!(matches!(invalid[0].error, ConvertError::NotUtf8 { .. }));
//! ```

mod cloudflare;
mod convert;
mod error;

pub use convert::{is_blank, Converted, Converter};
pub use error::{ConvertError, LineError};
