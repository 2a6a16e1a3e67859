//! The chunk queries: `queries/<lang>/chunks.scm`, embedded in the binary, compiled once per
//! language on first use. A `; inherits: other` line pulls in another language's file first.

use std::sync::OnceLock;

use tree_sitter::Query;

use super::ChunkKind;
use crate::syntax::Language;

/// A compiled chunk query and the meaning of its captures.
pub struct ChunkQuery {
    pub query: Query,
    /// For each capture index, the chunk kind it marks (`@chunk.<kind>`).
    pub kinds: Vec<Option<ChunkKind>>,
    pub name: Option<u32>,
    pub name_trait: Option<u32>,
    pub body: Option<u32>,
}

#[derive(Debug)]
pub struct QueryError {
    pub language: Language,
    pub message: String,
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queries/{}/chunks.scm: {}",
            self.language.name(),
            self.message
        )
    }
}

impl std::error::Error for QueryError {}

fn embedded(name: &str) -> Option<&'static str> {
    Some(match name {
        "rust" => include_str!("../../queries/rust/chunks.scm"),
        "typescript" => include_str!("../../queries/typescript/chunks.scm"),
        "tsx" => include_str!("../../queries/tsx/chunks.scm"),
        "javascript" => include_str!("../../queries/javascript/chunks.scm"),
        _ => return None,
    })
}

/// A fingerprint of every language's chunk query: what the archive's chunks were cut by.
pub fn queries_fingerprint() -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for language in Language::ALL {
        hasher.update(query_source(language).as_bytes());
        hasher.update(b"\0");
    }
    format!("{:016x}", hasher.digest())
}

/// The full source of a language's chunk query, with `; inherits:` resolved.
pub fn query_source(language: Language) -> String {
    resolve(embedded(language.name()).unwrap_or_default(), &mut |name| {
        embedded(name).map(str::to_owned)
    })
}

/// Prepends the files named on `; inherits: a, b` lines, resolved through `load`.
pub(crate) fn resolve(source: &str, load: &mut dyn FnMut(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for line in source.lines() {
        if let Some(names) = line.trim().strip_prefix("; inherits:") {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if let Some(parent) = load(name) {
                    out.push_str(&resolve(&parent, load));
                    out.push('\n');
                }
            }
        }
    }
    out.push_str(source);
    out
}

/// Compiles a chunk query for `language`, checking that it uses only known captures.
pub fn compile_query(language: Language, source: &str) -> Result<ChunkQuery, QueryError> {
    let error = |message: String| QueryError { language, message };
    let query = Query::new(&language.grammar(), source).map_err(|e| error(e.to_string()))?;
    let mut kinds = Vec::new();
    for name in query.capture_names() {
        let kind = match name.strip_prefix("chunk.") {
            Some(kind) => Some(
                ChunkKind::from_capture(kind)
                    .ok_or_else(|| error(format!("unknown chunk kind @{name}")))?,
            ),
            None if matches!(*name, "name" | "name.trait" | "body") => None,
            None => return Err(error(format!("unknown capture @{name}"))),
        };
        kinds.push(kind);
    }
    Ok(ChunkQuery {
        name: query.capture_index_for_name("name"),
        name_trait: query.capture_index_for_name("name.trait"),
        body: query.capture_index_for_name("body"),
        kinds,
        query,
    })
}

/// The compiled chunk query of a language (compiled on first use, then shared).
pub fn chunk_query(language: Language) -> &'static ChunkQuery {
    static QUERIES: [OnceLock<ChunkQuery>; 4] = [const { OnceLock::new() }; 4];
    let slot = Language::ALL
        .iter()
        .position(|l| *l == language)
        .unwrap_or(0);
    QUERIES[slot].get_or_init(|| {
        // The embedded queries are checked by tests; a failure here is a build defect.
        compile_query(language, &query_source(language)).unwrap_or_else(|e| panic!("{e}"))
    })
}
