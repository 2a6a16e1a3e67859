//! Context packs for a place in an open document: the one path `strata/context`, `strata context`,
//! completion prompts and agents take from (document, selection, question) to a `ContextPack`, over
//! the open buffers and the archive. Blocking: callers run it on the blocking pool. Documents are
//! named by their store key; the session's `path_of` says which file a key is.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Session;
use crate::context::{
    ArchiveWorkspace, Budgets, ContextPack, Diagnostic, Message, NoWorkspace, RecentChunk, Request,
    Tokenizer, assemble, is_secret_file,
};
use crate::documents::Parsed;

/// What a pack is for: the place, the question, what the editor reports there, the budgets, and
/// the conversation so far (chat).
#[derive(Default)]
pub struct Want<'a> {
    pub selection: Range<usize>,
    pub query: Option<&'a str>,
    pub diagnostics: &'a [Diagnostic],
    pub budgets: Budgets,
    pub conversation: &'a [Message],
    pub summary: Option<&'a str>,
    /// Token counts estimated, without reading the tokenizer's tables
    /// (`Tokenizer::estimating`): for prompts to models that count with a tokenizer of their own.
    pub estimate_tokens: bool,
}

/// An open document as the context sees it: relative path and latest parse.
type ResolvedDoc = (String, Arc<Parsed>);

impl Session {
    /// The workspace-relative path of a document (its URI when outside), and whether its text
    /// must stay on this machine (ignored, or a secrets file).
    pub fn locate(&self, key: &str) -> (String, bool) {
        let file = (self.path_of)(key);
        let inside = file
            .as_deref()
            .and_then(|path| workspace_path(self.root.as_deref(), path));
        let rel = match (&self.root, &inside) {
            (Some(root), Some(path)) => crate::archive::relative(root, path),
            _ => None,
        }
        .unwrap_or_else(|| key.to_string());
        let withheld = match (&self.root, &inside) {
            (Some(root), Some(path)) => {
                is_secret_file(path) || !crate::archive::admitted(root, path, &self.index)
            }
            _ => is_secret_file(file.as_deref().unwrap_or(Path::new(key))),
        };
        (rel, withheld)
    }

    /// The pack for `selection` (bytes) of `parsed`, and the document's relative path.
    pub fn pack(&self, key: &str, parsed: &Parsed, what: Want) -> (ContextPack, String) {
        let Want {
            selection,
            query,
            diagnostics,
            budgets,
            conversation,
            summary,
            estimate_tokens,
        } = what;
        let (rel, withheld) = self.locate(key);
        let recent = self.recent_chunks();
        let request = Request {
            path: &rel,
            text: &parsed.text,
            chunks: &parsed.chunks,
            trees: &parsed.trees,
            selection,
            query,
            diagnostics,
            messages: conversation,
            recent: &recent,
            summary,
            budgets,
            withheld,
        };
        let estimating;
        let tokenizer = if estimate_tokens {
            estimating = Tokenizer::estimating(self.tokenizer.encoding());
            &estimating
        } else {
            &*self.tokenizer
        };
        let mut pack = match self.archive.get() {
            Some(archive) => {
                let mut buffers = HashMap::new();
                buffers.insert(rel.clone(), parsed.text.clone());
                let workspace = ArchiveWorkspace::new(archive, self.index.clone(), buffers);
                assemble(&request, &workspace, tokenizer)
            }
            None => {
                let mut pack = assemble(&request, &NoWorkspace, tokenizer);
                pack.notes
                    .push("no archive: the pack holds this file only".into());
                pack
            }
        };
        if estimate_tokens {
            pack.notes
                .push("token counts are estimates: a third of the bytes".into());
        }
        (pack, rel)
    }

    /// Chunks edited recently across open documents (newest first, at most 8), for the working
    /// tier; documents that may not leave the machine are skipped.
    pub fn recent_chunks(&self) -> Vec<RecentChunk> {
        let Some(root) = self.root.clone() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut resolved: HashMap<Arc<str>, Option<ResolvedDoc>> = HashMap::new();
        for edit in self.store.recent_edits() {
            if out.len() >= 8 {
                break;
            }
            let doc = resolved.entry(edit.key.clone()).or_insert_with(|| {
                let path = workspace_path(Some(&root), &(self.path_of)(&edit.key)?)?;
                if is_secret_file(&path) || !crate::archive::admitted(&root, &path, &self.index) {
                    return None;
                }
                let rel = crate::archive::relative(&root, &path)?;
                let parsed = self.store.latest(&edit.key)?;
                Some((rel, parsed))
            });
            let Some((rel, parsed)) = doc else {
                continue;
            };
            let Some(c) = parsed
                .chunks
                .find(|_, c| c.kind == edit.kind && c.path == edit.path)
            else {
                continue;
            };
            let text = &parsed.text;
            let (first, last) = c.lines(text);
            out.push(RecentChunk {
                path: rel.clone(),
                lines: (first as u32, last as u32),
                chunk_id: c.id.to_string(),
                kind: c.kind.as_str().to_string(),
                name: c.path.to_string(),
                text: text.byte_slice(c.range.clone()).to_string(),
                signature: text
                    .byte_slice(c.range.start..c.signature.end.max(c.range.start))
                    .to_string(),
            });
        }
        out
    }
}

/// `path` if it lies inside `root` and has no `..`.
pub fn workspace_path(root: Option<&Path>, path: &Path) -> Option<PathBuf> {
    let root = root?;
    let plain = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::RootDir
        )
    });
    (plain && path.starts_with(root)).then(|| path.to_path_buf())
}
