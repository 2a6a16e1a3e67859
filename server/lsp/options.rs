//! `initializationOptions`: every key an editor may send at `initialize`, declared once here with
//! its default, and read with serde like any other layer of configuration. `context` is the
//! `[context]` table of the configuration (handed to it as one more editor layer, under
//! `config`), `config` is the editor's layer itself; the rest (feature switches, chunk
//! thresholds, the cache directory, indexing threads) only the server reads.
//!
//! A bad value or an unknown key never loses the rest: it is left out with a warning naming it,
//! and its default is kept. The README and `docs/lsp-extensions.md` document these keys; a test
//! holds the documents to the declarations.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::chunks::ChunkConfig;
use crate::llm::config::ContextConfig;

/// What the editor may send as `initializationOptions`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct InitializationOptions {
    /// Serve `textDocument/documentSymbol` (not advertised when false).
    pub document_symbols: bool,
    /// Serve `textDocument/foldingRange` (not advertised when false).
    pub folding_ranges: bool,
    /// Chunk thresholds, for documents opened after `initialize`.
    pub chunks: ChunkOptions,
    /// The directory for the workspace archive and the gateway's database (default: as for the
    /// CLI).
    pub cache_dir: Option<PathBuf>,
    /// Threads that parse files while indexing, 1–64 (default: all cores but one).
    #[serde(deserialize_with = "positive_or_none")]
    pub index_threads: Option<usize>,
    /// Tier budgets and the tokenizer: the configuration's `[context]`, as an editor layer.
    pub context: ContextConfig,
    /// The editor's layer of the configuration, in the shape of `config.toml`.
    pub config: Option<Value>,
}

impl Default for InitializationOptions {
    fn default() -> Self {
        InitializationOptions {
            document_symbols: true,
            folding_ranges: true,
            chunks: ChunkOptions::default(),
            cache_dir: None,
            index_threads: None,
            context: ContextConfig::default(),
            config: None,
        }
    }
}

/// `initializationOptions.chunks`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct ChunkOptions {
    /// A chunk larger than this without child chunks is cut into parts; groups stay under it.
    #[serde(deserialize_with = "positive")]
    pub max_chunk_bytes: usize,
    /// Lines per window for text that gets line windows.
    #[serde(deserialize_with = "positive")]
    pub window_lines: usize,
    /// Larger files are not parsed; they get line windows.
    #[serde(deserialize_with = "positive")]
    pub max_parse_bytes: usize,
    /// Files with longer average lines (minified, generated) get line windows.
    #[serde(deserialize_with = "positive")]
    pub max_average_line_bytes: usize,
    /// A parse running longer is abandoned; that stretch gets line windows.
    #[serde(deserialize_with = "positive")]
    pub parse_timeout_ms: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        let config = ChunkConfig::default();
        ChunkOptions {
            max_chunk_bytes: config.max_chunk_bytes,
            window_lines: config.window_lines,
            max_parse_bytes: config.parse.max_parse_bytes,
            max_average_line_bytes: config.parse.max_average_line_bytes,
            parse_timeout_ms: config.parse.parse_timeout.as_millis() as usize,
        }
    }
}

impl ChunkOptions {
    /// The chunking configuration, each value kept within sane bounds (a huge one must not
    /// overflow anything).
    pub fn config(&self) -> ChunkConfig {
        let mut config = ChunkConfig {
            max_chunk_bytes: self.max_chunk_bytes.clamp(64, 1 << 24),
            window_lines: self.window_lines.min(1 << 20),
            ..ChunkConfig::default()
        };
        config.parse.max_parse_bytes = self.max_parse_bytes.min(1 << 30);
        config.parse.max_average_line_bytes = self.max_average_line_bytes.min(1 << 24);
        config.parse.parse_timeout =
            Duration::from_millis(self.parse_timeout_ms.min(600_000) as u64);
        config
    }
}

impl InitializationOptions {
    /// Indexing threads, within 1–64.
    pub fn index_threads(&self) -> Option<usize> {
        self.index_threads.map(|n| n.clamp(1, 64))
    }

    /// Reads the options. What does not fit the declarations (an unknown key, a value of the
    /// wrong kind) is left out and described in the returned warnings; everything else applies.
    pub fn parse(value: Option<Value>) -> (InitializationOptions, Vec<String>) {
        let mut problems = Vec::new();
        let mut object = match value {
            None | Some(Value::Null) => return (InitializationOptions::default(), problems),
            Some(Value::Object(object)) => object,
            Some(other) => {
                problems.push(format!(
                    "initializationOptions must be an object, got {other}; using the defaults"
                ));
                return (InitializationOptions::default(), problems);
            }
        };
        prune(&mut object, &[], &mut problems);
        let options = serde_json::from_value(Value::Object(object)).unwrap_or_else(|e| {
            // Every key that remains was accepted alone.
            problems.push(format!("initializationOptions: {e}; using the defaults"));
            InitializationOptions::default()
        });
        (options, problems)
    }
}

/// Whether `value`, placed at `path` in an otherwise empty object, is accepted.
fn accepted(path: &[&str], value: &Value) -> Result<(), String> {
    let mut nested = value.clone();
    for key in path.iter().rev() {
        nested = Value::Object(Map::from_iter([(key.to_string(), nested)]));
    }
    serde_json::from_value::<InitializationOptions>(nested)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Removes from `object` (found at `path`) each key the declarations refuse, one warning each;
/// an object is pruned key by key rather than dropped whole.
fn prune(object: &mut Map<String, Value>, path: &[&str], problems: &mut Vec<String>) {
    let keys: Vec<String> = object.keys().cloned().collect();
    for key in keys {
        let mut at = path.to_vec();
        at.push(&key);
        let Err(error) = accepted(&at, &object[&key]) else {
            continue;
        };
        let place = std::iter::once("initializationOptions")
            .chain(path.iter().copied())
            .collect::<Vec<_>>()
            .join(".");
        if error.starts_with(&format!("unknown field `{key}`")) {
            problems.push(format!("{place}: {error}; ignored"));
            object.remove(&key);
            continue;
        }
        if let Some(Value::Object(inner)) = object.get_mut(&key) {
            prune(inner, &at, problems);
            if accepted(&at, &object[&key]).is_ok() {
                continue;
            }
        }
        let value = object.remove(&key).unwrap_or_default();
        let error = if error.starts_with("must") {
            format!("{key} {error}")
        } else {
            format!("{key}: {error}")
        };
        problems.push(format!(
            "{place}: {error}, got {value}; keeping the default"
        ));
    }
}

fn positive<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = u64::deserialize(d)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| serde::de::Error::custom("must be a positive integer"))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn positive_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    positive(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bad_value_or_unknown_key_is_reported_and_the_rest_applies() {
        let (options, problems) = InitializationOptions::parse(Some(json!({
            "documentSymbols": false,
            "foldingRange": false,
            "chunks": {"maxChunkBytes": 256, "windowLines": "ten", "tabWidth": 4},
            "context": {"working": 300, "immediate": 0, "encoding": "p50k"},
            "indexThreads": 2,
        })));
        assert!(!options.document_symbols);
        assert!(options.folding_ranges);
        assert_eq!(options.chunks.max_chunk_bytes, 256);
        assert_eq!(
            options.chunks.window_lines,
            ChunkOptions::default().window_lines
        );
        assert_eq!(options.context.working, Some(300));
        assert_eq!(options.context.immediate, None);
        assert_eq!(options.context.encoding, None);
        assert_eq!(options.index_threads(), Some(2));
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(has("`foldingRange`"), "{problems:#?}");
        assert!(has("`tabWidth`"), "{problems:#?}");
        assert!(
            has(
                "initializationOptions.chunks: windowLines must be a positive integer, got \"ten\""
            ),
            "{problems:#?}"
        );
        assert!(has("immediate must be a number of tokens"), "{problems:#?}");
        assert!(has("encoding must be"), "{problems:#?}");
    }

    #[test]
    fn no_options_are_the_defaults() {
        for value in [None, Some(Value::Null), Some(json!({}))] {
            assert_eq!(
                InitializationOptions::parse(value),
                (InitializationOptions::default(), Vec::new())
            );
        }
        let (options, problems) = InitializationOptions::parse(Some(json!([1])));
        assert_eq!(options, InitializationOptions::default());
        assert_eq!(problems.len(), 1);
    }

    /// `|`-separated rows of the table under `heading` in `file`: (key, default) for rows whose
    /// first cell is a code span.
    fn documented(file: &str, heading: &str, default_column: usize) -> Vec<(String, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let section = text
            .split("\n## ")
            .find(|s| s.starts_with(heading))
            .unwrap_or_else(|| panic!("{file} has no section {heading}"));
        section
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
                let key = cells.first()?.trim().strip_prefix('`')?.strip_suffix('`')?;
                Some((key.to_owned(), cells.get(default_column)?.trim().to_owned()))
            })
            .collect()
    }

    /// The declared keys (nested ones dotted) and their defaults; `context`'s are the
    /// configuration's, which leave them to the budgets' and the tokenizer's defaults.
    fn declared() -> Vec<(String, Value)> {
        let mut value = serde_json::to_value(InitializationOptions::default()).unwrap();
        let budgets = crate::context::Budgets::default();
        value["context"] = json!({
            "immediate": budgets.immediate,
            "working": budgets.working,
            "background": budgets.background,
            "encoding": crate::context::Encoding::default().name(),
        });
        let mut out = Vec::new();
        for (key, value) in value.as_object().unwrap() {
            match value {
                Value::Object(inner) => {
                    out.extend(inner.iter().map(|(k, v)| (format!("{key}.{k}"), v.clone())))
                }
                other => out.push((key.clone(), other.clone())),
            }
        }
        out
    }

    #[test]
    fn the_documents_describe_every_declared_option_with_its_default() {
        let mut rows = documented("docs/lsp-extensions.md", "`initializationOptions`", 2);
        rows.extend(documented("README.md", "Editor settings", 1));
        let literal = |cell: &str| serde_json::from_str::<Value>(cell.trim_matches('`')).ok();
        let declared = declared();
        for (key, default) in &declared {
            let docs: Vec<&String> = rows
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, d)| d)
                .collect();
            assert!(
                !docs.is_empty(),
                "`{key}` is declared but documented nowhere"
            );
            for doc in docs {
                match literal(doc) {
                    Some(documented) => assert_eq!(&documented, default, "the default of `{key}`"),
                    None => assert!(
                        default.is_null(),
                        "`{key}`: documented {doc:?}, declared {default}"
                    ),
                }
            }
        }
        // Every documented key is declared (a value of the documented kind is accepted).
        for (key, _) in &rows {
            let sample = declared
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_null())
                .unwrap_or_else(|| match key.as_str() {
                    "cacheDir" => json!("/tmp/cache"),
                    "indexThreads" => json!(2),
                    _ => json!({}),
                });
            let mut value = sample;
            for part in key.rsplit('.') {
                value = json!({ part: value });
            }
            let (_, problems) = InitializationOptions::parse(Some(value));
            assert!(
                problems.is_empty(),
                "`{key}` is documented but {problems:?}"
            );
        }
    }
}
