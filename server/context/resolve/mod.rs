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
use crate::archive::symbols::{FileFacts, Symbol, SymbolKind, facts_of_tree, parse};
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
    let segments = Segments::of(request, language);
    let own = Arc::new(segments.facts());
    let files = Files::new(workspace, request.path, own);
    let cursor = request.selection.start;
    // The focus chunks by the segment they lie in (a chunk never spans two).
    let mut focus: BTreeMap<usize, Vec<&Chunk>> = BTreeMap::new();
    for &i in at {
        let c = &chunks[i];
        focus
            .entry(segments.holding(c.range.start))
            .or_default()
            .push(c);
    }
    let mut uses = Vec::new();
    for (s, focus) in focus {
        let Some(piece) = segments.parsed(s) else {
            continue;
        };
        let base = piece.start;
        let ranges: Vec<Range<usize>> = focus
            .iter()
            .map(|c| {
                let local = c.range.start - base..c.range.end - base;
                match c.kind {
                    // A run of items (or lines) is no one definition: what the cursor is in is.
                    ChunkKind::Group | ChunkKind::Part | ChunkKind::Window
                        if request.selection.is_empty() && cursor >= base =>
                    {
                        enclosing_item(&piece.tree, cursor - base, &local).unwrap_or(local)
                    }
                    _ => local,
                }
            })
            .collect();
        let found = match language {
            Language::Rust => rust::uses(&files, &piece.text, &piece.tree, &ranges),
            Language::TypeScript | Language::Tsx | Language::JavaScript => {
                typescript::uses(&files, &piece.text, &piece.tree, base, &ranges)
            }
        };
        uses.extend(found.into_iter().map(|mut u| {
            u.at = u.at.start + base..u.at.end + base;
            u
        }));
    }
    let under = |u: &Use| !(u.at.start <= cursor && cursor <= u.at.end);
    uses.sort_by_key(|u| (under(u), u.at.start, u.at.end));
    uses
}

/// The document as its parse cut it into segments: items never span two, so each segment's
/// tree says what the whole file's would about the items in it. Resolution reads the trees the
/// parse still holds (the segments edited last, where the cursor usually is) and parses the
/// others again, a segment at a time.
struct Segments<'r> {
    request: &'r Request<'r>,
    language: Language,
    starts: Vec<usize>,
}

/// One segment's text and tree, in the segment's own offsets.
struct Piece {
    start: usize,
    text: String,
    tree: tree_sitter::Tree,
}

/// A segment's own symbol tables, in its own offsets, kept with its chunk list
/// ([`crate::chunks::ChunkList::derived`]): true until the segment is parsed again.
struct SegmentFacts(FileFacts);

impl<'r> Segments<'r> {
    fn of(request: &'r Request<'r>, language: Language) -> Segments<'r> {
        let mut starts = request.chunks.segment_starts();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        Segments {
            request,
            language,
            starts,
        }
    }

    /// The segment that holds byte `at`.
    fn holding(&self, at: usize) -> usize {
        self.starts.partition_point(|&s| s <= at).saturating_sub(1)
    }

    fn range(&self, s: usize) -> Range<usize> {
        let end = self.starts.get(s + 1).copied();
        self.starts[s]..end.unwrap_or(self.request.text.len_bytes())
    }

    /// Segment `s`, with the tree the parse holds for it or a new parse of its text.
    fn parsed(&self, s: usize) -> Option<Piece> {
        let range = self.range(s);
        let text = self.request.text.byte_slice(range.clone()).to_string();
        let held = self.request.trees.iter().find(|(start, tree)| {
            *start == range.start && tree.root_node().end_byte() == text.len()
        });
        let tree = match held {
            Some((_, tree)) => tree.clone(),
            None => parse(&text, self.language)?,
        };
        Some(Piece {
            start: range.start,
            text,
            tree,
        })
    }

    /// The document's own symbol tables, in document offsets: each segment's, made once per parse
    /// of it.
    fn facts(&self) -> FileFacts {
        let lists = self.request.chunks.lists();
        let mut all = FileFacts::default();
        for s in 0..self.starts.len() {
            let own = |_: &[crate::chunks::RelChunk]| {
                SegmentFacts(
                    self.parsed(s)
                        .map(|p| facts_of_tree(&p.text, &p.tree, self.language))
                        .unwrap_or_default(),
                )
            };
            let start = self.starts[s];
            let facts = match lists.binary_search_by_key(&start, |(at, _)| *at) {
                Ok(i) => lists[i].1.derived(|_: &SegmentFacts| true, own),
                Err(_) => Arc::new(own(&[])),
            };
            let rows = self.request.text.byte_to_line(start) as u32;
            all.symbols
                .extend(facts.0.symbols.iter().map(|symbol| Symbol {
                    range: symbol.range.start + start..symbol.range.end + start,
                    name_start: symbol.name_start + start,
                    signature_end: symbol.signature_end + start,
                    lines: (symbol.lines.0 + rows, symbol.lines.1 + rows),
                    ..symbol.clone()
                }));
            all.imports.extend(facts.0.imports.iter().cloned());
        }
        all
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
