//! The `strata` command's subcommands, one file each. Those that work on a position
//! (`context`, `ask`) open a [`Session`] over the file — the same session type, and so the same
//! pack, prompt and agent functions, as the language server — with the workspace's archive brought
//! up to date first. Output goes to stdout; problems to stderr.

pub mod ask;
pub mod audit;
pub mod chunks;
pub mod context;
pub mod index;
pub mod search;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use ropey::Rope;
use strata::chunks::ChunkConfig;
use strata::context::{Encoding, Tokenizer};
use strata::documents::{DocumentStore, Parsed};
use strata::llm::{Config, Gateway, SystemClock};
use strata::session::Session;
use strata::syntax::Language;

#[derive(Clone, Copy, PartialEq)]
pub enum Output {
    Quiet,
    Summary,
    Json,
}

/// The exit code for a command's result; the error goes to stderr.
pub fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace around `start`: the nearest directory holding `.git`, else `start` itself.
pub fn workspace_root(start: &Path) -> Result<PathBuf, String> {
    let start = start
        .canonicalize()
        .map_err(|e| format!("{}: {e}", start.display()))?;
    Ok(start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(&start)
        .to_path_buf())
}

/// `FILE:LINE[:COL]` → (file, zero-based line, zero-based column in characters).
pub fn parse_position(position: &str) -> Result<(PathBuf, usize, usize), String> {
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

/// A session over the file at a position, and where the position is in it.
pub struct Located {
    pub session: Session,
    /// The document's key in the session's store: its absolute path.
    pub key: String,
    pub parsed: Arc<Parsed>,
    /// The position as a byte offset.
    pub cursor: usize,
    pub config: Config,
    pub runtime: tokio::runtime::Runtime,
}

/// The file a CLI document key names: the key is the absolute path.
fn key_path(key: &str) -> Option<PathBuf> {
    Some(PathBuf::from(key))
}

/// Opens a session for FILE:LINE[:COL]: the configuration (user file, then the repository's),
/// the workspace's archive brought up to date, the file opened in a document store and parsed
/// as the server would.
pub fn locate(
    position: &str,
    config_file: Option<&Path>,
    cache_dir: Option<&Path>,
    encoding: Encoding,
) -> Result<Located, String> {
    let (file, line, col) = parse_position(position)?;
    let abs = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let root = workspace_root(abs.parent().unwrap_or(Path::new(".")))?;
    let (archive, config) = index::index(
        Some(root.clone()),
        cache_dir,
        Output::Quiet,
        None,
        config_file,
    )?;
    let source = std::fs::read(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
    let text = String::from_utf8_lossy(&source);
    let rope = Rope::from_str(&text);
    if line >= rope.len_lines() {
        return Err(format!("{} has {} lines", file.display(), rope.len_lines()));
    }
    let line_start = rope.line_to_char(line);
    let line_chars = rope.line(line).len_chars();
    let cursor = rope.char_to_byte(line_start + col.min(line_chars));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let store = DocumentStore::new(ChunkConfig::default());
    let key = abs.display().to_string();
    let parsed = runtime.block_on(async {
        store.open(&key, Language::from_path(&abs), 1, &text);
        store.parsed(&key).await
    });
    let parsed = parsed.ok_or_else(|| format!("{}: could not be read", abs.display()))?;
    let gateway = Gateway::new(config.clone(), Arc::new(SystemClock));
    gateway.set_workspace(Some(root.display().to_string()));
    let cell = Arc::new(OnceLock::new());
    let _ = cell.set(Arc::new(archive));
    let session = Session::new(
        store,
        cell,
        Some(root),
        index::index_config(&config),
        Arc::new(Tokenizer::new(encoding)),
        gateway,
        None,
        cache_dir,
        key_path,
    );
    Ok(Located {
        session,
        key,
        parsed,
        cursor,
        config,
        runtime,
    })
}

/// Which prompt an agent at `at` would send: its chat turn for a chat agent (the summary as the
/// history holds it when `summarize` is false), else the pack and prompt for the code at the
/// cursor.
pub fn prepare(
    at: &Located,
    agent: &strata::agents::Agent,
    question: Option<&str>,
    summarize: bool,
) -> Result<strata::session::Prepared, String> {
    let session = &at.session;
    at.runtime.block_on(async {
        if agent.output == strata::agents::Output::Chat {
            let turn = session
                .chat_turn(agent, &at.key, at.parsed.clone(), summarize, |_| async {})
                .await?;
            return Ok(turn.prepared);
        }
        session
            .prepare_async(strata::session::Task {
                agent: agent.clone(),
                key: at.key.clone(),
                target: Session::target(&at.parsed, at.cursor..at.cursor),
                parsed: at.parsed.clone(),
                question: question.map(str::to_owned),
                problems: Vec::new(),
                steps: String::new(),
            })
            .await
    })
}
