//! Line windows: the chunks of text that has no grammar, does not parse, or is minified.

use std::sync::Arc;

use ropey::Rope;

use super::extract::RelChunk;
use super::{ChunkConfig, ChunkKind};
use crate::syntax::hash_range;

/// Consecutive windows of `window_lines` lines, each cut to at most `max_chunk_bytes`
/// (at a character boundary) when its lines are long.
pub fn line_windows(text: &Rope, config: &ChunkConfig) -> Vec<RelChunk> {
    let len = text.len_bytes();
    let lines = config.window_lines.max(1);
    let max = config.max_chunk_bytes.max(4);
    let path: Arc<str> = Arc::from("lines");
    let mut out = Vec::new();
    let mut start = 0;
    while start < len {
        let line = text.byte_to_line(start);
        let mut end = text.line_to_byte(line.saturating_add(lines).min(text.len_lines()));
        if end <= start || end - start > max {
            // Back off to a character boundary, but always take at least one character.
            let cut = text.char_to_byte(text.byte_to_char(start + max.min(len - start)));
            end = if cut > start {
                cut
            } else {
                text.char_to_byte(text.byte_to_char(start) + 1)
            };
        }
        let (first, last) = (text.byte_to_line(start) + 1, text.byte_to_line(end - 1) + 1);
        out.push(RelChunk::new(
            ChunkKind::Window,
            Arc::from(format!("lines {first}-{last}")),
            path.clone(),
            None,
            start..end,
            start..start,
            hash_range(text.slice(..), start..end),
        ));
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_text_and_respect_the_byte_cap() {
        let config = ChunkConfig {
            max_chunk_bytes: 100,
            window_lines: 3,
            ..Default::default()
        };
        let text = Rope::from_str(&format!("a\nb\nc\nd\n{}\né😀\n", "x".repeat(250)));
        let windows = crate::chunks::DocChunks::new(vec![(
            0,
            crate::chunks::ChunkList::shared(line_windows(&text, &config)),
        )])
        .to_vec();
        let mut at = 0;
        for w in &windows {
            assert_eq!(w.range.start, at);
            assert!(w.range.len() <= 100);
            at = w.range.end;
        }
        assert_eq!(at, text.len_bytes());
        assert_eq!(&*windows[0].name, "lines 1-3");
        assert_eq!(&*windows[1].id, "window:lines#1");
    }
}
