//! The archive: every chunk of the workspace in SQLite with FTS5, searchable and never loaded
//! whole. One database per workspace under the cache directory; one writer thread; readers on
//! their own connections. It is a cache: a corrupt or outdated file is moved aside and rebuilt.
//! Nothing here runs on the LSP task: callers use it from blocking threads.

mod db;
mod index;
mod lookup;
mod rows;
mod search;
pub mod symbols;
mod terms;
mod writer;

use std::path::{Path, PathBuf};

use ropey::Rope;
use rusqlite::Connection;

pub use db::{
    ArchiveError, SCHEMA_VERSION, Schema, cache_base, open_for_reading, open_versioned,
    workspace_dir,
};
pub use index::{IgnorePatterns, IndexConfig, IndexSummary, admitted, relative, walk};
pub use lookup::Located;

/// Lookups on a reader connection of one's own (see [`Archive::reader`]).
pub mod on {
    pub use super::lookup::{
        definitions, facts, members, mod_declarations, outline, symbols_named, top_folders,
    };
    pub use super::search::search;
}
pub use crate::documents::Point3;
pub use rows::{ChunkRow, FileRecord, Source, chunk_rows};
pub use search::{Hit, SearchQuery};
pub use terms::{identifiers, split_identifier};
pub use writer::{Op, WriterStats};

use crate::chunks::Chunk;
use crate::syntax::{Language, hash_range};

/// An open archive of one workspace.
pub struct Archive {
    root: PathBuf,
    path: PathBuf,
    writer: writer::Writer,
}

impl Archive {
    /// Opens the archive of the workspace at `root` (creating or rebuilding it). Returns a
    /// warning for the user when an old or corrupt database was moved aside.
    pub fn open(
        root: &Path,
        cache_dir: Option<&Path>,
    ) -> Result<(Archive, Option<String>), ArchiveError> {
        let path = workspace_dir(root, cache_dir).join("archive.sqlite");
        let (conn, warning) = db::open_for_writing(&path)?;
        let writer = writer::Writer::start(conn, path.clone());
        Ok((
            Archive {
                root: root.to_path_buf(),
                path,
                writer,
            },
            warning,
        ))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new read-only connection.
    pub fn reader(&self) -> Result<Connection, ArchiveError> {
        db::open_for_reading(&self.path).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.writer.stats
    }

    /// The last write that failed, if any (a full disk, a read-only directory…).
    pub fn last_error(&self) -> Option<String> {
        self.writer.last_error()
    }

    /// Waits until everything sent to the writer is committed.
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// Brings the archive up to date with the files of the workspace.
    pub fn index(
        &self,
        config: &IndexConfig,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<IndexSummary, ArchiveError> {
        let reader = self.reader()?;
        index::index_workspace(&self.root, &reader, &self.writer, config, progress).map_err(
            |error| ArchiveError::Sqlite {
                path: self.path.clone(),
                error,
            },
        )
    }

    /// Re-reads the given paths from disk: files or folders, created, changed, saved, renamed
    /// or deleted. What is gone or now ignored leaves the archive.
    pub fn index_paths(&self, paths: &[PathBuf], config: &IndexConfig) -> Result<(), ArchiveError> {
        let reader = self.reader()?;
        let known = index::known_files(&reader).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })?;
        for abs in paths {
            let Some(rel) = relative(&self.root, abs) else {
                continue;
            };
            match std::fs::symlink_metadata(abs) {
                Ok(meta) if meta.is_dir() => {
                    let index::Walk { found, complete } =
                        index::walk_checked(&self.root, abs, config);
                    let present: std::collections::HashSet<&str> =
                        found.iter().map(|f| f.rel.as_str()).collect();
                    let prefix = format!("{rel}/");
                    for gone in known.keys().filter(|p| {
                        complete && p.starts_with(&prefix) && !present.contains(p.as_str())
                    }) {
                        self.writer.send(Op::Remove { path: gone.clone() });
                    }
                    for file in &found {
                        index::index_file_guarded(
                            file,
                            known.get(&file.rel).map(|k| k.2.as_str()),
                            &self.writer,
                            config,
                        );
                    }
                }
                Ok(meta) if meta.is_file() && index::admitted(&self.root, abs, config) => {
                    let found = index::Found {
                        abs: abs.clone(),
                        rel: rel.clone(),
                        size: meta.len(),
                        mtime_ns: index::mtime_ns(&meta),
                    };
                    index::index_file_guarded(
                        &found,
                        known.get(&rel).map(|k| k.2.as_str()),
                        &self.writer,
                        config,
                    );
                }
                _ => self.writer.send(Op::RemoveTree { path: rel }),
            }
        }
        self.writer.flush();
        Ok(())
    }

    /// Indexes an editor's unsaved text of a file (its chunks already computed); only chunks
    /// whose content changed are rewritten. A file `config` leaves out stays out.
    pub fn index_buffer(
        &self,
        abs: &Path,
        text: &Rope,
        language: Option<Language>,
        chunks: &[Chunk],
        config: &IndexConfig,
    ) {
        let Some(rel) = relative(&self.root, abs) else {
            return;
        };
        // A buffer of a file the walk leaves out (ignored, hidden, in node_modules…) stays out.
        if !index::admitted(&self.root, abs, config) {
            return;
        }
        self.writer.send(Op::Upsert(FileRecord {
            path: rel,
            size: text.len_bytes() as u64,
            mtime_ns: -1,
            hash: hash_range(text.slice(..), 0..text.len_bytes()),
            language,
            source: Source::Buffer,
            chunks: chunk_rows(text, chunks),
            facts: symbols::facts(&String::from(text), language),
        }));
    }

    /// Indexes a text that is not a workspace file (a chat) under `rel`, cut into line windows,
    /// so it can be searched like the code. A walk of the workspace (at the next start) drops it
    /// again until it is indexed anew.
    pub fn index_note(&self, rel: &str, text: &Rope) {
        let chunks =
            crate::documents::chunk_text(text, None, &crate::chunks::ChunkConfig::default())
                .to_vec();
        self.writer.send(Op::Upsert(FileRecord {
            path: rel.to_owned(),
            size: text.len_bytes() as u64,
            mtime_ns: -1,
            hash: hash_range(text.slice(..), 0..text.len_bytes()),
            language: None,
            source: Source::Buffer,
            chunks: chunk_rows(text, &chunks),
            facts: symbols::FileFacts::default(),
        }));
    }

    pub fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>, ArchiveError> {
        let reader = self.reader()?;
        search::search(&reader, query).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })
    }

    /// Chunks named exactly `name`.
    pub fn definitions(&self, name: &str, limit: usize) -> Result<Vec<Located>, ArchiveError> {
        let reader = self.reader()?;
        lookup::definitions(&reader, name, limit).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })
    }

    /// The chunks of one file (relative path), in order.
    pub fn outline(&self, path: &str) -> Result<Vec<Located>, ArchiveError> {
        let reader = self.reader()?;
        lookup::outline(&reader, path).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })
    }

    /// Top-level folders and their indexed file counts.
    pub fn top_folders(&self) -> Result<Vec<(String, usize)>, ArchiveError> {
        let reader = self.reader()?;
        lookup::top_folders(&reader).map_err(|error| ArchiveError::Sqlite {
            path: self.path.clone(),
            error,
        })
    }

    /// Files and chunks stored.
    pub fn counts(&self) -> Result<(u64, u64), ArchiveError> {
        let reader = self.reader()?;
        let count = |sql: &str| {
            reader
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        };
        let files = count("SELECT count(*) FROM files");
        let chunks = count("SELECT count(*) FROM chunks");
        files
            .and_then(|f| chunks.map(|c| (f, c)))
            .map_err(|error| ArchiveError::Sqlite {
                path: self.path.clone(),
                error,
            })
    }
}
