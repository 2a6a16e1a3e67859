//! Rust's symbol tables: items by inline module and impl, `use` trees flattened into one row per
//! bound name, `mod m;` with its `#[path]`, and the items of macro invocations whose body parses
//! as items (`cfg_rt! { pub fn spawn_blocking… }`). It resolves nothing.

use tree_sitter::Node;

use super::{FileFacts, Import, LineStarts, Symbol, SymbolKind, parse, text_of};
use crate::syntax::Language;

/// How deep macro invocations are opened for the items inside them.
const MACRO_DEPTH: usize = 3;

/// Wrappers whose first type argument is what a value of them is used as.
const WRAPPERS: &[&str] = &[
    "Box",
    "Arc",
    "Rc",
    "Option",
    "Result",
    "Pin",
    "RefCell",
    "Cell",
    "Mutex",
    "RwLock",
    "Weak",
    "ManuallyDrop",
    "MaybeUninit",
    "NonNull",
    "Cow",
];

pub(super) fn facts(text: &str, tree: &tree_sitter::Tree, lines: &LineStarts) -> FileFacts {
    let mut out = FileFacts::default();
    let mut walker = Walker {
        lines,
        out: &mut out,
    };
    walker.items(text, 0, tree.root_node(), &Place::default(), 0);
    out
}

/// Where items are being declared: the inline modules around them, and the impl or trait.
#[derive(Clone, Default)]
struct Place {
    scope: Vec<String>,
    container: String,
    of_trait: String,
    /// Inside a trait: its items are public with it.
    in_trait: bool,
}

struct Walker<'a> {
    lines: &'a LineStarts,
    out: &'a mut FileFacts,
}

impl Walker<'_> {
    /// The items of a source file, a declaration list or a macro body. `text` is what `node`
    /// was parsed from, `base` where that text starts in the file.
    fn items(&mut self, text: &str, base: usize, node: Node<'_>, place: &Place, depth: usize) {
        let mut cursor = node.walk();
        let mut attached: Option<usize> = None;
        let mut last_end = 0;
        let mut path_attr: Option<String> = None;
        let mut exported_macro = false;
        for child in node.named_children(&mut cursor) {
            // A blank line parts comments from what follows.
            if attached.is_some() && blank_between(text, last_end, child.start_byte()) {
                attached = None;
            }
            last_end = child.end_byte();
            match child.kind() {
                "line_comment" | "block_comment" | "attribute_item" | "inner_attribute_item" => {
                    let t = text_of(text, child);
                    if child.kind() == "attribute_item" {
                        if let Some(p) = path_attribute(t) {
                            path_attr = Some(p);
                        }
                        if t.contains("macro_export") {
                            exported_macro = true;
                        }
                    }
                    if child.kind() != "inner_attribute_item" {
                        attached.get_or_insert(child.start_byte());
                    }
                    continue;
                }
                _ => {}
            }
            let start = attached.take().unwrap_or(child.start_byte());
            let path = path_attr.take();
            let exported = std::mem::take(&mut exported_macro);
            self.item(
                text,
                base,
                child,
                start,
                place,
                depth,
                path.as_deref(),
                exported,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        text: &str,
        base: usize,
        node: Node<'_>,
        start: usize,
        place: &Place,
        depth: usize,
        path_attr: Option<&str>,
        exported_macro: bool,
    ) {
        let public = place.in_trait || has_visibility(node);
        let name_of = |field: &str| node.child_by_field_name(field);
        let symbol = |walker: &mut Self,
                      kind: SymbolKind,
                      name: Node<'_>,
                      detail: String,
                      sig_end: usize| {
            let range = base + start..base + node.end_byte();
            walker.out.symbols.push(Symbol {
                name: text_of(text, name).to_string(),
                kind,
                scope: place.scope.join("::"),
                container: place.container.clone(),
                of_trait: place.of_trait.clone(),
                public,
                detail,
                lines: walker.lines.span(&range),
                range,
                name_start: base + name.start_byte(),
                signature_end: base + sig_end,
            });
        };
        match node.kind() {
            "function_item" | "function_signature_item" => {
                let Some(name) = name_of("name") else { return };
                let kind = if place.container.is_empty() {
                    SymbolKind::Function
                } else {
                    SymbolKind::Method
                };
                let detail = name_of("return_type")
                    .map(|t| type_head(text, t, &place.container))
                    .unwrap_or_default();
                let sig_end = name_of("body").map_or(node.end_byte(), |b| b.start_byte());
                symbol(self, kind, name, detail, sig_end);
            }
            "struct_item" | "union_item" => {
                let Some(name) = name_of("name") else { return };
                let kind = if node.kind() == "struct_item" {
                    SymbolKind::Struct
                } else {
                    SymbolKind::Union
                };
                let body = name_of("body");
                let sig_end = body.map_or(node.end_byte(), |b| b.start_byte());
                symbol(self, kind, name, String::new(), sig_end);
                if let Some(body) = body {
                    let owner = text_of(text, name).to_string();
                    self.fields(text, base, body, &owner, place);
                }
            }
            "enum_item" | "trait_item" => {
                let Some(name) = name_of("name") else { return };
                let body = name_of("body");
                let sig_end = body.map_or(node.end_byte(), |b| b.start_byte());
                let kind = if node.kind() == "enum_item" {
                    SymbolKind::Enum
                } else {
                    SymbolKind::Trait
                };
                symbol(self, kind, name, String::new(), sig_end);
                if let (SymbolKind::Trait, Some(body)) = (kind, body) {
                    let inner = Place {
                        scope: place.scope.clone(),
                        container: text_of(text, name).to_string(),
                        of_trait: String::new(),
                        in_trait: true,
                    };
                    self.items(text, base, body, &inner, depth);
                }
            }
            "type_item" => {
                let Some(name) = name_of("name") else { return };
                let detail = name_of("type")
                    .map(|t| type_head(text, t, &place.container))
                    .unwrap_or_default();
                symbol(self, SymbolKind::Type, name, detail, node.end_byte());
            }
            "const_item" | "static_item" => {
                let Some(name) = name_of("name") else { return };
                let kind = if node.kind() == "const_item" {
                    SymbolKind::Const
                } else {
                    SymbolKind::Static
                };
                let detail = name_of("type")
                    .map(|t| type_head(text, t, &place.container))
                    .unwrap_or_default();
                let sig_end = name_of("value").map_or(node.end_byte(), |v| v.start_byte());
                symbol(self, kind, name, detail, sig_end);
            }
            "macro_definition" => {
                let Some(name) = name_of("name") else { return };
                let range = base + start..base + node.end_byte();
                self.out.symbols.push(Symbol {
                    name: text_of(text, name).to_string(),
                    kind: SymbolKind::Macro,
                    scope: place.scope.join("::"),
                    container: String::new(),
                    of_trait: String::new(),
                    public: exported_macro,
                    detail: String::new(),
                    lines: self.lines.span(&range),
                    range,
                    name_start: base + name.start_byte(),
                    signature_end: base + node.end_byte(),
                });
            }
            "mod_item" => {
                let Some(name) = name_of("name") else { return };
                match name_of("body") {
                    Some(body) => {
                        symbol(
                            self,
                            SymbolKind::Module,
                            name,
                            String::new(),
                            body.start_byte(),
                        );
                        let mut inner = place.clone();
                        inner.scope.push(text_of(text, name).to_string());
                        inner.container.clear();
                        inner.of_trait.clear();
                        inner.in_trait = false;
                        self.items(text, base, body, &inner, depth);
                    }
                    None => symbol(
                        self,
                        SymbolKind::ModFile,
                        name,
                        path_attr.unwrap_or("").to_string(),
                        node.end_byte(),
                    ),
                }
            }
            "impl_item" => {
                let Some(body) = name_of("body") else { return };
                let container = name_of("type")
                    .map(|t| type_head(text, t, ""))
                    .unwrap_or_default();
                let of_trait = name_of("trait")
                    .map(|t| type_head(text, t, ""))
                    .unwrap_or_default();
                let inner = Place {
                    scope: place.scope.clone(),
                    container,
                    of_trait,
                    in_trait: false,
                };
                self.items(text, base, body, &inner, depth);
            }
            "use_declaration" => {
                if let Some(argument) = name_of("argument") {
                    let export = has_visibility(node);
                    let scope = place.scope.join("::");
                    let mut rows = Vec::new();
                    use_tree(text, argument, "", &mut rows);
                    for (local, path) in rows {
                        let name = path.rsplit("::").next().unwrap_or("").to_string();
                        self.out.imports.push(Import {
                            scope: scope.clone(),
                            local,
                            path,
                            name,
                            export,
                            type_only: false,
                        });
                    }
                }
            }
            "extern_crate_declaration" => {
                // `extern crate a as b;`: b names the crate a.
                let (Some(name), alias) = (name_of("name"), name_of("alias")) else {
                    return;
                };
                let crate_name = text_of(text, name).to_string();
                let local = alias.map_or(crate_name.clone(), |a| text_of(text, a).to_string());
                if local != crate_name {
                    self.out.imports.push(Import {
                        scope: place.scope.join("::"),
                        local,
                        path: format!("::{crate_name}"),
                        name: crate_name,
                        export: has_visibility(node),
                        type_only: false,
                    });
                }
            }
            "macro_invocation" => self.macro_items(text, base, node, place, depth),
            "expression_statement" => {
                if let Some(inner) = node.named_child(0)
                    && inner.kind() == "macro_invocation"
                {
                    self.macro_items(text, base, inner, place, depth);
                }
            }
            _ => {}
        }
    }

    /// The fields of a struct or union body, named or numbered.
    fn fields(&mut self, text: &str, base: usize, body: Node<'_>, owner: &str, place: &Place) {
        let mut cursor = body.walk();
        let mut ordinal = 0;
        for field in body.named_children(&mut cursor) {
            let (name, name_start, ty) = match field.kind() {
                "field_declaration" => {
                    let Some(name) = field.child_by_field_name("name") else {
                        continue;
                    };
                    (
                        text_of(text, name).to_string(),
                        name.start_byte(),
                        field.child_by_field_name("type"),
                    )
                }
                "visibility_modifier" | "attribute_item" | "line_comment" | "block_comment" => {
                    continue;
                }
                _ if body.kind() == "ordered_field_declaration_list" => {
                    let name = ordinal.to_string();
                    ordinal += 1;
                    (name, field.start_byte(), Some(field))
                }
                _ => continue,
            };
            let range = base + field.start_byte()..base + field.end_byte();
            self.out.symbols.push(Symbol {
                name,
                kind: SymbolKind::Field,
                scope: place.scope.join("::"),
                container: owner.to_string(),
                of_trait: String::new(),
                public: has_visibility(field),
                detail: ty.map(|t| type_head(text, t, owner)).unwrap_or_default(),
                lines: self.lines.span(&range),
                range,
                name_start: base + name_start,
                signature_end: base + field.end_byte(),
            });
        }
    }

    /// The items of a macro invocation's body, when it parses as items (as in `cfg_rt! { … }`).
    fn macro_items(
        &mut self,
        text: &str,
        base: usize,
        node: Node<'_>,
        place: &Place,
        depth: usize,
    ) {
        if depth >= MACRO_DEPTH {
            return;
        }
        let mut cursor = node.walk();
        let Some(body) = node
            .named_children(&mut cursor)
            .find(|c| c.kind() == "token_tree")
        else {
            return;
        };
        let range = body.byte_range();
        if range.len() < 2 {
            return;
        }
        let inner = &text[range.start + 1..range.end - 1];
        let Some(tree) = parse(inner, Language::Rust) else {
            return;
        };
        // Only what parses as items: a body of expressions or tokens gives a tree of errors.
        let root = tree.root_node();
        let mut cursor = root.walk();
        let items = root
            .named_children(&mut cursor)
            .filter(|c| c.kind().ends_with("_item") || c.kind() == "use_declaration")
            .count();
        if items == 0 {
            return;
        }
        self.items(inner, base + range.start + 1, root, place, depth + 1);
    }
}

/// Whether a blank line lies between two offsets.
pub(crate) fn blank_between(text: &str, from: usize, to: usize) -> bool {
    text.get(from.min(to)..to)
        .is_some_and(|gap| gap.matches('\n').count() >= 2)
}

fn has_visibility(node: Node<'_>) -> bool {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .any(|c| c.kind() == "visibility_modifier")
}

/// `#[path = "x.rs"]` → `x.rs`.
fn path_attribute(attribute: &str) -> Option<String> {
    let inner = attribute
        .trim()
        .strip_prefix("#[")?
        .strip_suffix(']')?
        .trim();
    let value = inner.strip_prefix("path")?.trim_start().strip_prefix('=')?;
    let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
    Some(value.to_string())
}

/// The name a type is used as: its last path segment, through references, pointers and the
/// usual wrappers (`&mut Arc<Inner>` is an `Inner`); `Self` is the container.
pub(crate) fn type_head(text: &str, node: Node<'_>, container: &str) -> String {
    match node.kind() {
        "type_identifier" | "primitive_type" | "identifier" => {
            let name = text_of(text, node);
            if name == "Self" && !container.is_empty() {
                container.to_string()
            } else {
                name.to_string()
            }
        }
        "scoped_type_identifier" | "scoped_identifier" => node
            .child_by_field_name("name")
            .map(|n| type_head(text, n, container))
            .unwrap_or_default(),
        "generic_type" => {
            let head = node
                .child_by_field_name("type")
                .map(|n| type_head(text, n, container))
                .unwrap_or_default();
            if WRAPPERS.contains(&head.as_str())
                && let Some(args) = node.child_by_field_name("type_arguments")
            {
                let mut cursor = args.walk();
                if let Some(first) = args
                    .named_children(&mut cursor)
                    .find(|c| !matches!(c.kind(), "lifetime" | "block_comment" | "line_comment"))
                {
                    return type_head(text, first, container);
                }
            }
            head
        }
        "reference_type" | "pointer_type" => node
            .child_by_field_name("type")
            .map(|n| type_head(text, n, container))
            .unwrap_or_default(),
        "dynamic_type" | "abstract_type" => node
            .child_by_field_name("trait")
            .map(|n| type_head(text, n, container))
            .unwrap_or_default(),
        "bounded_type" | "parenthesized_type" => node
            .named_child(0)
            .map(|n| type_head(text, n, container))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Flattens a use tree under `prefix` into (bound name, whole path) rows; a glob binds `*`.
fn use_tree(text: &str, node: Node<'_>, prefix: &str, out: &mut Vec<(String, String)>) {
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}::{b}")
        }
    };
    match node.kind() {
        "identifier" | "scoped_identifier" | "crate" | "super" | "self" | "metavariable" => {
            let path = join(prefix, &path_text(text, node));
            let last = path.rsplit("::").next().unwrap_or("").to_string();
            if last == "self" {
                // `use a::b::{self}` binds `b`.
                let module = path.strip_suffix("::self").unwrap_or(&path).to_string();
                let name = module.rsplit("::").next().unwrap_or("").to_string();
                out.push((name, module));
            } else {
                out.push((last, path));
            }
        }
        "use_as_clause" => {
            let (Some(path), Some(alias)) = (
                node.child_by_field_name("path"),
                node.child_by_field_name("alias"),
            ) else {
                return;
            };
            let mut full = join(prefix, &path_text(text, path));
            if let Some(module) = full.strip_suffix("::self") {
                full = module.to_string();
            }
            let alias = text_of(text, alias).to_string();
            if alias != "_" {
                out.push((alias, full));
            }
        }
        "use_wildcard" => {
            let mut cursor = node.walk();
            let module = node
                .named_children(&mut cursor)
                .next()
                .map(|p| join(prefix, &path_text(text, p)))
                .unwrap_or_else(|| prefix.to_string());
            out.push(("*".into(), module));
        }
        "scoped_use_list" => {
            let inner = node
                .child_by_field_name("path")
                .map(|p| join(prefix, &path_text(text, p)))
                .unwrap_or_else(|| prefix.to_string());
            if let Some(list) = node.child_by_field_name("list") {
                use_tree(text, list, &inner, out);
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                use_tree(text, child, prefix, out);
            }
        }
        _ => {}
    }
}

/// A path as written, without whitespace or generic arguments (`a :: b` → `a::b`).
fn path_text(text: &str, node: Node<'_>) -> String {
    match node.kind() {
        "scoped_identifier" => {
            let name = node
                .child_by_field_name("name")
                .map(|n| text_of(text, n).to_string())
                .unwrap_or_default();
            match node.child_by_field_name("path") {
                Some(path) => format!("{}::{name}", path_text(text, path)),
                // `::name`: a crate from the extern prelude.
                None => format!("::{name}"),
            }
        }
        "generic_type" => node
            .child_by_field_name("type")
            .map(|n| path_text(text, n))
            .unwrap_or_default(),
        _ => text_of(text, node)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    }
}
