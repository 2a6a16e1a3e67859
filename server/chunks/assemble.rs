//! Chunking of one parsed stretch of text (a segment): walks the top-level nodes of the new tree,
//! reuses the record of every node the edit did not touch, extracts the rest, then attaches
//! comments, groups small items and reports where a segment may be cut. Offsets are relative to
//! the stretch; ids are numbered when a document's chunks are read ([`super::DocChunks`]).

use std::sync::Arc;

use ropey::RopeSlice;
use tree_sitter::{InputEdit, Node, QueryCursor, Tree};

use super::extract::{Extractor, NodeRecord, RelChunk, blank_line_between};
use super::query::chunk_query;
use super::{ChunkConfig, ChunkKind};
use crate::syntax::{Language, hash_range};

/// What the last call did, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkStats {
    pub top_level_nodes: usize,
    /// Top-level nodes whose chunks were computed afresh (the rest were reused).
    pub extracted: usize,
}

/// The chunks of a stretch of text, and the offsets where the stretch could be cut in two
/// without changing any chunk: before each item (with its doc comments) whose preceding node
/// parsed without error. When the parse failed at the top (the root itself is an error, as when
/// a window ends inside an unclosed item), nothing after the first error is trusted.
pub struct Chunked {
    pub chunks: Vec<RelChunk>,
    pub cuts: Vec<usize>,
    /// Where to cut when there is no clean cut: before the last item, else the last top-level
    /// node.
    pub fallback_cut: Option<usize>,
    /// Kind and qualified path of the chunks in the nodes extracted afresh (the edited ones,
    /// when there were records to reuse).
    pub changed: Vec<(ChunkKind, Arc<str>)>,
    pub stats: ChunkStats,
}

/// The chunking machinery of one language (query cursor and config); records live with the
/// caller, one list per parsed stretch.
pub struct Chunker {
    language: Language,
    config: ChunkConfig,
    cursor: QueryCursor,
}

impl Chunker {
    pub fn new(language: Language, config: ChunkConfig) -> Chunker {
        Chunker {
            language,
            config,
            cursor: QueryCursor::new(),
        }
    }

    /// Chunks `text` as parsed into `tree`. `records` describe the top-level nodes of the
    /// previous parse of this stretch and `edits` what changed since, in order; the record of
    /// every node that no edit touched and that comes back with the same span and kind is
    /// reused. `records` is left describing `tree`.
    pub fn chunk(
        &mut self,
        text: RopeSlice<'_>,
        tree: &Tree,
        edits: &[InputEdit],
        records: &mut Vec<NodeRecord>,
    ) -> Chunked {
        let root = tree.root_node();
        let mut old = std::mem::take(records)
            .into_iter()
            .filter_map(|mut r| {
                let (start, end) = map_span(r.start, r.end, edits)?;
                (r.start, r.end) = (start, end);
                Some(r)
            })
            .peekable();
        let nodes = top_level(root);
        let mut extractor = Extractor {
            language: self.language,
            query: chunk_query(self.language),
            config: &self.config,
            text,
            cursor: &mut self.cursor,
        };
        let mut extracted = 0;
        let mut changed = Vec::new();
        for node in &nodes {
            while old.peek().is_some_and(|r| r.start < node.start_byte()) {
                old.next();
            }
            let reused = old.next_if(|r| {
                r.start == node.start_byte()
                    && r.end == node.end_byte()
                    && r.kind_id == node.kind_id()
            });
            records.push(reused.unwrap_or_else(|| {
                extracted += 1;
                let record = extractor.record(*node);
                for chunk in record.item.iter().flat_map(|item| item.iter()) {
                    if chunk.kind != ChunkKind::Part {
                        changed.push((chunk.kind, chunk.path.clone()));
                    }
                }
                record
            }));
        }
        let spans: Vec<(usize, usize)> = nodes
            .iter()
            .map(|n| (n.start_byte(), n.end_byte()))
            .collect();
        let (chunks, cuts, fallback_cut) =
            assemble(&self.config, text, &spans, records, root.is_error());
        Chunked {
            chunks,
            cuts,
            fallback_cut,
            changed,
            stats: ChunkStats {
                top_level_nodes: nodes.len(),
                extracted,
            },
        }
    }
}

/// Where a node's span moves through `edits`, or `None` when an edit touches it.
fn map_span(mut start: usize, mut end: usize, edits: &[InputEdit]) -> Option<(usize, usize)> {
    for edit in edits {
        if end < edit.start_byte {
            continue;
        }
        if start <= edit.old_end_byte {
            return None;
        }
        start = start + edit.new_end_byte - edit.old_end_byte;
        end = end + edit.new_end_byte - edit.old_end_byte;
    }
    Some((start, end))
}

fn top_level(root: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = root.walk();
    root.children(&mut cursor).collect()
}

/// Turns per-node records into chunks: items with their attached comments, runs of other nodes
/// as groups. Also returns the cut points (see [`Chunked`]).
fn assemble(
    config: &ChunkConfig,
    text: RopeSlice<'_>,
    spans: &[(usize, usize)],
    records: &[NodeRecord],
    root_is_error: bool,
) -> (Vec<RelChunk>, Vec<usize>, Option<usize>) {
    let mut out: Vec<RelChunk> = Vec::with_capacity(records.len() * 2);
    let mut cuts = Vec::new();
    let mut fallback = None;
    let first_error = if root_is_error {
        records
            .iter()
            .position(|r| r.error)
            .unwrap_or(records.len())
    } else {
        records.len()
    };
    let mut run_start: Option<usize> = None;
    for (i, record) in records.iter().enumerate() {
        let Some(item) = &record.item else {
            run_start.get_or_insert(i);
            continue;
        };
        // Comments and attributes directly above the item belong to it.
        let mut attach = i;
        while let Some(start) = run_start {
            if attach == start {
                break;
            }
            let j = attach - 1;
            if !records[j].attachable || blank_line_between(text, spans[j].1, spans[attach].0) {
                break;
            }
            attach = j;
        }
        if attach > 0 {
            fallback = Some(spans[attach].0);
            if attach <= first_error && !records[attach - 1].error {
                cuts.push(spans[attach].0);
            }
        }
        if let Some(start) = run_start.take()
            && start < attach
        {
            push_groups(
                config,
                text,
                &spans[start..attach],
                &records[start..attach],
                &mut out,
            );
        }
        push_item(text, spans[attach].0, spans[i].0, item, &mut out);
    }
    if let Some(start) = run_start {
        push_groups(config, text, &spans[start..], &records[start..], &mut out);
    }
    if fallback.is_none() && spans.len() > 1 {
        fallback = spans.last().map(|s| s.0);
    }
    (out, cuts, fallback)
}

fn push_item(
    text: RopeSlice<'_>,
    attach_start: usize,
    base: usize,
    item: &[RelChunk],
    out: &mut Vec<RelChunk>,
) {
    let first = out.len();
    for (k, rel) in item.iter().enumerate() {
        let mut chunk = rel.clone();
        chunk.range = rel.range.start + base..rel.range.end + base;
        chunk.signature = rel.signature.start + base..rel.signature.end + base;
        chunk.name_range = rel.name_range.start + base..rel.name_range.end + base;
        chunk.parent = rel.parent.map(|p| p + first);
        if k == 0 && attach_start < base {
            chunk.range.start = attach_start;
            chunk.hash = hash_range(text, chunk.range.clone());
        }
        out.push(chunk);
    }
}

/// Runs of small items, cut so that no group passes the chunk size limit.
fn push_groups(
    config: &ChunkConfig,
    text: RopeSlice<'_>,
    spans: &[(usize, usize)],
    records: &[NodeRecord],
    out: &mut Vec<RelChunk>,
) {
    let mut start = 0;
    while start < spans.len() {
        let mut end = start + 1;
        // A group ends at its size limit, and where a blank line separates different sorts of items.
        while end < spans.len()
            && spans[end].1 - spans[start].0 <= config.max_chunk_bytes
            && (sort(&records[end]) == sort(&records[end - 1])
                || !blank_line_between(text, spans[end - 1].1, spans[end].0))
        {
            end += 1;
        }
        let members = &records[start..end];
        let name = if members.iter().all(|r| r.import) {
            "imports"
        } else if members.iter().all(|r| r.comment) {
            "comments"
        } else {
            "items"
        };
        let range = spans[start].0..without_line_break(text, spans[start].0, spans[end - 1].1);
        let name: Arc<str> = Arc::from(name);
        out.push(RelChunk::new(
            ChunkKind::Group,
            name.clone(),
            name,
            None,
            range.clone(),
            range.start..range.start,
            hash_range(text, range),
        ));
        start = end;
    }
}

/// `end` moved back over a line break that a trailing line comment took in, so that no range
/// ends between a `\r` and its `\n`.
fn without_line_break(text: RopeSlice<'_>, start: usize, mut end: usize) -> usize {
    while end > start && matches!(text.byte(end - 1), b'\n' | b'\r') {
        end -= 1;
    }
    end
}

/// The sort of a group member: import, comment, or anything else.
fn sort(record: &NodeRecord) -> u8 {
    u8::from(record.import) | (u8::from(record.comment) << 1)
}
