//! The writer: appends batches to the open segment, syncs by policy, rotates, recovers after
//! a crash, and hands closed segments to a maintenance thread (compression, retention).

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use sightline_event::{AgentRef, Event, EventId};
use sightline_sink::{Sink, SinkError};

use crate::config::{ArchiveConfig, Compression, FsyncPolicy, LineFormat};
use crate::segment::{
    self, create_private, stem_for, stem_of, sync_dir, unix_ns, write_atomic, Index, IndexBuilder,
    LineEvent, Manifest, INDEX_SUFFIX, LAYOUT_VERSION, MANIFEST_SUFFIX, RAW_SUFFIX, TMP_SUFFIX,
    ZST_INDEX_SUFFIX, ZST_SUFFIX,
};
use crate::{otlp_json, ArchiveError};

/// The lock file that keeps two writers out of one directory.
pub const LOCK_FILE: &str = "LOCK";

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        #[derive(Debug, Default)]
        struct Counters { $($name: AtomicU64,)* }

        /// What the writer has done since it opened. Every loss is here.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
        pub struct ArchiveStats { $($(#[$doc])* pub $name: u64,)* }

        impl Counters {
            fn snapshot(&self) -> ArchiveStats {
                ArchiveStats { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Events appended.
    events_written,
    /// Lines appended.
    lines_written,
    /// Bytes appended (uncompressed).
    bytes_written,
    /// Events known to be on disk (synced); with `fsync = "never"`, those of closed segments.
    events_durable,
    /// `fdatasync` calls.
    fsyncs,
    /// Failed writes or syncs (each retried by the sink runner, or counted failed there).
    write_errors,
    /// Segments opened.
    segments_opened,
    /// Segments closed (by rotation, shutdown or recovery).
    segments_sealed,
    /// Segments compressed.
    segments_compressed,
    /// Compressions that failed (the segment stays uncompressed and readable).
    compress_errors,
    /// Segments deleted by retention.
    segments_retired,
    /// Events in segments deleted by retention.
    events_retired,
    /// Bytes deleted by retention.
    bytes_retired,
    /// Segments found open at start and closed by recovery.
    segments_recovered,
    /// Torn last lines cut off by recovery.
    torn_lines_truncated,
    /// Bytes of torn last lines cut off by recovery.
    torn_bytes_truncated,
    /// Lines recovery could not parse (kept in place).
    invalid_lines,
    /// Leftover files of interrupted steps removed at start.
    stale_files_removed,
    /// Retention or maintenance errors.
    maintenance_errors,
}

/// A cheap, cloneable view of a writer's counters, readable from any thread.
#[derive(Debug, Clone)]
pub struct ArchiveStatsHandle(Arc<Counters>);

impl ArchiveStatsHandle {
    /// The counters now.
    pub fn snapshot(&self) -> ArchiveStats {
        self.0.snapshot()
    }
}

struct Active {
    stem: String,
    file: File,
    opened: Instant,
    opened_unix_ns: u64,
    len: u64,
    index: IndexBuilder,
}

enum Job {
    Compress(String),
    Retention,
}

/// The archive sink. Open one per directory (a lock file enforces it); hand it to a
/// [`sightline_sink::Pipeline`] or call [`Sink::write`] directly.
pub struct ArchiveWriter {
    dir: PathBuf,
    cfg: ArchiveConfig,
    _lock: File,
    active: Option<Active>,
    buf: Vec<u8>,
    ends: Vec<usize>,
    counters: Arc<Counters>,
    last_sync: Instant,
    unsynced_events: u64,
    jobs: Option<mpsc::Sender<Job>>,
    maintenance: Option<JoinHandle<()>>,
    service_name: String,
    /// Events of segments sealed without a sync (fsync = never) count as durable only then.
    pending_durable: u64,
    /// The batch whose lines are in the file but whose sync or rotation failed.
    written_unconfirmed: Option<(EventId, EventId, usize)>,
    /// Segments whose closing failed; closed again before the next write.
    unsealed: Vec<String>,
    /// The newest segment stem: a new one must sort after it even if the clock stepped back.
    last_stem: Option<String>,
}

/// What identifies a batch the runner retries: the same events, in the same order.
fn batch_key(batch: &[Event]) -> Option<(EventId, EventId, usize)> {
    Some((batch.first()?.id, batch.last()?.id, batch.len()))
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("dir", &self.dir)
            .field("active", &self.active.as_ref().map(|a| &a.stem))
            .finish_non_exhaustive()
    }
}

fn io_at(path: &Path, source: io::Error) -> ArchiveError {
    ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

impl ArchiveWriter {
    /// Opens (creating, 0700) the archive directory, takes its lock, recovers whatever a
    /// crash left (torn last lines, unclosed segments, interrupted compressions), and starts
    /// the maintenance thread.
    pub fn open(dir: impl Into<PathBuf>, cfg: ArchiveConfig) -> Result<Self, ArchiveError> {
        cfg.validate()?;
        let dir = dir.into();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_at(&dir, e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| io_at(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(ArchiveError::Locked { dir: dir.clone() })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_at(&lock_path, e)),
        }
        let counters = Arc::new(Counters::default());
        let (to_compress, last_stem) = recover(&dir, &cfg, &counters)?;
        let (tx, rx) = mpsc::channel();
        let maintenance = {
            let (dir, cfg, counters) = (dir.clone(), cfg.clone(), counters.clone());
            thread::Builder::new()
                .name("sightline-archive-maint".into())
                .spawn(move || maintenance_loop(&dir, &cfg, &counters, &rx))
        }
        .map_err(|e| io_at(&dir, e))?;
        for stem in to_compress {
            let _ = tx.send(Job::Compress(stem));
        }
        let _ = tx.send(Job::Retention);
        Ok(Self {
            dir,
            cfg,
            _lock: lock,
            active: None,
            buf: Vec::with_capacity(1 << 20),
            ends: Vec::new(),
            counters,
            last_sync: Instant::now(),
            unsynced_events: 0,
            jobs: Some(tx),
            maintenance: Some(maintenance),
            service_name: std::env::var("OTEL_SERVICE_NAME")
                .unwrap_or_else(|_| "sightline".to_owned()),
            pending_durable: 0,
            written_unconfirmed: None,
            unsealed: Vec::new(),
            last_stem,
        })
    }

    /// The archive directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A handle on the counters, readable while the writer runs on a sink worker.
    pub fn stats_handle(&self) -> ArchiveStatsHandle {
        ArchiveStatsHandle(self.counters.clone())
    }

    /// The counters now.
    pub fn stats(&self) -> ArchiveStats {
        self.counters.snapshot()
    }

    fn open_segment(&mut self) -> io::Result<&mut Active> {
        let mut t = SystemTime::now();
        // Names sort by time; if the clock stepped back, continue after the newest segment.
        if let Some(last) = self.last_stem.as_deref().and_then(segment::parse_stem_time) {
            if segment::unix_ns(t) <= last {
                t = SystemTime::UNIX_EPOCH + Duration::from_nanos(last + 1);
            }
        }
        let (stem, file) = loop {
            let stem = stem_for(t);
            let path = self.dir.join(format!("{stem}{RAW_SUFFIX}"));
            if self.dir.join(format!("{stem}{MANIFEST_SUFFIX}")).exists() {
                t += Duration::from_nanos(1);
                continue;
            }
            match OpenOptions::new()
                .append(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(file) => break (stem, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    t += Duration::from_nanos(1);
                }
                Err(e) => return Err(e),
            }
        };
        sync_dir(&self.dir)?;
        self.counters
            .segments_opened
            .fetch_add(1, Ordering::Relaxed);
        Ok(self.active.insert(Active {
            stem,
            file,
            opened: Instant::now(),
            opened_unix_ns: unix_ns(t),
            len: 0,
            index: IndexBuilder::new(self.cfg.index_block_bytes),
        }))
    }

    fn encode(&mut self, batch: &[Event]) -> io::Result<()> {
        self.buf.clear();
        self.ends.clear();
        match self.cfg.format {
            LineFormat::Jsonl => {
                for e in batch {
                    e.write_json_line(&mut self.buf);
                    self.ends.push(self.buf.len());
                }
            }
            LineFormat::OtlpJson => {
                let data = otlp_json::logs_data(&self.service_name, batch);
                serde_json::to_writer(&mut self.buf, &data).map_err(io::Error::other)?;
                self.buf.push(b'\n');
                self.ends.push(self.buf.len());
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        if let Some(active) = &self.active {
            active.file.sync_data()?;
            self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.counters
            .events_durable
            .fetch_add(self.unsynced_events, Ordering::Relaxed);
        self.unsynced_events = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes a batch, then syncs (by policy) and rotates. A batch whose lines reached the
    /// file but whose sync or rotation then failed is remembered: when the runner retries it,
    /// only the sync and rotation are retried, so no line is written twice.
    fn append(&mut self, batch: &[Event]) -> io::Result<()> {
        let key = batch_key(batch);
        if self.written_unconfirmed.is_some() && self.written_unconfirmed == key {
            return self.confirm();
        }
        self.written_unconfirmed = None;
        self.retry_unsealed()?;
        self.encode(batch)?;
        if self.active.is_none() {
            self.open_segment()?;
        }
        let Some(active) = self.active.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let start = active.len;
        if let Err(e) = active.file.write_all(&self.buf) {
            // Cut back whatever part of the batch reached the file: lines are whole or absent.
            if active.file.set_len(start).is_err() {
                // The file cannot be repaired now; leave it to recovery on the next start and
                // continue in a fresh segment.
                self.active = None;
            }
            return Err(e);
        }
        active.len += self.buf.len() as u64;
        let mut line_start = 0usize;
        match self.cfg.format {
            LineFormat::Jsonl => {
                for (e, &end) in batch.iter().zip(&self.ends) {
                    active.index.add_line(
                        start + line_start as u64,
                        (end - line_start) as u64,
                        [(&e.agent, e.seq, e.ts_ns)],
                    );
                    line_start = end;
                }
            }
            LineFormat::OtlpJson => {
                active.index.add_line(
                    start,
                    self.buf.len() as u64,
                    batch.iter().map(|e| (&e.agent, e.seq, e.ts_ns)),
                );
            }
        }
        let c = &self.counters;
        c.events_written
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        c.lines_written
            .fetch_add(self.ends.len() as u64, Ordering::Relaxed);
        c.bytes_written
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        match self.cfg.fsync {
            FsyncPolicy::Always | FsyncPolicy::Interval => {
                self.unsynced_events += batch.len() as u64
            }
            FsyncPolicy::Never => self.pending_durable += batch.len() as u64,
        }
        self.written_unconfirmed = key;
        self.confirm()
    }

    /// Syncs (by policy) and rotates after a batch reached the file.
    fn confirm(&mut self) -> io::Result<()> {
        let due = match self.cfg.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => {
                self.last_sync.elapsed() >= Duration::from_millis(self.cfg.fsync_interval_ms)
            }
            FsyncPolicy::Never => false,
        };
        if due && self.unsynced_events > 0 {
            self.sync()?;
        }
        self.maybe_rotate()?;
        self.written_unconfirmed = None;
        Ok(())
    }

    /// Closes segments whose closing failed earlier (their lines are intact on disk): the
    /// index is rebuilt from the lines, as after a crash.
    fn retry_unsealed(&mut self) -> io::Result<()> {
        while let Some(stem) = self.unsealed.last().cloned() {
            recover_segment(&self.dir, &stem, &self.cfg, &self.counters)
                .map_err(|e| io::Error::other(e.to_string()))?;
            self.unsealed.pop();
            self.queue_closed(stem);
        }
        Ok(())
    }

    fn queue_closed(&self, stem: String) {
        if let Some(jobs) = &self.jobs {
            if self.cfg.compression == Compression::Zstd {
                let _ = jobs.send(Job::Compress(stem));
            }
            let _ = jobs.send(Job::Retention);
        }
    }

    fn maybe_rotate(&mut self) -> io::Result<()> {
        let Some(active) = &self.active else {
            return Ok(());
        };
        let by_size = active.len >= self.cfg.segment_max_bytes;
        let by_age = self.cfg.segment_max_age_ms > 0
            && active.len > 0
            && active.opened.elapsed() >= Duration::from_millis(self.cfg.segment_max_age_ms);
        if by_size || by_age {
            self.seal()?;
        }
        Ok(())
    }

    /// Closes the open segment now: syncs it, writes its index and manifest, and queues it for
    /// compression and retention. The next write opens a new segment.
    pub fn seal(&mut self) -> io::Result<()> {
        let Some(active) = self.active.take() else {
            return Ok(());
        };
        let raw = self.dir.join(format!("{}{RAW_SUFFIX}", active.stem));
        if active.index.events == 0 {
            drop(active.file);
            fs::remove_file(&raw)?;
            return sync_dir(&self.dir);
        }
        if let Err(e) = active.file.sync_data() {
            self.active = Some(active);
            return Err(e);
        }
        self.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.counters.events_durable.fetch_add(
            self.unsynced_events + self.pending_durable,
            Ordering::Relaxed,
        );
        self.unsynced_events = 0;
        self.pending_durable = 0;
        let Active {
            stem,
            opened_unix_ns,
            len,
            index,
            ..
        } = active;
        let sealed = write_sealed(
            &self.dir,
            &stem,
            self.cfg.format,
            index,
            len,
            opened_unix_ns,
            false,
            0,
            0,
        );
        if let Err(e) = sealed {
            // The lines are on disk; closing is retried (from them) before the next write.
            self.unsealed.push(stem);
            return Err(e);
        }
        self.counters
            .segments_sealed
            .fetch_add(1, Ordering::Relaxed);
        self.queue_closed(stem);
        Ok(())
    }

    fn stop_maintenance(&mut self) {
        self.jobs = None;
        if let Some(handle) = self.maintenance.take() {
            let _ = handle.join();
        }
    }
}

impl Sink for ArchiveWriter {
    fn write(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.append(batch).map_err(|e| {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            // Disk full, permissions, a vanished directory: all may pass, so the runner
            // retries the batch with backoff and counts it failed only when retries run out.
            SinkError::Transient(format!("archive {}: {e}", self.dir.display()))
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let result = (|| {
            self.retry_unsealed()?;
            if self.unsynced_events > 0 && self.cfg.fsync != FsyncPolicy::Never {
                self.sync()?;
            }
            self.maybe_rotate()
        })();
        result.map_err(|e| {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            SinkError::Transient(format!("archive {}: {e}", self.dir.display()))
        })
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let result = self.seal().and_then(|()| self.retry_unsealed());
        self.stop_maintenance();
        result.map_err(|e| {
            self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
            SinkError::Io(e)
        })
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        let _ = self.seal();
        self.stop_maintenance();
    }
}

/// Writes the index and manifest of a segment whose data is in `<stem>.jsonl`.
#[allow(clippy::too_many_arguments)]
fn write_sealed(
    dir: &Path,
    stem: &str,
    format: LineFormat,
    index: IndexBuilder,
    len: u64,
    opened_unix_ns: u64,
    recovered: bool,
    torn_bytes: u64,
    invalid_lines: u64,
) -> io::Result<Manifest> {
    let (events, lines, first, last, agents) = (
        index.events,
        index.lines,
        index.first_ts_ns,
        index.last_ts_ns,
        index.agent_count(),
    );
    let index = index.finish();
    let index_file = format!("{stem}{INDEX_SUFFIX}");
    write_atomic(dir, &index_file, &index.encode()?)?;
    let manifest = Manifest {
        v: LAYOUT_VERSION,
        segment: stem.to_owned(),
        file: format!("{stem}{RAW_SUFFIX}"),
        index_file,
        format,
        compression: Compression::None,
        events,
        lines,
        agents,
        blocks: index.blocks.len() as u64,
        first_ts_ns: first,
        last_ts_ns: last,
        raw_bytes: len,
        stored_bytes: len,
        opened_unix_ns,
        sealed_unix_ns: unix_ns(SystemTime::now()),
        recovered,
        torn_bytes_truncated: torn_bytes,
        invalid_lines,
    };
    write_manifest(dir, &manifest)?;
    sync_dir(dir)?;
    Ok(manifest)
}

fn write_manifest(dir: &Path, m: &Manifest) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(m).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write_atomic(dir, &format!("{}{MANIFEST_SUFFIX}", m.segment), &bytes)
}

/// The few envelope fields the index needs, read without building the whole event.
#[derive(Deserialize)]
struct LineMeta {
    ts_ns: u64,
    agent: AgentRef,
    seq: u64,
}

/// Events of one line, for rebuilding an index.
pub(crate) fn line_events(format: LineFormat, line: &[u8]) -> Option<Vec<LineEvent>> {
    match format {
        LineFormat::Jsonl => serde_json::from_slice::<LineMeta>(line).ok().map(|m| {
            vec![LineEvent {
                agent: m.agent,
                seq: m.seq,
                ts_ns: m.ts_ns,
            }]
        }),
        LineFormat::OtlpJson => otlp_json::line_events(line).ok(),
    }
}

/// Brings a directory back to a consistent state: removes leftovers of interrupted steps,
/// truncates torn last lines, closes segments a crash left open. Returns the stems of closed
/// but uncompressed segments to compress.
fn recover(
    dir: &Path,
    cfg: &ArchiveConfig,
    counters: &Counters,
) -> Result<(Vec<String>, Option<String>), ArchiveError> {
    let mut stems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in fs::read_dir(dir).map_err(|e| io_at(dir, e))? {
        let entry = entry.map_err(|e| io_at(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = stem_of(&name) {
            stems.entry(stem.to_owned()).or_default().push(name);
        }
    }
    let last_stem = stems.keys().next_back().cloned();
    let mut to_compress = Vec::new();
    let mut changed = false;
    let remove = |name: &str| -> Result<(), ArchiveError> {
        let path = dir.join(name);
        fs::remove_file(&path).map_err(|e| io_at(&path, e))?;
        counters.stale_files_removed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    };
    for (stem, files) in stems {
        for f in files.iter().filter(|f| f.ends_with(TMP_SUFFIX)) {
            remove(f)?;
            changed = true;
        }
        let manifest_name = format!("{stem}{MANIFEST_SUFFIX}");
        let manifest_path = dir.join(&manifest_name);
        let raw_name = format!("{stem}{RAW_SUFFIX}");
        let manifest = if files.contains(&manifest_name) {
            match Manifest::read(&manifest_path) {
                Ok(m) if files.contains(&m.file) && files.contains(&m.index_file) => Some(m),
                // A manifest naming missing files, or unreadable: if the raw lines are still
                // here, rebuild from them; otherwise leave everything for `verify` to report.
                _ if files.contains(&raw_name) => {
                    remove(&manifest_name)?;
                    None
                }
                _ => continue,
            }
        } else {
            None
        };
        let keep: Vec<String> = match &manifest {
            Some(m) => vec![m.file.clone(), m.index_file.clone(), manifest_name.clone()],
            None if files.contains(&raw_name) => vec![raw_name.clone()],
            None => Vec::new(),
        };
        for f in files
            .iter()
            .filter(|f| !f.ends_with(TMP_SUFFIX) && !keep.contains(f))
        {
            remove(f)?;
            changed = true;
        }
        match manifest {
            Some(m)
                if m.compression == Compression::None && cfg.compression == Compression::Zstd =>
            {
                to_compress.push(stem);
            }
            Some(_) => {}
            None if files.contains(&raw_name) => {
                recover_segment(dir, &stem, cfg, counters)?;
                changed = true;
                if cfg.compression == Compression::Zstd {
                    to_compress.push(stem);
                }
            }
            None => {}
        }
    }
    if changed {
        sync_dir(dir).map_err(|e| io_at(dir, e))?;
    }
    Ok((to_compress, last_stem))
}

/// Closes a segment a crash left open: cuts a torn last line, rebuilds the index from the
/// lines, writes the manifest.
fn recover_segment(
    dir: &Path,
    stem: &str,
    cfg: &ArchiveConfig,
    counters: &Counters,
) -> Result<(), ArchiveError> {
    let path = dir.join(format!("{stem}{RAW_SUFFIX}"));
    let err = |e| io_at(&path, e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(err)?;
    let total = file.metadata().map_err(err)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, &file);
    let mut index = IndexBuilder::new(cfg.index_block_bytes);
    let mut offset = 0u64;
    let mut line = Vec::new();
    let mut invalid = 0u64;
    // A segment holds one format; the first line says which (the configuration may have
    // changed since it was written).
    let mut format = None;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(err)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        let line_format = *format.get_or_insert(line_format_of(&line, cfg.format));
        match line_events(line_format, &line[..n - 1]) {
            Some(events) => index.add_line(
                offset,
                n as u64,
                events.iter().map(|e| (&e.agent, e.seq, e.ts_ns)),
            ),
            None => {
                invalid += 1;
                index.add_line(offset, n as u64, std::iter::empty());
            }
        }
        offset += n as u64;
    }
    drop(reader);
    let torn = total - offset;
    if torn > 0 {
        file.set_len(offset).map_err(err)?;
        counters
            .torn_lines_truncated
            .fetch_add(1, Ordering::Relaxed);
        counters
            .torn_bytes_truncated
            .fetch_add(torn, Ordering::Relaxed);
    }
    file.sync_all().map_err(err)?;
    if index.events == 0 && invalid == 0 {
        drop(file);
        fs::remove_file(&path).map_err(err)?;
        return Ok(());
    }
    counters.invalid_lines.fetch_add(invalid, Ordering::Relaxed);
    let opened = segment::parse_stem_time(stem).unwrap_or(0);
    let format = format.unwrap_or(cfg.format);
    write_sealed(
        dir, stem, format, index, offset, opened, true, torn, invalid,
    )
    .map_err(err)?;
    counters.segments_recovered.fetch_add(1, Ordering::Relaxed);
    counters.segments_sealed.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The format of a recovered line: a segment holds one format, but a directory may have been
/// written with the other; a line starting `{"resourceLogs"` is OTLP.
pub(crate) fn line_format_of(line: &[u8], configured: LineFormat) -> LineFormat {
    if line.starts_with(b"{\"resourceLogs\"") {
        LineFormat::OtlpJson
    } else if line.starts_with(b"{\"v\"") {
        LineFormat::Jsonl
    } else {
        configured
    }
}

fn maintenance_loop(
    dir: &Path,
    cfg: &ArchiveConfig,
    counters: &Counters,
    jobs: &mpsc::Receiver<Job>,
) {
    while let Ok(job) = jobs.recv() {
        let result = match job {
            Job::Compress(stem) => match compress_segment(dir, &stem, cfg.zstd_level) {
                Ok(true) => {
                    counters.segments_compressed.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Ok(false) => Ok(()),
                Err(e) => {
                    counters.compress_errors.fetch_add(1, Ordering::Relaxed);
                    Err(e)
                }
            },
            Job::Retention => apply_retention(dir, cfg, counters),
        };
        if result.is_err() {
            counters.maintenance_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Compresses a closed segment block by block (one zstd frame each). The order of steps makes
/// every crash point recoverable: the manifest names the compressed files only once they are
/// complete and synced, and the plain files are removed only after that.
pub(crate) fn compress_segment(dir: &Path, stem: &str, level: i32) -> io::Result<bool> {
    let manifest_path = dir.join(format!("{stem}{MANIFEST_SUFFIX}"));
    let mut manifest = Manifest::read(&manifest_path)?;
    if manifest.compression != Compression::None {
        return Ok(false);
    }
    let raw_path = dir.join(&manifest.file);
    let index_path = dir.join(&manifest.index_file);
    let mut index = Index::decode(&fs::read(&index_path)?)?;
    let mut raw = File::open(&raw_path)?;
    let zst_name = format!("{stem}{ZST_SUFFIX}");
    let tmp = dir.join(format!("{zst_name}{TMP_SUFFIX}"));
    let mut out = io::BufWriter::new(create_private(&tmp)?);
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    let mut buf = Vec::new();
    let mut offset = 0u64;
    for block in &mut index.blocks {
        buf.resize(block.raw_len as usize, 0);
        raw.seek(SeekFrom::Start(block.raw_offset))?;
        raw.read_exact(&mut buf)?;
        let frame = compressor.compress(&buf)?;
        out.write_all(&frame)?;
        block.stored_offset = offset;
        block.stored_len = frame.len() as u64;
        offset += frame.len() as u64;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join(&zst_name))?;
    let zst_index = format!("{stem}{ZST_INDEX_SUFFIX}");
    write_atomic(dir, &zst_index, &index.encode()?)?;
    manifest.file = zst_name;
    manifest.index_file = zst_index;
    manifest.compression = Compression::Zstd;
    manifest.stored_bytes = offset;
    write_manifest(dir, &manifest)?;
    sync_dir(dir)?;
    fs::remove_file(&raw_path)?;
    fs::remove_file(&index_path)?;
    sync_dir(dir)?;
    Ok(true)
}

/// Deletes the oldest closed segments past the age or size limit.
fn apply_retention(dir: &Path, cfg: &ArchiveConfig, counters: &Counters) -> io::Result<()> {
    if cfg.retention_max_age_secs == 0 && cfg.retention_max_bytes == 0 {
        return Ok(());
    }
    let mut sealed: Vec<(Manifest, u64)> = Vec::new();
    let mut open_bytes = Vec::new();
    let mut unreadable = 0u64;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(MANIFEST_SUFFIX) {
            // A manifest that cannot be read, or that names files of another segment (or
            // outside the directory), is left for `verify` to report; retention goes on.
            let Ok(m) = Manifest::read(&dir.join(&name)) else {
                unreadable += 1;
                continue;
            };
            let own = |f: &str| f.starts_with(stem) && !f.contains('/') && f != name;
            if m.segment != stem || !own(&m.file) || !own(&m.index_file) {
                unreadable += 1;
                continue;
            }
            let index_len = fs::metadata(dir.join(&m.index_file)).map_or(0, |md| md.len());
            let size = m.stored_bytes + index_len;
            sealed.push((m, size));
        } else if let Some(stem) = name.strip_suffix(RAW_SUFFIX) {
            open_bytes.push((
                stem.to_owned(),
                fs::metadata(dir.join(&name)).map_or(0, |md| md.len()),
            ));
        }
    }
    if unreadable > 0 {
        counters
            .maintenance_errors
            .fetch_add(unreadable, Ordering::Relaxed);
    }
    // Plain data of closed segments is counted through their manifests; only open segments'
    // files add to that.
    let mut total: u64 = sealed.iter().map(|(_, size)| size).sum();
    total += open_bytes
        .iter()
        .filter(|(stem, _)| !sealed.iter().any(|(m, _)| &m.segment == stem))
        .map(|(_, len)| len)
        .sum::<u64>();
    sealed.sort_by(|a, b| a.0.segment.cmp(&b.0.segment));
    let now = unix_ns(SystemTime::now());
    let max_age_ns = cfg.retention_max_age_secs.saturating_mul(1_000_000_000);
    // The newest closed segment always stays, so a limit smaller than one segment does not
    // empty the archive.
    let keep_newest = sealed.pop();
    for (m, size) in sealed {
        let too_old =
            cfg.retention_max_age_secs > 0 && now.saturating_sub(m.sealed_unix_ns) > max_age_ns;
        let too_big = cfg.retention_max_bytes > 0 && total > cfg.retention_max_bytes;
        if !(too_old || too_big) {
            continue;
        }
        // Manifest first: a crash after it leaves plain lines that recovery re-closes, or
        // compressed leftovers that recovery removes.
        fs::remove_file(dir.join(format!("{}{MANIFEST_SUFFIX}", m.segment)))?;
        let _ = fs::remove_file(dir.join(&m.file));
        let _ = fs::remove_file(dir.join(&m.index_file));
        total = total.saturating_sub(size);
        counters.segments_retired.fetch_add(1, Ordering::Relaxed);
        counters
            .events_retired
            .fetch_add(m.events, Ordering::Relaxed);
        counters.bytes_retired.fetch_add(size, Ordering::Relaxed);
    }
    drop(keep_newest);
    sync_dir(dir)
}
