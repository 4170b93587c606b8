//! Cloudflare Agents' `ObservabilityEvent` (`{"type", "agent", "name", "payload",
//! "timestamp"}`) mapped onto the event model: kept apart from the walk over the input's
//! shapes so that the field mapping reads in one place.
//!
//! `type` is the kind (the names are the same), `agent`/`name` the agent, `timestamp` (ms)
//! the time; camelCase payload keys become the model's snake_case fields,
//! `elapsedMs`/`durationMs` the duration, an `error` the outcome. The event gets a
//! time-ordered id here; its sequence number is the converter's to give (see
//! [`crate::Converter`]), once the whole input converted.

use serde_json::{Map, Value};
use sightline_event::{AgentRef, Event, EventId, Kind, Outcome, Payload, SCHEMA_VERSION};

use crate::error::ConvertError;

/// What one observability event became.
#[expect(
    clippy::large_enum_variant,
    reason = "returned once and matched at once; boxing would allocate per event"
)]
pub(crate) enum Mapped {
    /// An event of the model, its `seq` still to be given.
    Event {
        /// The event (`seq` is 0).
        event: Event,
        /// Payload keys without a field in the model (dropped).
        dropped_keys: u64,
    },
    /// A type the event model does not have (skipped).
    UnknownType(String),
}

/// Maps one observability event; `fallback_ts_ms` is its channel entry's timestamp, used
/// when the event has none of its own.
pub(crate) fn observability_event(
    obj: &Map<String, Value>,
    fallback_ts_ms: Option<f64>,
) -> Result<Mapped, ConvertError> {
    let type_name = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or(ConvertError::NoType)?;
    let Some(kind) = Kind::from_name(type_name) else {
        return Ok(Mapped::UnknownType(type_name.to_owned()));
    };
    let ts_ms = obj
        .get("timestamp")
        .and_then(Value::as_f64)
        .or(fallback_ts_ms)
        .ok_or(ConvertError::NoTimestamp)?;
    let ts_ns = ms_to_ns(ts_ms);
    let text = |key: &str, default: &str| {
        obj.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(default)
            .to_owned()
    };
    let agent = AgentRef::new(text("agent", "unknown"), text("name", "-"));
    let empty = Map::new();
    let given = obj
        .get("payload")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut payload = match Payload::default_for(kind).to_json() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let fields: Vec<&str> = kind.fields().iter().map(|f| f.name).collect();
    let mut duration_ns = None;
    let mut failed = false;
    let mut dropped_keys = 0;
    for (key, value) in given {
        let snake = snake_case(key);
        match snake.as_str() {
            "elapsed_ms" | "duration_ms" => {
                duration_ns = value.as_f64().map(ms_to_ns);
                continue;
            }
            "error" if !value.is_null() && value != "" => failed = true,
            _ => {}
        }
        // The anchor's `type` (of a schedule) is our `schedule_type`.
        let name = if snake == "type" && fields.contains(&"schedule_type") {
            "schedule_type".to_owned()
        } else {
            snake
        };
        if fields.contains(&name.as_str()) {
            payload.insert(name, stringify_error(value));
        } else {
            dropped_keys += 1;
        }
    }
    let payload = Payload::from_json(kind, Value::Object(payload)).map_err(|error| {
        ConvertError::PayloadMismatch {
            type_name: type_name.to_owned(),
            error,
        }
    })?;
    let mut event = Event::new(agent, 0, payload);
    event.schema_version = SCHEMA_VERSION;
    event.ts_ns = ts_ns;
    event.id = EventId::generate(ts_ns);
    event.duration_ns = duration_ns;
    if failed {
        // Also raises the severity to error.
        event.set_outcome(Outcome::Error);
    } else if duration_ns.is_some() {
        event.set_outcome(Outcome::Ok);
    }
    Ok(Mapped::Event {
        event,
        dropped_keys,
    })
}

/// Milliseconds (possibly fractional) to nanoseconds, without losing the whole part to
/// floating point (epoch milliseconds times 10^6 exceed f64's exact integers).
fn ms_to_ns(ms: f64) -> u64 {
    let ms = ms.max(0.0);
    let whole = ms.trunc();
    (whole as u64)
        .saturating_mul(1_000_000)
        .saturating_add(((ms - whole) * 1e6).round() as u64)
}

/// Errors arrive as strings or as `{message, ...}` objects; the model holds text.
fn stringify_error(v: &Value) -> Value {
    match v {
        Value::Object(o) => o
            .get("message")
            .cloned()
            .unwrap_or_else(|| Value::String(v.to_string())),
        other => other.clone(),
    }
}

/// `maxAttempts` → `max_attempts`, `fiberId` → `fiber_id`.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, c) in key.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_milliseconds_keep_their_whole_part() {
        assert_eq!(ms_to_ns(1_763_936_129_001.0), 1_763_936_129_001_000_000);
        assert_eq!(ms_to_ns(12.5), 12_500_000);
        assert_eq!(ms_to_ns(-3.0), 0);
    }

    #[test]
    fn camel_case_keys_become_snake_case() {
        assert_eq!(snake_case("maxAttempts"), "max_attempts");
        assert_eq!(snake_case("fiberId"), "fiber_id");
        assert_eq!(snake_case("callback"), "callback");
    }
}
