//! Where the server's memory goes, per resource profile (issue #18): the release binary over
//! stdio in the editor session the memory targets are stated for — `initialize` with a
//! workspace folder holding only lib.dom.d.ts (1.9 MB, from npm's typescript 5.9.3), one second
//! idle while the workspace is indexed, the file opened and parsed, then 200 characters typed at
//! 20 per second on a new line in the middle of the file with a completion request after every
//! keystroke (the loopback fake model answers at once). The peak (VmHWM) is read twice: before
//! typing (indexing, the whole file's first parse), then reset with `clear_refs` and read again
//! after typing. At each stage it reads the process's
//! `/proc/<pid>/status` and `smaps_rollup`: RSS split into private memory (heap, stacks) and
//! pages mapped from files (code, token tables, grammars), threads, and CPU time. At the end of
//! typing it says where each MiB goes: the binary's code, its read-only
//! tables, its data, the libraries (from `/proc/<pid>/smaps`), thread stacks, and the heap as
//! the allocator sees it (`strata/stats`: allocated, held free) and the rest of private memory.
//! Medians of three sessions per profile. Prints tables; asserts nothing about the figures.
//!
//! lib.dom.d.ts is fetched once with `npm pack typescript@5.9.3` into the target directory
//! (`STRATA_LIB_DOM` names a copy to use instead); without npm, a generated TypeScript file of
//! the same size stands in, and the tables say so.
//!
//! Run: `cargo bench --bench memory` (about 2 minutes), `-- low_resource` for one profile.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use support::Lsp;
use support::fake_model::{FakeModel, Reply};

const PROFILES: &[&str] = &["high_performance", "balanced", "low_resource"];
const RUNS: usize = 3;
const KEYSTROKES: usize = 200;
const TICK: Duration = Duration::from_millis(50);

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let (label, text) = lib_dom();
    println!(
        "Memory: {label} ({:.2} MB) alone in its workspace folder; medians of {RUNS} sessions.\n",
        text.len() as f64 / 1e6
    );
    let mut rows = Vec::new();
    for &profile in PROFILES {
        if !only.is_empty() && !only.iter().any(|o| profile.contains(o.as_str())) {
            continue;
        }
        let runs: Vec<Session> = (0..RUNS).map(|_| session(profile, &text)).collect();
        rows.push((profile, median(&runs)));
    }
    println!(
        "| profile | idle 1 s after initialize | file open | peak while typing (VmHWM) | after typing | peak before typing: indexing, opening (VmHWM) |"
    );
    println!("|---|---|---|---|---|---|");
    for (profile, s) in &rows {
        println!(
            "| {profile} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            s.idle.rss, s.open.rss, s.peak, s.typed.rss, s.open_peak
        );
    }
    println!("\nRSS in MiB. Where it goes (private / mapped from files, MiB; threads):\n");
    println!("| profile | idle | open | after typing |\n|---|---|---|---|");
    for (profile, s) in &rows {
        let cell = |m: &Sample| format!("{:.1} / {:.1}; {}", m.anon, m.file, m.threads);
        println!(
            "| {profile} | {} | {} | {} |",
            cell(&s.idle),
            cell(&s.open),
            cell(&s.typed)
        );
    }
    println!("\nCPU (user + system, s) and completion latency:\n");
    println!(
        "| profile | CPU to idle | CPU open | CPU typing ({KEYSTROKES} keys, {:.0} s) | completion p50 / p99 ms |\n|---|---|---|---|---|",
        (KEYSTROKES as u32 * TICK).as_secs_f64()
    );
    for (profile, s) in &rows {
        println!(
            "| {profile} | {:.2} | {:.2} | {:.2} | {:.2} / {:.2} |",
            s.idle.cpu, s.open.cpu, s.typing_cpu, s.p50_ms, s.p99_ms
        );
    }
    println!(
        "\nWhere the peak goes: RSS at the end of typing (MiB; the heap as the allocator sees it, `–` where it does not say):\n"
    );
    println!(
        "| profile | RSS | code | read-only data (grammars, tables) | data | libraries | heap allocated | heap held free | thread stacks | other private |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (profile, s) in &rows {
        let w = &s.split;
        let heap = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}"));
        let other = w.anon - w.stacks - w.heap_in_use.unwrap_or(0.0) - w.heap_free.unwrap_or(0.0);
        println!(
            "| {profile} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} | {:.1} |",
            s.typed.rss,
            w.code,
            w.rodata,
            w.data,
            w.libraries,
            heap(w.heap_in_use),
            heap(w.heap_free),
            w.stacks,
            other.max(0.0)
        );
    }
    println!(
        "\nTargets (issue #18, balanced): RSS ≤ 12 MiB idle, ≤ 20 MiB open, ≤ 30 MiB peak while typing."
    );
}

/// Where resident memory lies, in MiB.
#[derive(Clone, Copy, Default)]
struct Split {
    /// The binary's executable pages.
    code: f64,
    /// Its read-only data: grammars' parse tables, the token tables, constants.
    rodata: f64,
    /// Its writable data (relocated pointers, statics).
    data: f64,
    /// Pages of other files: the C library, the loader.
    libraries: f64,
    /// Thread stacks: the main one, and private memory right above a guard page.
    stacks: f64,
    /// All private memory.
    anon: f64,
    /// The allocator's view (`strata/stats` → `memory`).
    heap_in_use: Option<f64>,
    heap_free: Option<f64>,
}

/// Reads `/proc/<pid>/smaps` into a [`Split`] (the heap's figures come from the server).
fn split(pid: u32) -> Split {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy();
    let mut out = Split::default();
    // The mapping being read: its permissions, path, and whether it is a thread's stack: the
    // main one, or private memory right above a guard page (a small inaccessible mapping).
    let (mut perms, mut path, mut stack) = (String::new(), String::new(), false);
    let mut guard_end = 0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            perms = fields.next().unwrap_or("").to_owned();
            path = fields.nth(3).unwrap_or("").to_owned();
            stack = path == "[stack]" || (path.is_empty() && guard_end == start);
            let guard = perms.starts_with("---") && end - start <= 64 * 1024;
            guard_end = if guard { end } else { 0 };
            continue;
        }
        let (Some("Rss:"), Some(kb)) = (Some(first), fields.next()) else {
            continue;
        };
        let mib = kb.parse::<f64>().unwrap_or(0.0) / 1024.0;
        if path.is_empty() || path.starts_with('[') {
            out.anon += mib;
            if stack {
                out.stacks += mib;
            }
        } else if path == exe {
            match perms.as_bytes() {
                [_, _, b'x', _] => out.code += mib,
                [_, b'w', _, _] => out.data += mib,
                _ => out.rodata += mib,
            }
        } else {
            out.libraries += mib;
        }
    }
    out
}

/// lib.dom.d.ts: a copy named by `STRATA_LIB_DOM`, else npm's (fetched once), else a generated
/// TypeScript file of its size.
fn lib_dom() -> (String, String) {
    if let Some(path) = std::env::var_os("STRATA_LIB_DOM") {
        let text = std::fs::read_to_string(&path).expect("STRATA_LIB_DOM names a readable file");
        return ("lib.dom.d.ts".into(), text);
    }
    let dir = target_dir().join("lib-dom");
    let file = dir.join("package/lib/lib.dom.d.ts");
    if !file.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let packed = std::process::Command::new("npm")
            .args(["pack", "typescript@5.9.3", "--silent"])
            .current_dir(&dir)
            .output();
        let unpacked = packed.is_ok_and(|o| o.status.success())
            && std::process::Command::new("tar")
                .args(["xzf", "typescript-5.9.3.tgz", "package/lib/lib.dom.d.ts"])
                .current_dir(&dir)
                .status()
                .is_ok_and(|s| s.success());
        if !unpacked {
            eprintln!("npm pack typescript@5.9.3 failed: a generated file stands in");
        }
    }
    match std::fs::read_to_string(&file) {
        Ok(text) => ("lib.dom.d.ts (typescript 5.9.3)".into(), text),
        Err(_) => (
            "generated TypeScript (lib.dom.d.ts unavailable)".into(),
            common::source("typescript", 1_875_000).1,
        ),
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[derive(Clone, Copy, Default)]
struct Sample {
    rss: f64,
    anon: f64,
    file: f64,
    threads: f64,
    /// CPU seconds so far.
    cpu: f64,
}

#[derive(Clone, Copy, Default)]
struct Session {
    idle: Sample,
    open: Sample,
    typed: Sample,
    split: Split,
    /// VmHWM before typing: initialize, indexing, opening and parsing the file.
    open_peak: f64,
    /// VmHWM while typing (reset just before).
    peak: f64,
    typing_cpu: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn sample(pid: u32) -> Sample {
    let field = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // utime and stime: fields 14 and 15, after the command in parentheses.
    let ticks: f64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    Sample {
        rss: field(&status, "VmRSS:") / 1024.0,
        anon: field(&rollup, "Anonymous:") / 1024.0,
        file: field(&status, "RssFile:") / 1024.0,
        threads: field(&status, "Threads:"),
        cpu: ticks / 100.0,
    }
}

/// The process's peak RSS (VmHWM) in MiB.
fn hwm(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn session(profile: &str, text: &str) -> Session {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("const total = 0;"));
    let dir = tempfile::tempdir().unwrap();
    let provider = support::fake_model::ollama_config(dir.path(), &fake.url(), "");
    let config = format!(
        "profile = \"{profile}\"\n{}",
        std::fs::read_to_string(&provider).unwrap()
    );
    std::fs::write(&provider, config).unwrap();
    let root = dir.path().join("workspace");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("lib.dom.d.ts"), text).unwrap();
    let cache = dir.path().join("cache");
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", provider.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
        ("STRATA_LOG", "warn"),
    ]);
    let root_uri = format!("file://{}", root.display());
    lsp.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": root_uri,
            "workspaceFolders": [{"uri": root_uri, "name": "bench"}],
            "capabilities": {"textDocument": {"completion": {}}},
        }),
    )
    .expect("initialize");
    lsp.notify("initialized", json!({}));
    let pid = lsp.pid();
    std::thread::sleep(Duration::from_secs(1));
    let idle = sample(pid);

    let uri = format!("{root_uri}/lib.dom.d.ts");
    lsp.open(&uri, "typescript", 1, text);
    lsp.wait_parsed(&uri, 1);
    std::thread::sleep(Duration::from_secs(1));
    let open = sample(pid);
    // The peak so far (indexing, the first parse of the whole file), then the peak is reset to
    // the RSS of now (`clear_refs` 5), so the next reading is the peak while typing.
    let open_peak = hwm(pid);
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");

    // A new line in the middle of the file, at the end of a line.
    let middle = text.len() / 2 + text[text.len() / 2..].find('\n').unwrap();
    let line = text[..middle].matches('\n').count();
    let mut column = text[..middle]
        .rsplit('\n')
        .next()
        .unwrap()
        .encode_utf16()
        .count();
    let typed = "\nconst total = values.reduce((p, q) => p + q, 0); // and more text ";
    let mut latencies = Vec::new();
    let (mut version, mut line) = (1, line);
    let started = sample(pid).cpu;
    let mut due = Instant::now();
    for k in 0..KEYSTROKES {
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        due += TICK;
        let c = typed.chars().nth(k % typed.chars().count()).unwrap();
        version += 1;
        let at = json!({"line": line, "character": column});
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version},
                   "contentChanges": [{"range": {"start": at, "end": at}, "text": c.to_string()}]}),
        );
        if c == '\n' {
            line += 1;
            column = 0;
        } else {
            column += c.len_utf16();
        }
        let sent = Instant::now();
        let _ = lsp.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": column}}),
        );
        latencies.push(sent.elapsed());
    }
    let typed = sample(pid);
    let mut split = split(pid);
    if let Ok(stats) = lsp.request("strata/stats", serde_json::Value::Null) {
        let mib = |v: &serde_json::Value| v.as_f64().map(|b| b / 1048576.0);
        split.heap_in_use = mib(&stats["memory"]["heapInUse"]);
        split.heap_free = mib(&stats["memory"]["heapFree"]);
    }
    let peak = hwm(pid);
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    lsp.finish();
    Session {
        idle,
        open: Sample {
            cpu: open.cpu - idle.cpu,
            ..open
        },
        typing_cpu: typed.cpu - started,
        typed,
        split,
        open_peak,
        peak,
        p50_ms: at(0.5).as_secs_f64() * 1e3,
        p99_ms: at(0.99).as_secs_f64() * 1e3,
    }
}

/// The median of each figure over the sessions.
fn median(runs: &[Session]) -> Session {
    let m = |f: &dyn Fn(&Session) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let s = |f: &dyn Fn(&Session) -> Sample| Sample {
        rss: m(&|r| f(r).rss),
        anon: m(&|r| f(r).anon),
        file: m(&|r| f(r).file),
        threads: m(&|r| f(r).threads),
        cpu: m(&|r| f(r).cpu),
    };
    let opt = |f: &dyn Fn(&Session) -> Option<f64>| {
        let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let split = Split {
        code: m(&|r| r.split.code),
        rodata: m(&|r| r.split.rodata),
        data: m(&|r| r.split.data),
        libraries: m(&|r| r.split.libraries),
        stacks: m(&|r| r.split.stacks),
        anon: m(&|r| r.split.anon),
        heap_in_use: opt(&|r| r.split.heap_in_use),
        heap_free: opt(&|r| r.split.heap_free),
    };
    Session {
        idle: s(&|r| r.idle),
        open: s(&|r| r.open),
        typed: s(&|r| r.typed),
        split,
        open_peak: m(&|r| r.open_peak),
        peak: m(&|r| r.peak),
        typing_cpu: m(&|r| r.typing_cpu),
        p50_ms: m(&|r| r.p50_ms),
        p99_ms: m(&|r| r.p99_ms),
    }
}
