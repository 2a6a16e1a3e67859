//! Tree-sitter parses that read the text from rope chunks (no whole-document copy), the
//! `InputEdit` for a byte-range replacement, and byte ranges of a rope read (and hashed) as its
//! chunks, without building rope slices.

use std::ops::{ControlFlow, Range};
use std::time::{Duration, Instant};

use ropey::{Rope, RopeSlice};
use tree_sitter::{InputEdit, Parser, Point, Tree};
use xxhash_rust::xxh3::Xxh3;

/// When a file is not parsed at all, or a parse is abandoned.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// Files larger than this are not parsed; they get line windows.
    pub max_parse_bytes: usize,
    /// Files whose average line is longer than this (minified or generated) get line windows.
    pub max_average_line_bytes: usize,
    /// A parse running longer than this is abandoned and the file gets line windows.
    pub parse_timeout: Duration,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_parse_bytes: 16 * 1024 * 1024,
            max_average_line_bytes: 400,
            parse_timeout: Duration::from_secs(5),
        }
    }
}

impl ParseLimits {
    /// Whether a text of this shape should be parsed at all.
    pub fn admits(&self, text: &Rope) -> bool {
        let bytes = text.len_bytes();
        bytes <= self.max_parse_bytes
            && bytes / text.len_lines().max(1) <= self.max_average_line_bytes
    }
}

/// Parses `text`, reusing `old` (already edited with [`Tree::edit`]) when given.
/// Returns `None` when the parse ran past the timeout.
pub fn parse_rope(
    parser: &mut Parser,
    text: RopeSlice<'_>,
    old: Option<&Tree>,
    limits: &ParseLimits,
) -> Option<Tree> {
    let len = text.len_bytes();
    let mut read = |byte: usize, _: Point| -> &[u8] {
        if byte >= len {
            return &[];
        }
        let (chunk, start, _, _) = text.chunk_at_byte(byte);
        &chunk.as_bytes()[byte - start..]
    };
    let deadline = Instant::now() + limits.parse_timeout;
    let mut progress = |_: &tree_sitter::ParseState| {
        if Instant::now() > deadline {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
    let tree = parser.parse_with_options(&mut read, old, Some(options));
    if tree.is_none() {
        parser.reset();
    }
    tree
}

/// The tree-sitter point of a byte offset: rope line and byte column.
pub fn point_at(text: RopeSlice<'_>, byte: usize) -> Point {
    let row = text.byte_to_line(byte);
    Point::new(row, byte - text.line_to_byte(row))
}

/// The edit that replaces `old_start..old_end` of `before` and yields `after`, where the
/// inserted text ends at `new_end` in `after`.
pub fn input_edit(
    before: &Rope,
    after: &Rope,
    old_start: usize,
    old_end: usize,
    new_end: usize,
) -> InputEdit {
    InputEdit {
        start_byte: old_start,
        old_end_byte: old_end,
        new_end_byte: new_end,
        start_position: point_at(before.slice(..), old_start),
        old_end_position: point_at(before.slice(..), old_end),
        new_end_position: point_at(after.slice(..), new_end),
    }
}

/// The content hash of `range` of a rope (xxh3, streaming over the rope's chunks).
pub fn hash_range(text: RopeSlice<'_>, range: Range<usize>) -> u64 {
    let mut hasher = Xxh3::new();
    for piece in pieces(text, range) {
        hasher.update(piece.as_bytes());
    }
    hasher.digest()
}

/// The text of `range` of a rope, as the rope's chunks cut to the range (and to whole
/// characters, should an end fall inside one). Cheaper than `byte_slice(range)`, which also
/// counts the characters, UTF-16 units and lines at both ends: a cost the indexer's profile
/// showed. A word may span two pieces.
pub fn pieces<'a>(text: RopeSlice<'a>, range: Range<usize>) -> impl Iterator<Item = &'a str> {
    let end = range.end.min(text.len_bytes());
    let start = range.start.min(end);
    let (chunks, mut at, _, _) = text.chunks_at_byte(start);
    chunks.map_while(move |chunk| {
        if at >= end {
            return None;
        }
        let mut from = start.saturating_sub(at).min(chunk.len());
        while !chunk.is_char_boundary(from) {
            from += 1;
        }
        let mut to = (end - at).min(chunk.len());
        while !chunk.is_char_boundary(to) {
            to -= 1;
        }
        at += chunk.len();
        Some(chunk.get(from..to).unwrap_or(""))
    })
}

/// [`pieces`] joined.
pub fn text_of(text: RopeSlice<'_>, range: Range<usize>) -> String {
    pieces(text, range).collect()
}

pub fn hash_bytes(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::Language;

    #[test]
    fn pieces_of_a_range_are_its_text_across_chunks() {
        // Long enough for many rope chunks, with characters of every UTF-8 length.
        let line = "fn é_😀() { let 東京 = 1; }\n";
        let source = line.repeat(400);
        let rope = Rope::from_str(&source);
        assert!(rope.chunks().count() > 4);
        let whole = rope.slice(..);
        let boundaries: Vec<usize> = (0..=source.len())
            .filter(|&i| source.is_char_boundary(i))
            .step_by(97)
            .collect();
        for &start in &boundaries {
            for &end in boundaries.iter().filter(|&&e| e >= start).take(12) {
                assert_eq!(text_of(whole, start..end), &source[start..end]);
                assert_eq!(
                    hash_range(whole, start..end),
                    hash_bytes(&source.as_bytes()[start..end])
                );
            }
        }
        // Within a slice of the rope, offsets are the slice's.
        let part = rope.byte_slice(line.len()..3 * line.len());
        assert_eq!(text_of(part, 0..line.len()), line);
        // Ends past the text or inside a character are cut back, never a panic.
        assert_eq!(text_of(whole, source.len() - 2..source.len() + 10), "}\n");
        let inside = line.find('é').unwrap() + 1;
        assert_eq!(text_of(whole, 0..inside), &line[..inside - 1]);
    }

    #[test]
    fn parses_from_rope_chunks_and_reparses_incrementally() {
        // A rope large enough to have many chunks.
        let source: String = (0..2000)
            .map(|i| format!("fn f{i}() {{ let x = {i}; }}\n"))
            .collect();
        let mut rope = Rope::from_str(&source);
        let mut parser = Parser::new();
        parser.set_language(&Language::Rust.grammar()).unwrap();
        let limits = ParseLimits::default();
        let mut tree = parse_rope(&mut parser, rope.slice(..), None, &limits).unwrap();
        assert!(!tree.root_node().has_error());
        assert_eq!(tree.root_node().named_child_count(), 2000);

        let at = rope.line_to_byte(1000) + 4; // inside the name of f1000
        let before = rope.clone();
        rope.insert(rope.byte_to_char(at), "oo");
        tree.edit(&input_edit(&before, &rope, at, at, at + 2));
        let new = parse_rope(&mut parser, rope.slice(..), Some(&tree), &limits).unwrap();
        let fresh = parse_rope(&mut parser, rope.slice(..), None, &limits).unwrap();
        assert_eq!(new.root_node().to_sexp(), fresh.root_node().to_sexp());
        let name = new
            .root_node()
            .named_child(1000)
            .unwrap()
            .child_by_field_name("name")
            .unwrap();
        assert_eq!(rope.byte_slice(name.byte_range()).to_string(), "foo1000");
    }

    #[test]
    fn limits_send_minified_text_to_windows() {
        let limits = ParseLimits::default();
        assert!(limits.admits(&Rope::from_str("fn main() {}\n")));
        assert!(!limits.admits(&Rope::from_str(&"x".repeat(10_000))));
    }
}
