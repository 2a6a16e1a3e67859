//! Open documents: a rope and a tree-sitter tree per file, edits applied in arrival order,
//! incremental reparse and re-chunking on the parse lane, one parse per document at a time. Byte offsets only; the LSP
//! edge converts positions before calling in.

mod point;
mod store;
mod syntax;

pub use point::{Point3, Points, point3};
pub use store::{Change, DocumentStats, DocumentStore, Entry, RecentEdit, SyncError};
pub use syntax::{
    HOT_SEGMENTS, ParseStats, Parsed, SEGMENT_MAX, SEGMENT_TARGET, Syntax, chunk_text,
};
