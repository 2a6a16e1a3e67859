//! Keystroke latency percentiles, split into parse and chunk time, and the server's memory with
//! a large file open. Prints tables for docs/benchmarks.md. Run: `cargo bench --bench keystroke`.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use common::Typing;
use ropey::Rope;
use serde_json::{Value, json};
use strata::chunks::ChunkConfig;
use strata::documents::Syntax;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn row(label: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "| {label} | {} | {} | {} | {} |",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.95)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` asks benches to list or test themselves: nothing to do.
    }
    // `cargo bench --bench keystroke -- memory` runs only the memory part.
    let only_memory = std::env::args().any(|a| a == "memory");
    if !only_memory {
        latency();
    }
    memory();
}

fn latency() {
    let keystrokes = 300;
    println!(
        "## Keystroke → fresh chunks (ms, {keystrokes} keystrokes alternating insert/delete mid-file)\n"
    );
    println!("| file | p50 | p95 | p99 | max |\n|---|---|---|---|---|");
    let mut splits = Vec::new();
    for language in ["rust", "typescript"] {
        for &(size, bytes) in common::SIZES {
            let (lang, source) = common::source(language, bytes);
            for (what, insert, line_start, n) in [
                ("keystroke", "x", false, keystrokes),
                ("unbalanced `{`", "{\n", true, 60),
                ("unterminated `\"`", "\"", true, 60),
            ] {
                let mut typing = Typing::new(lang, &source, insert, line_start);
                let (mut total, mut parse, mut chunk) = (Vec::new(), Vec::new(), Vec::new());
                let mut reparsed = Vec::new();
                for _ in 0..n {
                    let started = Instant::now();
                    let parsed = typing.keystroke();
                    total.push(started.elapsed());
                    parse.push(parsed.stats.parse_time);
                    chunk.push(parsed.stats.chunk_time);
                    reparsed.push(parsed.stats.segments_parsed);
                }
                println!("{}", row(&format!("{language} {size} {what}"), total));
                parse.sort();
                chunk.sort();
                reparsed.sort();
                splits.push(format!(
                    "| {language} {size} {what} | {} | {} | {} |",
                    ms(percentile(&parse, 0.5)),
                    ms(percentile(&chunk, 0.5)),
                    reparsed[reparsed.len() / 2],
                ));
            }
        }
    }
    println!(
        "\n## Split of the median keystroke (ms), and the segments it parsed\n\n| file | parse | chunk | segments |\n|---|---|---|---|"
    );
    for s in splits {
        println!("{s}");
    }

    println!(
        "\n## Opening a file: full parse + chunks (ms, median of 5)\n\n| file | median |\n|---|---|"
    );
    for language in ["rust", "typescript"] {
        for &(size, bytes) in common::SIZES {
            let (lang, source) = common::source(language, bytes);
            let text = Rope::from_str(&source);
            let mut times: Vec<Duration> = (0..5)
                .map(|_| {
                    let started = Instant::now();
                    Syntax::new(Some(lang), ChunkConfig::default()).update(
                        1,
                        text.clone(),
                        &[],
                        true,
                    );
                    started.elapsed()
                })
                .collect();
            times.sort();
            println!("| {language} {size} | {} |", ms(times[2]));
        }
    }
}

fn memory() {
    println!("\n## Server memory with a 2.4 MB Rust file open\n");
    let (_, source) = common::source("rust", 2400 * 1024);
    let mut lsp = support::Lsp::spawn();
    let rss = |lsp: &support::Lsp, field: &str| -> String {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", lsp.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_default()
    };
    lsp.initialize(json!({}), Value::Null);
    let idle = rss(&lsp, "VmRSS:");
    let uri = "file:///bench/big.rs";
    lsp.open(uri, "rust", 1, &source);
    let stats = lsp.wait_parsed(uri, 1);
    let open = rss(&lsp, "VmRSS:");
    let open_peak = rss(&lsp, "VmHWM:");
    let at = source.len() / 2;
    let line = source[..at].matches('\n').count();
    for v in 0..200 {
        let pos = json!({"line": line, "character": v % 2});
        let change = if v % 2 == 0 {
            json!({"range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}, "text": "x"})
        } else {
            json!({"range": {"start": {"line": line, "character": 0}, "end": pos}, "text": ""})
        };
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": v + 2}, "contentChanges": [change]}),
        );
    }
    lsp.wait_parsed(uri, 201);
    let after = rss(&lsp, "VmRSS:");
    let peak = rss(&lsp, "VmHWM:");
    let to_mib = |kb: &str| format!("{:.1}", kb.parse::<f64>().unwrap_or(0.0) / 1024.0);
    println!("| state | RSS (MiB) |\n|---|---|");
    println!("| idle after initialize | {} |", to_mib(&idle));
    println!("| 2.4 MB file open and chunked | {} |", to_mib(&open));
    println!("| peak while opening (VmHWM) | {} |", to_mib(&open_peak));
    println!("| after 200 keystrokes | {} |", to_mib(&after));
    println!("| peak after typing (VmHWM) | {} |", to_mib(&peak));
    println!(
        "\n{} segments, {} chunks, {} trees held",
        stats["segments"], stats["chunks"], stats["trees"]
    );
    lsp.finish();
}
