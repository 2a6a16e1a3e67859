//! The gateway's database, `gateway.sqlite` in Strata's cache directory, shared by every
//! workspace: the L2 answer cache (TTL, a size cap with least-recently-used eviction) and the
//! egress audit (one row per call: when, which provider and model, bytes, tokens, which files and
//! chunks went out, whether the cache answered — never the content). Writes go to one thread in
//! batches; reads take a connection of their own. Nothing here runs on the LSP task.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use super::audit::{CacheLevel, CallOutcome};
use crate::archive::{ArchiveError, Schema, open_versioned};

const SCHEMA_VERSION: i64 = 1;
const SCHEMA: &str = "
CREATE TABLE responses (
    key TEXT PRIMARY KEY,             -- hex of the cache key
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    answer TEXT NOT NULL,             -- JSON of the cached answer
    bytes INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms INTEGER NOT NULL
);
CREATE INDEX responses_by_use ON responses (used_ms);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    workspace TEXT,
    agent TEXT NOT NULL,
    priority TEXT NOT NULL,
    provider TEXT,
    model TEXT,
    cache TEXT NOT NULL,              -- 'miss', 'l1', 'l2' or 'coalesced'
    bytes_out INTEGER NOT NULL,
    bytes_in INTEGER NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    files TEXT NOT NULL,              -- JSON list of paths whose text went out
    chunks TEXT NOT NULL,             -- JSON list of chunk ids
    outcome TEXT NOT NULL,            -- 'ok', 'error', 'cancelled', 'refused'
    error TEXT,
    ttft_ms INTEGER,
    total_ms INTEGER NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);
";

/// One row of the audit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub workspace: Option<String>,
    pub agent: String,
    pub priority: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub cache: CacheLevel,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub files: Vec<String>,
    pub chunks: Vec<String>,
    pub outcome: CallOutcome,
    pub error: Option<String>,
    pub ttft_ms: Option<u64>,
    pub total_ms: u64,
}

/// The audit's words are stored as they are spelled (`CacheLevel::as_str`), and a word this
/// build does not know is an error, not a guess.
macro_rules! column {
    ($ty:ident) => {
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let word = value.as_str()?;
                $ty::parse(word).ok_or_else(|| {
                    FromSqlError::Other(format!("unknown {}: {word:?}", stringify!($ty)).into())
                })
            }
        }
    };
}

column!(CacheLevel);
column!(CallOutcome);

/// Tokens per provider or agent.
pub type Spent = Vec<(String, u64)>;

/// An answer as the L2 cache keeps it.
#[derive(Clone, Debug)]
pub struct StoredAnswer {
    pub provider: String,
    pub model: String,
    pub answer: String,
    pub expires_ms: i64,
}

enum Write {
    Put {
        key: String,
        provider: String,
        model: String,
        answer: String,
        now_ms: i64,
        expires_ms: i64,
    },
    Used {
        key: String,
        now_ms: i64,
    },
    Forget(String),
    Audit(Box<AuditRecord>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// Writes that may wait in memory before the writer thread drops new ones (and says so).
const QUEUE: usize = 4096;

#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    /// `None` only while dropping.
    writes: Option<SyncSender<Write>>,
    writer: Option<std::thread::JoinHandle<()>>,
    reader: Mutex<Connection>,
}

impl Drop for Store {
    /// Finishes the queued writes and closes the writer's connection before returning, so the
    /// next process (or test) opens a quiet file.
    fn drop(&mut self) {
        drop(self.writes.take());
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Write")
    }
}

impl Store {
    /// Opens (or creates, or rebuilds a broken) `gateway.sqlite` under `dir`. `max_bytes` caps
    /// the cached answers. Returns a warning when an old file was moved aside.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Arc<Store>, Option<String>), ArchiveError> {
        let path = dir.join("gateway.sqlite");
        let (conn, warning) = open_versioned(
            &path,
            "the gateway cache",
            &Schema {
                sql: SCHEMA,
                version: SCHEMA_VERSION,
                migrations: &[],
                stamp: "",
            },
        )?;
        // Read-write flags with `query_only`: a read-only connection cannot rebuild the WAL index
        // when another process has just closed the file, and fails instead of waiting.
        let reader = rusqlite::Connection::open(&path)
            .and_then(|c| {
                c.busy_timeout(Duration::from_secs(10))?;
                c.pragma_update(None, "query_only", true)?;
                Ok(c)
            })
            .map_err(|error| ArchiveError::Sqlite {
                path: path.clone(),
                error,
            })?;
        let (writes, queue) = sync_channel(QUEUE);
        let writer = std::thread::Builder::new()
            .name("strata-gateway-db".into())
            .spawn(move || writer(conn, queue, max_bytes))
            .map_err(|error| ArchiveError::CacheDir {
                path: path.clone(),
                error,
            })?;
        Ok((
            Arc::new(Store {
                path,
                writes: Some(writes),
                writer: Some(writer),
                reader: Mutex::new(reader),
            }),
            warning,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, write: Write) {
        let Some(writes) = &self.writes else { return };
        match writes.try_send(write) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("the gateway database is behind; a cache or audit write was dropped")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("the gateway database writer has stopped")
            }
        }
    }

    /// A live (unexpired) answer for `key`, marking it used.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<StoredAnswer> {
        let found = {
            let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
            conn.prepare_cached(
                "SELECT provider, model, answer, expires_ms FROM responses WHERE key = ?1 AND expires_ms > ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![key, now_ms], |r| {
                    Ok(StoredAnswer {
                        provider: r.get(0)?,
                        model: r.get(1)?,
                        answer: r.get(2)?,
                        expires_ms: r.get(3)?,
                    })
                })
                .optional()
            })
        };
        match found {
            Ok(Some(answer)) => {
                self.send(Write::Used {
                    key: key.to_owned(),
                    now_ms,
                });
                Some(answer)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("gateway cache read failed: {e}");
                None
            }
        }
    }

    pub fn put(
        &self,
        key: &str,
        provider: &str,
        model: &str,
        answer: String,
        now_ms: i64,
        expires_ms: i64,
    ) {
        self.send(Write::Put {
            key: key.to_owned(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            answer,
            now_ms,
            expires_ms,
        });
    }

    /// Drops a cached answer (one its caller found unusable).
    pub fn forget(&self, key: &str) {
        self.send(Write::Forget(key.to_owned()));
    }

    pub fn audit(&self, record: AuditRecord) {
        self.send(Write::Audit(Box::new(record)));
    }

    /// Waits until everything sent so far is written.
    pub fn flush(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.send(Write::Flush(tx));
        let _ = rx.recv_timeout(Duration::from_secs(30));
    }

    /// The most recent audit rows (of one workspace, when given), newest last.
    pub fn recent_audit(
        &self,
        limit: usize,
        since_ms: i64,
        workspace: Option<&str>,
    ) -> Vec<AuditRecord> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let rows = conn
            .prepare_cached(
                "SELECT at_ms, workspace, agent, priority, provider, model, cache, bytes_out, bytes_in, \
                 tokens_in, tokens_out, files, chunks, outcome, error, ttft_ms, total_ms \
                 FROM audit WHERE at_ms >= ?2 AND (?3 IS NULL OR workspace = ?3) ORDER BY id DESC LIMIT ?1",
            )
            .and_then(|mut s| {
                s.query_map(params![limit as i64, since_ms, workspace], |r| {
                    let files: String = r.get(11)?;
                    let chunks: String = r.get(12)?;
                    Ok(AuditRecord {
                        at_ms: r.get(0)?,
                        workspace: r.get(1)?,
                        agent: r.get(2)?,
                        priority: r.get(3)?,
                        provider: r.get(4)?,
                        model: r.get(5)?,
                        cache: r.get(6)?,
                        bytes_out: r.get::<_, i64>(7)? as u64,
                        bytes_in: r.get::<_, i64>(8)? as u64,
                        tokens_in: r.get::<_, i64>(9)? as u64,
                        tokens_out: r.get::<_, i64>(10)? as u64,
                        files: serde_json::from_str(&files).unwrap_or_default(),
                        chunks: serde_json::from_str(&chunks).unwrap_or_default(),
                        outcome: r.get(13)?,
                        error: r.get(14)?,
                        ttft_ms: r.get::<_, Option<i64>>(15)?.map(|v| v as u64),
                        total_ms: r.get::<_, i64>(16)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            });
        match rows {
            Ok(mut rows) => {
                rows.reverse();
                rows
            }
            Err(e) => {
                tracing::warn!("reading the audit failed: {e}");
                Vec::new()
            }
        }
    }

    /// Tokens spent since `since_ms`, per provider and per agent (for daily budgets).
    pub fn spent_since(&self, since_ms: i64) -> (Spent, Spent) {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let sum = |column: &str| -> Vec<(String, u64)> {
            let sql = format!(
                "SELECT {column}, SUM(tokens_in + tokens_out) FROM audit \
                 WHERE at_ms >= ?1 AND {column} IS NOT NULL AND cache NOT IN ('l1', 'l2', 'coalesced') GROUP BY {column}"
            );
            conn.prepare(&sql)
                .and_then(|mut s| {
                    s.query_map([since_ms], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                    })?
                    .collect()
                })
                .unwrap_or_default()
        };
        (sum("provider"), sum("agent"))
    }

    /// Answers kept and their bytes.
    pub fn cached(&self) -> (u64, u64) {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM responses",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap_or((0, 0))
    }
}

/// `2026-11-25 05:38:17` for milliseconds since the epoch (UTC).
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn writer(mut conn: Connection, queue: Receiver<Write>, max_bytes: u64) {
    let mut total: u64 = conn
        .query_row("SELECT COALESCE(SUM(bytes), 0) FROM responses", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_or(0, |v| v as u64);
    let mut batches: u64 = 0;
    loop {
        let Ok(first) = queue.recv() else { return };
        let mut batch = vec![first];
        // Gather what arrives in the next moment into one transaction.
        while batch.len() < 256 {
            match queue.recv_timeout(Duration::from_millis(2)) {
                Ok(w) => batch.push(w),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let mut flushes = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for write in batch {
                match write {
                    Write::Put {
                        key,
                        provider,
                        model,
                        answer,
                        now_ms,
                        expires_ms,
                    } => {
                        let old: Option<i64> = tx
                            .query_row("SELECT bytes FROM responses WHERE key = ?1", [&key], |r| {
                                r.get(0)
                            })
                            .optional()?;
                        let bytes = (answer.len() + key.len() + 64) as u64;
                        tx.execute(
                            "INSERT OR REPLACE INTO responses (key, provider, model, answer, bytes, created_ms, expires_ms, used_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
                            params![key, provider, model, answer, bytes as i64, now_ms, expires_ms],
                        )?;
                        total = total.saturating_sub(old.unwrap_or(0) as u64) + bytes;
                    }
                    Write::Forget(key) => {
                        let bytes: Option<i64> = tx
                            .query_row("SELECT bytes FROM responses WHERE key = ?1", [&key], |r| {
                                r.get(0)
                            })
                            .optional()?;
                        tx.execute("DELETE FROM responses WHERE key = ?1", [&key])?;
                        total = total.saturating_sub(bytes.unwrap_or(0) as u64);
                    }
                    Write::Used { key, now_ms } => {
                        tx.execute(
                            "UPDATE responses SET used_ms = ?2 WHERE key = ?1",
                            params![key, now_ms],
                        )?;
                    }
                    Write::Audit(r) => {
                        tx.execute(
                            "INSERT INTO audit (at_ms, workspace, agent, priority, provider, model, cache, bytes_out, bytes_in, \
                             tokens_in, tokens_out, files, chunks, outcome, error, ttft_ms, total_ms) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                            params![
                                r.at_ms,
                                r.workspace,
                                r.agent,
                                r.priority,
                                r.provider,
                                r.model,
                                r.cache,
                                r.bytes_out as i64,
                                r.bytes_in as i64,
                                r.tokens_in as i64,
                                r.tokens_out as i64,
                                serde_json::to_string(&r.files).unwrap_or_default(),
                                serde_json::to_string(&r.chunks).unwrap_or_default(),
                                r.outcome,
                                r.error,
                                r.ttft_ms.map(|v| v as i64),
                                r.total_ms as i64,
                            ],
                        )?;
                    }
                    Write::Flush(done) => flushes.push(done),
                }
            }
            batches += 1;
            if total > max_bytes || batches.is_multiple_of(64) {
                // Other processes share the file: count what is really there.
                total = tx.query_row("SELECT COALESCE(SUM(bytes), 0) FROM responses", [], |r| {
                    r.get::<_, i64>(0)
                })? as u64;
            }
            if total > max_bytes {
                // Least recently used first, down to nine tenths of the cap.
                let target = max_bytes / 10 * 9;
                let mut evict =
                    tx.prepare("SELECT key, bytes FROM responses ORDER BY used_ms ASC")?;
                let mut victims = Vec::new();
                let mut rows = evict.query([])?;
                while total > target {
                    let Some(row) = rows.next()? else { break };
                    victims.push(row.get::<_, String>(0)?);
                    total = total.saturating_sub(row.get::<_, i64>(1)? as u64);
                }
                drop(rows);
                drop(evict);
                for key in victims {
                    tx.execute("DELETE FROM responses WHERE key = ?1", [key])?;
                }
            }
            tx.commit()
        })();
        if let Err(e) = result {
            tracing::warn!("gateway database write failed: {e}");
            total = conn
                .query_row("SELECT COALESCE(SUM(bytes), 0) FROM responses", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_or(0, |v| v as u64);
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn answers_expire_and_the_least_recently_used_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let (store, warning) = Store::open(dir.path(), 2_000).unwrap();
        assert!(warning.is_none());
        let answer = "x".repeat(500);
        store.put("a", "p", "m", answer.clone(), 0, 1_000);
        store.put("b", "p", "m", answer.clone(), 1, 1_000);
        store.put("c", "p", "m", answer.clone(), 2, 1_000);
        store.flush();
        assert!(store.get("a", 10).is_some());
        assert!(store.get("a", 1_000).is_none(), "expired");
        store.flush();
        // "a" was used last; "b" is the least recently used and goes when "d" overflows the cap.
        store.put("d", "p", "m", answer, 20, 1_000);
        store.flush();
        assert!(store.get("b", 30).is_none());
        assert!(store.get("a", 30).is_some());
        assert!(store.get("d", 30).is_some());
        let (count, bytes) = store.cached();
        assert!(bytes <= 2_000 && count >= 2, "{count} {bytes}");
    }

    #[test]
    fn survives_a_restart_and_rebuilds_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
            store.put("k", "p", "m", "answer".into(), 0, 100);
            store.audit(AuditRecord {
                at_ms: 5,
                agent: "explain".into(),
                provider: Some("p".into()),
                tokens_in: 10,
                tokens_out: 3,
                cache: CacheLevel::Miss,
                files: vec!["src/a.rs".into()],
                outcome: CallOutcome::Ok,
                ..AuditRecord::default()
            });
            store.flush();
        }
        let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(store.get("k", 1).unwrap().answer, "answer");
        let audit = store.recent_audit(10, 0, None);
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].files, ["src/a.rs"]);
        assert_eq!(store.spent_since(0).0, [("p".to_owned(), 13)]);
        drop(store);
        std::fs::write(dir.path().join("gateway.sqlite"), b"not a database at all").unwrap();
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("gateway.sqlite{suffix}")));
        }
        let (store, warning) = Store::open(dir.path(), 1 << 20).unwrap();
        assert!(warning.unwrap().contains("moved it"));
        assert!(store.get("k", 1).is_none());
    }
}
