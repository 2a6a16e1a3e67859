//! Whole-document answers built from a parse: `textDocument/documentSymbol`,
//! `textDocument/foldingRange` and `strata/chunks`. Their size grows with the file (about as
//! many bytes of JSON as the file has), so they are encoded per segment of the parse and kept
//! with that segment's chunk list ([`ChunkList::derived`]): an edit re-encodes the one segment it
//! changed, and the answer is the kept pieces written one after the other, their line numbers,
//! byte offsets and id ordinals filled in for where each segment now starts ([`Template`]). The
//! bytes are those serde writes for the declared types (`DocumentSymbol`, `FoldingRange`,
//! `ext::ChunksResult`); [`symbols`], [`folding_ranges`] and [`chunks`] build those types whole,
//! and the tests hold the two to each other. No I/O, no protocol framing.

use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::body::{BLOCK, Body, Streamed};
use super::ext::{ChunkInfo, ChunksResult, TextDocumentParams};
use super::position::{Encoding, from_point, range_at};
use super::template::{Base, Start, Template};
use crate::chunks::{Chunk, ChunkKind, RelChunk};
use crate::documents::{DocumentStore, Parsed, Point3, Points};
use crate::syntax::Language;

/// The answers the client switched off in `initializationOptions`.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    pub document_symbols: bool,
    pub folding_ranges: bool,
}

/// The documents and what `initialize` settled (position encoding, features): all the
/// whole-document answers need. Cheap to clone.
#[derive(Clone)]
pub struct Outline {
    store: Arc<DocumentStore>,
    pub(super) encoding: Arc<OnceLock<Encoding>>,
    pub(super) features: Arc<OnceLock<Features>>,
}

impl Outline {
    pub fn new(store: Arc<DocumentStore>) -> Outline {
        Outline {
            store,
            encoding: Arc::new(OnceLock::new()),
            features: Arc::new(OnceLock::new()),
        }
    }

    pub fn encoding(&self) -> Encoding {
        *self.encoding.get().unwrap_or(&Encoding::Utf16)
    }

    /// Set by `initialize`; until then the client gets "not initialized".
    pub fn initialized(&self) -> bool {
        self.encoding.get().is_some()
    }

    fn features(&self) -> Features {
        *self.features.get().unwrap_or(&Features {
            document_symbols: true,
            folding_ranges: true,
        })
    }

    async fn parsed(&self, uri: &Uri) -> Result<Arc<Parsed>> {
        super::parsed(&self.store, uri).await
    }

    /// `textDocument/documentSymbol`, encoded as it is written (`null` when switched off).
    pub(super) async fn document_symbols(&self, params: DocumentSymbolParams) -> Result<Body> {
        if !self.features().document_symbols {
            return Ok(b"null".to_vec().into());
        }
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(Body::Streamed(streamed_symbols(&parsed, self.encoding())))
    }

    /// `textDocument/foldingRange`, encoded (`null` when switched off).
    pub(super) async fn folding_ranges(&self, params: FoldingRangeParams) -> Result<Body> {
        if !self.features().folding_ranges {
            return Ok(b"null".to_vec().into());
        }
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(encoded_folding_ranges(&parsed).into())
    }

    /// `strata/chunks`, encoded as it is written.
    pub(super) async fn chunks(&self, params: TextDocumentParams) -> Result<Body> {
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(Body::Streamed(streamed_chunks(&parsed, self.encoding())))
    }
}

/// Bytes an answer's envelope (`{"jsonrpc":"2.0","id":…,"result":` and `}`) takes in front of
/// and after it, reserved so that the transport frames the answer without copying it.
const ENVELOPE: usize = 64;

/// Where each segment of `parsed` starts: (segment start byte, its first line, its column in
/// `encoding`). The parse keeps each segment's line and byte column; a segment that starts at a
/// line's start (nearly all) has column 0 in every encoding, and the others are looked up.
fn starts<'p>(
    parsed: &'p Parsed,
    encoding: Encoding,
) -> impl Iterator<Item = (usize, &'p Arc<crate::chunks::ChunkList>, u32, u32)> + 'p {
    let mut points = Points::new(&parsed.text);
    let lists = parsed.chunks.lists().iter().enumerate();
    lists.map(move |(i, (base, list))| match parsed.starts.get(i) {
        Some(point) if point.column == 0 => (*base, list, point.row as u32, 0),
        _ => {
            let at = points.at(*base);
            (*base, list, at.line, column(&at, encoding))
        }
    })
}

fn column(point: &Point3, encoding: Encoding) -> u32 {
    match encoding {
        Encoding::Utf8 => point.col8,
        Encoding::Utf16 => point.col16,
        Encoding::Utf32 => point.col32,
    }
}

/// A segment's encoded piece of one answer, for the encoding and the column the segment started
/// at when it was encoded (a segment that starts inside a line has columns that depend on what
/// comes before it on that line).
struct Piece<const KIND: u8> {
    encoding: Encoding,
    column: u32,
    template: Template,
    /// Chunks per key in the segment (for the ordinals of the segments after it).
    counts: Vec<(u64, u32)>,
}

const SYMBOLS: u8 = 0;
const CHUNKS: u8 = 1;

impl<const KIND: u8> Piece<KIND> {
    fn serves(&self, encoding: Encoding, column: u32) -> bool {
        self.encoding == encoding && self.column == column
    }
}

/// Writes a position relative to the segment starting on line `first`.
fn position(t: &mut Template, point: &Point3, first: u32, encoding: Encoding) {
    t.raw("{\"line\":");
    t.hole(Base::Line, point.line - first);
    t.raw(",\"character\":");
    t.uint(u64::from(column(point, encoding)));
    t.raw("}");
}

fn range(t: &mut Template, start: &Point3, end: &Point3, first: u32, encoding: Encoding) {
    t.raw("{\"start\":");
    position(t, start, first, encoding);
    t.raw(",\"end\":");
    position(t, end, first, encoding);
    t.raw("}");
}

/// Each segment's piece of one answer — (first line, start byte, piece) — kept with its chunk
/// list and made by `make` where none serves.
fn pieces<const KIND: u8>(
    parsed: &Parsed,
    encoding: Encoding,
    make: fn(&[RelChunk], usize, u32, u32, &ropey::Rope, Encoding) -> Piece<KIND>,
) -> Vec<(u32, usize, Arc<Piece<KIND>>)> {
    let mut pieces = Vec::with_capacity(parsed.chunks.segments());
    for (base, list, line, column) in starts(parsed, encoding) {
        let piece = list.derived(
            |p: &Piece<KIND>| p.serves(encoding, column),
            |chunks| make(chunks, base, line, column, &parsed.text, encoding),
        );
        pieces.push((line, base, piece));
    }
    pieces
}

/// The pieces written one after the other, commas between them, `open` before and `close` after,
/// a [`BLOCK`] at a time; the ordinals of chunk ids counted on from piece to piece. The length
/// is counted first, as the writing will go: the header needs it.
fn streamed<const KIND: u8>(
    pieces: Vec<(u32, usize, Arc<Piece<KIND>>)>,
    open: Vec<u8>,
    close: &'static [u8],
) -> Streamed {
    let mut ordinals: FxHashMap<u64, u32> = FxHashMap::default();
    let mut len = open.len() + close.len();
    let mut any = false;
    for (line, byte, piece) in &pieces {
        if piece.template.is_empty() {
            continue;
        }
        len += usize::from(any);
        any = true;
        let start = Start {
            line: *line,
            byte: *byte,
            ordinals: &ordinals,
        };
        len += piece.template.written_len(&start);
        for &(key, n) in &piece.counts {
            *ordinals.entry(key).or_insert(0) += n;
        }
    }
    let mut writing = Writing {
        pieces: pieces.into_iter(),
        ordinals: FxHashMap::default(),
        open: Some(open),
        close: Some(close),
        any: false,
    };
    Streamed::new(len, std::iter::from_fn(move || writing.block()))
}

/// Where the writing of [`streamed`] pieces has got to.
struct Writing<const KIND: u8> {
    pieces: std::vec::IntoIter<(u32, usize, Arc<Piece<KIND>>)>,
    ordinals: FxHashMap<u64, u32>,
    open: Option<Vec<u8>>,
    close: Option<&'static [u8]>,
    /// A piece has been written (the next one goes after a comma).
    any: bool,
}

impl<const KIND: u8> Writing<KIND> {
    /// The next block: pieces until it holds a [`BLOCK`], or the rest and the close.
    fn block(&mut self) -> Option<Vec<u8>> {
        let mut block = match self.open.take() {
            Some(open) => open,
            None if self.close.is_some() => Vec::new(),
            None => return None,
        };
        block.reserve(BLOCK);
        while block.len() < BLOCK {
            let Some((line, byte, piece)) = self.pieces.next() else {
                block.extend_from_slice(self.close.take().unwrap_or_default());
                break;
            };
            if piece.template.is_empty() {
                continue;
            }
            if self.any {
                block.push(b',');
            }
            self.any = true;
            let start = Start {
                line,
                byte,
                ordinals: &self.ordinals,
            };
            piece.template.write(&mut block, &start);
            for &(key, n) in &piece.counts {
                *self.ordinals.entry(key).or_insert(0) += n;
            }
        }
        Some(block)
    }
}

/// `textDocument/documentSymbol` as JSON: each segment's symbols encoded once per chunk list,
/// written as the answer goes out.
pub(super) fn streamed_symbols(parsed: &Parsed, encoding: Encoding) -> Streamed {
    streamed(
        pieces::<SYMBOLS>(parsed, encoding, symbols_piece),
        b"[".to_vec(),
        b"]",
    )
}

/// [`streamed_symbols`] in one buffer.
pub fn encoded_symbols(parsed: &Parsed, encoding: Encoding) -> Vec<u8> {
    Body::Streamed(streamed_symbols(parsed, encoding)).into_bytes()
}

fn symbols_piece(
    chunks: &[RelChunk],
    base: usize,
    first: u32,
    column: u32,
    text: &ropey::Rope,
    encoding: Encoding,
) -> Piece<SYMBOLS> {
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); chunks.len()];
    let mut roots = Vec::new();
    for (i, c) in chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| is_symbol_kind(c.kind))
    {
        match c.parent {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    struct Build<'a> {
        chunks: &'a [RelChunk],
        children: &'a [Vec<usize>],
        points: Points<'a>,
        base: usize,
        first: u32,
        encoding: Encoding,
    }
    fn symbol(b: &mut Build<'_>, t: &mut Template, i: usize) {
        let c = &b.chunks[i];
        let shift = |r: &std::ops::Range<usize>| r.start + b.base..r.end + b.base;
        let detail = first_line(&b.points, shift(&c.signature));
        let range_start = b.points.at(c.range.start + b.base);
        let name = shift(&c.name_range);
        let (name_start, name_end) = (b.points.at(name.start), b.points.at(name.end));
        let range_end = b.points.at(c.range.end + b.base);
        t.raw("{\"name\":");
        t.string(&c.name);
        if !detail.is_empty() {
            t.raw(",\"detail\":");
            t.string(&detail);
        }
        t.raw(",\"kind\":");
        t.json(&symbol_kind(c.kind));
        t.raw(",\"range\":");
        range(t, &range_start, &range_end, b.first, b.encoding);
        t.raw(",\"selectionRange\":");
        range(t, &name_start, &name_end, b.first, b.encoding);
        let children = b.children[i].clone();
        if !children.is_empty() {
            t.raw(",\"children\":[");
            for (n, &k) in children.iter().enumerate() {
                if n > 0 {
                    t.raw(",");
                }
                symbol(b, t, k);
            }
            t.raw("]");
        }
        t.raw("}");
    }
    let mut build = Build {
        chunks,
        children: &children,
        points: Points::new(text),
        base,
        first,
        encoding,
    };
    let mut template = Template::default();
    for (n, &i) in roots.iter().enumerate() {
        if n > 0 {
            template.raw(",");
        }
        symbol(&mut build, &mut template, i);
    }
    template.shrink();
    Piece {
        encoding,
        column,
        template,
        counts: Vec::new(),
    }
}

/// `strata/chunks` as JSON: each segment's chunks encoded once per chunk list, the ordinals of
/// their ids counted on from the segments before, written as the answer goes out.
pub(super) fn streamed_chunks(parsed: &Parsed, encoding: Encoding) -> Streamed {
    let mut open = b"{\"version\":".to_vec();
    let _ = serde_json::to_writer(&mut open, &parsed.version);
    open.extend_from_slice(b",\"language\":");
    let _ = serde_json::to_writer(&mut open, &parsed.language.map(Language::name));
    open.extend_from_slice(b",\"chunks\":[");
    streamed(
        pieces::<CHUNKS>(parsed, encoding, chunks_piece),
        open,
        b"]}",
    )
}

/// [`streamed_chunks`] in one buffer.
pub fn encoded_chunks(parsed: &Parsed, encoding: Encoding) -> Vec<u8> {
    Body::Streamed(streamed_chunks(parsed, encoding)).into_bytes()
}

fn chunks_piece(
    chunks: &[RelChunk],
    base: usize,
    first: u32,
    column: u32,
    text: &ropey::Rope,
    encoding: Encoding,
) -> Piece<CHUNKS> {
    let mut counts: FxHashMap<u64, u32> = FxHashMap::default();
    let locals: Vec<u32> = chunks
        .iter()
        .map(|c| {
            let n = counts.entry(c.key).or_insert(0);
            *n += 1;
            *n - 1
        })
        .collect();
    let mut points = Points::new(text);
    let mut t = Template::default();
    let id = |t: &mut Template, c: &RelChunk, local: u32| {
        t.raw("\"");
        t.string_part(c.kind.as_str());
        t.raw(":");
        t.string_part(&c.path);
        t.raw("#");
        t.hole(Base::Ordinal(c.key), local);
        t.raw("\"");
    };
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 {
            t.raw(",");
        }
        t.raw("{\"id\":");
        id(&mut t, c, locals[i]);
        t.raw(",\"kind\":");
        t.string(c.kind.as_str());
        t.raw(",\"name\":");
        t.string(&c.name);
        t.raw(",\"path\":");
        t.string(&c.path);
        t.raw(",\"parent\":");
        match c.parent {
            Some(p) => id(&mut t, &chunks[p], locals[p]),
            None => t.raw("null"),
        }
        for (name, r) in [
            ("range", &c.range),
            ("signatureRange", &c.signature),
            ("nameRange", &c.name_range),
        ] {
            let (start, end) = (points.at(r.start + base), points.at(r.end + base));
            t.raw(",\"");
            t.raw(name);
            t.raw("\":");
            range(&mut t, &start, &end, first, encoding);
        }
        t.raw(",\"byteRange\":[");
        t.hole(Base::Byte, c.range.start as u32);
        t.raw(",");
        t.hole(Base::Byte, c.range.end as u32);
        t.raw("],\"hash\":\"");
        t.raw(&format!("{:016x}", c.hash));
        t.raw("\"}");
    }
    t.shrink();
    let mut counts: Vec<(u64, u32)> = counts.into_iter().collect();
    counts.sort_unstable();
    Piece {
        encoding,
        column,
        template: t,
        counts,
    }
}

/// One segment's folds: (first line, last line, kind), lines relative to the segment's first.
struct Folds(Vec<(u32, u32, u8)>);

const FOLD_KINDS: [Option<FoldingRangeKind>; 3] = [
    None,
    Some(FoldingRangeKind::Comment),
    Some(FoldingRangeKind::Imports),
];

/// `textDocument/foldingRange` as JSON: each segment's folds found once per chunk list.
pub fn encoded_folding_ranges(parsed: &Parsed) -> Vec<u8> {
    let text = &parsed.text;
    let mut all: Vec<(u32, u32, u8)> = Vec::new();
    for (base, list) in parsed.chunks.lists() {
        let first = text.byte_to_line((*base).min(text.len_bytes())) as u32;
        let folds = list.derived(|_: &Folds| true, |chunks| folds(chunks, *base, first, text));
        all.extend(
            folds
                .0
                .iter()
                .map(|&(start, end, kind)| (start + first, end + first, kind)),
        );
    }
    // Sorted within each segment already; a segment that starts inside a line may repeat the
    // line the one before it ends on.
    all.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
    all.dedup_by_key(|f| f.0);
    let mut out = Vec::with_capacity(all.len() * 48 + ENVELOPE);
    out.push(b'[');
    for (n, &(start, end, kind)) in all.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"startLine\":");
        super::template::write_uint(&mut out, u64::from(start));
        out.extend_from_slice(b",\"endLine\":");
        super::template::write_uint(&mut out, u64::from(end));
        if let Some(kind) = &FOLD_KINDS[kind as usize] {
            out.extend_from_slice(b",\"kind\":");
            let _ = serde_json::to_writer(&mut out, kind);
        }
        out.push(b'}');
    }
    out.push(b']');
    out
}

fn folds(chunks: &[RelChunk], base: usize, first: u32, text: &ropey::Rope) -> Folds {
    let line = |byte: usize| text.byte_to_line((byte + base).min(text.len_bytes())) as u32 - first;
    let mut folds = Vec::new();
    let mut push = |start: u32, end: u32, kind: u8| {
        if end > start {
            folds.push((start, end, kind));
        }
    };
    for c in chunks {
        let start = line(c.range.start);
        let last = line(c.range.end.saturating_sub(1).max(c.range.start));
        match c.kind {
            ChunkKind::Part | ChunkKind::Window => {}
            ChunkKind::Group => match &*c.name {
                "comments" => push(start, last, 1),
                "imports" => push(start, last, 2),
                _ => {}
            },
            _ => {
                let signature = line(c.signature.start);
                if signature > start {
                    push(start, signature - 1, 1);
                }
                push(signature, last, 0);
            }
        }
    }
    folds.sort_by_key(|f| (f.0, std::cmp::Reverse(f.1)));
    folds.dedup_by_key(|f| f.0);
    folds.shrink_to_fit();
    Folds(folds)
}

/// `strata/chunks`: every chunk of the document with its ranges in the negotiated encoding.
pub fn chunks(parsed: &Parsed, encoding: Encoding) -> ChunksResult {
    let mut points = Points::new(&parsed.text);
    let all = parsed.chunks.to_vec();
    let chunks = all
        .iter()
        .map(|c| ChunkInfo {
            id: c.id.to_string(),
            kind: c.kind.as_str(),
            name: c.name.to_string(),
            path: c.path.to_string(),
            parent: c.parent.map(|p| all[p].id.to_string()),
            range: range_at(&mut points, c.range.clone(), encoding),
            signature_range: range_at(&mut points, c.signature.clone(), encoding),
            name_range: range_at(&mut points, c.name_range.clone(), encoding),
            byte_range: [c.range.start, c.range.end],
            hash: format!("{:016x}", c.hash),
        })
        .collect();
    ChunksResult {
        version: parsed.version,
        language: parsed.language.map(Language::name),
        chunks,
    }
}

fn symbol_kind(kind: ChunkKind) -> SymbolKind {
    match kind {
        ChunkKind::Function | ChunkKind::Macro => SymbolKind::FUNCTION,
        ChunkKind::Method => SymbolKind::METHOD,
        ChunkKind::Impl => SymbolKind::OBJECT,
        ChunkKind::Trait | ChunkKind::Interface => SymbolKind::INTERFACE,
        ChunkKind::Struct | ChunkKind::Union => SymbolKind::STRUCT,
        ChunkKind::Enum => SymbolKind::ENUM,
        ChunkKind::Class => SymbolKind::CLASS,
        ChunkKind::Type => SymbolKind::TYPE_PARAMETER,
        ChunkKind::Module => SymbolKind::MODULE,
        ChunkKind::Group | ChunkKind::Part | ChunkKind::Window => SymbolKind::NULL,
    }
}

fn is_symbol(chunk: &Chunk) -> bool {
    is_symbol_kind(chunk.kind)
}

fn is_symbol_kind(kind: ChunkKind) -> bool {
    !matches!(kind, ChunkKind::Group | ChunkKind::Part | ChunkKind::Window)
}

/// The symbol tree of a document: its chunks, less groups, parts and windows.
pub fn symbols(parsed: &Parsed, encoding: Encoding) -> Vec<DocumentSymbol> {
    let chunks = parsed.chunks.to_vec();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); chunks.len()];
    let mut roots = Vec::new();
    for (i, c) in chunks.iter().enumerate().filter(|(_, c)| is_symbol(c)) {
        match c.parent {
            Some(p) => children[p].push(i),
            None => roots.push(i),
        }
    }
    fn build(
        i: usize,
        chunks: &[Chunk],
        points: &mut Points<'_>,
        children: &[Vec<usize>],
        encoding: Encoding,
    ) -> DocumentSymbol {
        let c = &chunks[i];
        let detail = first_line(points, c.signature.clone());
        // Positions in document order, so that the cursor mostly stays on its line.
        let range_start = points.at(c.range.start);
        let selection_range = range_at(points, c.name_range.clone(), encoding);
        let kids: Vec<DocumentSymbol> = children[i]
            .iter()
            .map(|&k| build(k, chunks, points, children, encoding))
            .collect();
        let range = Range::new(
            from_point(&range_start, encoding),
            from_point(&points.at(c.range.end), encoding),
        );
        #[allow(deprecated)]
        DocumentSymbol {
            name: c.name.to_string(),
            detail: (!detail.is_empty()).then_some(detail),
            kind: symbol_kind(c.kind),
            tags: None,
            deprecated: None,
            range,
            selection_range,
            children: (!kids.is_empty()).then_some(kids),
        }
    }
    let mut points = Points::new(&parsed.text);
    roots
        .into_iter()
        .map(|i| build(i, &chunks, &mut points, &children, encoding))
        .collect()
}

/// The first line of `range` (a signature), without its trailing whitespace.
fn first_line(points: &Points<'_>, range: std::ops::Range<usize>) -> String {
    let text = points.text();
    let end = range.end.min(text.len_bytes());
    let mut line = String::new();
    if range.start >= end {
        return line;
    }
    let (chunks, mut at, _, _) = text.chunks_at_byte(range.start);
    for chunk in chunks {
        let from = range.start.saturating_sub(at);
        let to = (end - at).min(chunk.len());
        let piece = &chunk[from..to];
        if let Some(stop) = piece.find(['\n', '\r']) {
            line.push_str(&piece[..stop]);
            break;
        }
        line.push_str(piece);
        at += chunk.len();
        if at >= end {
            break;
        }
    }
    line.truncate(line.trim_end().len());
    line
}

/// Folds for every multi-line chunk (from its signature), its doc comment block, and groups of
/// imports and comments.
pub fn folding_ranges(parsed: &Parsed) -> Vec<FoldingRange> {
    let text = &parsed.text;
    let line = |byte: usize| text.byte_to_line(byte) as u32;
    let mut folds: Vec<FoldingRange> = Vec::new();
    let mut push = |start: u32, end: u32, kind: Option<FoldingRangeKind>| {
        if end > start {
            folds.push(FoldingRange {
                start_line: start,
                end_line: end,
                kind,
                ..Default::default()
            });
        }
    };
    for c in parsed.chunks.to_vec() {
        let (first, last) = c.lines(text);
        let (first, last) = (first as u32, last as u32);
        match c.kind {
            ChunkKind::Part | ChunkKind::Window => {}
            ChunkKind::Group => {
                let kind = match &*c.name {
                    "imports" => Some(FoldingRangeKind::Imports),
                    "comments" => Some(FoldingRangeKind::Comment),
                    _ => None,
                };
                if kind.is_some() {
                    push(first, last, kind);
                }
            }
            _ => {
                let signature = line(c.signature.start);
                if signature > first {
                    push(first, signature - 1, Some(FoldingRangeKind::Comment));
                }
                push(signature, last, None);
            }
        }
    }
    folds.sort_by_key(|f| (f.start_line, std::cmp::Reverse(f.end_line)));
    folds.dedup_by_key(|f| f.start_line);
    folds
}

#[cfg(test)]
mod tests {
    use ropey::Rope;

    use super::*;
    use crate::chunks::ChunkConfig;
    use crate::documents::Syntax;
    use crate::syntax::input_edit;

    /// About 150 KB of Rust in several segments: doc comments with astral characters, impls of
    /// one trait for one type (equal ids told apart by ordinals), nested items, folds.
    fn rust_source() -> String {
        let mut s = String::from("use std::fmt;\nuse std::sync::Arc;\n\n");
        for i in 0..700 {
            s.push_str(&format!(
                "/// Item {i}: 😀 é 𝔘\n/// more\npub struct S{i} {{\n    a: u32,\n}}\n\n\
                 impl fmt::Display for Shared {{\n    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {{\n        write!(f, \"{i}\")\n    }}\n}}\n\n\
                 impl S{i} {{\n    /// Doc.\n    pub fn get(&self) -> u32 {{\n        self.a + {i}\n    }}\n}}\n\n"
            ));
        }
        s
    }

    fn reference(parsed: &Parsed, encoding: Encoding) -> [Vec<u8>; 3] {
        [
            serde_json::to_vec(&symbols(parsed, encoding)).unwrap(),
            serde_json::to_vec(&folding_ranges(parsed)).unwrap(),
            serde_json::to_vec(&chunks(parsed, encoding)).unwrap(),
        ]
    }

    fn encoded(parsed: &Parsed, encoding: Encoding) -> [Vec<u8>; 3] {
        [
            written(streamed_symbols(parsed, encoding)),
            encoded_folding_ranges(parsed),
            written(streamed_chunks(parsed, encoding)),
        ]
    }

    /// A streamed answer's blocks one after the other, which must be the length it declared
    /// (the header says it before the first block is encoded), in blocks of about [`BLOCK`].
    #[track_caller]
    fn written(streamed: Streamed) -> Vec<u8> {
        let body = Body::Streamed(streamed);
        let declared = body.len();
        let blocks: Vec<Vec<u8>> = body.blocks().collect();
        let bytes = blocks.concat();
        assert_eq!(bytes.len(), declared, "declared length");
        let (last, full) = blocks.split_last().expect("a block");
        assert!(full.iter().all(|b| b.len() >= BLOCK) && !last.is_empty());
        bytes
    }

    #[track_caller]
    fn same(parsed: &Parsed, encoding: Encoding) {
        let (want, got) = (reference(parsed, encoding), encoded(parsed, encoding));
        for (what, (want, got)) in ["symbols", "folds", "chunks"]
            .iter()
            .zip(want.iter().zip(&got))
        {
            if want != got {
                let at = want.iter().zip(got).take_while(|(a, b)| a == b).count();
                let show = |b: &[u8]| {
                    String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())])
                        .into_owned()
                };
                panic!(
                    "{what} differ at byte {at}:\nwant …{}…\ngot  …{}…",
                    show(want),
                    show(got)
                );
            }
        }
    }

    #[test]
    fn answers_kept_per_segment_are_the_answers_built_whole_through_edits() {
        let source = rust_source();
        let mut text = Rope::from_str(&source);
        let mut syntax = Syntax::new(Some(Language::Rust), ChunkConfig::default());
        let parsed = syntax.update(1, text.clone(), &[], true);
        assert!(
            parsed.chunks.segments() > 3,
            "{} segments",
            parsed.chunks.segments()
        );
        for encoding in [Encoding::Utf16, Encoding::Utf8, Encoding::Utf32] {
            same(&parsed, encoding);
        }
        // Edits in the middle: a character, a line break (every later segment moves down a
        // line), a new item (new ids, later ordinals move), a deletion of it.
        let middle = source[source.len() / 2..].find("    pub fn get").unwrap() + source.len() / 2;
        let edits: Vec<(usize, usize, String)> = vec![
            (middle, middle, "x".into()),
            (middle, middle + 1, String::new()),
            (middle, middle, "\n".into()),
            (middle, middle, "fn fmt(&self) {}\n    ".into()),
            (middle, middle + 22, String::new()),
        ];
        let mut version = 1;
        for (start, end, insert) in edits {
            let before = text.clone();
            let (from, to) = (text.byte_to_char(start), text.byte_to_char(end));
            text.remove(from..to);
            text.insert(from, &insert);
            let edit = input_edit(&before, &text, start, end, start + insert.len());
            version += 1;
            let old = syntax.update(version - 1, before, &[], false);
            let old_lists: Vec<_> = old.chunks.lists().to_vec();
            let parsed = syntax.update(version, text.clone(), &[edit], false);
            same(&parsed, Encoding::Utf16);
            // Only the edited segment was encoded again: the others kept their pieces.
            let kept = parsed
                .chunks
                .lists()
                .iter()
                .filter(|(_, l)| old_lists.iter().any(|(_, o)| Arc::ptr_eq(o, l)))
                .count();
            assert!(
                kept + 1 >= parsed.chunks.segments(),
                "{kept} of {} kept",
                parsed.chunks.segments()
            );
        }
    }

    #[test]
    fn typescript_answers_match_too() {
        let mut source = String::new();
        for i in 0..400 {
            source.push_str(&format!(
                "/** Doc {i} 🚀 */\nexport interface I{i} {{\n  a: string;\n  b(x: number): void;\n}}\n\n\
                 declare var I{i}: {{\n  prototype: I{i};\n  new(): I{i};\n}};\n\nexport class C{i} {{\n  m(): number {{ return {i}; }}\n}}\n\n"
            ));
        }
        let parsed = Syntax::new(Some(Language::TypeScript), ChunkConfig::default()).update(
            1,
            Rope::from_str(&source),
            &[],
            true,
        );
        assert!(parsed.chunks.segments() > 2);
        same(&parsed, Encoding::Utf16);
        // Text without a grammar: line windows.
        let parsed =
            Syntax::new(None, ChunkConfig::default()).update(1, Rope::from_str(&source), &[], true);
        same(&parsed, Encoding::Utf16);
    }

    #[test]
    fn the_first_line_is_cut_at_any_line_break_across_rope_chunks() {
        // Long enough that ranges cross ropey's leaves (about 1 KB).
        let long = "x".repeat(3000);
        let source = format!("fn a({long}) {{\r\n}}\nfn b()\rc\n{long}é😀\n");
        let text = Rope::from_str(&source);
        let points = Points::new(&text);
        let first = |start: usize, end: usize| first_line(&points, start..end);
        assert_eq!(first(0, source.len()), format!("fn a({long}) {{"));
        let b = source.find("fn b").unwrap();
        assert_eq!(first(b, source.len()), "fn b()");
        assert_eq!(first(b, b + 4), "fn b");
        let tail = source.rfind('x').unwrap() - 10;
        assert_eq!(first(tail, source.len()), "xxxxxxxxxxxé😀");
        assert_eq!(first(5, 5), "");
        assert_eq!(first(source.len(), source.len() + 9), "");
    }
}
