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
pub mod syntax;

/// mimalloc for every binary that links Strata (the server, the CLI, tests and benches): the
/// indexer and the protocol edge allocate and free many small objects from several threads, and
/// mimalloc returns freed memory to the system where glibc's allocator keeps it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
