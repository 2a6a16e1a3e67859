//! The chunks inside one top-level node, computed once and reused for as long as the node is
//! unchanged. Offsets in a [`NodeRecord`] are relative to the node's start, so an edit before
//! the node only moves it.

use std::cmp::Reverse;
use std::ops::Range;
use std::sync::Arc;

use ropey::RopeSlice;
use tree_sitter::{Node, QueryCursor, StreamingIterator};

use super::query::ChunkQuery;
use super::{ChunkConfig, ChunkKind};
use crate::syntax::{Language, hash_bytes, hash_range, pieces, text_of};

/// What the chunker remembers of one top-level node.
#[derive(Clone, Debug)]
pub struct NodeRecord {
    /// The node's span and kind, to recognise it in the next tree.
    pub start: usize,
    pub end: usize,
    pub kind_id: u16,
    /// A comment, attribute or decorator that may attach to the item below it.
    pub attachable: bool,
    pub import: bool,
    pub comment: bool,
    /// The node is or holds a syntax error: no segment may begin right after it.
    pub error: bool,
    /// Set when the node is itself a chunk; holds it and the chunks inside it.
    pub item: Option<Arc<[RelChunk]>>,
}

/// A chunk with offsets relative to its top-level node. The first chunk of an item is the
/// item itself, followed by its descendants in pre-order.
#[derive(Clone, Debug)]
pub struct RelChunk {
    pub kind: ChunkKind,
    pub name: Arc<str>,
    pub path: Arc<str>,
    pub parent: Option<usize>,
    pub range: Range<usize>,
    pub signature: Range<usize>,
    pub name_range: Range<usize>,
    pub hash: u64,
    /// Hash of (kind, path): chunks with equal keys are told apart by an ordinal.
    pub key: u64,
}

impl RelChunk {
    pub fn new(
        kind: ChunkKind,
        name: Arc<str>,
        path: Arc<str>,
        parent: Option<usize>,
        range: Range<usize>,
        signature: Range<usize>,
        hash: u64,
    ) -> RelChunk {
        let key = chunk_key(kind, &path);
        RelChunk {
            kind,
            name,
            path,
            parent,
            name_range: signature.start..signature.start,
            range,
            signature,
            hash,
            key,
        }
    }
}

/// Containers nested deeper than this have their inner items kept in their text.
const MAX_NESTING: usize = 48;

pub(crate) fn chunk_key(kind: ChunkKind, path: &str) -> u64 {
    hash_bytes(format!("{}:{path}", kind.as_str()).as_bytes())
}

pub(crate) fn chunk_id(kind: ChunkKind, path: &str, ordinal: u32) -> Arc<str> {
    // Built in a reused buffer and copied once: every chunk of a document gets its id each time
    // a pack lists them (ten thousand at 2.5 MB), and `format!` into a `String` then into an
    // `Arc` cost two allocations each.
    thread_local! {
        static BUFFER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUFFER.with_borrow_mut(|id| {
        id.clear();
        id.push_str(kind.as_str());
        id.push(':');
        id.push_str(path);
        id.push('#');
        let _ = std::fmt::Write::write_fmt(id, format_args!("{ordinal}"));
        Arc::from(id.as_str())
    })
}

/// One `@chunk.*` match.
struct Found<'t> {
    node: Node<'t>,
    /// The node with its wrappers (`export …`) and attached comments.
    outer: Range<usize>,
    /// The node with its wrappers, without attached comments.
    decl_start: usize,
    kind: ChunkKind,
    pattern: usize,
    name: Option<Node<'t>>,
    name_trait: Option<Node<'t>>,
    body: Option<Node<'t>>,
}

pub(crate) struct Extractor<'a> {
    pub language: Language,
    pub query: &'a ChunkQuery,
    pub config: &'a ChunkConfig,
    pub text: RopeSlice<'a>,
    pub cursor: &'a mut QueryCursor,
}

impl Extractor<'_> {
    pub fn record(&mut self, top: Node<'_>) -> NodeRecord {
        let kind = top.kind();
        let attachable =
            self.language.attached_kinds().contains(&kind) && !self.inner_doc_at(top.start_byte());
        NodeRecord {
            start: top.start_byte(),
            end: top.end_byte(),
            kind_id: top.kind_id(),
            attachable,
            import: self.language.import_kinds().contains(&kind),
            comment: kind.contains("comment"),
            // A bare token at the top level is a piece of a construct that did not parse.
            error: top.has_error() || top.is_missing() || !top.is_named(),
            item: self.item(top),
        }
    }

    /// Whether the comment at `at` is an inner doc comment (`//!`), which documents what holds it,
    /// not what follows.
    fn inner_doc_at(&self, at: usize) -> bool {
        let mut head = [0u8; 3];
        let mut n = 0;
        for byte in pieces(self.text, at..at + head.len()).flat_map(str::bytes) {
            head[n] = byte;
            n += 1;
        }
        self.language.is_inner_doc(&head[..n])
    }

    fn item(&mut self, top: Node<'_>) -> Option<Arc<[RelChunk]>> {
        let mut found = self.matches(top);
        // The item chunk is the one whose wrapped extent is the whole top-level node.
        let top_range = top.byte_range();
        if !found.iter().any(|f| f.outer == top_range) {
            return None;
        }
        found.sort_by_key(|f| (f.outer.start, Reverse(f.outer.end), f.pattern));
        found.dedup_by_key(|f| f.outer.clone());

        let base = top_range.start;
        let sep = self.language.path_separator();
        let mut chunks: Vec<RelChunk> = Vec::new();
        // Open chunks enclosing the current position: (index in `chunks`, end).
        let mut open: Vec<(usize, usize)> = Vec::new();
        let mut bodies: Vec<Option<Range<usize>>> = Vec::new();
        for f in &found {
            while open.last().is_some_and(|&(_, end)| end <= f.outer.start) {
                open.pop();
            }
            let parent = open.last().map(|&(i, _)| i);
            match parent {
                None if !chunks.is_empty() => continue, // outside the item: not ours
                Some(p) if !chunks[p].kind.is_container() => continue, // inside a function body
                _ => {}
            }
            let parent_kind = parent.map(|p| chunks[p].kind);
            let kind = match (f.kind, parent_kind) {
                (
                    ChunkKind::Function,
                    Some(
                        ChunkKind::Impl
                        | ChunkKind::Trait
                        | ChunkKind::Class
                        | ChunkKind::Interface,
                    ),
                ) => ChunkKind::Method,
                (kind, _) => kind,
            };
            let name: Arc<str> = Arc::from(self.name(f));
            let path: Arc<str> = match parent {
                Some(p) => Arc::from(format!("{}{sep}{name}", chunks[p].path)),
                None => name.clone(),
            };
            let signature_end = f.body.map_or(f.outer.end, |b| b.start_byte());
            let signature = f.decl_start..self.trim_end(f.decl_start, signature_end);
            let hash = hash_range(self.text, f.outer.clone());
            open.push((chunks.len(), f.outer.end));
            let mut chunk = RelChunk::new(
                kind,
                name,
                path,
                parent,
                f.outer.start - base..f.outer.end - base,
                signature.start - base..signature.end - base,
                hash,
            );
            if let Some(name) = f.name {
                let start = f.name_trait.map_or(name.start_byte(), |t| t.start_byte());
                chunk.name_range = start.min(name.start_byte()) - base..name.end_byte() - base;
            }
            chunks.push(chunk);
            bodies.push(f.body.map(|b| b.byte_range()));
        }
        Some(self.split_oversized(chunks, &bodies, top, base).into())
    }

    /// All `@chunk.*` matches inside `top`, with wrappers and attached comments applied.
    /// All `@chunk.*` matches inside `top`, with wrappers and attached comments applied. Only
    /// `top`, wrappers and the bodies of containers are searched: a function's body never is.
    fn matches<'t>(&mut self, top: Node<'t>) -> Vec<Found<'t>> {
        let mut found: Vec<Found<'t>> = Vec::new();
        self.collect(top, &mut found);
        for f in &mut found {
            let mut outer = f.node;
            while outer.id() != top.id() {
                match outer.parent() {
                    Some(p) if self.language.wrapper_kinds().contains(&p.kind()) => outer = p,
                    _ => break,
                }
            }
            f.decl_start = outer.start_byte();
            let start = if outer.id() == top.id() {
                // Top-level attachments are the chunker's business: they are siblings of `top`.
                outer.start_byte()
            } else {
                self.attached_start(outer)
            };
            f.outer = start..outer.end_byte();
        }
        found
    }

    /// Adds the chunk `node` is, if it is one, and the chunks in the bodies of containers and
    /// wrappers below it, down to [`MAX_NESTING`] levels (iteratively: nesting in a file must not
    /// exhaust the stack).
    fn collect<'t>(&mut self, node: Node<'t>, found: &mut Vec<Found<'t>>) {
        let mut pending = vec![(node, 0usize)];
        while let Some((node, depth)) = pending.pop() {
            let inside = match self.match_node(node) {
                Some(f) => {
                    let body = f.body.filter(|_| f.kind.is_container());
                    found.push(f);
                    body
                }
                None if self.language.wrapper_kinds().contains(&node.kind()) => Some(node),
                None => None,
            };
            if let Some(inside) = inside.filter(|_| depth < MAX_NESTING) {
                let mut walker = inside.walk();
                let children: Vec<Node<'t>> = inside.named_children(&mut walker).collect();
                pending.extend(children.into_iter().map(|child| (child, depth + 1)));
            }
        }
    }

    /// The chunk pattern `node` itself matches (the first in the query file), if any.
    fn match_node<'t>(&mut self, node: Node<'t>) -> Option<Found<'t>> {
        let query = self.query;
        let text = self.text;
        let provider = |n: Node<'_>| {
            let slice = text.byte_slice(n.byte_range());
            slice
                .chunks()
                .map(str::as_bytes)
                .collect::<Vec<_>>()
                .into_iter()
        };
        self.cursor.set_byte_range(node.byte_range());
        self.cursor.set_max_start_depth(Some(0));
        let mut best: Option<Found<'t>> = None;
        let mut matches = self.cursor.matches(&query.query, node, provider);
        while let Some(m) = matches.next() {
            if best.as_ref().is_some_and(|b| b.pattern <= m.pattern_index) {
                continue;
            }
            let mut chunk = None;
            let (mut name, mut name_trait, mut body) = (None, None, None);
            for capture in m.captures() {
                let index = capture.index;
                if let Some(Some(kind)) = query.kinds.get(index as usize) {
                    chunk = Some((capture.node, *kind));
                } else if Some(index) == query.name {
                    name = Some(capture.node);
                } else if Some(index) == query.name_trait {
                    name_trait = Some(capture.node);
                } else if Some(index) == query.body {
                    body = Some(capture.node);
                }
            }
            let Some((chunk_node, kind)) = chunk.filter(|(n, _)| n.id() == node.id()) else {
                continue;
            };
            best = Some(Found {
                node: chunk_node,
                outer: chunk_node.byte_range(),
                decl_start: chunk_node.start_byte(),
                kind,
                pattern: m.pattern_index,
                name,
                name_trait,
                body,
            });
        }
        best
    }

    /// Where the comments, attributes and decorators directly above `node` begin.
    fn attached_start(&self, node: Node<'_>) -> usize {
        let mut start = node.start_byte();
        let mut next = node;
        while let Some(prev) = next.prev_sibling() {
            if !self.language.attached_kinds().contains(&prev.kind())
                || self.inner_doc_at(prev.start_byte())
                || self.blank_line_between(prev.end_byte(), next.start_byte())
            {
                break;
            }
            start = prev.start_byte();
            next = prev;
        }
        start
    }

    pub fn blank_line_between(&self, end: usize, start: usize) -> bool {
        blank_line_between(self.text, end, start)
    }

    fn name(&self, f: &Found<'_>) -> String {
        let text = |n: Node<'_>| normalize_name(&text_of(self.text, n.byte_range()));
        match (f.name, f.name_trait) {
            (Some(ty), Some(tr)) => format!("{} for {}", text(tr), text(ty)),
            (Some(n), None) => text(n),
            _ => String::from("<anonymous>"),
        }
    }

    fn trim_end(&self, start: usize, mut end: usize) -> usize {
        let mut bytes = self.text.bytes_at(end.min(self.text.len_bytes()));
        while end > start {
            match bytes.prev() {
                Some(b) if b.is_ascii_whitespace() => end -= 1,
                _ => break,
            }
        }
        end
    }

    /// Cuts every leaf chunk larger than the limit into parts at its body's children.
    fn split_oversized(
        &self,
        chunks: Vec<RelChunk>,
        bodies: &[Option<Range<usize>>],
        top: Node<'_>,
        base: usize,
    ) -> Vec<RelChunk> {
        let max = self.config.max_chunk_bytes;
        let has_children: Vec<bool> = {
            let mut v = vec![false; chunks.len()];
            for c in &chunks {
                if let Some(p) = c.parent {
                    v[p] = true;
                }
            }
            v
        };
        if chunks
            .iter()
            .enumerate()
            .all(|(i, c)| has_children[i] || c.range.len() <= max)
        {
            return chunks;
        }
        let mut out = Vec::with_capacity(chunks.len());
        let mut remap = vec![0usize; chunks.len()];
        for (i, mut chunk) in chunks.into_iter().enumerate() {
            remap[i] = out.len();
            chunk.parent = chunk.parent.map(|p| remap[p]);
            let oversized = !has_children[i] && chunk.range.len() > max;
            let body = bodies[i].clone();
            let (path, name) = (chunk.path.clone(), chunk.name.clone());
            out.push(chunk);
            let Some(body) = body.filter(|_| oversized) else {
                continue;
            };
            let parent = out.len() - 1;
            let Some(body_node) = top.descendant_for_byte_range(body.start + base, body.end + base)
            else {
                continue;
            };
            for part in self.parts(body_node, max) {
                let hash = hash_range(self.text, part.clone());
                out.push(RelChunk::new(
                    ChunkKind::Part,
                    name.clone(),
                    path.clone(),
                    Some(parent),
                    part.start - base..part.end - base,
                    part.start - base..part.start - base,
                    hash,
                ));
            }
        }
        out
    }

    /// Consecutive runs of `body`'s named children, each run at most `max` bytes when it can be.
    fn parts(&self, body: Node<'_>, max: usize) -> Vec<Range<usize>> {
        let mut parts: Vec<Range<usize>> = Vec::new();
        let mut walker = body.walk();
        for child in body.named_children(&mut walker) {
            let r = child.byte_range();
            match parts.last_mut() {
                Some(last) if r.end - last.start <= max => last.end = r.end,
                _ => parts.push(r),
            }
        }
        if parts.len() < 2 { Vec::new() } else { parts }
    }
}

/// Whether the text between two offsets holds an empty line (a doc comment above such a gap
/// does not belong to the item below it).
pub fn blank_line_between(text: RopeSlice<'_>, end: usize, start: usize) -> bool {
    if start <= end {
        return false;
    }
    // Line comments end with their newline in some grammars.
    let end = if end > 0 && text.byte(end - 1) == b'\n' {
        end - 1
    } else {
        end
    };
    text.byte_to_line(start) >= text.byte_to_line(end) + 2
}

/// One line, single spaces, at most 120 characters.
fn normalize_name(raw: &str) -> String {
    let mut name = String::with_capacity(raw.len().min(128));
    for word in raw.split_whitespace() {
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(word);
    }
    if name.chars().count() > 120 {
        name = name.chars().take(119).collect::<String>() + "…";
    }
    name
}
