//! The runtime's OpenAI-compatible model client, configured only by the environment
//! (`OPENAI_BASE_URL`, `OPENAI_API_KEY`), talks to a real OpenAI-compatible server — LiteLLM's
//! proxy on loopback, its models answering without a backend — and every call is a
//! `model:call` with provider, model, tokens and finish reason; a 429 is an error typed
//! `RateLimited`, and the turn it was in fails.

use std::sync::Arc;

use sightline_bus::{Bus, SubscribeOptions};
use sightline_event::{Kind, Outcome, Payload};
use sightline_runtime::{Agent, Ctx, OpenAiModel, RpcError, Runtime, RuntimeConfig};
use sightline_tests::real::{litellm, LITELLM_KEY};
use sightline_tests::scratch_dir;

struct Chat;

impl Agent for Chat {
    async fn on_rpc(
        &mut self,
        _ctx: &mut Ctx,
        method: &str,
        _args: serde_json::Value,
    ) -> Result<serde_json::Value, RpcError> {
        Err(RpcError::new("NotFound", method))
    }

    async fn on_message(
        &mut self,
        ctx: &mut Ctx,
        _connection: &str,
        text: String,
    ) -> Result<String, RpcError> {
        // The model is named in the message: "<model>: <prompt>".
        let (model, prompt) = text.split_once(": ").unwrap_or(("sightline-mock", &text));
        Ok(ctx.model(model, prompt).await?.text)
    }
}

#[test]
fn a_model_call_to_an_openai_compatible_server_is_evented_with_its_tokens() {
    let dir = scratch_dir("openai").unwrap();
    let server = litellm(&dir).unwrap();
    // Set before any thread starts.
    std::env::set_var("OPENAI_BASE_URL", format!("http://{}/v1", server.addr));
    std::env::set_var("OPENAI_API_KEY", LITELLM_KEY);
    std::env::remove_var("SIGHTLINE_MODEL");
    let model = OpenAiModel::from_env().unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let bus = Bus::new();
    let sub = bus.subscribe(SubscribeOptions::new("test").capacity(1 << 16));
    let runtime = Runtime::new(
        bus,
        RuntimeConfig {
            data_dir: dir.join("agents"),
            ..Default::default()
        },
        rt.handle().clone(),
    );
    runtime.set_model(Arc::new(model));
    runtime.register("Chat", |_| Chat);
    let say = |req: &str, text: &str| {
        rt.block_on(runtime.message("Chat", "u-1", "conn-1", req, text, None))
    };
    let answer = say("r-1", "sightline-mock: where is my order?").unwrap();
    assert_eq!(answer, "Your order A-1042 shipped yesterday.");
    let refused = say("r-2", "sightline-ratelimited: hello").unwrap_err();
    assert_eq!(refused.error_type, "RateLimited", "{refused}");

    let events: Vec<_> = std::iter::from_fn(|| sub.try_recv()).collect();
    let calls: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ModelCall(c) => Some((e.outcome, c.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2, "{events:?}");
    let (outcome, ok) = &calls[0];
    assert_eq!(*outcome, Some(Outcome::Ok));
    assert_eq!(ok.provider, "openai");
    assert_eq!(ok.model, "sightline-mock");
    assert!(ok.input_tokens > 0 && ok.output_tokens > 0, "{ok:?}");
    assert_eq!(ok.finish_reason.as_deref(), Some("stop"));
    let (outcome, failed) = &calls[1];
    assert_eq!(*outcome, Some(Outcome::Error));
    assert_eq!(failed.model, "sightline-ratelimited");
    assert!(failed.error.is_some());
    let turns: Vec<_> = events
        .iter()
        .filter(|e| e.kind() == Kind::ChatTurnFinish)
        .map(|e| e.outcome)
        .collect();
    assert_eq!(turns, [Some(Outcome::Ok), Some(Outcome::Error)]);
}
