//! Rendering what a finished pipeline lost (`sightline-pipeline`'s [`LossSummary`]) on
//! stderr, and the exit code it means: shared by the commands that feed a pipeline.

use std::process::ExitCode;

use sightline_otlp::OtlpStats;
use sightline_pipeline::{LossSummary, SinkLoss};

use crate::render::thousands;

/// Prints one line per sink, then the OTLP exporter's outcome when it ran.
pub fn print_loss(loss: &LossSummary) {
    print_sinks(&loss.sinks);
    if let Some(otlp) = &loss.otlp {
        print_otlp(otlp);
    }
}

fn print_sinks(sinks: &[SinkLoss]) {
    for s in sinks {
        eprintln!(
            "  sink {:<16} received {:>10}  written {:>10}  dropped {}  failed {}  undelivered {}",
            s.name,
            thousands(s.received),
            thousands(s.written),
            s.dropped,
            s.failed,
            s.undelivered
        );
    }
}

fn print_otlp(s: &OtlpStats) {
    eprintln!(
        "  otlp export      delivered {:>9}  rejected {}  gave up {}  left at shutdown {}  too big for the buffer {}  retries {}{}",
        thousands(s.delivered),
        s.rejected,
        s.gave_up,
        s.dropped_shutdown + s.held_events,
        s.dropped_queue_full,
        s.retries,
        s.last_error
            .as_ref()
            .map(|e| format!("  (last error: {e})"))
            .unwrap_or_default()
    );
}

/// Success when nothing was lost, 1 otherwise.
pub fn exit_code(lost: u64) -> ExitCode {
    if lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
