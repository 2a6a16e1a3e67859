//! The parse state of one document, in segments.
//!
//! A document is parsed as a run of segments of about [`SEGMENT_TARGET`] bytes, each its own
//! tree-sitter tree in the segment's own offsets, cut only before an item (with its doc comments)
//! that follows a node without syntax errors — so for code that parses, the chunks are the same as
//! from one tree over the whole file. An edit reparses one segment, however large the file, and
//! only the few most recently edited segments keep their trees in memory.
//!
//! A segment that may leave something open (an unclosed brace, string or comment) takes in the
//! segments after it up to the next one holding an error — its closer may be there — or, for
//! a block comment, a `*/` (which closes it even from inside a comment, where it is no error), so
//! that the closer closes it as in a whole-file parse, as long as they fit in [`SEGMENT_MAX`]; a
//! segment grown past that is cut again. An error that nothing after it could close (the `(` of a
//! call being typed, in code that parses) stays in its segment: each keystroke still reparses one.
//! Leaving something open is ending in an error, or holding an error with more opening brackets
//! than closing ones: the parser often recovers from an unclosed `{` within its segment (the `{`
//! alone is the error), where the whole file would have run it on to its `}`.
//!
//! The target is small (8 KB) because an edit can change how everything after it in its segment
//! lexes: a lone `"` turns the rest of the segment into string and its strings into code, so the
//! parser reuses nothing after it. At 32 KB such a keystroke took 1.8 ms at the median in a 3 MB
//! Rust file; at 8 KB, 0.27 ms (`cargo bench --bench keystroke`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ropey::{Rope, RopeSlice};
use tree_sitter::{InputEdit, Parser, Point, Tree};

use crate::chunks::blank_line_between;
use crate::chunks::{
    ChunkConfig, ChunkKind, ChunkList, ChunkStats, Chunked, Chunker, DocChunks, NodeRecord,
    RelChunk, line_windows,
};
use crate::syntax::{Language, parse_rope, point_at};

/// The size a segment is cut at, when the code allows.
pub const SEGMENT_TARGET: usize = 8 * 1024;
/// A segment does not grow past this to follow a syntax error; one grown past it is cut again.
pub const SEGMENT_MAX: usize = 256 * 1024;
/// Segments whose trees stay in memory between edits (the most recently edited ones).
pub const HOT_SEGMENTS: usize = 3;

/// A parsed state of a document: everything a request needs, consistent with itself.
#[derive(Clone)]
pub struct Parsed {
    pub version: i32,
    pub text: Rope,
    pub language: Option<Language>,
    pub chunks: DocChunks,
    /// Where each of `chunks`' segments starts: its line, and its column in bytes. Kept through
    /// edits as the segments move, so a whole-file answer does not look each one up.
    pub starts: Vec<Point>,
    /// The trees kept in memory: (segment start, tree in the segment's own offsets).
    pub trees: Vec<(usize, Tree)>,
    /// Kind and qualified path of the chunks this update's edits changed (empty on open).
    pub changed: Vec<(ChunkKind, Arc<str>)>,
    pub stats: ParseStats,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct ParseStats {
    pub chunk: ChunkStats,
    /// Edits folded into this parse (more than one when a burst coalesced).
    pub edits: usize,
    /// Segments parsed for this update (all of them on open).
    pub segments_parsed: usize,
    pub parse_time: Duration,
    pub chunk_time: Duration,
}

struct Segment {
    start: usize,
    /// Where the segment starts, as a tree-sitter point of the whole document.
    start_point: Point,
    len: usize,
    /// In the segment's own offsets; `None` once evicted (the next edit parses it afresh).
    tree: Option<Tree>,
    /// One per top-level node of the last parse (kept when the tree is evicted).
    records: Vec<NodeRecord>,
    /// Edits since the last parse, in the segment's offsets.
    pending: Vec<InputEdit>,
    chunks: Arc<ChunkList>,
    /// The last parse offered places to cut this segment.
    cuts: bool,
    dirty: bool,
    used: u64,
}

/// Parser, segments and chunker of one document.
pub struct Syntax {
    language: Option<Language>,
    config: ChunkConfig,
    parser: Option<(Parser, Chunker)>,
    segments: Vec<Segment>,
    /// Line windows, when the text is not parsed.
    windows: Option<Arc<ChunkList>>,
    clock: u64,
    stats: ParseStats,
    changed: Vec<(ChunkKind, Arc<str>)>,
}

impl Syntax {
    pub fn new(language: Option<Language>, config: ChunkConfig) -> Syntax {
        let parser = language.and_then(|language| {
            let mut parser = Parser::new();
            parser.set_language(&language.grammar()).ok()?;
            Some((parser, Chunker::new(language, config)))
        });
        Syntax {
            language,
            config,
            parser,
            segments: Vec::new(),
            windows: None,
            clock: 0,
            stats: ParseStats::default(),
            changed: Vec::new(),
        }
    }

    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// A new parser in place of the one that parsed the whole text: a parser keeps the largest
    /// stack it ever needed (1.4 MiB after lib.dom.d.ts), and keystrokes reparse one segment.
    fn fresh_parser(&mut self) {
        if let (Some(language), Some((parser, _))) = (self.language, &mut self.parser) {
            let mut fresh = Parser::new();
            if fresh.set_language(&language.grammar()).is_ok() {
                *parser = fresh;
            }
        }
    }

    /// Brings trees and chunks up to `text`. `edits` are the edits since the last update, in
    /// order; `reset` says the text was replaced whole.
    pub fn update(&mut self, version: i32, text: Rope, edits: &[InputEdit], reset: bool) -> Parsed {
        let started = Instant::now();
        self.clock += 1;
        self.changed.clear();
        self.stats = ParseStats {
            edits: edits.len(),
            ..ParseStats::default()
        };
        let parse = self.parser.is_some() && self.config.parse.admits(&text);
        if !parse {
            self.segments.clear();
            self.windows = Some(ChunkList::shared(line_windows(&text, &self.config)));
        } else if reset || self.windows.is_some() || self.segments.is_empty() {
            self.windows = None;
            self.segments = self.cut(text.slice(..), 0, Point::default());
            self.fresh_parser();
        } else {
            for edit in edits {
                self.apply(edit);
            }
            self.refresh(&text);
        }
        self.evict();
        self.stats.chunk_time = started.elapsed().saturating_sub(self.stats.parse_time);
        let (chunks, starts) = match &self.windows {
            Some(windows) => (
                DocChunks::new(vec![(0, windows.clone())]),
                vec![Point::default()],
            ),
            None => (
                DocChunks::new(
                    self.segments
                        .iter()
                        .map(|s| (s.start, s.chunks.clone()))
                        .collect(),
                ),
                self.segments.iter().map(|s| s.start_point).collect(),
            ),
        };
        let trees = self
            .segments
            .iter()
            .filter_map(|s| s.tree.as_ref().map(|t| (s.start, t.clone())))
            .collect();
        Parsed {
            version,
            text,
            language: self.language,
            chunks,
            starts,
            trees,
            changed: std::mem::take(&mut self.changed),
            stats: self.stats,
        }
    }

    /// Applies one edit (in document offsets) to the segments: merges the segments it spans,
    /// edits the tree of the one it lands in, and moves the ones after it.
    fn apply(&mut self, edit: &InputEdit) {
        let segments = &mut self.segments;
        let (start, old_end) = (edit.start_byte, edit.old_end_byte);
        // The segment holding the edit's start (an edit at a boundary belongs to the later one).
        let i = segments
            .partition_point(|s| s.start <= start)
            .saturating_sub(1);
        let j = segments
            .partition_point(|s| s.start < old_end)
            .saturating_sub(1)
            .max(i);
        if j > i {
            let len: usize = segments[i..=j].iter().map(|s| s.len).sum();
            segments.drain(i + 1..=j);
            let merged = &mut segments[i];
            merged.len = len;
            merged.tree = None;
            merged.records.clear();
            merged.pending.clear();
        }
        let delta = edit.new_end_byte as isize - edit.old_end_byte as isize;
        let segment = &mut segments[i];
        let local = local_edit(edit, segment.start, segment.start_point);
        if let Some(tree) = &mut segment.tree {
            tree.edit(&local);
        }
        segment.pending.push(local);
        segment.len = (segment.len as isize + delta) as usize;
        segment.dirty = true;
        for later in &mut segments[i + 1..] {
            later.start = (later.start as isize + delta) as usize;
            later.start_point = moved_point(later.start_point, edit);
        }
    }

    /// Reparses and re-chunks the segments edits landed in, then makes sure every boundary
    /// next to them is still a place a fresh parse could cut.
    fn refresh(&mut self, text: &Rope) {
        let mut i = 0;
        while i < self.segments.len() {
            if self.segments[i].len == 0 && self.segments.len() > 1 {
                // Emptied by a deletion; its neighbours now meet.
                self.segments.remove(i);
                if let Some(next) = self.segments.get_mut(i) {
                    next.dirty = true;
                }
                i = i.saturating_sub(1);
                continue;
            }
            if !self.segments[i].dirty {
                i += 1;
                continue;
            }
            self.reparse(i, text.slice(..));
            loop {
                if i > 0 && !self.boundary_holds(i - 1, text) {
                    i -= 1;
                    self.merge_through(i, i + 1, text);
                } else if i + 1 < self.segments.len() && !self.boundary_holds(i, text) {
                    self.merge_through(i, i + 1, text);
                } else if let Some(opener) = self.opener_before(i, text) {
                    // An error here may close what an earlier segment left open.
                    self.merge_through(opener, i, text);
                    i = opener;
                } else if let Some(closer) = self.closer_after(i, text) {
                    // What this segment leaves open may be closed there.
                    self.merge_through(i, closer, text);
                } else {
                    break;
                }
            }
            if self.segments[i].len > SEGMENT_MAX && self.segments[i].cuts {
                let segment = self.segments.remove(i);
                let range = segment.start..segment.start + segment.len;
                let cut = self.cut(text.byte_slice(range), segment.start, segment.start_point);
                let n = cut.len();
                self.segments.splice(i..i, cut);
                i += n;
            } else {
                i += 1;
            }
        }
    }

    /// Segment `i` takes in the segments after it up to `last` and is reparsed.
    fn merge_through(&mut self, i: usize, last: usize, text: &Rope) {
        let taken: usize = self.segments.drain(i + 1..=last).map(|s| s.len).sum();
        let segment = &mut self.segments[i];
        let old_len = segment.len;
        segment.len += taken;
        let end = point_at(text.byte_slice(segment.start..), old_len);
        let append = InputEdit {
            start_byte: old_len,
            old_end_byte: old_len,
            new_end_byte: segment.len,
            start_position: end,
            old_end_position: end,
            new_end_position: point_at(text.byte_slice(segment.start..), segment.len),
        };
        if let Some(tree) = &mut segment.tree {
            tree.edit(&append);
        }
        segment.pending.push(append);
        self.reparse(i, text.slice(..));
    }

    /// The nearest segment before `i` that may leave something open, if segment `i` may close
    /// what that one left open and both fit in SEGMENT_MAX together: segment `i` holds an error (a
    /// closer parsed on its own is one), or a `*/` — which closes an open block comment even from
    /// inside a comment of its own, where it is no error.
    fn opener_before(&self, i: usize, text: &Rope) -> Option<usize> {
        // Only the nearest earlier segment that may leave something open is a candidate: found
        // first, so that code without errors pays for no scan of this segment's text.
        let mut len = self.segments[i].len;
        let j = (0..i).rev().find(|&j| {
            len += self.segments[j].len;
            len > SEGMENT_MAX || self.leaves_open(j, text)
        })?;
        if len > SEGMENT_MAX {
            return None;
        }
        let closes = self.segments[i].records.iter().any(|r| r.error)
            || self.leaves_comment_open(j, text) && self.holds(i, text, b"*/");
        closes.then_some(j)
    }

    /// The nearest segment after `i` that may close what segment `i` leaves open, if it may
    /// leave something open and both fit in SEGMENT_MAX together: one holding an error, or, when
    /// `i` may leave a block comment open, one holding a `*/` (even inside a comment).
    fn closer_after(&self, i: usize, text: &Rope) -> Option<usize> {
        if !self.leaves_open(i, text) {
            return None;
        }
        let comment = self.leaves_comment_open(i, text);
        let mut len = self.segments[i].len;
        for (k, segment) in self.segments.iter().enumerate().skip(i + 1) {
            len += segment.len;
            if len > SEGMENT_MAX {
                return None;
            }
            if segment.records.iter().any(|r| r.error) || comment && self.holds(k, text, b"*/") {
                return Some(k);
            }
        }
        None
    }

    /// Whether segment `i` (leaving something open) may leave a block comment open: a `/*` in its
    /// last top-level node, where an unclosed comment runs to.
    fn leaves_comment_open(&self, i: usize, text: &Rope) -> bool {
        let segment = &self.segments[i];
        let from = segment.records.last().map_or(0, |r| r.start);
        let end = segment.start + segment.len;
        contains(text.byte_slice((segment.start + from).min(end)..end), b"/*")
    }

    /// Whether segment `i`'s text holds `pair`.
    fn holds(&self, i: usize, text: &Rope, pair: &[u8; 2]) -> bool {
        let segment = &self.segments[i];
        contains(
            text.byte_slice(segment.start..segment.start + segment.len),
            pair,
        )
    }

    /// Whether the boundary between segments `i` and `i + 1` is still one a fresh parse would
    /// offer: either the second begins an item (with the comments above it) and nothing at the
    /// end of the first would attach to it, or the first ends with an item, so no run of small
    /// items continues across.
    fn boundary_holds(&self, i: usize, text: &Rope) -> bool {
        let (a, b) = (&self.segments[i], &self.segments[i + 1]);
        let (Some(last), Some(first)) = (a.records.last(), b.records.first()) else {
            return true;
        };
        let text = text.slice(..);
        let adjacent = |end: usize, start: usize| !blank_line_between(text, end, start);
        // Does `b` begin with an item, possibly behind comments and attributes that attach to it?
        let mut unit = false;
        for (k, record) in b.records.iter().enumerate() {
            if record.item.is_some() {
                unit = true;
                break;
            }
            let next = b.records.get(k + 1);
            if !record.attachable
                || next.is_none_or(|n| !adjacent(b.start + record.end, b.start + n.start))
            {
                break;
            }
        }
        if unit {
            !(last.attachable && adjacent(a.start + last.end, b.start + first.start))
        } else {
            last.item.is_some()
        }
    }

    /// Whether segment `i` may leave something open for a later segment to close: it ends in
    /// a syntax error (an unclosed string or comment runs to its end), or a top-level node of it
    /// that holds an error has more opening brackets than closing ones — the parser often
    /// recovers from an unclosed `{` within the segment, the `{` alone in error, where the whole
    /// file would have run it on to its `}`. Errors that leave nothing open (a statement being
    /// typed, a leftover half line) make no segment take in the next ones.
    fn leaves_open(&self, i: usize, text: &Rope) -> bool {
        let segment = &self.segments[i];
        segment.records.last().is_some_and(|r| r.error)
            || segment.records.iter().filter(|r| r.error).any(|r| {
                let (start, end) = (segment.start + r.start, segment.start + r.end);
                unclosed_brackets(text.byte_slice(start..end.min(text.len_bytes()))) > 0
            })
    }

    /// Parses segment `i` (incrementally when it kept its tree) and re-chunks it.
    fn reparse(&mut self, i: usize, text: RopeSlice<'_>) {
        let Some((parser, chunker)) = &mut self.parser else {
            return;
        };
        let segment = &mut self.segments[i];
        let slice = text.byte_slice(segment.start..segment.start + segment.len);
        let started = Instant::now();
        let old = segment.tree.take();
        let tree = parse_rope(parser, slice, old.as_ref(), &self.config.parse);
        self.stats.parse_time += started.elapsed();
        self.stats.segments_parsed += 1;
        segment.dirty = false;
        segment.used = self.clock;
        match tree {
            Some(tree) => {
                let Chunked {
                    chunks,
                    cuts,
                    stats,
                    changed,
                    ..
                } = chunker.chunk(slice, &tree, &segment.pending, &mut segment.records);
                // A fresh parse of a segment re-extracts everything: only edits count as changes.
                if !segment.pending.is_empty() {
                    self.changed.extend(changed);
                }
                segment.pending.clear();
                segment.cuts = !cuts.is_empty();
                add_stats(&mut self.stats.chunk, stats);
                segment.chunks =
                    ChunkList::shared(unparsed_as_windows(slice, &tree, chunks, &self.config));
                segment.tree = Some(tree);
            }
            None => {
                // The parse ran out of time: this segment gets windows until its next edit.
                segment.records.clear();
                segment.pending.clear();
                segment.chunks = ChunkList::shared(line_windows(&Rope::from(slice), &self.config));
            }
        }
    }

    /// Parses `text` (starting at document offset `base`) into segments cut before items.
    fn cut(&mut self, text: RopeSlice<'_>, base: usize, base_point: Point) -> Vec<Segment> {
        let mut segments = Vec::new();
        let len = text.len_bytes();
        let mut start = 0;
        while start < len || segments.is_empty() {
            let (segment, end) = self.cut_one(text, start);
            let start_point = if start == 0 {
                base_point
            } else {
                let local = point_at(text, start);
                if local.row == 0 {
                    Point::new(base_point.row, base_point.column + local.column)
                } else {
                    Point::new(base_point.row + local.row, local.column)
                }
            };
            segments.push(Segment {
                start: base + start,
                start_point,
                used: self.clock,
                ..segment
            });
            // Only the last few trees are worth keeping: parsing a large file must not hold
            // all of its trees at once.
            if let Some(done) = segments.len().checked_sub(HOT_SEGMENTS + 1) {
                segments[done].tree = None;
            }
            if end <= start {
                break;
            }
            start = end;
        }
        segments
    }

    /// The segment that starts at `start`: parses a window of about the target size and cuts it
    /// at its last clean cut. A window without one grows (doubling): without limit while the only
    /// error is in its last node (an item larger than the window, which stays whole), up to
    /// SEGMENT_MAX when errors lie before that, and is then cut at its fallback (before its last
    /// item or top-level node).
    fn cut_one(&mut self, text: RopeSlice<'_>, start: usize) -> (Segment, usize) {
        let len = text.len_bytes();
        let Some((parser, chunker)) = &mut self.parser else {
            unreachable!("segments are cut only for parsed languages")
        };
        let mut window = line_end(text, (start + SEGMENT_TARGET).min(len));
        loop {
            let slice = text.byte_slice(start..window);
            let started = Instant::now();
            let tree = parse_rope(parser, slice, None, &self.config.parse);
            self.stats.parse_time += started.elapsed();
            self.stats.segments_parsed += 1;
            let Some(mut tree) = tree else {
                // Out of time: line windows for this stretch.
                let chunks = line_windows(&Rope::from(slice), &self.config);
                return (
                    Segment::new(window - start, None, Vec::new(), chunks),
                    window,
                );
            };
            let mut records = Vec::new();
            let chunked = chunker.chunk(slice, &tree, &[], &mut records);
            add_stats(&mut self.stats.chunk, chunked.stats);
            let size = window - start;
            let clean = chunked.cuts.iter().rev().copied().find(|&c| c > 0);
            let cut = if window == len {
                None
            } else if clean.is_some() {
                clean
            } else if !broken_before_end(&tree, &records) || size < SEGMENT_MAX {
                window = line_end(text, (start + size * 2).min(len));
                continue;
            } else {
                chunked.fallback_cut.filter(|&c| c > 0)
            };
            let Some(cut) = cut else {
                let mut segment = Segment::new(
                    size,
                    Some(tree.clone()),
                    records,
                    unparsed_as_windows(slice, &tree, chunked.chunks, &self.config),
                );
                segment.cuts = clean.is_some();
                return (segment, window);
            };
            // Drop the tail after the cut; the parse reuses everything before it.
            let truncate = InputEdit {
                start_byte: cut,
                old_end_byte: size,
                new_end_byte: cut,
                start_position: point_at(slice, cut),
                old_end_position: point_at(slice, size),
                new_end_position: point_at(slice, cut),
            };
            tree.edit(&truncate);
            let slice = text.byte_slice(start..start + cut);
            let started = Instant::now();
            let Some(new) = parse_rope(parser, slice, Some(&tree), &self.config.parse) else {
                let chunks = line_windows(&Rope::from(slice), &self.config);
                return (Segment::new(cut, None, Vec::new(), chunks), start + cut);
            };
            self.stats.parse_time += started.elapsed();
            let chunked = chunker.chunk(slice, &new, &[truncate], &mut records);
            let mut segment = Segment::new(
                cut,
                Some(new.clone()),
                records,
                unparsed_as_windows(slice, &new, chunked.chunks, &self.config),
            );
            segment.cuts = !chunked.cuts.is_empty();
            return (segment, start + cut);
        }
    }

    /// Drops the trees of all but the most recently edited segments.
    fn evict(&mut self) {
        let mut hot: Vec<(u64, usize)> = self
            .segments
            .iter()
            .enumerate()
            .filter(|(_, s)| s.tree.is_some())
            .map(|(i, s)| (s.used, i))
            .collect();
        if hot.len() <= HOT_SEGMENTS {
            return;
        }
        hot.sort_unstable_by(|a, b| b.cmp(a));
        for &(_, i) in &hot[HOT_SEGMENTS..] {
            self.segments[i].tree = None;
        }
    }
}

impl Segment {
    fn new(
        len: usize,
        tree: Option<Tree>,
        records: Vec<NodeRecord>,
        chunks: Vec<RelChunk>,
    ) -> Segment {
        Segment {
            start: 0,
            start_point: Point::default(),
            len,
            tree,
            records,
            pending: Vec::new(),
            chunks: ChunkList::shared(chunks),
            cuts: false,
            dirty: false,
            used: 0,
        }
    }
}

/// Whether `text` holds the two bytes `pair` next to each other (across the rope's pieces too).
/// Opening brackets in `text` less closing ones (in strings and comments too: a guess that errs
/// towards taking in a segment more).
fn unclosed_brackets(text: RopeSlice<'_>) -> isize {
    let mut open = 0;
    for piece in text.chunks() {
        for &b in piece.as_bytes() {
            match b {
                b'{' | b'(' | b'[' => open += 1,
                b'}' | b')' | b']' => open -= 1,
                _ => {}
            }
        }
    }
    open
}

fn contains(text: RopeSlice<'_>, pair: &[u8; 2]) -> bool {
    let mut last = 0u8;
    for piece in text.chunks() {
        let bytes = piece.as_bytes();
        if bytes.first() == Some(&pair[1]) && last == pair[0] {
            return true;
        }
        if bytes.windows(2).any(|w| w == pair) {
            return true;
        }
        if let Some(&b) = bytes.last() {
            last = b;
        }
    }
    false
}

/// Text that did not parse at all (the tree is one error, holding no chunk but fragments) gets
/// line windows instead.
fn unparsed_as_windows(
    text: RopeSlice<'_>,
    tree: &Tree,
    chunks: Vec<RelChunk>,
    config: &ChunkConfig,
) -> Vec<RelChunk> {
    if tree.root_node().is_error() && chunks.iter().all(|c| c.kind == ChunkKind::Group) {
        line_windows(&Rope::from(text), config)
    } else {
        chunks
    }
}

/// Whether a parse holds an error before its last top-level node (the last one may only be cut
/// short by the end of the window).
fn broken_before_end(tree: &Tree, records: &[NodeRecord]) -> bool {
    tree.root_node().is_error() || records.iter().rev().skip(1).any(|r| r.error)
}

fn add_stats(total: &mut ChunkStats, more: ChunkStats) {
    total.top_level_nodes += more.top_level_nodes;
    total.extracted += more.extracted;
}

/// The end of the line holding `at` (just after its line break), or the end of the text.
fn line_end(text: RopeSlice<'_>, at: usize) -> usize {
    if at >= text.len_bytes() {
        return text.len_bytes();
    }
    let line = text.byte_to_line(at);
    if line + 1 >= text.len_lines() {
        text.len_bytes()
    } else {
        text.line_to_byte(line + 1)
    }
}

/// A document edit in the offsets of a segment starting at `start` (`start_point`).
fn local_edit(edit: &InputEdit, start: usize, start_point: Point) -> InputEdit {
    let local = |p: Point| {
        if p.row == start_point.row {
            Point::new(0, p.column.saturating_sub(start_point.column))
        } else {
            Point::new(p.row.saturating_sub(start_point.row), p.column)
        }
    };
    InputEdit {
        start_byte: edit.start_byte - start,
        old_end_byte: edit.old_end_byte - start,
        new_end_byte: edit.new_end_byte - start,
        start_position: local(edit.start_position),
        old_end_position: local(edit.old_end_position),
        new_end_position: local(edit.new_end_position),
    }
}

/// Where a point after an edit's old end moves to.
fn moved_point(p: Point, edit: &InputEdit) -> Point {
    let (old, new) = (edit.old_end_position, edit.new_end_position);
    if p.row == old.row {
        Point::new(new.row, new.column + p.column.saturating_sub(old.column))
    } else {
        Point::new((p.row + new.row).saturating_sub(old.row), p.column)
    }
}

/// Chunks of a whole text, from scratch: what opening the file computes.
pub fn chunk_text(text: &Rope, language: Option<Language>, config: &ChunkConfig) -> DocChunks {
    Syntax::new(language, *config)
        .update(0, text.clone(), &[], true)
        .chunks
}
