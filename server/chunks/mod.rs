//! Semantic chunks: the units of code that the archive stores and the context tiers rank.
//!
//! A chunk is a function, method, impl, trait, struct, enum, class, interface, type alias or
//! module (defined by `queries/<lang>/chunks.scm`), with the doc comments and attributes above it;
//! a group of small top-level items (imports, consts); a part of an oversized chunk; or, for text
//! that has no grammar or does not parse, a window of lines. Chunks are pure values computed from
//! (text, tree, config): this module does no I/O and knows nothing of the LSP.

mod assemble;
mod extract;
mod query;
mod windows;

use std::any::Any;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::{Deref, Range};
use std::sync::{Arc, Mutex};

use ropey::Rope;
use serde::Serialize;

pub use assemble::{ChunkStats, Chunked, Chunker};
pub use extract::{NodeRecord, RelChunk, blank_line_between};
pub use query::{
    ChunkQuery, QueryError, chunk_query, compile_query, queries_fingerprint, query_source,
};
pub use windows::line_windows;

use crate::syntax::ParseLimits;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkKind {
    Function,
    Method,
    Impl,
    Trait,
    Struct,
    Enum,
    Union,
    Class,
    Interface,
    Type,
    Module,
    Macro,
    /// A run of small top-level items (imports, consts, statements).
    Group,
    /// A piece of a chunk too large to keep whole, cut at its children's boundaries.
    Part,
    /// A window of lines, for text without a grammar or that does not parse.
    Window,
}

impl ChunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkKind::Function => "function",
            ChunkKind::Method => "method",
            ChunkKind::Impl => "impl",
            ChunkKind::Trait => "trait",
            ChunkKind::Struct => "struct",
            ChunkKind::Enum => "enum",
            ChunkKind::Union => "union",
            ChunkKind::Class => "class",
            ChunkKind::Interface => "interface",
            ChunkKind::Type => "type",
            ChunkKind::Module => "module",
            ChunkKind::Macro => "macro",
            ChunkKind::Group => "group",
            ChunkKind::Part => "part",
            ChunkKind::Window => "window",
        }
    }

    /// The kind named by a `@chunk.<kind>` capture.
    pub fn from_capture(name: &str) -> Option<ChunkKind> {
        Some(match name {
            "function" => ChunkKind::Function,
            "method" => ChunkKind::Method,
            "impl" => ChunkKind::Impl,
            "trait" => ChunkKind::Trait,
            "struct" => ChunkKind::Struct,
            "enum" => ChunkKind::Enum,
            "union" => ChunkKind::Union,
            "class" => ChunkKind::Class,
            "interface" => ChunkKind::Interface,
            "type" => ChunkKind::Type,
            "module" => ChunkKind::Module,
            "macro" => ChunkKind::Macro,
            _ => return None,
        })
    }

    /// Containers hold child chunks; every other chunk keeps its inner items in its own text.
    pub fn is_container(self) -> bool {
        matches!(
            self,
            ChunkKind::Impl
                | ChunkKind::Trait
                | ChunkKind::Class
                | ChunkKind::Interface
                | ChunkKind::Module
        )
    }
}

/// One chunk of a document. Ranges are byte offsets into the document's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// `kind:qualified::path#ordinal`: unchanged by edits elsewhere in the file.
    pub id: Arc<str>,
    pub kind: ChunkKind,
    pub name: Arc<str>,
    /// The qualified name path (`Type::method`, `Class.method`).
    pub path: Arc<str>,
    /// Index of the enclosing chunk in the same list.
    pub parent: Option<usize>,
    /// The whole chunk, attached doc comments and attributes included.
    pub range: Range<usize>,
    /// The declaration up to its body (the whole chunk when it has no body).
    pub signature: Range<usize>,
    /// The name in the text (empty, at the start, for groups, parts and windows).
    pub name_range: Range<usize>,
    /// xxh3 of the chunk's text.
    pub hash: u64,
}

impl Chunk {
    /// The zero-based first and last line of the chunk.
    pub fn lines(&self, text: &Rope) -> (usize, usize) {
        let start = text.byte_to_line(self.range.start);
        let last = self.range.end.saturating_sub(1).max(self.range.start);
        (start, text.byte_to_line(last.min(text.len_bytes())))
    }
}

/// Sizes that shape chunking.
#[derive(Clone, Copy, Debug)]
pub struct ChunkConfig {
    /// A chunk larger than this without child chunks is cut into parts; groups stay under it.
    pub max_chunk_bytes: usize,
    /// Lines per window when the text gets line windows.
    pub window_lines: usize,
    pub parse: ParseLimits,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            max_chunk_bytes: 6 * 1024,
            window_lines: 60,
            parse: ParseLimits::default(),
        }
    }
}

/// One segment's chunks, relative to the segment's start, and what readers derived from them.
/// A segment that is re-chunked gets a new list, so whatever was derived from the old one (an
/// encoded answer, say) is kept exactly as long as it is true, and freed with the parse that
/// holds it.
pub struct ChunkList {
    chunks: Vec<RelChunk>,
    derived: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl ChunkList {
    pub fn shared(chunks: Vec<RelChunk>) -> Arc<ChunkList> {
        Arc::new(ChunkList {
            chunks,
            derived: Mutex::new(Vec::new()),
        })
    }

    /// The value of type `T` derived from this list: the one kept, if `usable` says it still
    /// serves, else a new one from `make`, kept in its place. Callers deriving the same type
    /// at once wait for each other rather than make it twice.
    pub fn derived<T: Any + Send + Sync>(
        &self,
        usable: impl Fn(&T) -> bool,
        make: impl FnOnce(&[RelChunk]) -> T,
    ) -> Arc<T> {
        let mut derived = self.derived.lock().unwrap_or_else(|e| e.into_inner());
        let kept = derived
            .iter()
            .position(|d| d.as_ref().downcast_ref::<T>().is_some());
        if let Some(i) = kept
            && let Ok(value) = derived[i].clone().downcast::<T>()
            && usable(&value)
        {
            return value;
        }
        let value = Arc::new(make(&self.chunks));
        match kept {
            Some(i) => derived[i] = value.clone(),
            None => derived.push(value.clone()),
        }
        value
    }
}

impl Deref for ChunkList {
    type Target = [RelChunk];
    fn deref(&self) -> &[RelChunk] {
        &self.chunks
    }
}

impl std::fmt::Debug for ChunkList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.chunks.fmt(f)
    }
}

/// The chunks of a document: one list per parsed segment, each relative to the segment's start.
/// Cheap to clone and to update segment by segment; [`DocChunks::to_vec`] gives the absolute
/// chunks with their ids numbered in document order.
#[derive(Clone, Debug, Default)]
pub struct DocChunks {
    segments: Vec<(usize, Arc<ChunkList>)>,
}

impl DocChunks {
    pub(crate) fn new(segments: Vec<(usize, Arc<ChunkList>)>) -> DocChunks {
        DocChunks { segments }
    }

    /// Each segment's start (a byte offset) and chunks, in document order.
    pub fn lists(&self) -> &[(usize, Arc<ChunkList>)] {
        &self.segments
    }

    pub fn len(&self) -> usize {
        self.segments.iter().map(|(_, c)| c.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|(_, c)| c.is_empty())
    }

    /// Where each segment starts (byte offsets).
    pub fn segment_starts(&self) -> Vec<usize> {
        self.segments.iter().map(|s| s.0).collect()
    }

    /// The number of segments the document is parsed in.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Every chunk, in document order, with absolute ranges, parents and ids.
    pub fn to_vec(&self) -> Vec<Chunk> {
        let mut ordinals = Ordinals::default();
        let mut out = Vec::with_capacity(self.len());
        for (base, chunks) in &self.segments {
            let first = out.len();
            for rel in chunks.iter() {
                out.push(absolute(rel, *base, first, ordinals.id(rel)));
            }
        }
        out
    }

    /// The chunks that `matches` (each given with the start byte of its segment), as
    /// [`DocChunks::to_vec`] gives them, without listing the others: a pack looks up the chunk
    /// that defines a name, or the few edited recently, among the 10,000 of a 3 MB file this
    /// way. Their `parent`s are indices into the whole list.
    pub fn filter(&self, matches: impl Fn(usize, &RelChunk) -> bool) -> Vec<Chunk> {
        let mut found = Vec::new();
        for (s, (base, chunks)) in self.segments.iter().enumerate() {
            found.extend(
                (0..chunks.len())
                    .filter(|&k| matches(*base, &chunks[k]))
                    .map(|k| (s, k)),
            );
        }
        self.listed(&found)
    }

    /// The first chunk that `matches`, as [`DocChunks::filter`] gives it.
    pub fn find(&self, matches: impl Fn(usize, &RelChunk) -> bool) -> Option<Chunk> {
        for (s, (base, chunks)) in self.segments.iter().enumerate() {
            if let Some(k) = chunks.iter().position(|c| matches(*base, c)) {
                return self.listed(&[(s, k)]).pop();
            }
        }
        None
    }

    /// The chunks of the segments that hold `bytes`, and of as many segments on either side as
    /// it takes to have `around` chunks on each side (fewer at the ends of the document), as
    /// [`DocChunks::to_vec`] gives them; their `parent`s are indices into this list (a chunk
    /// and its parent share a segment).
    pub fn around(&self, bytes: Range<usize>, around: usize) -> Vec<Chunk> {
        let segments = &self.segments;
        if segments.is_empty() {
            return Vec::new();
        }
        let holds = |at: usize| {
            segments
                .partition_point(|(base, _)| *base <= at)
                .saturating_sub(1)
        };
        let (mut first, mut last) = (holds(bytes.start), holds(bytes.end.max(bytes.start)));
        let mut before = 0;
        while first > 0 && before < around {
            first -= 1;
            before += segments[first].1.len();
        }
        let mut after = 0;
        while last + 1 < segments.len() && after < around {
            last += 1;
            after += segments[last].1.len();
        }
        let found: Vec<(usize, usize)> = (first..=last)
            .flat_map(|s| (0..segments[s].1.len()).map(move |k| (s, k)))
            .collect();
        let skipped: usize = segments[..first].iter().map(|(_, c)| c.len()).sum();
        let mut listed = self.listed(&found);
        for c in &mut listed {
            c.parent = c.parent.map(|p| p - skipped);
        }
        listed
    }

    /// The chunks at `found` (segment, index in it), in document order, numbered as in the whole
    /// list: the ordinals counted over the chunks before each, of its key only.
    fn listed(&self, found: &[(usize, usize)]) -> Vec<Chunk> {
        let Some(&(end, _)) = found.last() else {
            return Vec::new();
        };
        let mut seen: HashMap<u64, u32, BuildHasherDefault<KeyHasher>> = HashMap::default();
        for &(s, k) in found {
            seen.insert(self.segments[s].1[k].key, 0);
        }
        let mut out = Vec::with_capacity(found.len());
        let mut next = found.iter().peekable();
        let mut first = 0;
        for (s, (base, chunks)) in self.segments[..=end].iter().enumerate() {
            for (k, rel) in chunks.iter().enumerate() {
                let Some(count) = seen.get_mut(&rel.key) else {
                    continue;
                };
                if next.peek() == Some(&&(s, k)) {
                    next.next();
                    let id = extract::chunk_id(rel.kind, &rel.path, *count);
                    out.push(absolute(rel, *base, first, id));
                }
                *count += 1;
            }
            first += chunks.len();
        }
        out
    }
}

/// A segment's chunk in document terms: `base` is where the segment starts, `first` the index
/// of its first chunk in the document's list.
fn absolute(rel: &RelChunk, base: usize, first: usize, id: Arc<str>) -> Chunk {
    let shift = |r: &Range<usize>| r.start + base..r.end + base;
    Chunk {
        id,
        kind: rel.kind,
        name: rel.name.clone(),
        path: rel.path.clone(),
        parent: rel.parent.map(|p| p + first),
        range: shift(&rel.range),
        signature: shift(&rel.signature),
        name_range: shift(&rel.name_range),
        hash: rel.hash,
    }
}

/// Counts chunks per (kind, path) key to number ids in document order.
#[derive(Default)]
struct Ordinals {
    seen: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
}

impl Ordinals {
    fn id(&mut self, rel: &RelChunk) -> Arc<str> {
        let n = self.seen.entry(rel.key).or_insert(0);
        let ordinal = *n;
        *n += 1;
        extract::chunk_id(rel.kind, &rel.path, ordinal)
    }
}

/// The keys are already hashes.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The chunk table: one line per chunk, children indented under their parent.
pub fn render_table(chunks: &[Chunk], text: &Rope) -> String {
    use std::fmt::Write;
    let mut depth = vec![0usize; chunks.len()];
    let mut out = String::new();
    for (i, c) in chunks.iter().enumerate() {
        depth[i] = c.parent.map_or(0, |p| depth[p] + 1);
        let (first, last) = c.lines(text);
        let lines = format!("{}-{}", first + 1, last + 1);
        let _ = writeln!(
            out,
            "{lines:>11} {bytes:>7}  {kind:<9} {indent}{name}  {hash:016x}",
            bytes = c.range.len(),
            kind = c.kind.as_str(),
            indent = "  ".repeat(depth[i]),
            name = c.name,
            hash = c.hash,
        );
    }
    out
}

#[cfg(test)]
mod tests;
