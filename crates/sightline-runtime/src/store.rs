//! Each agent's own SQLite database: its state (JSON, versioned) and its bookkeeping (the
//! sequence numbers it may use, when it hibernated). Opened by the agent's task alone, in WAL
//! mode, so a write is one short transaction.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

/// A storage error, with the database it concerns.
#[derive(Debug, thiserror::Error)]
#[error("agent storage {path}: {source}")]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What SQLite (or JSON) said.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// One agent's database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    class TEXT NOT NULL,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    callback TEXT NOT NULL,
    payload TEXT NOT NULL,
    kind TEXT NOT NULL,
    cron TEXT,
    interval_ms INTEGER,
    next_run_ms INTEGER NOT NULL,
    traceparent TEXT
);
CREATE INDEX IF NOT EXISTS schedules_next ON schedules (next_run_ms);
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    steps INTEGER NOT NULL,
    started_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    requested_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    traceparent TEXT
);
CREATE TABLE IF NOT EXISTS mcp_servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    command TEXT NOT NULL,
    args TEXT NOT NULL,
    transport TEXT NOT NULL DEFAULT 'stdio'
);
CREATE TABLE IF NOT EXISTS fibers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    step INTEGER NOT NULL,
    stash TEXT,
    recovery_attempts INTEGER NOT NULL DEFAULT 0,
    next_recovery_ms INTEGER,
    traceparent TEXT
);
";

/// One unfinished workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRow {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `running` or `paused`.
    pub status: String,
    /// Steps done.
    pub steps: u32,
    /// When it started, Unix ms.
    pub started_ms: u64,
}

/// One pending approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    /// Its id.
    pub id: String,
    /// What needs approving.
    pub action: String,
    /// When it was asked, Unix ms.
    pub requested_ms: u64,
    /// When it expires, Unix ms.
    pub expires_ms: u64,
    /// The trace it was asked in.
    pub traceparent: Option<String>,
}

/// One MCP server an agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerRow {
    /// Its id in the agent.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The program (stdio) or the URL (streamable HTTP).
    pub command: String,
    /// The program's arguments, as a JSON array (`[]` for HTTP).
    pub args: String,
    /// `stdio` or `streamable_http`.
    pub transport: String,
}

/// One unfinished fiber.
#[derive(Debug, Clone, PartialEq)]
pub struct FiberRow {
    /// Its id.
    pub id: String,
    /// Its name (the work it does).
    pub name: String,
    /// When it started, Unix milliseconds.
    pub started_ms: u64,
    /// Checkpoints written.
    pub step: u32,
    /// The latest checkpoint (JSON text).
    pub stash: Option<String>,
    /// Recovery attempts made.
    pub recovery_attempts: u32,
    /// When recovery is next tried (set once the fiber is found interrupted).
    pub next_recovery_ms: Option<u64>,
    /// The trace it ran in.
    pub traceparent: Option<String>,
}

/// One persisted schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    /// Its id.
    pub id: String,
    /// The method it calls.
    pub callback: String,
    /// The payload it passes (JSON text).
    pub payload: String,
    /// `delay`, `at`, `cron` or `interval`.
    pub kind: String,
    /// The cron expression, for `cron`.
    pub cron: Option<String>,
    /// The interval, for `interval`.
    pub interval_ms: Option<u64>,
    /// When it is next due, Unix milliseconds.
    pub next_run_ms: u64,
    /// The trace context it was created in (W3C traceparent).
    pub traceparent: Option<String>,
}

impl Store {
    fn err(&self, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source: Box::new(e),
        }
    }

    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let wrap = |e: rusqlite::Error| StoreError {
            path: path.to_owned(),
            source: Box::new(e),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
        }
        let conn = Connection::open(path).map_err(wrap)?;
        // WAL: a write is an append to the log; NORMAL: durable across a process crash (the
        // log is in the OS), synced at checkpoints.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(wrap)?;
        conn.execute_batch(SCHEMA).map_err(wrap)?;
        // Databases from before MCP over HTTP: their servers are all stdio.
        let has_transport = conn
            .prepare("SELECT 1 FROM pragma_table_info('mcp_servers') WHERE name = 'transport'")
            .and_then(|mut st| st.exists([]))
            .map_err(wrap)?;
        if !has_transport {
            let added = conn.execute_batch(
                "ALTER TABLE mcp_servers ADD COLUMN transport TEXT NOT NULL DEFAULT 'stdio'",
            );
            // Another connection may have added it meanwhile.
            if let Err(e) = added {
                if !e.to_string().contains("duplicate column") {
                    return Err(wrap(e));
                }
            }
        }
        Ok(Store {
            conn,
            path: path.to_owned(),
        })
    }

    /// The stored state and its version; `(0, {})` for a new agent.
    pub fn load_state(&self) -> Result<(u64, Value), StoreError> {
        let row: Option<(i64, String)> = self
            .conn
            .query_row("SELECT version, json FROM state WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        match row {
            None => Ok((0, Value::Object(Default::default()))),
            Some((v, json)) => Ok((
                v.max(0) as u64,
                serde_json::from_str(&json).map_err(|e| self.err(e))?,
            )),
        }
    }

    /// Persists a new state version.
    pub fn save_state(&self, version: u64, json: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO state (id, version, json) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, json = excluded.json",
            )
            .and_then(|mut s| s.execute(params![version as i64, json]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records which agent this database belongs to (for finding it again after a restart).
    pub fn set_agent(&self, class: &str, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO agent (id, class, name) VALUES (1, ?1, ?2)",
                params![class, name],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The agent this database belongs to, and when its next schedule is due.
    pub fn agent_and_next_due(&self) -> Result<Option<(String, String, Option<u64>)>, StoreError> {
        let agent: Option<(String, String)> = self
            .conn
            .query_row("SELECT class, name FROM agent WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let Some((class, name)) = agent else {
            return Ok(None);
        };
        // A fiber not yet found interrupted is due at once (its recovery starts on wake).
        let interrupted: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM fibers WHERE next_recovery_ms IS NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let due = if interrupted > 0 {
            Some(0)
        } else {
            self.next_due()?
        };
        Ok(Some((class, name, due)))
    }

    /// Adds (or replaces) a schedule.
    pub fn put_schedule(&self, s: &ScheduleRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO schedules
                 (id, callback, payload, kind, cron, interval_ms, next_run_ms, traceparent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    s.id,
                    s.callback,
                    s.payload,
                    s.kind,
                    s.cron,
                    s.interval_ms.map(|v| v as i64),
                    s.next_run_ms as i64,
                    s.traceparent
                ])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Deletes a schedule; whether it existed.
    pub fn delete_schedule(&self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        let row = self.schedule(id)?;
        self.conn
            .execute("DELETE FROM schedules WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(row)
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScheduleRow> {
        Ok(ScheduleRow {
            id: r.get(0)?,
            callback: r.get(1)?,
            payload: r.get(2)?,
            kind: r.get(3)?,
            cron: r.get(4)?,
            interval_ms: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
            next_run_ms: r.get::<_, i64>(6)?.max(0) as u64,
            traceparent: r.get(7)?,
        })
    }

    /// One schedule.
    pub fn schedule(&self, id: &str) -> Result<Option<ScheduleRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, callback, payload, kind, cron, interval_ms, next_run_ms, traceparent
                 FROM schedules WHERE id = ?1",
                params![id],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every schedule, soonest first.
    pub fn schedules(&self) -> Result<Vec<ScheduleRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, callback, payload, kind, cron, interval_ms, next_run_ms, traceparent
                 FROM schedules ORDER BY next_run_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], Self::row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e));
        rows
    }

    /// When the timer is next due (a schedule, or a fiber recovery), Unix milliseconds.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        self.conn
            .query_row(
                "SELECT MIN(t) FROM (
                    SELECT MIN(next_run_ms) AS t FROM schedules
                    UNION ALL SELECT MIN(next_recovery_ms) FROM fibers
                    UNION ALL SELECT MIN(expires_ms) FROM approvals)",
                [],
                |r| r.get::<_, Option<i64>>(0),
            )
            .map(|v| v.map(|v| v.max(0) as u64))
            .map_err(|e| self.err(e))
    }

    /// Adds or updates a workflow.
    pub fn put_workflow(&self, r: &WorkflowRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO workflows (id, name, status, steps, started_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.name, r.status, r.steps, r.started_ms as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// One workflow.
    pub fn workflow(&self, id: &str) -> Result<Option<WorkflowRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, name, status, steps, started_ms FROM workflows WHERE id = ?1",
                params![id],
                |r| {
                    Ok(WorkflowRow {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        status: r.get(2)?,
                        steps: r.get(3)?,
                        started_ms: r.get::<_, i64>(4)?.max(0) as u64,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Forgets a finished workflow.
    pub fn delete_workflow(&self, id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM workflows WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a pending approval.
    pub fn put_approval(&self, r: &ApprovalRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO approvals (id, action, requested_ms, expires_ms, traceparent)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.action, r.requested_ms as i64, r.expires_ms as i64, r.traceparent],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
        Ok(ApprovalRow {
            id: r.get(0)?,
            action: r.get(1)?,
            requested_ms: r.get::<_, i64>(2)?.max(0) as u64,
            expires_ms: r.get::<_, i64>(3)?.max(0) as u64,
            traceparent: r.get(4)?,
        })
    }

    /// Removes a pending approval, returning it (`None` when it is not pending).
    pub fn take_approval(&self, id: &str) -> Result<Option<ApprovalRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, action, requested_ms, expires_ms, traceparent FROM approvals WHERE id = ?1",
                params![id],
                Self::approval_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if row.is_some() {
            self.conn
                .execute("DELETE FROM approvals WHERE id = ?1", params![id])
                .map_err(|e| self.err(e))?;
        }
        Ok(row)
    }

    /// The pending approvals that expired by `now_ms`.
    pub fn expired_approvals(&self, now_ms: u64) -> Result<Vec<ApprovalRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, action, requested_ms, expires_ms, traceparent FROM approvals
                 WHERE expires_ms <= ?1 ORDER BY expires_ms",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![now_ms as i64], Self::approval_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e));
        rows
    }

    /// Adds (or replaces) an MCP server.
    pub fn put_mcp_server(&self, r: &McpServerRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO mcp_servers (id, name, command, args, transport) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.id, r.name, r.command, r.args, r.transport],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Every MCP server.
    pub fn mcp_servers(&self) -> Result<Vec<McpServerRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, name, command, args, transport FROM mcp_servers ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(McpServerRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    command: r.get(2)?,
                    args: r.get(3)?,
                    transport: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e));
        rows
    }

    /// Records a fiber starting.
    pub fn put_fiber(&self, f: &FiberRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO fibers
                 (id, name, started_ms, step, stash, recovery_attempts, next_recovery_ms, traceparent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    f.id,
                    f.name,
                    f.started_ms as i64,
                    f.step,
                    f.stash,
                    f.recovery_attempts,
                    f.next_recovery_ms.map(|v| v as i64),
                    f.traceparent
                ])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a failed recovery attempt and when to try again, if the fiber is still there.
    pub fn set_fiber_recovery(
        &self,
        id: &str,
        attempts: u32,
        next_ms: u64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE fibers SET recovery_attempts = ?2, next_recovery_ms = ?3 WHERE id = ?1",
                params![id, attempts, next_ms.min(i64::MAX as u64) as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Moves a schedule's next run, if it still exists (a callback may have cancelled it).
    pub fn advance_schedule(&self, id: &str, next_ms: u64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE schedules SET next_run_ms = ?2 WHERE id = ?1",
                params![id, next_ms.min(i64::MAX as u64) as i64],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Writes a fiber's checkpoint (before its next step runs).
    pub fn stash_fiber(&self, id: &str, step: u32, stash: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE fibers SET step = ?2, stash = ?3 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, step, stash]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Forgets a finished fiber; whether it was there.
    pub fn delete_fiber(&self, id: &str) -> Result<bool, StoreError> {
        self.conn
            .execute("DELETE FROM fibers WHERE id = ?1", params![id])
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Every unfinished fiber.
    pub fn fibers(&self) -> Result<Vec<FiberRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, name, started_ms, step, stash, recovery_attempts, next_recovery_ms,
                        traceparent
                 FROM fibers ORDER BY started_ms, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(FiberRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    started_ms: r.get::<_, i64>(2)?.max(0) as u64,
                    step: r.get(3)?,
                    stash: r.get(4)?,
                    recovery_attempts: r.get(5)?,
                    next_recovery_ms: r.get::<_, Option<i64>>(6)?.map(|v| v.max(0) as u64),
                    traceparent: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e));
        rows
    }

    /// A bookkeeping value.
    pub fn meta(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![key], |r| r.get::<_, i64>(0)).optional())
            .map(|v| v.map(|v| v.max(0) as u64))
            .map_err(|e| self.err(e))
    }

    /// Sets a bookkeeping value.
    pub fn set_meta(&self, key: &str, value: u64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, value as i64]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
