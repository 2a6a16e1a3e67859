//! Completion latency while typing: the release binary over stdio, a generated 2.4 MB Rust file
//! open, 200 characters typed at 20 per second on a new line inside a function, a completion
//! request after every keystroke, the fake model answering at 0 ms and at 300 ms. Prints, per
//! model latency and request kind, the latency percentiles of the completion requests (send to
//! response, as the editor sees it), how many carried a suggestion, and model calls per
//! keystroke. Run: `cargo bench --bench completion`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{FakeModel, Reply};

const KEYSTROKES: usize = 200;
const ANSWER: &str = "let total = values.iter().sum::<u64>();";
const URI: &str = "file:///bench/src/big.rs";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// (line, UTF-16 column) of byte `at` in `text` (ASCII around the edit).
fn position(text: &str, at: usize) -> (usize, usize) {
    let line = text[..at].matches('\n').count();
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    (line, text[start..at].encode_utf16().count())
}

fn run(source: &str, model_ms: u64, inline: bool) {
    let fake = FakeModel::start();
    let mut reply = Reply::text(ANSWER).first_token(model_ms);
    reply.continue_line = Some(ANSWER.to_owned());
    fake.set_default(reply);
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::spawn_with_model(dir.path(), &fake.url(), "", &[("STRATA_LOG", "warn")]);
    let capabilities = if inline {
        json!({"textDocument": {"inlineCompletion": {}}})
    } else {
        json!({})
    };
    lsp.initialize(capabilities, Value::Null);
    let mut text = source.to_owned();
    lsp.open(URI, "rust", 1, &text);
    lsp.wait_parsed(URI, 1);
    // A new line at the start of a function body in the middle of the file.
    let body = text[text.len() / 2..].find(") {\n").unwrap() + text.len() / 2 + 4;
    let mut at = body;
    let mut version = 1;
    let insert = |lsp: &mut Lsp, text: &mut String, at: usize, s: &str, version: &mut i32| {
        let (line, character) = position(text, at);
        *version += 1;
        lsp.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": URI, "version": *version},
                "contentChanges": [{"range": {"start": {"line": line, "character": character},
                    "end": {"line": line, "character": character}}, "text": s}]
            }),
        );
        text.insert_str(at, s);
    };
    insert(&mut lsp, &mut text, at, "    \n", &mut version);
    at += 4;
    // The user types what the model suggests, so forward typing can be served; the new lines
    // make new calls.
    let typed: String = format!("{ANSWER}\n    ")
        .repeat(8)
        .chars()
        .take(KEYSTROKES)
        .collect();
    let mut latencies = Vec::with_capacity(KEYSTROKES);
    let mut actions = Vec::new();
    let mut with_suggestion = 0;
    for c in typed.chars() {
        let tick = Instant::now();
        insert(&mut lsp, &mut text, at, &c.to_string(), &mut version);
        at += c.len_utf8();
        let (line, character) = position(&text, at);
        let sent = Instant::now();
        let response = if inline {
            lsp.request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character},
                       "context": {"triggerKind": 2}}),
            )
        } else {
            lsp.request(
                "textDocument/completion",
                json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}}),
            )
        }
        .expect("a completion response");
        latencies.push(sent.elapsed());
        if actions.len() * 10 < latencies.len() {
            // The lightbulb: code actions at the cursor (agents, no model).
            let sent = Instant::now();
            let listed = lsp
                .request(
                    "textDocument/codeAction",
                    json!({"textDocument": {"uri": URI}, "range": {"start": {"line": line, "character": 0},
                           "end": {"line": line, "character": character}}, "context": {"diagnostics": []}}),
                )
                .expect("code actions");
            actions.push(sent.elapsed());
            assert!(listed.as_array().is_some_and(|a| !a.is_empty()));
        }
        if response["items"].as_array().is_some_and(|i| !i.is_empty()) {
            with_suggestion += 1;
        }
        std::thread::sleep(Duration::from_millis(50).saturating_sub(tick.elapsed()));
    }
    let calls = fake.call_count();
    lsp.finish();
    latencies.sort();
    actions.sort();
    eprintln!(
        "  codeAction ({} requests): p50 {} ms, p99 {} ms, max {} ms",
        actions.len(),
        ms(percentile(&actions, 0.5)),
        ms(percentile(&actions, 0.99)),
        ms(*actions.last().unwrap())
    );
    println!(
        "| {} ms | {} | {} | {} | {} | {} | {with_suggestion} | {calls} ({:.3}) |",
        model_ms,
        if inline {
            "inlineCompletion"
        } else {
            "completion"
        },
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap()),
        calls as f64 / KEYSTROKES as f64
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let (_, source) = common::source("rust", 2400 * 1024);
    println!(
        "Typing {KEYSTROKES} characters at 20/s into a {:.1} MB Rust file, a completion request after each:",
        source.len() as f64 / 1e6
    );
    println!();
    println!(
        "| model | request | p50 ms | p95 ms | p99 ms | max ms | with a suggestion | model calls (per keystroke) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for model_ms in [0, 300] {
        for inline in [false, true] {
            run(&source, model_ms, inline);
        }
    }
}
