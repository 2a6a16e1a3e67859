//! Parsing: languages and their grammars, and tree-sitter parses that read straight from a rope.
//! Everything here works in byte offsets and rope lines; nothing here knows the LSP.

mod language;
mod parse;

pub use language::Language;
pub use parse::{
    ParseLimits, hash_bytes, hash_range, input_edit, parse_rope, pieces, point_at, text_of,
};
