//! What an agent calls out to: other agents (RPC, the trace carried along), a model (the
//! runtime's [`ModelClient`](crate::ModelClient), see `model.rs`), local tools, and humans
//! (approvals: requested, then granted, denied or expired).

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_event::{
    ApprovalDenied, ApprovalExpired, ApprovalGranted, ApprovalRequested, ModelCall, Name, Outcome,
    Sensitive, ToolCall, TraceContext,
};

use crate::agent::Ctx;
use crate::clock::now_ms;
use crate::error::RpcError;
use crate::model::{ModelRequest, ModelResponse};
use crate::store::ApprovalRow;

/// An approval's outcome as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A human said yes.
    Granted,
    /// A human said no.
    Denied,
}

impl Ctx {
    /// Calls another agent (`class/name`), continuing this input's trace; the other agent
    /// sees this one as the caller.
    pub async fn call_agent(
        &mut self,
        class: &str,
        name: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, RpcError> {
        if self.agent.class == class && self.agent.name == name {
            return Err(RpcError::new(
                "Deadlock",
                "an agent cannot call itself (it handles one input at a time)",
            ));
        }
        let Some(host) = self.host.clone() else {
            return Err(RpcError::new("Internal", "no runtime"));
        };
        let caller = self.agent.to_string();
        host.call(class, name, method, args, self.trace(), caller)
            .await
    }

    /// Asks the runtime's model; emits `model:call` with model, provider, tokens, finish
    /// reason, duration and outcome (never the prompt or the answer).
    pub async fn model(&mut self, model: &str, prompt: &str) -> Result<ModelResponse, RpcError> {
        let Some(client) = self.model.clone() else {
            return Err(RpcError::new("NoModel", "the runtime has no model client"));
        };
        let span = self
            .trace()
            .map(|t| t.child())
            .unwrap_or_else(TraceContext::new_root);
        let model = client.model_for(model);
        let started = Instant::now();
        let result = client
            .complete(ModelRequest {
                model: model.clone(),
                prompt: prompt.to_owned(),
            })
            .await;
        let took = started.elapsed().as_nanos() as u64;
        self.emitter.emit_with(|m| {
            m.trace = Some(span);
            m.duration_ns = Some(took);
            m.outcome = Some(if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            });
            let (input_tokens, output_tokens, finish) = match &result {
                Ok(r) => (
                    r.input_tokens,
                    r.output_tokens,
                    Some(r.finish_reason.as_str().into()),
                ),
                Err(_) => (0, 0, None),
            };
            ModelCall {
                model: model.as_str().into(),
                provider: client.provider().into(),
                input_tokens,
                output_tokens,
                finish_reason: finish,
                error: result.as_ref().err().map(|e| Sensitive(e.message.clone())),
            }
        });
        result
    }

    /// Runs a local tool: `run` gets the arguments; emits `tool:call` with duration and
    /// outcome (`source = "local"`).
    pub async fn tool<F, Fut>(&mut self, tool: &str, args: Value, run: F) -> Result<Value, RpcError>
    where
        F: FnOnce(Value) -> Fut,
        Fut: Future<Output = Result<Value, RpcError>>,
    {
        let span = self
            .trace()
            .map(|t| t.child())
            .unwrap_or_else(TraceContext::new_root);
        let started = Instant::now();
        let result = run(args.clone()).await;
        let call_id = format!("call_{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        self.emitter.emit_with(|m| {
            m.trace = Some(span);
            m.duration_ns = Some(started.elapsed().as_nanos() as u64);
            m.outcome = Some(if result.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Error
            });
            ToolCall {
                tool_call_id: call_id.as_str().into(),
                tool_name: tool.into(),
                source: Some(Name::new_static("local")),
                arguments: Some(Sensitive(args)),
                error: result.as_ref().err().map(|e| Sensitive(e.message.clone())),
            }
        });
        result
    }

    /// Asks a human to approve `action`; expires after `expires_in` (emitting
    /// `approval:expired`). Returns the approval's id, for [`Ctx::decide_approval`].
    pub fn request_approval(
        &mut self,
        action: &str,
        prompt: &str,
        expires_in: Duration,
    ) -> Result<String, RpcError> {
        let id = format!("apr_{:016x}", fastrand::u64(..));
        let now = now_ms();
        let expires_in_ms = u64::try_from(expires_in.as_millis())
            .unwrap_or(u64::MAX)
            .min((i64::MAX as u64).saturating_sub(now));
        self.store
            .put_approval(&ApprovalRow {
                id: id.clone(),
                action: action.to_owned(),
                requested_ms: now,
                expires_ms: now + expires_in_ms,
                traceparent: self.trace().map(|t| t.traceparent()),
            })
            .map_err(|e| RpcError::new("StoreError", e.to_string()))?;
        self.emitter.emit(|| ApprovalRequested {
            approval_id: id.as_str().into(),
            action: action.into(),
            tool_call_id: None,
            prompt: Some(Sensitive(prompt.to_owned())),
            expires_in_ms: Some(expires_in_ms),
        });
        self.refresh_next_due();
        Ok(id)
    }

    /// Records a human's decision on a pending approval; emits `approval:granted` or
    /// `approval:denied` with the time the human took. Errors when it is not pending (decided
    /// or expired).
    pub fn decide_approval(
        &mut self,
        id: &str,
        decision: Decision,
        decided_by: &str,
        reason: Option<&str>,
    ) -> Result<(), RpcError> {
        let row = self
            .store
            .take_approval(id)
            .map_err(|e| RpcError::new("StoreError", e.to_string()))?
            .ok_or_else(|| RpcError::new("NotPending", format!("approval {id} is not pending")))?;
        let waited = now_ms()
            .saturating_sub(row.requested_ms)
            .saturating_mul(1_000_000);
        let span = row
            .traceparent
            .as_deref()
            .and_then(TraceContext::from_traceparent);
        let (approval_id, action): (Name, Name) =
            (row.id.as_str().into(), row.action.as_str().into());
        match decision {
            Decision::Granted => self.emitter.emit_with(|m| {
                m.trace = span;
                m.duration_ns = Some(waited);
                m.outcome = Some(Outcome::Ok);
                ApprovalGranted {
                    approval_id,
                    action,
                    decided_by: Some(Sensitive(decided_by.to_owned())),
                }
            }),
            // A human saying no is an answer, not a failure.
            Decision::Denied => self.emitter.emit_with(|m| {
                m.trace = span;
                m.duration_ns = Some(waited);
                m.outcome = Some(Outcome::Ok);
                ApprovalDenied {
                    approval_id,
                    action,
                    decided_by: Some(Sensitive(decided_by.to_owned())),
                    reason: reason.map(|r| Sensitive(r.to_owned())),
                }
            }),
        }
        self.refresh_next_due();
        Ok(())
    }
}

/// Expires the approvals whose time ran out.
pub(crate) fn expire_approvals(ctx: &mut Ctx) {
    let now = now_ms();
    let Ok(expired) = ctx.store.expired_approvals(now) else {
        return;
    };
    for row in expired {
        if !matches!(ctx.store.take_approval(&row.id), Ok(Some(_))) {
            continue;
        }
        let span = row
            .traceparent
            .as_deref()
            .and_then(TraceContext::from_traceparent);
        ctx.emitter.emit_with(|m| {
            m.trace = span;
            m.duration_ns = Some(
                now.saturating_sub(row.requested_ms)
                    .saturating_mul(1_000_000),
            );
            m.outcome = Some(Outcome::Timeout);
            ApprovalExpired {
                approval_id: row.id.as_str().into(),
                action: row.action.as_str().into(),
            }
        });
    }
    ctx.refresh_next_due();
}
