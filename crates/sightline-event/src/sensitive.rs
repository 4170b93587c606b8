//! Field sensitivity as a type.
//!
//! A payload field whose value may carry user data (free text, error messages, URLs,
//! addresses, state diffs, tool arguments) has the type [`Sensitive<T>`]. Everything else
//! (ids, names, counts, durations, states) is *safe*. The distinction lives in the type, so
//! [`Kind::fields`](crate::Kind::fields) and the JSON Schema (`"x-sensitive": true`) are
//! derived from it and cannot drift from the code.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// A value that may carry user data and must pass the redaction stage before it leaves the
/// process.
///
/// It serializes transparently (as `T`), but `Debug` never prints the value, so a stray
/// `{:?}` in a log line cannot leak it.
///
/// ```
/// use sightline_event::Sensitive;
/// let s = Sensitive::new("token=abc".to_string());
/// assert_eq!(format!("{s:?}"), "Sensitive(**REDACTED**)");
/// assert_eq!(serde_json::to_string(&s).unwrap(), "\"token=abc\"");
/// ```
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(pub T);

impl<T> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The wrapped value, for the redaction stage and for tests.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(**REDACTED**)")
    }
}

impl From<&str> for Sensitive<String> {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Sensitive<String> {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl<T: JsonSchema> JsonSchema for Sensitive<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Sensitive_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = T::json_schema(generator);
        schema.insert("x-sensitive".to_owned(), true.into());
        schema
    }
}

/// Whether values of a field type are sensitive. Implemented for every type a payload field
/// may have; [`Sensitive<T>`] (and containers of it) are sensitive, everything else is safe.
pub trait Classify {
    /// `true` when the field may carry user data.
    const SENSITIVE: bool;
}

impl<T> Classify for Sensitive<T> {
    const SENSITIVE: bool = true;
}

impl<T: Classify> Classify for Option<T> {
    const SENSITIVE: bool = T::SENSITIVE;
}

impl<T: Classify> Classify for Vec<T> {
    const SENSITIVE: bool = T::SENSITIVE;
}

macro_rules! safe {
    ($($t:ty),*) => { $(impl Classify for $t { const SENSITIVE: bool = false; })* };
}
safe!(SmolStr, bool, u16, u32, u64);
