//! The symbol tables of a file: every item it declares (with its module scope, its container —
//! the type of an impl, a trait, a class — and the head of its type) and every name it imports
//! or re-exports (`use` trees flattened, `import`/`export … from` clauses). Extracted from a
//! tree-sitter parse of the whole text, items inside macro invocations whose body parses as
//! items included; stored by the archive beside the chunks, and read by the context's resolver.
//! Pure: the same text gives the same facts. It resolves nothing and reads no other file.

mod rust;
mod typescript;

pub(crate) use rust::type_head as rust_type_head;
pub(crate) use typescript::type_head as ts_type_head;

use std::cell::RefCell;
use std::ops::Range;

use crate::syntax::Language;

/// What kind of item a symbol is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Function,
    /// A function inside an impl, a trait, a class or an interface.
    Method,
    Struct,
    Enum,
    Union,
    Trait,
    /// A type alias (Rust `type`, TypeScript `type`).
    Type,
    Const,
    Static,
    Macro,
    /// An inline module (`mod m { … }`, a TypeScript namespace): its items have it in their scope.
    Module,
    /// A module in a file of its own (`mod m;`); `detail` holds its `#[path]` when it has one.
    ModFile,
    Class,
    Interface,
    /// A top-level TypeScript/JavaScript `const`, `let` or `var`.
    Variable,
    /// A field of a struct, a class or an interface; `detail` is the head of its type.
    Field,
}

impl SymbolKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::Union => "union",
            SymbolKind::Trait => "trait",
            SymbolKind::Type => "type",
            SymbolKind::Const => "const",
            SymbolKind::Static => "static",
            SymbolKind::Macro => "macro",
            SymbolKind::Module => "module",
            SymbolKind::ModFile => "modfile",
            SymbolKind::Class => "class",
            SymbolKind::Interface => "interface",
            SymbolKind::Variable => "variable",
            SymbolKind::Field => "field",
        }
    }

    pub fn from_name(name: &str) -> Option<SymbolKind> {
        Some(match name {
            "function" => SymbolKind::Function,
            "method" => SymbolKind::Method,
            "struct" => SymbolKind::Struct,
            "enum" => SymbolKind::Enum,
            "union" => SymbolKind::Union,
            "trait" => SymbolKind::Trait,
            "type" => SymbolKind::Type,
            "const" => SymbolKind::Const,
            "static" => SymbolKind::Static,
            "macro" => SymbolKind::Macro,
            "module" => SymbolKind::Module,
            "modfile" => SymbolKind::ModFile,
            "class" => SymbolKind::Class,
            "interface" => SymbolKind::Interface,
            "variable" => SymbolKind::Variable,
            "field" => SymbolKind::Field,
            _ => return None,
        })
    }

    /// A type a value can have, whose methods and fields hang off it.
    pub fn is_type(self) -> bool {
        matches!(
            self,
            SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Union
                | SymbolKind::Trait
                | SymbolKind::Type
                | SymbolKind::Class
                | SymbolKind::Interface
        )
    }
}

/// One declared item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub name: String,
    pub kind: SymbolKind,
    /// The inline modules around it in its file, `::`-joined (empty at the file's top).
    pub scope: String,
    /// The type whose impl, or the trait, class or interface, it is declared in (empty for a
    /// free item).
    pub container: String,
    /// The trait an impl implements, for items of `impl Trait for Type` (empty otherwise).
    pub of_trait: String,
    /// Rust: declared `pub` (of any kind); TypeScript: exported.
    pub public: bool,
    /// The head of its type: a field's or a constant's type, a function's return type (`Self`
    /// written as the container), an alias's target, the class or interface a class or an
    /// interface extends; a `mod m;`'s `#[path]`.
    pub detail: String,
    /// The item with its doc comments and attributes.
    pub range: Range<usize>,
    /// Where its name is.
    pub name_start: usize,
    /// The end of its declaration, before its body (its end when it has none).
    pub signature_end: usize,
    /// Zero-based first and last line of `range`.
    pub lines: (u32, u32),
}

/// One name a file binds from elsewhere, or re-exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// Rust: the inline modules around the `use` (as in [`Symbol::scope`]).
    pub scope: String,
    /// The name bound: an alias, the imported name, `*` for a glob (`use m::*`, `export * from`).
    pub local: String,
    /// Rust: the whole path of what is imported (`crate::a::b::C`, `super::x`; a glob's module).
    /// TypeScript: the module specifier (`./x`, `@app/y`), empty for `export { a as b }` of a
    /// name of the file itself.
    pub path: String,
    /// TypeScript: the name taken from the module (`default`, `*` for the whole module, or a
    /// name); Rust: the path's last segment.
    pub name: String,
    /// `pub use`, `export … from`, `export { … }`: the name is offered to importers.
    pub export: bool,
    /// `import type`, `export type`.
    pub type_only: bool,
}

/// The symbol tables of one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileFacts {
    pub symbols: Vec<Symbol>,
    pub imports: Vec<Import>,
}

/// The version of what extraction makes of a file: a change to it rebuilds archives (their
/// unchanged files would keep the old rows).
pub const VERSION: u32 = 2;

/// Files larger than this get no symbol tables (a generated file is no one's import).
pub const MAX_FACTS_BYTES: usize = 2 * 1024 * 1024;

thread_local! {
    static PARSERS: RefCell<Vec<(Language, tree_sitter::Parser)>> = const { RefCell::new(Vec::new()) };
}

/// Parses `text` with a parser of `language` kept per thread.
pub(crate) fn parse(text: &str, language: Language) -> Option<tree_sitter::Tree> {
    PARSERS.with(|parsers| {
        let mut parsers = parsers.borrow_mut();
        let at = match parsers.iter().position(|(l, _)| *l == language) {
            Some(at) => at,
            None => {
                let mut parser = tree_sitter::Parser::new();
                parser.set_language(&language.grammar()).ok()?;
                parsers.push((language, parser));
                parsers.len() - 1
            }
        };
        parsers[at].1.parse(text, None)
    })
}

/// The symbol tables of `text`, a file in `language`.
pub fn facts(text: &str, language: Option<Language>) -> FileFacts {
    let Some(language) = language else {
        return FileFacts::default();
    };
    if text.len() > MAX_FACTS_BYTES {
        return FileFacts::default();
    }
    let Some(tree) = parse(text, language) else {
        return FileFacts::default();
    };
    facts_of_tree(text, &tree, language)
}

/// The symbol tables of `text` from its parse.
pub fn facts_of_tree(text: &str, tree: &tree_sitter::Tree, language: Language) -> FileFacts {
    let lines = LineStarts::new(text);
    let mut facts = match language {
        Language::Rust => rust::facts(text, tree, &lines),
        Language::TypeScript | Language::Tsx | Language::JavaScript => {
            typescript::facts(text, tree, &lines)
        }
    };
    facts.symbols.sort_by_key(|s| (s.range.start, s.name_start));
    facts
}

/// Byte offsets where lines start, for zero-based line numbers.
pub(crate) struct LineStarts(Vec<usize>);

impl LineStarts {
    pub(crate) fn new(text: &str) -> LineStarts {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(at, _)| at + 1));
        LineStarts(starts)
    }

    pub(crate) fn line(&self, byte: usize) -> u32 {
        (self.0.partition_point(|&s| s <= byte).saturating_sub(1)) as u32
    }

    /// Zero-based first and last line of a range.
    pub(crate) fn span(&self, range: &Range<usize>) -> (u32, u32) {
        let last = range.end.saturating_sub(1).max(range.start);
        (self.line(range.start), self.line(last))
    }
}

/// The text of a node.
pub fn text_of<'a>(text: &'a str, node: tree_sitter::Node<'_>) -> &'a str {
    text.get(node.byte_range()).unwrap_or("")
}

#[cfg(test)]
mod tests;
