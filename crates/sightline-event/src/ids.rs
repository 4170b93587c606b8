//! Identifiers: the time-ordered event id and W3C trace context.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not the expected number of lowercase hex digits.
    #[error("expected {expected} lowercase hex digits, got {got:?}")]
    BadHex {
        /// How many hex digits the identifier has.
        expected: usize,
        /// The text that was given.
        got: String,
    },
    /// W3C forbids the all-zero trace and span id.
    #[error("the all-zero id is invalid")]
    Zero,
    /// The event id is not a UUID.
    #[error("invalid event id: {0}")]
    Uuid(String),
}

// ===== impl EventId =====

/// A unique, time-ordered event id: a UUIDv7 (RFC 9562) whose 48-bit millisecond timestamp is
/// followed by 12 bits of sub-millisecond fraction (method 3) and 62 random bits, so ids sort
/// by creation time to about 250 ns and never collide in practice.
///
/// ```
/// use sightline_event::EventId;
/// let a = EventId::from_parts(1_700_000_000_000_000_000, 7);
/// let b = EventId::from_parts(1_700_000_000_000_001_000, 3);
/// assert!(a < b);
/// assert_eq!(a.unix_ms(), 1_700_000_000_000);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u128);

impl EventId {
    /// Builds the id for an event stamped `ts_ns` (Unix nanoseconds) from 62 random bits.
    #[inline]
    pub const fn from_parts(ts_ns: u64, random: u64) -> Self {
        let ms = (ts_ns / 1_000_000) as u128 & 0xFFFF_FFFF_FFFF;
        let frac = (((ts_ns % 1_000_000) * 4096) / 1_000_000) as u128;
        let rand = (random as u128) & 0x3FFF_FFFF_FFFF_FFFF;
        Self((ms << 80) | (0x7 << 76) | (frac << 64) | (0b10 << 62) | rand)
    }

    /// A fresh id for an event stamped `ts_ns`, with thread-local randomness.
    #[inline]
    pub fn generate(ts_ns: u64) -> Self {
        Self::from_parts(ts_ns, fastrand::u64(..))
    }

    /// The millisecond timestamp the id carries.
    pub const fn unix_ms(self) -> u64 {
        (self.0 >> 80) as u64
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_u128(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

impl FromStr for EventId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        uuid::Uuid::parse_str(s)
            .map(|u| Self(u.as_u128()))
            .map_err(|e| IdError::Uuid(e.to_string()))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventId {
    fn schema_name() -> Cow<'static, str> {
        "EventId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "UUIDv7, time-ordered",
            "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
        })
    }
}

// ===== impl TraceId / SpanId =====

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $int:ident, $digits:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::num::NonZero<$int>);

        impl $name {
            /// Wraps a non-zero value; `None` for zero, which W3C declares invalid.
            pub const fn new(value: $int) -> Option<Self> {
                match std::num::NonZero::new(value) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// A fresh random id (never zero).
            pub fn random() -> Self {
                loop {
                    if let Some(v) = Self::new(fastrand::$int(..)) {
                        return v;
                    }
                }
            }

            /// The raw value.
            pub const fn get(self) -> $int {
                self.0.get()
            }

            /// The big-endian bytes, as OTLP carries them.
            pub const fn to_bytes(self) -> [u8; $digits / 2] {
                self.0.get().to_be_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:0width$x}", self.0.get(), width = $digits)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let ok = s.len() == $digits && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                if !ok {
                    return Err(IdError::BadHex { expected: $digits, got: s.chars().take(64).collect() });
                }
                let v = <$int>::from_str_radix(s, 16)
                    .map_err(|_| IdError::BadHex { expected: $digits, got: s.to_owned() })?;
                Self::new(v).ok_or(IdError::Zero)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = Cow::<'de, str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "pattern": concat!("^[0-9a-f]{", $digits, "}$")
                })
            }
        }
    };
}

hex_id!(
    /// A W3C trace id: 16 bytes, 32 lowercase hex digits, never all zero.
    TraceId, u128, 32
);
hex_id!(
    /// A W3C span id: 8 bytes, 16 lowercase hex digits, never all zero.
    SpanId, u64, 16
);

// ===== impl TraceContext =====

/// The W3C trace context an event belongs to: which trace, which span, and that span's parent.
///
/// A span-shaped event (an operation with a duration) carries its own `span_id`; a point event
/// carries the span it happened in.
///
/// ```
/// use sightline_event::TraceContext;
/// let root = TraceContext::new_root();
/// let child = root.child();
/// assert_eq!(child.trace_id, root.trace_id);
/// assert_eq!(child.parent_span_id, Some(root.span_id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The trace every event of one request shares.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// The span this one was started from, if any.
    pub parent_span_id: Option<SpanId>,
}

impl TraceContext {
    /// A new trace with a root span.
    pub fn new_root() -> Self {
        Self {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
        }
    }

    /// A new span in the same trace, child of this one.
    pub fn child(&self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: SpanId::random(),
            parent_span_id: Some(self.span_id),
        }
    }

    /// Parses a W3C `traceparent` header (`00-<trace>-<span>-<flags>`); the result is a
    /// *child* of the remote span.
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (version, trace, span, _flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != "00" || parts.next().is_some() {
            return None;
        }
        let remote = Self {
            trace_id: trace.parse().ok()?,
            span_id: span.parse().ok()?,
            parent_span_id: None,
        };
        Some(remote.child())
    }

    /// The `traceparent` header that continues this span in another process.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_sort_by_time_and_round_trip() {
        let a = EventId::generate(1_000_000_000_000_000_123);
        let b = EventId::generate(1_000_000_000_000_400_000);
        assert!(a < b);
        let text = a.to_string();
        assert_eq!(text.as_bytes()[14], b'7');
        assert_eq!(text.parse::<EventId>(), Ok(a));
    }

    #[test]
    fn hex_ids_reject_bad_text_and_zero() {
        assert!("abc".parse::<SpanId>().is_err());
        assert!("00000000000000000000000000000000".parse::<TraceId>() == Err(IdError::Zero));
        assert!("0123456789ABCDEF".parse::<SpanId>().is_err());
        let s: SpanId = "0123456789abcdef".parse().unwrap();
        assert_eq!(s.to_string(), "0123456789abcdef");
    }

    #[test]
    fn traceparent_round_trips_into_a_child() {
        let root = TraceContext::new_root();
        let child = TraceContext::from_traceparent(&root.traceparent()).unwrap();
        assert_eq!(child.trace_id, root.trace_id);
        assert_eq!(child.parent_span_id, Some(root.span_id));
        assert!(TraceContext::from_traceparent("01-xx-yy-00").is_none());
    }
}
