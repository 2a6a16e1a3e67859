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

use std::ops::Range;
use std::sync::Arc;

use ropey::Rope;
use serde::Serialize;

pub use assemble::{ChunkStats, Chunker};
pub use query::{ChunkQuery, QueryError, chunk_query, compile_query, query_source};
pub use windows::line_windows;

use crate::syntax::{Language, ParseLimits};

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

/// Chunks of a whole text, from scratch: what a fresh open computes.
pub fn chunk_text(text: &Rope, language: Option<Language>, config: &ChunkConfig) -> Vec<Chunk> {
    let mut chunker = Chunker::new(language, *config);
    let tree = language
        .filter(|_| config.parse.admits(text))
        .and_then(|language| {
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&language.grammar()).ok()?;
            crate::syntax::parse_rope(&mut parser, text, None, &config.parse)
        });
    match tree {
        Some(tree) => chunker.chunk(text, &tree, None),
        None => chunker.windows(text),
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
