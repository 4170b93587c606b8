//! Schedules: a delay, a time, a cron expression or an interval, persisted in the agent's
//! database and multiplexed through the agent's one timer; run with retries; evented at every
//! step.

use std::time::Duration;

use serde_json::Value;
use sightline_event::{
    Name, Outcome, QueueComplete, QueueCreate, QueueError, QueueRetry, ScheduleCancel,
    ScheduleComplete, ScheduleCreate, ScheduleError, ScheduleExecute, ScheduleMissed,
    ScheduleRetry, ScheduleSkipped, ScheduleType, Sensitive, TraceContext,
};

use crate::agent::{Agent, Ctx};
use crate::clock::{now_ms, now_ns};
use crate::store::{ScheduleRow, StoreError};

/// When a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Once, after this delay.
    Delay(Duration),
    /// Once, at this Unix time in milliseconds.
    At(u64),
    /// On a cron expression (5 fields, or 6 with seconds first), in UTC.
    Cron(String),
    /// Every interval, the first run one interval from now.
    Interval(Duration),
}

/// Why a schedule could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleCreateError {
    /// The cron expression does not parse.
    #[error("invalid cron expression {0:?}: {1}")]
    InvalidCron(String, String),
    /// The cron expression never fires.
    #[error("cron expression {0:?} has no next run")]
    NeverFires(String),
    /// An interval must be at least 1 ms.
    #[error("an interval must be at least 1 ms")]
    ZeroInterval,
    /// Later than the year 292 million (the storage's limit).
    #[error("the time is too far in the future")]
    TooFar,
    /// It could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Attempts per run, and the full-jitter backoff between them (base, cap): the Agents SDK's
/// defaults.
pub const MAX_ATTEMPTS: u32 = 3;
const BACKOFF_BASE_MS: u64 = 100;
const BACKOFF_CAP_MS: u64 = 3_000;

/// The latest time a schedule can hold (SQLite integers are i64 milliseconds).
const MAX_TIME_MS: u64 = i64::MAX as u64;

fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// The first run of `expr` strictly after `after_ms`.
fn next_cron(cron: &croner::Cron, after_ms: u64) -> Option<u64> {
    let after = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(after_ms as i64)?;
    let next = cron.find_next_occurrence(&after, false).ok()?;
    u64::try_from(next.timestamp_millis()).ok()
}

impl Ctx {
    /// Schedules `callback` (a method of the agent, called like an RPC) with `payload`;
    /// persisted at once, so it survives a restart. Returns the schedule's id.
    pub fn schedule(
        &mut self,
        when: When,
        callback: &str,
        payload: Value,
    ) -> Result<String, ScheduleCreateError> {
        let now = now_ms();
        // Times are stored as SQLite integers (i64 milliseconds): anything later is refused.
        let ms = |d: &Duration| -> Result<u64, ScheduleCreateError> {
            u64::try_from(d.as_millis())
                .ok()
                .and_then(|ms| now.checked_add(ms))
                .filter(|t| *t <= MAX_TIME_MS)
                .map(|t| t - now)
                .ok_or(ScheduleCreateError::TooFar)
        };
        let (kind, schedule_type, cron, interval_ms, next) = match &when {
            When::Delay(d) => ("delay", ScheduleType::Delay, None, None, now + ms(d)?),
            When::At(t) if *t > MAX_TIME_MS => return Err(ScheduleCreateError::TooFar),
            When::At(t) => ("at", ScheduleType::At, None, None, *t),
            When::Cron(expr) => {
                let c = parse_cron(expr)
                    .map_err(|e| ScheduleCreateError::InvalidCron(expr.clone(), e))?;
                let next = next_cron(&c, now)
                    .ok_or_else(|| ScheduleCreateError::NeverFires(expr.clone()))?;
                ("cron", ScheduleType::Cron, Some(expr.clone()), None, next)
            }
            When::Interval(d) => {
                let iv = ms(d)?;
                if iv == 0 {
                    return Err(ScheduleCreateError::ZeroInterval);
                }
                ("interval", ScheduleType::Interval, None, Some(iv), now + iv)
            }
        };
        let id = format!("sch_{:016x}", fastrand::u64(..));
        self.store.put_schedule(&ScheduleRow {
            id: id.clone(),
            callback: callback.to_owned(),
            payload: payload.to_string(),
            kind: kind.to_owned(),
            cron: cron.clone(),
            interval_ms,
            next_run_ms: next,
            traceparent: self.trace().map(|t| t.traceparent()),
        })?;
        self.emitter.emit(|| ScheduleCreate {
            callback: callback.into(),
            id: id.as_str().into(),
            schedule_type,
            cron: cron.as_deref().map(Name::from),
            interval_ms,
            fire_at_ms: matches!(when, When::Delay(_) | When::At(_)).then_some(next),
        });
        self.refresh_next_due();
        Ok(id)
    }

    /// Queues `callback` (a method of the agent) with `payload`, to run after the current
    /// input, in order, with the same retries as schedules; persisted at once. Returns the
    /// item's id.
    pub fn queue(&mut self, callback: &str, payload: Value) -> Result<String, StoreError> {
        let now_ns = now_ns();
        // Time-ordered ids: items due in the same millisecond run in the order queued.
        let id = format!("que_{now_ns:020}_{:04x}", fastrand::u16(..));
        self.store.put_schedule(&ScheduleRow {
            id: id.clone(),
            callback: callback.to_owned(),
            payload: payload.to_string(),
            kind: "queue".to_owned(),
            cron: None,
            interval_ms: None,
            next_run_ms: now_ms(),
            traceparent: self.trace().map(|t| t.traceparent()),
        })?;
        self.emitter.emit(|| QueueCreate {
            callback: callback.into(),
            id: id.as_str().into(),
        });
        self.refresh_next_due();
        Ok(id)
    }

    /// Cancels a schedule; whether it existed.
    pub fn cancel_schedule(&mut self, id: &str) -> Result<bool, StoreError> {
        let row = self.store.delete_schedule(id)?;
        if let Some(r) = &row {
            self.emitter.emit(|| ScheduleCancel {
                callback: r.callback.as_str().into(),
                id: r.id.as_str().into(),
            });
        }
        self.refresh_next_due();
        Ok(row.is_some())
    }

    /// The agent's schedules, soonest first.
    pub fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        self.store.schedules()
    }

    pub(crate) fn refresh_next_due(&mut self) {
        self.next_due = match self.store.next_due() {
            // Not before the hold a panicking timer pass left (see `timer_hold_until`).
            Ok(due) => due.map(|d| d.max(self.timer_hold_until)),
            // Unreadable for now: look again in a second rather than never.
            Err(_) => Some(now_ms() + 1000),
        };
    }
}

/// Reports cron runs that fell due while the agent was not running (its process was down):
/// all but the one about to run late.
pub(crate) fn report_missed(ctx: &Ctx) {
    let now = now_ms();
    let Ok(rows) = ctx.store.schedules() else {
        return;
    };
    for r in rows
        .iter()
        .filter(|r| r.kind == "cron" && r.next_run_ms < now)
    {
        let Some(cron) = r.cron.as_deref().and_then(|e| parse_cron(e).ok()) else {
            continue;
        };
        let mut missed = 0u32;
        let mut t = r.next_run_ms;
        while let Some(next) = next_cron(&cron, t) {
            if next > now || missed >= 100_000 {
                break;
            }
            missed += 1;
            t = next;
        }
        if missed > 0 {
            ctx.emitter.emit(|| ScheduleMissed {
                callback: r.callback.as_str().into(),
                id: r.id.as_str().into(),
                missed_runs: missed,
                downtime_ms: now - r.next_run_ms,
            });
        }
    }
}

fn op_meta(outcome: Outcome, duration_ns: u64, span: TraceContext) -> sightline_bus::Meta {
    sightline_bus::Meta {
        outcome: Some(outcome),
        duration_ns: Some(duration_ns),
        trace: Some(span),
        ..Default::default()
    }
}

/// Runs every schedule due now, each with its retries, then advances or removes it.
pub(crate) async fn run_due<A: Agent>(instance: &mut A, ctx: &mut Ctx) {
    let now = now_ms();
    let due: Vec<String> = match ctx.store.schedules() {
        Ok(rows) => rows
            .into_iter()
            .filter(|r| r.next_run_ms <= now)
            .map(|r| r.id)
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut stuck = false;
    for id in due {
        // Read again: an earlier callback in this pass may have cancelled it.
        match ctx.store.schedule(&id) {
            Ok(Some(row)) => stuck |= !run_one(instance, ctx, row, now).await,
            Ok(None) => {}
            Err(_) => stuck = true,
        }
        ctx.keep_reserved();
    }
    ctx.refresh_next_due();
    if stuck {
        // A row could not be advanced: try again in a second, not in a busy loop.
        ctx.next_due = Some(now_ms() + 1000);
    }
}

/// Runs one schedule; returns whether it could be advanced (or removed).
async fn run_one<A: Agent>(instance: &mut A, ctx: &mut Ctx, row: ScheduleRow, now: u64) -> bool {
    let lateness_ms = now.saturating_sub(row.next_run_ms);
    // The run continues the trace the schedule was created in.
    let span = row
        .traceparent
        .as_deref()
        .and_then(TraceContext::from_traceparent)
        .unwrap_or_else(TraceContext::new_root);
    ctx.emitter.set_trace(Some(span));
    let payload: Value = serde_json::from_str(&row.payload).unwrap_or(Value::Null);
    let (callback, id): (Name, Name) = (row.callback.as_str().into(), row.id.as_str().into());
    let started = std::time::Instant::now();
    let queued = row.kind == "queue";
    for attempt in 1..=MAX_ATTEMPTS {
        if !queued {
            ctx.emitter.emit(|| ScheduleExecute {
                callback: callback.clone(),
                id: id.clone(),
                attempt,
                lateness_ms,
            });
        }
        let result = instance.on_rpc(ctx, &row.callback, payload.clone()).await;
        let took = started.elapsed().as_nanos() as u64;
        match result {
            Ok(_) => {
                let (callback, id) = (callback.clone(), id.clone());
                let meta = op_meta(Outcome::Ok, took, span);
                if queued {
                    ctx.emitter.emit_with(|m| {
                        *m = meta;
                        QueueComplete {
                            callback,
                            id,
                            attempts: attempt,
                            wait_ms: lateness_ms,
                        }
                    });
                } else {
                    ctx.emitter.emit_with(|m| {
                        *m = meta;
                        ScheduleComplete {
                            callback,
                            id,
                            attempts: attempt,
                            lateness_ms,
                        }
                    });
                }
                break;
            }
            Err(e) if attempt < MAX_ATTEMPTS => {
                let ceiling = (BACKOFF_BASE_MS << (attempt - 1)).min(BACKOFF_CAP_MS);
                let backoff_ms = fastrand::u64(0..=ceiling);
                let (callback, id) = (callback.clone(), id.clone());
                let error = Some(Sensitive(e.message.clone()));
                if queued {
                    ctx.emitter.emit(|| QueueRetry {
                        callback,
                        id,
                        attempt,
                        max_attempts: MAX_ATTEMPTS,
                        backoff_ms,
                        error,
                    });
                } else {
                    ctx.emitter.emit(|| ScheduleRetry {
                        callback,
                        id,
                        attempt,
                        max_attempts: MAX_ATTEMPTS,
                        backoff_ms,
                        error,
                    });
                }
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
            }
            Err(e) => {
                let (callback, id) = (callback.clone(), id.clone());
                let error = Sensitive(e.message.clone());
                let meta = op_meta(Outcome::Error, took, span);
                if queued {
                    ctx.emitter.emit_with(|m| {
                        *m = meta;
                        QueueError {
                            callback,
                            id,
                            error,
                            attempts: attempt,
                        }
                    });
                } else {
                    ctx.emitter.emit_with(|m| {
                        *m = meta;
                        ScheduleError {
                            callback,
                            id,
                            error,
                            attempts: attempt,
                            error_type: Some(e.error_type.as_str().into()),
                        }
                    });
                }
            }
        }
    }
    ctx.emitter.set_trace(None);
    // Advance (crons and intervals, even after a terminal failure) or remove.
    let after = now_ms();
    let next = match row.kind.as_str() {
        "interval" => row.interval_ms.map(|iv| {
            let iv = iv.max(1);
            let mut next = row.next_run_ms.saturating_add(iv);
            if next <= after {
                // The run outlasted its interval: the runs that fell due meanwhile are skipped.
                let skipped = (after - next) / iv + 1;
                ctx.emitter.emit(|| ScheduleSkipped {
                    callback: callback.clone(),
                    id: id.clone(),
                    reason: Name::new_static("overlap"),
                });
                next = next.saturating_add(skipped.saturating_mul(iv));
            }
            next
        }),
        // Not before the run just done, even if the clock stepped back.
        "cron" => row
            .cron
            .as_deref()
            .and_then(|e| parse_cron(e).ok())
            .and_then(|c| next_cron(&c, after.max(row.next_run_ms))),
        _ => None,
    };
    // Advanced only if it still exists: a callback may have cancelled its own schedule.
    let stored = match next {
        Some(next_run_ms) => ctx.store.advance_schedule(&row.id, next_run_ms),
        None => ctx.store.delete_schedule(&row.id).map(|_| ()),
    };
    stored.is_ok()
}
