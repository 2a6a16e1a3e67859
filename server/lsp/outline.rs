//! Whole-document answers built from a parse: `textDocument/documentSymbol`,
//! `textDocument/foldingRange` and `strata/chunks`. Their size grows with the file (about as
//! many bytes of JSON as the file has), so the dispatch table encodes them straight from these
//! types, never through a `serde_json::Value` (two to three times the cost: `cargo bench
//! --bench parse -- answers`). No I/O, no protocol framing.

use std::sync::{Arc, OnceLock};

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::ext::{ChunkInfo, ChunksResult, TextDocumentParams};
use super::position::{Encoding, from_point, range_at};
use crate::chunks::{Chunk, ChunkKind};
use crate::documents::{DocumentStore, Parsed, Points};
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

    pub async fn document_symbols(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        if !self.features().document_symbols {
            return Ok(None);
        }
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(Some(DocumentSymbolResponse::Nested(symbols(
            &parsed,
            self.encoding(),
        ))))
    }

    pub async fn folding_ranges(
        &self,
        params: FoldingRangeParams,
    ) -> Result<Option<Vec<FoldingRange>>> {
        if !self.features().folding_ranges {
            return Ok(None);
        }
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(Some(folding_ranges(&parsed)))
    }

    pub async fn chunks(&self, params: TextDocumentParams) -> Result<ChunksResult> {
        let parsed = self.parsed(&params.text_document.uri).await?;
        Ok(chunks(&parsed, self.encoding()))
    }
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
    !matches!(
        chunk.kind,
        ChunkKind::Group | ChunkKind::Part | ChunkKind::Window
    )
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
