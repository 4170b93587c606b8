//! Durable fibers: long work that checkpoints (`stash`) to the agent's database before each
//! next step. A fiber still recorded when the agent starts again was interrupted (the process
//! died): it is reported, handed to the agent's `on_fiber_recovered` with its last checkpoint,
//! retried with backoff when that fails, and given up once older than the maximum age.

use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_event::{
    FiberRecoveryAttempt, FiberRecoveryDetected, FiberRecoveryFailed, FiberRecoveryHandled,
    FiberRecoverySkipped, FiberRunCompleted, FiberRunFailed, FiberRunInterrupted, FiberRunStarted,
    FiberStash, Name, Outcome, Sensitive, TraceContext,
};

use crate::agent::{Agent, Ctx};
use crate::clock::now_ms;
use crate::ctx_state::{Fiber, Recovered};
use crate::error::{RpcError, NO_HANDLER};
use crate::store::{FiberRow, StoreError};

impl Fiber {
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checkpoints written so far.
    pub fn step(&self) -> u32 {
        self.step
    }
}

/// Recovery attempts back off with full jitter from this base to this cap.
const RECOVERY_BACKOFF_BASE_MS: u64 = 500;
const RECOVERY_BACKOFF_CAP_MS: u64 = 60_000;

impl Ctx {
    /// Starts a fiber named `name`: recorded in the database before it runs, so that a crash
    /// leaves a trace of it; emits `fiber:run:started`.
    pub fn start_fiber(&mut self, name: &str) -> Result<Fiber, StoreError> {
        let span = self
            .trace()
            .map(|t| t.child())
            .unwrap_or_else(TraceContext::new_root);
        let fiber = Fiber {
            id: format!("fib_{:016x}", fastrand::u64(..)),
            name: name.to_owned(),
            step: 0,
            started: Instant::now(),
            span,
        };
        self.store.put_fiber(&FiberRow {
            id: fiber.id.clone(),
            name: fiber.name.clone(),
            started_ms: now_ms(),
            step: 0,
            stash: None,
            recovery_attempts: 0,
            next_recovery_ms: None,
            traceparent: Some(span.traceparent()),
        })?;
        self.emitter.emit_with(|m| {
            m.trace = Some(span);
            FiberRunStarted {
                fiber_id: fiber.id.as_str().into(),
                fiber_name: fiber.name.as_str().into(),
            }
        });
        Ok(fiber)
    }

    /// Writes a checkpoint: persisted before this returns, so the next step may run; emits
    /// `fiber:stash`.
    pub fn stash(&mut self, fiber: &mut Fiber, value: &Value) -> Result<(), StoreError> {
        let json = value.to_string();
        self.store.stash_fiber(&fiber.id, fiber.step + 1, &json)?;
        fiber.step += 1;
        self.keep_reserved();
        let span = fiber.span;
        self.emitter.emit_with(|m| {
            m.trace = Some(span);
            FiberStash {
                fiber_id: fiber.id.as_str().into(),
                fiber_name: fiber.name.as_str().into(),
                step: fiber.step,
                size_bytes: json.len() as u64,
            }
        });
        Ok(())
    }

    /// Finishes a fiber: forgotten by the database, `fiber:run:completed` emitted.
    pub fn complete_fiber(&mut self, fiber: Fiber) -> Result<(), StoreError> {
        self.store.delete_fiber(&fiber.id)?;
        self.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Ok);
            m.duration_ns = Some(fiber.started.elapsed().as_nanos() as u64);
            m.trace = Some(fiber.span);
            FiberRunCompleted {
                fiber_id: fiber.id.as_str().into(),
                fiber_name: fiber.name.as_str().into(),
                steps: fiber.step,
            }
        });
        Ok(())
    }

    /// Ends a fiber that failed: forgotten by the database, `fiber:run:failed` emitted.
    pub fn fail_fiber(&mut self, fiber: Fiber, error: &RpcError) -> Result<(), StoreError> {
        self.store.delete_fiber(&fiber.id)?;
        self.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Error);
            m.duration_ns = Some(fiber.started.elapsed().as_nanos() as u64);
            m.trace = Some(fiber.span);
            FiberRunFailed {
                fiber_id: fiber.id.as_str().into(),
                fiber_name: fiber.name.as_str().into(),
                error: Sensitive(error.message.clone()),
                steps: fiber.step,
            }
        });
        Ok(())
    }
}

/// At start: fibers recorded but not finished were interrupted. Reports each and makes its
/// recovery due now.
pub(crate) fn detect_interrupted(ctx: &mut Ctx) {
    let Ok(rows) = ctx.store.fibers() else {
        return;
    };
    let now = now_ms();
    for mut r in rows.into_iter().filter(|r| r.next_recovery_ms.is_none()) {
        let age_ms = now.saturating_sub(r.started_ms);
        let (id, name): (Name, Name) = (r.id.as_str().into(), r.name.as_str().into());
        let span = r
            .traceparent
            .as_deref()
            .and_then(TraceContext::from_traceparent);
        ctx.emitter.emit_with(|m| {
            m.outcome = Some(Outcome::Cancelled);
            m.duration_ns = Some(age_ms.saturating_mul(1_000_000));
            m.trace = span;
            FiberRunInterrupted {
                fiber_id: id.clone(),
                fiber_name: name.clone(),
                reason: Some(Name::new_static("process_restart")),
                steps: r.step,
            }
        });
        ctx.emitter.emit_with(|m| {
            m.trace = span;
            FiberRecoveryDetected {
                fiber_id: id.clone(),
                fiber_name: name.clone(),
                age_ms,
                last_step: r.step,
            }
        });
        r.next_recovery_ms = Some(now);
        let _ = ctx.store.put_fiber(&r);
    }
    ctx.refresh_next_due();
}

/// Runs the recoveries that are due: each hands the fiber to the agent; a failure is retried
/// later with backoff, until the fiber is older than `max_age`.
pub(crate) async fn run_recoveries<A: Agent>(instance: &mut A, ctx: &mut Ctx, max_age: Duration) {
    let now = now_ms();
    let Ok(rows) = ctx.store.fibers() else {
        return;
    };
    for r in rows
        .into_iter()
        .filter(|r| r.next_recovery_ms.is_some_and(|t| t <= now))
    {
        let (id, name): (Name, Name) = (r.id.as_str().into(), r.name.as_str().into());
        let span = r
            .traceparent
            .as_deref()
            .and_then(TraceContext::from_traceparent)
            .unwrap_or_else(TraceContext::new_root);
        let skip = |ctx: &mut Ctx, reason: &'static str| {
            let _ = ctx.store.delete_fiber(&r.id);
            ctx.emitter.emit_with(|m| {
                m.trace = Some(span);
                FiberRecoverySkipped {
                    fiber_id: id.clone(),
                    fiber_name: name.clone(),
                    reason: Name::new_static(reason),
                }
            });
        };
        if now.saturating_sub(r.started_ms) > max_age.as_millis() as u64 {
            skip(ctx, "max_age_exceeded");
            continue;
        }
        let attempt = r.recovery_attempts + 1;
        ctx.emitter.emit_with(|m| {
            m.trace = Some(span);
            FiberRecoveryAttempt {
                fiber_id: id.clone(),
                fiber_name: name.clone(),
                attempt,
            }
        });
        let started = Instant::now();
        let recovered = Recovered {
            fiber: Fiber {
                id: r.id.clone(),
                name: r.name.clone(),
                step: r.step,
                started,
                span,
            },
            stash: r
                .stash
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
        };
        ctx.emitter.set_trace(Some(span));
        let result = instance.on_fiber_recovered(ctx, recovered).await;
        ctx.emitter.set_trace(None);
        ctx.keep_reserved();
        match result {
            Ok(()) => {
                // Handled: whether the handler finished the fiber or not, it is done with.
                let _ = ctx.store.delete_fiber(&r.id);
                ctx.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Ok);
                    m.duration_ns = Some(started.elapsed().as_nanos() as u64);
                    m.trace = Some(span);
                    FiberRecoveryHandled {
                        fiber_id: id.clone(),
                        fiber_name: name.clone(),
                        attempt,
                    }
                });
            }
            Err(e) if e.error_type == NO_HANDLER => skip(ctx, "no_handler"),
            Err(e) => {
                ctx.emitter.emit_with(|m| {
                    m.outcome = Some(Outcome::Error);
                    m.duration_ns = Some(started.elapsed().as_nanos() as u64);
                    m.trace = Some(span);
                    FiberRecoveryFailed {
                        fiber_id: id.clone(),
                        fiber_name: name.clone(),
                        error: Sensitive(e.message.clone()),
                        attempt,
                    }
                });
                let ceiling = RECOVERY_BACKOFF_BASE_MS
                    .saturating_mul(1 << attempt.min(16))
                    .min(RECOVERY_BACKOFF_CAP_MS);
                // Only if the fiber is still there (the handler may have ended it).
                let _ = ctx.store.set_fiber_recovery(
                    &r.id,
                    attempt,
                    now_ms() + fastrand::u64(0..=ceiling),
                );
            }
        }
    }
    ctx.refresh_next_due();
}
