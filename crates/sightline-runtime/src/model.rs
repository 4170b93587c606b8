//! What answers an agent's prompts: the [`ModelClient`] trait the runtime holds one of, and
//! [`LocalModel`], the deterministic one the demo and the tests use. Below the agent layer
//! because `Ctx` holds the client; `ctx.model(...)` itself, which events the call, is in
//! `calls.rs`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::error::RpcError;

/// A model request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// The model asked for.
    pub model: String,
    /// The prompt (sensitive: never in events).
    pub prompt: String,
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelResponse {
    /// The text.
    pub text: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Why generation stopped.
    pub finish_reason: String,
}

/// A boxed future of a model answer.
pub type ModelFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ModelResponse, RpcError>> + Send + 'a>>;

/// Something that answers prompts.
pub trait ModelClient: Send + Sync + 'static {
    /// The provider name in events (`openai`, `local`).
    fn provider(&self) -> &str;
    /// Answers one request.
    fn complete(&self, req: ModelRequest) -> ModelFuture<'_>;
    /// The model a request for `requested` goes to (a client may be configured to send
    /// every request to one model); `model:call` records this one.
    fn model_for(&self, requested: &str) -> String {
        requested.to_owned()
    }
}

/// A deterministic model for the demo and tests: answers from the prompt, tokens counted as
/// words, a little latency; prompts containing `FAIL` fail.
#[derive(Debug, Clone, Default)]
pub struct LocalModel;

impl ModelClient for LocalModel {
    fn provider(&self) -> &str {
        "local"
    }

    fn complete(&self, req: ModelRequest) -> ModelFuture<'_> {
        Box::pin(async move {
            let words = req.prompt.split_whitespace().count() as u64;
            tokio::time::sleep(Duration::from_millis(2 + words % 5)).await;
            if req.prompt.contains("FAIL") {
                return Err(RpcError::new(
                    "RateLimited",
                    "the local model refused (FAIL in prompt)",
                ));
            }
            let text = format!(
                "Answer about: {}",
                req.prompt.chars().take(40).collect::<String>()
            );
            Ok(ModelResponse {
                output_tokens: text.split_whitespace().count() as u64,
                text,
                input_tokens: words.max(1),
                finish_reason: "stop".into(),
            })
        })
    }
}
