//! The `strata` command: `serve` speaks LSP on stdio; the other commands run the same code paths
//! from a terminal. Nothing but LSP messages goes to stdout while serving; logs go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ropey::Rope;
use tracing_subscriber::EnvFilter;

use strata::chunks::{ChunkConfig, render_table};
use strata::documents::chunk_text;
use strata::syntax::Language;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "A language server that gives editors LLM agents which see the right code, fast."
)]
struct Cli {
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
            runtime.block_on(strata::lsp::serve_stdio(ChunkConfig::default()));
            ExitCode::SUCCESS
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
