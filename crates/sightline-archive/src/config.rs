//! `[archive]` in `sightline.toml`: where segments go, when they rotate, how they are synced,
//! compressed and retired.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// When the writer asks the kernel to put written lines on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// After every batch (group commit: one `fdatasync` covers the whole batch). Nothing
    /// acknowledged is lost even on power failure; costs one sync per batch.
    Always,
    /// At most every `fsync_interval_ms` (and on flush and rotation). The default: a power
    /// failure loses at most that window, a process crash (`kill -9`) loses nothing written.
    #[default]
    Interval,
    /// Never explicitly (the kernel writes back on its own schedule). A process crash still
    /// loses nothing written; a power failure may lose tens of seconds.
    Never,
}

/// What each archive line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// One event per line in the event model's JSON form. `sightline session`, `tail`,
    /// `stats` and `replay` read this format.
    #[default]
    Jsonl,
    /// One OTLP `LogsData` per line (the OpenTelemetry protocol's JSON encoding), the format
    /// the OpenTelemetry Collector's `otlpjsonfile` receiver ingests.
    OtlpJson,
}

/// Compression of closed segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Closed segments are compressed with zstd, one frame per index block, so a lookup
    /// decompresses only the blocks it needs and `zstdcat` still reads the whole file.
    #[default]
    Zstd,
    /// Closed segments stay plain JSONL.
    None,
}

/// The archive's settings. Every key has a default; unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Whether `sightline demo` and `ingest` write the archive.
    pub enabled: bool,
    /// Directory of the segments; relative paths are under the data directory. Created 0700.
    pub dir: PathBuf,
    /// Line format: `jsonl` (the event model's JSON) or `otlp_json` (OTLP `LogsData`).
    pub format: LineFormat,
    /// A segment is closed once it holds this many bytes (uncompressed).
    pub segment_max_bytes: u64,
    /// A segment is closed once it has been open this long, in milliseconds (0: never by age).
    pub segment_max_age_ms: u64,
    /// `always`, `interval` (the default) or `never`; see [`FsyncPolicy`].
    pub fsync: FsyncPolicy,
    /// With `fsync = "interval"`: the longest written data stays unsynced, in milliseconds.
    pub fsync_interval_ms: u64,
    /// Compression of closed segments: `zstd` (default) or `none`.
    pub compression: Compression,
    /// zstd level for closed segments (1 fastest .. 19 smallest).
    pub zstd_level: i32,
    /// Target size of an index block, in bytes: the unit a lookup reads and decompresses.
    /// Smaller blocks make one agent's lookup read less and the index larger.
    pub index_block_bytes: u32,
    /// Closed segments are deleted this long after they were closed, in seconds (0: keep
    /// forever). Measured from when the segment was written, not from its events' times, so
    /// ingesting or replaying old events does not delete them at once. The newest closed
    /// segment is always kept.
    pub retention_max_age_secs: u64,
    /// Oldest closed segments are deleted while the archive holds more than this, in bytes
    /// (0: no limit). The newest closed segment is always kept.
    pub retention_max_bytes: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("archive"),
            format: LineFormat::Jsonl,
            segment_max_bytes: 64 * 1024 * 1024,
            segment_max_age_ms: 3_600_000,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            compression: Compression::Zstd,
            zstd_level: 3,
            index_block_bytes: 16 * 1024,
            retention_max_age_secs: 7 * 24 * 3600,
            retention_max_bytes: 10 * 1024 * 1024 * 1024,
        }
    }
}

impl ArchiveConfig {
    /// Checks what serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), crate::ArchiveError> {
        let bad = |key: &str, message: String| {
            Err(crate::ArchiveError::Config {
                key: key.to_owned(),
                message,
            })
        };
        if self.segment_max_bytes < 4096 {
            return bad(
                "segment_max_bytes",
                format!("must be at least 4096, got {}", self.segment_max_bytes),
            );
        }
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            return bad(
                "fsync_interval_ms",
                "must be at least 1 with fsync = \"interval\" (use fsync = \"always\")".into(),
            );
        }
        if !(1..=19).contains(&self.zstd_level) {
            return bad(
                "zstd_level",
                format!("must be between 1 and 19, got {}", self.zstd_level),
            );
        }
        if !(256..=16 * 1024 * 1024).contains(&self.index_block_bytes) {
            return bad(
                "index_block_bytes",
                format!(
                    "must be between 256 and 16777216, got {}",
                    self.index_block_bytes
                ),
            );
        }
        Ok(())
    }
}
