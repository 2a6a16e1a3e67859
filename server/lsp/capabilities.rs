//! What the server tells the client it can do, in the answer to `initialize`: built from what
//! `initialize` settled (position encoding, the features the client switched off, the completion
//! mode). No handler lives here; every method advertised has an entry in `dispatch.rs` (a test
//! there checks it).

use tower_lsp_server::ls_types::*;

use super::agents::{NEW_CHAT, RUN_AGENT, RUN_WORKFLOW};
use super::outline::Features;
use super::position::Encoding;

/// Which completion requests are served, decided in `initialize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionMode {
    Inline,
    Items,
    Off,
}

/// `workspace`: whether there is a workspace folder, whose archive answers `workspace/symbol`.
pub fn server_capabilities(
    encoding: Encoding,
    features: Features,
    mode: CompletionMode,
    workspace: bool,
) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                ..Default::default()
            },
        )),
        document_symbol_provider: features.document_symbols.then_some(OneOf::Left(true)),
        workspace_symbol_provider: workspace.then_some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![
                RUN_AGENT.to_owned(),
                RUN_WORKFLOW.to_owned(),
                NEW_CHAT.to_owned(),
            ],
            ..Default::default()
        }),
        inline_completion_provider: (mode == CompletionMode::Inline).then_some(OneOf::Left(true)),
        completion_provider: (mode == CompletionMode::Items).then(|| CompletionOptions {
            resolve_provider: Some(false),
            ..Default::default()
        }),
        folding_range_provider: features
            .folding_ranges
            .then_some(FoldingRangeProviderCapability::Simple(true)),
        experimental: Some(serde_json::json!({
            "strata": { "chunks": true, "context": true, "search": true, "stats": true, "debugText": true }
        })),
        ..Default::default()
    }
}
