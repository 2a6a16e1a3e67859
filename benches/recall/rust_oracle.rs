//! The Rust side of the recall eval's ground truth, written apart from Strata's resolver and
//! working differently: a crate-wide index of definitions by name (free items with the module path
//! their file's path gives, impl and trait items with their type), and for each function the paths,
//! types, calls, macros and `self.method()`/`Self::item` calls it writes, each kept only when its
//! written qualifier (or the `use` that brought the name in) leaves exactly one definition.
//! Ambiguous references are reported apart ("maybe"), and count neither way.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use std::sync::LazyLock;

use regex::Regex;
use tree_sitter::{Node, Parser};

/// A path or a call among a macro's tokens.
static TOKEN_PATH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b[A-Za-z_][A-Za-z0-9_]*::)*\b[A-Za-z_][A-Za-z0-9_]*\s*\(?").unwrap()
});

/// A definition of the crate.
#[derive(Clone, Debug)]
pub struct Definition {
    pub file: String,
    /// 0-based line of its name.
    pub line: usize,
    pub name: String,
    /// The impl's type or the trait, for associated items.
    pub owner: String,
    /// The module path (from the file's path and inline modules).
    pub module: Vec<String>,
    pub is_type: bool,
}

/// A sampled function and what it uses.
#[derive(Clone, Debug)]
pub struct Function {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub name: String,
    pub uses: Vec<Definition>,
    pub maybe: Vec<Definition>,
}

struct File {
    rel: String,
    text: String,
    module: Vec<String>,
    /// Local name → written path, from `use` declarations.
    uses: HashMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
}

pub fn analyse(root: &Path) -> Vec<Function> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_rust::LANGUAGE.into())
        .unwrap();
    let mut files = Vec::new();
    let src = root.join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut parsed = Vec::new();
    let mut defs: Vec<Definition> = Vec::new();
    for p in &files {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let module = module_of(&rel);
        let tree = parser.parse(&text, None).unwrap();
        let mut file = File {
            rel: rel.clone(),
            text: text.clone(),
            module: module.clone(),
            uses: HashMap::new(),
            globs: Vec::new(),
        };
        items(
            &mut parser,
            &text,
            0,
            tree.root_node(),
            &module,
            "",
            &mut file,
            &mut defs,
            0,
        );
        parsed.push((file, tree));
    }
    let mut by_name: HashMap<&str, Vec<&Definition>> = HashMap::new();
    for d in &defs {
        by_name.entry(d.name.as_str()).or_default().push(d);
    }
    let mut out = Vec::new();
    for (file, tree) in &parsed {
        let mut fns = Vec::new();
        functions(&file.text, tree.root_node(), "", &mut fns);
        for (f, owner) in fns {
            let Some(name) = f.child_by_field_name("name") else {
                continue;
            };
            let mut refs = Vec::new();
            references(&file.text, f, &mut refs);
            let mut uses = BTreeMap::new();
            let mut maybe = BTreeMap::new();
            for r in refs {
                let candidates = candidates(&r, file, &owner, &by_name);
                let candidates: Vec<&&Definition> = candidates
                    .iter()
                    .filter(|d| {
                        !(d.file == file.rel
                            && d.line >= f.start_position().row
                            && d.line <= f.end_position().row)
                    })
                    .collect();
                let unsure = r.segs[0] == "?";
                match candidates.len() {
                    0 => {}
                    1 if !unsure => {
                        let d = (**candidates[0]).clone();
                        uses.insert((d.file.clone(), d.line), d);
                    }
                    _ => {
                        for d in candidates {
                            maybe.insert((d.file.clone(), d.line), (**d).clone());
                        }
                    }
                }
            }
            for k in uses.keys() {
                maybe.remove(k);
            }
            out.push(Function {
                file: file.rel.clone(),
                line: name.start_position().row,
                col: name.start_position().column,
                name: file.text[name.byte_range()].to_string(),
                uses: uses.into_values().collect(),
                maybe: maybe.into_values().collect(),
            });
        }
    }
    out
}

/// `src/a/b.rs` → [a, b]; `src/a/mod.rs` → [a]; `src/lib.rs` → [].
fn module_of(rel: &str) -> Vec<String> {
    let inner = rel
        .strip_prefix("src/")
        .unwrap_or(rel)
        .strip_suffix(".rs")
        .unwrap_or(rel);
    let mut parts: Vec<String> = inner.split('/').map(str::to_string).collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

#[allow(clippy::too_many_arguments)]
fn items(
    parser: &mut Parser,
    text: &str,
    base: usize,
    node: Node<'_>,
    module: &[String],
    owner: &str,
    file: &mut File,
    defs: &mut Vec<Definition>,
    depth: usize,
) {
    let mut cursor = node.walk();
    for n in node.named_children(&mut cursor) {
        let name = n
            .child_by_field_name("name")
            .map(|x| text[x.byte_range()].to_string());
        let line = |x: Node<'_>| file.text[..base + x.start_byte()].matches('\n').count();
        let mut push = |name: &str, is_type: bool, at: Node<'_>, owner: &str| {
            defs.push(Definition {
                file: file.rel.clone(),
                line: line(at),
                name: name.to_string(),
                owner: owner.to_string(),
                module: module.to_vec(),
                is_type,
            })
        };
        match n.kind() {
            "function_item"
            | "function_signature_item"
            | "const_item"
            | "static_item"
            | "macro_definition" => {
                if let (Some(name), Some(at)) = (name, n.child_by_field_name("name")) {
                    push(&name, false, at, owner);
                }
            }
            "struct_item" | "enum_item" | "union_item" | "type_item" | "trait_item" => {
                if let (Some(name), Some(at)) = (name.clone(), n.child_by_field_name("name")) {
                    push(&name, true, at, owner);
                    if n.kind() == "trait_item"
                        && let Some(body) = n.child_by_field_name("body")
                    {
                        items(parser, text, base, body, module, &name, file, defs, depth);
                    }
                }
            }
            "impl_item" => {
                let ty = n
                    .child_by_field_name("type")
                    .map(|t| last_type_name(text, t))
                    .unwrap_or_default();
                if let Some(body) = n.child_by_field_name("body") {
                    items(parser, text, base, body, module, &ty, file, defs, depth);
                }
            }
            "mod_item" => {
                if let (Some(name), Some(body)) = (name, n.child_by_field_name("body")) {
                    let mut inner = module.to_vec();
                    inner.push(name);
                    items(parser, text, base, body, &inner, "", file, defs, depth);
                }
            }
            "use_declaration" => {
                flatten_use(&text[n.byte_range()], file);
            }
            "macro_invocation" if depth < 3 => {
                let mut c = n.walk();
                let tt = n.named_children(&mut c).find(|x| x.kind() == "token_tree");
                if let Some(tt) = tt {
                    let r = tt.byte_range();
                    if r.len() >= 2 {
                        let inner = &text[r.start + 1..r.end - 1];
                        if let Some(tree) = parser.parse(inner, None) {
                            let root = tree.root_node();
                            items(
                                parser,
                                inner,
                                base + r.start + 1,
                                root,
                                module,
                                owner,
                                file,
                                defs,
                                depth + 1,
                            );
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// `use a::{b::C, d as E, f::*};` → C → a::b::C, E → a::d, glob a::f. Textual, on purpose.
fn flatten_use(written: &str, file: &mut File) {
    let body = written
        .trim()
        .trim_start_matches("pub(crate)")
        .trim_start_matches("pub(super)")
        .trim_start_matches("pub")
        .trim()
        .trim_start_matches("use")
        .trim()
        .trim_end_matches(';');
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    expand("", &compact, file);
}

fn expand(prefix: &str, tree: &str, file: &mut File) {
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}::{b}")
        }
    };
    if let Some(open) = tree.find('{') {
        let head = tree[..open].trim_end_matches("::");
        let inner = &tree[open + 1..tree.len().saturating_sub(1)];
        let prefix = join(prefix, head);
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand(&prefix, &inner[start..i], file);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand(&prefix, &inner[start..], file);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once("as") {
        Some((p, a))
            if !p.is_empty()
                && p.ends_with(|c: char| c.is_alphanumeric() || c == '_')
                && tree.contains("as")
                && !a.contains("::") =>
        {
            (p, Some(a))
        }
        _ => (tree, None),
    };
    let full = join(prefix, path);
    let segs: Vec<String> = full.split("::").map(str::to_string).collect();
    if segs.last().is_some_and(|s| s == "*") {
        file.globs.push(segs[..segs.len() - 1].to_vec());
        return;
    }
    let segs: Vec<String> = if segs.last().is_some_and(|s| s == "self") {
        segs[..segs.len() - 1].to_vec()
    } else {
        segs
    };
    let local = alias
        .map(str::to_string)
        .or_else(|| segs.last().cloned())
        .unwrap_or_default();
    file.uses.insert(local, segs);
}

fn last_type_name(text: &str, t: Node<'_>) -> String {
    match t.kind() {
        "generic_type" => t
            .child_by_field_name("type")
            .map(|x| last_type_name(text, x))
            .unwrap_or_default(),
        "scoped_type_identifier" => t
            .child_by_field_name("name")
            .map(|x| text[x.byte_range()].to_string())
            .unwrap_or_default(),
        "reference_type" => t
            .child_by_field_name("type")
            .map(|x| last_type_name(text, x))
            .unwrap_or_default(),
        _ => text[t.byte_range()].to_string(),
    }
}

/// Functions with bodies, with the type of the impl they are in.
fn functions<'t>(text: &str, node: Node<'t>, owner: &str, out: &mut Vec<(Node<'t>, String)>) {
    let mut cursor = node.walk();
    for n in node.named_children(&mut cursor) {
        match n.kind() {
            "function_item" if n.child_by_field_name("body").is_some() => {
                out.push((n, owner.to_string()))
            }
            "impl_item" => {
                if let Some(body) = n.child_by_field_name("body") {
                    let ty = n
                        .child_by_field_name("type")
                        .map(|t| last_type_name(text, t))
                        .unwrap_or_default();
                    functions(text, body, &ty, out);
                }
            }
            "mod_item" => {
                if let Some(body) = n.child_by_field_name("body") {
                    functions(text, body, "", out);
                }
            }
            _ => {}
        }
    }
}

/// A reference: the path as written (a method on `self` is `[self, name]`).
struct Reference {
    segs: Vec<String>,
}

fn references(text: &str, f: Node<'_>, out: &mut Vec<Reference>) {
    let mut stack = vec![f];
    while let Some(n) = stack.pop() {
        match n.kind() {
            "scoped_identifier" | "scoped_type_identifier" => {
                let segs: Vec<String> = text[n.byte_range()]
                    .split("::")
                    .map(|s| s.split('<').next().unwrap_or("").trim().to_string())
                    .collect();
                if segs.iter().all(|s| {
                    !s.is_empty() && !s.contains(|c: char| !(c.is_alphanumeric() || c == '_'))
                }) {
                    // `Type::item` uses the type too.
                    let owner = segs.len() - 1;
                    if owner > 0 && segs[owner - 1].starts_with(|c: char| c.is_ascii_uppercase()) {
                        out.push(Reference {
                            segs: segs[..owner].to_vec(),
                        });
                    }
                    out.push(Reference { segs });
                }
                continue;
            }
            "type_identifier" => out.push(Reference {
                segs: vec![text[n.byte_range()].to_string()],
            }),
            "call_expression" => {
                if let Some(func) = n.child_by_field_name("function") {
                    if func.kind() == "identifier" {
                        out.push(Reference {
                            segs: vec![text[func.byte_range()].to_string()],
                        });
                    }
                    if func.kind() == "field_expression"
                        && let Some(field) = func.child_by_field_name("field")
                    {
                        let on_self = func
                            .child_by_field_name("value")
                            .is_some_and(|v| v.kind() == "self");
                        let receiver = if on_self { "self" } else { "?" };
                        out.push(Reference {
                            segs: vec![receiver.into(), text[field.byte_range()].to_string()],
                        });
                    }
                }
            }
            "macro_invocation" => {
                if let Some(m) = n.child_by_field_name("macro")
                    && m.kind() == "identifier"
                {
                    out.push(Reference {
                        segs: vec![format!("{}!", &text[m.byte_range()])],
                    });
                }
                // Inside the tokens: calls and paths, read from the text.
                let mut c = n.walk();
                let tokens: Vec<Node<'_>> = n
                    .named_children(&mut c)
                    .filter(|t| t.kind() == "token_tree")
                    .collect();
                for t in tokens {
                    let inner = &text[t.byte_range()];
                    for m in TOKEN_PATH.find_iter(inner) {
                        // `x.f(`: a method, not a path.
                        if inner[..m.start()].ends_with('.') {
                            continue;
                        }
                        let written = m.as_str().trim_end_matches(['(', ' ']);
                        let segs: Vec<String> = written.split("::").map(str::to_string).collect();
                        if segs.len() > 1 || m.as_str().ends_with('(') {
                            out.push(Reference { segs });
                        }
                    }
                }
                continue;
            }
            "identifier" => {
                // A constant or static by its name.
                let name = &text[n.byte_range()];
                if name.len() > 1
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                {
                    out.push(Reference {
                        segs: vec![name.to_string()],
                    });
                }
            }
            _ => {}
        }
        let mut cursor = n.walk();
        stack.extend(n.named_children(&mut cursor));
    }
}

fn candidates<'d>(
    r: &Reference,
    file: &File,
    owner: &str,
    by_name: &HashMap<&str, Vec<&'d Definition>>,
) -> Vec<&'d Definition> {
    let last = r.segs.last().cloned().unwrap_or_default();
    if let Some(mac) = last.strip_suffix('!') {
        // Textual scope, roughly: this file, an enclosing module, a `macros` module.
        return by_name
            .get(mac)
            .map(|v| {
                v.iter()
                    .filter(|d| {
                        d.owner.is_empty()
                            && (d.file == file.rel
                                || (d.module.len() < file.module.len()
                                    && file.module.starts_with(&d.module))
                                || d.file.ends_with("macros.rs")
                                || d.file.contains("/macros/"))
                    })
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
    }
    if r.segs.len() == 1 && r.segs[0] == "Self" {
        return by_name
            .get(owner)
            .map(|v| {
                v.iter()
                    .filter(|d| d.is_type && d.owner.is_empty() && d.file == file.rel)
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
    }
    let named = |n: &str| by_name.get(n).cloned().unwrap_or_default();
    // Expand the first segment through the file's `use`s.
    let mut segs = r.segs.clone();
    if let Some(expanded) = file.uses.get(&segs[0]) {
        let mut e = expanded.clone();
        e.extend(segs[1..].iter().cloned());
        segs = e;
    }
    let last = segs.last().cloned().unwrap_or_default();
    // A path from another crate (`std::…`, `tokio_test::…`) names nothing of this one.
    let first = segs[0].as_str();
    let own_module = |m: &str| {
        by_name
            .values()
            .flatten()
            .any(|d| d.module.iter().any(|f| f == m))
    };
    if segs.len() > 1
        && !matches!(first, "crate" | "self" | "super" | "Self")
        && first.starts_with(|c: char| c.is_ascii_lowercase())
        && !own_module(first)
    {
        return Vec::new();
    }
    if segs.len() == 1 {
        // A bare name: an item of this module, else of a glob-imported module.
        let here: Vec<&Definition> = named(&last)
            .into_iter()
            .filter(|d| d.owner.is_empty() && d.file == file.rel)
            .collect();
        if !here.is_empty() {
            return here;
        }
        let mut found = Vec::new();
        for g in &file.globs {
            let module = absolute(g, &file.module);
            found.extend(
                named(&last)
                    .into_iter()
                    .filter(|d| d.owner.is_empty() && d.module == module),
            );
        }
        return found;
    }
    let qualifier = &segs[segs.len() - 2];
    if qualifier == "?" {
        // A method on a value whose type only a checker knows: any method of that name, maybe.
        return named(&last)
            .into_iter()
            .filter(|d| !d.owner.is_empty())
            .collect();
    }
    if qualifier == "self" && r.segs[0] == "self" && r.segs.len() == 2 || qualifier == "Self" {
        return named(&last)
            .into_iter()
            .filter(|d| d.owner == owner && !owner.is_empty())
            .collect();
    }
    if qualifier.starts_with(|c: char| c.is_ascii_uppercase()) {
        let ty = file
            .uses
            .get(qualifier)
            .and_then(|p| p.last().cloned())
            .unwrap_or(qualifier.clone());
        let assoc: Vec<&Definition> = named(&last).into_iter().filter(|d| d.owner == ty).collect();
        if !assoc.is_empty() {
            return assoc;
        }
        // `Enum::Variant`: the enum.
        return named(&ty)
            .into_iter()
            .filter(|d| d.is_type && d.owner.is_empty())
            .collect();
    }
    // A module path: the item of that module, else of a module under it (a re-export), else
    // of a module ending the same way.
    let module = absolute(&segs[..segs.len() - 1], &file.module);
    let free: Vec<&Definition> = named(&last)
        .into_iter()
        .filter(|d| d.owner.is_empty())
        .collect();
    let exact: Vec<&Definition> = free
        .iter()
        .filter(|d| d.module == module)
        .copied()
        .collect();
    if !exact.is_empty() {
        return exact;
    }
    let under: Vec<&Definition> = free
        .iter()
        .filter(|d| !module.is_empty() && d.module.starts_with(&module))
        .copied()
        .collect();
    if !under.is_empty() {
        return under;
    }
    // The weakest reading (a module that only ends the same way, as a re-export through
    // `cfg` alternatives would): never certain, so undecided however many it leaves.
    let weak: Vec<&Definition> = free
        .into_iter()
        .filter(|d| {
            d.module
                .ends_with(&module[module.len().saturating_sub(1)..])
                && module.iter().all(|m| d.module.contains(m) || m.is_empty())
        })
        .collect();
    match weak.len() {
        1 => vec![weak[0], weak[0]],
        _ => weak,
    }
}

/// A written module path made absolute from the file's module (`crate`, `self`, `super`).
fn absolute(path: &[String], here: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, s) in path.iter().enumerate() {
        match s.as_str() {
            "crate" if i == 0 => out.clear(),
            "self" if i == 0 => out = here.to_vec(),
            "super" => {
                if i == 0 {
                    out = here.to_vec();
                }
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    out
}
