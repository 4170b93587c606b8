//! Where the redaction tests plant a secret: the places a payload can hide one, and the
//! planted entry itself, shared by the property test and the fuzz-corpus replay.

use serde_json::{json, Value};

/// Where a secret is planted.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// As a string value.
    Value,
    /// Inside a sentence.
    InText,
    /// As an object key.
    Key,
    /// As an array item.
    ArrayItem,
    /// In a URL's query string (percent-encoded).
    UrlQuery,
    /// Inside JSON stringified into a string.
    Stringified,
}

impl Place {
    /// Every place.
    pub const ALL: [Place; 6] = [
        Place::Value,
        Place::InText,
        Place::Key,
        Place::ArrayItem,
        Place::UrlQuery,
        Place::Stringified,
    ];
}

/// The entry that plants `secret` at `place`: under `key`, or (for [`Place::Key`]) as the
/// key itself.
pub fn plant(secret: &str, place: Place, key: &str) -> (String, Value) {
    let value = match place {
        Place::Value => json!(secret),
        Place::InText => json!(format!("please note: {secret}, thanks")),
        Place::Key => return (secret.to_owned(), json!(1)),
        Place::ArrayItem => json!(["a", secret, 3]),
        Place::UrlQuery => {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("page", "2")
                .append_pair("q", secret)
                .finish();
            json!(format!("https://api.example.com/v1/search?{q}#top"))
        }
        Place::Stringified => json!(json!({ "inner": { "note": secret } }).to_string()),
    };
    (key.to_owned(), value)
}
