//! The chunker of one document: walks the top-level nodes of each new tree, reuses what it knew
//! of every node the edit did not touch, extracts the rest, then attaches comments, groups small
//! items and numbers ids. Work per edit is one pass over the top-level nodes plus extraction of
//! the changed ones.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use ropey::Rope;
use tree_sitter::{Node, QueryCursor, Tree};

use super::extract::{Extractor, NodeRecord, RelChunk, blank_line_between, chunk_id, chunk_key};
use super::query::chunk_query;
use super::windows::line_windows;
use super::{Chunk, ChunkConfig, ChunkKind};
use crate::syntax::{Language, hash_slice};

/// What the last update did, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkStats {
    pub top_level_nodes: usize,
    /// Top-level nodes whose chunks were computed afresh (the rest were reused).
    pub extracted: usize,
}

/// Chunks one document, tree after tree.
pub struct Chunker {
    language: Option<Language>,
    config: ChunkConfig,
    cursor: QueryCursor,
    /// One record per top-level node of the last tree chunked.
    records: Vec<NodeRecord>,
    stats: ChunkStats,
}

impl Chunker {
    pub fn new(language: Option<Language>, config: ChunkConfig) -> Chunker {
        Chunker {
            language,
            config,
            cursor: QueryCursor::new(),
            records: Vec::new(),
            stats: ChunkStats::default(),
        }
    }

    pub fn stats(&self) -> ChunkStats {
        self.stats
    }

    /// Chunks `text` without a tree: line windows.
    pub fn windows(&mut self, text: &Rope) -> Vec<Chunk> {
        self.records.clear();
        self.stats = ChunkStats::default();
        line_windows(text, &self.config)
    }

    /// Chunks `text` as parsed into `tree`. `old` is the previous tree given to this chunker,
    /// edited to the new text with `Tree::edit`; records of its unchanged nodes are reused.
    pub fn chunk(&mut self, text: &Rope, tree: &Tree, old: Option<&Tree>) -> Vec<Chunk> {
        let Some(language) = self.language else {
            return self.windows(text);
        };
        let root = tree.root_node();
        if root.is_error() {
            return self.windows(text);
        }
        let query = chunk_query(language);
        let old_records = std::mem::take(&mut self.records);
        let mut old_nodes = old
            .map(|t| top_level(t.root_node()))
            .filter(|nodes| nodes.len() == old_records.len())
            .unwrap_or_default()
            .into_iter()
            .zip(old_records)
            .peekable();

        let nodes = top_level(root);
        let mut records = Vec::with_capacity(nodes.len());
        let mut extractor = Extractor {
            language,
            query,
            config: &self.config,
            text,
            cursor: &mut self.cursor,
        };
        let mut extracted = 0;
        for node in &nodes {
            while old_nodes
                .peek()
                .is_some_and(|(o, _)| o.start_byte() < node.start_byte())
            {
                old_nodes.next();
            }
            let reused = match old_nodes.peek() {
                Some((o, record))
                    if o.start_byte() == node.start_byte()
                        && o.end_byte() == node.end_byte()
                        && o.kind_id() == node.kind_id()
                        && !o.has_changes()
                        && record.len == node.byte_range().len() =>
                {
                    Some(record.clone())
                }
                _ => None,
            };
            records.push(reused.unwrap_or_else(|| {
                extracted += 1;
                extractor.record(*node)
            }));
        }
        let spans: Vec<(usize, usize)> = nodes
            .iter()
            .map(|n| (n.start_byte(), n.end_byte()))
            .collect();
        let chunks = assemble(&self.config, text, &spans, &records);
        self.stats = ChunkStats {
            top_level_nodes: nodes.len(),
            extracted,
        };
        self.records = records;
        chunks
    }
}

fn top_level(root: Node<'_>) -> Vec<Node<'_>> {
    let mut cursor = root.walk();
    root.children(&mut cursor).collect()
}

/// Turns per-node records into the document's chunk list: items with their attached comments,
/// runs of other nodes as groups, ids numbered in document order.
fn assemble(
    config: &ChunkConfig,
    text: &Rope,
    spans: &[(usize, usize)],
    records: &[NodeRecord],
) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::with_capacity(records.len() * 2);
    let mut ordinals = Ordinals::default();
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
        if let Some(start) = run_start.take()
            && start < attach
        {
            push_groups(
                config,
                text,
                &spans[start..attach],
                &records[start..attach],
                &mut out,
                &mut ordinals,
            );
        }
        push_item(
            text,
            spans[attach].0,
            spans[i].0,
            item,
            &mut out,
            &mut ordinals,
        );
    }
    if let Some(start) = run_start {
        push_groups(
            config,
            text,
            &spans[start..],
            &records[start..],
            &mut out,
            &mut ordinals,
        );
    }
    out
}

fn push_item(
    text: &Rope,
    attach_start: usize,
    base: usize,
    item: &[RelChunk],
    out: &mut Vec<Chunk>,
    ordinals: &mut Ordinals,
) {
    let first = out.len();
    for (k, rel) in item.iter().enumerate() {
        let mut range = rel.range.start + base..rel.range.end + base;
        let mut hash = rel.hash;
        if k == 0 && attach_start < base {
            range.start = attach_start;
            hash = hash_slice(text.byte_slice(range.clone()));
        }
        out.push(Chunk {
            id: ordinals.id(rel.kind, &rel.path, rel.key, &rel.id0),
            kind: rel.kind,
            name: rel.name.clone(),
            path: rel.path.clone(),
            parent: rel.parent.map(|p| p + first),
            range,
            signature: rel.signature.start + base..rel.signature.end + base,
            name_range: rel.name_range.start + base..rel.name_range.end + base,
            hash,
        });
    }
}

/// Runs of small items, cut so that no group passes the chunk size limit.
fn push_groups(
    config: &ChunkConfig,
    text: &Rope,
    spans: &[(usize, usize)],
    records: &[NodeRecord],
    out: &mut Vec<Chunk>,
    ordinals: &mut Ordinals,
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
        let range = spans[start].0..spans[end - 1].1;
        let key = chunk_key(ChunkKind::Group, name);
        let id0 = chunk_id(ChunkKind::Group, name, 0);
        let name: Arc<str> = Arc::from(name);
        out.push(Chunk {
            id: ordinals.id(ChunkKind::Group, &name, key, &id0),
            kind: ChunkKind::Group,
            name: name.clone(),
            path: name,
            parent: None,
            signature: range.start..range.start,
            name_range: range.start..range.start,
            hash: hash_slice(text.byte_slice(range.clone())),
            range,
        });
        start = end;
    }
}

/// The sort of a group member: import, comment, or anything else.
fn sort(record: &NodeRecord) -> u8 {
    u8::from(record.import) | (u8::from(record.comment) << 1)
}

/// Counts chunks per (kind, path) key to number ids in document order.
#[derive(Default)]
struct Ordinals {
    seen: HashMap<u64, u32, BuildHasherDefault<KeyHasher>>,
}

impl Ordinals {
    fn id(&mut self, kind: ChunkKind, path: &str, key: u64, id0: &Arc<str>) -> Arc<str> {
        let n = self.seen.entry(key).or_insert(0);
        let ordinal = *n;
        *n += 1;
        if ordinal == 0 {
            id0.clone()
        } else {
            chunk_id(kind, path, ordinal)
        }
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
