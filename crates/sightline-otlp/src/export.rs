//! The exporter: a bounded buffer of encoded records (in events and bytes), batching by size
//! and by time, requests in flight in parallel, retries with full-jitter exponential backoff
//! that honour the collector's requested delay, and a counter for every way an event can end.
//!
//! Every event handed to the exporter ends in exactly one of: delivered, dropped because the
//! buffer was full (`queue_full`), rejected by the collector (`rejected`), given up after
//! retrying for `retry_max_elapsed_ms` (`gave_up`), or left over when shutdown's drain time ran
//! out (`shutdown`). Until then it is counted as held (waiting or in flight).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};

use crate::config::Resolved;
use crate::transport::{SendError, Signal, Transport};
use crate::wire::{Encoded, Envelope};

/// One event, encoded: its log record and/or its span.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// The encoded `LogRecord`.
    pub log: Option<Bytes>,
    /// The encoded `Span`.
    pub span: Option<Bytes>,
}

impl Item {
    fn bytes(&self) -> usize {
        self.log.as_ref().map_or(0, Bytes::len) + self.span.as_ref().map_or(0, Bytes::len)
    }
}

/// A snapshot of the exporter's counters. Every event received ends in exactly one of
/// `delivered`, `dropped_queue_full`, `rejected`, `gave_up` and `dropped_shutdown`, or is
/// still `held`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpStats {
    /// Events handed to the exporter.
    pub received: u64,
    /// Events whose records the collector accepted.
    pub delivered: u64,
    /// Events dropped because a batch was larger than the whole buffer.
    pub dropped_queue_full: u64,
    /// Events the collector refused with a permanent error (or rejected in a partial success).
    pub rejected: u64,
    /// Events given up after retrying for `retry_max_elapsed_ms`.
    pub gave_up: u64,
    /// Events still held when shutdown's drain time ran out.
    pub dropped_shutdown: u64,
    /// Events waiting or in flight now.
    pub held_events: u64,
    /// Encoded bytes waiting or in flight now.
    pub held_bytes: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Requests the collector accepted.
    pub requests_ok: u64,
    /// Requests that failed with a retryable error (each attempt counts).
    pub requests_failed_retryable: u64,
    /// Requests that failed with a permanent error.
    pub requests_failed_permanent: u64,
    /// Log records accepted.
    pub log_records_exported: u64,
    /// Spans accepted.
    pub spans_exported: u64,
    /// Records a collector rejected in partial successes.
    pub records_rejected_partial: u64,
    /// Request bytes sent (before compression) in accepted requests.
    pub bytes_exported: u64,
    /// The latest export error, if any.
    pub last_error: Option<String>,
}

impl OtlpStats {
    /// Events lost for good: dropped, rejected, given up or left at shutdown.
    pub fn lost(&self) -> u64 {
        self.dropped_queue_full + self.rejected + self.gave_up + self.dropped_shutdown
    }
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    delivered: AtomicU64,
    dropped_queue_full: AtomicU64,
    rejected: AtomicU64,
    gave_up: AtomicU64,
    dropped_shutdown: AtomicU64,
    retries: AtomicU64,
    requests_ok: AtomicU64,
    requests_failed_retryable: AtomicU64,
    requests_failed_permanent: AtomicU64,
    log_records_exported: AtomicU64,
    spans_exported: AtomicU64,
    records_rejected_partial: AtomicU64,
    bytes_exported: AtomicU64,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    waiting_bytes: usize,
    /// Waiting plus in flight.
    held_events: usize,
    held_bytes: usize,
    oldest: Option<Instant>,
    flush: bool,
    /// Set at shutdown: drain until this instant.
    drain_until: Option<Instant>,
    /// Set once the exporter stopped: nothing is counted after it.
    finished: bool,
    last_error: Option<String>,
}

/// State shared by the sink (producer), the exporter thread and stats readers.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
    wake: Notify,
    counters: Counters,
    max_events: usize,
    max_bytes: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The end: whatever is still held is counted as left at shutdown, and nothing is
    /// counted after this (a request still finishing is ignored).
    fn finish(&self) {
        let mut q = self.lock();
        if q.finished {
            return;
        }
        let left = q.held_events as u64;
        q.finished = true;
        q.items.clear();
        q.held_events = 0;
        q.held_bytes = 0;
        q.waiting_bytes = 0;
        self.counters
            .dropped_shutdown
            .fetch_add(left, Ordering::Relaxed);
        drop(q);
        self.changed.notify_all();
    }
}

/// A cloneable reader of the exporter's counters.
#[derive(Clone)]
pub struct OtlpStatsHandle(pub(crate) Arc<Shared>);

impl std::fmt::Debug for OtlpStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OtlpStatsHandle")
            .field(&self.stats())
            .finish()
    }
}

impl OtlpStatsHandle {
    /// The counters now.
    pub fn stats(&self) -> OtlpStats {
        let c = &self.0.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let q = self.0.lock();
        OtlpStats {
            received: l(&c.received),
            delivered: l(&c.delivered),
            dropped_queue_full: l(&c.dropped_queue_full),
            rejected: l(&c.rejected),
            gave_up: l(&c.gave_up),
            dropped_shutdown: l(&c.dropped_shutdown),
            held_events: q.held_events as u64,
            held_bytes: q.held_bytes as u64,
            retries: l(&c.retries),
            requests_ok: l(&c.requests_ok),
            requests_failed_retryable: l(&c.requests_failed_retryable),
            requests_failed_permanent: l(&c.requests_failed_permanent),
            log_records_exported: l(&c.log_records_exported),
            spans_exported: l(&c.spans_exported),
            records_rejected_partial: l(&c.records_rejected_partial),
            bytes_exported: l(&c.bytes_exported),
            last_error: q.last_error.clone(),
        }
    }

    /// Waits until nothing is held (everything delivered or lost), up to `timeout`; returns
    /// whether it got there.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.0.lock();
        loop {
            if q.held_events == 0 || q.finished {
                return q.held_events == 0;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .0
                .changed
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// The producer's side: offers items and controls the exporter thread.
pub(crate) struct Exporter {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    drain_timeout: Duration,
}

impl Exporter {
    /// Starts the exporter thread; fails when the transport cannot be built.
    pub(crate) fn start(r: Resolved) -> Result<Self, crate::transport::TransportError> {
        let c = &r.config;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            wake: Notify::new(),
            counters: Counters::default(),
            max_events: c.queue_max_events,
            max_bytes: c.queue_max_bytes,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::transport::TransportError(format!("runtime: {e}")))?;
        let transport = {
            let _guard = rt.enter();
            Transport::new(&r)?
        };
        let worker = Worker {
            shared: shared.clone(),
            transport: Arc::new(transport),
            envelope: Envelope::new(&r.resource),
            cfg: Arc::new(r.config.clone()),
        };
        let thread = std::thread::Builder::new()
            .name("sightline-otlp".into())
            .spawn(move || rt.block_on(worker.run()))
            .map_err(|e| crate::transport::TransportError(format!("thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
            drain_timeout: Duration::from_millis(r.config.drain_timeout_ms),
        })
    }

    pub(crate) fn stats_handle(&self) -> OtlpStatsHandle {
        OtlpStatsHandle(self.shared.clone())
    }

    /// Takes a batch of items into the buffer, all or none: when they do not fit, returns the
    /// room missing and takes nothing, so that the sink runner retries the batch with backoff
    /// (and its queue, in front of the agents, applies its overflow policy). Never waits for
    /// the network. A batch that could not fit even in an empty buffer is taken in part and
    /// the rest dropped and counted (`queue_full`).
    pub(crate) fn offer(&self, items: Vec<Item>) -> Result<(), String> {
        let c = &self.shared.counters;
        let n = items.len();
        let bytes: usize = items.iter().map(Item::bytes).sum();
        let mut dropped = 0u64;
        {
            let mut q = self.shared.lock();
            if q.finished {
                c.received.fetch_add(n as u64, Ordering::Relaxed);
                c.dropped_shutdown.fetch_add(n as u64, Ordering::Relaxed);
                return Ok(());
            }
            let fits = q.held_events + n <= self.shared.max_events
                && q.held_bytes + bytes <= self.shared.max_bytes;
            if !fits && q.held_events > 0 {
                return Err(format!(
                    "otlp buffer full ({} events, {} bytes held; the collector is slow or down)",
                    q.held_events, q.held_bytes
                ));
            }
            c.received.fetch_add(n as u64, Ordering::Relaxed);
            for item in items {
                let b = item.bytes();
                if q.held_events >= self.shared.max_events
                    || q.held_bytes + b > self.shared.max_bytes
                {
                    dropped += 1;
                    continue;
                }
                q.held_events += 1;
                q.held_bytes += b;
                q.waiting_bytes += b;
                q.items.push_back(item);
            }
            if q.oldest.is_none() && !q.items.is_empty() {
                q.oldest = Some(Instant::now());
            }
            // Inside the lock: a snapshot never sees an event in no outcome.
            if dropped > 0 {
                c.dropped_queue_full.fetch_add(dropped, Ordering::Relaxed);
            }
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Asks the exporter to send what waits now, without waiting for it.
    pub(crate) fn flush(&self) {
        let mut q = self.shared.lock();
        if !q.items.is_empty() {
            q.flush = true;
            drop(q);
            self.shared.wake.notify_one();
        }
    }

    /// Drains for up to the drain timeout, then stops; what is left is counted `shutdown`.
    pub(crate) fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        {
            let mut q = self.shared.lock();
            q.drain_until = Some(Instant::now() + self.drain_timeout);
        }
        self.shared.wake.notify_one();
        let _ = thread.join();
        // Had the worker died, nobody would have counted what it held.
        self.shared.finish();
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    shared: Arc<Shared>,
    transport: Arc<Transport>,
    envelope: Envelope,
    cfg: Arc<crate::config::OtlpConfig>,
}

/// What accounting needs of a batch once its records went into requests: whether each event
/// had a log record and a span, and the bytes the batch held.
struct Shape {
    items: Vec<(bool, bool)>,
    bytes: usize,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delivered { partial_rejected: u64 },
    Rejected,
    GaveUp,
    Shutdown,
}

impl Worker {
    async fn run(self) {
        let permits = Arc::new(Semaphore::new(self.cfg.max_concurrent_exports));
        let linger = Duration::from_millis(self.cfg.batch_linger_ms);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            // Wait for a batch to be due.
            let batch = loop {
                let notified = self.shared.wake.notified();
                let wait = {
                    let mut q = self.shared.lock();
                    let now = Instant::now();
                    let draining = q.drain_until.is_some();
                    let due = q.items.len() >= self.cfg.batch_max_events
                        || q.waiting_bytes >= self.cfg.batch_max_bytes
                        || (!q.items.is_empty()
                            && (q.flush
                                || draining
                                || q.oldest.is_some_and(|o| now >= o + linger)));
                    if due {
                        break Some(self.take(&mut q));
                    }
                    if let Some(until) = q.drain_until {
                        if q.held_events == 0 || now >= until {
                            break None;
                        }
                        until - now
                    } else {
                        q.oldest.map_or(Duration::from_secs(3600), |o| {
                            (o + linger).saturating_duration_since(now)
                        })
                    }
                };
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(wait) => {}
                    // A finished request may end the drain.
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            };
            let Some(batch) = batch else { break };
            // Wait for a free request slot, but not past shutdown's drain deadline (the batch
            // stays counted as held, so the final count takes it).
            let permit = loop {
                let drain_until = self.shared.lock().drain_until;
                if drain_until.is_some_and(|d| Instant::now() >= d) {
                    break None;
                }
                let slice = drain_until.map_or(Duration::from_millis(100), |d| {
                    d.saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(100))
                });
                if let Ok(p) = tokio::time::timeout(slice, permits.clone().acquire_owned()).await {
                    break p.ok();
                }
            };
            let Some(permit) = permit else { break };
            let shared = self.shared.clone();
            let transport = self.transport.clone();
            let cfg = self.cfg.clone();
            let (shape, logs, traces) = self.requests(batch);
            tasks.spawn(async move {
                let _permit = permit;
                Self::export(shared, transport, cfg, shape, logs, traces).await;
            });
            while tasks.try_join_next().is_some() {}
        }
        // Drain time is over (or everything is out): count what is left and stop.
        self.shared.finish();
        tasks.abort_all();
    }

    fn take(&self, q: &mut Queue) -> Vec<Item> {
        let mut batch = Vec::with_capacity(q.items.len().min(self.cfg.batch_max_events));
        let mut bytes = 0;
        while let Some(item) = q.items.front() {
            let b = item.bytes();
            if !batch.is_empty()
                && (batch.len() >= self.cfg.batch_max_events
                    || bytes + b > self.cfg.batch_max_bytes)
            {
                break;
            }
            bytes += b;
            if let Some(item) = q.items.pop_front() {
                batch.push(item);
            }
        }
        q.waiting_bytes -= bytes;
        q.flush = false;
        q.oldest = if q.items.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        batch
    }

    /// Moves a batch's records into its requests; keeps what accounting needs.
    fn requests(&self, batch: Vec<Item>) -> (Shape, Option<Encoded>, Option<Encoded>) {
        let mut shape = Shape {
            items: Vec::with_capacity(batch.len()),
            bytes: 0,
        };
        let mut logs = Vec::with_capacity(batch.len());
        let mut spans = Vec::new();
        for item in batch {
            shape.bytes += item.bytes();
            shape.items.push((item.log.is_some(), item.span.is_some()));
            logs.extend(item.log);
            spans.extend(item.span);
        }
        let request =
            |records: Vec<Bytes>| (!records.is_empty()).then(|| self.envelope.request(records));
        (shape, request(logs), request(spans))
    }

    async fn export(
        shared: Arc<Shared>,
        transport: Arc<Transport>,
        cfg: Arc<crate::config::OtlpConfig>,
        shape: Shape,
        logs: Option<Encoded>,
        traces: Option<Encoded>,
    ) {
        let n_logs = shape.items.iter().filter(|(l, _)| *l).count() as u64;
        let n_spans = shape.items.iter().filter(|(_, s)| *s).count() as u64;
        let send = |signal, body: Option<Encoded>, records| {
            let (shared, transport, cfg) = (shared.clone(), transport.clone(), cfg.clone());
            async move {
                match body {
                    Some(b) => Some(deliver(&shared, &transport, &cfg, signal, b, records).await),
                    None => None,
                }
            }
        };
        let (log_fate, span_fate) = tokio::join!(
            send(Signal::Logs, logs, n_logs),
            send(Signal::Traces, traces, n_spans)
        );
        let c = &shared.counters;
        let mut q = shared.lock();
        if q.finished {
            return;
        }
        let (mut delivered, mut rejected, mut gave_up, mut shutdown) = (0u64, 0u64, 0u64, 0u64);
        for &(has_log, has_span) in &shape.items {
            let fate = match (
                has_log.then_some(log_fate).flatten(),
                has_span.then_some(span_fate).flatten(),
            ) {
                (Some(f), _) if !matches!(f, Fate::Delivered { .. }) => f,
                (_, Some(f)) if !matches!(f, Fate::Delivered { .. }) => f,
                _ => Fate::Delivered {
                    partial_rejected: 0,
                },
            };
            match fate {
                Fate::Delivered { .. } => delivered += 1,
                Fate::Rejected => rejected += 1,
                Fate::GaveUp => gave_up += 1,
                Fate::Shutdown => shutdown += 1,
            }
        }
        // Records a collector refused in a partial success: counted against delivered events.
        let partial = [log_fate, span_fate]
            .iter()
            .filter_map(|f| match f {
                Some(Fate::Delivered { partial_rejected }) => Some(*partial_rejected),
                _ => None,
            })
            .max()
            .unwrap_or(0)
            .min(delivered);
        delivered -= partial;
        rejected += partial;
        c.delivered.fetch_add(delivered, Ordering::Relaxed);
        c.rejected.fetch_add(rejected, Ordering::Relaxed);
        c.gave_up.fetch_add(gave_up, Ordering::Relaxed);
        c.dropped_shutdown.fetch_add(shutdown, Ordering::Relaxed);
        q.held_events -= shape.items.len();
        q.held_bytes -= shape.bytes;
        drop(q);
        shared.changed.notify_all();
        shared.wake.notify_one();
    }
}

/// Sends one request until it is accepted, refused for good, out of retry time or out of
/// drain time.
async fn deliver(
    shared: &Shared,
    transport: &Transport,
    cfg: &crate::config::OtlpConfig,
    signal: Signal,
    body: Encoded,
    records: u64,
) -> Fate {
    let c = &shared.counters;
    let started = Instant::now();
    let max_elapsed = Duration::from_millis(cfg.retry_max_elapsed_ms);
    let mut attempt: u32 = 0;
    loop {
        let result = transport.send(signal, body.clone()).await;
        let e: SendError = match result {
            Ok(partial_rejected) => {
                c.requests_ok.fetch_add(1, Ordering::Relaxed);
                c.bytes_exported
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                let counter = match signal {
                    Signal::Logs => &c.log_records_exported,
                    Signal::Traces => &c.spans_exported,
                };
                counter.fetch_add(records.saturating_sub(partial_rejected), Ordering::Relaxed);
                if partial_rejected > 0 {
                    c.records_rejected_partial
                        .fetch_add(partial_rejected, Ordering::Relaxed);
                }
                return Fate::Delivered { partial_rejected };
            }
            Err(e) => e,
        };
        let message = format!("{} export: {}", signal.name(), e.message);
        shared.lock().last_error = Some(message);
        if !e.retryable {
            c.requests_failed_permanent.fetch_add(1, Ordering::Relaxed);
            return Fate::Rejected;
        }
        c.requests_failed_retryable.fetch_add(1, Ordering::Relaxed);
        let ceiling = cfg
            .retry_initial_backoff_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(cfg.retry_max_backoff_ms);
        // The server's requested wait, honoured (but never less than the first backoff, so
        // a zero `Retry-After` does not make a busy loop), else full jitter.
        let delay = match e.throttle {
            Some(t) => t.max(Duration::from_millis(cfg.retry_initial_backoff_ms)),
            None => Duration::from_millis(fastrand::u64(0..=ceiling)),
        };
        // Saturating: a collector asking for years must not overflow an Instant.
        if started.elapsed().saturating_add(delay) > max_elapsed {
            return Fate::GaveUp;
        }
        let drain_until = shared.lock().drain_until;
        if drain_until.is_some_and(|d| d.saturating_duration_since(Instant::now()) <= delay) {
            return Fate::Shutdown;
        }
        tokio::time::sleep(delay).await;
        attempt = attempt.saturating_add(1);
        c.retries.fetch_add(1, Ordering::Relaxed);
    }
}
