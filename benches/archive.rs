//! Archive benchmarks: cold index of a generated workspace (~2,000 files, ~50 MB of Rust and
//! TypeScript), re-index after touching one file, and search latency over the archive (grown to
//! at least 100,000 chunks). Run: `cargo bench --bench archive`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use strata::archive::{Archive, IndexConfig, SearchQuery};

fn generate(root: &Path, files: usize, bytes_per_file: usize) -> usize {
    let mut total = 0;
    for i in 0..files {
        let dir = root.join(format!("crate{}/src/m{}", i % 7, i / 50));
        std::fs::create_dir_all(&dir).unwrap();
        let (name, text) = if i % 2 == 0 {
            (format!("f{i}.rs"), common::rust(bytes_per_file, i as u64))
        } else {
            (
                format!("f{i}.ts"),
                common::typescript(bytes_per_file, i as u64),
            )
        };
        total += text.len();
        std::fs::write(dir.join(name), text).unwrap();
    }
    total
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`, from
/// /proc (0 where there is none).
fn thread_cpu_seconds(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ticks: u64 = tasks
        .filter_map(|task| {
            let task = task.ok()?.path();
            let name = std::fs::read_to_string(task.join("comm")).ok()?;
            if !name.starts_with(prefix) {
                return None;
            }
            let stat = std::fs::read_to_string(task.join("stat")).ok()?;
            // Fields after the command name: state is the first, utime the 12th, stime the 13th.
            let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / 100.0
}

/// CPU seconds (user + system) of this whole process, from /proc (0 where there is none).
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / 100.0
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let threads: usize = std::env::var("STRATA_INDEX_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let ws = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // STRATA_BENCH_CACHE keeps the archive for inspection (sqlite3, EXPLAIN QUERY PLAN).
    let cache_dir = std::env::var_os("STRATA_BENCH_CACHE")
        .map_or_else(|| cache.path().to_path_buf(), Into::into);
    let bytes = generate(ws.path(), 2000, 25 * 1024);
    let config = IndexConfig {
        threads,
        ..IndexConfig::default()
    };
    let (archive, _) = Archive::open(ws.path(), Some(&cache_dir)).unwrap();

    // Reading, parsing and building rows alone, on one thread, with no database: the indexer's
    // share of the work.
    let started = Instant::now();
    let mut rows = 0;
    let mut rows_time = Duration::ZERO;
    let (mut parse_time, mut chunk_time) = (Duration::ZERO, Duration::ZERO);
    for found in strata::archive::walk(ws.path(), &config) {
        let text = ropey::Rope::from_str(&std::fs::read_to_string(&found.abs).unwrap());
        let language = strata::syntax::Language::from_path(&found.abs);
        let parsed = strata::documents::Syntax::new(language, config.chunk).update(
            0,
            text.clone(),
            &[],
            true,
        );
        parse_time += parsed.stats.parse_time;
        chunk_time += parsed.stats.chunk_time;
        let chunks = parsed.chunks.to_vec();
        drop(parsed);
        let rows_started = Instant::now();
        rows += strata::archive::chunk_rows(&text, &chunks).len();
        rows_time += rows_started.elapsed();
    }
    let alone = started.elapsed();

    let writer_cpu = || thread_cpu_seconds("strata-archive-");
    let writer_before = writer_cpu();
    let process_before = process_cpu_seconds();
    let cold = archive.index(&config, &|_, _| {}).unwrap();
    let writer_seconds = writer_cpu() - writer_before;
    let process_seconds = process_cpu_seconds() - process_before;
    let (files, chunks) = archive.counts().unwrap();
    println!("## Archive (threads = {threads})\n");
    println!("| measure | value |\n|---|---|");
    println!(
        "| workspace | {} files, {:.1} MB |",
        cold.files,
        bytes as f64 / 1e6
    );
    println!(
        "| cold index | {:.2} s, {:.1} MB/s, {files} files, {chunks} chunks |",
        cold.seconds,
        cold.megabytes_per_second()
    );
    println!(
        "| CPU of the whole process meanwhile (2 cores give twice the wall time) | {process_seconds:.2} s |"
    );
    println!("| of which the writer thread's CPU | {writer_seconds:.2} s |");
    println!(
        "| read + parse + rows alone, one thread, no database | {:.2} s, {:.1} MB/s, {rows} rows |",
        alone.as_secs_f64(),
        bytes as f64 / 1e6 / alone.as_secs_f64()
    );
    println!(
        "| of which tree-sitter parsing | {:.2} s |",
        parse_time.as_secs_f64()
    );
    println!(
        "| of which chunking (queries and chunks) | {:.2} s |",
        chunk_time.as_secs_f64()
    );
    println!(
        "| of which rows (`chunk_rows`: signatures, docs, terms, positions) | {:.2} s |",
        rows_time.as_secs_f64()
    );

    // Re-index after touching one file: the walk, the change check, one parse, one write.
    let mut times = Vec::new();
    let target = ws.path().join("crate0/src/m0/f0.rs");
    for round in 0..15 {
        let mut text = std::fs::read_to_string(&target).unwrap();
        text.push_str(&format!("\npub fn touched_{round}() {{}}\n"));
        std::fs::write(&target, text).unwrap();
        let started = Instant::now();
        let summary = archive.index(&config, &|_, _| {}).unwrap();
        times.push(started.elapsed());
        assert_eq!(summary.indexed, 1);
    }
    times.sort();
    println!(
        "| re-index after touching one file (median of 15) | {} ms |",
        ms(times[7])
    );

    // One file through the path the server uses for a saved file.
    let mut times = Vec::new();
    for round in 0..15 {
        let mut text = std::fs::read_to_string(&target).unwrap();
        text.push_str(&format!("\npub fn saved_{round}() {{}}\n"));
        std::fs::write(&target, text).unwrap();
        let started = Instant::now();
        archive
            .index_paths(std::slice::from_ref(&target), &config)
            .unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "| re-index one saved file (`index_paths`, median of 15) | {} ms |",
        ms(times[7])
    );

    // Grow the archive past 100,000 chunks with more files, then time searches.
    let mut chunks_now = chunks;
    let mut batch = 0;
    while chunks_now < 100_000 {
        let more = ws.path().join(format!("more{batch}"));
        generate(&more, 1000, 25 * 1024);
        archive.index(&config, &|_, _| {}).unwrap();
        chunks_now = archive.counts().unwrap().1;
        batch += 1;
    }
    // Common words (in a third of all names) and rarer ones, whole and half-typed.
    let queries = [
        "buffer",
        "cursor index",
        "readBuffer",
        "TotalCache",
        "Entry",
        "limit offset",
        "value_3",
        "Query",
        "kalomir",
        "zentorba",
        "Velquin",
        "drafe",
        "gulho_ix",
        "nepra",
        "rusil",
        "tawy",
    ];
    let mut times = Vec::new();
    for round in 0..20 {
        for q in queries {
            // Every other round, the query as it is being typed: its last two characters missing.
            let text = if round % 2 == 0 {
                q.to_string()
            } else {
                q[..q.len() - 2].to_string()
            };
            let query = SearchQuery {
                text,
                limit: 20,
                kinds: None,
            };
            let started = Instant::now();
            let hits = archive.search(&query).unwrap();
            times.push(started.elapsed());
            std::hint::black_box(hits);
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "| search over {chunks_now} chunks ({} queries) | p50 {} ms, p95 {} ms, p99 {} ms, max {} ms |",
        times.len(),
        ms(p(0.5)),
        ms(p(0.95)),
        ms(p(0.99)),
        ms(*times.last().unwrap())
    );

    // Context assembly for positions in a 2.4 MB file, over this archive.
    let big = ws.path().join("crate0/src/big.rs");
    std::fs::write(&big, common::rust(2400 * 1024, 99)).unwrap();
    archive
        .index_paths(std::slice::from_ref(&big), &config)
        .unwrap();
    let text = ropey::Rope::from_str(&std::fs::read_to_string(&big).unwrap());
    let chunks =
        strata::documents::chunk_text(&text, Some(strata::syntax::Language::Rust), &config.chunk);
    let workspace = strata::context::ArchiveWorkspace::new(&archive, config, Default::default());
    let tokenizer = strata::context::Tokenizer::new(strata::context::Encoding::default());
    tokenizer.warm_up();
    let mut times = Vec::new();
    for k in 0..60 {
        let at = text.len_bytes() * (2 * k + 1) / 120;
        let at = text.char_to_byte(text.byte_to_char(at));
        let request = strata::context::Request::at("crate0/src/big.rs", &text, &chunks, at..at);
        let started = Instant::now();
        let pack = strata::context::assemble(&request, &workspace, &tokenizer);
        times.push(started.elapsed());
        std::hint::black_box(pack);
    }
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "| context pack for a position in a 2.4 MB file ({} chunks in it, {chunks_now} in the archive), 60 positions | p50 {} ms, p95 {} ms, p99 {} ms, max {} ms |",
        chunks.len(),
        ms(p(0.5)),
        ms(p(0.95)),
        ms(p(0.99)),
        ms(*times.last().unwrap())
    );
}
