//! The workspace side of the server: opening the archive, indexing with `$/progress`, watching
//! files, feeding it unsaved buffers, and answering searches. All SQLite work runs on blocking
//! threads; nothing here runs inside a handler before its reply.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tower_lsp_server::ls_types::*;

use super::client::Client;
use super::position::{Encoding, from_point};
use crate::archive::{Archive, Hit, IndexConfig};
use crate::documents::DocumentStore;

/// How long an edited buffer waits for typing to pause before it is indexed.
pub const BUFFER_DEBOUNCE: Duration = Duration::from_millis(300);

/// What the client said at `initialize` that the workspace side needs.
#[derive(Clone, Debug, Default)]
pub struct WorkspaceSetup {
    pub root: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    /// Parsing threads for indexing (default: all cores but one).
    pub index_threads: Option<usize>,
    pub progress: bool,
    pub watch_files: bool,
    /// Files indexed and to index while the workspace is being indexed (for `strata/status`).
    pub indexing: Arc<std::sync::Mutex<Option<(usize, usize)>>>,
}

/// Opens the archive and indexes the workspace, reporting progress; returns the archive once it
/// is open (indexing goes on in the background).
pub async fn start(
    client: Client,
    setup: WorkspaceSetup,
    config: IndexConfig,
) -> Option<Arc<Archive>> {
    let root = setup.root.clone()?;
    let cache_dir = setup.cache_dir.clone();
    let opened =
        tokio::task::spawn_blocking(move || Archive::open(&root, cache_dir.as_deref())).await;
    let archive = match opened {
        Ok(Ok((archive, warning))) => {
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
                client.show_message(MessageType::WARNING, format!("Strata: {warning}"));
            }
            Arc::new(archive)
        }
        Ok(Err(e)) => {
            tracing::error!("archive unavailable: {e}");
            client.show_message(MessageType::WARNING, format!("Strata: search is off: {e}"));
            return None;
        }
        Err(e) => {
            tracing::error!("archive open failed: {e}");
            return None;
        }
    };
    if setup.watch_files {
        let client = client.clone();
        tokio::spawn(async move {
            let options = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String("**/*".into()),
                    kind: None,
                }],
            };
            let registration = Registration {
                id: "strata-watched-files".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(options).ok(),
            };
            if let Err(e) = client.register_capability(vec![registration]).await {
                tracing::warn!("the client refused file watching: {e}");
            }
        });
    }
    tokio::spawn(index_with_progress(
        client,
        archive.clone(),
        setup.progress,
        config,
        setup.indexing.clone(),
    ));
    Some(archive)
}

async fn index_with_progress(
    client: Client,
    archive: Arc<Archive>,
    progress: bool,
    config: IndexConfig,
    indexing: Arc<std::sync::Mutex<Option<(usize, usize)>>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
    let worker = archive.clone();
    let job = on_own_thread("strata-index", move || {
        let summary = worker.index(&config, &|done, total| {
            crate::resources::memory::busy();
            let _ = tx.send((done, total));
        });
        // Indexing is over: the idle release counts from here.
        worker.flush();
        crate::resources::memory::busy();
        summary
    });
    let ongoing = if progress {
        let token = ProgressToken::String("strata/index".into());
        match client.create_work_done_progress(token.clone()).await {
            Ok(()) => {
                client.progress(
                    token.clone(),
                    WorkDoneProgress::Begin(WorkDoneProgressBegin {
                        title: "Indexing".into(),
                        cancellable: None,
                        message: None,
                        percentage: Some(0),
                    }),
                );
                Some(token)
            }
            Err(e) => {
                tracing::debug!("no progress token: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut last = None;
    while let Some((done, total)) = rx.recv().await {
        *indexing.lock().unwrap_or_else(|e| e.into_inner()) = Some((done, total));
        // Report at most every percent.
        let percent = (done * 100 / total.max(1)) as u32;
        if let Some(token) = &ongoing
            && last != Some(percent)
        {
            last = Some(percent);
            client.progress(
                token.clone(),
                WorkDoneProgress::Report(WorkDoneProgressReport {
                    cancellable: None,
                    message: Some(format!("{done}/{total} files")),
                    percentage: Some(percent),
                }),
            );
        }
    }
    *indexing.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let message = match job.await {
        Some(Ok(summary)) => {
            tracing::info!(?summary, "indexed");
            format!(
                "{} files, {} parsed, {} chunks, {:.1} MB in {:.1} s",
                summary.files,
                summary.indexed,
                summary.chunks,
                summary.bytes as f64 / 1e6,
                summary.seconds
            )
        }
        Some(Err(e)) => {
            tracing::error!("indexing failed: {e}");
            client.show_message(
                MessageType::WARNING,
                format!("Strata: indexing failed: {e}"),
            );
            "failed".into()
        }
        None => {
            tracing::error!("indexing panicked, or its thread could not start");
            "failed".into()
        }
    };
    if let Some(token) = ongoing {
        client.progress(
            token,
            WorkDoneProgress::End(WorkDoneProgressEnd {
                message: Some(message),
            }),
        );
    }
}

/// Re-reads files from disk (saved, created, changed or deleted): on a thread of its own, as a
/// branch switch can change thousands.
pub fn reindex(archive: Arc<Archive>, paths: Vec<PathBuf>, config: IndexConfig) {
    drop(on_own_thread("strata-reindex", move || {
        if let Err(e) = archive.index_paths(&paths, &config) {
            tracing::error!("re-indexing {paths:?}: {e}");
        }
    }));
}

/// Runs a long job (indexing: seconds to minutes) on a thread of its own, not on the runtime's
/// blocking pool, which is sized for short ones (parses, packs, searches: `main.rs`) and would
/// otherwise have one thread fewer for them while it runs. Resolves to the job's result, or
/// `None` if it panicked or its thread could not start. Dropping the future leaves the job
/// running.
pub fn on_own_thread<T, F>(name: &str, job: F) -> impl Future<Output = Option<T>> + use<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let _ = tx.send(job());
        });
    if let Err(e) = spawned {
        tracing::error!("no thread for {name}: {e}");
    }
    async move { rx.await.ok() }
}

/// Indexes the unsaved text of an open document each time typing pauses, until the document is
/// closed or reopened. The text as opened (version `opened`) is left to the disk index. A file
/// `config` leaves out is never indexed.
pub fn feed_buffer(
    store: &DocumentStore,
    key: &str,
    path: PathBuf,
    archive: Arc<OnceLock<Arc<Archive>>>,
    opened: i32,
    config: IndexConfig,
) {
    let Some(mut parses) = store.subscribe(key) else {
        return;
    };
    tokio::spawn(async move {
        let mut indexed = opened;
        while parses.changed().await.is_ok() {
            // Debounced: the buffer is indexed once typing pauses for BUFFER_DEBOUNCE (or, while
            // it goes on, as often as the profile says), not on every parse — indexing a large buffer
            // costs as much as the requests the editor is waiting for.
            let first = tokio::time::Instant::now();
            let closed = loop {
                tokio::time::sleep(BUFFER_DEBOUNCE).await;
                match parses.has_changed() {
                    Err(_) => break true,
                    // While typing goes on, still indexed as often as the profile says.
                    Ok(true)
                        if crate::resources::current()
                            .buffer_index_every
                            .is_none_or(|every| first.elapsed() < every) =>
                    {
                        parses.borrow_and_update();
                    }
                    Ok(_) => break false,
                }
            };
            if closed {
                // Closed (or reopened) meanwhile: the disk copy, re-read on close, stands.
                break;
            }
            let Some(parsed) = parses.borrow_and_update().clone() else {
                continue;
            };
            let Some(archive) = archive.get().cloned() else {
                continue;
            };
            if parsed.version <= indexed {
                continue;
            }
            indexed = parsed.version;
            let (path, config) = (path.clone(), config.clone());
            // Tens of milliseconds for a large buffer: on a thread of its own, so that the
            // parses and packs the editor waits for do not queue behind it.
            on_own_thread("strata-buffer-index", move || {
                let chunks = parsed.chunks.to_vec();
                archive.index_buffer(&path, &parsed.text, parsed.language, &chunks, &config);
                crate::resources::memory::busy();
            })
            .await;
        }
    });
}

pub fn hit_range(hit: &Hit, encoding: Encoding) -> Range {
    Range::new(
        from_point(&hit.start, encoding),
        from_point(&hit.end, encoding),
    )
}

pub fn hit_uri(root: &Path, hit: &Hit) -> Option<Uri> {
    Uri::from_file_path(root.join(&hit.path))
}

pub fn symbol_kind(kind: &str) -> SymbolKind {
    match kind {
        "function" | "macro" => SymbolKind::FUNCTION,
        "method" => SymbolKind::METHOD,
        "impl" => SymbolKind::OBJECT,
        "trait" | "interface" => SymbolKind::INTERFACE,
        "struct" | "union" => SymbolKind::STRUCT,
        "enum" => SymbolKind::ENUM,
        "class" => SymbolKind::CLASS,
        "type" => SymbolKind::TYPE_PARAMETER,
        "module" => SymbolKind::MODULE,
        _ => SymbolKind::NULL,
    }
}
