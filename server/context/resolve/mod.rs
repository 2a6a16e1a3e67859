//! Resolution: what the code at the cursor uses, tied to the definitions it names. For each
//! reference in the focus chunks — the identifier under the cursor first, then the calls, paths
//! and types in the order they are written — it follows the language's rules through the symbol
//! tables of the workspace (`use` trees and module files for Rust, imports, barrels and
//! `tsconfig.json` paths for TypeScript and JavaScript) and says which definitions the reference
//! names, that it names something outside the workspace, or that it could not be resolved.
//! Pure: a function of the document, the archive's symbol tables and the files it reads through
//! [`Workspace`]; deterministic, no type checker, no network. It ranks and renders nothing.

mod rust;
mod typescript;

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use super::assemble::{Request, Workspace};
use crate::archive::symbols::{FileFacts, Symbol, SymbolKind, facts_of_tree, parse, parse_from};
use crate::chunks::{Chunk, ChunkKind};
use crate::syntax::Language;

/// A definition: a symbol of a workspace file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Def {
    pub(super) path: String,
    pub(super) symbol: Symbol,
}

/// What a reference names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// These definitions of the workspace.
    Defs(Vec<Def>),
    /// Something outside the workspace (a dependency, the standard library, a global).
    External,
    /// Nothing resolution could tie it to.
    Unresolved,
}

/// A reference in the focus chunks and what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Use {
    /// The name as written (the last segment of a path, a method's name).
    pub(super) name: String,
    /// Where it is written, in the document.
    pub(super) at: Range<usize>,
    pub(super) outcome: Outcome,
}

/// Documents larger than this are not parsed again for resolution.
const MAX_RESOLVED_BYTES: usize = 1024 * 1024;

/// The references of the chunks `at` and what each names, the one under the cursor first, then
/// in the order they are written.
/// `chunks` are the document's around the selection, `at` indices into them.
pub(super) fn uses(
    request: &Request<'_>,
    chunks: &[Chunk],
    workspace: &dyn Workspace,
    at: &[usize],
) -> Vec<Use> {
    let Some(language) = Language::from_path(std::path::Path::new(request.path)) else {
        return Vec::new();
    };
    if request.text.len_bytes() > MAX_RESOLVED_BYTES || at.is_empty() {
        return Vec::new();
    }
    let text = request.text.to_string();
    let Some(tree) = parse_again(request.path, &text, language) else {
        return Vec::new();
    };
    let own = Arc::new(facts_of_tree(&text, &tree, language));
    let files = Files::new(workspace, request.path, own);
    let cursor = request.selection.start;
    let ranges: Vec<Range<usize>> = at
        .iter()
        .map(|&i| {
            let c = &chunks[i];
            match c.kind {
                // A run of items (or lines) is no one definition: what the cursor is in is.
                ChunkKind::Group | ChunkKind::Part | ChunkKind::Window
                    if request.selection.is_empty() =>
                {
                    enclosing_item(&tree, cursor, &c.range).unwrap_or_else(|| c.range.clone())
                }
                _ => c.range.clone(),
            }
        })
        .collect();
    let mut uses = match language {
        Language::Rust => rust::uses(&files, &text, &tree, &ranges),
        Language::TypeScript | Language::Tsx | Language::JavaScript => {
            typescript::uses(&files, &text, &tree, &ranges)
        }
    };
    let under = |u: &Use| !(u.at.start <= cursor && cursor <= u.at.end);
    uses.sort_by_key(|u| (under(u), u.at.start, u.at.end));
    uses
}

/// A whole-file parse resolution made, and the text it parsed.
struct Kept {
    path: String,
    language: Language,
    text: String,
    tree: tree_sitter::Tree,
}

/// The last parses resolution made, newest first, of documents of at most [`KEPT_BYTES`]
/// together: the next resolution in the same document parses again from its last parse, the
/// edits since found by comparing the texts. Parsed from nothing, a 100 KB file took 15 ms, on
/// every completion prompt and context pack in it. Its tree is 5.9 MB of heap: the parses are
/// kept while the user works and dropped when the server goes idle.
static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

fn drop_kept() {
    KEPT.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The most text (and trees of it, several times its size) kept for parsing again.
const KEPT_BYTES: usize = 256 * 1024;

/// The parse of `text`, the document at `path`, from the last one kept for it if any.
fn parse_again(path: &str, text: &str, language: Language) -> Option<tree_sitter::Tree> {
    let kept = {
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        let at = kept
            .iter()
            .position(|k| k.path == path && k.language == language);
        at.map(|at| kept.remove(at))
    };
    let tree = match kept {
        Some(k) if k.text == text => k.tree,
        Some(Kept {
            text: before,
            mut tree,
            ..
        }) => {
            tree.edit(&edit_between(&before, text));
            parse_from(text, language, Some(&tree))?
        }
        None => parse(text, language)?,
    };
    if text.len() <= KEPT_BYTES {
        crate::resources::memory::when_idle(drop_kept);
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(
            0,
            Kept {
                path: path.to_owned(),
                language,
                text: text.to_owned(),
                tree: tree.clone(),
            },
        );
        let mut total = 0;
        kept.retain(|k| {
            total += k.text.len();
            total <= KEPT_BYTES
        });
    }
    Some(tree)
}

/// The edit that makes `before` into `after`: the span between what they share at the start and
/// at the end, on character boundaries.
fn edit_between(before: &str, after: &str) -> tree_sitter::InputEdit {
    let (old, new) = (before.as_bytes(), after.as_bytes());
    let mut start = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    while !after.is_char_boundary(start) {
        start -= 1;
    }
    let most = old.len().min(new.len()) - start;
    let mut shared_end = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(most)
        .take_while(|(a, b)| a == b)
        .count();
    while !after.is_char_boundary(new.len() - shared_end) {
        shared_end -= 1;
    }
    let point = |text: &str, at: usize| {
        let before = &text[..at];
        let row = before.matches('\n').count();
        let column = at - before.rfind('\n').map_or(0, |i| i + 1);
        tree_sitter::Point { row, column }
    };
    let (old_end, new_end) = (old.len() - shared_end, new.len() - shared_end);
    tree_sitter::InputEdit {
        start_byte: start,
        old_end_byte: old_end,
        new_end_byte: new_end,
        start_position: point(before, start),
        old_end_position: point(before, old_end),
        new_end_position: point(after, new_end),
    }
}

/// The symbol tables resolution reads: the document's own, from its current text, and the
/// workspace's for every other file (the archive's rows of the document are left out: they may
/// be older than its text). Lookups are remembered for the resolution.
pub(super) struct Files<'a> {
    workspace: &'a dyn Workspace,
    path: &'a str,
    own: Arc<FileFacts>,
    texts: Mutex<BTreeMap<String, Option<String>>>,
    members: Mutex<HashMap<(String, String), Vec<Def>>>,
}

impl<'a> Files<'a> {
    fn new(workspace: &'a dyn Workspace, path: &'a str, own: Arc<FileFacts>) -> Files<'a> {
        Files {
            workspace,
            path,
            own,
            texts: Mutex::new(BTreeMap::new()),
            members: Mutex::new(HashMap::new()),
        }
    }

    /// The document's workspace-relative path.
    pub(super) fn current(&self) -> &str {
        self.path
    }

    pub(super) fn facts(&self, path: &str) -> Option<Arc<FileFacts>> {
        if path == self.path {
            return Some(self.own.clone());
        }
        self.workspace.facts(path)
    }

    /// Whether the workspace holds a file of a language Strata parses at `path`.
    pub(super) fn exists(&self, path: &str) -> bool {
        self.facts(path).is_some()
    }

    /// The text of a file that is not code (a `tsconfig.json`), read once.
    pub(super) fn text(&self, path: &str) -> Option<String> {
        let mut texts = self.texts.lock().unwrap_or_else(|e| e.into_inner());
        texts
            .entry(path.to_string())
            .or_insert_with(|| self.workspace.text(path).map(|t| t.to_string()))
            .clone()
    }

    /// The symbols of `container` named `name` (all for an empty name), the document's own
    /// taken from its text.
    pub(super) fn members(&self, container: &str, name: &str) -> Vec<Def> {
        let key = (container.to_string(), name.to_string());
        if let Some(known) = self
            .members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return known.clone();
        }
        let found = self.merge(self.workspace.members(container, name), |s| {
            s.container == container && (name.is_empty() || s.name == name)
        });
        self.members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, found.clone());
        found
    }

    /// Symbols named `name` anywhere.
    pub(super) fn named(&self, name: &str) -> Vec<Def> {
        self.merge(self.workspace.symbols_named(name), |s| s.name == name)
    }

    /// Rust `mod` declarations that may declare the file `file_name` as module `name`.
    pub(super) fn mod_declarations(&self, name: &str, file_name: &str) -> Vec<Def> {
        self.merge(self.workspace.mod_declarations(name, file_name), |s| {
            s.kind == SymbolKind::ModFile
                && (s.name == name
                    || (!s.detail.is_empty()
                        && (s.detail == file_name || s.detail.ends_with(&format!("/{file_name}")))))
        })
    }

    /// The workspace's answer without the document's archived rows, with its own that `keep`
    /// keeps, in path order.
    fn merge(&self, found: Vec<(String, Symbol)>, keep: impl Fn(&Symbol) -> bool) -> Vec<Def> {
        let mut out: Vec<Def> = found
            .into_iter()
            .filter(|(path, _)| path != self.path)
            .map(|(path, symbol)| Def { path, symbol })
            .collect();
        out.extend(self.own.symbols.iter().filter(|s| keep(s)).map(|s| Def {
            path: self.path.to_string(),
            symbol: s.clone(),
        }));
        out.sort_by(|a, b| {
            (&a.path, a.symbol.range.start, a.symbol.name_start).cmp(&(
                &b.path,
                b.symbol.range.start,
                b.symbol.name_start,
            ))
        });
        out
    }
}

/// The node a focus chunk is: the smallest node over its range, or, when the range also holds
/// the comments and attributes above an item, that item.
pub(super) fn focus_node<'t>(
    tree: &'t tree_sitter::Tree,
    range: &Range<usize>,
) -> Option<tree_sitter::Node<'t>> {
    let node = tree
        .root_node()
        .descendant_for_byte_range(range.start, range.end.max(range.start))?;
    if node.byte_range() == *range {
        return Some(node);
    }
    let mut cursor = node.walk();
    let inside: Vec<tree_sitter::Node<'t>> = node
        .named_children(&mut cursor)
        .filter(|c| range.start <= c.start_byte() && c.end_byte() <= range.end)
        .collect();
    match inside.last() {
        Some(last) if last.end_byte() == range.end && inside.len() < node.named_child_count() => {
            Some(*last)
        }
        _ => Some(node),
    }
}

/// Kinds of node that are one item of their own (a function, a type, a declaration).
const ITEMS: &[&str] = &[
    "function_item",
    "impl_item",
    "struct_item",
    "enum_item",
    "trait_item",
    "const_item",
    "static_item",
    "function_declaration",
    "generator_function_declaration",
    "method_definition",
    "class_declaration",
    "interface_declaration",
    "type_alias_declaration",
    "enum_declaration",
    "lexical_declaration",
];

/// The outermost item around `cursor` inside `within`, but not `within` itself.
fn enclosing_item(
    tree: &tree_sitter::Tree,
    cursor: usize,
    within: &Range<usize>,
) -> Option<Range<usize>> {
    let mut node = tree.root_node().descendant_for_byte_range(cursor, cursor)?;
    let mut found = None;
    loop {
        let r = node.byte_range();
        if r.start < within.start || r.end > within.end {
            break;
        }
        if ITEMS.contains(&node.kind()) {
            found = Some(r);
        }
        node = node.parent()?;
    }
    found
}

/// The folder of a `/`-separated path (empty at the root).
pub(super) fn dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// `base` joined with a relative path, `.` and `..` folded; `None` above the root.
pub(super) fn join(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The language family of a path: a definition is never taken from another family.
pub(super) fn family(path: &str) -> Option<u8> {
    match Language::from_path(std::path::Path::new(path))? {
        Language::Rust => Some(0),
        Language::TypeScript | Language::Tsx | Language::JavaScript => Some(1),
    }
}

#[cfg(test)]
mod tests;
