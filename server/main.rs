//! The `strata` command: `serve` speaks LSP on stdio; the other commands run the same code paths
//! from a terminal. Nothing but LSP messages goes to stdout while serving; logs go to stderr.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use cli::{Output, report};
use strata::chunks::ChunkConfig;

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
    /// and token counts, then the rendered text; with --agent, the exact prompt that agent sends.
    /// Indexes the workspace first (no model, no server).
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
        /// Show the pack this agent's run uses and the prompt it would send, byte for byte.
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
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

/// A command whose reader went away (`strata context … | head`) ends quietly: `print!` panics
/// when stdout is a closed pipe, and that panic is the reader's doing, not a bug to report.
fn quiet_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        report(info);
    }));
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
    quiet_on_closed_stdout();
    match cli.command {
        Command::Serve { stdio: _ } => {
            // A long-running server on a machine it shares: one allocator arena per core.
            strata::resources::memory::limit_arenas(strata::resources::cores());
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                // The blocking pool runs short jobs (packs, prompt builds, SQLite reads; parses
                // and indexing have threads of their own): more threads than cores would not finish them sooner,
                // and each thread keeps allocator pages of its own (two more while typing into
                // lib.dom.d.ts cost 9 MiB). Its threads end after a short idle spell, their
                // stacks and allocator pages with them.
                .max_blocking_threads(strata::resources::cores().max(2))
                .thread_keep_alive(std::time::Duration::from_secs(2))
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
            report(
                cli::index::index(
                    path,
                    cli.cache_dir.as_deref(),
                    output,
                    threads,
                    cli.config.as_deref(),
                )
                .map(|_| ()),
            )
        }
        Command::Search {
            query,
            json,
            limit,
            kinds,
        } => report(cli::search::search(
            &query,
            json,
            limit,
            kinds,
            cli.config.as_deref(),
            cli.cache_dir.as_deref(),
        )),
        Command::Context {
            position,
            query,
            json,
            budgets,
            encoding,
            agent,
        } => report(cli::context::context(
            cli::context::Args {
                position: &position,
                query: query.as_deref(),
                json,
                budgets: budgets.as_deref(),
                encoding: &encoding,
                agent: agent.as_deref(),
            },
            cli.config.as_deref(),
            cli.cache_dir.as_deref(),
        )),
        Command::Ask {
            agent,
            position,
            query,
        } => report(cli::ask::ask(
            &agent,
            &position,
            query.as_deref(),
            cli.config.as_deref(),
            cli.cache_dir.as_deref(),
        )),
        Command::Audit { json, limit, here } => report(cli::audit::audit(
            json,
            limit,
            here,
            cli.cache_dir.as_deref(),
        )),
        Command::Chunks { file, json } => match cli::chunks::chunks(&file, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strata: {}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}
