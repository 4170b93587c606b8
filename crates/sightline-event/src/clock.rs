//! The one clock every event timestamp comes from: the CPU's TSC anchored to the system clock,
//! because reading the system clock costs more than the whole emit budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// The system's wall clock, in Unix nanoseconds (a `clock_gettime` call: ~35-70 ns here).
pub fn system_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// Now, in Unix nanoseconds: the one clock every event timestamp comes from.
///
/// Reading the system clock costs 35-70 ns on this project's machines, more than the whole
/// emit budget, so this reads the CPU's invariant TSC through `quanta` (~10 ns) and adds it to
/// a wall-clock anchor taken from the system clock. The anchor is refreshed once a second, so
/// drift against NTP-disciplined time stays far below a millisecond; at a refresh the clock may
/// step by that drift, which is why per-agent order is carried by `seq`, not by `ts_ns`.
/// Where the TSC is unusable, quanta falls back to the OS monotonic clock.
#[inline]
pub fn now_unix_ns() -> u64 {
    now()
}

/// The TSC, anchored to the system clock. Its rate is *measured* against the system clock
/// at every re-anchor rather than trusted from quanta's start-up calibration, which a
/// loaded machine can skew by tens of percent (seen here: 23%).
struct Wall {
    clock: quanta::Clock,
    anchor_raw: AtomicU64,
    anchor_unix: AtomicU64,
    /// Nanoseconds per raw tick, as `f64` bits.
    ns_per_tick: AtomicU64,
    /// Raw ticks after the anchor at which to re-anchor.
    reanchor_ticks: AtomicU64,
}

static WALL: OnceLock<Wall> = OnceLock::new();

/// Longest re-anchor period.
const REANCHOR_NS: f64 = 1e9;
/// First re-anchor: after 1 ms, so the measured rate replaces quanta's estimate before its
/// error can add up; each period is then ten times the last, up to `REANCHOR_NS`.
const FIRST_REANCHOR_NS: f64 = 1e6;
/// A clock pair read further apart than this (preemption) re-anchors without measuring.
const MAX_READ_GAP_NS: f64 = 20_000.0;

fn wall() -> &'static Wall {
    WALL.get_or_init(|| {
        let clock = quanta::Clock::new();
        let span = 1u64 << 40;
        let estimate = (clock.delta_as_nanos(0, span) as f64 / span as f64).max(1e-6);
        let raw = clock.raw();
        Wall {
            anchor_raw: AtomicU64::new(raw),
            anchor_unix: AtomicU64::new(system_unix_ns()),
            ns_per_tick: AtomicU64::new(estimate.to_bits()),
            reanchor_ticks: AtomicU64::new((FIRST_REANCHOR_NS / estimate) as u64),
            clock,
        }
    })
}

#[inline]
fn now() -> u64 {
    let wall = wall();
    let raw = wall.clock.raw();
    // A seqlock-style read: the anchor is consistent when anchor_raw did not change around
    // the other reads (a writer parks it at u64::MAX while it updates the rest, and raw
    // values only grow, so there is no ABA).
    let anchor_raw = wall.anchor_raw.load(Ordering::Acquire);
    let anchor_unix = wall.anchor_unix.load(Ordering::Acquire);
    let ns_per_tick = f64::from_bits(wall.ns_per_tick.load(Ordering::Acquire));
    let limit = wall.reanchor_ticks.load(Ordering::Acquire);
    let ticks = raw.wrapping_sub(anchor_raw);
    if raw >= anchor_raw && ticks < limit && wall.anchor_raw.load(Ordering::Acquire) == anchor_raw {
        return anchor_unix + (ticks as f64 * ns_per_tick) as u64;
    }
    reanchor(wall, anchor_raw)
}

#[cold]
fn reanchor(wall: &Wall, seen: u64) -> u64 {
    let old_unix = wall.anchor_unix.load(Ordering::Acquire);
    let old_rate = f64::from_bits(wall.ns_per_tick.load(Ordering::Acquire));
    let raw_before = wall.clock.raw();
    let unix = system_unix_ns();
    let raw_after = wall.clock.raw();
    let raw = raw_before + (raw_after.saturating_sub(raw_before)) / 2;
    let read_gap_ns = raw_after.saturating_sub(raw_before) as f64 * old_rate;
    // One thread wins the refresh; the others use the system clock this once.
    if seen != u64::MAX
        && wall
            .anchor_raw
            .compare_exchange(seen, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        let mut rate = old_rate;
        let elapsed_ns = unix.saturating_sub(old_unix) as f64;
        if raw > seen && unix > old_unix && read_gap_ns < MAX_READ_GAP_NS {
            let measured = elapsed_ns / (raw - seen) as f64;
            // A system clock step (NTP, settimeofday) makes the measurement meaningless.
            if measured > old_rate * 0.5 && measured < old_rate * 2.0 {
                rate = measured;
            }
        }
        let next_ns = (elapsed_ns * 10.0).clamp(FIRST_REANCHOR_NS, REANCHOR_NS);
        wall.ns_per_tick.store(rate.to_bits(), Ordering::Release);
        wall.reanchor_ticks
            .store((next_ns / rate) as u64, Ordering::Release);
        wall.anchor_unix.store(unix, Ordering::Release);
        wall.anchor_raw.store(raw, Ordering::Release);
    }
    unix
}

#[cfg(test)]
mod tests {
    use super::system_unix_ns;

    /// `before <= fast <= after` (within 1 ms), retried when the thread was preempted
    /// between the reads, so machine load cannot fail it.
    fn tracks() -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..20 {
            let before = system_unix_ns();
            let fast = super::now();
            let after = system_unix_ns();
            if after - before > 200_000 {
                continue; // preempted: no conclusion
            }
            if fast + 1_000_000 >= before && fast <= after + 1_000_000 {
                return Ok(());
            }
            last = format!("fast {fast} outside [{before}, {after}] by more than 1 ms");
        }
        Err(last)
    }

    #[test]
    fn the_fast_clock_tracks_the_system_clock() {
        tracks().unwrap();
        for wait_ms in [5, 50, 300, 1200] {
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            tracks().unwrap();
        }
    }
}
