//! Strata: a language server that gives editors LLM agents which see the right code, fast.
//!
//! The data path runs `lsp` (the protocol edge) → `documents` (rope + tree per open file, edits
//! in arrival order) → `chunks` (semantic chunks from `queries/<lang>/chunks.scm`). Everything
//! below `lsp` works in byte offsets and knows nothing of the protocol.

pub mod agents;
pub mod archive;
pub mod chunks;
pub mod completion;
pub mod context;
pub mod documents;
pub mod llm;
pub mod lsp;
pub mod resources;
pub mod session;
pub mod syntax;
