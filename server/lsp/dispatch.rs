//! The dispatch table: every method the server handles, with how it runs ([`Runs`]) and its
//! handler. The transport looks every incoming message up here and nowhere else; a method that
//! is not in [`METHODS`] does not exist (a request for it gets MethodNotFound, a notification is
//! ignored). This file decodes params and encodes results; the handlers are `Backend`'s.
//!
//! | method | runs | how |
//! |---|---|---|
//! | `initialize` | inline | on the reading task, answered before the next message is read |
//! | `initialized` | in order | starts the background work: archive, indexing with `$/progress`, settings pull, status |
//! | `shutdown` | inline | on the reading task; every later request gets InvalidRequest |
//! | `exit` | exit | the transport stops reading; running requests are aborted |
//! | `$/cancelRequest` | in order | aborts the request's task and answers RequestCancelled, once |
//! | `window/workDoneProgress/cancel` | in order | aborts the run behind the progress token |
//! | `textDocument/didOpen` | in order | applied to the store before the next message is read |
//! | `textDocument/didChange` | in order | applied to the store before the next message is read; a change that does not fit is refused |
//! | `textDocument/didClose` | in order | removed from the store; the file on disk is re-indexed |
//! | `textDocument/didSave` | in order | queues a re-index on the blocking pool |
//! | `workspace/didChangeWatchedFiles` | in order | queues a re-index on the blocking pool |
//! | `workspace/didChangeConfiguration` | in order | spawns a settings pull and reload |
//! | `textDocument/documentSymbol` | parse | waits for the parse of the version seen at entry |
//! | `textDocument/foldingRange` | parse | waits for the parse of the version seen at entry |
//! | `strata/chunks` | parse | waits for the parse of the version seen at entry |
//! | `strata/context` | parse | waits for the parse, then assembles on the blocking pool |
//! | `textDocument/codeAction` | snapshot | the store and the config as they are; no model |
//! | `strata/debug/text` | snapshot | the store as it is; no parse needed |
//! | `workspace/symbol` | blocking | a read connection to the archive on the blocking pool |
//! | `strata/search` | blocking | a read connection to the archive on the blocking pool |
//! | `strata/stats` | blocking | archive and gateway figures read on the blocking pool |
//! | `textDocument/completion` | model | what the completion engine has within its budget |
//! | `textDocument/inlineCompletion` | model | held until the suggestion is ready, or the request is cancelled |
//! | `workspace/executeCommand` | parse | answered once a run is started (its token); the run reports `$/progress`, is cancelled by its progress and ends with `strata/runEnded` |
//!
//! Every request task runs under `Backend::guard` (a panic becomes an internal error) and is
//! registered in `Running`, so `$/cancelRequest` reaches it; `MethodTimes` records each method's
//! time. A test renders [`METHODS`] as the table above and fails when they differ.

use std::future::Future;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Id, Result};
use tower_lsp_server::ls_types::NumberOrString;

use super::body::Body;
use super::server::Backend;

/// A message's params as they arrived.
pub type Params = Option<serde_json::Value>;
/// A request's result, encoded as JSON.
pub type Answer = BoxFuture<'static, Result<Body>>;
type Notify = fn(&Backend, Params) -> Result<()>;
type Inline = fn(&Backend, Params) -> Result<Vec<u8>>;
type Spawned = fn(Arc<Backend>, Params) -> Answer;

/// How a method runs.
#[derive(Clone, Copy)]
pub enum Runs {
    /// A notification, run to the end on the reading task before the next message is read: its
    /// effect on the store is in place for every message after it. Never awaits.
    InOrder(Notify),
    /// A request answered on the reading task (the lifecycle: nothing else may run meanwhile).
    Inline(Inline),
    /// A request on a task of its own that waits for the parse of the document's version seen
    /// at entry.
    Parse(Spawned),
    /// A request on a task of its own that reads the store or the config as they are.
    Snapshot(Spawned),
    /// A request on a task of its own whose work runs on the blocking pool (SQLite).
    Blocking(Spawned),
    /// A request on a task of its own that waits for a model (or the completion engine):
    /// cancellable.
    Model(Spawned),
    /// `exit`: handled by the transport, which stops.
    Exit,
}

impl Runs {
    /// The name the table in this file's doc uses.
    pub fn name(&self) -> &'static str {
        match self {
            Runs::InOrder(_) => "in order",
            Runs::Inline(_) => "inline",
            Runs::Parse(_) => "parse",
            Runs::Snapshot(_) => "snapshot",
            Runs::Blocking(_) => "blocking",
            Runs::Model(_) => "model",
            Runs::Exit => "exit",
        }
    }

    /// Whether the method is a notification (else a request).
    pub fn is_notification(&self) -> bool {
        matches!(self, Runs::InOrder(_) | Runs::Exit)
    }

    /// The handler of a request that runs on a task of its own.
    pub fn spawned(&self) -> Option<Spawned> {
        match *self {
            Runs::Parse(f) | Runs::Snapshot(f) | Runs::Blocking(f) | Runs::Model(f) => Some(f),
            _ => None,
        }
    }
}

pub struct Method {
    pub name: &'static str,
    pub runs: Runs,
    /// What it does, for the table in this file's doc.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "read by the test that keeps the doc table in step"
        )
    )]
    pub how: &'static str,
}

/// The method `name`, if the server handles it.
pub fn find(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

const AT_ENTRY: &str = "waits for the parse of the version seen at entry";
const IN_ORDER: &str = "applied to the store before the next message is read";
const ARCHIVE: &str = "a read connection to the archive on the blocking pool";
const REINDEX: &str = "queues a re-index on the blocking pool";

pub static METHODS: &[Method] = &[
    Method {
        name: "initialize",
        runs: Runs::Inline(|b, p| encode(&b.initialize(decode(p)?)?)),
        how: "on the reading task, answered before the next message is read",
    },
    Method {
        name: "initialized",
        runs: Runs::InOrder(|b, _| {
            b.initialized();
            Ok(())
        }),
        how: "starts the background work: archive, indexing with `$/progress`, settings pull, \
              status",
    },
    Method {
        name: "shutdown",
        runs: Runs::Inline(|b, _| encode(&b.shutdown())),
        how: "on the reading task; every later request gets InvalidRequest",
    },
    Method {
        name: "exit",
        runs: Runs::Exit,
        how: "the transport stops reading; running requests are aborted",
    },
    Method {
        name: "$/cancelRequest",
        runs: Runs::InOrder(|b, p| {
            let params: tower_lsp_server::ls_types::CancelParams = decode(p)?;
            b.running.cancel_request(match params.id {
                NumberOrString::Number(n) => Id::Number(n.into()),
                NumberOrString::String(s) => Id::String(s),
            });
            Ok(())
        }),
        how: "aborts the request's task and answers RequestCancelled, once",
    },
    Method {
        name: "window/workDoneProgress/cancel",
        runs: Runs::InOrder(|b, p| {
            b.progress_cancel(decode(p)?);
            Ok(())
        }),
        how: "aborts the run behind the progress token",
    },
    Method {
        name: "textDocument/didOpen",
        runs: Runs::InOrder(|b, p| {
            b.did_open(decode(p)?);
            Ok(())
        }),
        how: IN_ORDER,
    },
    Method {
        name: "textDocument/didChange",
        runs: Runs::InOrder(|b, p| {
            b.did_change(decode(p)?);
            Ok(())
        }),
        how: "applied to the store before the next message is read; a change that does not fit \
              is refused",
    },
    Method {
        name: "textDocument/didClose",
        runs: Runs::InOrder(|b, p| {
            b.did_close(decode(p)?);
            Ok(())
        }),
        how: "removed from the store; the file on disk is re-indexed",
    },
    Method {
        name: "textDocument/didSave",
        runs: Runs::InOrder(|b, p| {
            b.did_save(decode(p)?);
            Ok(())
        }),
        how: REINDEX,
    },
    Method {
        name: "workspace/didChangeWatchedFiles",
        runs: Runs::InOrder(|b, p| {
            b.did_change_watched_files(decode(p)?);
            Ok(())
        }),
        how: REINDEX,
    },
    Method {
        name: "workspace/didChangeConfiguration",
        runs: Runs::InOrder(|b, _| {
            b.did_change_configuration();
            Ok(())
        }),
        how: "spawns a settings pull and reload",
    },
    Method {
        name: "textDocument/documentSymbol",
        runs: Runs::Parse(|b, p| {
            encoded(async move { b.outline.document_symbols(decode(p)?).await })
        }),
        how: AT_ENTRY,
    },
    Method {
        name: "textDocument/foldingRange",
        runs: Runs::Parse(|b, p| {
            encoded(async move { b.outline.folding_ranges(decode(p)?).await })
        }),
        how: AT_ENTRY,
    },
    Method {
        name: "strata/chunks",
        runs: Runs::Parse(|b, p| encoded(async move { b.outline.chunks(decode(p)?).await })),
        how: AT_ENTRY,
    },
    Method {
        name: "strata/context",
        runs: Runs::Parse(|b, p| answer(async move { b.context(decode(p)?).await })),
        how: "waits for the parse, then assembles on the blocking pool",
    },
    Method {
        name: "textDocument/codeAction",
        runs: Runs::Snapshot(|b, p| answer(async move { b.code_action(decode(p)?) })),
        how: "the store and the config as they are; no model",
    },
    Method {
        name: "strata/debug/text",
        runs: Runs::Snapshot(|b, p| answer(async move { b.debug_text(decode(p)?) })),
        how: "the store as it is; no parse needed",
    },
    Method {
        name: "workspace/symbol",
        runs: Runs::Blocking(|b, p| answer(async move { b.symbol(decode(p)?).await })),
        how: ARCHIVE,
    },
    Method {
        name: "strata/search",
        runs: Runs::Blocking(|b, p| answer(async move { b.search(decode(p)?).await })),
        how: ARCHIVE,
    },
    Method {
        name: "strata/stats",
        runs: Runs::Blocking(|b, _| answer(async move { b.stats().await })),
        how: "archive and gateway figures read on the blocking pool",
    },
    Method {
        name: "textDocument/completion",
        runs: Runs::Model(|b, p| answer(async move { b.completion(decode(p)?).await })),
        how: "what the completion engine has within its budget",
    },
    Method {
        name: "textDocument/inlineCompletion",
        runs: Runs::Model(|b, p| answer(async move { b.inline_completion(decode(p)?).await })),
        how: "held until the suggestion is ready, or the request is cancelled",
    },
    Method {
        name: "workspace/executeCommand",
        runs: Runs::Parse(|b, p| answer(async move { b.execute_command(decode(p)?).await })),
        how: "answered once a run is started (its token); the run reports `$/progress`, is \
              cancelled by its progress and ends with `strata/runEnded`",
    },
];

/// Params as the handler's type; missing params are `null`.
fn decode<T: DeserializeOwned>(params: Params) -> Result<T> {
    serde_json::from_value(params.unwrap_or(serde_json::Value::Null))
        .map_err(|e| Error::invalid_params(e.to_string()))
}

/// A result encoded straight from its type (no `serde_json::Value` in between: the
/// whole-document answers are as large as the file).
fn encode<T: Serialize>(result: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(result).map_err(|e| Error {
        code: ErrorCode::InternalError,
        message: format!("encoding the answer: {e}").into(),
        data: None,
    })
}

/// A result its handler encoded itself (the whole-document answers, kept encoded per segment).
fn encoded(handler: impl Future<Output = Result<Body>> + Send + 'static) -> Answer {
    handler.boxed()
}

fn answer<T: Serialize>(handler: impl Future<Output = Result<T>> + Send + 'static) -> Answer {
    async move { encode(&handler.await?).map(Body::from) }.boxed()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use tower_lsp_server::ls_types::notification::Notification;

    use crate::lsp::capabilities::{CompletionMode, server_capabilities};
    use crate::lsp::ext::{RunEndedNotification, StatusNotification};
    use crate::lsp::outline::Features;
    use crate::lsp::position::Encoding;

    const THIS: &str = include_str!("dispatch.rs");
    const EXTENSIONS: &str = include_str!("../../docs/lsp-extensions.md");

    fn rendered() -> String {
        let mut table = String::from("| method | runs | how |\n|---|---|---|\n");
        for m in METHODS {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                m.name,
                m.runs.name(),
                m.how
            ));
        }
        table
    }

    /// The table in this file's `//!` doc.
    fn documented(source: &str) -> String {
        source
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .filter_map(|line| line.strip_prefix("//! "))
            .filter(|line| line.starts_with('|'))
            .map(|line| format!("{line}\n"))
            .collect()
    }

    #[test]
    fn the_doc_table_is_the_dispatch_table() {
        let expected = rendered();
        assert!(
            documented(THIS) == expected,
            "the table at the top of server/lsp/dispatch.rs is out of step with METHODS; put \
             this there (each line after `//! `):\n{expected}"
        );
        // The check sees a change.
        let changed = THIS.replacen("| `shutdown` | inline |", "| `shutdown` | model |", 1);
        assert_ne!(documented(&changed), expected);
    }

    #[test]
    fn every_method_appears_once() {
        let names: BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), METHODS.len(), "a method is in the table twice");
        assert!(find("textDocument/didChange").is_some());
        assert!(find("").is_none() && find("$/unknown").is_none());
    }

    /// The methods a capability in the `initialize` result promises, by its key.
    fn promised(key: &str, value: &serde_json::Value) -> Vec<String> {
        let methods: &[&str] = match key {
            "positionEncoding" => &[],
            "textDocumentSync" => &[
                "textDocument/didOpen",
                "textDocument/didChange",
                "textDocument/didClose",
            ],
            "documentSymbolProvider" => &["textDocument/documentSymbol"],
            "codeActionProvider" => &["textDocument/codeAction"],
            "executeCommandProvider" => &["workspace/executeCommand"],
            "inlineCompletionProvider" => &["textDocument/inlineCompletion"],
            "completionProvider" => &["textDocument/completion"],
            "foldingRangeProvider" => &["textDocument/foldingRange"],
            "workspaceSymbolProvider" => &["workspace/symbol"],
            "experimental" => {
                return value["strata"]
                    .as_object()
                    .expect("experimental.strata")
                    .keys()
                    .map(|k| match k.as_str() {
                        "debugText" => "strata/debug/text".to_owned(),
                        other => format!("strata/{other}"),
                    })
                    .collect();
            }
            other => panic!("capability {other} promises what? Map it to its methods here"),
        };
        methods.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn every_method_the_server_advertises_is_in_the_table() {
        let all = Features {
            document_symbols: true,
            folding_ranges: true,
        };
        let mut seen = BTreeSet::new();
        for mode in [CompletionMode::Inline, CompletionMode::Items] {
            let caps = server_capabilities(Encoding::Utf16, all, mode, true);
            let caps = serde_json::to_value(caps).unwrap();
            for (key, value) in caps.as_object().unwrap() {
                for method in promised(key, value) {
                    assert!(
                        find(&method).is_some(),
                        "{key} promises {method}, not in METHODS"
                    );
                    seen.insert(method);
                }
            }
        }
        // The mapping must see what is surely advertised, or it proves nothing.
        for method in [
            "strata/chunks",
            "textDocument/completion",
            "textDocument/didChange",
        ] {
            assert!(
                seen.contains(method),
                "{method} not found in the capabilities"
            );
        }
    }

    #[test]
    fn every_strata_request_in_the_extensions_page_is_in_the_table() {
        let documented: BTreeSet<&str> = EXTENSIONS
            .lines()
            .filter(|line| line.starts_with('#'))
            .flat_map(|line| line.split('`').skip(1).step_by(2))
            .filter(|s| s.starts_with("strata/"))
            .collect();
        assert!(documented.contains("strata/context"), "{documented:?}");
        // Notifications that go from the server to the client.
        let sent = [StatusNotification::METHOD, RunEndedNotification::METHOD];
        let missing: Vec<_> = documented
            .iter()
            .filter(|m| !sent.contains(m) && find(m).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "documented but not dispatched: {missing:?}"
        );
    }
}
