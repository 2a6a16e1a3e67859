//! The open documents. Every open, change and close is applied synchronously under one std
//! mutex, in the order the calls arrive; nothing here awaits. A change queues its document's
//! parse on the parse lane unless one is under way; that parse takes all edits made since the
//! last one (bursts coalesce), publishes the result from the lane's thread, and goes on while
//! edits keep coming. Requests wait for the parse of the version they saw at entry.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};

use ropey::Rope;
use tokio::sync::watch;
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
    /// Edits since the last parse took the text.
    edits: Vec<InputEdit>,
    reset: bool,
    /// The parse state, or `None` while a parse on the lane holds it.
    syntax: Option<Syntax>,
    parsed: watch::Sender<Option<Arc<Parsed>>>,
}

/// What a parse takes.
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

    /// Opens (or reopens) a document and queues its first parse.
    pub fn open(self: &Arc<Self>, key: &str, language: Option<Language>, version: i32, text: &str) {
        let generation = self
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (parsed, _) = watch::channel(None);
        let key: Arc<str> = Arc::from(key);
        let mut documents = self.lock();
        // A parse of the document it replaces sees a new generation and ends.
        documents.insert(
            key.clone(),
            Document {
                generation,
                version,
                text: Rope::from_str(text),
                language,
                in_sync: true,
                edits: Vec::new(),
                reset: true,
                syntax: Some(Syntax::new(language, self.config())),
                parsed,
            },
        );
        let taken = take_for_parse(&mut documents, &key);
        drop(documents);
        self.start_parse(taken);
    }

    pub fn close(&self, key: &str) -> bool {
        // A parse under way sees the document gone and ends.
        self.lock().remove(key).is_some()
    }

    /// Applies content changes in order. `resolve` turns a client range into a byte range of
    /// the text as it stands after the previous changes of the same call.
    pub fn change<R>(
        self: &Arc<Self>,
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
        let taken = take_for_parse(&mut documents, key);
        drop(documents);
        self.start_parse(taken);
        Ok(())
    }

    /// Queues on the parse lane the parse [`take_for_parse`] took the state for; called once the
    /// documents are unlocked, so that the lane's thread does not wake to wait for the lock.
    fn start_parse(self: &Arc<Self>, taken: Option<(Arc<str>, u64, Syntax)>) {
        let Some((key, generation, syntax)) = taken else {
            return;
        };
        let store = self.clone();
        PARSES.spawn(move || store.parse(key, generation, syntax));
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

    /// Parses a document on the parse lane, and again while edits came in during the last
    /// parse; then hands the parse state back to the document. Ends when the document was closed
    /// or reopened.
    fn parse(&self, key: Arc<str>, generation: u64, mut syntax: Syntax) {
        loop {
            let job = {
                let mut documents = self.lock();
                let Some(doc) = documents
                    .get_mut(&key)
                    .filter(|d| d.generation == generation)
                else {
                    return;
                };
                let current = doc.parsed.borrow().as_ref().map(|p| p.version);
                if !doc.reset && doc.edits.is_empty() && current == Some(doc.version) {
                    doc.syntax = Some(syntax);
                    return;
                }
                Job {
                    version: doc.version,
                    text: doc.text.clone(),
                    edits: std::mem::take(&mut doc.edits),
                    reset: std::mem::take(&mut doc.reset),
                }
            };
            let (version, text) = (job.version, job.text.clone());
            let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                syntax.update(job.version, job.text, &job.edits, job.reset)
            }));
            match parsed {
                Ok(parsed) => self.publish(&key, generation, parsed),
                Err(_) => {
                    // A parse that panics would panic again on the same text: publish line
                    // windows for this version and start afresh at the next edit.
                    tracing::error!(document = %key, version, "parsing panicked; line windows until the next edit");
                    let config = self.config();
                    syntax = Syntax::new(syntax.language(), config);
                    let fallback = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Syntax::new(None, config).update(version, text, &[], true)
                    }));
                    if let Ok(parsed) = fallback {
                        self.publish(&key, generation, parsed);
                    }
                }
            }
        }
    }
}

/// The document's parse state, taken for a parse to start, unless a parse under way holds it (it
/// takes the new edits when it is done with the ones it has).
fn take_for_parse(
    documents: &mut HashMap<Arc<str>, Document>,
    key: &str,
) -> Option<(Arc<str>, u64, Syntax)> {
    let doc = documents.get_mut(key)?;
    let syntax = doc.syntax.take()?;
    Some((Arc::from(key), doc.generation, syntax))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::chunk_text;

    fn insert(store: &Arc<DocumentStore>, key: &str, version: i32, at: usize, text: &str) {
        let change = Change {
            range: Some(at..at),
            text: text.to_owned(),
        };
        store
            .change(key, version, vec![change], |_, r: &Range<usize>| {
                Ok(r.clone())
            })
            .unwrap();
    }

    /// The parse of the current version; fails the test rather than hang when none comes.
    async fn parse_of(store: &Arc<DocumentStore>) -> Arc<Parsed> {
        let wait = tokio::time::timeout(std::time::Duration::from_secs(20), store.parsed("a.rs"));
        wait.await
            .expect("no parse came")
            .expect("the document is open")
    }

    /// Edits that arrive while the document's parse runs on the lane are parsed after it, in
    /// one go, and what is published at the end is the text the edits made.
    #[tokio::test]
    async fn edits_made_during_a_parse_are_parsed_after_it() {
        let store = DocumentStore::new(ChunkConfig::default());
        let source: String = (0..4000)
            .map(|i| format!("fn f{i}() -> u32 {{\n    {i}\n}}\n\n"))
            .collect();
        store.open("a.rs", Some(Language::Rust), 1, &source);
        let mut text = Rope::from_str(&source);
        for version in 2..=30 {
            let at = text.len_bytes() / 2;
            let at = text.line_to_byte(text.byte_to_line(at));
            let line = format!("// {version}\n");
            insert(&store, "a.rs", version, at, &line);
            text.insert(text.byte_to_char(at), &line);
        }
        let parsed = parse_of(&store).await;
        assert_eq!(parsed.version, 30);
        assert_eq!(parsed.text, text);
        let fresh = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
        assert_eq!(parsed.chunks.to_vec(), fresh.to_vec());
        // The lane has handed the parse state back: the next edit is parsed too.
        insert(&store, "a.rs", 31, 0, "// top\n");
        assert_eq!(parse_of(&store).await.version, 31);
    }

    /// A document closed or reopened while its parse runs: the old parse publishes nothing and
    /// the reopened text is the one parsed.
    #[tokio::test]
    async fn a_document_reopened_during_its_parse_is_parsed_as_reopened() {
        let store = DocumentStore::new(ChunkConfig::default());
        let big: String = (0..4000).map(|i| format!("fn f{i}() {{}}\n")).collect();
        store.open("a.rs", Some(Language::Rust), 1, &big);
        assert!(store.close("a.rs"));
        assert!(store.entry("a.rs").is_none());
        store.open("a.rs", Some(Language::Rust), 1, &big);
        store.open("a.rs", Some(Language::Rust), 1, "fn small() {}\n");
        let parsed = parse_of(&store).await;
        assert_eq!(parsed.text.to_string(), "fn small() {}\n");
        let names: Vec<String> = parsed
            .chunks
            .to_vec()
            .iter()
            .map(|c| c.name.to_string())
            .collect();
        assert_eq!(names, ["small"]);
        insert(&store, "a.rs", 2, 0, "fn first() {}\n");
        let parsed = parse_of(&store).await;
        assert_eq!((parsed.version, parsed.chunks.len()), (2, 2));
    }
}
