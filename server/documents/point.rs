//! Byte offsets → line and column in the three encodings LSP clients use. Every conversion of a
//! byte offset to a position goes through [`point3`].

use ropey::Rope;

/// A position in the three LSP encodings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point3 {
    pub line: u32,
    pub col8: u32,
    pub col16: u32,
    pub col32: u32,
}

/// Columns longer than this are counted through the rope's indexes, not by scanning the line.
const SCAN_LIMIT: usize = 2048;

/// The position of `byte` (clamped to the text; a character boundary). Two descents of the rope
/// find the line; the columns come from scanning the line up to `byte`, which costs less than
/// the four more descents the indexed conversions take, except on very long lines.
pub fn point3(text: &Rope, byte: usize) -> Point3 {
    Points::new(text).at(byte)
}

/// Converts many offsets of one text: the line found last is kept, so that offsets on the same
/// line (a declaration's start, its name, the end of its signature) cost no descent.
pub struct Points<'a> {
    text: &'a Rope,
    /// The line kept: its number and its bytes, line break included.
    line: usize,
    start: usize,
    end: usize,
}

impl<'a> Points<'a> {
    pub fn new(text: &'a Rope) -> Points<'a> {
        Points {
            text,
            line: 0,
            start: 0,
            end: 0,
        }
    }

    pub fn text(&self) -> &'a Rope {
        self.text
    }

    pub fn at(&mut self, byte: usize) -> Point3 {
        let text = self.text;
        let byte = byte.min(text.len_bytes());
        if !(self.start..self.end).contains(&byte) {
            self.line = text.byte_to_line(byte);
            self.start = text.line_to_byte(self.line);
            self.end = if self.line + 1 < text.len_lines() {
                text.line_to_byte(self.line + 1)
            } else {
                text.len_bytes()
            };
        }
        let (line, line_start) = (self.line, self.start);
        let col8 = byte - line_start;
        let (col16, col32) = if col8 <= SCAN_LIMIT {
            let (mut units, mut chars) = (0, 0);
            let (chunks, chunk_start, _, _) = text.chunks_at_byte(line_start);
            let mut at = chunk_start;
            for chunk in chunks {
                let bytes = chunk.as_bytes();
                let from = line_start.saturating_sub(at);
                let to = (byte - at).min(bytes.len());
                for &b in &bytes[from.min(to)..to] {
                    // A character starts at every byte that is not a continuation byte; one of
                    // four bytes is outside the BMP and takes two UTF-16 units.
                    let starts = (b & 0xC0 != 0x80) as usize;
                    chars += starts;
                    units += starts + (b >= 0xF0) as usize;
                }
                at += bytes.len();
                if at >= byte {
                    break;
                }
            }
            (units, chars)
        } else {
            let char_index = text.byte_to_char(byte);
            let line_char = text.line_to_char(line);
            (
                text.char_to_utf16_cu(char_index) - text.char_to_utf16_cu(line_char),
                char_index - line_char,
            )
        };
        Point3 {
            line: line as u32,
            col8: col8 as u32,
            col16: col16 as u32,
            col32: col32 as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexed conversions, as the reference.
    fn indexed(text: &Rope, byte: usize) -> Point3 {
        let line = text.byte_to_line(byte);
        let char_index = text.byte_to_char(byte);
        let line_char = text.line_to_char(line);
        Point3 {
            line: line as u32,
            col8: (byte - text.line_to_byte(line)) as u32,
            col16: (text.char_to_utf16_cu(char_index) - text.char_to_utf16_cu(line_char)) as u32,
            col32: (char_index - line_char) as u32,
        }
    }

    #[test]
    fn scanning_agrees_with_the_rope_on_every_boundary() {
        // Short and long lines, CRLF and lone CR, BMP and astral characters, and lines that span
        // many rope chunks (ropey's leaves are about 1 KB).
        let mut source = String::from("a😀é\r\nx\ry\n\n");
        for i in 0..60 {
            source.push_str(&"é😀ab中𝔘".repeat(i % 7));
            source.push_str(&"x".repeat(i * 331 % 3000));
            source.push(if i % 5 == 0 { '\r' } else { '\n' });
        }
        let text = Rope::from_str(&source);
        let boundaries: Vec<usize> = source.char_indices().map(|(i, _)| i).collect();
        let mut points = Points::new(&text);
        // Every boundary near a line's start or a multi-byte character, a sample of the rest.
        for (n, &byte) in boundaries.iter().enumerate() {
            let near = boundaries[n.saturating_sub(3)..(n + 3).min(boundaries.len())]
                .windows(2)
                .any(|w| w[1] - w[0] > 1 || matches!(source.as_bytes()[w[0]], b'\n' | b'\r'));
            if !near && n % 17 != 0 {
                continue;
            }
            assert_eq!(point3(&text, byte), indexed(&text, byte), "at byte {byte}");
            assert_eq!(
                points.at(byte),
                indexed(&text, byte),
                "cursor at byte {byte}"
            );
            let back = byte.saturating_sub(40);
            if source.is_char_boundary(back) {
                assert_eq!(
                    points.at(back),
                    indexed(&text, back),
                    "cursor back at {back}"
                );
            }
        }
        assert_eq!(point3(&text, source.len()), indexed(&text, source.len()));
        assert_eq!(point3(&text, usize::MAX), indexed(&text, source.len()));
    }
}
