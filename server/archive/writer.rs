//! The one writer of an archive: a thread that owns the write connection and applies what it is
//! sent in batched transactions. Senders never wait for SQLite; `flush` waits for everything sent
//! before it to be committed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};

use super::rows::{ChunkRow, FileRecord, Source};
use super::symbols::FileFacts;

/// How long the writer waits for more work before it gives back its memory.
const SETTLE: Duration = Duration::from_millis(150);

/// Most operations folded into one transaction.
const BATCH: usize = 256;

/// How long a transaction waits for more operations after its first.
const GATHER: Duration = Duration::from_millis(25);

// SQLite's page cache for the writer: the profile's small one while single files arrive, a
// larger one while many do (a workspace being indexed: index pages stay in memory rather than
// being read back, 6% of the writer's work in `cargo bench --bench archive`), all given back
// once the writer has nothing left to do (`crate::resources::Resources`).

#[derive(Clone)]
pub enum Op {
    Upsert(FileRecord),
    /// The file was seen unchanged (this content hash) but with a new mtime.
    Touch {
        path: String,
        size: u64,
        mtime_ns: i64,
        hash: u64,
    },
    Remove {
        path: String,
    },
    /// A file or a folder and everything under it.
    RemoveTree {
        path: String,
    },
    Flush(Sender<()>),
}

/// What the writer has done, for stats and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub chunks_written: AtomicU64,
    pub chunks_kept: AtomicU64,
    pub transactions: AtomicU64,
    pub errors: AtomicU64,
}

#[derive(Clone)]
pub struct Writer {
    tx: Sender<Op>,
    pub stats: Arc<WriterStats>,
    last_error: Arc<Mutex<Option<String>>>,
    backlog: Arc<Backlog>,
}

/// Operations sent and not yet taken by the writer, and whether the writer still runs.
#[derive(Default)]
struct Backlog {
    state: Mutex<(usize, bool)>,
    taken: Condvar,
}

impl Backlog {
    fn add(&self, n: usize) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += n;
    }

    fn done(&self, n: usize) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(n);
        self.taken.notify_all();
    }
}

/// Marks the writer stopped when its thread ends, however it ends: nobody waits for it then.
struct Stopped<'a>(&'a Backlog);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.0.taken.notify_all();
    }
}

impl Writer {
    pub fn start(conn: Connection, path: PathBuf) -> Writer {
        let (tx, rx) = channel();
        let stats = Arc::new(WriterStats::default());
        let last_error = Arc::new(Mutex::new(None));
        let backlog = Arc::new(Backlog::default());
        let (s, e, b) = (stats.clone(), last_error.clone(), backlog.clone());
        std::thread::Builder::new()
            .name("strata-archive-writer".into())
            .spawn(move || run(conn, rx, &s, &e, &b, &path))
            .expect("spawn the archive writer thread");
        Writer {
            tx,
            stats,
            last_error,
            backlog,
        }
    }

    /// Queues an operation; never waits.
    pub fn send(&self, op: Op) {
        if !matches!(op, Op::Flush(_)) {
            self.backlog.add(1);
        }
        // The writer only stops when every sender is gone.
        let _ = self.tx.send(op);
    }

    /// Waits while more than `most` operations are queued: how producers that can outrun the
    /// writer (the indexer's threads, on a machine with many cores) keep what is queued, and so
    /// memory, bounded. Never called on the LSP's tasks.
    pub fn wait_for_room(&self, most: usize) {
        let state = self.backlog.state.lock().unwrap_or_else(|e| e.into_inner());
        let _state = self
            .backlog
            .taken
            .wait_while(state, |(ops, stopped)| *ops > most && !*stopped)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Operations queued and not yet taken by the writer.
    #[cfg(test)]
    pub fn backlog(&self) -> usize {
        self.backlog
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) {
        let (tx, rx) = channel();
        self.send(Op::Flush(tx));
        let _ = rx.recv();
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn run(
    mut conn: Connection,
    rx: Receiver<Op>,
    stats: &WriterStats,
    last_error: &Mutex<Option<String>>,
    backlog: &Backlog,
    path: &std::path::Path,
) {
    let _stopped = Stopped(backlog);
    let mut busy = false;
    loop {
        let first = match rx.try_recv() {
            Ok(op) => op,
            Err(TryRecvError::Empty) => match rx.recv_timeout(SETTLE) {
                Ok(op) => op,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // Nothing left to write: the cache goes back to its idle size, and SQLite
                    // gives back the pages it keeps (read again from the file, which the system
                    // caches, when the next batch needs them).
                    if busy {
                        busy = false;
                        cache_size(&conn, crate::resources::current().archive_idle_cache_kib);
                    }
                    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
                        tracing::debug!("shrinking the archive writer's memory: {e}");
                    }
                    match rx.recv() {
                        Ok(op) => op,
                        Err(_) => break,
                    }
                }
            },
            Err(TryRecvError::Disconnected) => break,
        };
        // A batch takes what arrives within `GATHER` of its first operation (up to `BATCH`), and
        // ends early at a flush: while a workspace is indexed, a transaction per file would write
        // an FTS5 segment per file and merge them again and again.
        let deadline = Instant::now() + GATHER;
        let mut flushing = matches!(first, Op::Flush(_));
        let mut batch = vec![first];
        while batch.len() < BATCH && !flushing {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(op) => {
                    flushing = matches!(op, Op::Flush(_));
                    batch.push(op);
                }
                Err(_) => break,
            }
        }
        let mut flushes = Vec::new();
        let ops: Vec<Op> = batch
            .into_iter()
            .filter_map(|op| match op {
                Op::Flush(done) => {
                    flushes.push(done);
                    None
                }
                op => Some(op),
            })
            .collect();
        if !busy && ops.iter().filter(|op| matches!(op, Op::Upsert(_))).count() > 1 {
            busy = true;
            cache_size(&conn, crate::resources::current().archive_busy_cache_kib);
        }
        // Counted down as soon as they are taken: producers go on while the batch is written
        // (what waits is then at most the backlog they allow plus one batch).
        backlog.done(ops.len());
        let result = conn.transaction().and_then(|tx| {
            for op in &ops {
                apply(&tx, op, stats)?;
            }
            tx.commit()
        });
        stats.transactions.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            // One bad operation (or a lock held too long) must not cost the others: each again,
            // on its own.
            for op in &ops {
                let result = conn.transaction().and_then(|tx| {
                    apply(&tx, op, stats)?;
                    tx.commit()
                });
                if let Err(e) = result {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    let message = format!("writing the archive at {} failed: {e}", path.display());
                    tracing::error!("{message}");
                    *last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

fn cache_size(conn: &Connection, kib: i64) {
    if let Err(e) = conn.pragma_update(None, "cache_size", -kib) {
        tracing::warn!("setting the archive writer's cache size: {e}");
    }
}

fn apply(tx: &Transaction<'_>, op: &Op, stats: &WriterStats) -> rusqlite::Result<()> {
    match op {
        Op::Upsert(file) => upsert(tx, file, stats),
        Op::Touch {
            path,
            size,
            mtime_ns,
            hash,
        } => {
            // Only if the row still holds that content (a buffer may have replaced it meanwhile).
            tx.execute(
                "UPDATE files SET size = ?2, mtime_ns = ?3, source = 'disk' WHERE path = ?1 AND hash = ?4",
                params![path, *size as i64, mtime_ns, format!("{hash:016x}")],
            )?;
            Ok(())
        }
        Op::Remove { path } => {
            tx.execute("DELETE FROM files WHERE path = ?1", params![path])?;
            Ok(())
        }
        Op::RemoveTree { path } => {
            // `path/` up to `path0`: every path under the folder ('0' follows '/').
            tx.execute(
                "DELETE FROM files WHERE path = ?1 OR (path >= ?1 || '/' AND path < ?1 || '0')",
                params![path],
            )?;
            Ok(())
        }
        Op::Flush(_) => Ok(()),
    }
}

/// Stores a file and its chunks, rewriting only the chunks whose content changed; chunks that
/// only moved get their positions updated.
fn upsert(tx: &Transaction<'_>, file: &FileRecord, stats: &WriterStats) -> rusqlite::Result<()> {
    let source = match file.source {
        Source::Disk => "disk",
        Source::Buffer => "buffer",
    };
    tx.prepare_cached(
        "INSERT INTO files (path, size, mtime_ns, hash, language, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (path) DO UPDATE SET size = ?2, mtime_ns = ?3, hash = ?4, language = ?5, source = ?6",
    )?
    .execute(params![
        file.path,
        file.size as i64,
        file.mtime_ns,
        format!("{:016x}", file.hash),
        file.language.map(|l| l.name()),
        source
    ])?;
    let file_id: i64 = tx.query_row("SELECT id FROM files WHERE path = ?1", [&file.path], |r| {
        r.get(0)
    })?;
    write_facts(tx, file_id, &file.facts)?;
    let mut existing: HashMap<String, (i64, String)> = HashMap::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT chunk_id, id, hash FROM chunks WHERE file_id = ?1")?;
        let rows = stmt.query_map([file_id], |r| {
            Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
        })?;
        for row in rows {
            let (chunk_id, value) = row?;
            existing.insert(chunk_id, value);
        }
    }
    let mut delete = tx.prepare_cached("DELETE FROM chunks WHERE id = ?1")?;
    let mut moved = tx.prepare_cached(
        "UPDATE chunks SET parent = ?2, start_byte = ?3, end_byte = ?4,
            start_line = ?5, start_col8 = ?6, start_col16 = ?7, start_col32 = ?8,
            end_line = ?9, end_col8 = ?10, end_col16 = ?11, end_col32 = ?12
         WHERE id = ?1",
    )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO chunks (file_id, chunk_id, kind, name, qualified, parent, signature, doc,
            start_byte, end_byte, start_line, start_col8, start_col16, start_col32,
            end_line, end_col8, end_col16, end_col32, hash, tokens)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    )?;
    let mut fts = tx.prepare_cached(
        "INSERT INTO chunks_fts (rowid, name, signature, doc, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut names = tx.prepare_cached("INSERT INTO names_fts (rowid, name) VALUES (?1, ?2)")?;
    for chunk in &file.chunks {
        let hash = format!("{:016x}", chunk.hash);
        if let Some((id, old_hash)) = existing.remove(&chunk.chunk_id) {
            if old_hash == hash {
                moved.execute(params![
                    id,
                    chunk.parent,
                    chunk.start_byte as i64,
                    chunk.end_byte as i64,
                    chunk.start.line,
                    chunk.start.col8,
                    chunk.start.col16,
                    chunk.start.col32,
                    chunk.end.line,
                    chunk.end.col8,
                    chunk.end.col16,
                    chunk.end.col32
                ])?;
                stats.chunks_kept.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            delete.execute([id])?;
        }
        insert_chunk(tx, &mut insert, &mut fts, &mut names, file_id, chunk, &hash)?;
        stats.chunks_written.fetch_add(1, Ordering::Relaxed);
    }
    for (id, _) in existing.into_values() {
        delete.execute([id])?;
    }
    Ok(())
}

/// Replaces a file's symbol tables (a few rows a file: rewritten whole).
fn write_facts(tx: &Transaction<'_>, file_id: i64, facts: &FileFacts) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM symbols WHERE file_id = ?1")?
        .execute([file_id])?;
    tx.prepare_cached("DELETE FROM imports WHERE file_id = ?1")?
        .execute([file_id])?;
    let mut symbol = tx.prepare_cached(
        "INSERT INTO symbols (file_id, name, kind, scope, container, of_trait, public, detail,
            start_byte, end_byte, name_byte, signature_end, start_line, end_line)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for s in &facts.symbols {
        symbol.execute(params![
            file_id,
            s.name,
            s.kind.as_str(),
            s.scope,
            s.container,
            s.of_trait,
            s.public,
            s.detail,
            s.range.start as i64,
            s.range.end as i64,
            s.name_start as i64,
            s.signature_end as i64,
            s.lines.0,
            s.lines.1
        ])?;
    }
    let mut import = tx.prepare_cached(
        "INSERT INTO imports (file_id, scope, local, path, name, export, type_only)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for i in &facts.imports {
        import.execute(params![
            file_id,
            i.scope,
            i.local,
            i.path,
            i.name,
            i.export,
            i.type_only
        ])?;
    }
    Ok(())
}

fn insert_chunk(
    tx: &Transaction<'_>,
    insert: &mut rusqlite::CachedStatement<'_>,
    fts: &mut rusqlite::CachedStatement<'_>,
    names: &mut rusqlite::CachedStatement<'_>,
    file_id: i64,
    c: &ChunkRow,
    hash: &str,
) -> rusqlite::Result<()> {
    insert.execute(params![
        file_id,
        c.chunk_id,
        c.kind.as_str(),
        c.name,
        c.qualified,
        c.parent,
        c.signature,
        c.doc,
        c.start_byte as i64,
        c.end_byte as i64,
        c.start.line,
        c.start.col8,
        c.start.col16,
        c.start.col32,
        c.end.line,
        c.end.col8,
        c.end.col16,
        c.end.col32,
        hash,
        c.tokens
    ])?;
    let id = tx.last_insert_rowid();
    fts.execute(params![id, c.name_terms, c.signature, c.doc, c.body_terms])?;
    names.execute(params![id, c.name_terms])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_wait_while_the_backlog_is_full_and_go_on_once_it_drains() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("archive.sqlite");
        let (conn, _) = super::super::db::open_for_writing(&path).unwrap();
        let writer = Writer::start(conn, path.clone());
        // Another process holds the write lock: the writer takes the first operation and waits
        // on the lock; what is sent after it stays queued.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        writer.send(Op::Remove {
            path: "first.rs".into(),
        });
        let taken = Instant::now();
        while writer.backlog() > 0 {
            assert!(taken.elapsed() < Duration::from_secs(5), "never taken");
            std::thread::sleep(Duration::from_millis(5));
        }
        for name in ["a.rs", "b.rs", "c.rs"] {
            writer.send(Op::Remove { path: name.into() });
        }
        assert_eq!(writer.backlog(), 3);
        let (done_tx, done_rx) = channel();
        let producer = writer.clone();
        let waiting = std::thread::spawn(move || {
            producer.wait_for_room(1);
            let _ = done_tx.send(());
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "a producer went on while three operations were queued"
        );
        other.execute_batch("COMMIT").unwrap();
        done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        waiting.join().unwrap();
        writer.flush();
        assert_eq!(writer.backlog(), 0);
        assert_eq!(writer.stats.errors.load(Ordering::Relaxed), 0);
    }
}
