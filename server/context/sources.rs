//! The workspace as assembly sees it, backed by the archive and the files (or the editor's
//! buffers, when given). This is the I/O edge of context assembly; files that the ignore rules
//! leave out, or whose names say they hold secrets, are never read.

use std::collections::HashMap;
use std::path::PathBuf;

use ropey::Rope;

use super::assemble::Workspace;
use super::redact::is_secret_file;
use crate::archive::{Archive, IndexConfig, Located, SearchQuery, admitted};

pub struct ArchiveWorkspace<'a> {
    pub archive: &'a Archive,
    pub config: IndexConfig,
    /// Open documents' text by workspace-relative path: used instead of the file on disk.
    pub buffers: HashMap<String, Rope>,
}

impl ArchiveWorkspace<'_> {
    fn abs(&self, path: &str) -> PathBuf {
        self.archive.root().join(path)
    }
}

impl Workspace for ArchiveWorkspace<'_> {
    fn definitions(&self, name: &str) -> Vec<Located> {
        self.archive.definitions(name, 16).unwrap_or_default()
    }

    fn outline(&self, path: &str) -> Vec<Located> {
        self.archive.outline(path).unwrap_or_default()
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
        let abs = self.abs(path);
        if is_secret_file(&abs) || !abs.is_file() {
            return None;
        }
        // Manifests at the root are read even though they are not source files.
        let manifest = matches!(path, "Cargo.toml" | "package.json");
        if !manifest && !admitted(self.archive.root(), &abs, &self.config) {
            return None;
        }
        let text = std::fs::read_to_string(abs).ok()?;
        Some(Rope::from_str(&text))
    }

    fn folders(&self) -> Vec<(String, usize)> {
        self.archive.top_folders().unwrap_or_default()
    }
}
