//! Tidy: checks the shape of the source tree that no compiler checks. Every `.rs` file under
//! `server/` opens with a `//!` paragraph saying what it owns; only `server/lsp/` names protocol
//! types; and no module imports one of a higher layer (the layers are listed below, lowest
//! first). It reads the tree with `std::fs` and scans text — comments and string literals are
//! blanked first, so a fixture or a doc comment naming a module is not an import. It never
//! builds, formats or changes anything. A failure lists every finding with file and line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use `crate::X` only for X at or below its own layer.
///
/// `llm::prompt` uses `context::redact` (every prompt is redacted by construction): allowed by
/// this order, since `context` sits below `llm`. The redactor itself depends on nothing in the
/// crate; it lives in `context` because context assembly was its first user.
const LAYERS: &[&str] = &[
    "resources",
    "syntax",
    "chunks",
    "documents",
    "archive",
    "context",
    "llm",
    "agents",
    "completion",
    "session",
    "lsp",
];

/// Imports against the layering that are known and kept, each with the reason. A finding that
/// matches one is not reported; an exception that matches nothing fails the test, so the list
/// shrinks as they are fixed.
const EXCEPTIONS: &[Exception] = &[
    // The chunk fixture tests check the invariant "incremental chunks equal a fresh chunking,
    // however the document is cut into segments", which needs the segmented parse of
    // `documents::Syntax` (`chunk_text`, `ParseStats`, `SEGMENT_TARGET`, `SEGMENT_MAX`). Test
    // code only: the library code of `chunks` never imports `documents`. Moving these tests to
    // `documents` would take `chunks`' private test helpers with them — not a small move.
    Exception {
        file: "server/chunks/tests.rs",
        uses: "documents",
    },
];

/// Crates whose names are protocol types: only `server/lsp/` may name them.
const PROTOCOL: &[&str] = &["tower_lsp_server", "ls_types", "lsp_types"];

struct Exception {
    file: &'static str,
    uses: &'static str,
}

#[test]
fn every_source_file_opens_with_a_doc_paragraph() {
    let files = sources();
    let mut failures = String::new();
    for file in &files {
        if let Err(why) = opens_with_doc(&file.text) {
            writeln!(failures, "{}:1: {why}", file.rel).unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "every .rs file under server/ starts with a `//!` paragraph saying what it owns and \
         what it never does:\n{failures}"
    );
}

#[test]
fn only_the_lsp_edge_names_protocol_types() {
    let mut failures = String::new();
    for file in sources() {
        if file.rel.starts_with("server/lsp/") {
            continue;
        }
        let code = blank_comments_and_strings(&file.text);
        for (line, name) in protocol_names(&code) {
            writeln!(
                failures,
                "{}:{line}: names `{name}`; protocol types belong in server/lsp/",
                file.rel
            )
            .unwrap();
        }
        if file.rel == "server/main.rs" {
            for (line, path) in lsp_items(&code) {
                writeln!(
                    failures,
                    "{}:{line}: `{path}` is not a function; the CLI may call server/lsp's \
                     functions only",
                    file.rel
                )
                .unwrap();
            }
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn no_layer_imports_a_higher_one() {
    let modules = lib_modules();
    let unlayered: Vec<&String> = modules
        .iter()
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(
        unlayered.is_empty(),
        "server/lib.rs declares modules with no layer in tests/tidy.rs: {unlayered:?}"
    );

    let mut failures = String::new();
    let mut used = vec![false; EXCEPTIONS.len()];
    for file in sources() {
        let Some(layer) = layer_of(&file.rel) else {
            continue;
        };
        let code = blank_comments_and_strings(&file.text);
        for (line, target) in crate_uses(&code) {
            let Some(target_layer) = LAYERS.iter().position(|l| *l == target) else {
                continue; // not a layer (e.g. a crate-level item of lib.rs)
            };
            if target_layer <= layer {
                continue;
            }
            if let Some(i) = EXCEPTIONS
                .iter()
                .position(|e| e.file == file.rel && e.uses == target)
            {
                used[i] = true;
                continue;
            }
            writeln!(
                failures,
                "{}:{line}: `{}` uses `crate::{target}`, a higher layer",
                file.rel, LAYERS[layer]
            )
            .unwrap();
        }
    }
    for (exception, used) in EXCEPTIONS.iter().zip(used) {
        if !used {
            writeln!(
                failures,
                "{}: the exception for `crate::{}` matches nothing any more; remove it",
                exception.file, exception.uses
            )
            .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "layers, lowest first: {LAYERS:?}\n{failures}"
    );
}

// ---------------------------------------------------------------------------------------------
// The scanner's own tests: each check must be able to fail.

#[test]
fn the_doc_check_wants_text_on_the_first_line() {
    assert!(opens_with_doc("//! Owns the thing; never does I/O.\n\nfn f() {}\n").is_ok());
    assert!(opens_with_doc("//!\n//! Owns the thing.\n").is_ok());
    assert!(opens_with_doc("// Owns the thing.\n").is_err());
    assert!(opens_with_doc("\n//! Owns the thing.\n").is_err());
    assert!(opens_with_doc("//!\n\nuse x;\n").is_err());
    assert!(opens_with_doc("").is_err());
}

#[test]
fn imports_are_found_with_their_lines_and_literals_are_not() {
    let source = r##"//! crate::lsp in a doc comment
use crate::llm::Gateway;
use crate::{context::redact, lsp::{a, b}};
fn f() {
    let s = "use crate::session::X"; // crate::agents
    let r = r#"crate::completion "quoted" "#;
    let c = '"'; let life: &'static str = "";
    crate::chunks::thing();
    /* crate::archive /* nested */ crate::documents */
    let x = $crate::syntax::y; pub(crate) fn g() {}
}
"##;
    let code = blank_comments_and_strings(source);
    assert_eq!(code.lines().count(), source.lines().count());
    assert_eq!(
        crate_uses(&code),
        [
            (2, "llm".to_owned()),
            (3, "context".to_owned()),
            (3, "lsp".to_owned()),
            (8, "chunks".to_owned()),
        ]
    );
}

#[test]
fn protocol_names_and_lsp_items_are_found() {
    let code = blank_comments_and_strings(
        "use tower_lsp_server::ls_types::Url;\nlet v: my_lsp_types = 1; // lsp_types\n\
         strata::lsp::serve_stdio(x);\nuse strata::lsp::{serve_stdio, Backend};\n\
         let e: strata::lsp::ext::Params;\n",
    );
    assert_eq!(
        protocol_names(&code),
        [
            (1, "tower_lsp_server".to_owned()),
            (1, "ls_types".to_owned())
        ]
    );
    assert_eq!(
        lsp_items(&code),
        [
            (4, "strata::lsp::Backend".to_owned()),
            (5, "strata::lsp::ext::Params".to_owned())
        ]
    );
}

#[test]
fn files_get_the_layer_of_their_folder() {
    assert_eq!(layer_of("server/syntax/mod.rs"), Some(1));
    assert_eq!(layer_of("server/lsp/server.rs"), Some(LAYERS.len() - 1));
    assert_eq!(layer_of("server/llm/cache.rs"), Some(6));
    assert_eq!(layer_of("server/lib.rs"), None);
    assert_eq!(layer_of("server/main.rs"), None);
}

// ---------------------------------------------------------------------------------------------
// Reading the tree.

struct Source {
    /// Path from the repository root, with `/`.
    rel: String,
    text: String,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `server/`, in path order.
fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = root();
    let mut paths = Vec::new();
    walk(&root.join("server"), &mut paths);
    paths.sort();
    let sources: Vec<Source> = paths
        .into_iter()
        .map(|path| Source {
            rel: path
                .strip_prefix(&root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
            text: std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        })
        .collect();
    // A tree that moved or a walk that found nothing would make every check pass.
    for must in ["server/lib.rs", "server/main.rs", "server/build.rs"] {
        assert!(
            sources.iter().any(|s| s.rel == must),
            "{must} not found: is the tree where tidy looks?"
        );
    }
    for layer in LAYERS {
        let dir = format!("server/{layer}/");
        assert!(
            sources.iter().any(|s| s.rel.starts_with(&dir)),
            "no files under {dir}: update LAYERS in tests/tidy.rs"
        );
    }
    sources
}

/// The modules `server/lib.rs` declares.
fn lib_modules() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("server/lib.rs")).unwrap();
    let code = blank_comments_and_strings(&text);
    let modules: Vec<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_owned())
        })
        .collect();
    assert!(!modules.is_empty(), "no modules found in server/lib.rs");
    modules
}

/// The layer of a file: the folder under `server/` it sits in; `None` for the crate's root
/// files (lib.rs, main.rs, build.rs).
fn layer_of(rel: &str) -> Option<usize> {
    let mut parts = rel.strip_prefix("server/")?.split('/');
    let first = parts.next()?;
    parts.next()?;
    LAYERS.iter().position(|l| *l == first)
}

// ---------------------------------------------------------------------------------------------
// Scanning text.

/// Whether the file opens (on its first line) with a `//!` block that says something.
fn opens_with_doc(text: &str) -> Result<(), &'static str> {
    if !text.starts_with("//!") {
        return Err("does not start with a `//!` doc comment");
    }
    let says_something = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .any(|l| !l.trim_start_matches("//!").trim().is_empty());
    if says_something {
        Ok(())
    } else {
        Err("the `//!` comment is empty")
    }
}

/// The text with comments and string and char literals replaced by spaces; line breaks are
/// kept, so line numbers stay right.
fn blank_comments_and_strings(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        // Line comment.
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
            continue;
        }
        // Block comment, nested.
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            continue;
        }
        // Raw string: r"…", r#"…"#, br"…".
        if c == 'r' && !prev.is_some_and(|p| is_ident(p) && p != 'b') {
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let hashes = j - i - 1;
                for &k in &chars[i..=j] {
                    blank(&mut out, k);
                }
                i = j + 1;
                while i < chars.len() {
                    if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        i += hashes + 1;
                        break;
                    }
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                continue;
            }
        }
        // String.
        if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        blank(&mut out, chars[i]);
                        if let Some(&e) = chars.get(i + 1) {
                            blank(&mut out, e);
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    other => {
                        blank(&mut out, other);
                        i += 1;
                    }
                }
            }
            continue;
        }
        // Char literal ('x', '\n', '\u{1F600}'), not a lifetime ('a).
        if c == '\'' {
            let end = if next == Some('\\') {
                (i + 3..chars.len().min(i + 12)).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                for &k in &chars[i..=end] {
                    blank(&mut out, k);
                }
                i = end + 1;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Every identifier that follows `word` at a word boundary, with its line (1-based).
fn occurrences(code: &str, word: &str) -> Vec<(usize, usize)> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let mut from = 0;
        while let Some(at) = line[from..].find(word) {
            let at = from + at;
            from = at + word.len();
            let before = line[..at].chars().next_back();
            let after = line[from..].chars().next();
            // `my_lsp_types` is not `lsp_types`; `crate::` ends its own word.
            let ends_in_word = word.ends_with(is_ident);
            if before.is_some_and(is_ident) || (ends_in_word && after.is_some_and(is_ident)) {
                continue;
            }
            found.push((n + 1, at));
        }
    }
    found
}

/// The top-level modules named by `crate::X` paths, including `crate::{X::…, Y}` groups, with
/// their lines. `$crate::` (macros) and `pub(crate)` are not paths into the crate's modules.
fn crate_uses(code: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (line, at) in occurrences(code, "crate::") {
        let rest = &lines[line - 1][at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group; it may span lines.
            let mut text = group.to_owned();
            for more in lines.iter().skip(line) {
                if text.contains('}') && balanced(&text) {
                    break;
                }
                text.push(' ');
                text.push_str(more);
            }
            let mut depth = 0;
            let mut start = true;
            let mut word = String::new();
            for c in text.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if depth == 0 && start && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ => {
                        if !word.is_empty() {
                            found.push((line, std::mem::take(&mut word)));
                            start = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                found.push((line, word));
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((line, name));
            }
        }
    }
    found
}

/// Whether the braces of a `crate::{` group's text (without its opening brace) have closed.
fn balanced(text: &str) -> bool {
    let mut depth = 1i32;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// Protocol crate names in code, with their lines.
fn protocol_names(code: &str) -> Vec<(usize, String)> {
    let mut found: Vec<(usize, usize, String)> = PROTOCOL
        .iter()
        .flat_map(|name| {
            occurrences(code, name)
                .into_iter()
                .map(|(line, at)| (line, at, (*name).to_owned()))
        })
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(line, _, name)| (line, name))
        .collect()
}

/// Paths into `strata::lsp` that do not end in a function (a lower-case name): types, or items
/// of its submodules.
fn lsp_items(code: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (line, at) in occurrences(code, "strata::lsp::") {
        let rest = &lines[line - 1][at + "strata::lsp::".len()..];
        let items: Vec<String> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => vec![
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect(),
            ],
        };
        for item in items {
            let is_function = !item.contains("::")
                && item.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
            if !is_function {
                found.push((line, format!("strata::lsp::{item}")));
            }
        }
    }
    found
}
