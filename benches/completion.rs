//! Completion as a user meets it: type, then pause. The release binary over stdio, a generated
//! 2.4 MB Rust file open, the fake model answering after 0, 300 and 1,000 ms to its first token.
//! Each session types a few characters at 20 per second on a fresh line of a function body — an
//! `inlineCompletion` request after every keystroke, sent without waiting for the one before (an
//! editor with no wait of its own: the most requests, the most superseded) — then pauses: no
//! keystroke, no request, until the last request is answered. Three kinds of session, in turn:
//!
//! - **along**: the user types what the model suggests for the line;
//! - **against**: the user types something else, so the call at the pause is a new one;
//! - **empty body**: the user opens a block (`if ready {}`, then Enter between the braces), thinks
//!   for a moment, then types along (the suggestion can come from a call started at that pause,
//!   before any request: a prefetch).
//!
//! Prints, per model latency: **pause → suggestion shown** (the request sent after the last
//! keystroke, to its non-empty answer) p50 / p99 / max and Strata's share of it (that minus the
//! model's time, from the call's arrival to its last byte, for sessions whose call starts at the
//! pause), also beyond the debounce that tells the pause from typing; how soon a held request is
//! answered once the next keystroke's edit is sent; requests left unanswered; model calls per keystroke; the
//! share of shown suggestions a prefetch brought; and `codeAction` latency while typing (every
//! 10th keystroke), beside the same with completion off. Then the pause table again for a 64 KB
//! file at 300 ms, where the prompt also resolves what the cursor uses (a file over a megabyte is
//! not parsed again for that); and for editors that ask only once the user has stopped typing
//! for 50 ms (VS Code's own debounce) or 200 ms (Neovim 0.12's), as those editors do: one request
//! at the pause, which finds no recent call and starts one at once. Each run begins with one
//! pause not counted with the others, the first after the server started (its call is the
//! server's first), reported apart. Timings are printed, never asserted.
//! Run: `cargo bench --bench completion`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strata::completion::{CompletionConfig, Rhythm};
use support::Lsp;
use support::fake_model::{FakeModel, Reply};

/// What the model suggests for a line: the rest of this one.
const LINE: &str = "let total = values.iter().map(|v| v.len()).sum::<usize>();";
/// What the user types in an "against" session (the model does not suggest it).
const AGAINST: &str = "for entry in entries.iter_mut() {";
const URI: &str = "file:///bench/src/big.rs";
const SESSIONS: usize = 36;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Along,
    Against,
    EmptyBody,
}

struct Editor {
    lsp: Lsp,
    text: String,
    version: i32,
    /// Every completion request: (id, sent).
    sent: Vec<(i64, Instant)>,
    /// When each change was sent.
    edits: Vec<Instant>,
    /// The start of the line of the last position, and its number (see [`Editor::position`]).
    line: Option<(usize, usize)>,
    asks: Asks,
    /// Requests superseded by an edit: (old id, when the edit was sent).
    superseded: Vec<(i64, Instant)>,
    keystrokes: usize,
    actions: Vec<Duration>,
}

impl Editor {
    /// (line, UTF-16 column) of byte `at` (ASCII around the edits), as an editor knows it: from
    /// the start of the line of the last position when `at` is on that line (the user types on
    /// one line at a time), else by counting the lines before it. Counting the lines of 2.5 MB at
    /// every keystroke would be a millisecond of the bench's own work on the cores the server
    /// uses, right when it answers.
    fn position(&mut self, at: usize) -> Value {
        let (start, line) = match self.line {
            Some((start, line)) if start <= at && !self.text[start..at].contains('\n') => {
                (start, line)
            }
            _ => {
                let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
                (start, self.text[..start].matches('\n').count())
            }
        };
        self.line = Some((start, line));
        json!({"line": line, "character": self.text[start..at].encode_utf16().count()})
    }

    fn insert(&mut self, at: usize, s: &str) {
        let at_pos = self.position(at);
        let version = self.version + 1;
        let params = json!({
            "textDocument": {"uri": URI, "version": version},
            "contentChanges": [{"range": {"start": at_pos, "end": at_pos}, "text": s}]
        });
        // The clock starts as the edit is sent: the bench's own work on its copy of the text
        // (finding the edit's line) is not the server's.
        let now = Instant::now();
        // A request still open now is superseded by this edit: its text is gone.
        if let Some(&(previous, _)) = self.sent.last() {
            self.superseded.push((previous, now));
        }
        self.lsp.notify("textDocument/didChange", params);
        self.edits.push(now);
        self.version = version;
        self.text.insert_str(at, s);
    }

    /// Sends an inline completion request at `at` without waiting.
    fn ask(&mut self, at: usize) -> i64 {
        let params = json!({"textDocument": {"uri": URI}, "position": self.position(at),
                            "context": {"triggerKind": 2}});
        let now = Instant::now();
        let id = self
            .lsp
            .send_request("textDocument/inlineCompletion", params);
        self.sent.push((id, now));
        id
    }

    /// Types `s` at `at`, 20 characters per second, asking after each keystroke (when
    /// completion is on); every 10th keystroke also asks for code actions (the lightbulb).
    fn type_text(&mut self, at: &mut usize, s: &str) -> Option<i64> {
        let mut last = None;
        for c in s.chars() {
            let tick = Instant::now();
            self.insert(*at, &c.to_string());
            *at += c.len_utf8();
            self.keystrokes += 1;
            if self.asks == Asks::EveryKey {
                last = Some(self.ask(*at));
            }
            if self.keystrokes.is_multiple_of(10) {
                let p = self.position(*at);
                let sent = Instant::now();
                let listed = self
                    .lsp
                    .request(
                        "textDocument/codeAction",
                        json!({"textDocument": {"uri": URI}, "range": {"start": p, "end": p},
                               "context": {"diagnostics": []}}),
                    )
                    .expect("code actions");
                self.actions.push(sent.elapsed());
                assert!(listed.as_array().is_some_and(|a| !a.is_empty()));
            }
            std::thread::sleep(Duration::from_millis(50).saturating_sub(tick.elapsed()));
        }
        if let Asks::AfterWaiting(wait) = self.asks {
            let since = self.edits.last().map_or(Duration::ZERO, Instant::elapsed);
            std::thread::sleep(wait.saturating_sub(since));
            last = Some(self.ask(*at));
        }
        last
    }
}

/// A pause that brought a suggestion: its kind, request → answer, and request → the first call
/// to reach the model after it (the call for the text at the pause, if one started then) and →
/// the model's last byte of that call's answer.
struct Pause {
    kind: Kind,
    shown: Duration,
    call: Option<(Duration, Option<Duration>)>,
    /// The pause the server waits for after the request before it calls, by its rule
    /// (`completion::Rhythm`: 1.5 × the median of the last nine gaps between requests, within
    /// the configured bounds), applied to the requests as this client sent them.
    debounce: Duration,
}

/// The server's debounce for requests sent at `sent` (see [`Pause::debounce`]), by the
/// server's own rule with the default bounds.
fn debounce(sent: &[(i64, Instant)]) -> Duration {
    let mut rhythm = Rhythm::default();
    for w in sent.windows(2) {
        rhythm.gap(w[1].1 - w[0].1);
    }
    rhythm.debounce(&CompletionConfig::default())
}

struct Figures {
    pauses: Vec<Pause>,
    /// The first pause after the server started (see [`run`]).
    first: Option<Duration>,
    empty_pauses: usize,
    superseded: Vec<Duration>,
    unanswered: usize,
    keystrokes: usize,
    calls: usize,
    stats: Value,
    actions: Vec<Duration>,
}

/// When the editor asks for a suggestion.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asks {
    /// Completion is off.
    Never,
    /// After every keystroke, as this bench's main runs do.
    EveryKey,
    /// Once the user has stopped typing for this long: VS Code waits 50 ms, Neovim 0.12 200 ms.
    AfterWaiting(Duration),
}

fn run(source: &str, model_ms: u64, asks: Asks) -> Figures {
    let fake = FakeModel::start();
    let mut reply = Reply::text(LINE).first_token(model_ms);
    reply.continue_line = Some(LINE.to_owned());
    fake.set_default(reply);
    let dir = tempfile::tempdir().unwrap();
    let extra = if asks != Asks::Never {
        ""
    } else {
        "[completion]\nmode = \"off\"\n"
    };
    let lsp = Lsp::spawn_with_model(dir.path(), &fake.url(), extra, &[("STRATA_LOG", "warn")]);
    let mut editor = Editor {
        lsp,
        text: source.to_owned(),
        version: 1,
        sent: Vec::new(),
        edits: Vec::new(),
        line: None,
        superseded: Vec::new(),
        asks,
        keystrokes: 0,
        actions: Vec::new(),
    };
    editor.lsp.initialize(
        json!({"textDocument": {"inlineCompletion": {}}}),
        Value::Null,
    );
    editor.lsp.open(URI, "rust", 1, &editor.text.clone());
    editor.lsp.wait_parsed(URI, 1);
    let mut pauses = Vec::new();
    let mut empty_pauses = 0;
    let mut read = std::collections::HashSet::new();
    // Function bodies from the middle of the file on, one per session.
    let mut search_from = editor.text.len() / 2;
    // The first pause of the run comes before the counted sessions: its call is the server's
    // first, which loads the token tables, opens the connection to the model and writes the
    // audit's first row (10–20 ms more, traced), once per server start. Reported apart.
    let mut first = None;
    for round in 0..=SESSIONS {
        let warm_up = round == 0;
        let session = round.saturating_sub(1);
        let kind = if warm_up {
            Kind::Against
        } else {
            [Kind::Along, Kind::Against, Kind::EmptyBody][session % 3]
        };
        let body = editor.text[search_from..].find(") {\n").unwrap() + search_from + 4;
        search_from = body + 1;
        // A new line at the start of the body (Enter, then the indent).
        editor.insert(body, "    \n");
        let mut at = body + 4;
        if kind == Kind::EmptyBody {
            editor.insert(at, "if ready {}");
            at += "if ready {".len();
            editor.insert(at, "\n        \n    ");
            at += "\n        ".len();
            // The user thinks for a moment inside the empty block.
            std::thread::sleep(Duration::from_millis(400 + model_ms));
        }
        let typed: String = match kind {
            Kind::Against => AGAINST.chars().take(6 + session * 7 % 15).collect(),
            _ => LINE.chars().take(6 + session * 7 % 15).collect(),
        };
        let Some(last) = editor.type_text(&mut at, &typed) else {
            continue;
        };
        // The pause: nothing more is sent until the last request is answered.
        let sent = editor.sent.last().unwrap().1;
        let answer = editor.lsp.response(last).expect("a completion response");
        read.insert(last);
        let shown = editor.lsp.arrived(last).unwrap().duration_since(sent);
        // The first call to reach the model after the request: when it arrived, and when the
        // model had written its whole answer.
        let call = fake
            .calls()
            .iter()
            .filter(|c| c.received >= sent)
            .min_by_key(|c| c.received)
            .map(|c| (c.received - sent, c.ended.map(|e| e.duration_since(sent))));
        if warm_up {
            first = Some(shown);
        } else if answer["items"].as_array().is_some_and(|i| !i.is_empty()) {
            let debounce = debounce(&editor.sent);
            pauses.push(Pause {
                kind,
                shown,
                call,
                debounce,
            });
        } else {
            empty_pauses += 1;
        }
    }
    // Every request has its answer; the superseded ones, how soon after the newer one was sent.
    let mut unanswered = 0;
    for &(id, _) in &editor.sent {
        if editor.lsp.arrived(id).is_none() {
            unanswered += 1;
        }
    }
    let superseded: Vec<Duration> = editor
        .superseded
        .iter()
        .filter_map(|&(id, newer)| {
            // Only those still open when the edit was sent (not those served at once).
            let arrived = editor.lsp.arrived(id)?;
            (arrived >= newer).then(|| arrived - newer)
        })
        .collect();
    for &(id, _) in &editor.sent.clone() {
        if !read.contains(&id) && editor.lsp.arrived(id).is_some() {
            let _ = editor.lsp.response(id);
        }
    }
    let stats = editor.lsp.request("strata/stats", Value::Null).unwrap();
    let calls = fake.call_count();
    let keystrokes = editor.keystrokes;
    let actions = std::mem::take(&mut editor.actions);
    editor.lsp.finish();
    Figures {
        pauses,
        first,
        empty_pauses,
        superseded,
        unanswered,
        keystrokes,
        calls,
        stats,
        actions,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (_, source) = common::source("rust", 2400 * 1024);
    let (_, typical) = common::source("rust", 64 * 1024);
    println!(
        "Type-then-pause sessions ({SESSIONS}: along / against / empty body in turn) in a {:.1} MB Rust file, 20 keystrokes per second, an inlineCompletion request after each:",
        source.len() as f64 / 1e6
    );
    println!();
    println!(
        "| model | session | pauses | pause → suggestion p50 / p99 / max ms | Strata's share p50 / p99 ms | of it, beyond the debounce p50 / p99 ms | of it, until the call reaches the model (debounce, prompt) p50 / p99 ms | of it, after the model's last byte p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut rest = Vec::new();
    for model_ms in [0u64, 300, 1000] {
        let f = run(&source, model_ms, Asks::EveryKey);
        print_pauses(model_ms, &f);
        rest.push((model_ms, f));
    }
    println!();
    println!(
        "| model | first pause after start ms | pauses without a suggestion | superseded answered p50 / p99 / max ms | unanswered | model calls per keystroke | suggestions a prefetch brought | codeAction p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (model_ms, mut f) in rest {
        f.superseded.sort();
        f.actions.sort();
        let c = &f.stats["completion"];
        let shown = ["fromSuggestion", "fromInFlight", "fromHeld"]
            .iter()
            .map(|k| c[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        println!(
            "| {model_ms} ms | {} | {} | {} / {} / {} | {} | {:.3} ({} / {}) | {:.0} % ({} of {shown}; {} prefetches) | {} / {} |",
            f.first.map_or("—".into(), ms),
            f.empty_pauses,
            ms(percentile(&f.superseded, 0.5)),
            ms(percentile(&f.superseded, 0.99)),
            ms(f.superseded.last().copied().unwrap_or_default()),
            f.unanswered,
            f.calls as f64 / f.keystrokes as f64,
            f.calls,
            f.keystrokes,
            100.0 * c["fromPrefetch"].as_u64().unwrap_or(0) as f64 / shown.max(1) as f64,
            c["fromPrefetch"],
            c["prefetches"],
            ms(percentile(&f.actions, 0.5)),
            ms(percentile(&f.actions, 0.99)),
        );
    }
    let mut off = run(&source, 300, Asks::Never);
    off.actions.sort();
    println!(
        "| completion off | | | | | | | {} / {} |",
        ms(percentile(&off.actions, 0.5)),
        ms(percentile(&off.actions, 0.99)),
    );
    // A file of a typical size, where the prompt also resolves what the cursor uses (files
    // over a megabyte are not parsed again for that).
    println!();
    println!(
        "The same in a {} KB Rust file, model at 300 ms:",
        typical.len() / 1024
    );
    println!();
    println!(
        "| model | session | pauses | pause → suggestion p50 / p99 / max ms | Strata's share p50 / p99 ms | of it, beyond the debounce p50 / p99 ms | of it, until the call reaches the model (debounce, prompt) p50 / p99 ms | of it, after the model's last byte p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let small = run(&typical, 300, Asks::EveryKey);
    print_pauses(300, &small);
    // Editors that wait for the user to stop typing before they ask.
    println!();
    println!(
        "The same in the {:.1} MB file, the editor asking only once the user has stopped typing for a while (VS Code 50 ms, Neovim 0.12 200 ms):",
        source.len() as f64 / 1e6
    );
    println!();
    println!(
        "| model, editor waits | session | pauses | pause → suggestion p50 / p99 / max ms | Strata's share p50 / p99 ms | of it, beyond the debounce p50 / p99 ms | of it, until the call reaches the model (debounce, prompt) p50 / p99 ms | of it, after the model's last byte p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (model_ms, wait) in [0, 300, 1000].into_iter().flat_map(|m| [(m, 50), (m, 200)]) {
        let f = run(
            &source,
            model_ms,
            Asks::AfterWaiting(Duration::from_millis(wait)),
        );
        let label = format!("{model_ms} ms, {wait} ms");
        // Nothing is asked while the user types: the call for "along" starts at the pause too.
        print_pauses_as(&label, model_ms, &f, &[Kind::Along, Kind::Against], false);
        println!(
            "| {label} | first pause after start {} ms; calls per keystroke {:.3} ({} / {}); unanswered {} | | | | | | |",
            f.first.map_or("—".into(), ms),
            f.calls as f64 / f.keystrokes as f64,
            f.calls,
            f.keystrokes,
            f.unanswered
        );
    }
    println!();
}

/// The rows of the pause table for one run: per kind of session, pause → suggestion shown, and
/// for "against", Strata's share split at the model.
fn print_pauses(model_ms: u64, f: &Figures) {
    print_pauses_as(
        &format!("{model_ms} ms"),
        model_ms,
        f,
        &[Kind::Against],
        true,
    );
}

/// [`print_pauses`], the rows labelled `label`, the share given for the sessions of `split`
/// (those whose call starts at the pause), and beyond the debounce where the server waits one
/// after the request (`debounced`; not for the first request after a pause, whose call starts
/// at once).
fn print_pauses_as(label: &str, model_ms: u64, f: &Figures, split: &[Kind], debounced: bool) {
    for (kind, name) in [
        (Kind::Along, "along"),
        (Kind::Against, "against"),
        (Kind::EmptyBody, "empty body"),
    ] {
        let mut shown: Vec<Duration> = f
            .pauses
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| p.shown)
            .collect();
        shown.sort();
        // Strata's share where the call starts at the pause: the time the model took
        // (from the call's arrival to its last byte) is the model's, the rest is Strata's.
        // Split at the model: before the call reaches it, the debounce (the pause must be told
        // from the gap between keystrokes) and the prompt's build; after the model has written
        // its whole answer, the answer's way back to the editor.
        let cells = if split.contains(&kind) {
            let model = Duration::from_millis(model_ms);
            let mut share = Vec::new();
            let mut beyond = Vec::new();
            let mut before = Vec::new();
            let mut after = Vec::new();
            for p in f.pauses.iter().filter(|p| p.kind == kind) {
                let split = p
                    .call
                    .and_then(|(reached, ended)| Some((reached, p.shown.checked_sub(ended?)?)));
                let strata = match split {
                    Some((reached, back)) => {
                        before.push(reached);
                        after.push(back);
                        reached + back
                    }
                    None => p.shown.saturating_sub(model),
                };
                share.push(strata);
                beyond.push(strata.saturating_sub(p.debounce));
            }
            let pair = |mut v: Vec<Duration>| {
                v.sort();
                format!("{} / {}", ms(percentile(&v, 0.5)), ms(percentile(&v, 0.99)))
            };
            let beyond = if debounced {
                pair(beyond)
            } else {
                "—".into()
            };
            [pair(share), beyond, pair(before), pair(after)].join(" | ")
        } else {
            ["—"; 4].join(" | ")
        };
        println!(
            "| {label} | {name} | {} | {} / {} / {} | {cells} |",
            shown.len(),
            ms(percentile(&shown, 0.5)),
            ms(percentile(&shown, 0.99)),
            ms(shown.last().copied().unwrap_or_default()),
        );
    }
}
