//! `Backend`: the handlers, protocol types in, domain calls, protocol types out. Which method
//! reaches which handler, and how it runs, is `dispatch.rs`'s table; what the server advertises
//! is `capabilities.rs`'s. Notification handlers are plain functions, run to the end on the
//! transport's reading task; request handlers run under [`Backend::guard`]: a panic becomes an
//! internal error, and the client is told once. No handler waits on the client longer than
//! `client.rs` allows.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::FutureExt;
use ropey::Rope;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

use super::agents::{Agents, ClientCaps, LineEdit, NEW_CHAT, RUN_AGENT, RUN_WORKFLOW};
use super::capabilities::{CompletionMode, server_capabilities};
use super::client::Client;
use super::completion::{LspPrompter, ask};
use super::ext::{
    ArchiveInfo, ContextParams, ContextResult, DebugTextResult, DocumentInfo, IndexingStatus,
    RunArgs, SearchHit, SearchParams, SearchResult, SentPrompt, StatsResult, StatusNotification,
    StatusParams, TextDocumentParams, WorkflowArgs,
};
use super::options::InitializationOptions;
use super::outline::{Features, Outline};
use super::position::{Encoding, to_byte, to_byte_clamped};
use super::running::{Key, Running};
use super::settings::Settings;
use super::timing::MethodTimes;
use super::to_ext;
use super::workspace::{self, WorkspaceSetup};
use crate::archive::{Archive, Hit, IgnorePatterns, IndexConfig, SearchQuery};
use crate::chunks::ChunkConfig;
use crate::completion::{Engine, Wait};
use crate::context::{Diagnostic as ContextDiagnostic, Encoding as TokenEncoding, Tokenizer};
use crate::documents::{Change, DocumentStore, Parsed, SyncError};
use crate::llm::{Config, Gateway, Store, SystemClock};
use crate::session::{Session, Want};
use crate::syntax::Language;

/// Features a client may switch off in `initializationOptions` (for clients that merge symbols
/// or folds from several servers).
pub struct Backend {
    pub(super) client: Client,
    /// Every request task and agent run in flight, to cancel.
    pub(super) running: Arc<Running>,
    store: Arc<DocumentStore>,
    /// The whole-document answers, with the encoding and the feature switches.
    pub(super) outline: Outline,
    /// `shutdown` was answered.
    shut_down: AtomicBool,
    workspace: OnceLock<WorkspaceSetup>,
    /// Set once the archive is open (after `initialized`); never when it cannot be.
    archive: Arc<OnceLock<Arc<Archive>>>,
    tokenizer: OnceLock<Arc<Tokenizer>>,
    /// The configuration's `ignore` patterns, shared with `Settings`, which replaces them.
    ignore: IgnorePatterns,
    told_of_panic: AtomicBool,
    /// The only door to models; configured in `initialize`, reconfigured when settings change.
    gateway: Gateway,
    settings: Arc<Settings>,
    pub(super) times: Arc<MethodTimes>,
    completion: Engine,
    agents: Arc<Agents>,
    /// Set in `initialize`: what packs, prompts and agent runs are built from.
    session: Arc<OnceLock<Session>>,
    /// Which completion requests are served, decided in `initialize`.
    completion_mode: OnceLock<CompletionMode>,
    /// The client's `clientInfo` (name, version), from `initialize`.
    client_info: OnceLock<(String, String)>,
}

impl Backend {
    pub fn new(
        client: Client,
        running: Arc<Running>,
        config: ChunkConfig,
        config_file: Option<PathBuf>,
        times: Arc<MethodTimes>,
    ) -> Backend {
        let gateway = Gateway::new(Config::default(), Arc::new(SystemClock));
        let session = Arc::new(OnceLock::new());
        let ignore = IgnorePatterns::default();
        let completion = Engine::new(
            gateway.clone(),
            Arc::new(LspPrompter {
                session: session.clone(),
            }),
        );
        let store = DocumentStore::new(config);
        let agents = Arc::new(Agents::new(
            client.clone(),
            running.clone(),
            session.clone(),
        ));
        Backend {
            outline: Outline::new(store.clone()),
            agents,
            completion,
            session,
            completion_mode: OnceLock::new(),
            client_info: OnceLock::new(),
            gateway: gateway.clone(),
            settings: Arc::new(Settings::new(
                client.clone(),
                gateway,
                config_file,
                ignore.clone(),
            )),
            times,
            client,
            running,
            shut_down: AtomicBool::new(false),
            store,
            workspace: OnceLock::new(),
            archive: Arc::new(OnceLock::new()),
            tokenizer: OnceLock::new(),
            ignore,
            told_of_panic: AtomicBool::new(false),
        }
    }

    fn index_config(&self) -> IndexConfig {
        let default = IndexConfig::default();
        let threads = self.workspace.get().and_then(|w| w.index_threads);
        IndexConfig {
            chunk: self.store.config(),
            threads: threads.unwrap_or_else(|| crate::resources::current().index_threads),
            ignore: self.ignore.clone(),
            ..default
        }
    }

    /// The file path of a document inside the workspace, if the archive covers it.
    /// Only `file:` URIs count (not `git:`, `untitled:`…), and no `..` may lead out of the root.
    fn workspace_path(&self, uri: &Uri) -> Option<PathBuf> {
        crate::session::workspace_path(
            self.workspace.get()?.root.as_deref(),
            &super::file_path(uri.as_str())?,
        )
    }

    /// Sends `strata/status` whenever what the status line should show changes: indexing
    /// progress, model calls in flight, a rate-limit wait, no provider reachable.
    fn report_status(&self) {
        let (client, gateway) = (self.client.clone(), self.gateway.clone());
        let indexing = self.workspace.get().map(|w| w.indexing.clone());
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let index = indexing
                    .as_ref()
                    .and_then(|i| *i.lock().unwrap_or_else(|e| e.into_inner()));
                let (in_flight, rate_limited, offline) = gateway.status();
                let status = StatusParams {
                    indexing: index.map(|(done, total)| IndexingStatus { done, total }),
                    in_flight,
                    rate_limited,
                    offline,
                };
                if last.as_ref() != Some(&status) {
                    client.send_notification::<StatusNotification>(status.clone());
                    last = Some(status);
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        });
    }

    /// The session requests are served from, made in `initialize`.
    fn make_session(&self) -> Session {
        let setup = self.workspace.get();
        Session::new(
            self.store.clone(),
            self.archive.clone(),
            setup.and_then(|w| w.root.clone()),
            self.index_config(),
            self.tokenizer(),
            self.gateway.clone(),
            None,
            setup.and_then(|w| w.cache_dir.as_deref()),
            super::file_path,
        )
    }

    fn session(&self) -> Result<Session> {
        self.session
            .get()
            .cloned()
            .ok_or_else(|| Error::invalid_params("the server is not initialized"))
    }

    fn tokenizer(&self) -> Arc<Tokenizer> {
        self.tokenizer
            .get_or_init(|| Arc::new(Tokenizer::new(TokenEncoding::default())))
            .clone()
    }

    fn encoding(&self) -> Encoding {
        self.outline.encoding()
    }

    /// `initialize` was answered: requests other than it are served.
    pub(super) fn initialized_yet(&self) -> bool {
        self.outline.initialized()
    }

    /// `shutdown` was answered: requests are refused.
    pub(super) fn shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Runs a request handler; a panic in it is answered with an internal error.
    pub(super) async fn guard<T>(
        &self,
        method: &str,
        handler: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match AssertUnwindSafe(handler).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let (error, what) = super::panicked(method, panic.as_ref());
                if !self.told_of_panic.swap(true, Ordering::Relaxed) {
                    self.notify(
                        MessageType::ERROR,
                        format!(
                            "Strata hit an internal error in {method} and kept running; \
                             please report it with the log (STRATA_LOG=debug): {what}"
                        ),
                    );
                }
                Err(error)
            }
        }
    }

    fn notify(&self, typ: MessageType, message: String) {
        self.client.show_message(typ, message);
    }

    fn refuse(&self, uri: &Uri, error: &SyncError) {
        if *error == SyncError::NotOpen {
            // Nothing is out of sync: there is no copy, and the didOpen that gives one carries
            // the whole text (Helix sends the changes typed while the server starts before it).
            tracing::debug!(document = uri.as_str(), "a change before didOpen: {error}");
            return;
        }
        tracing::error!(document = uri.as_str(), "refused change: {error}");
        // One warning when sync is lost; the changes refused after it say nothing new.
        if *error != SyncError::OutOfSync {
            self.notify(
                MessageType::WARNING,
                format!(
                    "Strata refused a change to {}: {error}. Its copy is out of sync until the \
                     file is reopened.",
                    uri.as_str()
                ),
            );
        }
    }

    /// The latest parse of a document, at least as new as the version at entry.
    async fn parsed(&self, uri: &Uri) -> Result<Arc<Parsed>> {
        super::parsed(&self.store, uri).await
    }
}

/// A command's typed result (`ext.rs`) as `workspace/executeCommand` answers it.
fn command_result(result: impl serde::Serialize) -> Result<Option<serde_json::Value>> {
    serde_json::to_value(result)
        .map(Some)
        .map_err(|e| internal(format!("encoding the result: {e}")))
}

fn internal(message: String) -> Error {
    Error {
        code: ErrorCode::InternalError,
        message: message.into(),
        data: None,
    }
}

/// The lifecycle and the standard methods, as `dispatch.rs` calls them.
impl Backend {
    pub(super) fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        if self.initialized_yet() {
            return Err(Error {
                code: ErrorCode::InvalidRequest,
                message: "initialize may be sent only once".into(),
                data: None,
            });
        }
        let offered = params
            .capabilities
            .general
            .as_ref()
            .and_then(|g| g.position_encodings.as_deref());
        let encoding = Encoding::negotiate(offered);
        let _ = self.outline.encoding.set(encoding);
        let (options, problems) = InitializationOptions::parse(params.initialization_options);
        for problem in problems {
            tracing::warn!("{problem}");
            self.notify(MessageType::WARNING, format!("Strata: {problem}"));
        }
        let features = Features {
            document_symbols: options.document_symbols,
            folding_ranges: options.folding_ranges,
        };
        let _ = self.outline.features.set(features);
        let config = options.chunks.config();
        self.store.set_config(config);
        #[allow(deprecated)]
        let root = params
            .workspace_folders
            .as_ref()
            .and_then(|folders| folders.first())
            .map(|folder| &folder.uri)
            .or(params.root_uri.as_ref())
            .and_then(|uri| uri.to_file_path())
            // As the CLI does, so that both find the same archive through a symlinked path.
            .map(|path| path.canonicalize().unwrap_or_else(|_| path.into_owned()));
        let setup = WorkspaceSetup {
            root,
            cache_dir: options.cache_dir.clone(),
            index_threads: options.index_threads(),
            progress: params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                == Some(true),
            watch_files: params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                == Some(true),
            indexing: Default::default(),
        };
        tracing::info!(?encoding, ?features, ?config, ?setup, "initialize");
        let _ = self.workspace.set(setup);
        let pull = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.configuration)
            == Some(true);
        let root = self.workspace.get().and_then(|w| w.root.clone());
        self.settings
            .initialize(root, options.context, options.config, pull);
        // The tokenizer is chosen once, from the configuration as it stands now.
        let token_encoding = (self.gateway.config().context.encoding.as_deref())
            .and_then(TokenEncoding::from_name)
            .unwrap_or_default();
        let _ = self.tokenizer.set(Arc::new(Tokenizer::new(token_encoding)));
        let _ = self.session.set(self.make_session());
        let client_inline = params
            .capabilities
            .text_document
            .as_ref()
            .and_then(|t| t.inline_completion.as_ref())
            .is_some();
        let requested = self.gateway.completion_config().mode;
        let mode = match requested.as_str() {
            "off" => CompletionMode::Off,
            "items" => CompletionMode::Items,
            "inline" => CompletionMode::Inline,
            _ if client_inline => CompletionMode::Inline,
            _ => CompletionMode::Items,
        };
        let _ = self.completion_mode.set(mode);
        self.settings.fix_completion_mode(&requested);
        if let Some(info) = &params.client_info {
            let _ = self
                .client_info
                .set((info.name.clone(), info.version.clone().unwrap_or_default()));
        }
        let window = params.capabilities.window.as_ref();
        let _ = self.agents.caps.set(ClientCaps {
            progress: window.and_then(|w| w.work_done_progress) == Some(true),
            show_document: window
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|s| s.support),
        });
        let _ = self.agents.encoding.set(encoding);
        Ok(InitializeResult {
            capabilities: server_capabilities(
                encoding,
                features,
                mode,
                self.workspace.get().is_some_and(|w| w.root.is_some()),
            ),
            server_info: Some(ServerInfo {
                name: "strata".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    pub(super) fn initialized(&self) {
        // The tokenizer's tables load once, off the LSP task, before the first pack needs them.
        let tokenizer = self.tokenizer();
        tokio::task::spawn_blocking(move || tokenizer.warm_up());
        // New ignore patterns (a settings reload) re-index the workspace: what they now leave
        // out leaves the archive, what they no longer do comes in.
        let (cell, config) = (self.archive.clone(), self.index_config());
        self.settings.on_ignore_change(move || {
            let Some(archive) = cell.get().cloned() else {
                return;
            };
            let config = config.clone();
            drop(super::workspace::on_own_thread("strata-index", move || {
                if let Err(e) = archive.index(&config, &|_, _| {}) {
                    tracing::error!("re-indexing for new ignore patterns: {e}");
                }
            }));
        });
        self.settings.clone().pull();
        self.report_status();
        let Some(setup) = self.workspace.get().cloned() else {
            return;
        };
        self.gateway
            .set_workspace(setup.root.as_ref().map(|r| r.display().to_string()));
        let (gateway, client, cache_dir) = (
            self.gateway.clone(),
            self.client.clone(),
            setup.cache_dir.clone(),
        );
        tokio::spawn(async move {
            let max_bytes = gateway.config().cache.disk_mb.saturating_mul(1 << 20);
            let opened = tokio::task::spawn_blocking(move || {
                let dir = crate::archive::cache_base(cache_dir.as_deref());
                let opened = Store::open(&dir, max_bytes);
                if let Ok((store, _)) = &opened {
                    gateway.attach_store(store.clone());
                }
                opened
            })
            .await;
            match opened {
                Ok(Ok((_, Some(warning)))) => {
                    tracing::warn!("{warning}");
                    client.show_message(MessageType::WARNING, format!("Strata: {warning}"));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    tracing::error!("{e}");
                    let why = match e {
                        crate::archive::ArchiveError::CacheDir { path, error } => {
                            format!("cannot use {}: {error}", path.display())
                        }
                        other => other.to_string(),
                    };
                    client.show_message(
                        MessageType::WARNING,
                        format!(
                            "Strata: model answers are not cached on disk and calls are not \
                             audited ({why}); set STRATA_CACHE_DIR or --cache-dir to a writable directory"
                        ),
                    );
                }
                Err(e) if e.is_panic() => {
                    tracing::error!("opening the gateway database failed: {e}")
                }
                Err(_) => {} // the server is shutting down
            }
        });
        let (client, cell, config) = (
            self.client.clone(),
            self.archive.clone(),
            self.index_config(),
        );
        tokio::spawn(async move {
            if let Some(archive) = workspace::start(client, setup, config).await {
                let _ = cell.set(archive);
            }
        });
    }

    pub(super) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    pub(super) fn code_action(
        &self,
        params: CodeActionParams,
    ) -> Result<Option<CodeActionResponse>> {
        Ok(Some(self.agents.code_actions(&params)))
    }

    pub(super) async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> Result<Option<serde_json::Value>> {
        match params.command.as_str() {
            RUN_AGENT => {
                let args = params.arguments.into_iter().next().ok_or_else(|| {
                    Error::invalid_params(
                        "strata.runAgent takes {agent, textDocument, range?, query?}",
                    )
                })?;
                let args: RunArgs = serde_json::from_value(args)
                    .map_err(|e| Error::invalid_params(format!("strata.runAgent: {e}")))?;
                // The run is a task of its own: a panic in it is an error, not a panic here.
                command_result(self.agents.run(args).await?)
            }
            RUN_WORKFLOW => {
                let args = params.arguments.into_iter().next().ok_or_else(|| {
                    Error::invalid_params(
                        "strata.runWorkflow takes {workflow, textDocument, range?, query?}",
                    )
                })?;
                let args: WorkflowArgs = serde_json::from_value(args)
                    .map_err(|e| Error::invalid_params(format!("strata.runWorkflow: {e}")))?;
                command_result(self.agents.clone().run_workflow(args).await?)
            }
            NEW_CHAT => command_result(self.agents.new_chat().await?),
            other => Err(Error::invalid_params(format!("unknown command {other}"))),
        }
    }

    pub(super) async fn completion(
        &self,
        params: CompletionParams,
    ) -> Result<Option<CompletionResponse>> {
        if self.completion_mode.get() != Some(&CompletionMode::Items) {
            return Ok(None);
        }
        let position = params.text_document_position.position;
        let encoding = self.encoding();
        let ask = ask(
            &self.store,
            &params.text_document_position.text_document.uri,
            position,
            encoding,
        );
        let (name, version) = self.client_info.get().cloned().unwrap_or_default();
        let wait = super::completion::items_wait(&self.completion.config(), &name, &version);
        let uri = params.text_document_position.text_document.uri.as_str();
        let _held = (ask.is_some() && wait != Wait::Budget)
            .then(|| self.running.hold(uri, &super::completion::no_items(wait)))
            .flatten();
        Ok(Some(
            super::completion::items(&self.completion, ask, encoding, wait).await,
        ))
    }

    pub(super) fn did_change_configuration(&self) {
        // Settings pushed in the notification vary by client; pulling the section is uniform.
        self.settings.clone().pull();
    }

    pub(super) fn did_save(&self, params: DidSaveTextDocumentParams) {
        if let (Some(archive), Some(path)) = (
            self.archive.get(),
            self.workspace_path(&params.text_document.uri),
        ) {
            workspace::reindex(archive.clone(), vec![path], self.index_config());
        }
    }

    pub(super) fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let Some(archive) = self.archive.get() else {
            return;
        };
        let paths: Vec<PathBuf> = params
            .changes
            .iter()
            .filter_map(|change| self.workspace_path(&change.uri))
            .collect();
        if !paths.is_empty() {
            workspace::reindex(archive.clone(), paths, self.index_config());
        }
    }

    pub(super) async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        if self.archive.get().is_none() {
            // Still opening (or unusable, which was said once): nothing to list yet.
            return Ok(Some(WorkspaceSymbolResponse::Flat(Vec::new())));
        }
        let hits = self.search_archive(params.query, 100, None).await?;
        let Some(root) = self.workspace.get().and_then(|w| w.root.clone()) else {
            return Ok(None);
        };
        let encoding = self.encoding();
        #[allow(deprecated)]
        let symbols = hits
            .iter()
            .filter(|hit| !matches!(hit.kind.as_str(), "group" | "part" | "window"))
            .filter_map(|hit| {
                Some(SymbolInformation {
                    name: hit.name.clone(),
                    kind: workspace::symbol_kind(&hit.kind),
                    tags: None,
                    deprecated: None,
                    location: Location::new(
                        workspace::hit_uri(&root, hit)?,
                        workspace::hit_range(hit, encoding),
                    ),
                    container_name: hit
                        .qualified
                        .rsplit_once(['.', ':'])
                        .map(|(c, _)| c.trim_end_matches(':').to_string()),
                })
            })
            .collect();
        Ok(Some(WorkspaceSymbolResponse::Flat(symbols)))
    }

    pub(super) fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let language = Language::from_language_id(&doc.language_id, doc.uri.as_str());
        self.store
            .open(doc.uri.as_str(), language, doc.version, &doc.text);
        if let Some(path) = self.workspace_path(&doc.uri) {
            workspace::feed_buffer(
                &self.store,
                doc.uri.as_str(),
                path,
                self.archive.clone(),
                doc.version,
                self.index_config(),
            );
        }
    }

    pub(super) fn did_change(&self, params: DidChangeTextDocumentParams) {
        crate::resources::memory::edited();
        // Applied here, on the reading task, before the next message is read: edits keep their
        // order.
        let uri = params.text_document.uri;
        let encoding = self.encoding();
        // Review findings follow the edits (computed only where there are some).
        let line_edits: Vec<LineEdit> = if self.agents.has_findings(&uri) {
            params
                .content_changes
                .iter()
                .map(|c| LineEdit::new(c.range, &c.text))
                .collect()
        } else {
            Vec::new()
        };
        let changes = params
            .content_changes
            .into_iter()
            .map(|c| Change {
                range: c.range,
                text: c.text,
            })
            .collect::<Vec<_>>();
        // Where the last change ended: the cursor, as far as completion can tell.
        let inserted = changes
            .last()
            .filter(|c| c.range.is_some())
            .map(|c| c.text.len());
        let last_start = std::cell::Cell::new(None);
        let serving = matches!(
            self.completion_mode.get(),
            Some(CompletionMode::Inline | CompletionMode::Items)
        );
        if serving {
            // Held requests of this document are answered before anything else is done.
            let order = super::running::last_read();
            self.running.supersede(uri.as_str(), order);
            self.completion.superseded(uri.as_str(), order);
        }
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.store.change(
                uri.as_str(),
                params.text_document.version,
                changes,
                |text: &Rope, range: &Range| {
                    let start = to_byte(text, range.start, encoding)?;
                    let end = to_byte(text, range.end, encoding)?;
                    if end < start {
                        return Err(format!("range ends before it starts: {range:?}"));
                    }
                    last_start.set(Some(start));
                    Ok(start..end)
                },
            )
        }));
        match applied {
            Ok(Ok(())) => {
                let entry = self.store.entry(uri.as_str());
                if !line_edits.is_empty()
                    && let Some(entry) = &entry
                {
                    self.agents.follow_edits(&uri, &line_edits, &entry.text);
                }
                if serving && let Some(entry) = &entry {
                    let cursor = last_start.get().zip(inserted).map(|(s, n)| s + n);
                    self.completion
                        .edited(uri.as_str(), entry.version, &entry.text, cursor);
                }
            }
            Ok(Err(error)) => self.refuse(&uri, &error),
            Err(_) => self.refuse(
                &uri,
                &SyncError::BadRange {
                    index: 0,
                    reason: "internal error while applying".into(),
                },
            ),
        }
    }

    pub(super) fn did_close(&self, params: DidCloseTextDocumentParams) {
        // Unsaved text indexed from the buffer gives way to the file on disk.
        if let (Some(archive), Some(path)) = (
            self.archive.get(),
            self.workspace_path(&params.text_document.uri),
        ) {
            workspace::reindex(archive.clone(), vec![path], self.index_config());
        }
        self.completion.close(params.text_document.uri.as_str());
        if !self.store.close(params.text_document.uri.as_str()) {
            tracing::warn!(
                document = params.text_document.uri.as_str(),
                "didClose for a document that is not open"
            );
        }
    }
}

/// Custom requests.
impl Backend {
    /// Searches the archive on a blocking thread.
    async fn search_archive(
        &self,
        query: String,
        limit: usize,
        kinds: Option<Vec<String>>,
    ) -> Result<Vec<Hit>> {
        let Some(archive) = self.archive.get().cloned() else {
            return Err(Error {
                code: ErrorCode::InternalError,
                message:
                    "the archive is not open (no workspace folder, or it is still opening, or the \
                          cache directory is unusable: see window/showMessage)"
                        .into(),
                data: None,
            });
        };
        let query = SearchQuery {
            text: query,
            limit,
            kinds,
        };
        tokio::task::spawn_blocking(move || archive.search(&query))
            .await
            .map_err(|e| internal(format!("search failed: {e}")))?
            .map_err(|e| internal(e.to_string()))
    }

    pub(super) async fn search(&self, params: SearchParams) -> Result<SearchResult> {
        let hits = self
            .search_archive(params.query, params.limit.unwrap_or(20), params.kinds)
            .await?;
        let root = self
            .workspace
            .get()
            .and_then(|w| w.root.clone())
            .unwrap_or_default();
        let encoding = self.encoding();
        let hits = hits
            .iter()
            .map(|hit| SearchHit {
                uri: workspace::hit_uri(&root, hit)
                    .map(|u| u.as_str().to_string())
                    .unwrap_or_default(),
                path: hit.path.clone(),
                range: workspace::hit_range(hit, encoding),
                id: hit.chunk_id.clone(),
                kind: hit.kind.clone(),
                name: hit.name.clone(),
                qualified_name: hit.qualified.clone(),
                signature: hit.signature.clone(),
                score: (hit.score * 1000.0).round() / 1000.0,
            })
            .collect();
        Ok(SearchResult { hits })
    }

    /// The context pack for a position or selection: what an agent would send.
    pub(super) async fn context(&self, params: ContextParams) -> Result<ContextResult> {
        let uri = params.text_document.uri.clone();
        let parsed = self.parsed(&uri).await?;
        let encoding = self.encoding();
        let text = parsed.text.clone();
        let selection = match (params.range, params.position) {
            (Some(range), _) => {
                to_byte_clamped(&text, range.start, encoding)
                    ..to_byte_clamped(&text, range.end, encoding)
            }
            (None, Some(position)) => {
                let at = to_byte_clamped(&text, position, encoding);
                at..at
            }
            (None, None) => return Err(Error::invalid_params("give `position` or `range`")),
        };
        let diagnostics: Vec<ContextDiagnostic> = params
            .diagnostics
            .iter()
            .map(|d| ContextDiagnostic {
                range: to_byte_clamped(&text, d.range.start, encoding)
                    ..to_byte_clamped(&text, d.range.end, encoding),
                severity: format!("{:?}", d.severity.unwrap_or(DiagnosticSeverity::ERROR))
                    .to_lowercase(),
                message: d.message.clone(),
            })
            .collect();
        let session = self.session()?;
        let key = uri.as_str().to_owned();
        let version = parsed.version;
        let (pack, prompt) = match &params.agent {
            Some(name) => {
                let agent = session.agent(name).map_err(Error::invalid_params)?;
                let prepared = if agent.output == crate::agents::Output::Chat {
                    // The turn as it would go now, with the summary the history holds.
                    session
                        .chat_turn(&agent, &key, parsed, false, |_| async {})
                        .await
                        .map(|turn| turn.prepared)
                } else {
                    let problems = diagnostics
                        .iter()
                        .zip(&params.diagnostics)
                        .map(|(d, lsp)| crate::session::Problem {
                            range: d.range.clone(),
                            message: d.message.clone(),
                            code: lsp.code.as_ref().map(|c| match c {
                                NumberOrString::Number(n) => n.to_string(),
                                NumberOrString::String(s) => s.clone(),
                            }),
                        })
                        .collect();
                    session
                        .prepare_async(crate::session::Task {
                            target: Session::target(&parsed, selection),
                            agent: agent.clone(),
                            key,
                            parsed,
                            question: params.query.clone(),
                            problems,
                            steps: String::new(),
                        })
                        .await
                }
                .map_err(Error::invalid_params)?;
                let sent = SentPrompt::new(&agent.name, &prepared.request.prompt);
                (prepared.pack, Some(sent))
            }
            None => {
                let budgets = session.budgets(None);
                let query = params.query.clone();
                let pack = tokio::task::spawn_blocking(move || {
                    session
                        .pack(
                            &key,
                            &parsed,
                            Want {
                                selection,
                                query: query.as_deref(),
                                diagnostics: &diagnostics,
                                budgets,
                                ..Want::default()
                            },
                        )
                        .0
                })
                .await
                .map_err(|e| internal(format!("assembling context failed: {e}")))?;
                (pack, None)
            }
        };
        Ok(to_ext::context_result(&pack, version, prompt))
    }

    pub(super) async fn stats(&self) -> Result<StatsResult> {
        let documents = self
            .store
            .stats()
            .into_iter()
            .map(|d| {
                let parsed = d.parsed.as_deref();
                DocumentInfo {
                    uri: d.key,
                    version: d.version,
                    in_sync: d.in_sync,
                    language: d.language.map(Language::name),
                    bytes: d.bytes,
                    parsed_version: parsed.map(|p| p.version),
                    chunks: parsed.map_or(0, |p| p.chunks.len()),
                    segments: parsed.map_or(0, |p| p.chunks.segments()),
                    trees: parsed.map_or(0, |p| p.trees.len()),
                    parse_ms: parsed.map_or(0.0, |p| p.stats.parse_time.as_secs_f64() * 1e3),
                    chunk_ms: parsed.map_or(0.0, |p| p.stats.chunk_time.as_secs_f64() * 1e3),
                }
            })
            .collect();
        let archive = match self.archive.get().cloned() {
            Some(archive) => tokio::task::spawn_blocking(move || {
                let (files, chunks) = archive.counts().unwrap_or_default();
                let stats = archive.writer_stats();
                ArchiveInfo {
                    path: archive.path().display().to_string(),
                    files,
                    chunks,
                    chunks_written: stats.chunks_written.load(Ordering::Relaxed),
                    chunks_kept: stats.chunks_kept.load(Ordering::Relaxed),
                    last_error: archive.last_error(),
                }
            })
            .await
            .ok(),
            None => None,
        };
        // Both read SQLite: off the LSP task.
        let gateway = self.gateway.clone();
        let (gateway, recent_calls) = tokio::task::spawn_blocking(move || {
            let recent = gateway
                .store()
                .map(|store| store.recent_audit(20, 0, None))
                .unwrap_or_default();
            (gateway.stats(), recent)
        })
        .await
        .map_err(|e| internal(format!("gateway statistics: {e}")))?;
        Ok(StatsResult {
            recent_calls: recent_calls.iter().map(Into::into).collect(),
            version: env!("CARGO_PKG_VERSION"),
            documents,
            archive,
            methods: to_ext::latencies(&self.times.summaries()),
            gateway: (&gateway).into(),
            completion: (&self.completion.stats()).into(),
            config: self.settings.report(),
            memory: crate::resources::memory::usage().into(),
        })
    }

    /// `textDocument/inlineCompletion` (LSP 3.18).
    pub(super) async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        if self.completion_mode.get() != Some(&CompletionMode::Inline) {
            return Ok(None);
        }
        let position = params.text_document_position.position;
        let ask = ask(
            &self.store,
            &params.text_document_position.text_document.uri,
            position,
            self.encoding(),
        );
        let wait = Wait::Hold(Duration::from_millis(self.completion.config().hold_ms));
        let uri = params.text_document_position.text_document.uri.as_str();
        let _held = ask
            .is_some()
            .then(|| self.running.hold(uri, &super::completion::no_suggestion()))
            .flatten();
        Ok(Some(
            super::completion::inline(&self.completion, ask, position, wait).await,
        ))
    }

    /// `window/workDoneProgress/cancel`: the run behind the token, found in the registry.
    pub(super) fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        let token = match params.token {
            NumberOrString::String(s) => s,
            NumberOrString::Number(n) => n.to_string(),
        };
        self.running.cancel(&Key::Progress(token));
    }

    pub(super) fn debug_text(&self, params: TextDocumentParams) -> Result<DebugTextResult> {
        let uri = &params.text_document.uri;
        let entry = self
            .store
            .entry(uri.as_str())
            .ok_or_else(|| super::not_open(uri))?;
        Ok(DebugTextResult {
            version: entry.version,
            text: entry.text.to_string(),
            in_sync: entry.in_sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_an_internal_error_and_tells_the_client_once() {
        let (outbox, mut frames) = super::super::outbox::Outbox::channel();
        let client = Client::new(outbox.clone());
        let running = Arc::new(Running::new(outbox));
        let backend = Backend::new(
            client,
            running,
            ChunkConfig::default(),
            None,
            Default::default(),
        );
        for _ in 0..2 {
            let result: Result<()> = backend.guard("test/method", async { panic!("boom") }).await;
            let error = result.unwrap_err();
            assert_eq!(error.code, ErrorCode::InternalError);
            assert!(error.message.contains("boom"));
        }
        assert_eq!(
            backend.guard("test/method", async { Ok(7) }).await.unwrap(),
            7
        );
        let message: serde_json::Value =
            serde_json::from_slice(&frames.recv().await.expect("a showMessage").into_bytes())
                .unwrap();
        assert_eq!(message["method"], "window/showMessage");
        // Only once: the message is sent before `guard` returns, so a second would be queued.
        assert!(frames.try_recv().is_err(), "a second showMessage");
    }
}
