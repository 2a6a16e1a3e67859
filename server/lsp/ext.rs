//! Strata's protocol extension: the params and results of its `strata/*` requests, the results
//! of its `workspace/executeCommand` commands and the `strata/status` and `strata/runEnded`
//! notifications — every shape
//! Strata puts on the wire besides standard LSP, with camelCase fields. docs/lsp-extensions.md
//! describes them and records a hash of this file; a test below fails when they drift apart.
//! Nothing here is a core type: core values are converted into these (`to_ext.rs`), so a core
//! struct can change without changing what editors read.

use std::collections::BTreeMap;

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
    pub methods: BTreeMap<String, Latency>,
    /// Providers, caches, limiters, circuits and tokens spent.
    pub gateway: GatewayInfo,
    /// The most recent calls from the egress audit (never their content), oldest first.
    pub recent_calls: Vec<CallInfo>,
    /// Completion requests and how they were answered; model calls started and cancelled.
    pub completion: CompletionInfo,
    pub config: ConfigReport,
    /// What the process holds.
    pub memory: MemoryInfo,
}

/// The process's memory, in bytes (zero where the system does not say).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryInfo {
    pub rss: u64,
    /// The most it has held (VmHWM).
    pub peak: u64,
    /// Private memory: heap, stacks.
    pub anonymous: u64,
    /// Pages mapped from files: code, the grammars' and tokenizer's tables.
    pub file: u64,
    pub threads: u64,
    /// The allocator's view (glibc's malloc; `null` with others): bytes allocated, and bytes it
    /// holds free.
    pub heap_in_use: Option<u64>,
    pub heap_free: Option<u64>,
}

/// A latency histogram's summary, in milliseconds (log-bucketed, within ~19%).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The gateway's part of `strata/stats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayInfo {
    /// By provider name.
    pub providers: BTreeMap<String, ProviderInfo>,
    pub cache: CacheInfo,
    /// Calls answered by an identical call already in flight.
    pub coalesced: u64,
    /// Calls refused by a daily budget.
    pub refused: u64,
    pub cancelled: u64,
    pub in_flight: usize,
    pub spent_today: SpentToday,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    pub kind: &'static str,
    pub model: String,
    pub local: bool,
    pub circuit: CircuitState,
    /// HTTP attempts.
    pub calls: u64,
    pub failures: u64,
    pub retries: u64,
    /// As reported by the provider (estimated when it reports none).
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub first_token: Latency,
    pub total: Latency,
    pub ewma_first_token_ms: Option<f64>,
    pub limiter: LimiterInfo,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimiterInfo {
    pub in_flight: u32,
    /// Requests waiting now: interactive, on-demand, background.
    pub waiting: [u32; 3],
    pub waits: u64,
    pub wait_ms_total: u64,
    pub paused_for_ms: u64,
    /// `null` when unlimited.
    pub requests_available: Option<f64>,
    pub tokens_available: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheInfo {
    pub l1_hits: u64,
    pub l1_misses: u64,
    pub l1_entries: u64,
    pub l1_bytes: u64,
    pub l2_hits: u64,
    pub l2_misses: u64,
    pub l2_entries: u64,
    pub l2_bytes: u64,
}

/// Tokens spent since 00:00 UTC.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpentToday {
    pub providers: BTreeMap<String, u64>,
    pub agents: BTreeMap<String, u64>,
}

/// One call in the egress audit: what went out, never its text.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallInfo {
    pub at_ms: i64,
    pub workspace: Option<String>,
    pub agent: String,
    pub priority: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// `miss`, `l1`, `l2` or `coalesced`.
    pub cache: String,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub files: Vec<String>,
    pub chunks: Vec<String>,
    /// `ok`, `error`, `cancelled` or `refused`.
    pub outcome: String,
    pub error: Option<String>,
    pub ttft_ms: Option<u64>,
    pub total_ms: u64,
}

/// Completion requests since start and how they were answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionInfo {
    pub requests: u64,
    pub from_suggestion: u64,
    pub from_in_flight: u64,
    /// Held requests answered with the suggestion for their text.
    pub from_held: u64,
    pub empty: u64,
    /// Held requests answered empty because a newer one for the document arrived.
    pub superseded: u64,
    /// Held requests answered empty at `hold_ms`.
    pub timed_out: u64,
    pub calls_started: u64,
    pub calls_cancelled: u64,
    pub calls_failed: u64,
    /// Calls started before a request asked (an accepted suggestion, a pause in an empty body).
    pub prefetches: u64,
    /// Answers whose suggestion came from such a call.
    pub from_prefetch: u64,
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

/// `strata/context` → the context pack, its rendering, and with `agent` the prompt it sends.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextResult {
    /// The document version the pack was built from.
    pub version: i32,
    /// The tokenizer the counts come from.
    pub encoding: &'static str,
    pub tiers: Vec<ContextTier>,
    /// Secrets replaced by `[redacted:<kind>]` across the pack.
    pub redactions: usize,
    pub notes: Vec<String>,
    /// The pack as prompt text.
    pub rendered: String,
    /// Only with an `agent` param: exactly what that agent sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<SentPrompt>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextTier {
    pub tier: TierName,
    /// Tokens; 0 for the archive tier (a record, not sent).
    pub budget: u32,
    pub tokens: u32,
    pub items: Vec<ContextItem>,
    pub dropped: Vec<DroppedItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TierName {
    Immediate,
    Working,
    Background,
    Archive,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextItem {
    /// Workspace-relative path, or a label (`conversation`, `folders`, a manifest).
    pub source: String,
    /// Zero-based first and last line.
    pub lines: Option<[u32; 2]>,
    pub chunk_id: Option<String>,
    pub kind: String,
    pub name: String,
    pub fidelity: FidelityName,
    pub tokens: u32,
    pub score: f64,
    pub reason: String,
    /// What is sent, secrets redacted.
    pub text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FidelityName {
    Full,
    Signature,
    Name,
}

/// An item left out because the tier's budget ran out even at the lowest fidelity.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedItem {
    pub source: String,
    pub chunk_id: Option<String>,
    pub name: String,
    pub score: f64,
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

/// `strata/status`, server → client: what the editor's status line shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusParams {
    /// `null` when no indexing is under way.
    pub indexing: Option<IndexingStatus>,
    /// Model calls in flight.
    pub in_flight: usize,
    /// A call is waiting for a provider's rate limit.
    pub rate_limited: bool,
    /// The last model call found no provider reachable.
    pub offline: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexingStatus {
    pub done: usize,
    pub total: usize,
}

/// The `strata/status` notification.
pub enum StatusNotification {}

impl tower_lsp_server::ls_types::notification::Notification for StatusNotification {
    type Params = StatusParams;
    const METHOD: &'static str = "strata/status";
}

/// Arguments of `workspace/executeCommand` `strata.runAgent` (code actions carry them).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunArgs {
    pub agent: String,
    pub text_document: TextDocumentIdentifier,
    /// An empty range means the innermost chunk at the cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The editor's diagnostics in the range (code actions pass them on for `fix`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<tower_lsp_server::ls_types::Diagnostic>,
}

/// Arguments of `workspace/executeCommand` `strata.runWorkflow`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowArgs {
    pub workflow: String,
    pub text_document: TextDocumentIdentifier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// `workspace/executeCommand` `strata.runAgent` or `strata.runWorkflow` → the run, started: it
/// reports `$/progress` under `token` (when the client has `window.workDoneProgress`),
/// `window/workDoneProgress/cancel` for `token` stops it, and `strata/runEnded` with `token` says
/// how it ended.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// The agent's name (`strata.runAgent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The workflow's name (`strata.runWorkflow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// `strata-agent-N` or `strata-workflow-N`, unique in the session.
    pub token: String,
}

/// The `strata/runEnded` notification: a run that `RunStarted` named has ended, however it did.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEndedParams {
    pub token: String,
    pub result: RunResult,
}

/// An agent run's result, or a workflow run's (told apart by `agent` or `workflow`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunResult {
    Agent(RunAgentResult),
    Workflow(RunWorkflowResult),
}

pub enum RunEndedNotification {}

impl tower_lsp_server::ls_types::notification::Notification for RunEndedNotification {
    type Params = RunEndedParams;
    const METHOD: &'static str = "strata/runEnded";
}

/// How a `strata.runAgent` run ended (`strata/runEnded`). Which fields are present depends on
/// how it ended; `agent` always is.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunAgentResult {
    pub agent: String,
    /// What the answer became; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<AgentOutput>,
    /// `edit` and `chat`: whether the editor applied the edit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied: Option<bool>,
    /// `edit`: the target changed while the model answered, so nothing was applied.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conflict: bool,
    /// `edit`: the document version the edit was applied to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// `document`: the file the answer was written to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `document`: whether the editor opened it (else it was named with `window/showMessage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<bool>,
    /// `document`: where the answer came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<AnswerSource>,
    /// `document`: the provider that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `diagnostics`: how many findings were published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<usize>,
    /// `chat`: whether the turn was saved to the history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
    /// Why the run produced nothing (also shown with `window/showMessage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its progress was cancelled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentOutput {
    Edit,
    Document,
    Diagnostics,
    Chat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerSource {
    Model,
    L1,
    L2,
    Coalesced,
}

/// How a `strata.runWorkflow` run ended (`strata/runEnded`): every step's end and the report.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunWorkflowResult {
    pub workflow: String,
    /// By step id; absent when cancelled or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<BTreeMap<String, StepState>>,
    /// The report document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<bool>,
    /// Why the run ended without a report (also shown with `window/showMessage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
}

/// How a workflow step ended.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum StepState {
    Done {
        output: String,
    },
    Failed {
        error: String,
    },
    /// Not run: a step it depends on failed.
    Skipped {
        because: String,
    },
}

/// `workspace/executeCommand` `strata.newChat` → the chat file made.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewChatResult {
    pub path: String,
    /// `null` when the path cannot be a `file:` URI.
    pub uri: Option<String>,
    /// Whether the editor opened it.
    pub shown: bool,
}

#[cfg(test)]
mod tests {
    //! docs/lsp-extensions.md describes this file: it records the file's hash, so a change here
    //! fails until the page has been brought in step, and it has a heading for every method and
    //! command the server registers.

    use std::collections::BTreeSet;

    use tower_lsp_server::ls_types::notification::Notification;

    use super::{RunEndedNotification, StatusNotification};
    use crate::lsp::agents::{NEW_CHAT, RUN_AGENT, RUN_WORKFLOW};

    const DOC: &str = include_str!("../../docs/lsp-extensions.md");
    const THIS: &str = include_str!("ext.rs");
    /// Where the server registers its methods and commands.
    const REGISTRARS: [(&str, &str); 2] = [
        ("server/lsp/dispatch.rs", include_str!("dispatch.rs")),
        ("server/lsp/agents.rs", include_str!("agents.rs")),
    ];
    const MARKER: (&str, &str) = ("<!-- ext.rs hash: ", " -->");

    /// xxh3 of the text with its line endings normalised, 16 hex digits.
    fn hash(text: &str) -> String {
        format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(text.replace("\r\n", "\n").as_bytes())
        )
    }

    /// The hash the page records, if it records one.
    fn recorded(doc: &str) -> Option<&str> {
        doc.lines().find_map(|line| {
            line.trim()
                .strip_prefix(MARKER.0)?
                .strip_suffix(MARKER.1)
                .map(str::trim)
        })
    }

    /// Why the page is not in step with `this`, if it is not.
    fn drift(doc: &str, this: &str) -> Option<String> {
        let now = hash(this);
        let message = |found: &str| {
            format!(
                "ext.rs changed: update docs/lsp-extensions.md to match, then put hash {now} in \
                 it ({found}; the line is `{}{now}{}` near the top)",
                MARKER.0, MARKER.1
            )
        };
        match recorded(doc) {
            Some(hash) if hash == now => None,
            Some(hash) => Some(message(&format!("it records {hash}"))),
            None => Some(message("it records no hash")),
        }
    }

    /// Every string literal in `source` that is a whole method (`strata/…`) or command
    /// (`strata.…`) name.
    fn names_in(source: &str) -> BTreeSet<String> {
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_');
        source
            .match_indices("\"strata")
            .filter_map(|(at, _)| {
                let rest = &source[at + 1..];
                let name = &rest[..rest.find(|c| !name_char(c))?];
                let whole = rest[name.len()..].starts_with('"');
                let kind = name.starts_with("strata/") || name.starts_with("strata.");
                (whole && kind && name.len() > "strata/".len()).then(|| name.to_owned())
            })
            .collect()
    }

    /// The backquoted method and command names in the page's headings.
    fn headings(doc: &str) -> BTreeSet<String> {
        doc.lines()
            .filter(|line| line.starts_with('#'))
            .flat_map(|line| line.split('`').skip(1).step_by(2))
            .filter(|s| s.starts_with("strata/") || s.starts_with("strata."))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_extensions_page_records_the_hash_of_this_file() {
        if let Some(message) = drift(DOC, THIS) {
            panic!("{message}");
        }
    }

    #[test]
    fn a_change_to_this_file_or_a_missing_hash_is_caught() {
        let doc = format!("# Title\n\n{}{}{}\n", MARKER.0, hash(THIS), MARKER.1);
        assert_eq!(drift(&doc, THIS), None);
        assert_eq!(
            drift(&doc, &THIS.replace('\n', "\r\n")),
            None,
            "line endings count"
        );
        let changed = format!("{THIS}\n// one more line\n");
        let message = drift(&doc, &changed).expect("a change goes unnoticed");
        assert!(
            message.starts_with("ext.rs changed: update docs/lsp-extensions.md to match")
                && message.contains(&format!("put hash {} in it", hash(&changed))),
            "{message}"
        );
        assert!(drift("# Title\n", THIS).is_some());
    }

    #[test]
    fn every_method_and_command_the_server_registers_has_a_heading_in_the_page() {
        let mut registered: BTreeSet<String> = REGISTRARS
            .iter()
            .flat_map(|(_, source)| names_in(source))
            .collect();
        registered.insert(StatusNotification::METHOD.to_owned());
        registered.insert(RunEndedNotification::METHOD.to_owned());
        // The scan must see what is surely there, or it proves nothing.
        for name in [
            "strata/context",
            "strata/stats",
            RUN_AGENT,
            RUN_WORKFLOW,
            NEW_CHAT,
        ] {
            assert!(
                registered.contains(name),
                "{name} not found in {:?}",
                REGISTRARS.map(|(path, _)| path)
            );
        }
        let documented = headings(DOC);
        let undocumented: Vec<_> = registered.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "docs/lsp-extensions.md has no heading for {undocumented:?}"
        );
        let stale: Vec<_> = documented.difference(&registered).collect();
        assert!(
            stale.is_empty(),
            "docs/lsp-extensions.md has headings for {stale:?}, which the server does not register"
        );
    }
}
