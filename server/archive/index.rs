//! The indexer: walks the workspace (ignore rules, size cap, binary detection), finds what
//! changed since the archive last saw it (size and mtime, then content hash), and parses and
//! chunks the changed files in parallel on a bounded pool, sending rows to the writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, UNIX_EPOCH};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ropey::Rope;
use rusqlite::Connection;

use super::rows::{FileRecord, Source, chunk_rows};
use super::writer::{Op, Writer};
use crate::chunks::ChunkConfig;
use crate::documents::chunk_text;
use crate::syntax::{Language, hash_bytes};

#[derive(Clone, Debug)]
pub struct IndexConfig {
    /// Parsing threads; by default one core is left for the editor.
    pub threads: usize,
    /// Larger files are not indexed.
    pub max_file_bytes: u64,
    pub chunk: ChunkConfig,
    /// The configuration's `ignore` patterns, on top of the ignore files.
    pub ignore: IgnorePatterns,
}

impl Default for IndexConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        IndexConfig {
            threads: cores.saturating_sub(1).max(1),
            max_file_bytes: 4 * 1024 * 1024,
            chunk: ChunkConfig::default(),
            ignore: IgnorePatterns::default(),
        }
    }
}

/// The `ignore = [...]` patterns of the configuration (gitignore syntax, relative to the
/// workspace root), built once into a matcher. Every clone shares it: when the settings are
/// reloaded, [`IgnorePatterns::set`] changes them for every holder, and the walks and checks
/// that start afterwards use the new ones (a walk reads them once, when it starts).
#[derive(Clone, Debug)]
pub struct IgnorePatterns(Arc<RwLock<Arc<Rules>>>);

#[derive(Debug)]
struct Rules {
    patterns: Vec<String>,
    matcher: Gitignore,
}

impl Default for IgnorePatterns {
    fn default() -> Self {
        IgnorePatterns(Arc::new(RwLock::new(Arc::new(Rules {
            patterns: Vec::new(),
            matcher: Gitignore::empty(),
        }))))
    }
}

impl IgnorePatterns {
    /// A matcher of `patterns`; a pattern that is not valid gitignore syntax is left out and
    /// reported.
    pub fn new(patterns: &[String]) -> (IgnorePatterns, Vec<String>) {
        let this = IgnorePatterns::default();
        let (_, problems) = this.set(patterns);
        (this, problems)
    }

    /// Replaces the patterns (for every clone). Returns whether they changed, and the patterns
    /// left out because they are not valid gitignore syntax.
    pub fn set(&self, patterns: &[String]) -> (bool, Vec<String>) {
        if self.current().patterns == patterns {
            return (false, Vec::new());
        }
        let mut builder = GitignoreBuilder::new("");
        let mut problems = Vec::new();
        for pattern in patterns {
            if let Err(e) = builder.add_line(None, pattern) {
                problems.push(format!("ignore pattern {pattern:?} left out: {e}"));
            }
        }
        let matcher = builder.build().unwrap_or_else(|e| {
            problems.push(format!("ignore patterns left out: {e}"));
            Gitignore::empty()
        });
        let rules = Arc::new(Rules {
            patterns: patterns.to_vec(),
            matcher,
        });
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = rules;
        (true, problems)
    }

    /// The patterns in force.
    pub fn patterns(&self) -> Vec<String> {
        self.current().patterns.clone()
    }

    /// Whether a workspace-relative path (`/`-separated), or a folder it lies in, is ignored.
    pub fn matches(&self, rel: &str, is_dir: bool) -> bool {
        matches(&self.current(), rel, is_dir)
    }

    fn current(&self) -> Arc<Rules> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn matches(rules: &Rules, rel: &str, is_dir: bool) -> bool {
    !rules.patterns.is_empty()
        && rules
            .matcher
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
}

/// Operations (mostly files' rows) the indexer lets wait for the writer before its threads wait
/// too: rows are held in memory until written, and parsing threads can outrun the one writer.
const BACKLOG: usize = 128;

/// What one indexing run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IndexSummary {
    /// Files the walk found.
    pub files: usize,
    /// Files parsed and stored.
    pub indexed: usize,
    /// Files whose size and mtime (or content) had not changed.
    pub unchanged: usize,
    /// Files the archive had that are gone or now ignored.
    pub removed: usize,
    /// Binary, unreadable or vanished files.
    pub skipped: usize,
    /// Chunks of the files indexed.
    pub chunks: usize,
    /// Bytes of the files indexed.
    pub bytes: u64,
    pub seconds: f64,
}

impl IndexSummary {
    pub fn megabytes_per_second(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }
}

/// A file the walk found.
pub struct Found {
    pub abs: PathBuf,
    pub rel: String,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Directories never worth indexing even without ignore files.
fn skipped_dir(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "node_modules" || name == ".git" || path.join("CACHEDIR.TAG").exists()
}

/// Files that are text but not worth indexing.
fn skipped_file(name: &str) -> bool {
    matches!(
        name,
        "Cargo.lock" | "package-lock.json" | "yarn.lock" | "pnpm-lock.yaml"
    )
}

/// The workspace's files, in path order: `.gitignore`, `.ignore` and `.strataignore` honoured
/// (with or without git), hidden files and files over the size cap left out.
pub fn walk(root: &Path, config: &IndexConfig) -> Vec<Found> {
    walk_under(root, root, config)
}

/// A walk, and whether it saw everything (an unreadable folder makes it incomplete: what it
/// did not see must not be taken for deleted).
pub struct Walk {
    pub found: Vec<Found>,
    pub complete: bool,
}

/// The files the walk of `root` finds under `dir` (a folder of the workspace, or `root`).
pub fn walk_under(root: &Path, dir: &Path, config: &IndexConfig) -> Vec<Found> {
    walk_checked(root, dir, config).found
}

/// [`walk_under`], saying whether the walk was complete.
pub fn walk_checked(root: &Path, dir: &Path, config: &IndexConfig) -> Walk {
    let dir = dir.to_path_buf();
    walk_filtered(root, config, move |path| {
        path.starts_with(&dir) || dir.starts_with(path)
    })
}

/// Whether the walk of `root` would list `abs`: the same walk, descending only the folders on
/// the way to it, so every ignore rule, hidden folder and symlink on the way counts.
pub fn admitted(root: &Path, abs: &Path, config: &IndexConfig) -> bool {
    if relative(root, abs).is_none() {
        return false;
    }
    let target = abs.to_path_buf();
    walk_filtered(root, config, move |path| target.starts_with(path))
        .found
        .iter()
        .any(|f| f.abs == abs)
}

/// Ignore files above the workspace count only inside the same git repository (as with git).
fn parent_rules(root: &Path) -> bool {
    !root.join(".git").exists() && root.ancestors().skip(1).any(|a| a.join(".git").exists())
}

fn walk_filtered(
    root: &Path,
    config: &IndexConfig,
    keep: impl Fn(&Path) -> bool + Send + Sync + 'static,
) -> Walk {
    let rules = config.ignore.current();
    let base = root.to_path_buf();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(false)
        .ignore(true)
        .parents(parent_rules(root))
        .require_git(false)
        .follow_links(false)
        .add_custom_ignore_filename(".strataignore")
        .max_filesize(Some(config.max_file_bytes))
        .filter_entry(move |e| {
            let dir = e.file_type().is_some_and(|t| t.is_dir());
            e.depth() == 0
                || (keep(e.path())
                    && !(dir && skipped_dir(e.path()))
                    && !relative(&base, e.path()).is_some_and(|rel| matches(&rules, &rel, dir)))
        })
        .build();
    let mut found = Vec::new();
    let mut complete = true;
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!("walking the workspace: {e}");
                complete = false;
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if skipped_file(entry.file_name().to_str().unwrap_or("")) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let Some(rel) = relative(root, entry.path()) else {
            continue;
        };
        found.push(Found {
            abs: entry.path().to_path_buf(),
            rel,
            size: meta.len(),
            mtime_ns: mtime_ns(&meta),
        });
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    Walk { found, complete }
}

pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// `path` relative to `root`, `/`-separated; `None` outside the root.
pub fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// What the archive knows of each file: (size, mtime, hash).
pub fn known_files(conn: &Connection) -> rusqlite::Result<HashMap<String, (u64, i64, String)>> {
    let mut stmt = conn.prepare("SELECT path, size, mtime_ns, hash FROM files")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            (r.get::<_, i64>(1)? as u64, r.get(2)?, r.get(3)?),
        ))
    })?;
    rows.collect()
}

/// What became of one file.
pub enum Outcome {
    Indexed { chunks: usize, bytes: u64 },
    Unchanged,
    Skipped,
}

/// Reads, hashes, parses and chunks one file and sends the result to the writer. `known_hash`
/// is the archive's hash of it, if any.
pub fn index_file(
    found: &Found,
    known_hash: Option<&str>,
    writer: &Writer,
    config: &IndexConfig,
) -> Outcome {
    let bytes = match std::fs::read(&found.abs) {
        Ok(bytes) => bytes,
        Err(_) => {
            // Vanished (or unreadable) since the walk.
            writer.send(Op::Remove {
                path: found.rel.clone(),
            });
            return Outcome::Skipped;
        }
    };
    let sniff = &bytes[..bytes.len().min(8192)];
    let Ok(source) = std::str::from_utf8(&bytes)
        .map_err(|_| ())
        .and_then(|s| if sniff.contains(&0) { Err(()) } else { Ok(s) })
    else {
        if known_hash.is_some() {
            writer.send(Op::Remove {
                path: found.rel.clone(),
            });
        }
        return Outcome::Skipped;
    };
    let hash = hash_bytes(&bytes);
    let size = bytes.len() as u64;
    if known_hash == Some(format!("{hash:016x}").as_str()) {
        writer.send(Op::Touch {
            path: found.rel.clone(),
            size,
            mtime_ns: found.mtime_ns,
            hash,
        });
        return Outcome::Unchanged;
    }
    let language = Language::from_path(&found.abs);
    let text = Rope::from_str(source);
    let chunks = chunk_text(&text, language, &config.chunk).to_vec();
    let rows = chunk_rows(&text, &chunks);
    let facts = super::symbols::facts(source, language);
    let n = rows.len();
    writer.send(Op::Upsert(FileRecord {
        path: found.rel.clone(),
        size,
        mtime_ns: found.mtime_ns,
        hash,
        language,
        source: Source::Disk,
        chunks: rows,
        facts,
    }));
    Outcome::Indexed {
        chunks: n,
        bytes: size,
    }
}

/// [`index_file`], with a parser panic turned into a skipped file (it would otherwise fail every
/// indexing run of the workspace).
pub fn index_file_guarded(
    found: &Found,
    known_hash: Option<&str>,
    writer: &Writer,
    config: &IndexConfig,
) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        index_file(found, known_hash, writer, config)
    }))
    .unwrap_or_else(|_| {
        tracing::error!(path = %found.rel, "indexing this file panicked; skipped");
        Outcome::Skipped
    })
}

/// Brings the archive up to date with the workspace. `progress(done, total)` is called as files
/// are processed.
pub fn index_workspace(
    root: &Path,
    reader: &Connection,
    writer: &Writer,
    config: &IndexConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> rusqlite::Result<IndexSummary> {
    let started = Instant::now();
    // What the archive knows is read first: a file added by an event during the walk is then
    // never taken for a deleted one.
    let known = known_files(reader)?;
    let Walk { found, complete } = walk_checked(root, root, config);
    let mut summary = IndexSummary {
        files: found.len(),
        ..IndexSummary::default()
    };

    let present: std::collections::HashSet<&str> = found.iter().map(|f| f.rel.as_str()).collect();
    for path in known
        .keys()
        .filter(|p| complete && !present.contains(p.as_str()))
    {
        writer.send(Op::Remove { path: path.clone() });
        summary.removed += 1;
    }
    let work: Vec<&Found> = found
        .iter()
        .filter(|f| match known.get(&f.rel) {
            Some((size, mtime, _)) => *size != f.size || *mtime != f.mtime_ns,
            None => true,
        })
        .collect();
    summary.unchanged = found.len() - work.len();

    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let (indexed, skipped, unchanged, chunks, bytes) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicU64::new(0),
    );
    let progress = Mutex::new(progress);
    std::thread::scope(|scope| {
        for _ in 0..config.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = work.get(i) else { break };
                    writer.wait_for_room(BACKLOG);
                    let known_hash = known.get(&file.rel).map(|k| k.2.as_str());
                    match index_file_guarded(file, known_hash, writer, config) {
                        Outcome::Indexed {
                            chunks: c,
                            bytes: b,
                        } => {
                            indexed.fetch_add(1, Ordering::Relaxed);
                            chunks.fetch_add(c, Ordering::Relaxed);
                            bytes.fetch_add(b, Ordering::Relaxed);
                        }
                        Outcome::Unchanged => {
                            unchanged.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Skipped => {
                            skipped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if let Ok(report) = progress.lock() {
                        report(n, work.len());
                    }
                }
            });
        }
    });
    writer.flush();
    summary.indexed = indexed.into_inner();
    summary.skipped = skipped.into_inner();
    summary.unchanged += unchanged.into_inner();
    summary.chunks = chunks.into_inner();
    summary.bytes = bytes.into_inner();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(root: &Path, config: &IndexConfig) -> Vec<String> {
        walk(root, config).into_iter().map(|f| f.rel).collect()
    }

    #[test]
    fn the_configured_patterns_leave_files_out_of_the_walk_and_every_clone_sees_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in ["src/main.rs", "src/keys.rs", "vendor/lib.rs", "notes/a.md"] {
            std::fs::create_dir_all(root.join(rel).parent().unwrap()).unwrap();
            std::fs::write(root.join(rel), "fn f() {}\n").unwrap();
        }
        let config = IndexConfig::default();
        let clone = config.clone();
        assert_eq!(files(root, &config).len(), 4);
        let patterns = ["vendor/".to_string(), "keys.rs".into(), "*.md".into()];
        let (changed, problems) = config.ignore.set(&patterns);
        assert!(changed && problems.is_empty(), "{problems:?}");
        assert_eq!(files(root, &clone), ["src/main.rs"]);
        assert!(!admitted(root, &root.join("src/keys.rs"), &clone));
        assert!(!admitted(root, &root.join("vendor/lib.rs"), &clone));
        assert!(admitted(root, &root.join("src/main.rs"), &clone));
        assert!(clone.ignore.matches("vendor/deep/x.rs", false));
        // The same patterns again change nothing; a negation lifts one of them.
        assert!(!config.ignore.set(&patterns).0);
        let lifted = ["*.rs".to_string(), "!main.rs".into()];
        assert!(config.ignore.set(&lifted).0);
        assert_eq!(files(root, &clone), ["notes/a.md", "src/main.rs"]);
        assert_eq!(clone.ignore.patterns(), lifted);
    }

    #[test]
    fn a_pattern_that_is_not_gitignore_syntax_is_reported_and_the_others_apply() {
        let (ignore, problems) = IgnorePatterns::new(&["src/{a,b".into(), "*.md".into()]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("src/{a,b"), "{problems:?}");
        assert!(ignore.matches("x.md", false));
        assert!(!ignore.matches("src/a", false));
    }
}
