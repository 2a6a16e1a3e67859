//! The workspace as assembly sees it, backed by the archive and the files (or the editor's
//! buffers, when given). This is the I/O edge of context assembly; files that the ignore rules
//! leave out, or whose names say they hold secrets, are never read.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ropey::Rope;

use super::assemble::Workspace;
use super::redact::is_secret_file;
use crate::archive::symbols::{FileFacts, Symbol};
use crate::archive::{Archive, IndexConfig, Located, SearchQuery, admitted, on};

pub struct ArchiveWorkspace<'a> {
    pub archive: &'a Archive,
    pub config: IndexConfig,
    /// Open documents' text by workspace-relative path: used instead of the file on disk.
    pub buffers: HashMap<String, Rope>,
    /// Files read (or refused) during this assembly.
    read: Mutex<HashMap<String, Option<Rope>>>,
    /// One read connection for all the lookups of an assembly.
    reader: Mutex<Option<rusqlite::Connection>>,
    /// Symbol tables read during this assembly.
    facts: Mutex<HashMap<String, Option<Arc<FileFacts>>>>,
}

impl<'a> ArchiveWorkspace<'a> {
    pub fn new(
        archive: &'a Archive,
        config: IndexConfig,
        buffers: HashMap<String, Rope>,
    ) -> ArchiveWorkspace<'a> {
        ArchiveWorkspace {
            archive,
            config,
            buffers,
            read: Mutex::new(HashMap::new()),
            reader: Mutex::new(None),
            facts: Mutex::new(HashMap::new()),
        }
    }

    /// Runs a lookup on the assembly's reader; nothing when the archive cannot be read.
    fn with_reader<T: Default>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> T {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if reader.is_none() {
            *reader = self.archive.reader().ok();
        }
        reader
            .as_ref()
            .and_then(|conn| f(conn).ok())
            .unwrap_or_default()
    }
}

impl ArchiveWorkspace<'_> {
    fn abs(&self, path: &str) -> PathBuf {
        self.archive.root().join(path)
    }
}

impl Workspace for ArchiveWorkspace<'_> {
    fn definitions(&self, name: &str) -> Vec<Located> {
        self.with_reader(|conn| on::definitions(conn, name, 16))
    }

    fn outline(&self, path: &str) -> Vec<Located> {
        self.with_reader(|conn| on::outline(conn, path))
    }

    fn search(&self, query: &str) -> Vec<Located> {
        let hits = self.archive.search(&SearchQuery {
            text: query.to_string(),
            limit: 12,
            kinds: None,
        });
        let mut out = Vec::new();
        for hit in hits.unwrap_or_default() {
            if matches!(hit.kind.as_str(), "group" | "window" | "part") {
                continue;
            }
            // The search hit names the chunk; its byte range comes from the outline.
            if let Some(d) = self
                .outline(&hit.path)
                .into_iter()
                .find(|d| d.chunk_id == hit.chunk_id)
            {
                out.push(d);
            }
        }
        out
    }

    fn text(&self, path: &str) -> Option<Rope> {
        if let Some(buffer) = self.buffers.get(path) {
            return Some(buffer.clone());
        }
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.entry(path.to_string())
            .or_insert_with(|| self.read_file(path))
            .clone()
    }

    fn folders(&self) -> Vec<(String, usize)> {
        self.with_reader(on::top_folders)
    }

    fn facts(&self, path: &str) -> Option<Arc<FileFacts>> {
        let mut facts = self.facts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = facts.get(path) {
            return known.clone();
        }
        let found = self.with_reader(|conn| on::facts(conn, path)).map(Arc::new);
        facts.insert(path.to_string(), found.clone());
        found
    }

    fn symbols_named(&self, name: &str) -> Vec<(String, Symbol)> {
        self.with_reader(|conn| on::symbols_named(conn, name, SYMBOLS))
    }

    fn members(&self, container: &str, name: &str) -> Vec<(String, Symbol)> {
        self.with_reader(|conn| on::members(conn, container, name, SYMBOLS))
    }

    fn mod_declarations(&self, name: &str, file_name: &str) -> Vec<(String, Symbol)> {
        self.with_reader(|conn| on::mod_declarations(conn, name, file_name))
    }
}

/// Most symbols one lookup by name returns.
const SYMBOLS: usize = 256;

impl ArchiveWorkspace<'_> {
    fn read_file(&self, path: &str) -> Option<Rope> {
        let abs = self.abs(path);
        if is_secret_file(&abs) || !abs.is_file() {
            return None;
        }
        // Manifests at the root are read even though they are not source files, unless the
        // configuration's `ignore` patterns name them.
        let manifest = matches!(path, "Cargo.toml" | "package.json");
        let refused = if manifest {
            self.config.ignore.matches(path, false)
        } else {
            !admitted(self.archive.root(), &abs, &self.config)
        };
        if refused {
            return None;
        }
        let text = std::fs::read_to_string(abs).ok()?;
        Some(Rope::from_str(&text))
    }
}
