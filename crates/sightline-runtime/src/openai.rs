//! An OpenAI-compatible model client (`POST {base}/chat/completions`), configured by the
//! environment, for agents that talk to a real model: OpenAI itself, or any server speaking
//! its API (vLLM, llama.cpp's server, Ollama, LiteLLM, ...).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `OPENAI_BASE_URL` | the API root | `https://api.openai.com/v1` |
//! | `OPENAI_API_KEY` | sent as `Authorization: Bearer …` | none (fine for local servers) |
//! | `SIGHTLINE_MODEL` | the model every call uses, whatever the agent asked for | the agent's |
//! | `SIGHTLINE_MODEL_TIMEOUT_MS` | per request | `60000` |
//!
//! Failures map to short error types (the `error.type` of `model:call`): `RateLimited`
//! (429), `Unauthorized` (401, 403), `BadRequest` (other 4xx), `ServerError` (5xx),
//! `Timeout`, `Unavailable` (no connection), `BadResponse` (not the API's JSON).

use std::time::Duration;

use serde_json::{json, Value};

use crate::error::RpcError;
use crate::model::{ModelClient, ModelFuture, ModelRequest, ModelResponse};

/// Why the environment does not make a client.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiConfigError {
    /// A variable holds something unusable.
    #[error("{var}: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// A client for an OpenAI-compatible chat completions API.
#[derive(Debug, Clone)]
pub struct OpenAiModel {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model_override: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl OpenAiModel {
    /// A client for `base_url` (e.g. `http://127.0.0.1:4000/v1`).
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model_override: Option<String>,
        timeout: Duration,
    ) -> Result<Self, OpenAiConfigError> {
        let url = reqwest::Url::parse(base_url).map_err(|e| OpenAiConfigError::Invalid {
            var: "OPENAI_BASE_URL",
            reason: format!("{base_url:?} is not a URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OpenAiConfigError::Invalid {
                var: "OPENAI_BASE_URL",
                reason: format!("{base_url:?} is not http(s)"),
            });
        }
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| OpenAiConfigError::Client(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            model_override,
        })
    }

    /// The client the environment describes (see the module docs).
    pub fn from_env() -> Result<Self, OpenAiConfigError> {
        let timeout_ms = match var("SIGHTLINE_MODEL_TIMEOUT_MS") {
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| OpenAiConfigError::Invalid {
                    var: "SIGHTLINE_MODEL_TIMEOUT_MS",
                    reason: format!("{v:?} is not a whole number of milliseconds"),
                })?,
            None => 60_000,
        };
        Self::new(
            &var("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
            var("OPENAI_API_KEY"),
            var("SIGHTLINE_MODEL"),
            Duration::from_millis(timeout_ms.max(1)),
        )
    }

    /// Where requests go.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url)
    }

    async fn complete_inner(&self, req: ModelRequest) -> Result<ModelResponse, RpcError> {
        let body = json!({
            "model": req.model,
            "messages": [{ "role": "user", "content": req.prompt }],
        });
        let mut request = self.http.post(self.endpoint()).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                "Timeout"
            } else {
                "Unavailable"
            };
            RpcError::new(kind, e.to_string())
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            RpcError::new(
                if e.is_timeout() {
                    "Timeout"
                } else {
                    "Unavailable"
                },
                e.to_string(),
            )
        })?;
        if !status.is_success() {
            let kind = match status.as_u16() {
                429 => "RateLimited",
                401 | 403 => "Unauthorized",
                400..=499 => "BadRequest",
                _ => "ServerError",
            };
            // The API's own message when there is one, else the start of the body.
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(RpcError::new(kind, format!("HTTP {status}: {detail}")));
        }
        parse(&text)
    }
}

/// Reads a chat completion.
fn parse(text: &str) -> Result<ModelResponse, RpcError> {
    let bad = |why: &str| RpcError::new("BadResponse", why.to_owned());
    let v: Value = serde_json::from_str(text).map_err(|e| bad(&format!("not JSON: {e}")))?;
    let choice = &v["choices"][0];
    if choice.is_null() {
        return Err(bad("no choices"));
    }
    let text = match &choice["message"]["content"] {
        Value::String(s) => s.clone(),
        // Tool calls only, no text.
        Value::Null => String::new(),
        _ => return Err(bad("choices[0].message.content is not text")),
    };
    Ok(ModelResponse {
        text,
        input_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        finish_reason: choice["finish_reason"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned(),
    })
}

impl ModelClient for OpenAiModel {
    fn provider(&self) -> &str {
        "openai"
    }

    fn complete(&self, req: ModelRequest) -> ModelFuture<'_> {
        Box::pin(self.complete_inner(req))
    }

    fn model_for(&self, requested: &str) -> String {
        self.model_override
            .clone()
            .unwrap_or_else(|| requested.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_is_read_with_its_usage_and_finish_reason() {
        let r = parse(
            r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                r.text.as_str(),
                r.input_tokens,
                r.output_tokens,
                r.finish_reason.as_str()
            ),
            ("hi", 9, 2, "stop")
        );
        let tools_only = parse(
            r#"{"choices":[{"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}"#,
        )
        .unwrap();
        assert_eq!(tools_only.finish_reason, "tool_calls");
        assert_eq!(parse("{}").unwrap_err().error_type, "BadResponse");
        assert_eq!(parse("<html>").unwrap_err().error_type, "BadResponse");
    }

    #[test]
    fn a_bad_base_url_names_the_variable() {
        let e = OpenAiModel::new("ftp://x", None, None, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().starts_with("OPENAI_BASE_URL"), "{e}");
        let e = OpenAiModel::new("not a url", None, None, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().starts_with("OPENAI_BASE_URL"), "{e}");
    }
}
