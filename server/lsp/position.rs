//! LSP positions ↔ byte offsets, in the encoding negotiated at `initialize`. The only place that
//! knows UTF-16. Conversions cost O(log n) through the rope's indexes, whatever the line length.

use std::ops::Range;

use ropey::Rope;

use crate::documents::{Point3, Points, point3};
use tower_lsp_server::ls_types::{Position, PositionEncodingKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    /// utf-8 when the client offers it, else utf-16 (which every client must support); utf-32
    /// when it is the only other offer.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Encoding {
        let offered = offered.unwrap_or_default();
        if offered.contains(&PositionEncodingKind::UTF8) {
            Encoding::Utf8
        } else if offered.contains(&PositionEncodingKind::UTF16) || offered.is_empty() {
            Encoding::Utf16
        } else if offered.contains(&PositionEncodingKind::UTF32) {
            Encoding::Utf32
        } else {
            Encoding::Utf16
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
            Encoding::Utf32 => PositionEncodingKind::UTF32,
        }
    }
}

/// Bytes of the line break at the end of `line` (0 on the last line).
fn terminator_len(text: &Rope, line: usize) -> usize {
    let slice = text.line(line);
    let n = slice.len_bytes();
    match (
        n.checked_sub(2).map(|i| slice.byte(i)),
        n.checked_sub(1).map(|i| slice.byte(i)),
    ) {
        (Some(b'\r'), Some(b'\n')) => 2,
        (_, Some(b'\n' | b'\r')) => 1,
        _ => 0,
    }
}

/// The byte offset of `position`, or why it does not fit the text: a line past the end, or a
/// position inside a character (or surrogate pair). A character past the end of its line means
/// the end of the line, as the LSP says; the line after the last, at character 0, means the end
/// of the text.
pub fn to_byte(text: &Rope, position: Position, encoding: Encoding) -> Result<usize, String> {
    let line = position.line as usize;
    let ch = position.character as usize;
    if line == text.len_lines() && ch == 0 {
        return Ok(text.len_bytes());
    }
    if line >= text.len_lines() {
        return Err(format!(
            "line {line} is past the end of the document ({} lines)",
            text.len_lines()
        ));
    }
    let start = text.line_to_byte(line);
    let slice = text.line(line);
    let content_bytes = slice.len_bytes() - terminator_len(text, line);
    let content = slice.byte_slice(..content_bytes);
    let byte = match encoding {
        Encoding::Utf8 => {
            let ch = ch.min(content_bytes);
            if content.char_to_byte(content.byte_to_char(ch)) != ch {
                return Err(format!("{line}:{ch} is inside a UTF-8 character"));
            }
            ch
        }
        Encoding::Utf16 => {
            let ch = ch.min(content.len_utf16_cu());
            let char_index = content.utf16_cu_to_char(ch);
            if content.char_to_utf16_cu(char_index) != ch {
                return Err(format!("{line}:{ch} is inside a UTF-16 surrogate pair"));
            }
            content.char_to_byte(char_index)
        }
        Encoding::Utf32 => content.char_to_byte(ch.min(content.len_chars())),
    };
    Ok(start + byte)
}

/// Like [`to_byte`], but a position past the end of its line or of the text is moved back to
/// that end, and one inside a character to its start (as the LSP asks of request positions).
pub fn to_byte_clamped(text: &Rope, position: Position, encoding: Encoding) -> usize {
    let last = text.len_lines() - 1;
    let line = (position.line as usize).min(last);
    if (position.line as usize) > last {
        return text.len_bytes();
    }
    let start = text.line_to_byte(line);
    let content_bytes = text.line(line).len_bytes() - terminator_len(text, line);
    let content = text.byte_slice(start..start + content_bytes);
    let ch = position.character as usize;
    let byte = match encoding {
        Encoding::Utf8 => content.char_to_byte(content.byte_to_char(ch.min(content_bytes))),
        Encoding::Utf16 => {
            content.char_to_byte(content.utf16_cu_to_char(ch.min(content.len_utf16_cu())))
        }
        Encoding::Utf32 => content.char_to_byte(ch.min(content.len_chars())),
    };
    start + byte
}

/// The position of a byte offset (which must lie on a character boundary within the text).
pub fn to_position(text: &Rope, byte: usize, encoding: Encoding) -> Position {
    from_point(&point3(text, byte), encoding)
}

/// The position of a point in the negotiated encoding.
pub fn from_point(point: &Point3, encoding: Encoding) -> Position {
    let character = match encoding {
        Encoding::Utf8 => point.col8,
        Encoding::Utf16 => point.col16,
        Encoding::Utf32 => point.col32,
    };
    Position::new(point.line, character)
}

/// [`to_range`] through a cursor that keeps the line it found last: for many ranges of one text.
pub fn range_at(
    points: &mut Points<'_>,
    range: Range<usize>,
    encoding: Encoding,
) -> tower_lsp_server::ls_types::Range {
    tower_lsp_server::ls_types::Range::new(
        from_point(&points.at(range.start), encoding),
        from_point(&points.at(range.end), encoding),
    )
}

pub fn to_range(
    text: &Rope,
    range: Range<usize>,
    encoding: Encoding,
) -> tower_lsp_server::ls_types::Range {
    tower_lsp_server::ls_types::Range::new(
        to_position(text, range.start, encoding),
        to_position(text, range.end, encoding),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position::new(line, character)
    }

    #[test]
    fn converts_in_every_encoding() {
        // "a😀é" : 😀 is 4 bytes, 2 UTF-16 units, 1 char; é is 2 bytes.
        let text = Rope::from_str("a😀é\r\nx\ry\n");
        assert_eq!(to_byte(&text, pos(0, 3), Encoding::Utf16), Ok(5));
        assert_eq!(to_byte(&text, pos(0, 5), Encoding::Utf8), Ok(5));
        assert_eq!(to_byte(&text, pos(0, 2), Encoding::Utf32), Ok(5));
        assert_eq!(to_byte(&text, pos(0, 4), Encoding::Utf16), Ok(7));
        // CRLF and CR both end a line.
        assert_eq!(to_byte(&text, pos(1, 0), Encoding::Utf16), Ok(9));
        assert_eq!(to_byte(&text, pos(2, 1), Encoding::Utf16), Ok(12));
        assert_eq!(to_byte(&text, pos(3, 0), Encoding::Utf16), Ok(13));
        for encoding in [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32] {
            for byte in [0, 1, 5, 7, 9, 10, 11, 12, 13] {
                let p = to_position(&text, byte, encoding);
                assert_eq!(to_byte(&text, p, encoding), Ok(byte), "{encoding:?} {byte}");
            }
        }
    }

    #[test]
    fn refuses_positions_that_do_not_fit() {
        let text = Rope::from_str("a😀é\nx");
        let error = |p: Position, e: Encoding| to_byte(&text, p, e).unwrap_err();
        assert!(error(pos(0, 2), Encoding::Utf16).contains("surrogate"));
        assert!(error(pos(0, 2), Encoding::Utf8).contains("inside"));
        // Past the end of a line: the end of the line (LSP 3.17, Position).
        assert_eq!(to_byte(&text, pos(0, 5), Encoding::Utf16), Ok(7));
        assert_eq!(to_byte(&text, pos(1, 2), Encoding::Utf16), Ok(9));
        // The line after the last: only its start, which is the end of the text.
        assert_eq!(to_byte(&text, pos(2, 0), Encoding::Utf16), Ok(9));
        assert!(error(pos(2, 1), Encoding::Utf16).contains("past the end of the document"));
        assert!(error(pos(3, 0), Encoding::Utf16).contains("past the end of the document"));
        assert_eq!(to_byte_clamped(&text, pos(0, 99), Encoding::Utf16), 7);
        assert_eq!(to_byte_clamped(&text, pos(0, 2), Encoding::Utf16), 1);
        assert_eq!(to_byte_clamped(&text, pos(9, 0), Encoding::Utf16), 9);
    }

    #[test]
    fn negotiates_the_encoding() {
        use PositionEncodingKind as K;
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF16, K::UTF8])),
            Encoding::Utf8
        );
        assert_eq!(Encoding::negotiate(Some(&[K::UTF32])), Encoding::Utf32);
        assert_eq!(Encoding::negotiate(Some(&[K::UTF16])), Encoding::Utf16);
    }
}
