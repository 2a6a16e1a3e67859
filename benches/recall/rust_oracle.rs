//! The Rust side of the recall eval's ground truth, written apart from Strata's resolver and
//! working differently: a crate-wide index of definitions by name (free items with the module path
//! their file's path gives, impl and trait items with their type), and for each function the paths,
//! types, calls, macros and `self.method()`/`Self::item` calls it writes, each kept only when its
//! written qualifier (or the `use` that brought the name in) leaves exactly one definition.
//! Ambiguous references are reported apart ("maybe"), and count neither way.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// `pub use` re-exports: (module, local name, target path as written).
    reexports: Vec<(Vec<String>, String, Vec<String>)>,
    /// `pub use …::*`: (module, target module as written).
    reglobs: Vec<(Vec<String>, Vec<String>)>,
    /// Modules whose `mod` declaration the build leaves out.
    off: Vec<Vec<String>>,
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
            reexports: Vec::new(),
            reglobs: Vec::new(),
            off: Vec::new(),
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
    // Files of modules the build leaves out (`#[cfg(…)] mod x;`) hold nothing of it.
    let off: Vec<Vec<String>> = parsed.iter().flat_map(|(f, _)| f.off.clone()).collect();
    let left_out = |module: &[String]| off.iter().any(|o| module.starts_with(o));
    defs.retain(|d| !left_out(&d.module));
    parsed.retain(|(f, _)| !left_out(&f.module));
    let mut by_name: HashMap<&str, Vec<&Definition>> = HashMap::new();
    for d in &defs {
        by_name.entry(d.name.as_str()).or_default().push(d);
    }
    let mut ex = Reexports::default();
    for d in &defs {
        for n in 0..=d.module.len() {
            ex.modules.insert(d.module[..n].to_vec());
        }
    }
    for (file, _) in &parsed {
        for n in 0..=file.module.len() {
            ex.modules.insert(file.module[..n].to_vec());
        }
        for (module, local, target) in &file.reexports {
            ex.modules.insert(module.clone());
            ex.named
                .entry(module.clone())
                .or_default()
                .push((local.clone(), target.clone()));
        }
        for (module, target) in &file.reglobs {
            ex.modules.insert(module.clone());
            ex.globs
                .entry(module.clone())
                .or_default()
                .push(target.clone());
        }
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
                let candidates = candidates(&r, file, &owner, &by_name, &ex);
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
        if configured_out(text, n) {
            if n.kind() == "mod_item"
                && let Some(name) = n.child_by_field_name("name")
            {
                let mut off = module.to_vec();
                off.push(text[name.byte_range()].to_string());
                file.off.push(off);
            }
            continue;
        }
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
                flatten_use(&text[n.byte_range()], module, file);
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
fn flatten_use(written: &str, module: &[String], file: &mut File) {
    let public = written.trim_start().starts_with("pub");
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
    let mut scratch = File {
        rel: String::new(),
        text: String::new(),
        module: Vec::new(),
        uses: HashMap::new(),
        globs: Vec::new(),
        reexports: Vec::new(),
        reglobs: Vec::new(),
        off: Vec::new(),
    };
    expand("", &compact, &mut scratch);
    if public {
        for (local, target) in &scratch.uses {
            file.reexports
                .push((module.to_vec(), local.clone(), target.clone()));
        }
        for g in &scratch.globs {
            file.reglobs.push((module.to_vec(), g.clone()));
        }
    }
    file.uses.extend(scratch.uses);
    file.globs.extend(scratch.globs);
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
        if configured_out(text, n) {
            continue;
        }
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
                // `f::<T>(…)`, `x.f::<T>(…)`: the function inside the turbofish.
                let func = n.child_by_field_name("function").map(|f| {
                    if f.kind() == "generic_function" {
                        f.child_by_field_name("function").unwrap_or(f)
                    } else {
                        f
                    }
                });
                if let Some(func) = func {
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
                // A constant or static by its name; a function passed by its name.
                let name = &text[n.byte_range()];
                let body = &text[f.byte_range()];
                // Unless the function binds that name itself (a local, a parameter, a pattern).
                let bound = [
                    format!("let {name} "),
                    format!("let {name}:"),
                    format!("let mut {name}"),
                    format!("{name}: "),
                    format!("|{name}|"),
                    format!("|{name},"),
                    format!(", {name}|"),
                    format!("Some({name})"),
                    format!("Ok({name})"),
                    format!("Err({name})"),
                ]
                .iter()
                .any(|b| body.contains(b.as_str()));
                if n.parent().is_some_and(|p| p.kind() == "arguments") && !bound {
                    out.push(Reference {
                        segs: vec![format!("{name}()")],
                    });
                } else if name.len() > 1
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
    ex: &Reexports,
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
    if let Some(function) = last.strip_suffix("()") {
        // A function passed by its name: one of this file's, or one a `use` names.
        let here: Vec<&Definition> = by_name
            .get(function)
            .into_iter()
            .flatten()
            .filter(|d| d.owner.is_empty() && !d.is_type && d.file == file.rel)
            .copied()
            .collect();
        if !here.is_empty() || !file.uses.contains_key(function) {
            return here;
        }
        let written = Reference {
            segs: vec![function.to_string()],
        };
        return candidates(&written, file, owner, by_name, ex)
            .into_iter()
            .filter(|d| !d.is_type)
            .collect();
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
    // As rustc reads a path's first segment: a module of this crate only when this module has a
    // child module of that name (a crate-local `std` shadows the extern crate only there);
    // otherwise an extern crate (`std::io::Error` is std's even in a crate with a `std` module).
    let child_module = |m: &str| ex.is_child(&file.module, m);
    if segs.len() > 1
        && !matches!(first, "crate" | "self" | "super" | "Self")
        && first.starts_with(|c: char| c.is_ascii_lowercase())
        && !child_module(first)
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
    // A path that starts at a child module is relative to this one.
    let mut written = segs[..segs.len() - 1].to_vec();
    if !matches!(first, "crate" | "self" | "super") && child_module(first) {
        written.insert(0, "self".to_string());
    }
    let module = absolute(&written, &file.module);
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
    // Through `pub use` re-exports (named and glob), as rustc follows them.
    let mut through: Vec<&Definition> = Vec::new();
    for m in ex.module(&module, 0) {
        for d in ex.item(&m, &last, by_name, 0) {
            if !through.iter().any(|t| t.file == d.file && t.line == d.line) {
                through.push(d);
            }
        }
    }
    if !through.is_empty() {
        return through;
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

/// The crate's modules and its `pub use` re-exports, to follow a path as rustc does.
#[derive(Default)]
struct Reexports {
    modules: HashSet<Vec<String>>,
    /// Module → (local name, target as written).
    named: HashMap<Vec<String>, Vec<(String, Vec<String>)>>,
    /// Module → glob targets as written.
    globs: HashMap<Vec<String>, Vec<Vec<String>>>,
}

/// How deep re-exports are followed (a cycle ends here).
const REEXPORT_DEPTH: usize = 8;

impl Reexports {
    fn is_child(&self, module: &[String], name: &str) -> bool {
        let mut child = module.to_vec();
        child.push(name.to_string());
        self.modules.contains(&child)
    }

    /// A path written in `module` made absolute; `None` for another crate's.
    fn place(&self, raw: &[String], module: &[String]) -> Option<Vec<String>> {
        match raw.first()?.as_str() {
            "crate" | "self" | "super" => Some(absolute(raw, module)),
            first if self.is_child(module, first) => {
                let mut p = module.to_vec();
                p.extend(raw.iter().cloned());
                Some(p)
            }
            _ => None,
        }
    }

    /// The modules an absolute module path reaches, through re-exported modules and globs.
    fn module(&self, path: &[String], depth: usize) -> Vec<Vec<String>> {
        if depth > REEXPORT_DEPTH {
            return Vec::new();
        }
        let mut here: Vec<Vec<String>> = vec![Vec::new()];
        for seg in path {
            let mut next: Vec<Vec<String>> = Vec::new();
            for c in &here {
                let mut child = c.clone();
                child.push(seg.clone());
                if self.modules.contains(&child) {
                    next.push(child);
                    continue;
                }
                for (local, target) in self.named.get(c).into_iter().flatten() {
                    if local == seg
                        && let Some(t) = self.place(target, c)
                    {
                        next.extend(self.module(&t, depth + 1));
                    }
                }
                for g in self.globs.get(c).into_iter().flatten() {
                    let Some(g) = self.place(g, c) else { continue };
                    for m in self.module(&g, depth + 1) {
                        let mut child = m;
                        child.push(seg.clone());
                        if self.modules.contains(&child) {
                            next.push(child);
                        }
                    }
                }
            }
            next.sort();
            next.dedup();
            here = next;
        }
        here
    }

    /// The free items named `name` that `module` holds or re-exports.
    fn item<'d>(
        &self,
        module: &[String],
        name: &str,
        by_name: &HashMap<&str, Vec<&'d Definition>>,
        depth: usize,
    ) -> Vec<&'d Definition> {
        if depth > REEXPORT_DEPTH {
            return Vec::new();
        }
        let direct: Vec<&Definition> = by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter(|d| d.owner.is_empty() && d.module == module)
            .copied()
            .collect();
        if !direct.is_empty() {
            return direct;
        }
        let mut out = Vec::new();
        for (local, target) in self.named.get(module).into_iter().flatten() {
            if local != name {
                continue;
            }
            let Some(t) = self.place(target, module) else {
                continue;
            };
            let Some((item, at)) = t.split_last() else {
                continue;
            };
            for m in self.module(at, depth + 1) {
                out.extend(self.item(&m, item, by_name, depth + 1));
            }
        }
        if !out.is_empty() {
            return out;
        }
        for g in self.globs.get(module).into_iter().flatten() {
            let Some(g) = self.place(g, module) else {
                continue;
            };
            for m in self.module(&g, depth + 1) {
                out.extend(self.item(&m, name, by_name, depth + 1));
            }
        }
        out
    }
}

/// Whether an item's `#[cfg(…)]` attributes leave it out of the build the ground truth reads: a
/// Linux build of the library with every feature on and no `test` (nor any other `--cfg`).
fn configured_out(text: &str, item: Node<'_>) -> bool {
    let mut at = item.prev_sibling();
    while let Some(n) = at {
        match n.kind() {
            "attribute_item" => {
                let written: String = text[n.byte_range()]
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                if let Some(pred) = written
                    .strip_prefix("#[cfg(")
                    .and_then(|p| p.strip_suffix(")]"))
                    && !cfg_holds(pred)
                {
                    return true;
                }
            }
            "line_comment" | "block_comment" => {}
            _ => break,
        }
        at = n.prev_sibling();
    }
    false
}

/// Evaluates a `cfg` predicate (whitespace removed) for that build.
fn cfg_holds(pred: &str) -> bool {
    let args = |inner: &str| -> Vec<String> {
        let mut out = Vec::new();
        let (mut depth, mut start, mut quoted) = (0, 0, false);
        for (i, c) in inner.char_indices() {
            match c {
                '"' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if depth == 0 && !quoted => {
                    out.push(inner[start..i].to_string());
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < inner.len() {
            out.push(inner[start..].to_string());
        }
        out
    };
    let call = |f: &str| {
        pred.strip_prefix(f)
            .and_then(|p| p.strip_prefix('('))
            .and_then(|p| p.strip_suffix(')'))
    };
    if let Some(inner) = call("all") {
        return args(inner).iter().all(|a| cfg_holds(a));
    }
    if let Some(inner) = call("any") {
        return args(inner).iter().any(|a| cfg_holds(a));
    }
    if let Some(inner) = call("not") {
        return !cfg_holds(inner);
    }
    if let Some((key, value)) = pred.split_once('=') {
        let value = value.trim_matches('"');
        return match key {
            "feature" => true,
            "target_os" => value == "linux",
            "target_family" => value == "unix",
            "target_arch" => value == "x86_64",
            "target_pointer_width" => value == "64",
            "target_endian" => value == "little",
            "target_env" => value == "gnu",
            "panic" => value == "unwind",
            "target_has_atomic" => true,
            _ => false,
        };
    }
    matches!(pred, "unix" | "debug_assertions")
}
