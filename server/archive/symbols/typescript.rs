//! TypeScript's and JavaScript's symbol tables: top-level declarations (exported or not), the
//! members of classes and interfaces with the heads of their types, and one row per name a file
//! imports (named, default, namespace, type-only) or re-exports (`export { a as b } from`,
//! `export * from`, `export * as ns from`, `export { local }`, `export default name`). It
//! resolves no module specifier.

use tree_sitter::Node;

use super::rust::blank_between;
use super::{FileFacts, Import, LineStarts, Symbol, SymbolKind, text_of};

pub(super) fn facts(text: &str, tree: &tree_sitter::Tree, lines: &LineStarts) -> FileFacts {
    let mut out = FileFacts::default();
    let root = tree.root_node();
    let mut cursor = root.walk();
    let mut attached: Option<usize> = None;
    let mut last_end = 0;
    for child in root.named_children(&mut cursor) {
        if attached.is_some() && blank_between(text, last_end, child.start_byte()) {
            attached = None;
        }
        last_end = child.end_byte();
        if child.kind() == "comment" {
            attached.get_or_insert(child.start_byte());
            continue;
        }
        let start = attached.take().unwrap_or(child.start_byte());
        statement(text, lines, child, start, &mut out);
    }
    out
}

fn statement(text: &str, lines: &LineStarts, node: Node<'_>, start: usize, out: &mut FileFacts) {
    match node.kind() {
        "import_statement" => import(text, node, out),
        "export_statement" => export(text, lines, node, start, out),
        "expression_statement" => {
            // `namespace N { … }` parses as an expression statement.
            if let Some(inner) = node.named_child(0)
                && inner.kind() == "internal_module"
            {
                declaration(text, lines, inner, start, false, out);
            }
        }
        "ambient_declaration" => {
            let mut cursor = node.walk();
            for inner in node.named_children(&mut cursor) {
                declaration(text, lines, inner, start, false, out);
            }
        }
        _ => {
            declaration(text, lines, node, start, false, out);
        }
    }
}

/// The string of a `source` field, without its quotes.
fn specifier(text: &str, node: Node<'_>) -> String {
    text_of(text, node)
        .trim()
        .trim_matches(['"', '\'', '`'])
        .to_string()
}

fn has_token(node: Node<'_>, token: &str) -> bool {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .any(|c| !c.is_named() && c.kind() == token)
}

fn import(text: &str, node: Node<'_>, out: &mut FileFacts) {
    let Some(source) = node.child_by_field_name("source") else {
        return;
    };
    let path = specifier(text, source);
    let type_only = has_token(node, "type");
    let mut row = |local: &str, name: &str, type_only: bool| {
        out.imports.push(Import {
            scope: String::new(),
            local: local.to_string(),
            path: path.clone(),
            name: name.to_string(),
            export: false,
            type_only,
        });
    };
    let mut cursor = node.walk();
    for clause in node.named_children(&mut cursor) {
        if clause.kind() != "import_clause" {
            continue;
        }
        let mut inner = clause.walk();
        for part in clause.named_children(&mut inner) {
            match part.kind() {
                "identifier" => row(text_of(text, part), "default", type_only),
                "namespace_import" => {
                    let mut c = part.walk();
                    if let Some(id) = part
                        .named_children(&mut c)
                        .find(|n| n.kind() == "identifier")
                    {
                        row(text_of(text, id), "*", type_only);
                    }
                }
                "named_imports" => {
                    let mut c = part.walk();
                    for spec in part.named_children(&mut c) {
                        if spec.kind() != "import_specifier" {
                            continue;
                        }
                        let Some(name) = spec.child_by_field_name("name") else {
                            continue;
                        };
                        let local = spec.child_by_field_name("alias").unwrap_or(name);
                        row(
                            text_of(text, local),
                            &specifier(text, name),
                            type_only || has_token(spec, "type"),
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

fn export(text: &str, lines: &LineStarts, node: Node<'_>, start: usize, out: &mut FileFacts) {
    let type_only = has_token(node, "type");
    let default = has_token(node, "default");
    let source = node
        .child_by_field_name("source")
        .map(|s| specifier(text, s));
    if let Some(decl) = node.child_by_field_name("declaration") {
        let names = declaration(text, lines, decl, start, true, out);
        if default && let Some(name) = names.first() {
            out.imports.push(Import {
                scope: String::new(),
                local: "default".into(),
                path: String::new(),
                name: name.clone(),
                export: true,
                type_only: false,
            });
        }
        return;
    }
    if default {
        // `export default name;` (a class or function expression has no name to follow).
        if let Some(value) = node.child_by_field_name("value")
            && value.kind() == "identifier"
        {
            out.imports.push(Import {
                scope: String::new(),
                local: "default".into(),
                path: String::new(),
                name: text_of(text, value).to_string(),
                export: true,
                type_only: false,
            });
        }
        return;
    }
    let path = source.unwrap_or_default();
    let mut cursor = node.walk();
    let mut any = false;
    for part in node.named_children(&mut cursor) {
        match part.kind() {
            "export_clause" => {
                let mut c = part.walk();
                for spec in part.named_children(&mut c) {
                    if spec.kind() != "export_specifier" {
                        continue;
                    }
                    let Some(name) = spec.child_by_field_name("name") else {
                        continue;
                    };
                    let local = spec.child_by_field_name("alias").unwrap_or(name);
                    out.imports.push(Import {
                        scope: String::new(),
                        local: specifier(text, local),
                        path: path.clone(),
                        name: specifier(text, name),
                        export: true,
                        type_only: type_only || has_token(spec, "type"),
                    });
                }
                any = true;
            }
            "namespace_export" => {
                let mut c = part.walk();
                if let Some(id) = part.named_children(&mut c).last() {
                    out.imports.push(Import {
                        scope: String::new(),
                        local: specifier(text, id),
                        path: path.clone(),
                        name: "*".into(),
                        export: true,
                        type_only,
                    });
                }
                any = true;
            }
            _ => {}
        }
    }
    if !any && has_token(node, "*") && !path.is_empty() {
        out.imports.push(Import {
            scope: String::new(),
            local: "*".into(),
            path,
            name: "*".into(),
            export: true,
            type_only,
        });
    }
}

/// Records a declaration's symbols; returns the names it declares.
fn declaration(
    text: &str,
    lines: &LineStarts,
    node: Node<'_>,
    start: usize,
    public: bool,
    out: &mut FileFacts,
) -> Vec<String> {
    let kind = match node.kind() {
        "function_declaration" | "generator_function_declaration" | "function_signature" => {
            SymbolKind::Function
        }
        "class_declaration" | "abstract_class_declaration" | "class" => SymbolKind::Class,
        "interface_declaration" => SymbolKind::Interface,
        "type_alias_declaration" => SymbolKind::Type,
        "enum_declaration" => SymbolKind::Enum,
        "internal_module" | "module" => SymbolKind::Module,
        "lexical_declaration" | "variable_declaration" => {
            let mut names = Vec::new();
            let mut cursor = node.walk();
            let declarators: Vec<Node<'_>> = node
                .named_children(&mut cursor)
                .filter(|c| c.kind() == "variable_declarator")
                .collect();
            let single = declarators.len() == 1;
            for d in declarators {
                let Some(name) = d.child_by_field_name("name") else {
                    continue;
                };
                if name.kind() != "identifier" {
                    continue; // a destructuring pattern
                }
                let value = d.child_by_field_name("value");
                let detail = d
                    .child_by_field_name("type")
                    .map(|t| type_head(text, t))
                    .or_else(|| {
                        value
                            .filter(|v| v.kind() == "new_expression")
                            .and_then(|v| {
                                v.child_by_field_name("constructor")
                                    .map(|c| type_head(text, c))
                            })
                    })
                    .unwrap_or_default();
                let function = value.is_some_and(|v| {
                    matches!(
                        v.kind(),
                        "arrow_function"
                            | "function_expression"
                            | "function"
                            | "generator_function"
                    )
                });
                // One declarator takes the whole statement (and its doc); several, their own text.
                let range = if single {
                    start..node.end_byte()
                } else {
                    d.start_byte()..d.end_byte()
                };
                let signature_end = match value {
                    Some(v) if function => v
                        .child_by_field_name("body")
                        .map_or(v.start_byte(), |b| b.start_byte()),
                    Some(v) => v.start_byte(),
                    None => range.end,
                };
                let name_text = text_of(text, name).to_string();
                names.push(name_text.clone());
                out.symbols.push(Symbol {
                    name: name_text,
                    kind: if function {
                        SymbolKind::Function
                    } else {
                        SymbolKind::Variable
                    },
                    scope: String::new(),
                    container: String::new(),
                    of_trait: String::new(),
                    public,
                    detail,
                    lines: lines.span(&range),
                    range,
                    name_start: name.start_byte(),
                    signature_end,
                });
            }
            return names;
        }
        _ => return Vec::new(),
    };
    let Some(name) = node.child_by_field_name("name") else {
        return Vec::new();
    };
    let body = node.child_by_field_name("body");
    let range = start..node.end_byte();
    let name_text = specifier(text, name);
    let detail = match kind {
        SymbolKind::Function => node
            .child_by_field_name("return_type")
            .map(|t| type_head(text, t))
            .unwrap_or_default(),
        SymbolKind::Type => node
            .child_by_field_name("value")
            .map(|t| type_head(text, t))
            .unwrap_or_default(),
        SymbolKind::Class | SymbolKind::Interface => extended(text, node),
        _ => String::new(),
    };
    out.symbols.push(Symbol {
        name: name_text.clone(),
        kind,
        scope: String::new(),
        container: String::new(),
        of_trait: String::new(),
        public,
        detail,
        lines: lines.span(&range),
        range,
        name_start: name.start_byte(),
        signature_end: body.map_or(node.end_byte(), |b| b.start_byte()),
    });
    if let (SymbolKind::Class | SymbolKind::Interface, Some(body)) = (kind, body) {
        members(text, lines, body, &name_text, out);
    }
    vec![name_text]
}

/// The methods and fields of a class or interface body.
fn members(text: &str, lines: &LineStarts, body: Node<'_>, owner: &str, out: &mut FileFacts) {
    let mut cursor = body.walk();
    let mut attached: Option<usize> = None;
    let mut last_end = body.start_byte() + 1;
    for member in body.named_children(&mut cursor) {
        if attached.is_some() && blank_between(text, last_end, member.start_byte()) {
            attached = None;
        }
        last_end = member.end_byte();
        if matches!(member.kind(), "comment" | "decorator") {
            attached.get_or_insert(member.start_byte());
            continue;
        }
        let start = attached.take().unwrap_or(member.start_byte());
        let (kind, detail) = match member.kind() {
            "method_definition" | "method_signature" | "abstract_method_signature" => (
                SymbolKind::Method,
                member
                    .child_by_field_name("return_type")
                    .map(|t| type_head(text, t))
                    .unwrap_or_default(),
            ),
            "public_field_definition" | "property_signature" | "field_definition" => {
                let value = member.child_by_field_name("value");
                let function = value
                    .is_some_and(|v| matches!(v.kind(), "arrow_function" | "function_expression"));
                let detail = member
                    .child_by_field_name("type")
                    .map(|t| type_head(text, t))
                    .or_else(|| {
                        value
                            .filter(|v| v.kind() == "new_expression")
                            .and_then(|v| {
                                v.child_by_field_name("constructor")
                                    .map(|c| type_head(text, c))
                            })
                    })
                    .unwrap_or_default();
                (
                    if function {
                        SymbolKind::Method
                    } else {
                        SymbolKind::Field
                    },
                    detail,
                )
            }
            _ => continue,
        };
        let Some(name) = member
            .child_by_field_name("name")
            .or_else(|| member.child_by_field_name("property"))
        else {
            continue;
        };
        let range = start..member.end_byte();
        let signature_end = member
            .child_by_field_name("body")
            .map_or(member.end_byte(), |b| b.start_byte());
        out.symbols.push(Symbol {
            name: specifier(text, name),
            kind,
            scope: String::new(),
            container: owner.to_string(),
            of_trait: String::new(),
            public: !text_of(text, member).trim_start().starts_with("private"),
            detail,
            lines: lines.span(&range),
            range,
            name_start: name.start_byte(),
            signature_end,
        });
    }
}

/// The head of the class or interface a class or interface extends (its first, for several).
fn extended(text: &str, node: Node<'_>) -> String {
    let mut cursor = node.walk();
    for child in node.named_children(&mut cursor) {
        match child.kind() {
            "class_heritage" => {
                let mut c = child.walk();
                for clause in child.named_children(&mut c) {
                    if clause.kind() == "extends_clause"
                        && let Some(value) = clause.child_by_field_name("value")
                    {
                        return type_head(text, value);
                    }
                }
            }
            "extends_clause" => {
                if let Some(value) = child.child_by_field_name("value") {
                    return type_head(text, value);
                }
            }
            "extends_type_clause" => {
                if let Some(t) = child.child_by_field_name("type") {
                    return type_head(text, t);
                }
            }
            _ => {}
        }
    }
    String::new()
}

/// The name a type annotation is used as: `: Subscriber<T>` → `Subscriber`, `ns.Type` → `Type`.
pub(crate) fn type_head(text: &str, node: Node<'_>) -> String {
    match node.kind() {
        "type_annotation" | "parenthesized_type" | "readonly_type" => node
            .named_child(0)
            .map(|n| type_head(text, n))
            .unwrap_or_default(),
        "type_identifier" | "identifier" | "predefined_type" => text_of(text, node).to_string(),
        "nested_type_identifier" | "member_expression" => node
            .child_by_field_name("name")
            .or_else(|| node.child_by_field_name("property"))
            .map(|n| type_head(text, n))
            .unwrap_or_default(),
        "generic_type" => node
            .child_by_field_name("name")
            .map(|n| type_head(text, n))
            .unwrap_or_default(),
        "union_type" => {
            // `T | null | undefined` is a T.
            let mut cursor = node.walk();
            let heads: Vec<String> = node
                .named_children(&mut cursor)
                .map(|n| type_head(text, n))
                .filter(|h| !matches!(h.as_str(), "" | "null" | "undefined" | "void"))
                .collect();
            if heads.len() == 1 {
                heads[0].clone()
            } else {
                String::new()
            }
        }
        "literal_type" => String::new(),
        _ => String::new(),
    }
}
