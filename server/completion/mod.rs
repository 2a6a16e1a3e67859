//! AI completion that never holds anything else up. A request is answered at once with what is
//! ready — the rest of a suggestion the user is typing into — or, held, when the suggestion for
//! its text arrives: a held request is answered empty at once when its document changes or a
//! newer one for it arrives, and at a bound; when nobody waits for its call any more, the call is
//! cancelled. Clients that wait for every server before showing anything get [`Wait::Budget`]:
//! at most a short wait, then nothing, and the suggestion serves their next request.
//!
//! Fewer calls: one call in flight per document; a new one starts when the user pauses (a
//! debounce that adapts to typing speed), at once for the first keystroke after a pause, or,
//! during continuous typing, at most once per refresh interval. When the user pauses while a call
//! made for earlier text still runs, a second call starts for the text at the pause, and
//! whichever call serves that text first cancels the other. A call whose cursor the user has
//! left is cancelled, which drops its HTTP request. The next suggestion is fetched before it is
//! asked for when the user accepts one, or pauses in an empty body. The answer is fitted to the
//! syntax at the cursor (`shape`) before anyone sees it.
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
use crate::resources::lock;
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
    /// Where the request came in the order of the client's messages, when known: requests are
    /// answered on tasks that may run in any order, and one that comes after a newer request
    /// or edit for its document has been seen is superseded already.
    pub order: Option<u64>,
}

/// How long a request may wait for its suggestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// At most the budget, and only for a call made for exactly its text; otherwise answered
    /// at once, and the suggestion serves a later request. For clients that wait for every
    /// server before they show anything.
    Budget,
    /// Until the suggestion for its text is ready; answered at once, empty, when the document
    /// changes or a newer request for it arrives, and empty after the bound.
    Hold(Duration),
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Served {
    /// The rest of a suggestion the user has been typing into.
    Suggestion,
    /// A call in flight finished within the budget.
    InFlight,
    /// A held request got the suggestion for its text.
    Held,
    /// Nothing ready; a call is scheduled or running.
    Nothing,
    /// A newer request for the same document took over.
    Superseded,
    /// Held as long as allowed without a suggestion.
    TimedOut,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The text to insert at the cursor.
    pub text: Option<String>,
    pub served: Served,
    /// The suggestion came from a call started before any request asked for it.
    pub prefetched: bool,
}

impl Outcome {
    fn empty(served: Served) -> Outcome {
        Outcome {
            text: None,
            served,
            prefetched: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct CompletionStats {
    pub requests: u64,
    pub from_suggestion: u64,
    pub from_in_flight: u64,
    /// Held requests answered with the suggestion for their text.
    pub from_held: u64,
    pub empty: u64,
    /// Held requests answered empty because a newer one arrived.
    pub superseded: u64,
    /// Held requests answered empty at the bound.
    pub timed_out: u64,
    pub calls_started: u64,
    pub calls_cancelled: u64,
    pub calls_failed: u64,
    /// Calls started before a request asked (after an accepted suggestion, or a pause in an
    /// empty body).
    pub prefetches: u64,
    /// Answers whose suggestion such a call brought.
    pub from_prefetch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    from_suggestion: AtomicU64,
    from_in_flight: AtomicU64,
    from_held: AtomicU64,
    empty: AtomicU64,
    superseded: AtomicU64,
    timed_out: AtomicU64,
    calls_started: AtomicU64,
    calls_cancelled: AtomicU64,
    calls_failed: AtomicU64,
    prefetches: AtomicU64,
    from_prefetch: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an answer.
    fn answered(&self, outcome: &Outcome) {
        Counters::bump(match outcome.served {
            Served::Suggestion => &self.from_suggestion,
            Served::InFlight => &self.from_in_flight,
            Served::Held => &self.from_held,
            Served::Nothing => &self.empty,
            Served::Superseded => &self.superseded,
            Served::TimedOut => &self.timed_out,
        });
        if outcome.prefetched {
            Counters::bump(&self.from_prefetch);
        }
    }
}

struct Flight {
    anchor: Anchor,
    task: tokio::task::JoinHandle<()>,
    id: u64,
    started: Instant,
}

/// How fast the user types: the recent gaps between requests. The pause that starts a call is
/// half as long again as the usual gap. The usual gap is the median of the last few, so one pause
/// between bursts of typing (the user read a suggestion, or thought) does not lengthen the next
/// burst's debounce, while a user who types more slowly for a few keystrokes gets a longer one.
#[derive(Default)]
pub struct Rhythm {
    /// The last gaps, oldest first.
    gaps: VecDeque<Duration>,
}

impl Rhythm {
    /// Gaps kept: a median of nine outvotes up to four pauses among them.
    const KEPT: usize = 9;
    /// Longer than this is no longer typing: the user stopped.
    const STOPPED: Duration = Duration::from_secs(2);

    pub fn gap(&mut self, gap: Duration) {
        if gap >= Self::STOPPED {
            return;
        }
        if self.gaps.len() == Self::KEPT {
            self.gaps.pop_front();
        }
        self.gaps.push_back(gap);
    }

    /// The usual gap; none before the second request.
    fn usual(&self) -> Option<Duration> {
        let mut sorted: Vec<Duration> = self.gaps.iter().copied().collect();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).copied()
    }

    /// How long a gap must last to be a pause: 1.5 × the usual gap, within the configured
    /// bounds (the upper bound until the user's pace is known).
    pub fn debounce(&self, config: &CompletionConfig) -> Duration {
        let min = Duration::from_millis(config.debounce_min_ms);
        let max = Duration::from_millis(config.debounce_max_ms).max(min);
        self.usual()
            .map_or(max, |usual| usual.mul_f64(1.5))
            .clamp(min, max)
    }
}

/// A fitted suggestion and the anchor it was made for.
struct Suggestion {
    anchor: Anchor,
    text: String,
    prefetched: bool,
}

struct Doc {
    last_request: Option<Instant>,
    /// The time between requests: how fast the user types.
    rhythm: Rhythm,
    /// The newest request nothing could serve (or a prefetch nobody asked for yet).
    wanted: Option<Ask>,
    /// `wanted` is a prefetch.
    wanted_prefetch: bool,
    /// Start the call for `wanted` without waiting for a pause: the user had paused before
    /// this burst, or accepted a suggestion.
    leading: bool,
    /// When the current burst of wanting began, or the last call started.
    since: Option<Instant>,
    /// Calls in flight, oldest first: at most one, and a second started at a pause while the
    /// first, made for text the user has since typed past, still runs.
    flights: Vec<Flight>,
    /// Fitted suggestions, newest last.
    suggestions: VecDeque<Suggestion>,
    timer: bool,
    /// Bumped whenever a flight ends.
    finished: watch::Sender<u64>,
    /// The newest request's or edit's place in the order of the client's messages (one past the
    /// last when that is not known); held requests watch it to learn they are old.
    newest: watch::Sender<u64>,
    /// The document version and cursor of the last edit (its end).
    last_edit: Option<(i32, usize)>,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            last_request: None,
            rhythm: Rhythm::default(),
            wanted: None,
            wanted_prefetch: false,
            leading: false,
            since: None,
            flights: Vec::new(),
            suggestions: VecDeque::new(),
            timer: false,
            finished: watch::channel(0).0,
            newest: watch::channel(0).0,
            last_edit: None,
        }
    }

    /// The rest of a suggestion `anchor` is typing into, and whether a prefetch brought it.
    fn serve(&self, anchor: &Anchor) -> Option<(String, bool)> {
        self.suggestions.iter().rev().find_map(|s| {
            let typed = anchor.typed_since(&s.anchor)?;
            let rest = s.text.strip_prefix(typed)?;
            (!rest.trim().is_empty()).then(|| (rest.to_owned(), s.prefetched))
        })
    }

    /// Whether a call for exactly this anchor left nothing to suggest.
    fn answered_empty(&self, anchor: &Anchor) -> bool {
        self.suggestions
            .iter()
            .any(|s| s.text.is_empty() && s.anchor == *anchor)
    }

    /// Drops the calls in flight that `keep` rejects (their HTTP requests with them).
    fn cancel_flights(&mut self, counters: &Counters, keep: impl Fn(&Flight) -> bool) {
        let before = self.flights.len();
        self.flights.retain(|flight| {
            let kept = keep(flight);
            if !kept {
                flight.task.abort();
                Counters::bump(&counters.calls_cancelled);
            }
            kept
        });
        if self.flights.len() != before {
            self.finished.send_modify(|g| *g += 1);
        }
    }

    /// Cancels the calls for places the user has left (`anchor` does not extend theirs).
    fn cancel_left(&mut self, anchor: &Anchor, counters: &Counters) {
        self.cancel_flights(counters, |f| anchor.typed_since(&f.anchor).is_some());
    }
}

const KEEP_SUGGESTIONS: usize = 8;

/// A call this close to its usual end is waited for at a pause rather than joined by a second.
const ABOUT_TO_END: Duration = Duration::from_millis(15);

/// How long a call nobody waits for any more is kept, in case the request that replaces the
/// one cancelled (VS Code cancels first, then asks again after its own 50 ms debounce) wants it.
const ORPHAN_GRACE: Duration = Duration::from_millis(150);

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

/// Whether the text before `cursor` ends with a whole suggestion, from the start of its line:
/// the user accepted it (or typed all of it).
fn completes(text: &Rope, cursor: usize, suggestion: &Suggestion) -> bool {
    let whole = suggestion.anchor.before.len() + suggestion.text.len();
    let Some(start) = cursor.checked_sub(whole) else {
        return false;
    };
    let Some(slice) = text.get_byte_slice(start..cursor) else {
        return false;
    };
    let at_line_start = start == 0 || text.get_byte(start - 1) == Some(b'\n');
    at_line_start
        && slice.len_bytes() == whole
        && slice.chunks().flat_map(str::bytes).eq(suggestion
            .anchor
            .before
            .bytes()
            .chain(suggestion.text.bytes()))
}

/// Where the cursor is after an edit that ends at `cursor`, if that is on a blank line: there,
/// or at the end of the blank line above when the edit ended before the closing line's text (Enter
/// between two braces inserts `"\n        \n    "`, leaving the cursor on the line in between).
fn blank_line_end(text: &Rope, cursor: usize) -> Option<usize> {
    let blank = |line: usize| text.line(line).chars().all(char::is_whitespace);
    let line = text.byte_to_line(cursor);
    if blank(line) {
        return Some(cursor);
    }
    let line_start = text.line_to_byte(line);
    let indent_only = text
        .byte_slice(line_start..cursor)
        .chars()
        .all(|c| c == ' ' || c == '\t');
    (indent_only && line > 0 && blank(line - 1)).then(|| {
        let above = text.line(line - 1).to_string();
        text.line_to_byte(line - 1) + above.trim_end_matches(['\n', '\r']).len()
    })
}

/// Whether `cursor` is on a blank line inside an empty block: the last line above with text
/// ends with `{`, the next one below starts with `}`.
fn in_empty_body(text: &Rope, cursor: usize) -> bool {
    let line = text.byte_to_line(cursor.min(text.len_bytes()));
    if !text.line(line).chars().all(char::is_whitespace) {
        return false;
    }
    let opened = (0..line)
        .rev()
        .map(|l| text.line(l).to_string())
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_end().ends_with('{'));
    let closed = (line + 1..text.len_lines())
        .map(|l| text.line(l).to_string())
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim_start().starts_with('}'));
    opened && closed
}

/// A held request that nobody wants answered any more (cancelled, or at its bound): unless a
/// newer request arrives within the grace, its call is cancelled.
struct Abandon {
    engine: Engine,
    uri: String,
    generation: u64,
    armed: bool,
}

impl Drop for Abandon {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (engine, uri, generation) = (self.engine.clone(), self.uri.clone(), self.generation);
        let orphaned = move || {
            let mut docs = lock(&engine.inner.docs);
            if let Some(doc) = docs.get_mut(&uri)
                && *doc.newest.borrow() == generation
            {
                doc.wanted = None;
                doc.leading = false;
                doc.cancel_flights(&engine.inner.counters, |_| false);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(ORPHAN_GRACE).await;
                    orphaned();
                });
            }
            Err(_) => orphaned(),
        }
    }
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
        if let Some(doc) = lock(&self.inner.docs).remove(uri) {
            for flight in doc.flights {
                flight.task.abort();
            }
        }
    }

    pub fn stats(&self) -> CompletionStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CompletionStats {
            requests: get(&c.requests),
            from_suggestion: get(&c.from_suggestion),
            from_in_flight: get(&c.from_in_flight),
            from_held: get(&c.from_held),
            empty: get(&c.empty),
            superseded: get(&c.superseded),
            timed_out: get(&c.timed_out),
            calls_started: get(&c.calls_started),
            calls_cancelled: get(&c.calls_cancelled),
            calls_failed: get(&c.calls_failed),
            prefetches: get(&c.prefetches),
            from_prefetch: get(&c.from_prefetch),
        }
    }

    /// The document changed, and the last change ended at byte `cursor` of `text` (version
    /// `version`) if that is known. Held requests for it are answered. When the edit completes a
    /// suggestion (the user accepted it), the call for the new position starts at once; when it
    /// leaves the cursor in an empty body, a call starts if the user pauses there. Cheap: runs
    /// on the reading task.
    /// A change to the document arrived: the text a held request was made for is gone, and it is
    /// answered now (its call stays, for the request the editor sends next, if that one's text
    /// extends it). Called before the change is applied, so that the answer does not wait for
    /// that, nor for the parse it queues.
    pub fn superseded(&self, uri: &str, order: u64) {
        let mut docs = lock(&self.inner.docs);
        let doc = docs.entry(uri.to_owned()).or_insert_with(Doc::new);
        doc.newest.send_modify(|g| *g = (*g + 1).max(order));
    }

    /// The change [`Engine::superseded`] announced, applied: what it means for prefetching.
    pub fn edited(&self, uri: &str, version: i32, text: &Rope, cursor: Option<usize>) {
        let config = self.config();
        let mut docs = lock(&self.inner.docs);
        let doc = docs.entry(uri.to_owned()).or_insert_with(Doc::new);
        let Some(cursor) = cursor else {
            return;
        };
        doc.last_edit = Some((version, cursor));
        if !config.prefetch || cursor > text.len_bytes() {
            return;
        }
        let accepted = doc.suggestions.iter().any(|s| completes(text, cursor, s));
        let cursor = if accepted {
            cursor
        } else {
            match blank_line_end(text, cursor) {
                Some(at) if in_empty_body(text, at) => at,
                _ => return,
            }
        };
        let now = Instant::now();
        let ask = Ask {
            uri: uri.to_owned(),
            version,
            text: text.clone(),
            cursor,
            anchor: Anchor::at(text, cursor),
            order: None,
        };
        if doc.serve(&ask.anchor).is_some() || doc.answered_empty(&ask.anchor) {
            return;
        }
        doc.cancel_left(&ask.anchor, &self.inner.counters);
        doc.wanted = Some(ask);
        doc.wanted_prefetch = true;
        // Accepted: the next suggestion is wanted now. An empty body: when the user pauses.
        doc.leading = accepted;
        doc.last_request = Some(now);
        doc.since = Some(now);
        if !doc.timer {
            doc.timer = true;
            let engine = self.clone();
            let uri = uri.to_owned();
            tokio::spawn(async move { engine.schedule(uri).await });
        }
    }

    /// Answers a request: at once with the rest of a suggestion being typed into, else as
    /// `wait` says, while a call for its text is scheduled.
    pub async fn complete(&self, ask: Ask, wait: Wait) -> Outcome {
        let outcome = self.answer(ask, wait).await;
        self.inner.counters.answered(&outcome);
        outcome
    }

    async fn answer(&self, ask: Ask, wait: Wait) -> Outcome {
        let started = Instant::now();
        let config = self.config();
        let budget = Duration::from_millis(config.budget_ms);
        let c = &self.inner.counters;
        Counters::bump(&c.requests);
        let (generation, mut finished, mut newest, waiting_on_flight) = {
            let mut docs = lock(&self.inner.docs);
            let doc = docs.entry(ask.uri.clone()).or_insert_with(Doc::new);
            // Tasks run in any order: a request the client sent before a newer request or edit
            // already seen here is superseded (its text is gone, or the newer one asks instead).
            let seen = *doc.newest.borrow();
            if ask.order.is_some_and(|order| order < seen) {
                return Outcome::empty(Served::Superseded);
            }
            let paused = doc.last_request.is_none_or(|last| {
                started.saturating_duration_since(last)
                    >= Duration::from_millis(config.debounce_max_ms)
            });
            if let Some(last) = doc.last_request {
                doc.rhythm.gap(started.saturating_duration_since(last));
            }
            doc.last_request = Some(started);
            let generation = ask.order.unwrap_or(seen + 1).max(seen + 1);
            doc.newest.send_replace(generation);
            if let Some((text, prefetched)) = doc.serve(&ask.anchor) {
                doc.wanted = None;
                return Outcome {
                    text: Some(text),
                    served: Served::Suggestion,
                    prefetched,
                };
            }
            if doc.answered_empty(&ask.anchor) {
                // The model had nothing for this very text: asking again would say the same.
                doc.wanted = None;
                return Outcome::empty(Served::Nothing);
            }
            // A call for a place the user has left is cancelled.
            doc.cancel_left(&ask.anchor, c);
            // Waiting within the budget is worth it only for a call made for exactly this text
            // (a call for text the user has since extended is served on the next keystroke,
            // without a wait), and only when calls have been quick enough to end in time.
            let average = *lock(&self.inner.call_ms);
            let waiting_on_flight = doc.flights.iter().any(|f| {
                ask.anchor.typed_since(&f.anchor) == Some("")
                    && worth_waiting(average, f.started.elapsed(), budget)
            });
            if doc.wanted.is_none() || doc.wanted_prefetch {
                // A new burst: the refresh interval counts from the last call if it was recent,
                // else from now. At the place the user just edited, the call starts at once
                // after a pause, or when no call has started for a refresh interval and none
                // is running (the user typed past a suggestion, or onto a new line).
                let refresh = Duration::from_millis(config.refresh_ms);
                let recent = doc
                    .since
                    .filter(|s| started.saturating_duration_since(*s) < refresh);
                doc.since = Some(recent.unwrap_or(started));
                let at_edit = doc.last_edit == Some((ask.version, ask.cursor));
                let due = recent.is_none() && doc.flights.is_empty();
                doc.leading = doc.leading || (at_edit && (paused || due));
            }
            doc.wanted = Some(ask.clone());
            doc.wanted_prefetch = false;
            if !doc.timer {
                doc.timer = true;
                let engine = self.clone();
                let uri = ask.uri.clone();
                tokio::spawn(async move { engine.schedule(uri).await });
            }
            (
                generation,
                doc.finished.subscribe(),
                doc.newest.subscribe(),
                waiting_on_flight,
            )
        };
        match wait {
            Wait::Budget => {
                // A call in flight for exactly this text may finish within the budget.
                if waiting_on_flight {
                    let remaining = budget.saturating_sub(started.elapsed());
                    if tokio::time::timeout(remaining, finished.changed())
                        .await
                        .is_ok()
                    {
                        let docs = lock(&self.inner.docs);
                        if let Some((text, prefetched)) =
                            docs.get(&ask.uri).and_then(|d| d.serve(&ask.anchor))
                        {
                            return Outcome {
                                text: Some(text),
                                served: Served::InFlight,
                                prefetched,
                            };
                        }
                    }
                }
                Outcome::empty(Served::Nothing)
            }
            Wait::Hold(bound) => {
                let mut abandon = Abandon {
                    engine: self.clone(),
                    uri: ask.uri.clone(),
                    generation,
                    armed: true,
                };
                let deadline = tokio::time::Instant::from_std(started) + bound;
                loop {
                    tokio::select! {
                        changed = finished.changed() => {
                            let docs = lock(&self.inner.docs);
                            let Some(doc) = docs.get(&ask.uri).filter(|_| changed.is_ok()) else {
                                abandon.armed = false;
                                return Outcome::empty(Served::Nothing);
                            };
                            if let Some((text, prefetched)) = doc.serve(&ask.anchor) {
                                abandon.armed = false;
                                return Outcome { text: Some(text), served: Served::Held, prefetched };
                            }
                            if doc.flights.is_empty() && doc.wanted.is_none() {
                                // The call for this text ended without a suggestion.
                                abandon.armed = false;
                                return Outcome::empty(Served::Nothing);
                            }
                        }
                        _ = newest.changed() => {
                            abandon.armed = false;
                            return Outcome::empty(Served::Superseded);
                        }
                        _ = tokio::time::sleep_until(deadline) => {
                            return Outcome::empty(Served::TimedOut);
                        }
                    }
                }
            }
        }
    }

    /// Starts calls for a document's newest unserved request when the user pauses or a refresh
    /// interval passes (at once after a pause or an accepted suggestion); exits when nothing is
    /// wanted.
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
                if doc.serve(&wanted.anchor).is_some() || doc.answered_empty(&wanted.anchor) {
                    // The last call already covers it: the next request is served from it.
                    doc.wanted = None;
                    doc.timer = false;
                    return;
                }
                let now = Instant::now();
                let debounce = doc.rhythm.debounce(&config);
                let by_pause = doc.last_request.unwrap_or(now) + debounce;
                let by_refresh =
                    doc.since.unwrap_or(now) + Duration::from_millis(config.refresh_ms);
                let fire = if doc.leading {
                    now
                } else {
                    by_pause.min(by_refresh)
                };
                // When a second call waits only for the running one to end as expected.
                let mut recheck = None;
                let start = match doc.flights.as_slice() {
                    [] => fire <= now,
                    // A call made for earlier text runs. At the pause, unless it is about to
                    // end, the call for the text at the pause starts beside it: whichever
                    // serves that text first cancels the other.
                    [running] => {
                        // About to end: within ABOUT_TO_END of the usual time a call takes
                        // (unknown before the first call has ended: not waited for; one that
                        // overruns is not waited for either).
                        let elapsed = running.started.elapsed();
                        let about_to_end = lock(&self.inner.call_ms).is_some_and(|ms| {
                            let usual = Duration::from_secs_f64(ms / 1e3);
                            elapsed + ABOUT_TO_END >= usual && elapsed <= usual + ABOUT_TO_END
                        });
                        let second = running.anchor != wanted.anchor && by_pause <= now;
                        if second && about_to_end {
                            recheck = Some(ABOUT_TO_END);
                        }
                        second && !about_to_end
                    }
                    _ => false,
                };
                if start {
                    let prefetch = doc.wanted_prefetch;
                    doc.wanted = None;
                    doc.wanted_prefetch = false;
                    doc.leading = false;
                    doc.since = Some(now);
                    self.start(doc, &uri, wanted, prefetch, config.clone());
                    continue;
                }
                if doc.flights.is_empty() {
                    (Some(fire - now), None)
                } else {
                    // Until a call ends, the pause, or a second call may start.
                    let wake = if by_pause > now {
                        Some(by_pause - now)
                    } else {
                        recheck
                    };
                    (wake, Some(doc.finished.subscribe()))
                }
            };
            match (wait, finished.as_mut()) {
                (Some(wait), Some(rx)) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = rx.changed() => {}
                    }
                }
                (Some(wait), None) => tokio::time::sleep(wait).await,
                (None, Some(rx)) => {
                    let _ = rx.changed().await;
                }
                (None, None) => {}
            }
        }
    }

    fn start(&self, doc: &mut Doc, uri: &str, ask: Ask, prefetch: bool, config: CompletionConfig) {
        let id = self.inner.next_flight.fetch_add(1, Ordering::Relaxed);
        Counters::bump(&self.inner.counters.calls_started);
        if prefetch {
            Counters::bump(&self.inner.counters.prefetches);
        }
        let engine = self.clone();
        let uri = uri.to_owned();
        let anchor = ask.anchor.clone();
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let suggestion = engine.call(&uri, ask.clone(), &config).await;
            if matches!(suggestion, Ok(Some(_))) {
                let ms = began.elapsed().as_secs_f64() * 1e3;
                let mut average = lock(&engine.inner.call_ms);
                *average = Some(average.map_or(ms, |v| v + 0.3 * (ms - v)));
            }
            let mut docs = lock(&engine.inner.docs);
            let Some(doc) = docs.get_mut(&uri) else {
                return;
            };
            let Some(at) = doc.flights.iter().position(|f| f.id == id) else {
                return;
            };
            doc.flights.remove(at);
            match suggestion {
                // Nothing to suggest is remembered too (an empty text), so asking again at the
                // same place makes no new call.
                Ok(text) => {
                    doc.suggestions.push_back(Suggestion {
                        anchor: ask.anchor,
                        text: text.unwrap_or_default(),
                        prefetched: prefetch,
                    });
                    while doc.suggestions.len() > KEEP_SUGGESTIONS {
                        doc.suggestions.pop_front();
                    }
                    // The other call is not needed any more: it was made for earlier text (this
                    // answer is for text the user typed later), or this answer serves its text.
                    let redundant: Vec<u64> = doc
                        .flights
                        .iter()
                        .filter(|f| f.id < id || doc.serve(&f.anchor).is_some())
                        .map(|f| f.id)
                        .collect();
                    doc.cancel_flights(&engine.inner.counters, |f| !redundant.contains(&f.id));
                }
                Err(()) => Counters::bump(&engine.inner.counters.calls_failed),
            }
            doc.finished.send_modify(|g| *g += 1);
        });
        doc.flights.push(Flight {
            anchor,
            task,
            id,
            started: Instant::now(),
        });
    }

    /// Builds the prompt (fitted to the model's context window) and asks the model; the fitted
    /// suggestion, if any.
    /// Builds the prompt and asks the model: the fitted suggestion, `Ok(None)` when the model
    /// (or the rules on what may be sent) leave nothing to suggest here, `Err` when the call
    /// failed.
    async fn call(
        &self,
        uri: &str,
        ask: Ask,
        config: &CompletionConfig,
    ) -> Result<Option<String>, ()> {
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
        .map_err(|_| ())?;
        let Some(built) = built else {
            return Ok(None);
        };
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
            Ok(answer) => Ok(fit(&answer.text, &built.shape)),
            Err(e) => {
                tracing::debug!("completion call failed: {e}");
                Err(())
            }
        }
    }
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
    fn a_pause_between_bursts_does_not_lengthen_the_next_debounce() {
        let ms = Duration::from_millis;
        let config = CompletionConfig::default();
        let mut rhythm = Rhythm::default();
        assert_eq!(
            rhythm.debounce(&config),
            ms(config.debounce_max_ms),
            "pace unknown"
        );
        // Typing at 20 keys a second, with the odd late key.
        for gap in [50, 52, 49, 61, 50, 51, 48, 50] {
            rhythm.gap(ms(gap));
        }
        assert_eq!(rhythm.debounce(&config), ms(75));
        // A pause of a second (a suggestion read), then the next burst at the same pace.
        rhythm.gap(ms(1100));
        rhythm.gap(ms(50));
        assert_eq!(rhythm.debounce(&config), ms(75));
        // Nor do three pauses among the last nine gaps: the usual gap is still a typing one.
        rhythm.gap(ms(400));
        rhythm.gap(ms(300));
        assert_eq!(rhythm.debounce(&config), ms(51).mul_f64(1.5));
        // A user who slows down to 120 ms a key for a while gets a longer debounce, and one who
        // stops for longer than two seconds is not typing.
        for _ in 0..5 {
            rhythm.gap(ms(120));
        }
        assert_eq!(rhythm.debounce(&config), ms(180));
        rhythm.gap(ms(3000));
        assert_eq!(rhythm.debounce(&config), ms(180));
        // Within the bounds.
        for _ in 0..9 {
            rhythm.gap(ms(5));
        }
        assert_eq!(rhythm.debounce(&config), ms(config.debounce_min_ms));
    }

    #[test]
    fn the_cursor_after_enter_between_braces_is_in_an_empty_body() {
        // `|` marks where the edit ended.
        let at = |s: &str| {
            let cursor = s.find('|').unwrap();
            let text = Rope::from_str(&s.replace('|', ""));
            blank_line_end(&text, cursor).map(|c| (in_empty_body(&text, c), c))
        };
        // VS Code and Neovim: "\n        \n    " between the braces, ending before `}`.
        let vs = "fn f() {\n    if ready {\n        \n    |}\n}\n";
        let blank_end = vs.find("        \n").unwrap() + 8;
        assert_eq!(at(vs), Some((true, blank_end)));
        // Ending at the start of the closing line, or on the blank line itself.
        assert_eq!(at("fn f() {\n    \n|}\n"), Some((true, 13)));
        assert_eq!(at("fn f() {\n    |\n}\n"), Some((true, 13)));
        // Not a blank line, or not an empty block.
        assert_eq!(at("fn f() {\n    let x|\n}\n"), None);
        assert_eq!(
            at("fn f() {\n    x();\n    |\n}\n").map(|(e, _)| e),
            Some(false)
        );
        assert_eq!(
            at("fn f() {\n    |\n    x();\n}\n").map(|(e, _)| e),
            Some(false)
        );
    }

    #[test]
    fn a_suggestion_is_complete_when_the_line_ends_with_it() {
        let suggestion = Suggestion {
            anchor: Anchor::at(&Rope::from_str("    let n = \n"), 12),
            text: "helper(41);".into(),
            prefetched: false,
        };
        let check = |s: &str| {
            let cursor = s.find('|').unwrap();
            completes(&Rope::from_str(&s.replace('|', "")), cursor, &suggestion)
        };
        assert!(check("fn f() {\n    let n = helper(41);|\n}\n"));
        assert!(!check("fn f() {\n    let n = helper(4|1);\n}\n"));
        assert!(!check("fn f() {\n    let m = helper(41);|\n}\n"));
        assert!(!check("fn f() {\n  x let n = helper(41);|\n}\n"));
        assert!(!check("helper(41);|"));
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
