//! Test fixtures in rust-analyzer's style: a multi-file snippet with `//- /path` headers and a
//! cursor (`$0`) or a selection (`$0…$0`), parsed into files and a place, and [`MemoryWorkspace`],
//! an in-memory [`Workspace`] over the fixture's files that answers as `ArchiveWorkspace` does:
//! chunks from the real chunker, rows from the archive's own `chunk_rows`, term matching for
//! search. Test-only; it never touches the disk or the network.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use ropey::Rope;

use super::assemble::Workspace;
use super::redact::is_secret_file;
use crate::archive::symbols::{FileFacts, Symbol, SymbolKind, facts};
use crate::archive::{ChunkRow, IndexConfig, Located, chunk_rows, identifiers, split_identifier};
use crate::chunks::{ChunkKind, DocChunks};
use crate::documents::chunk_text;
use crate::syntax::Language;

/// The cursor marker; two of them make a selection.
pub const CURSOR: &str = "$0";

/// The files of a fixture and the place its markers name.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// Workspace-relative path (the header's leading `/` removed) and text, markers removed, in
    /// fixture order.
    pub files: Vec<(String, String)>,
    /// The file holding the markers (the first file when there are none).
    pub path: String,
    /// The cursor (empty) or the selection, in bytes of that file.
    pub selection: Range<usize>,
}

impl Fixture {
    /// Parses a fixture. Its common indentation is removed first, so fixtures can be indented
    /// with the test's code. Text before the first `//- /path` header belongs to `src/lib.rs`.
    /// Panics on a malformed fixture (markers in two files, more than two markers): a test's
    /// mistake, reported at once.
    pub fn parse(fixture: &str) -> Fixture {
        let fixture = trim_indent(fixture);
        let mut files: Vec<(String, String)> = Vec::new();
        for line in fixture.split_inclusive('\n') {
            if let Some(header) = line.strip_prefix("//- ") {
                let path = header.trim().trim_start_matches('/').to_string();
                assert!(!path.is_empty(), "a `//-` header without a path");
                files.push((path, String::new()));
                continue;
            }
            if files.is_empty() {
                if line.trim().is_empty() {
                    continue;
                }
                files.push(("src/lib.rs".into(), String::new()));
            }
            files.last_mut().expect("a file").1.push_str(line);
        }
        assert!(!files.is_empty(), "an empty fixture");
        let mut place = None;
        for (path, text) in &mut files {
            let marks: Vec<usize> = text.match_indices(CURSOR).map(|(at, _)| at).collect();
            if marks.is_empty() {
                continue;
            }
            assert!(place.is_none(), "markers in two files");
            let selection = match marks[..] {
                [at] => at..at,
                // The second marker moves back by the first one's length once that is removed.
                [start, end] => start..end - CURSOR.len(),
                _ => panic!(
                    "{} markers in {path}: one is a cursor, two a selection",
                    marks.len()
                ),
            };
            *text = text.replace(CURSOR, "");
            place = Some((path.clone(), selection));
        }
        let (path, selection) = place.unwrap_or_else(|| (files[0].0.clone(), 0..0));
        Fixture {
            files,
            path,
            selection,
        }
    }

    /// The text of the file holding the markers.
    pub fn text(&self) -> &str {
        self.file(&self.path).expect("the marked file")
    }

    pub fn file(&self, path: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, text)| text.as_str())
    }

    /// The language of the marked file, from its extension.
    pub fn language(&self) -> Option<Language> {
        Language::from_path(Path::new(&self.path))
    }
}

/// Removes the first line when it is empty and the indentation all non-blank lines share.
fn trim_indent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.split_inclusive('\n')
        .map(|l| l.get(indent..).unwrap_or(l.trim_start_matches([' ', '\t'])))
        .collect()
}

/// One indexed file: its text, chunks and the rows the archive would store.
struct Indexed {
    text: Rope,
    rows: Vec<ChunkRow>,
    facts: Arc<FileFacts>,
}

/// The fixture's files as the archive and the file system would serve them to assembly.
pub struct MemoryWorkspace {
    /// By path: `BTreeMap` keeps every answer in path order, as the archive's queries do.
    files: BTreeMap<String, Indexed>,
}

/// The rows `ArchiveWorkspace` never answers with (as the archive's lookups leave them out).
fn is_lookup_kind(kind: ChunkKind) -> bool {
    !matches!(kind, ChunkKind::Group | ChunkKind::Part | ChunkKind::Window)
}

/// Search hits returned, as `ArchiveWorkspace::search` asks the archive for.
const SEARCH_LIMIT: usize = 12;
/// Definitions returned for a name, as `ArchiveWorkspace::definitions` asks.
const DEFINITIONS_LIMIT: usize = 16;

impl MemoryWorkspace {
    /// Indexes every file of the fixture the way the indexer does: language from the extension,
    /// chunks with the default chunk configuration, rows from `chunk_rows`.
    pub fn new(fixture: &Fixture) -> MemoryWorkspace {
        let config = IndexConfig::default();
        let files = fixture
            .files
            .iter()
            .map(|(path, text)| {
                let rope = Rope::from_str(text);
                let chunks =
                    chunk_text(&rope, Language::from_path(Path::new(path)), &config.chunk).to_vec();
                let rows = chunk_rows(&rope, &chunks);
                let facts = Arc::new(facts(text, Language::from_path(Path::new(path))));
                (
                    path.clone(),
                    Indexed {
                        text: rope,
                        rows,
                        facts,
                    },
                )
            })
            .collect();
        MemoryWorkspace { files }
    }

    /// The chunks of a file as the editor's parse would give them (for the request).
    pub fn chunks(&self, path: &str) -> DocChunks {
        let text = &self.files[path].text;
        chunk_text(
            text,
            Language::from_path(Path::new(path)),
            &IndexConfig::default().chunk,
        )
    }

    /// The symbols that `keep` keeps, in path order, as the archive's lookups answer.
    fn symbols(&self, keep: impl Fn(&Symbol) -> bool) -> Vec<(String, Symbol)> {
        self.files
            .iter()
            .flat_map(|(path, f)| f.facts.symbols.iter().map(move |s| (path, s)))
            .filter(|(_, s)| keep(s))
            .map(|(path, s)| (path.clone(), s.clone()))
            .collect()
    }

    fn rows(&self) -> impl Iterator<Item = (&str, &ChunkRow)> {
        self.files
            .iter()
            .flat_map(|(path, f)| f.rows.iter().map(move |r| (path.as_str(), r)))
            .filter(|(_, r)| is_lookup_kind(r.kind))
    }
}

fn located(path: &str, row: &ChunkRow) -> Located {
    Located {
        path: path.to_string(),
        chunk_id: row.chunk_id.clone(),
        kind: row.kind.as_str().to_string(),
        name: row.name.clone(),
        qualified: row.qualified.clone(),
        signature: row.signature.clone(),
        doc: row.doc.clone(),
        start_byte: row.start_byte,
        end_byte: row.end_byte,
        start_line: row.start.line,
        end_line: row.end.line,
        hash: format!("{:016x}", row.hash),
    }
}

/// The lowercase words of a text, as search splits a query: each identifier and its parts.
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for ident in identifiers(text) {
        for word in std::iter::once(ident.to_lowercase()).chain(split_identifier(ident)) {
            if !out.contains(&word) {
                out.push(word);
            }
        }
    }
    out
}

impl Workspace for MemoryWorkspace {
    fn definitions(&self, name: &str) -> Vec<Located> {
        // In path order, then by position, like the archive's `ORDER BY f.path, c.start_byte`.
        let mut found: Vec<Located> = self
            .rows()
            .filter(|(_, r)| r.name == name)
            .map(|(path, r)| located(path, r))
            .collect();
        found.sort_by(|a, b| (&a.path, a.start_byte).cmp(&(&b.path, b.start_byte)));
        found.truncate(DEFINITIONS_LIMIT);
        found
    }

    fn outline(&self, path: &str) -> Vec<Located> {
        let Some(file) = self.files.get(path) else {
            return Vec::new();
        };
        let mut rows: Vec<&ChunkRow> = file
            .rows
            .iter()
            .filter(|r| is_lookup_kind(r.kind))
            .collect();
        rows.sort_by_key(|r| r.start_byte);
        rows.into_iter().map(|r| located(path, r)).collect()
    }

    /// Every word of the query must begin a term of the chunk (its name's words or its body's),
    /// as the archive's FTS5 expression asks; a chunk named the query ranks first, one whose name
    /// starts with it next, then chunks whose names hold more of the words.
    fn search(&self, query: &str) -> Vec<Located> {
        let wanted = words(query);
        if wanted.is_empty() {
            return Vec::new();
        }
        let query = query.trim().to_lowercase();
        let mut hits: Vec<(u32, Located)> = Vec::new();
        for (path, row) in self.rows() {
            let name_terms: Vec<&str> = row.name_terms.split_whitespace().collect();
            let body_terms: Vec<&str> = row.body_terms.split_whitespace().collect();
            let begins = |terms: &[&str], w: &str| terms.iter().any(|t| t.starts_with(w));
            if !wanted
                .iter()
                .all(|w| begins(&name_terms, w) || begins(&body_terms, w))
            {
                continue;
            }
            let name = row.name.to_lowercase();
            let mut score = wanted
                .iter()
                .map(|w| if begins(&name_terms, w) { 2 } else { 1 })
                .sum::<u32>();
            if name == query {
                score += 100;
            } else if name.starts_with(&query) {
                score += 50;
            }
            hits.push((score, located(path, row)));
        }
        hits.sort_by(|(sa, a), (sb, b)| {
            sb.cmp(sa)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.start_byte.cmp(&b.start_byte))
        });
        hits.into_iter()
            .take(SEARCH_LIMIT)
            .map(|(_, hit)| hit)
            .collect()
    }

    /// The file's text, unless its name says it holds secrets (`ArchiveWorkspace` never reads
    /// those).
    fn text(&self, path: &str) -> Option<Rope> {
        if is_secret_file(Path::new(path)) {
            return None;
        }
        self.files.get(path).map(|f| f.text.clone())
    }

    fn facts(&self, path: &str) -> Option<Arc<FileFacts>> {
        self.files.get(path).map(|f| f.facts.clone())
    }

    fn symbols_named(&self, name: &str) -> Vec<(String, Symbol)> {
        self.symbols(|s| s.name == name)
    }

    fn members(&self, container: &str, name: &str) -> Vec<(String, Symbol)> {
        self.symbols(|s| s.container == container && (name.is_empty() || s.name == name))
    }

    fn mod_declarations(&self, name: &str, file_name: &str) -> Vec<(String, Symbol)> {
        self.symbols(|s| {
            s.kind == SymbolKind::ModFile
                && (s.name == name
                    || (!s.detail.is_empty()
                        && (s.detail == file_name || s.detail.ends_with(&format!("/{file_name}")))))
        })
    }

    /// Top-level folders (`.` for files at the root) and their file counts, by name.
    fn folders(&self) -> Vec<(String, usize)> {
        let mut folders: BTreeMap<String, usize> = BTreeMap::new();
        for path in self.files.keys() {
            let top = path.split_once('/').map_or(".", |(top, _)| top);
            *folders.entry(top.to_string()).or_default() += 1;
        }
        folders.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_gives_files_and_a_cursor_or_a_selection() {
        let f = Fixture::parse(
            r#"
            //- /src/lib.rs
            fn add(a: u32) -> u32 { helper$0(a) }
            //- /src/util.rs
            pub struct Config;
            "#,
        );
        assert_eq!(f.path, "src/lib.rs");
        assert_eq!(f.text(), "fn add(a: u32) -> u32 { helper(a) }\n");
        assert_eq!(
            &f.text()[..f.selection.start],
            "fn add(a: u32) -> u32 { helper"
        );
        assert!(f.selection.is_empty());
        assert_eq!(f.file("src/util.rs"), Some("pub struct Config;\n"));

        let f = Fixture::parse("fn a() {}\n$0fn b() {}\nfn c() {}$0\n");
        assert_eq!(f.path, "src/lib.rs", "no header: one file");
        assert_eq!(&f.text()[f.selection.clone()], "fn b() {}\nfn c() {}");
    }

    #[test]
    fn the_memory_workspace_answers_like_the_archive() {
        let f = Fixture::parse(
            r#"
            //- /src/b.rs
            pub fn parse_config(text: &str) -> Config { Config }
            //- /src/a.rs
            pub struct Config;
            pub fn load() -> Config { parse_config("") }
            //- /.env.local
            KEY=1
            //- /Cargo.toml
            [package]
            name = "demo"
            "#,
        );
        let w = MemoryWorkspace::new(&f);
        let names = |found: Vec<Located>| -> Vec<String> {
            found
                .iter()
                .map(|d| format!("{}:{}", d.path, d.qualified))
                .collect()
        };
        assert_eq!(names(w.definitions("Config")), ["src/a.rs:Config"]);
        assert_eq!(
            names(w.outline("src/a.rs")),
            ["src/a.rs:Config", "src/a.rs:load"]
        );
        // Every word must begin a term; chunks whose names hold the words rank first.
        assert_eq!(
            names(w.search("parse conf")),
            ["src/b.rs:parse_config", "src/a.rs:load"]
        );
        assert_eq!(names(w.search("nowhere")), Vec::<String>::new());
        assert!(
            w.text(".env.local").is_none(),
            "a secrets file is never read"
        );
        assert_eq!(w.folders(), [(".".to_string(), 2), ("src".to_string(), 2)]);
    }
}
