//! `strata index`: brings the workspace's archive up to date, with a progress bar on a terminal and
//! a summary (files, chunks, MB, seconds, MB/s); the other commands call it quietly first.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use strata::archive::{Archive, IgnorePatterns, IndexConfig};
use strata::llm::Config;

use super::{Output, workspace_root};

/// What the archive admits under `config`: its `ignore` patterns on top of the defaults.
pub fn index_config(config: &Config) -> IndexConfig {
    let (ignore, _) = IgnorePatterns::new(&config.ignore); // each was checked as it was read
    IndexConfig {
        ignore,
        ..IndexConfig::default()
    }
}

/// Indexes the workspace; prints a progress bar on a terminal and a summary. Returns the archive
/// and the workspace's configuration (its problems printed).
pub fn index(
    path: Option<PathBuf>,
    cache_dir: Option<&Path>,
    output: Output,
    threads: Option<usize>,
    config_file: Option<&Path>,
) -> Result<(Archive, Config), String> {
    let start = path.unwrap_or_else(|| PathBuf::from("."));
    let root = workspace_root(&start)?;
    let (config, warnings) = strata::llm::config::load(config_file, Some(&root));
    for warning in warnings {
        eprintln!("strata: config: {warning}");
    }
    let (archive, warning) = Archive::open(&root, cache_dir).map_err(|e| e.to_string())?;
    if let Some(warning) = warning {
        eprintln!("strata: warning: {warning}");
    }
    let terminal = output == Output::Summary && std::io::stderr().is_terminal();
    let last = std::sync::Mutex::new(Instant::now());
    let progress = |done: usize, total: usize| {
        if !terminal {
            return;
        }
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if done == total || last.elapsed().as_millis() >= 100 {
            *last = Instant::now();
            let width = 30;
            let filled = width * done / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} files",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        }
    };
    let result = archive
        .index(
            &IndexConfig {
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                    .max(1),
                ..index_config(&config)
            },
            &progress,
        )
        .map_err(|e| e.to_string())?;
    if terminal {
        eprintln!();
    }
    if let Some(error) = archive.last_error() {
        return Err(error);
    }
    let (files, chunks) = archive.counts().map_err(|e| e.to_string())?;
    if output == Output::Json {
        let summary = serde_json::json!({
            "root": root.display().to_string(),
            "archive": archive.path().display().to_string(),
            "files": result.files,
            "indexed": result.indexed,
            "unchanged": result.unchanged,
            "removed": result.removed,
            "skipped": result.skipped,
            "chunksWritten": result.chunks,
            "bytes": result.bytes,
            "seconds": result.seconds,
            "archiveFiles": files,
            "archiveChunks": chunks,
        });
        println!("{summary}");
    }
    if output == Output::Summary {
        println!(
            "{}: {} files ({} parsed, {} unchanged, {} removed, {} skipped), {} chunks written, \
             {:.1} MB in {:.2} s ({:.1} MB/s); the archive holds {files} files, {chunks} chunks ({})",
            root.display(),
            result.files,
            result.indexed,
            result.unchanged,
            result.removed,
            result.skipped,
            result.chunks,
            result.bytes as f64 / 1e6,
            result.seconds,
            result.megabytes_per_second(),
            archive.path().display(),
        );
    }
    Ok((archive, config))
}
