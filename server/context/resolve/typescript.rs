//! TypeScript and JavaScript resolution: named, default, namespace and type-only imports;
//! relative module specifiers with and without extensions (`./x`, `./x.js` for `x.ts`, `./dir`
//! for its `index.ts`); `tsconfig.json` `paths` and `baseUrl` (with `extends`); barrels and
//! `export … from` chains (`export *`, `export * as ns`, `export { a as b }`); `ns.name` of a
//! namespace import; `this.member` and `value.member` through the class or interface the code
//! names (a parameter's or a field's type, `new C()`), up its `extends` chain. A name neither
//! bound in the function, imported nor declared in the file is a global: outside the workspace.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use tree_sitter::{Node, Tree};

use super::{Def, Files, Outcome, Use, dir, focus_node, join};
use crate::archive::symbols::{Import, SymbolKind, text_of, ts_type_head};

/// How deep re-export chains and `extends` chains are followed.
const DEPTH: usize = 12;

/// Extensions a module specifier may leave out, in the order TypeScript tries them.
const EXTENSIONS: &[&str] = &[
    ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mts", ".mjs", ".cts", ".cjs",
];

pub(super) fn uses(
    files: &Files<'_>,
    text: &str,
    tree: &Tree,
    base: usize,
    ranges: &[Range<usize>],
) -> Vec<Use> {
    let mut r = Ts {
        files,
        text,
        base,
        configs: HashMap::new(),
        locals: HashMap::new(),
        generics: HashSet::new(),
        class: None,
    };
    let mut out = Vec::new();
    for range in ranges {
        let Some(node) = focus_node(tree, range) else {
            continue;
        };
        r.enter(node, range);
        let mut refs = Vec::new();
        collect(text, node, range, &r, &mut refs);
        for reference in refs {
            out.push(r.resolve_ref(&reference));
        }
    }
    out
}

#[derive(Debug)]
enum Ref<'t> {
    Name {
        name: String,
        at: Range<usize>,
    },
    /// `ns.name`, `Type.name`, `ns.Type` where `ns` is not bound in the function.
    Qualified {
        ns: String,
        name: String,
        at: Range<usize>,
    },
    /// `this.name`.
    This {
        name: String,
        at: Range<usize>,
    },
    /// `value.name` on a value of the function's.
    Member {
        receiver: Node<'t>,
        name: String,
        at: Range<usize>,
    },
}

/// What a name or a specifier resolves to.
enum Target {
    Defs(Vec<Def>),
    /// A whole module (a namespace import, `export * as ns`).
    Module(String),
    External,
    Unresolved,
}

/// `compilerOptions` that place modules: `baseUrl` and `paths`, made workspace-relative.
#[derive(Clone, Debug, Default)]
struct Paths {
    base_url: Option<String>,
    /// Pattern → targets (each already joined to its base).
    paths: Vec<(String, Vec<String>)>,
}

struct Ts<'a, 't> {
    files: &'a Files<'a>,
    /// The text of the document's segment the focus lies in, and where it starts: the tree's
    /// offsets are the segment's, the symbol tables' the document's.
    text: &'a str,
    base: usize,
    configs: HashMap<String, Option<Paths>>,
    /// Names bound in the function, with the node stating their type (or their value).
    locals: HashMap<String, Option<Node<'t>>>,
    generics: HashSet<String>,
    /// The class around the focus.
    class: Option<Def>,
}

impl<'a, 't> Ts<'a, 't> {
    fn enter(&mut self, node: Node<'t>, range: &Range<usize>) {
        self.locals.clear();
        self.generics.clear();
        let text = self.text;
        let here = self.files.current().to_string();
        self.class = self.files.facts(&here).and_then(|f| {
            f.symbols
                .iter()
                .filter(|s| {
                    s.kind == SymbolKind::Class
                        && s.range.start <= range.start + self.base
                        && range.end + self.base <= s.range.end
                })
                .min_by_key(|s| s.range.len())
                .map(|s| Def {
                    path: here.clone(),
                    symbol: s.clone(),
                })
        });
        // Parameters of the functions around the focus are bound in it too.
        let mut up = node.parent();
        while let Some(n) = up {
            self.bind_params(n);
            up = n.parent();
        }
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            match n.kind() {
                "variable_declarator" => {
                    if let Some(name) = n.child_by_field_name("name") {
                        let ty = n
                            .child_by_field_name("type")
                            .or_else(|| n.child_by_field_name("value"));
                        self.bind(name, ty);
                    }
                }
                "function_declaration"
                | "class_declaration"
                | "function_expression"
                | "generator_function_declaration" => {
                    if n.id() != node.id()
                        && let Some(name) = n.child_by_field_name("name")
                    {
                        self.locals.insert(text_of(text, name).to_string(), None);
                    }
                    self.bind_params(n);
                }
                "arrow_function" | "method_definition" => self.bind_params(n),
                "catch_clause" => {
                    if let Some(p) = n.child_by_field_name("parameter") {
                        self.bind(p, None);
                    }
                }
                "for_in_statement" => {
                    if let Some(left) = n.child_by_field_name("left") {
                        self.bind(left, None);
                    }
                }
                "type_parameter" => {
                    if let Some(name) = n.child_by_field_name("name") {
                        self.generics.insert(text_of(text, name).to_string());
                    }
                }
                "infer_type" => {
                    if let Some(name) = n.named_child(0) {
                        self.generics.insert(text_of(text, name).to_string());
                    }
                }
                _ => {}
            }
            let mut cursor = n.walk();
            let children: Vec<Node<'t>> = n.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }

    fn bind_params(&mut self, n: Node<'t>) {
        if let Some(params) = n.child_by_field_name("type_parameters") {
            let mut cursor = params.walk();
            for p in params.named_children(&mut cursor) {
                if let Some(name) = p.child_by_field_name("name") {
                    self.generics.insert(text_of(self.text, name).to_string());
                }
            }
        }
        if let Some(param) = n.child_by_field_name("parameter") {
            self.bind(param, None); // `x => …`
        }
        let Some(params) = n.child_by_field_name("parameters") else {
            return;
        };
        let mut cursor = params.walk();
        for p in params.named_children(&mut cursor) {
            let pattern = p
                .child_by_field_name("pattern")
                .or_else(|| p.child_by_field_name("name"))
                .unwrap_or(p);
            let ty = p.child_by_field_name("type");
            self.bind(pattern, ty);
        }
    }

    /// Binds the identifiers of a pattern.
    fn bind(&mut self, pattern: Node<'t>, ty: Option<Node<'t>>) {
        let text = self.text;
        match pattern.kind() {
            "identifier" | "shorthand_property_identifier_pattern" => {
                self.locals.insert(text_of(text, pattern).to_string(), ty);
            }
            "this" => {}
            _ => {
                let mut cursor = pattern.walk();
                let children: Vec<Node<'t>> = pattern.named_children(&mut cursor).collect();
                for c in children {
                    // `{ key: value }` binds the value; a default value is an expression.
                    if pattern.kind() == "pair_pattern"
                        && pattern
                            .child_by_field_name("key")
                            .is_some_and(|k| k.id() == c.id())
                    {
                        continue;
                    }
                    if matches!(
                        pattern.kind(),
                        "assignment_pattern" | "object_assignment_pattern"
                    ) && pattern
                        .child_by_field_name("right")
                        .is_some_and(|k| k.id() == c.id())
                    {
                        continue;
                    }
                    if c.kind() == "type_annotation" {
                        continue;
                    }
                    self.bind(c, None);
                }
            }
        }
    }

    fn resolve_ref(&mut self, reference: &Ref<'t>) -> Use {
        let here = self.files.current().to_string();
        let (name, at, target) = match reference {
            Ref::Name { name, at } => (name.clone(), at.clone(), self.name_in(&here, name, 0)),
            Ref::Qualified { ns, name, at } => {
                let target = match self.name_in(&here, ns, 0) {
                    Target::Module(file) => self.export_of(&file, name, 0, &mut HashSet::new()),
                    Target::Defs(defs) => {
                        let members: Vec<Def> = defs
                            .iter()
                            .filter(|d| {
                                d.symbol.kind.is_type() || d.symbol.kind == SymbolKind::Module
                            })
                            .flat_map(|d| self.members(d, name, 0))
                            .collect();
                        if members.is_empty() {
                            Target::External
                        } else {
                            Target::Defs(members)
                        }
                    }
                    _ => Target::External,
                };
                (name.clone(), at.clone(), target)
            }
            Ref::This { name, at } => {
                let target = match self.class.clone() {
                    Some(class) => {
                        let found = self.members(&class, name, 0);
                        if found.is_empty() {
                            Target::External
                        } else {
                            Target::Defs(found)
                        }
                    }
                    None => Target::External,
                };
                (name.clone(), at.clone(), target)
            }
            Ref::Member { receiver, name, at } => {
                let namespace = self.module_of(*receiver, 0);
                let target = match namespace {
                    Some(module) => self.export_of(&module, name, 0, &mut HashSet::new()),
                    None => match self.type_of(*receiver, 0) {
                        Some(defs) => {
                            let found: Vec<Def> =
                                defs.iter().flat_map(|d| self.members(d, name, 0)).collect();
                            if found.is_empty() {
                                Target::External
                            } else {
                                Target::Defs(found)
                            }
                        }
                        None => Target::External,
                    },
                };
                (name.clone(), at.clone(), target)
            }
        };
        let outcome = match target {
            Target::Defs(mut defs) => {
                defs.dedup_by(|a, b| {
                    a.path == b.path && a.symbol.name_start == b.symbol.name_start
                });
                Outcome::Defs(defs)
            }
            Target::Module(_) | Target::External => Outcome::External,
            Target::Unresolved => Outcome::Unresolved,
        };
        Use { name, at, outcome }
    }

    /// The module an expression names: a namespace import, or a namespace exported by one.
    fn module_of(&mut self, node: Node<'t>, depth: usize) -> Option<String> {
        if depth > DEPTH {
            return None;
        }
        let here = self.files.current().to_string();
        match node.kind() {
            "identifier" if !self.locals.contains_key(text_of(self.text, node)) => {
                match self.name_in(&here, text_of(self.text, node), 0) {
                    Target::Module(file) => Some(file),
                    _ => None,
                }
            }
            "member_expression" => {
                let base = self.module_of(node.child_by_field_name("object")?, depth + 1)?;
                let name = text_of(self.text, node.child_by_field_name("property")?).to_string();
                match self.export_of(&base, &name, 0, &mut HashSet::new()) {
                    Target::Module(file) => Some(file),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The definitions of the type of an expression, where the code names it.
    fn type_of(&mut self, node: Node<'t>, depth: usize) -> Option<Vec<Def>> {
        if depth > 6 {
            return None;
        }
        let here = self.files.current().to_string();
        let text = self.text;
        match node.kind() {
            "this" => self.class.clone().map(|c| vec![c]),
            "identifier" => {
                let name = text_of(text, node);
                match self.locals.get(name).copied() {
                    Some(Some(ty)) => match ty.kind() {
                        "type_annotation" => self.type_defs(&here, &ts_type_head(text, ty)),
                        _ => self.type_of(ty, depth + 1),
                    },
                    Some(None) => None,
                    None => match self.name_in(&here, name, 0) {
                        Target::Defs(defs) => {
                            let d = defs.first()?;
                            self.type_defs(&d.path.clone(), &d.symbol.detail.clone())
                        }
                        _ => None,
                    },
                }
            }
            "new_expression" => {
                let c = node.child_by_field_name("constructor")?;
                self.type_defs(&here, &ts_type_head(text, c))
            }
            "member_expression" => {
                let base = self.type_of(node.child_by_field_name("object")?, depth + 1)?;
                let name = text_of(text, node.child_by_field_name("property")?).to_string();
                let field = base
                    .iter()
                    .flat_map(|d| self.members(d, &name, 0))
                    .find(|d| d.symbol.kind == SymbolKind::Field)?;
                self.type_defs(&field.path, &field.symbol.detail)
            }
            "parenthesized_expression" | "non_null_expression" | "await_expression" => {
                self.type_of(node.named_child(0)?, depth + 1)
            }
            "as_expression" | "satisfies_expression" => {
                let ty = node.named_child(1)?;
                self.type_defs(&here, &ts_type_head(text, ty))
            }
            _ => None,
        }
    }

    /// The class, interface or alias named `name` as seen from `file`.
    fn type_defs(&mut self, file: &str, name: &str) -> Option<Vec<Def>> {
        if name.is_empty() {
            return None;
        }
        match self.name_in(file, name, 0) {
            Target::Defs(defs) => {
                let types: Vec<Def> = defs
                    .into_iter()
                    .filter(|d| d.symbol.kind.is_type())
                    .collect();
                (!types.is_empty()).then_some(types)
            }
            _ => None,
        }
    }

    /// The members named `name` of a class, interface or alias, up its `extends` chain.
    fn members(&mut self, ty: &Def, name: &str, depth: usize) -> Vec<Def> {
        if depth > DEPTH {
            return Vec::new();
        }
        let Some(facts) = self.files.facts(&ty.path) else {
            return Vec::new();
        };
        let found: Vec<Def> = facts
            .symbols
            .iter()
            .filter(|s| s.container == ty.symbol.name && s.name == name)
            .map(|s| Def {
                path: ty.path.clone(),
                symbol: s.clone(),
            })
            .collect();
        if !found.is_empty() || ty.symbol.detail.is_empty() {
            return found;
        }
        match self.name_in(&ty.path.clone(), &ty.symbol.detail.clone(), 0) {
            Target::Defs(supers) => supers
                .iter()
                .filter(|d| d.symbol.kind.is_type() && d.symbol.name_start != ty.symbol.name_start)
                .flat_map(|d| self.members(d, name, depth + 1))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What `name` means at the top of `file`: an import, or a declaration of the file.
    fn name_in(&mut self, file: &str, name: &str, depth: usize) -> Target {
        let Some(facts) = self.files.facts(file) else {
            return Target::Unresolved;
        };
        let imports: Vec<Import> = facts
            .imports
            .iter()
            .filter(|i| !i.export && i.local == name)
            .cloned()
            .collect();
        if let Some(import) = imports.first() {
            return self.import(file, import, depth);
        }
        let defs: Vec<Def> = facts
            .symbols
            .iter()
            .filter(|s| s.name == name && s.container.is_empty())
            .map(|s| Def {
                path: file.to_string(),
                symbol: s.clone(),
            })
            .collect();
        if !defs.is_empty() {
            return Target::Defs(defs);
        }
        // A global declared by a script of the workspace (`declare const __DEV__` in a `.d.ts`
        // with no imports or exports).
        let globals: Vec<Def> = self
            .files
            .named(name)
            .into_iter()
            .filter(|d| d.symbol.container.is_empty() && d.path.ends_with(".d.ts"))
            .filter(|d| {
                self.files
                    .facts(&d.path)
                    .is_some_and(|f| f.imports.is_empty() && f.symbols.iter().all(|s| !s.public))
            })
            .collect();
        if !globals.is_empty() {
            return Target::Defs(globals);
        }
        Target::External
    }

    fn import(&mut self, file: &str, import: &Import, depth: usize) -> Target {
        let Some(target) = self.module(file, &import.path) else {
            return if is_relative(&import.path) {
                Target::Unresolved
            } else {
                Target::External
            };
        };
        if import.name == "*" {
            return Target::Module(target);
        }
        self.export_of(&target, &import.name, depth + 1, &mut HashSet::new())
    }

    /// What `file` exports as `name`: its own exported declaration, a re-export of a name of its
    /// own or of another module, or a name of a module it re-exports whole.
    fn export_of(
        &mut self,
        file: &str,
        name: &str,
        depth: usize,
        seen: &mut HashSet<(String, String)>,
    ) -> Target {
        if depth > DEPTH || !seen.insert((file.to_string(), name.to_string())) {
            return Target::Unresolved;
        }
        let Some(facts) = self.files.facts(file) else {
            return Target::Unresolved;
        };
        if name != "default" {
            let defs: Vec<Def> = facts
                .symbols
                .iter()
                .filter(|s| s.name == name && s.container.is_empty() && s.public)
                .map(|s| Def {
                    path: file.to_string(),
                    symbol: s.clone(),
                })
                .collect();
            if !defs.is_empty() {
                return Target::Defs(defs);
            }
        }
        let rows: Vec<Import> = facts
            .imports
            .iter()
            .filter(|i| i.export && i.local == name)
            .cloned()
            .collect();
        for row in rows {
            let found = if row.path.is_empty() {
                self.name_in(file, &row.name, depth + 1)
            } else {
                match self.module(file, &row.path) {
                    Some(target) if row.name == "*" => Target::Module(target),
                    Some(target) => self.export_of(&target, &row.name, depth + 1, seen),
                    None if is_relative(&row.path) => Target::Unresolved,
                    None => Target::External,
                }
            };
            if !matches!(found, Target::Unresolved) {
                return found;
            }
        }
        if name == "default" {
            return Target::Unresolved;
        }
        let stars: Vec<Import> = facts
            .imports
            .iter()
            .filter(|i| i.export && i.local == "*")
            .cloned()
            .collect();
        for row in stars {
            if let Some(target) = self.module(file, &row.path) {
                let found = self.export_of(&target, name, depth + 1, seen);
                if matches!(found, Target::Defs(_) | Target::Module(_)) {
                    return found;
                }
            }
        }
        Target::Unresolved
    }

    /// The workspace file a module specifier written in `from` names.
    fn module(&mut self, from: &str, specifier: &str) -> Option<String> {
        let bases: Vec<String> = if is_relative(specifier) {
            join(dir(from), specifier).into_iter().collect()
        } else {
            let config = self.config(dir(from))?;
            let mut bases = Vec::new();
            // The longest prefix wins, as in TypeScript.
            let mut patterns: Vec<&(String, Vec<String>)> = config.paths.iter().collect();
            patterns
                .sort_by_key(|(p, _)| std::cmp::Reverse(p.split('*').next().unwrap_or("").len()));
            for (pattern, targets) in patterns {
                if let Some(star) = matched(pattern, specifier) {
                    bases.extend(targets.iter().map(|t| t.replace('*', star)));
                }
            }
            if let Some(base) = &config.base_url {
                bases.extend(join(base, specifier));
            }
            bases
        };
        for base in bases {
            if let Some(file) = self.file_for(&base) {
                return Some(file);
            }
        }
        None
    }

    fn file_for(&self, base: &str) -> Option<String> {
        let mut candidates = Vec::new();
        if EXTENSIONS.iter().any(|e| base.ends_with(e)) {
            candidates.push(base.to_string());
        }
        // `./x.js` in TypeScript's ESM style names `x.ts`.
        for (js, ts) in [
            (".js", ".ts"),
            (".js", ".tsx"),
            (".jsx", ".tsx"),
            (".mjs", ".mts"),
            (".cjs", ".cts"),
        ] {
            if let Some(stem) = base.strip_suffix(js) {
                candidates.push(format!("{stem}{ts}"));
            }
        }
        for e in EXTENSIONS {
            candidates.push(format!("{base}{e}"));
        }
        for e in EXTENSIONS {
            candidates.push(format!("{base}/index{e}"));
        }
        candidates
            .into_iter()
            .map(|c| c.trim_start_matches('/').to_string())
            .find(|c| self.files.exists(c))
    }

    /// The `baseUrl` and `paths` of the nearest `tsconfig.json` (or `jsconfig.json`) at or
    /// above `folder`.
    fn config(&mut self, folder: &str) -> Option<Paths> {
        if let Some(known) = self.configs.get(folder) {
            return known.clone();
        }
        let mut found = None;
        for name in ["tsconfig.json", "jsconfig.json"] {
            let path = join(folder, name).unwrap_or_default();
            if let Some(paths) = self.read_config(&path, 0) {
                found = Some(paths);
                break;
            }
        }
        if found.is_none() && !folder.is_empty() {
            found = self.config(dir(folder));
        }
        self.configs.insert(folder.to_string(), found.clone());
        found
    }

    fn read_config(&self, path: &str, depth: usize) -> Option<Paths> {
        if depth > 4 {
            return None;
        }
        let text = self.files.text(path)?;
        let json: serde_json::Value = serde_json::from_str(&strip_json_comments(&text)).ok()?;
        let folder = dir(path);
        let mut paths = json
            .get("extends")
            .and_then(|e| e.as_str())
            .filter(|e| is_relative(e))
            .and_then(|e| {
                let e = if e.ends_with(".json") {
                    e.to_string()
                } else {
                    format!("{e}.json")
                };
                self.read_config(&join(folder, &e)?, depth + 1)
            })
            .unwrap_or_default();
        let options = json.get("compilerOptions");
        if let Some(base) = options
            .and_then(|o| o.get("baseUrl"))
            .and_then(|b| b.as_str())
        {
            paths.base_url = join(folder, base);
        }
        if let Some(map) = options
            .and_then(|o| o.get("paths"))
            .and_then(|p| p.as_object())
        {
            let base = paths.base_url.clone().unwrap_or_else(|| folder.to_string());
            paths.paths = map
                .iter()
                .map(|(pattern, targets)| {
                    let targets = targets
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str())
                        .filter_map(|t| join(&base, t))
                        .collect();
                    (pattern.clone(), targets)
                })
                .collect();
            paths.paths.sort();
        }
        Some(paths)
    }
}

fn is_relative(specifier: &str) -> bool {
    specifier.starts_with("./")
        || specifier.starts_with("../")
        || specifier == "."
        || specifier == ".."
}

/// What a `paths` pattern's `*` matches in `specifier` (empty for an exact pattern).
fn matched<'s>(pattern: &str, specifier: &'s str) -> Option<&'s str> {
    match pattern.split_once('*') {
        None => (pattern == specifier).then_some(""),
        Some((prefix, suffix)) => specifier
            .strip_prefix(prefix)?
            .strip_suffix(suffix)
            .filter(|_| specifier.len() >= prefix.len() + suffix.len()),
    }
}

/// JSON with comments and trailing commas (as `tsconfig.json` allows) made plain JSON.
fn strip_json_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
            }
            _ => out.push(c),
        }
    }
    // Trailing commas: a comma followed only by blanks before a closing bracket.
    let mut plain = String::with_capacity(out.len());
    let bytes: Vec<char> = out.chars().collect();
    let mut in_string = false;
    for (i, &c) in bytes.iter().enumerate() {
        if c == '"' && (i == 0 || bytes[i - 1] != '\\') {
            in_string = !in_string;
        }
        if c == ',' && !in_string {
            let next = bytes[i + 1..].iter().find(|n| !n.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        plain.push(c);
    }
    plain
}

/// The references in `node` within `range`.
fn collect<'t>(
    text: &str,
    node: Node<'t>,
    range: &Range<usize>,
    ts: &Ts<'_, 't>,
    out: &mut Vec<Ref<'t>>,
) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.end_byte() <= range.start || n.start_byte() >= range.end {
            continue;
        }
        let mut descend = true;
        match n.kind() {
            "comment" | "string" | "template_string" | "import_statement" | "regex" => {
                descend = n.kind() == "template_string";
            }
            "identifier" | "shorthand_property_identifier" => {
                let name = text_of(text, n);
                if !ts.locals.contains_key(name) && is_reference(n) {
                    out.push(Ref::Name {
                        name: name.to_string(),
                        at: n.byte_range(),
                    });
                }
            }
            "type_identifier" => {
                let name = text_of(text, n);
                if !ts.generics.contains(name)
                    && !ts.locals.contains_key(name)
                    && is_type_reference(n)
                {
                    out.push(Ref::Name {
                        name: name.to_string(),
                        at: n.byte_range(),
                    });
                }
            }
            "nested_type_identifier" => {
                if let (Some(module), Some(name)) = (
                    n.child_by_field_name("module"),
                    n.child_by_field_name("name"),
                ) && module.kind() == "identifier"
                {
                    let ns = text_of(text, module).to_string();
                    if !ts.locals.contains_key(&ns) {
                        out.push(Ref::Name {
                            name: ns.clone(),
                            at: module.byte_range(),
                        });
                        out.push(Ref::Qualified {
                            ns,
                            name: text_of(text, name).to_string(),
                            at: name.byte_range(),
                        });
                    }
                }
                descend = false;
            }
            "member_expression" => {
                if let (Some(object), Some(property)) = (
                    n.child_by_field_name("object"),
                    n.child_by_field_name("property"),
                ) && property.kind() == "property_identifier"
                {
                    let name = text_of(text, property).to_string();
                    let at = property.byte_range();
                    match object.kind() {
                        "this" => out.push(Ref::This { name, at }),
                        "identifier" if !ts.locals.contains_key(text_of(text, object)) => {
                            out.push(Ref::Qualified {
                                ns: text_of(text, object).to_string(),
                                name,
                                at,
                            });
                        }
                        _ => out.push(Ref::Member {
                            receiver: object,
                            name,
                            at,
                        }),
                    }
                }
            }
            _ => {}
        }
        if descend {
            let mut cursor = n.walk();
            let children: Vec<Node<'t>> = n.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }
    out.sort_by_key(|r| match r {
        Ref::Name { at, .. }
        | Ref::Qualified { at, .. }
        | Ref::This { at, .. }
        | Ref::Member { at, .. } => at.start,
    });
}

/// Whether an identifier is read (not declared, not a property name, not a label).
fn is_reference(n: Node<'_>) -> bool {
    let Some(parent) = n.parent() else {
        return false;
    };
    let field_is = |field: &str| {
        parent
            .child_by_field_name(field)
            .is_some_and(|c| c.id() == n.id())
    };
    match parent.kind() {
        "function_declaration"
        | "class_declaration"
        | "function_expression"
        | "method_definition"
        | "generator_function_declaration"
        | "function_signature" => !field_is("name"),
        "variable_declarator" => !field_is("name"),
        "labeled_statement" | "break_statement" | "continue_statement" => false,
        "import_specifier" | "export_specifier" | "namespace_import" | "import_clause" => false,
        _ => true,
    }
}

fn is_type_reference(n: Node<'_>) -> bool {
    let Some(parent) = n.parent() else {
        return false;
    };
    let declared = parent
        .child_by_field_name("name")
        .is_some_and(|c| c.id() == n.id());
    !(declared
        && matches!(
            parent.kind(),
            "class_declaration"
                | "interface_declaration"
                | "type_alias_declaration"
                | "type_parameter"
                | "abstract_class_declaration"
                | "enum_declaration"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsconfig_comments_and_trailing_commas_are_read() {
        let plain = strip_json_comments(
            "{\n // a comment\n \"compilerOptions\": { \"baseUrl\": \"./src\", /* x */ \"paths\": { \"@app/*\": [\"app/*\",], }, },\n}",
        );
        let json: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(json["compilerOptions"]["baseUrl"], "./src");
        assert_eq!(matched("@app/*", "@app/x/y"), Some("x/y"));
        assert_eq!(matched("exact", "exact"), Some(""));
        assert_eq!(matched("@app/*", "@other/x"), None);
    }
}
