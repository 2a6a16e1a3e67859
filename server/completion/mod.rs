//! AI completion that never blocks. A request is answered at once with what is ready — the rest
//! of a suggestion the user is typing into — or with nothing, while a model call for the newest
//! cursor position is scheduled in the background for a later request. Only a request for exactly
//! the text a call in flight was made for waits for it, and no longer than the budget.
//!
//! Fewer calls: one call in flight per document; a new one starts when the user pauses (a
//! debounce that adapts to typing speed) or, during continuous typing, at most once per refresh
//! interval; a call whose cursor the user has left is cancelled, which drops its HTTP request.
//! The answer is fitted to the syntax at the cursor (`shape`) before anyone sees it.
//!
//! No LSP types here: the edge converts positions and builds prompts through [`Prompter`].

#[cfg(test)]
mod fit_tests;
pub mod shape;
pub mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ropey::Rope;
use serde::Serialize;
use tokio::sync::watch;

pub use crate::llm::config::CompletionConfig;
use crate::llm::{CallRequest, Gateway, Params, Priority, Prompt};
pub use shape::{Shape, fit, shape};

/// The cursor as far as reuse is concerned: its line, the text before and after it on the line,
/// and the two lines above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub line: usize,
    pub before: String,
    pub after: String,
    pub above: String,
}

impl Anchor {
    /// Reads the anchor at byte `cursor` of `text`.
    pub fn at(text: &Rope, cursor: usize) -> Anchor {
        let cursor = cursor.min(text.len_bytes());
        let line = text.byte_to_line(cursor);
        let line_start = text.line_to_byte(line);
        let line_end = if line + 1 < text.len_lines() {
            text.line_to_byte(line + 1)
        } else {
            text.len_bytes()
        };
        let above_start = text.line_to_byte(line.saturating_sub(2));
        let after = text.byte_slice(cursor..line_end).to_string();
        Anchor {
            line,
            before: text.byte_slice(line_start..cursor).to_string(),
            after: after.trim_end_matches(['\n', '\r']).to_owned(),
            above: text.byte_slice(above_start..line_start).to_string(),
        }
    }

    /// What was typed at this anchor since `earlier`, if this anchor only extends it.
    pub fn typed_since<'a>(&'a self, earlier: &Anchor) -> Option<&'a str> {
        (self.line == earlier.line
            && self.above == earlier.above
            && self.after == earlier.after
            && self.before.starts_with(&earlier.before))
        .then(|| &self.before[earlier.before.len()..])
    }
}

/// What the prompt builder returns.
#[derive(Clone, Debug)]
pub struct Built {
    pub prefix: String,
    pub suffix: String,
    pub shape: Shape,
    /// For the audit: paths and chunk ids whose text is in the prompt.
    pub files: Vec<String>,
    pub chunks: Vec<String>,
}

/// Builds prompts; the LSP layer implements it over the open documents and the archive.
pub trait Prompter: Send + Sync + 'static {
    /// The prompt for `uri` at byte `cursor` of `text` (version `version`). Blocking: called on
    /// the blocking pool. `None` when nothing of this document may be sent.
    fn build(
        &self,
        uri: &str,
        version: i32,
        text: &Rope,
        cursor: usize,
        config: &CompletionConfig,
    ) -> Option<Built>;
}

/// One completion request.
#[derive(Clone, Debug)]
pub struct Ask {
    pub uri: String,
    pub version: i32,
    pub text: Rope,
    pub cursor: usize,
    pub anchor: Anchor,
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Served {
    /// The rest of a suggestion the user has been typing into.
    Suggestion,
    /// A call in flight finished within the budget.
    InFlight,
    /// Nothing ready; a call is scheduled or running.
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The text to insert at the cursor.
    pub text: Option<String>,
    pub served: Served,
}

#[derive(Debug, Default)]
pub struct CompletionStats {
    pub requests: u64,
    pub from_suggestion: u64,
    pub from_in_flight: u64,
    pub empty: u64,
    pub calls_started: u64,
    pub calls_cancelled: u64,
    pub calls_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    from_suggestion: AtomicU64,
    from_in_flight: AtomicU64,
    empty: AtomicU64,
    calls_started: AtomicU64,
    calls_cancelled: AtomicU64,
    calls_failed: AtomicU64,
}

struct Flight {
    anchor: Anchor,
    task: tokio::task::JoinHandle<()>,
    id: u64,
    started: Instant,
}

struct Doc {
    last_request: Option<Instant>,
    /// Moving average of the time between requests (typing speed), in milliseconds.
    interval_ms: Option<f64>,
    /// The newest request nothing could serve.
    wanted: Option<Ask>,
    /// When the current burst of wanting began, or the last call started.
    since: Option<Instant>,
    flight: Option<Flight>,
    /// Fitted suggestions, newest last.
    suggestions: VecDeque<(Anchor, String)>,
    timer: bool,
    /// Bumped whenever a flight ends.
    finished: watch::Sender<u64>,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            last_request: None,
            interval_ms: None,
            wanted: None,
            since: None,
            flight: None,
            suggestions: VecDeque::new(),
            timer: false,
            finished: watch::channel(0).0,
        }
    }

    /// The rest of a suggestion `anchor` is typing into.
    fn serve(&self, anchor: &Anchor) -> Option<String> {
        self.suggestions.iter().rev().find_map(|(at, text)| {
            let typed = anchor.typed_since(at)?;
            let rest = text.strip_prefix(typed)?;
            (!rest.trim().is_empty()).then(|| rest.to_owned())
        })
    }
}

const KEEP_SUGGESTIONS: usize = 8;

struct Inner {
    gateway: Gateway,
    prompter: Arc<dyn Prompter>,
    docs: Mutex<HashMap<String, Doc>>,
    counters: Counters,
    next_flight: AtomicU64,
    /// Moving average of how long a call takes to bring a suggestion, in milliseconds.
    call_ms: Mutex<Option<f64>>,
}

/// Whether a call in flight for `running` is likely to bring its suggestion within `budget`,
/// judging by how long calls have taken (`average_ms`; unknown before the first).
fn worth_waiting(average_ms: Option<f64>, running: Duration, budget: Duration) -> bool {
    average_ms.is_none_or(|ms| Duration::from_secs_f64(ms / 1e3) <= running + budget)
}

/// The completion engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn new(gateway: Gateway, prompter: Arc<dyn Prompter>) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                gateway,
                prompter,
                docs: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                next_flight: AtomicU64::new(1),
                call_ms: Mutex::new(None),
            }),
        }
    }

    /// The `[completion]` settings, as the gateway's configuration has them now.
    pub fn config(&self) -> CompletionConfig {
        self.inner.gateway.completion_config()
    }

    /// Forgets a closed document and cancels its call.
    pub fn close(&self, uri: &str) {
        if let Some(doc) = lock(&self.inner.docs).remove(uri)
            && let Some(flight) = doc.flight
        {
            flight.task.abort();
        }
    }

    pub fn stats(&self) -> CompletionStats {
        let c = &self.inner.counters;
        CompletionStats {
            requests: c.requests.load(Ordering::Relaxed),
            from_suggestion: c.from_suggestion.load(Ordering::Relaxed),
            from_in_flight: c.from_in_flight.load(Ordering::Relaxed),
            empty: c.empty.load(Ordering::Relaxed),
            calls_started: c.calls_started.load(Ordering::Relaxed),
            calls_cancelled: c.calls_cancelled.load(Ordering::Relaxed),
            calls_failed: c.calls_failed.load(Ordering::Relaxed),
        }
    }

    /// Answers within the budget: the rest of a suggestion, a call in flight that finishes in
    /// time, or nothing (and a call is scheduled).
    pub async fn complete(&self, ask: Ask) -> Outcome {
        let started = Instant::now();
        let config = self.config();
        let budget = Duration::from_millis(config.budget_ms);
        let c = &self.inner.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        let mut finished = {
            let mut docs = lock(&self.inner.docs);
            let doc = docs.entry(ask.uri.clone()).or_insert_with(Doc::new);
            if let Some(last) = doc.last_request {
                let gap = started.saturating_duration_since(last).as_secs_f64() * 1e3;
                if gap < 2000.0 {
                    doc.interval_ms = Some(doc.interval_ms.map_or(gap, |v| v + 0.3 * (gap - v)));
                }
            }
            doc.last_request = Some(started);
            if let Some(text) = doc.serve(&ask.anchor) {
                c.from_suggestion.fetch_add(1, Ordering::Relaxed);
                doc.wanted = None;
                return Outcome {
                    text: Some(text),
                    served: Served::Suggestion,
                };
            }
            // A call for a place the user has left is cancelled.
            let stale = doc
                .flight
                .as_ref()
                .is_some_and(|f| ask.anchor.typed_since(&f.anchor).is_none());
            if stale && let Some(flight) = doc.flight.take() {
                flight.task.abort();
                c.calls_cancelled.fetch_add(1, Ordering::Relaxed);
                doc.finished.send_modify(|g| *g += 1);
            }
            // Waiting is worth it only for a call made for exactly this text (a call for text
            // the user has since extended is served on the next keystroke, without a wait), and
            // only when calls have been quick enough to end within the budget.
            let average = *lock(&self.inner.call_ms);
            let waiting_on_flight = doc.flight.as_ref().is_some_and(|f| {
                ask.anchor.typed_since(&f.anchor) == Some("")
                    && worth_waiting(average, f.started.elapsed(), budget)
            });
            if doc.wanted.is_none() {
                // A new burst: the refresh interval counts from the last call if it was recent,
                // else from now.
                let refresh = Duration::from_millis(config.refresh_ms);
                doc.since = match doc.since {
                    Some(s) if started.saturating_duration_since(s) < refresh => Some(s),
                    _ => Some(started),
                };
            }
            doc.wanted = Some(ask.clone());
            if !doc.timer {
                doc.timer = true;
                let engine = self.clone();
                let uri = ask.uri.clone();
                tokio::spawn(async move { engine.schedule(uri).await });
            }
            waiting_on_flight.then(|| doc.finished.subscribe())
        };
        // A call in flight for text the user has only extended may finish within the budget.
        if let Some(rx) = finished.as_mut() {
            let remaining = budget.saturating_sub(started.elapsed());
            if tokio::time::timeout(remaining, rx.changed()).await.is_ok() {
                let docs = lock(&self.inner.docs);
                if let Some(text) = docs.get(&ask.uri).and_then(|d| d.serve(&ask.anchor)) {
                    c.from_in_flight.fetch_add(1, Ordering::Relaxed);
                    return Outcome {
                        text: Some(text),
                        served: Served::InFlight,
                    };
                }
            }
        }
        c.empty.fetch_add(1, Ordering::Relaxed);
        Outcome {
            text: None,
            served: Served::Nothing,
        }
    }

    /// Starts calls for a document's newest unserved request when the user pauses or a refresh
    /// interval passes; exits when nothing is wanted.
    async fn schedule(&self, uri: String) {
        loop {
            let config = self.config();
            let (wait, mut finished) = {
                let mut docs = lock(&self.inner.docs);
                let Some(doc) = docs.get_mut(&uri) else {
                    return;
                };
                let Some(wanted) = doc.wanted.clone() else {
                    doc.timer = false;
                    return;
                };
                if doc.serve(&wanted.anchor).is_some() {
                    // The last call already covers it: the next request is served from it.
                    doc.wanted = None;
                    doc.timer = false;
                    return;
                }
                if doc.flight.is_some() {
                    (None, Some(doc.finished.subscribe()))
                } else {
                    let now = Instant::now();
                    let debounce = Duration::from_millis(
                        doc.interval_ms
                            .map_or(config.debounce_max_ms as f64, |i| i * 1.5)
                            .clamp(config.debounce_min_ms as f64, config.debounce_max_ms as f64)
                            as u64,
                    );
                    let last = doc.last_request.unwrap_or(now);
                    let by_pause = last + debounce;
                    let by_refresh =
                        doc.since.unwrap_or(now) + Duration::from_millis(config.refresh_ms);
                    let fire = by_pause.min(by_refresh);
                    if fire <= now {
                        doc.wanted = None;
                        doc.since = Some(now);
                        self.start(doc, &uri, wanted, config.clone());
                        continue;
                    }
                    (Some(fire - now), None)
                }
            };
            match (wait, finished.as_mut()) {
                (Some(wait), _) => tokio::time::sleep(wait).await,
                (None, Some(rx)) => {
                    let _ = rx.changed().await;
                }
                (None, None) => {}
            }
        }
    }

    fn start(&self, doc: &mut Doc, uri: &str, ask: Ask, config: CompletionConfig) {
        let id = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
        self.inner
            .counters
            .calls_started
            .fetch_add(1, Ordering::Relaxed);
        let engine = self.clone();
        let uri = uri.to_owned();
        let anchor = ask.anchor.clone();
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let suggestion = engine.call(&uri, ask.clone(), &config).await;
            if suggestion.is_some() {
                let ms = began.elapsed().as_secs_f64() * 1e3;
                let mut average = lock(&engine.inner.call_ms);
                *average = Some(average.map_or(ms, |v| v + 0.3 * (ms - v)));
            }
            let mut docs = lock(&engine.inner.docs);
            let Some(doc) = docs.get_mut(&uri) else {
                return;
            };
            if doc.flight.as_ref().map(|f| f.id) != Some(id) {
                return;
            }
            doc.flight = None;
            match suggestion {
                Some(text) => {
                    doc.suggestions.push_back((ask.anchor, text));
                    while doc.suggestions.len() > KEEP_SUGGESTIONS {
                        doc.suggestions.pop_front();
                    }
                }
                None => {
                    engine
                        .inner
                        .counters
                        .calls_failed
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            doc.finished.send_modify(|g| *g += 1);
        });
        doc.flight = Some(Flight {
            anchor,
            task,
            id,
            started: Instant::now(),
        });
    }

    /// Builds the prompt (fitted to the model's context window) and asks the model; the fitted
    /// suggestion, if any.
    async fn call(&self, uri: &str, ask: Ask, config: &CompletionConfig) -> Option<String> {
        let prompter = self.inner.prompter.clone();
        let gateway = self.inner.gateway.clone();
        let room =
            gateway.prompt_room("completion", None, Priority::Interactive, config.max_tokens);
        let narrowed = room.map_or_else(|| config.clone(), |room| window::narrow(config, room));
        let uri_owned = uri.to_owned();
        let built = tokio::task::spawn_blocking(move || {
            let mut built =
                prompter.build(&uri_owned, ask.version, &ask.text, ask.cursor, &narrowed)?;
            if let Some(room) = room {
                window::trim(&mut built, room, |text| gateway.tokens(text));
            }
            Some(built)
        })
        .await
        .ok()
        .flatten()?;
        let mut request = CallRequest::new(
            "completion",
            Priority::Interactive,
            Prompt::fim(&built.prefix, &built.suffix),
        );
        request.params = Params {
            max_tokens: config.max_tokens,
            temperature: 0.1,
            stop: if built.shape.multiline {
                vec!["\n\n\n".into()]
            } else {
                vec!["\n".into()]
            },
        };
        request.template_version = "fim-1".into();
        request.files = built.files;
        request.chunks = built.chunks;
        match self.inner.gateway.complete(request).await {
            Ok(answer) => fit(&answer.text, &built.shape),
            Err(e) => {
                tracing::debug!("completion call failed: {e}");
                None
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_in_flight_is_waited_for_only_when_calls_end_within_the_budget() {
        let ms = Duration::from_millis;
        // Before the first call there is nothing to judge by.
        assert!(worth_waiting(None, ms(0), ms(50)));
        // Calls take 30 ms: worth waiting; 300 ms: not, unless this one has nearly finished.
        assert!(worth_waiting(Some(30.0), ms(0), ms(50)));
        assert!(!worth_waiting(Some(300.0), ms(10), ms(50)));
        assert!(worth_waiting(Some(300.0), ms(260), ms(50)));
        // No budget, no wait for a call that is not already due.
        assert!(!worth_waiting(Some(30.0), ms(0), ms(0)));
    }

    #[test]
    fn anchors_extend_only_forward_on_the_same_line() {
        let at_end = |s: &str| {
            let cursor = s.find('|').unwrap();
            Anchor::at(&Rope::from_str(&s.replace('|', "")), cursor)
        };
        let a = at_end("fn a() {}\nfn b() {\n    let x = f|\n}\n");
        let b = at_end("fn a() {}\nfn b() {\n    let x = fo|\n}\n");
        assert_eq!(b.before, "    let x = fo");
        assert_eq!(b.after, "");
        assert_eq!(b.above, "fn a() {}\nfn b() {\n");
        assert_eq!(b.typed_since(&a), Some("o"));
        assert_eq!(a.typed_since(&b), None, "backspace");
        let mid = at_end("fn a() {}\nfn b() {\n    let x = f|o\n}\n");
        assert_eq!(mid.after, "o");
        assert_eq!(
            b.typed_since(&mid),
            None,
            "the text after the cursor differs"
        );
        let elsewhere = at_end("fn a() {}\nfn b() {\n  |  let x = fo\n}\n");
        assert_eq!(b.typed_since(&elsewhere), None);
        let text = Rope::from_str("fn a() {}\n");
        let end = Anchor::at(&text, text.len_bytes() + 10);
        assert_eq!(end.before, "");
    }
}
