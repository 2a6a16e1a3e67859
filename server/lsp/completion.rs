//! Completion at the protocol edge: `textDocument/inlineCompletion` (clients that have it) and
//! `textDocument/completion` items (the rest), both answered by the completion engine within its
//! budget; and the prompt builder the engine calls in the background: the text around the cursor,
//! related code from the working and background tiers (all of it redacted when the engine
//! makes an `llm::Prompt` of it).

use std::sync::{Arc, OnceLock};

use ropey::Rope;
use tower_lsp_server::ls_types::*;

use super::position::{Encoding, to_byte, to_position};
use crate::completion::{Anchor, Ask, Built, CompletionConfig, Engine, Prompter, Wait, shape};
use crate::context::{Budgets, Tier};
use crate::session::{Session, Want};

/// Builds completion prompts once `initialize` has said where the workspace is.
pub struct LspPrompter {
    pub session: Arc<OnceLock<Session>>,
}

/// The largest char boundary at or below `byte`.
fn floor(text: &Rope, byte: usize) -> usize {
    let byte = byte.min(text.len_bytes());
    text.char_to_byte(text.byte_to_char(byte))
}

impl Prompter for LspPrompter {
    fn build(
        &self,
        uri: &str,
        version: i32,
        text: &Rope,
        cursor: usize,
        config: &CompletionConfig,
    ) -> Option<Built> {
        let session = self.session.get()?;
        let (rel, withheld) = session.locate(uri);
        if withheld {
            return None;
        }
        let cursor = floor(text, cursor);
        let start = floor(text, cursor.saturating_sub(config.prefix_bytes));
        let end = floor(text, cursor.saturating_add(config.suffix_bytes));
        let parsed = session.store.latest(uri);
        let tree = parsed
            .as_ref()
            .filter(|p| p.version == version)
            .and_then(|p| {
                p.trees.iter().rev().find_map(|(offset, tree)| {
                    let inside =
                        cursor >= *offset && cursor - offset <= tree.root_node().end_byte();
                    inside.then_some((tree, cursor - offset))
                })
            });
        let anchor = Anchor::at(text, cursor);
        let shape = shape(&anchor.before, &anchor.after, tree);
        // Related code from the tiers, as comments above the file's own text.
        let mut files = vec![rel.clone()];
        let mut chunks = Vec::new();
        let mut related = String::new();
        if config.context_tokens > 0
            && let Some(parsed) = parsed.as_ref()
        {
            let budgets = Budgets {
                immediate: 1,
                working: config.context_tokens / 2,
                background: config.context_tokens / 2,
            };
            let selection =
                cursor.min(parsed.text.len_bytes())..cursor.min(parsed.text.len_bytes());
            // Estimated counts: the FIM model counts with its own tokenizer, and typing
            // then never pages in the tables (4 MB).
            let (pack, _) = session.pack(
                uri,
                parsed,
                Want {
                    selection,
                    budgets,
                    estimate_tokens: true,
                    ..Want::default()
                },
            );
            for tier in &pack.tiers {
                if !matches!(tier.tier, Tier::Working | Tier::Background) {
                    continue;
                }
                for item in &tier.items {
                    if item.source == rel || item.text.is_empty() {
                        continue;
                    }
                    related.push_str(&format!(
                        "// {} ({} {}):\n",
                        item.source, item.kind, item.name
                    ));
                    for l in item.text.lines() {
                        related.push_str("// ");
                        related.push_str(l);
                        related.push('\n');
                    }
                    if !files.contains(&item.source) {
                        files.push(item.source.clone());
                    }
                    chunks.extend(item.chunk_id.clone());
                }
            }
        }
        // Redacted when the engine makes its `Prompt` of them, the two as one text.
        let prefix = text.byte_slice(start..cursor).to_string();
        let suffix = text.byte_slice(cursor..end).to_string();
        let prefix = if related.is_empty() {
            prefix
        } else {
            format!("{related}\n{prefix}")
        };
        Some(Built {
            prefix,
            suffix,
            shape,
            files,
            chunks,
        })
    }
}

/// Reads one completion request: the document's newest text and the cursor. `None` when the
/// document is not open, out of sync, or the position does not fit it.
pub fn ask(
    store: &crate::documents::DocumentStore,
    uri: &Uri,
    position: Position,
    encoding: Encoding,
) -> Option<Ask> {
    let entry = store.entry(uri.as_str())?;
    if !entry.in_sync {
        return None;
    }
    let cursor = to_byte(&entry.text, position, encoding).ok()?;
    Some(Ask {
        uri: uri.as_str().to_owned(),
        version: entry.version,
        anchor: Anchor::at(&entry.text, cursor),
        text: entry.text,
        cursor,
        order: super::running::read_order(),
    })
}

/// How long a completion-items request waits, by `[completion] hold_items` and the client.
/// Held (`auto`) for clients that show each server's items as they arrive, so a slow suggestion
/// holds up nobody else's: Helix (the first answer is shown, later ones join the open menu) and
/// Neovim before 0.11 (no built-in automatic completion; nvim-cmp and the omnifunc take each
/// server's answer as it comes). Not held for clients that wait for every server (Neovim 0.11's
/// `vim.lsp.completion`, Zed) or that we do not know.
pub fn items_wait(config: &CompletionConfig, client: &str, version: &str) -> Wait {
    let hold = Wait::Hold(std::time::Duration::from_millis(config.hold_ms));
    match config.hold_items.as_str() {
        "always" => hold,
        "never" => Wait::Budget,
        _ => {
            let client = client.to_ascii_lowercase();
            let minor = |v: &str| -> Option<(u32, u32)> {
                let mut parts = v.trim_start_matches('v').split(['.', '-', ' ']);
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
            };
            let old_neovim = client == "neovim" && minor(version).is_some_and(|v| v < (0, 11));
            if client == "helix" || old_neovim {
                hold
            } else {
                Wait::Budget
            }
        }
    }
}

/// The inline completion answer without a suggestion.
pub fn no_suggestion() -> InlineCompletionResponse {
    InlineCompletionResponse::List(InlineCompletionList { items: Vec::new() })
}

/// The suggestion as inline completion items (an empty list when nothing is ready).
pub async fn inline(
    engine: &Engine,
    ask: Option<Ask>,
    position: Position,
    wait: Wait,
) -> InlineCompletionResponse {
    let Some(ask) = ask else {
        return no_suggestion();
    };
    let outcome = engine.complete(ask, wait).await;
    let items = outcome
        .text
        .map(|text| InlineCompletionItem {
            insert_text: text,
            filter_text: None,
            range: Some(Range::new(position, position)),
            command: None,
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        })
        .into_iter()
        .collect();
    InlineCompletionResponse::List(InlineCompletionList { items })
}

/// The completion items answer without a suggestion: incomplete unless held (see [`items`]).
pub fn no_items(wait: Wait) -> CompletionResponse {
    CompletionResponse::List(CompletionList {
        is_incomplete: wait == Wait::Budget,
        items: Vec::new(),
    })
}

/// The suggestion as one completion item that replaces the word before the cursor with that word
/// plus the suggestion (so the client's filter keeps it), `isIncomplete` so the client asks again
/// on the next keystroke. Nothing, when not held: an empty incomplete list, so the client asks
/// again and gets what has arrived since; when held: an empty complete list, which Helix skips
/// instead of letting it close the menu other servers' items would open.
pub async fn items(
    engine: &Engine,
    ask: Option<Ask>,
    encoding: Encoding,
    wait: Wait,
) -> CompletionResponse {
    let empty = no_items(wait);
    let Some(ask) = ask else { return empty };
    let text = ask.text.clone();
    let cursor = ask.cursor;
    let word: String = {
        let before = &ask.anchor.before;
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '$')
            .last()
            .map_or(before.len(), |(i, _)| i);
        before[start..].to_owned()
    };
    let Some(suggestion) = engine.complete(ask, wait).await.text else {
        return empty;
    };
    let new_text = format!("{word}{suggestion}");
    let first_line = new_text.lines().next().unwrap_or("").trim();
    let label = if first_line.chars().count() > 60 || new_text.contains('\n') {
        let short: String = first_line.chars().take(57).collect();
        format!("{short}…")
    } else {
        first_line.to_owned()
    };
    let start = to_position(&text, cursor - word.len(), encoding);
    let end = to_position(&text, cursor, encoding);
    CompletionResponse::List(CompletionList {
        is_incomplete: true,
        items: vec![CompletionItem {
            label,
            kind: Some(CompletionItemKind::TEXT),
            detail: Some("Strata: model suggestion".into()),
            documentation: new_text.contains('\n').then(|| {
                Documentation::MarkupContent(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: format!("```\n{new_text}\n```"),
                })
            }),
            preselect: Some(true),
            sort_text: Some("0".into()),
            filter_text: Some(new_text.clone()),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: Range::new(start, end),
                new_text,
            })),
            ..Default::default()
        }],
    })
}
