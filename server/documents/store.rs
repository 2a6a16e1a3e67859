//! The open documents. Every open, change and close is applied synchronously under one std
//! mutex, in the order the calls arrive; nothing here awaits. Parsing happens on a per-document
//! worker that takes all edits made since its last parse (bursts coalesce) and publishes the
//! result; requests wait for the parse of the version they saw at entry.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use ropey::Rope;
use tokio::sync::{Notify, watch};
use tree_sitter::InputEdit;

use super::syntax::{Parsed, Syntax};
use crate::chunks::{ChunkConfig, ChunkKind};
use crate::resources::lane::Lane;
use crate::syntax::{Language, input_edit};

/// Why a change was refused. The document keeps its last good text and, except for a change to
/// a document that is not open, is marked out of sync until a full-text change or a reopen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncError {
    NotOpen,
    /// The version did not increase.
    StaleVersion {
        current: i32,
        received: i32,
    },
    /// A range that does not fit the document (past the end, inside a character…).
    BadRange {
        index: usize,
        reason: String,
    },
    /// The document already lost sync; only a full-text change or a reopen brings it back.
    OutOfSync,
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::NotOpen => write!(f, "a change arrived for a document that is not open"),
            SyncError::StaleVersion { current, received } => {
                write!(f, "version {received} does not follow version {current}")
            }
            SyncError::BadRange { index, reason } => {
                write!(f, "change {index} does not fit the document: {reason}")
            }
            SyncError::OutOfSync => write!(f, "the document is out of sync"),
        }
    }
}

/// One content change as the client sent it: a range in the client's terms, or the whole text.
pub struct Change<R> {
    pub range: Option<R>,
    pub text: String,
}

/// One open document, for `strata/stats`.
pub struct DocumentStats {
    pub key: String,
    pub version: i32,
    pub in_sync: bool,
    pub language: Option<Language>,
    pub bytes: usize,
    /// The latest parse, which may be of an older version.
    pub parsed: Option<Arc<Parsed>>,
}

/// What a request sees of a document at entry.
pub struct Entry {
    pub version: i32,
    pub text: Rope,
    pub in_sync: bool,
    pub language: Option<Language>,
    parsed: watch::Receiver<Option<Arc<Parsed>>>,
}

impl Entry {
    /// The parse of this entry's version or a later one. `None` when the document was closed.
    pub async fn parsed(mut self) -> Option<Arc<Parsed>> {
        let version = self.version;
        let parsed = self
            .parsed
            .wait_for(|p| p.as_ref().is_some_and(|p| p.version >= version))
            .await
            .ok()?;
        parsed.clone()
    }
}

struct Document {
    generation: u64,
    version: i32,
    text: Rope,
    language: Option<Language>,
    in_sync: bool,
    /// Edits since the worker last took the text.
    edits: Vec<InputEdit>,
    reset: bool,
    wake: Arc<Notify>,
    parsed: watch::Sender<Option<Arc<Parsed>>>,
}

/// What a worker takes to parse.
struct Job {
    version: i32,
    text: Rope,
    edits: Vec<InputEdit>,
    reset: bool,
}

/// A chunk an edit changed, newest first in [`DocumentStore::recent_edits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentEdit {
    pub key: Arc<str>,
    pub kind: ChunkKind,
    /// The chunk's qualified path (`Type::method`).
    pub path: Arc<str>,
}

/// Chunks remembered as recently edited.
const RECENT_EDITS: usize = 32;

/// Parses run on a lane of their own: a request waiting for the parse of the version it was
/// made against (documentSymbol, foldingRange, chunks) must not wait behind a context pack or
/// a prompt build on the runtime's blocking pool as well.
static PARSES: Lane = Lane::new("strata-parse", std::time::Duration::from_secs(2));

pub struct DocumentStore {
    documents: Mutex<HashMap<Arc<str>, Document>>,
    recent: Mutex<std::collections::VecDeque<RecentEdit>>,
    config: Mutex<ChunkConfig>,
    next_generation: std::sync::atomic::AtomicU64,
}

impl DocumentStore {
    pub fn new(config: ChunkConfig) -> Arc<DocumentStore> {
        Arc::new(DocumentStore {
            documents: Mutex::new(HashMap::new()),
            recent: Mutex::new(std::collections::VecDeque::new()),
            config: Mutex::new(config),
            next_generation: 1.into(),
        })
    }

    /// The chunking configuration for documents opened from now on.
    pub fn set_config(&self, config: ChunkConfig) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub fn config(&self) -> ChunkConfig {
        *self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Document>> {
        // A panic elsewhere while holding the lock must not take every document down with it.
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens (or reopens) a document and starts its parse worker. Must be called inside a tokio
    /// runtime.
    pub fn open(self: &Arc<Self>, key: &str, language: Option<Language>, version: i32, text: &str) {
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let (parsed, _) = watch::channel(None);
        let key: Arc<str> = Arc::from(key);
        let replaced = self.lock().insert(
            key.clone(),
            Document {
                generation,
                version,
                text: Rope::from_str(text),
                language,
                in_sync: true,
                edits: Vec::new(),
                reset: true,
                wake: wake.clone(),
                parsed,
            },
        );
        if let Some(old) = replaced {
            old.wake.notify_one(); // its worker sees a new generation and ends
        }
        wake.notify_one();
        let store = self.clone();
        let syntax = Syntax::new(language, self.config());
        tokio::spawn(store.work(key, generation, wake, syntax));
    }

    pub fn close(&self, key: &str) -> bool {
        let removed = self.lock().remove(key);
        if let Some(doc) = &removed {
            doc.wake.notify_one(); // the worker sees the document gone and ends
        }
        removed.is_some()
    }

    /// Applies content changes in order. `resolve` turns a client range into a byte range of
    /// the text as it stands after the previous changes of the same call.
    pub fn change<R>(
        &self,
        key: &str,
        version: i32,
        changes: Vec<Change<R>>,
        resolve: impl Fn(&Rope, &R) -> Result<Range<usize>, String>,
    ) -> Result<(), SyncError> {
        let mut documents = self.lock();
        let doc = documents.get_mut(key).ok_or(SyncError::NotOpen)?;
        if version <= doc.version {
            doc.in_sync = false;
            return Err(SyncError::StaleVersion {
                current: doc.version,
                received: version,
            });
        }
        // Apply to a copy (O(1) for a rope) so that a refused change leaves the last good text.
        let mut text = doc.text.clone();
        let mut edits = Vec::new();
        let mut reset = false;
        let mut in_sync = doc.in_sync;
        let mut error = None;
        for (index, change) in changes.into_iter().enumerate() {
            match change.range {
                None => {
                    text = Rope::from_str(&change.text);
                    edits.clear();
                    reset = true;
                    in_sync = true;
                    error = None;
                }
                Some(_) if !in_sync => {
                    error.get_or_insert(SyncError::OutOfSync);
                }
                Some(range) => match resolve(&text, &range) {
                    Ok(bytes) if bytes.start <= bytes.end && bytes.end <= text.len_bytes() => {
                        let before = text.clone();
                        let start = text.byte_to_char(bytes.start);
                        text.remove(start..text.byte_to_char(bytes.end));
                        text.insert(start, &change.text);
                        let new_end = bytes.start + change.text.len();
                        edits.push(input_edit(&before, &text, bytes.start, bytes.end, new_end));
                    }
                    Ok(bytes) => {
                        in_sync = false;
                        error = Some(SyncError::BadRange {
                            index,
                            reason: format!("byte range {bytes:?} of {}", text.len_bytes()),
                        });
                    }
                    Err(reason) => {
                        in_sync = false;
                        error = Some(SyncError::BadRange { index, reason });
                    }
                },
            }
        }
        if let Some(error) = error {
            doc.in_sync = false;
            // Keep what came before the first refused change only if a full text followed it.
            return Err(error);
        }
        doc.version = version;
        doc.text = text;
        doc.in_sync = true;
        if reset {
            doc.reset = true;
            doc.edits.clear();
        }
        doc.edits.extend(edits);
        doc.wake.notify_one();
        Ok(())
    }

    /// The document as it stands now, with a handle on its parses.
    pub fn entry(&self, key: &str) -> Option<Entry> {
        let documents = self.lock();
        let doc = documents.get(key)?;
        Some(Entry {
            version: doc.version,
            text: doc.text.clone(),
            in_sync: doc.in_sync,
            language: doc.language,
            parsed: doc.parsed.subscribe(),
        })
    }

    /// Every parse of the document from now on, until it is closed or reopened (then the
    /// receiver reports the channel closed).
    pub fn subscribe(&self, key: &str) -> Option<watch::Receiver<Option<Arc<Parsed>>>> {
        Some(self.lock().get(key)?.parsed.subscribe())
    }

    /// The latest parse of the current version (waits for it).
    pub async fn parsed(&self, key: &str) -> Option<Arc<Parsed>> {
        self.entry(key)?.parsed().await
    }

    /// What is open and how far its parse has got; never waits for a parse.
    pub fn stats(&self) -> Vec<DocumentStats> {
        let documents = self.lock();
        let mut stats: Vec<DocumentStats> = documents
            .iter()
            .map(|(key, doc)| DocumentStats {
                key: key.to_string(),
                version: doc.version,
                in_sync: doc.in_sync,
                language: doc.language,
                bytes: doc.text.len_bytes(),
                parsed: doc.parsed.borrow().clone(),
            })
            .collect();
        stats.sort_by(|a, b| a.key.cmp(&b.key));
        stats
    }

    fn take_job(&self, key: &str, generation: u64) -> Option<Option<Job>> {
        let mut documents = self.lock();
        let doc = documents
            .get_mut(key)
            .filter(|d| d.generation == generation)?;
        let current = doc.parsed.borrow().as_ref().map(|p| p.version);
        if !doc.reset && doc.edits.is_empty() && current == Some(doc.version) {
            return Some(None);
        }
        let job = Job {
            version: doc.version,
            text: doc.text.clone(),
            edits: std::mem::take(&mut doc.edits),
            reset: std::mem::take(&mut doc.reset),
        };
        Some(Some(job))
    }

    /// The latest parse of a document, whatever its version; never waits.
    pub fn latest(&self, key: &str) -> Option<Arc<Parsed>> {
        self.lock().get(key)?.parsed.borrow().clone()
    }

    /// The chunks edits changed most recently, in any document, newest first.
    pub fn recent_edits(&self) -> Vec<RecentEdit> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn publish(&self, key: &str, generation: u64, parsed: Parsed) {
        if !parsed.changed.is_empty() {
            let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
            for (kind, path) in parsed.changed.iter().rev() {
                let edit = RecentEdit {
                    key: Arc::from(key),
                    kind: *kind,
                    path: path.clone(),
                };
                recent.retain(|e| *e != edit);
                recent.push_front(edit);
            }
            recent.truncate(RECENT_EDITS);
        }
        let documents = self.lock();
        if let Some(doc) = documents.get(key).filter(|d| d.generation == generation) {
            doc.parsed.send_replace(Some(Arc::new(parsed)));
        }
    }

    /// The parse worker of one document generation: parses on the parse lane, one job at a
    /// time, each job holding every edit made since the previous one.
    async fn work(
        self: Arc<Self>,
        key: Arc<str>,
        generation: u64,
        wake: Arc<Notify>,
        syntax: Syntax,
    ) {
        let mut syntax = Some(syntax);
        loop {
            wake.notified().await;
            let job = match self.take_job(&key, generation) {
                None => return, // closed or reopened
                Some(None) => continue,
                Some(Some(job)) => job,
            };
            let Some(mut state) = syntax.take() else {
                return;
            };
            let (version, text) = (job.version, job.text.clone());
            let result = PARSES
                .run(move || {
                    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        state.update(job.version, job.text, &job.edits, job.reset)
                    }));
                    (state, parsed)
                })
                .await;
            match result {
                Some((state, Ok(parsed))) => {
                    syntax = Some(state);
                    self.publish(&key, generation, parsed);
                }
                Some((state, Err(_))) => {
                    // A parse that panics would panic again on the same text: publish line windows
                    // for this version and start afresh at the next edit.
                    tracing::error!(document = %key, version, "parsing panicked; line windows until the next edit");
                    let config = self.config();
                    syntax = Some(Syntax::new(state.language(), config));
                    let fallback = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Syntax::new(None, config).update(version, text, &[], true)
                    }));
                    if let Ok(parsed) = fallback {
                        self.publish(&key, generation, parsed);
                    }
                }
                None => {
                    tracing::error!(document = %key, "the parse lane could not run the parse");
                    return;
                }
            }
        }
    }
}
