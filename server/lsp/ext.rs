//! Strata's own requests (documented in docs/lsp-extensions.md).

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::{Range, TextDocumentIdentifier};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextDocumentParams {
    pub text_document: TextDocumentIdentifier,
}

/// `strata/chunks` → the chunks of the latest parse.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunksResult {
    pub version: i32,
    pub language: Option<&'static str>,
    pub chunks: Vec<ChunkInfo>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkInfo {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub path: String,
    /// Id of the enclosing chunk.
    pub parent: Option<String>,
    pub range: Range,
    pub signature_range: Range,
    pub name_range: Range,
    /// Byte offsets of the chunk in the document's UTF-8 text.
    pub byte_range: [usize; 2],
    /// xxh3 of the chunk's text, 16 hex digits.
    pub hash: String,
}

/// `strata/debug/text` → the server's copy of a document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugTextResult {
    pub version: i32,
    pub text: String,
    /// False once a change was refused; true again after a full-text change or a reopen.
    pub in_sync: bool,
}

/// `strata/search` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    pub query: String,
    pub limit: Option<usize>,
    pub kinds: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub hits: Vec<SearchHit>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub uri: String,
    /// Relative to the workspace root.
    pub path: String,
    pub range: Range,
    pub id: String,
    pub kind: String,
    pub name: String,
    pub qualified_name: String,
    pub signature: String,
    /// Higher is better.
    pub score: f64,
}

/// The archive's part of `strata/stats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveInfo {
    pub path: String,
    pub files: u64,
    pub chunks: u64,
    pub chunks_written: u64,
    pub chunks_kept: u64,
    pub last_error: Option<String>,
}

/// `strata/stats` → what the server holds, without waiting for anything.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsResult {
    pub version: &'static str,
    pub documents: Vec<DocumentInfo>,
    /// `null` until the archive is open, or when it cannot be.
    pub archive: Option<ArchiveInfo>,
    /// Handling time per LSP method (requests and notifications), since start.
    pub methods: std::collections::BTreeMap<String, crate::llm::Summary>,
    /// Providers, caches, limiters, circuits and tokens spent.
    pub gateway: crate::llm::GatewayStats,
    /// The most recent calls from the egress audit (never their content), oldest first.
    pub recent_calls: Vec<crate::llm::AuditRecord>,
    /// Completion requests and how they were answered; model calls started and cancelled.
    pub completion: crate::completion::CompletionStats,
    pub config: ConfigReport,
}

/// Where the configuration came from and what was wrong with it.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigReport {
    /// The layers in use, lowest first.
    pub sources: Vec<String>,
    pub warnings: Vec<String>,
    pub providers: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentInfo {
    pub uri: String,
    pub version: i32,
    pub in_sync: bool,
    pub language: Option<&'static str>,
    pub bytes: usize,
    /// The version of the latest parse (behind `version` while a parse is running).
    pub parsed_version: Option<i32>,
    pub chunks: usize,
    pub segments: usize,
    /// Segments whose syntax trees are held in memory.
    pub trees: usize,
    /// The latest parse: how long parsing and chunking took, in milliseconds.
    pub parse_ms: f64,
    pub chunk_ms: f64,
}

/// `strata/context` params.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextParams {
    pub text_document: TextDocumentIdentifier,
    /// The cursor; or give `range` for a selection.
    pub position: Option<tower_lsp_server::ls_types::Position>,
    pub range: Option<Range>,
    pub query: Option<String>,
    /// Diagnostics in the range, as the client has them (from a code action's context, say).
    #[serde(default)]
    pub diagnostics: Vec<tower_lsp_server::ls_types::Diagnostic>,
    /// An agent's name: the pack is the one that agent's run would use (its target, budgets and
    /// question), and the result carries the exact prompt it would send.
    #[serde(default)]
    pub agent: Option<String>,
}

/// The prompt an agent would send, part by part, as the model receives it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentPrompt {
    pub agent: String,
    pub system: Option<String>,
    pub messages: Vec<SentMessage>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    pub role: &'static str,
    pub content: String,
}

impl SentPrompt {
    pub fn new(agent: &str, prompt: &crate::llm::Prompt) -> SentPrompt {
        let (system, messages) = match prompt.parts() {
            crate::llm::Parts::Chat { system, messages } => (
                system.clone(),
                messages
                    .iter()
                    .map(|m| SentMessage {
                        role: match m.role {
                            crate::llm::Role::User => "user",
                            crate::llm::Role::Assistant => "assistant",
                        },
                        content: m.content.clone(),
                    })
                    .collect(),
            ),
            crate::llm::Parts::Fim { prefix, suffix } => (
                None,
                vec![
                    SentMessage {
                        role: "prefix",
                        content: prefix.clone(),
                    },
                    SentMessage {
                        role: "suffix",
                        content: suffix.clone(),
                    },
                ],
            ),
        };
        SentPrompt {
            agent: agent.to_owned(),
            system,
            messages,
        }
    }
}
