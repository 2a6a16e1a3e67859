//! What the archive stores of a file and its chunks, built from a text and its chunks. Pure:
//! the same (text, chunks) give the same rows.

use ropey::Rope;

use super::symbols::FileFacts;
use super::terms::{BodyTerms, name_terms};
use crate::chunks::{Chunk, ChunkKind};
use crate::documents::{Point3, point3};
use crate::syntax::Language;

/// Where a file's indexed text came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Disk,
    /// An editor's unsaved buffer: its row never matches the file on disk, so the next start
    /// re-reads the file.
    Buffer,
}

/// One file to store, with all its chunks.
#[derive(Clone, Debug)]
pub struct FileRecord {
    /// Relative to the workspace root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: u64,
    pub language: Option<Language>,
    pub source: Source,
    pub chunks: Vec<ChunkRow>,
    /// Its symbol tables: what it declares, imports and re-exports.
    pub facts: FileFacts,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRow {
    pub chunk_id: String,
    pub kind: ChunkKind,
    pub name: String,
    pub qualified: String,
    pub parent: Option<String>,
    pub signature: String,
    pub doc: String,
    pub start_byte: usize,
    pub end_byte: usize,
    pub start: Point3,
    pub end: Point3,
    pub hash: u64,
    pub tokens: u32,
    /// FTS columns.
    pub name_terms: String,
    pub body_terms: String,
}

/// Most identifiers of a chunk's body that go to the search index.
const BODY_TERMS: usize = 400;
/// Most bytes of a chunk whose identifiers are indexed.
const BODY_BYTES: usize = 16 * 1024;
/// Longest signature kept.
const SIGNATURE_BYTES: usize = 400;

/// The rows of a file's chunks.
pub fn chunk_rows(text: &Rope, chunks: &[Chunk]) -> Vec<ChunkRow> {
    // One contiguous copy of the text: slices of it cost nothing, slices of the rope a descent
    // and a copy each.
    let whole: std::borrow::Cow<str> = text.slice(..).into();
    let slice = |range: std::ops::Range<usize>| whole.get(range).unwrap_or("");
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); chunks.len()];
    for (i, c) in chunks.iter().enumerate() {
        if let Some(p) = c.parent.and_then(|p| children.get_mut(p)) {
            p.push(i);
        }
    }
    let mut terms = BodyTerms::default();
    chunks
        .iter()
        .zip(&children)
        .map(|(c, children)| {
            let signature = truncate(slice(c.signature.clone()).trim(), SIGNATURE_BYTES);
            let doc = doc_text(slice(c.range.start..c.signature.start.max(c.range.start)));
            // A container's children are rows of their own: its identifiers are those of its own
            // text between them, and of at most BODY_BYTES of it.
            let mut body = Vec::new();
            let mut at = c.range.start;
            for child in children {
                let child = &chunks[*child].range;
                if child.start > at {
                    body.push(slice(at..child.start));
                }
                at = at.max(child.end);
            }
            if at < c.range.end {
                body.push(slice(at..c.range.end));
            }
            let mut budget = BODY_BYTES;
            let body = body.into_iter().map_while(|piece| {
                let piece = prefix(piece, budget);
                budget = budget.saturating_sub(piece.len() + 1);
                (!piece.is_empty()).then_some(piece)
            });
            ChunkRow {
                chunk_id: c.id.to_string(),
                kind: c.kind,
                name: c.name.to_string(),
                qualified: c.path.to_string(),
                parent: c.parent.map(|p| chunks[p].id.to_string()),
                name_terms: name_terms(&[&c.name, &c.path]),
                body_terms: terms.terms(body, BODY_TERMS),
                signature,
                doc,
                start_byte: c.range.start,
                end_byte: c.range.end,
                start: point3(text, c.range.start),
                end: point3(text, c.range.end),
                hash: c.hash,
                tokens: (c.range.len() / 4).max(1) as u32,
            }
        })
        .collect()
}

/// The text of the comments above a declaration, without comment markers and attributes.
fn doc_text(raw: &str) -> String {
    let mut out = Vec::new();
    for line in raw.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with('@') {
            continue; // attributes and decorators
        }
        let stripped = line
            .trim_start_matches("///")
            .trim_start_matches("//!")
            .trim_start_matches("//")
            .trim_start_matches("/**")
            .trim_start_matches("/*")
            .trim_end_matches("*/")
            .trim_start_matches('*')
            .trim();
        if !stripped.is_empty() {
            out.push(stripped);
        }
    }
    truncate(&out.join(" "), 2000)
}

fn truncate(s: &str, max: usize) -> String {
    prefix(s, max).to_string()
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ChunkConfig;
    use crate::documents::chunk_text;

    #[test]
    fn rows_carry_docs_signatures_positions_and_terms() {
        let text = Rope::from_str(
            "/// Parses 😀 ropes.\n#[inline]\npub fn parseRope(input: &str) -> Tree {\n    build_tree(input)\n}\n",
        );
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default()).to_vec();
        let rows = chunk_rows(&text, &chunks);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.signature, "pub fn parseRope(input: &str) -> Tree");
        assert_eq!(row.doc, "Parses 😀 ropes.");
        assert_eq!(row.name_terms, "parse parserope rope");
        assert!(row.body_terms.contains("build_tree") && row.body_terms.contains("input"));
        assert_eq!(
            row.start,
            Point3 {
                line: 0,
                col8: 0,
                col16: 0,
                col32: 0
            }
        );
        assert_eq!(row.end.line, 4);
        let p = point3(&text, "/// Parses 😀".len());
        assert_eq!((p.col8, p.col16, p.col32), (15, 13, 12));
    }

    #[test]
    fn a_container_indexes_its_own_text_not_its_childrens() {
        let text = Rope::from_str(
            "impl Store {\n    const LIMIT: usize = 8;\n    fn load(&self) {\n        read_everything();\n    }\n}\n",
        );
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default()).to_vec();
        let rows = chunk_rows(&text, &chunks);
        let (container, method) = (&rows[0], &rows[1]);
        assert_eq!(
            (container.name.as_str(), method.name.as_str()),
            ("Store", "load")
        );
        assert!(
            container.body_terms.contains("limit"),
            "{}",
            container.body_terms
        );
        assert!(
            !container.body_terms.contains("read_everything"),
            "{}",
            container.body_terms
        );
        assert!(method.body_terms.contains("read_everything"));
    }
}
