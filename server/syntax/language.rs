//! The languages Strata parses: detection from a path or an LSP language id, the tree-sitter
//! grammar, and the facts the chunker needs that a query cannot say (which siblings attach to a
//! chunk, which wrappers a declaration takes along, which top-level items are imports).
//! It never reads files or talks to a client.

use std::path::Path;

/// A language with a tree-sitter grammar and a `queries/<lang>/chunks.scm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Rust,
    TypeScript,
    Tsx,
    JavaScript,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Language::Rust,
        Language::TypeScript,
        Language::Tsx,
        Language::JavaScript,
    ];

    /// The language of a file, from its extension.
    pub fn from_path(path: &Path) -> Option<Language> {
        let ext = path.extension()?.to_str()?;
        Self::from_extension(ext)
    }

    pub fn from_extension(ext: &str) -> Option<Language> {
        match ext.to_ascii_lowercase().as_str() {
            "rs" => Some(Language::Rust),
            "ts" | "mts" | "cts" => Some(Language::TypeScript),
            "tsx" => Some(Language::Tsx),
            "js" | "mjs" | "cjs" | "jsx" => Some(Language::JavaScript),
            _ => None,
        }
    }

    /// The language of an open document: its LSP `languageId` first, then the extension of its path.
    pub fn from_language_id(id: &str, path: &str) -> Option<Language> {
        match id {
            "rust" => Some(Language::Rust),
            "typescript" => Some(Language::TypeScript),
            "typescriptreact" => Some(Language::Tsx),
            "javascript" | "javascriptreact" => Some(Language::JavaScript),
            _ => {
                let ext = path.rsplit_once('.')?.1;
                // A query string or fragment is not part of the extension.
                let ext = ext.split(['?', '#']).next()?;
                Self::from_extension(ext)
            }
        }
    }

    /// The directory under `queries/` that holds this language's query files.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::JavaScript => "javascript",
        }
    }

    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
        }
    }

    /// Node kinds that attach to the chunk directly below them (doc comments, attributes, decorators).
    pub fn attached_kinds(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["line_comment", "block_comment", "attribute_item"],
            _ => &["comment", "decorator"],
        }
    }

    /// Wrappers that a declaration takes into its chunk (`export class …`, `declare module …`,
    /// and the statement a TypeScript `namespace` parses as).
    pub fn wrapper_kinds(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &[],
            _ => &[
                "export_statement",
                "ambient_declaration",
                "expression_statement",
            ],
        }
    }

    /// Top-level items that make a group of small items an "imports" group.
    pub fn import_kinds(self) -> &'static [&'static str] {
        match self {
            Language::Rust => &["use_declaration", "extern_crate_declaration"],
            _ => &["import_statement"],
        }
    }

    /// Separator of qualified names in chunk ids and paths.
    pub fn path_separator(self) -> &'static str {
        match self {
            Language::Rust => "::",
            _ => ".",
        }
    }

    /// Comments that document the enclosing item rather than the next one.
    pub fn is_inner_doc(self, comment: &[u8]) -> bool {
        match self {
            Language::Rust => comment.starts_with(b"//!") || comment.starts_with(b"/*!"),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages() {
        assert_eq!(
            Language::from_path(Path::new("a/b.rs")),
            Some(Language::Rust)
        );
        assert_eq!(Language::from_path(Path::new("x.TSX")), Some(Language::Tsx));
        assert_eq!(
            Language::from_path(Path::new("x.jsx")),
            Some(Language::JavaScript)
        );
        assert_eq!(Language::from_path(Path::new("Makefile")), None);
        assert_eq!(
            Language::from_language_id("plaintext", "file:///a/b.mts"),
            Some(Language::TypeScript)
        );
        assert_eq!(
            Language::from_language_id("rust", "untitled:1"),
            Some(Language::Rust)
        );
        assert_eq!(Language::from_language_id("markdown", "file:///a.md"), None);
    }
}
