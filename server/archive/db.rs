//! The archive database: where it lives, its schema and version, and what happens when the file
//! is corrupt or from another version: an older one is migrated when every step from its version
//! is known, and otherwise (it is a cache) moved aside and rebuilt, with a warning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Bump when the schema changes, or what the chunker or `rows` make of a file (a change of the
/// chunk queries alone is noticed without: see [`open_for_writing`]), with a [`Migration`] from
/// the version before when what is stored stays valid; databases no migration reaches are
/// rebuilt (they are caches).
pub const SCHEMA_VERSION: i64 = 7;

/// One step from schema version `from` to `from + 1`.
pub struct Migration {
    pub from: i64,
    pub sql: &'static str,
}

/// The archive's migrations, oldest first. None yet: version 5's rows lack search terms that 6
/// writes (identifiers with digits or other scripts), and version 6 has no symbol tables, which
/// only a parse of every file can fill, so older files are rebuilt.
const MIGRATIONS: &[Migration] = &[];

const SCHEMA: &str = "
CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the workspace root, '/'-separated
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,          -- -1 when indexed from an editor buffer
    hash TEXT NOT NULL,                 -- xxh3 of the content, hex
    language TEXT,
    source TEXT NOT NULL                -- 'disk' or 'buffer'
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY,             -- also the rowid in chunks_fts
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    chunk_id TEXT NOT NULL,             -- stable within the file: kind:path#ordinal
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    qualified TEXT NOT NULL,
    parent TEXT,
    signature TEXT NOT NULL,
    doc TEXT NOT NULL,
    start_byte INTEGER NOT NULL, end_byte INTEGER NOT NULL,
    start_line INTEGER NOT NULL, start_col8 INTEGER NOT NULL, start_col16 INTEGER NOT NULL, start_col32 INTEGER NOT NULL,
    end_line INTEGER NOT NULL, end_col8 INTEGER NOT NULL, end_col16 INTEGER NOT NULL, end_col32 INTEGER NOT NULL,
    hash TEXT NOT NULL,
    tokens INTEGER NOT NULL             -- estimate until the tokenizer arrives
);
-- chunk_id is unique within a file; the writer keeps it so (it reads a file's chunks before it
-- rewrites them), and an index of the long ids would cost every insert.
CREATE INDEX chunks_by_file ON chunks (file_id);
CREATE INDEX chunks_by_name ON chunks (name COLLATE NOCASE);
-- No prefix index here: prefixes are searched in names_fts first (three times fewer index
-- entries to build while indexing).
CREATE VIRTUAL TABLE chunks_fts USING fts5 (name, signature, doc, body, tokenize = 'unicode61', content = '', contentless_delete = 1);
-- Names alone, so that a name search reads only names' doclists.
CREATE VIRTUAL TABLE names_fts USING fts5 (name, tokenize = 'unicode61', prefix = '2 3', content = '', contentless_delete = 1);
CREATE TRIGGER chunks_delete AFTER DELETE ON chunks BEGIN
    DELETE FROM chunks_fts WHERE rowid = old.id;
    DELETE FROM names_fts WHERE rowid = old.id;
END;
-- The symbol tables (archive/symbols): what each file declares, imports and re-exports.
CREATE TABLE symbols (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,                -- inline modules around it, '::'-joined
    container TEXT NOT NULL,            -- impl type, trait, class or interface; '' when free
    of_trait TEXT NOT NULL,             -- the trait of `impl Trait for Type`
    public INTEGER NOT NULL,
    detail TEXT NOT NULL,               -- head of its type; a `mod m;`'s #[path]
    start_byte INTEGER NOT NULL, end_byte INTEGER NOT NULL,
    name_byte INTEGER NOT NULL, signature_end INTEGER NOT NULL,
    start_line INTEGER NOT NULL, end_line INTEGER NOT NULL
);
CREATE INDEX symbols_by_file ON symbols (file_id);
CREATE INDEX symbols_by_name ON symbols (name);
CREATE INDEX symbols_by_container ON symbols (container) WHERE container != '';
CREATE TABLE imports (
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    local TEXT NOT NULL,                -- the name bound; '*' for a glob
    path TEXT NOT NULL,                 -- Rust: the whole path; TS: the module specifier
    name TEXT NOT NULL,                 -- TS: the name taken ('default', '*', a name)
    export INTEGER NOT NULL,
    type_only INTEGER NOT NULL
);
CREATE INDEX imports_by_file ON imports (file_id);
-- Segments merge at 16 of a level rather than 4: a tenth off the writer's work while a workspace
-- is indexed, search times as they were (`cargo bench --bench archive`).
INSERT INTO chunks_fts (chunks_fts, rank) VALUES ('automerge', 16);
INSERT INTO names_fts (names_fts, rank) VALUES ('automerge', 16);
";

#[derive(Debug)]
pub enum ArchiveError {
    /// The cache directory cannot be created or written.
    CacheDir {
        path: PathBuf,
        error: std::io::Error,
    },
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::CacheDir { path, error } => write!(
                f,
                "cannot use the cache directory {}: {error} — set STRATA_CACHE_DIR or --cache-dir to a writable directory; \
                 everything but search keeps working",
                path.display()
            ),
            ArchiveError::Sqlite { path, error } => {
                write!(f, "archive database {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for ArchiveError {}

/// The directory for one workspace's databases: `<cache>/<name>-<hash of the root path>`.
pub fn workspace_dir(root: &Path, cache_dir: Option<&Path>) -> PathBuf {
    let base = cache_base(cache_dir);
    let hash = crate::syntax::hash_bytes(root.to_string_lossy().as_bytes());
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    base.join(format!("{name}-{hash:016x}"))
}

/// Strata's cache directory: the override if given, else `$STRATA_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/strata`, else `~/.cache/strata`.
pub fn cache_base(cache_dir: Option<&Path>) -> PathBuf {
    match cache_dir {
        Some(dir) => dir.to_path_buf(),
        None => match std::env::var_os("STRATA_CACHE_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let xdg = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty());
                let cache = xdg.map(PathBuf::from).unwrap_or_else(|| {
                    std::env::var_os("HOME")
                        .map_or_else(std::env::temp_dir, PathBuf::from)
                        .join(".cache")
                });
                cache.join("strata")
            }
        },
    }
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Sqlite {
        path: path.to_path_buf(),
        error,
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Opens (creating or rebuilding as needed) the database for writing. Returns it and, when an
/// old or corrupt file was moved aside, a warning for the user.
///
/// A file whose chunks were cut by other chunk queries, or whose symbol tables were extracted by
/// another version of the extraction, is rebuilt too: unchanged files would otherwise keep their
/// old rows for good.
pub fn open_for_writing(path: &Path) -> Result<(Connection, Option<String>), ArchiveError> {
    let stamp = format!(
        "chunk queries {}, symbol tables {}",
        crate::chunks::queries_fingerprint(),
        super::symbols::VERSION
    );
    open_versioned(
        path,
        "the archive",
        &Schema {
            sql: SCHEMA,
            version: SCHEMA_VERSION,
            migrations: MIGRATIONS,
            stamp: &stamp,
        },
    )
}

/// What a cache database holds and how it got there.
pub struct Schema<'a> {
    pub sql: &'a str,
    pub version: i64,
    /// From older versions, oldest first.
    pub migrations: &'a [Migration],
    /// What else the contents depend on (the archive: its chunk queries); a file with another
    /// stamp is rebuilt.
    pub stamp: &'a str,
}

/// Opens a cache database of `schema`, creating it, migrating an older one, or moving aside a
/// corrupt or outdated one and creating a new one (returning a warning that names `what`).
/// Processes opening the same file take turns (a lock on `<file>.lock`): two that both find it
/// outdated must not both rebuild it, the second moving the first's new file aside.
pub fn open_versioned(
    path: &Path,
    what: &str,
    schema: &Schema<'_>,
) -> Result<(Connection, Option<String>), ArchiveError> {
    let cache_dir = |error| ArchiveError::CacheDir {
        path: path.parent().unwrap_or(path).to_path_buf(),
        error,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cache_dir)?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("sqlite.lock"))
        .map_err(cache_dir)?;
    lock.lock().map_err(cache_dir)?;
    let opened = open_locked(path, what, schema);
    drop(lock);
    opened
}

fn open_locked(
    path: &Path,
    what: &str,
    schema: &Schema<'_>,
) -> Result<(Connection, Option<String>), ArchiveError> {
    match check(path, schema) {
        Ok(conn) => Ok((conn, None)),
        Err(problem) => {
            let warning = if path.exists() {
                // One copy kept aside is enough: older ones go.
                if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
                    let prefix = format!("{}.broken-", name.to_string_lossy());
                    for old in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                        if old.file_name().to_string_lossy().starts_with(&prefix) {
                            let _ = std::fs::remove_file(old.path());
                        }
                    }
                }
                let aside = path.with_extension(format!(
                    "sqlite.broken-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                ));
                std::fs::rename(path, &aside).map_err(|error| ArchiveError::CacheDir {
                    path: path.to_path_buf(),
                    error,
                })?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Some(format!(
                    "{what} at {} {problem}; moved it to {} and rebuilding",
                    path.display(),
                    aside.display()
                ))
            } else {
                None
            };
            let conn = Connection::open(path).map_err(sqlite(path))?;
            configure(&conn).map_err(sqlite(path))?;
            create(&conn, schema).map_err(sqlite(path))?;
            Ok((conn, warning))
        }
    }
}

/// Opens an existing database of the current schema, migrating it if it is older and
/// `migrations` lead from its version; says what is wrong otherwise.
fn check(path: &Path, schema: &Schema<'_>) -> Result<Connection, String> {
    let (expected, migrations) = (schema.version, schema.migrations);
    if !path.exists() {
        return Err("does not exist".into());
    }
    let mut conn = Connection::open(path).map_err(|e| format!("cannot be opened ({e})"))?;
    configure(&conn).map_err(|e| format!("is not a usable database ({e})"))?;
    let found = schema_version(&conn)?;
    if found != expected {
        let known = |v: i64| migrations.iter().any(|m| m.from == v);
        if found > expected || !(found..expected).all(known) {
            return Err(format!("has schema version {found}, not {expected}"));
        }
        migrate(&mut conn, expected, migrations)
            .map_err(|e| format!("could not be migrated from schema version {found} ({e})"))?;
    }
    let stamp: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'stamp'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| format!("is corrupt ({e})"))?
        .unwrap_or_default();
    if stamp != schema.stamp {
        return Err(format!(
            "was built with {}, not {}",
            if stamp.is_empty() { "no stamp" } else { &stamp },
            schema.stamp
        ));
    }
    let ok: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| format!("is corrupt ({e})"))?;
    if ok != "ok" {
        return Err(format!("is corrupt ({ok})"));
    }
    Ok(conn)
}

/// The schema version a database records.
fn schema_version(conn: &Connection) -> Result<i64, String> {
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| format!("is corrupt or not a Strata database ({e})"))?;
    version
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| "has no schema version".to_string())
}

/// Runs the migrations from the database's version up to `expected`, in one transaction that
/// holds the write lock, so that a second process opening the same file waits and then finds it
/// migrated.
fn migrate(conn: &mut Connection, expected: i64, migrations: &[Migration]) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    // Read again under the lock: another process may have migrated it meanwhile.
    let mut version = schema_version(&tx)?;
    while version < expected {
        let Some(step) = migrations.iter().find(|m| m.from == version) else {
            break;
        };
        tx.execute_batch(step.sql).map_err(sql)?;
        version += 1;
    }
    if version != expected {
        return Err(format!("it is at schema version {version}"));
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
        [version.to_string()],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

fn create(conn: &Connection, schema: &Schema<'_>) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN; CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); {} \
         INSERT INTO meta (key, value) VALUES ('schema_version', '{}');",
        schema.sql, schema.version
    ))?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('stamp', ?1)",
        [schema.stamp],
    )?;
    conn.execute_batch("COMMIT")
}

/// A connection for reading, on its own (WAL lets it read while the writer writes).
pub fn open_for_reading(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);";
    const V2: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, tag TEXT);";
    const TO_V2: &[Migration] = &[Migration {
        from: 1,
        sql: "ALTER TABLE notes ADD COLUMN tag TEXT;",
    }];

    fn schema(
        sql: &'static str,
        version: i64,
        migrations: &'static [Migration],
    ) -> Schema<'static> {
        Schema {
            sql,
            version,
            migrations,
            stamp: "",
        }
    }

    fn notes(path: &Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT text FROM notes ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn an_older_database_is_migrated_in_place_when_every_step_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let (conn, warning) = open_versioned(&path, "the cache", &schema(V1, 1, &[])).unwrap();
        assert_eq!(warning, None);
        conn.execute("INSERT INTO notes (text) VALUES ('kept')", [])
            .unwrap();
        drop(conn);

        let (conn, warning) = open_versioned(&path, "the cache", &schema(V2, 2, TO_V2)).unwrap();
        assert_eq!(warning, None, "migrated, not rebuilt");
        assert_eq!(schema_version(&conn), Ok(2));
        conn.execute("UPDATE notes SET tag = 'new column'", [])
            .unwrap();
        drop(conn);
        assert_eq!(notes(&path), ["kept"]);

        // Opened again at the same version: nothing to do.
        let (_, warning) = open_versioned(&path, "the cache", &schema(V2, 2, TO_V2)).unwrap();
        assert_eq!(warning, None);
        assert_eq!(notes(&path), ["kept"]);
    }

    #[test]
    fn a_database_no_migration_reaches_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let (conn, _) = open_versioned(&path, "the cache", &schema(V1, 1, &[])).unwrap();
        conn.execute("INSERT INTO notes (text) VALUES ('dropped')", [])
            .unwrap();
        drop(conn);
        // No step from 1; and a newer file than the code is never "migrated" down.
        let (_, warning) = open_versioned(&path, "the cache", &schema(V2, 2, &[])).unwrap();
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("schema version 1, not 2")),
            "{warning:?}"
        );
        assert!(notes(&path).is_empty());
        let (_, warning) = open_versioned(&path, "the cache", &schema(V1, 1, TO_V2)).unwrap();
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.contains("schema version 2, not 1")),
            "{warning:?}"
        );
    }

    #[test]
    fn processes_that_find_a_file_outdated_at_once_rebuild_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let stamped = |stamp: &'static str| Schema {
            stamp,
            ..schema(V1, 1, &[])
        };
        drop(open_versioned(&path, "the cache", &stamped("old")).unwrap());
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let (conn, warning) =
                        open_versioned(&path, "the cache", &stamped("new")).unwrap();
                    conn.execute("INSERT INTO notes (text) VALUES ('written')", [])
                        .unwrap();
                    warning
                })
            })
            .collect();
        let warnings: Vec<String> = opens
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("was built with old, not new"),
            "{warnings:?}"
        );
        // Every process wrote to the same, new file.
        assert_eq!(notes(&path).len(), 4);
    }
}
