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
";

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
