//! The `strata` command: `serve` speaks LSP on stdio; the other commands run the same code paths
//! from a terminal. Nothing but LSP messages goes to stdout while serving; logs go to stderr.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use ropey::Rope;
use tracing_subscriber::EnvFilter;

use strata::archive::{Archive, IgnorePatterns, IndexConfig, SearchQuery};
use strata::chunks::{ChunkConfig, render_table};
use strata::context::{
    ArchiveWorkspace, Budgets, Encoding, Request, Tokenizer, assemble, is_secret_file,
};
use strata::documents::chunk_text;
use strata::llm::Config;
use strata::syntax::Language;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "A language server that gives editors LLM agents which see the right code, fast."
)]
struct Cli {
    /// Where the workspace databases live (default: $STRATA_CACHE_DIR, else $XDG_CACHE_HOME/strata).
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// The user's config file (default: $STRATA_CONFIG, else $XDG_CONFIG_HOME/strata/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Speak the Language Server Protocol on stdin/stdout.
    Serve {
        /// Accepted for clients that pass it (vscode-languageclient); stdio is the only transport.
        #[arg(long)]
        stdio: bool,
    },
    /// Index the workspace at PATH (default: the one around the current directory) into its archive.
    Index {
        path: Option<PathBuf>,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Parsing threads (default: every core; the server leaves one to the editor).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Search the archive of the workspace around the current directory (indexing what changed first).
    Search {
        query: String,
        /// One JSON object per hit.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only chunks of this kind (function, method, struct, class…); may be repeated.
        #[arg(long = "kind")]
        kinds: Vec<String>,
    },
    /// Show the context an agent would send for a position: each tier, its items, their scores
    /// and token counts, then the rendered text. Indexes the workspace first (no model, no server).
    Context {
        /// FILE:LINE[:COL], 1-based.
        position: String,
        /// The question the context is for (searches the archive).
        #[arg(long)]
        query: Option<String>,
        /// The pack as JSON.
        #[arg(long)]
        json: bool,
        /// Tier budgets in tokens: immediate,working,background.
        #[arg(long, value_name = "I,W,B")]
        budgets: Option<String>,
        /// The tokenizer: o200k_base (default) or cl100k_base.
        #[arg(long, default_value = "o200k_base")]
        encoding: String,
    },
    /// Run an agent on the code at a position and stream its answer (the same path as the
    /// editor's code actions; edits are printed, not applied).
    Ask {
        /// explain, document, fix, tests, refactor, review, summarize, or one from your config.
        agent: String,
        /// FILE:LINE[:COL], 1-based.
        position: String,
        /// A question or instruction for the agent.
        #[arg(long)]
        query: Option<String>,
    },
    /// What went to models: one line per call (when, agent, provider and model, cache, bytes,
    /// tokens, files) from the local egress audit — never the content — and the totals of the
    /// calls shown.
    Audit {
        /// One JSON object per call.
        #[arg(long)]
        json: bool,
        /// The most recent calls to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only calls made for the workspace around the current directory.
        #[arg(long)]
        here: bool,
    },
    /// Print the semantic chunks of a file.
    Chunks {
        file: PathBuf,
        /// One JSON object per chunk, as `strata/chunks` returns them (byte ranges, 1-based lines).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("STRATA_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { stdio: _ } => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("strata: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(strata::lsp::serve_stdio(ChunkConfig::default(), cli.config));
            // Background work (indexing) must not hold up the exit the client asked for.
            runtime.shutdown_timeout(std::time::Duration::from_millis(200));
            ExitCode::SUCCESS
        }
        Command::Index {
            path,
            json,
            threads,
        } => {
            let output = if json { Output::Json } else { Output::Summary };
            let config = cli.config.as_deref();
            report(index(path, cli.cache_dir.as_deref(), output, threads, config).map(|_| ()))
        }
        Command::Search {
            query,
            json,
            limit,
            kinds,
        } => report(search(
            &query,
            json,
            limit,
            kinds,
            cli.cache_dir.as_deref(),
            cli.config.as_deref(),
        )),
        Command::Context {
            position,
            query,
            json,
            budgets,
            encoding,
        } => report(context(
            &position,
            query.as_deref(),
            json,
            budgets.as_deref(),
            &encoding,
            cli.cache_dir.as_deref(),
            cli.config.as_deref(),
        )),
        Command::Ask {
            agent,
            position,
            query,
        } => report(ask(
            &agent,
            &position,
            query.as_deref(),
            cli.config.as_deref(),
            cli.cache_dir.as_deref(),
        )),
        Command::Audit { json, limit, here } => {
            report(audit(json, limit, here, cli.cache_dir.as_deref()))
        }
        Command::Chunks { file, json } => match chunks(&file, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strata: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn audit(json: bool, limit: usize, here: bool, cache_dir: Option<&Path>) -> Result<(), String> {
    use strata::llm::store::utc;
    let dir = strata::archive::cache_base(cache_dir);
    let (store, warning) = strata::llm::Store::open(&dir, u64::MAX).map_err(|e| e.to_string())?;
    if let Some(warning) = warning {
        eprintln!("strata: {warning}");
    }
    let workspace = if here {
        let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
        Some(workspace_root(&cwd)?.display().to_string())
    } else {
        None
    };
    let rows = store.recent_audit(limit, 0, workspace.as_deref());
    if json {
        for row in &rows {
            println!("{}", serde_json::to_string(row).map_err(|e| e.to_string())?);
        }
        return Ok(());
    }
    if rows.is_empty() {
        println!("No calls recorded in {}.", store.path().display());
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<24} {:<9} {:<9} {:>8} {:>8} {:>7} {:>7}  files",
        "time (UTC)",
        "agent",
        "provider/model",
        "cache",
        "outcome",
        "sent",
        "received",
        "tok in",
        "tok out"
    );
    for r in &rows {
        let target = match (&r.provider, &r.model) {
            (Some(p), Some(m)) => format!("{p}/{m}"),
            (Some(p), None) => p.clone(),
            _ => "-".into(),
        };
        let files = match r.files.len() {
            0 => "-".to_owned(),
            1..=3 => r.files.join(", "),
            n => format!("{}, … ({n} files)", r.files[..2].join(", ")),
        };
        println!(
            "{:<20} {:<10} {:<24} {:<9} {:<9} {:>8} {:>8} {:>7} {:>7}  {files}",
            utc(r.at_ms),
            r.agent,
            target,
            r.cache,
            r.outcome,
            r.bytes_out,
            r.bytes_in,
            r.tokens_in,
            r.tokens_out,
        );
    }
    let upstream = rows
        .iter()
        .filter(|r| r.cache == "miss" && r.outcome != "cancelled")
        .count();
    let tokens: u64 = rows.iter().map(|r| r.tokens_in + r.tokens_out).sum();
    let sent: u64 = rows.iter().map(|r| r.bytes_out).sum();
    println!(
        "{} calls shown: {upstream} went to a model ({sent} bytes sent, {tokens} tokens), the rest were answered locally. \
         Audit: {}",
        rows.len(),
        store.path().display()
    );
    Ok(())
}

/// Where a pack was made: the document and the code at the position.
struct PackedAt {
    rel: String,
    root: PathBuf,
    withheld: bool,
    language: Option<Language>,
    /// The innermost chunk at the position (its line when no chunk holds it).
    selection: String,
}

/// The context pack for FILE:LINE[:COL], after bringing the workspace's archive up to date.
/// `budgets`: the run's own (an agent's, or `--budgets`), over the configuration's `[context]`.
fn pack_at(
    position: &str,
    query: Option<&str>,
    budgets: Option<[Option<u32>; 3]>,
    encoding: Encoding,
    cache_dir: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<(strata::context::ContextPack, PackedAt), String> {
    let (file, line, col) = parse_position(position)?;
    let abs = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let root = workspace_root(abs.parent().unwrap_or(Path::new(".")))?;
    let (archive, config) = index(
        Some(root.clone()),
        cache_dir,
        Output::Quiet,
        None,
        config_file,
    )?;
    let budgets = Budgets::resolve(budgets, config.context.tiers());
    let rel = strata::archive::relative(&root, &abs).unwrap_or_else(|| abs.display().to_string());
    let source = std::fs::read(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
    let text = Rope::from_str(&String::from_utf8_lossy(&source));
    if line >= text.len_lines() {
        return Err(format!("{} has {} lines", file.display(), text.len_lines()));
    }
    let line_start = text.line_to_char(line);
    let line_chars = text.line(line).len_chars();
    let cursor = text.char_to_byte(line_start + col.min(line_chars));
    let config = index_config(&config);
    let workspace = ArchiveWorkspace::new(&archive, config.clone(), Default::default());
    let tokenizer = Tokenizer::new(encoding);
    let withheld = is_secret_file(&abs) || !strata::archive::admitted(&root, &abs, &config);
    let language = Language::from_path(&abs);
    let chunks = if withheld {
        Vec::new()
    } else {
        chunk_text(&text, language, &config.chunk).to_vec()
    };
    let request = Request {
        path: &rel,
        text: &text,
        chunks: &chunks,
        selection: cursor..cursor,
        query,
        diagnostics: &[],
        messages: &[],
        recent: &[],
        summary: None,
        budgets,
        withheld,
    };
    let pack = assemble(&request, &workspace, &tokenizer);
    let target = chunks
        .iter()
        .filter(|c| c.range.start <= cursor && cursor <= c.range.end)
        .min_by_key(|c| c.range.len())
        .map(|c| c.range.clone())
        .unwrap_or_else(|| {
            let start = text.line_to_byte(line);
            let end = text.line_to_byte((line + 1).min(text.len_lines()));
            start..end
        });
    Ok((
        pack,
        PackedAt {
            rel,
            root,
            withheld,
            language,
            selection: text.byte_slice(target).to_string(),
        },
    ))
}

/// Runs an agent from the terminal through the same path as `strata.runAgent`: context pack,
/// prompt, gateway (cache, limits, audit); streams the answer to stdout.
fn ask(
    agent: &str,
    position: &str,
    query: Option<&str>,
    config_file: Option<&Path>,
    cache_dir: Option<&Path>,
) -> Result<(), String> {
    use std::io::Write;
    use strata::llm::{Event, Gateway, Priority, Store, SystemClock};

    let file = parse_position(position)?.0;
    let abs = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let root = workspace_root(abs.parent().unwrap_or(Path::new(".")))?;
    // Its warnings are printed when the workspace is indexed, below.
    let (config, warnings) = strata::llm::config::load(config_file, Some(&root));
    let declared = strata::agents::declared(&config);
    let Some(agent) = declared.iter().find(|a| a.name == agent) else {
        for warning in warnings {
            eprintln!("strata: config: {warning}");
        }
        let names: Vec<&str> = declared.iter().map(|a| a.name.as_str()).collect();
        return Err(format!(
            "no agent named `{agent}`; there are {}",
            names.join(", ")
        ));
    };
    let (pack, at) = pack_at(
        position,
        query,
        agent.budgets,
        Encoding::default(),
        cache_dir,
        config_file,
    )?;
    if at.withheld {
        return Err(format!(
            "{} is ignored or looks like a secrets file: none of it is sent to a model",
            at.rel
        ));
    }
    let rendered = pack.render();
    let inputs = strata::agents::Inputs {
        path: &at.rel,
        language: at.language.map_or("text", |l| l.name()),
        selection: &at.selection,
        context: &rendered,
        question: query,
        diagnostics: &[],
        steps: "",
    };
    let request = strata::agents::call_request(agent, &inputs, &pack, Priority::OnDemand);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let max_bytes = config.cache.disk_mb.saturating_mul(1 << 20);
    let gateway = Gateway::new(config, std::sync::Arc::new(SystemClock));
    gateway.set_workspace(Some(at.root.display().to_string()));
    let store = match Store::open(&strata::archive::cache_base(cache_dir), max_bytes) {
        Ok((store, _)) => {
            gateway.attach_store(store.clone());
            Some(store)
        }
        Err(e) => {
            eprintln!("strata: answers are not cached on disk and calls are not audited: {e}");
            None
        }
    };
    let result = runtime.block_on(async {
        let mut reply = gateway.call(request).map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        let mut streamed = false;
        while let Some(event) = reply.next().await {
            match event {
                Event::Text(text) => {
                    streamed = true;
                    let _ = stdout.write_all(text.as_bytes());
                    let _ = stdout.flush();
                }
                Event::Done(answer) => {
                    if !streamed {
                        let _ = stdout.write_all(answer.text.as_bytes());
                    }
                    println!();
                    eprintln!(
                        "— {}/{} ({:?}), {} tokens in, {} out{}",
                        answer.provider,
                        answer.model,
                        answer.source,
                        answer.input_tokens,
                        answer.output_tokens,
                        if answer.truncated {
                            ", cut at max_tokens"
                        } else {
                            ""
                        }
                    );
                    return Ok(());
                }
                Event::Failed(e) => return Err(e.to_string()),
                Event::Status(_) => {}
            }
        }
        Err("the call ended without an answer".to_owned())
    });
    if let Some(store) = store {
        store.flush();
    }
    result
}

fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace around `start`: the nearest directory holding `.git`, else `start` itself.
fn workspace_root(start: &Path) -> Result<PathBuf, String> {
    let start = start
        .canonicalize()
        .map_err(|e| format!("{}: {e}", start.display()))?;
    Ok(start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&start)
        .to_path_buf())
}

#[derive(Clone, Copy, PartialEq)]
enum Output {
    Quiet,
    Summary,
    Json,
}

/// The index settings of a configuration (its `ignore` patterns).
fn index_config(config: &Config) -> IndexConfig {
    let (ignore, _) = IgnorePatterns::new(&config.ignore); // each was checked as it was read
    IndexConfig {
        ignore,
        ..IndexConfig::default()
    }
}

/// Indexes the workspace; prints a progress bar on a terminal and a summary. Returns the archive
/// and the workspace's configuration (its problems printed).
fn index(
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

fn search(
    query: &str,
    json: bool,
    limit: usize,
    kinds: Vec<String>,
    cache_dir: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<(), String> {
    let (archive, _) = index(None, cache_dir, Output::Quiet, None, config_file)?;
    let query = SearchQuery {
        text: query.to_string(),
        limit,
        kinds: (!kinds.is_empty()).then_some(kinds),
    };
    let hits = archive.search(&query).map_err(|e| e.to_string())?;
    for hit in &hits {
        if json {
            let line = serde_json::json!({
                "path": hit.path,
                "line": hit.start.line + 1,
                "column": hit.start.col32 + 1,
                "endLine": hit.end.line + 1,
                "id": hit.chunk_id,
                "kind": hit.kind,
                "name": hit.name,
                "qualifiedName": hit.qualified,
                "signature": hit.signature,
                "score": (hit.score * 1000.0).round() / 1000.0,
            });
            println!("{line}");
        } else {
            println!(
                "{}:{}:{}  {:<9} {}  ({:.2})\n    {}",
                hit.path,
                hit.start.line + 1,
                hit.start.col32 + 1,
                hit.kind,
                hit.qualified,
                hit.score,
                hit.signature.lines().next().unwrap_or("")
            );
        }
    }
    if hits.is_empty() && !json {
        eprintln!("no chunk matches {:?}", query.text);
    }
    Ok(())
}

/// `FILE:LINE[:COL]` → (file, zero-based line, zero-based column in characters).
fn parse_position(position: &str) -> Result<(PathBuf, usize, usize), String> {
    let bad = || format!("{position:?} is not FILE:LINE[:COL] (1-based)");
    let mut parts = position.rsplitn(3, ':').collect::<Vec<_>>();
    parts.reverse();
    let number = |s: &str| s.parse::<usize>().ok().filter(|&n| n > 0).map(|n| n - 1);
    match parts.as_slice() {
        [file, line, col] if number(line).is_some() && number(col).is_some() => Ok((
            PathBuf::from(file),
            number(line).ok_or_else(bad)?,
            number(col).ok_or_else(bad)?,
        )),
        [file, line, col] => {
            // A path with a colon in it, and no column.
            let file = format!("{file}:{line}");
            Ok((PathBuf::from(file), number(col).ok_or_else(bad)?, 0))
        }
        [file, line] => Ok((PathBuf::from(file), number(line).ok_or_else(bad)?, 0)),
        _ => Err(bad()),
    }
}

fn context(
    position: &str,
    query: Option<&str>,
    json: bool,
    budgets: Option<&str>,
    encoding: &str,
    cache_dir: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<(), String> {
    let budgets = match budgets {
        None => None,
        Some(spec) => {
            let n: Vec<u32> = spec
                .split(',')
                .map(|p| p.trim().parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("--budgets {spec:?}: {e}"))?;
            let [immediate, working, background] = n[..] else {
                return Err(format!(
                    "--budgets {spec:?}: give three numbers, immediate,working,background"
                ));
            };
            Some([Some(immediate), Some(working), Some(background)])
        }
    };
    let encoding = Encoding::from_name(encoding)
        .ok_or_else(|| format!("--encoding {encoding:?}: use o200k_base or cl100k_base"))?;
    let (pack, _) = pack_at(position, query, budgets, encoding, cache_dir, config_file)?;
    if json {
        let mut value = serde_json::to_value(&pack).map_err(|e| e.to_string())?;
        value["rendered"] = serde_json::Value::String(pack.render());
        println!("{value}");
        return Ok(());
    }
    for note in &pack.notes {
        println!("note: {note}");
    }
    for tier in &pack.tiers {
        let budget = if tier.budget == 0 {
            "∞".to_string()
        } else {
            tier.budget.to_string()
        };
        println!(
            "\n{} — {} of {budget} tokens, {} items, {} dropped",
            tier.tier.name(),
            tier.tokens,
            tier.items.len(),
            tier.dropped.len()
        );
        for item in &tier.items {
            let lines = item
                .lines
                .map(|(a, b)| format!(":{}-{}", a + 1, b + 1))
                .unwrap_or_default();
            println!(
                "  {:<9} {:>6} {:>8.2}  {}{lines}  {} {}  — {}",
                format!("{:?}", item.fidelity).to_lowercase(),
                item.tokens,
                item.score,
                item.source,
                item.kind,
                item.name,
                item.reason
            );
        }
    }
    if pack.redactions > 0 {
        println!("\n{} secrets redacted", pack.redactions);
    }
    println!(
        "\n--- rendered ({} encoding) ---\n{}",
        pack.encoding,
        pack.render()
    );
    Ok(())
}

fn chunks(file: &PathBuf, json: bool) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let source = String::from_utf8_lossy(&bytes);
    let text = Rope::from_str(&source);
    let config = ChunkConfig::default();
    let language = Language::from_path(file);
    let chunks = chunk_text(&text, language, &config).to_vec();
    if json {
        for c in &chunks {
            let (first, last) = c.lines(&text);
            let line = serde_json::json!({
                "id": &*c.id,
                "kind": c.kind.as_str(),
                "name": &*c.name,
                "path": &*c.path,
                "parent": c.parent.map(|p| &*chunks[p].id),
                "lines": [first + 1, last + 1],
                "byteRange": [c.range.start, c.range.end],
                "hash": format!("{:016x}", c.hash),
            });
            println!("{line}");
        }
    } else {
        let language = language.map_or("plain text (line windows)", Language::name);
        println!(
            "{}: {language}, {} bytes, {} chunks",
            file.display(),
            text.len_bytes(),
            chunks.len()
        );
        println!("{:>11} {:>7}  {:<9} name", "lines", "bytes", "kind");
        print!("{}", render_table(&chunks, &text));
    }
    Ok(())
}
