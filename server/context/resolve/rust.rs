//! Rust resolution: module paths to files (`mod` declarations, `mod.rs`, `#[path]`, inline
//! modules), `use` trees (globs, `self`/`super`/`crate`, `pub use` re-exports) and the items of
//! macro bodies through the symbol tables; `Type::item` and `value.method()` through the impl
//! blocks of the type (and the traits it implements), where the receiver's type is written: a
//! parameter's, a field's, a `let x: T`, `let x = T::new(..)`, a function's return type.
//! Names bound in the function (parameters, `let`, patterns, generics) are never looked up.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::Range;

use tree_sitter::{Node, Tree};

use super::{Def, Files, Outcome, Use, dir, focus_node, join};
use crate::archive::symbols::{Import, SymbolKind, rust_type_head, text_of};

/// How deep paths, re-exports and globs are followed.
const DEPTH: usize = 16;

/// A module: a file, and the inline modules inside it (`::`-joined, empty at the top).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Module {
    file: String,
    scope: String,
}

impl Module {
    fn child(&self, name: &str) -> Module {
        Module {
            file: self.file.clone(),
            scope: if self.scope.is_empty() {
                name.to_string()
            } else {
                format!("{}::{name}", self.scope)
            },
        }
    }
}

/// What a path segment resolves to.
#[derive(Clone, Debug)]
enum Res {
    Module(Module),
    Def(Def),
}

pub(super) fn uses(
    files: &Files<'_>,
    text: &str,
    tree: &Tree,
    ranges: &[Range<usize>],
) -> Vec<Use> {
    let mut r = Resolver {
        files,
        text,
        declarers: HashMap::new(),
        external: false,
        local_imports: Vec::new(),
        here: Module {
            file: files.current().to_string(),
            scope: String::new(),
        },
        self_type: String::new(),
        bounds: HashMap::new(),
        locals: Vec::new(),
        generics: HashSet::new(),
    };
    let mut out = Vec::new();
    for range in ranges {
        let Some(node) = focus_node(tree, range) else {
            continue;
        };
        r.enter(node, range);
        let mut refs = Vec::new();
        collect(text, node, range, &r.locals_set(), &r.generics, &mut refs);
        for reference in refs {
            if let Some(u) = r.resolve_ref(&reference) {
                out.push(u);
            }
        }
    }
    out
}

/// A reference found in the focus: a path, a method call, a macro.
#[derive(Debug)]
enum Ref<'t> {
    Path {
        segs: Vec<String>,
        at: Range<usize>,
    },
    Method {
        receiver: Node<'t>,
        name: String,
        at: Range<usize>,
    },
    /// A method called on `self` inside a macro's tokens.
    SelfMethod {
        name: String,
        at: Range<usize>,
    },
    Macro {
        name: String,
        at: Range<usize>,
    },
}

struct Resolver<'a, 't> {
    files: &'a Files<'a>,
    text: &'a str,
    declarers: HashMap<String, Option<Module>>,
    /// Set when a path ran into a crate outside the workspace.
    external: bool,
    /// `use` declarations inside the focus function.
    local_imports: Vec<Import>,
    /// The module the focus is in.
    here: Module,
    /// The type of the impl (or the trait) around the focus.
    self_type: String,
    /// Generic parameters and their first trait bound.
    bounds: HashMap<String, String>,
    /// Bindings of the focus function: name, where it is bound, its type or initializer.
    locals: Vec<(String, usize, Binding<'t>)>,
    generics: HashSet<String>,
}

#[derive(Clone, Copy, Debug)]
enum Binding<'t> {
    Type(Node<'t>),
    Value(Node<'t>),
    Unknown,
}

impl<'a, 't> Resolver<'a, 't> {
    /// Learns the place of the focus node: its module, impl, generics and local bindings.
    fn enter(&mut self, node: Node<'t>, range: &Range<usize>) {
        let text = self.text;
        let mut scope: Vec<String> = Vec::new();
        let mut up = Some(node);
        let mut function: Option<Node<'t>> = None;
        while let Some(n) = up {
            match n.kind() {
                "mod_item" => {
                    if let Some(name) = n.child_by_field_name("name") {
                        scope.push(text_of(text, name).to_string());
                    }
                }
                "impl_item" if self.self_type.is_empty() => {
                    if let Some(t) = n.child_by_field_name("type") {
                        self.self_type = rust_type_head(text, t, "");
                    }
                    self.generics_of(n);
                }
                "trait_item" if self.self_type.is_empty() => {
                    if let Some(t) = n.child_by_field_name("name") {
                        self.self_type = text_of(text, t).to_string();
                    }
                    self.generics_of(n);
                }
                "function_item" if function.is_none() => function = Some(n),
                _ => {}
            }
            up = n.parent();
        }
        scope.reverse();
        self.here.scope = scope.join("::");
        // A selection inside a function: the function's bindings still count.
        let function = function.or_else(|| {
            let mut cursor = node.walk();
            node.named_children(&mut cursor)
                .find(|c| c.kind() == "function_item" && c.byte_range() == *range)
        });
        if let Some(f) = function {
            self.generics_of(f);
            if let Some(params) = f.child_by_field_name("parameters") {
                let mut cursor = params.walk();
                for p in params.named_children(&mut cursor) {
                    if p.kind() == "parameter"
                        && let (Some(pattern), Some(ty)) = (
                            p.child_by_field_name("pattern"),
                            p.child_by_field_name("type"),
                        )
                    {
                        self.bind(pattern, Binding::Type(ty));
                    }
                }
            }
            if let Some(body) = f.child_by_field_name("body") {
                self.bindings_in(body);
            }
        } else {
            self.bindings_in(node);
        }
    }

    fn generics_of(&mut self, node: Node<'t>) {
        let text = self.text;
        if let Some(params) = node.child_by_field_name("type_parameters") {
            let mut cursor = params.walk();
            for p in params.named_children(&mut cursor) {
                if p.kind() == "type_parameter"
                    && let Some(name) = p.child_by_field_name("name")
                {
                    let name = text_of(text, name).to_string();
                    self.generics.insert(name.clone());
                    if let Some(bound) = p.child_by_field_name("bounds").and_then(first_bound) {
                        self.bounds
                            .entry(name)
                            .or_insert_with(|| rust_type_head(text, bound, ""));
                    }
                }
            }
        }
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            if child.kind() != "where_clause" {
                continue;
            }
            let mut c = child.walk();
            for pred in child.named_children(&mut c) {
                if let (Some(left), Some(bound)) = (
                    pred.child_by_field_name("left"),
                    pred.child_by_field_name("bounds").and_then(first_bound),
                ) {
                    self.bounds
                        .entry(text_of(text, left).to_string())
                        .or_insert_with(|| rust_type_head(text, bound, ""));
                }
            }
        }
    }

    /// Records the bindings of a block: `let`, closure parameters, patterns of `for`, `if let`,
    /// `match`; and the `use` declarations in it.
    fn bindings_in(&mut self, node: Node<'t>) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            match n.kind() {
                "let_declaration" => {
                    if let Some(pattern) = n.child_by_field_name("pattern") {
                        let binding = match (
                            n.child_by_field_name("type"),
                            n.child_by_field_name("value"),
                        ) {
                            (Some(t), _) => Binding::Type(t),
                            (None, Some(v)) => Binding::Value(v),
                            _ => Binding::Unknown,
                        };
                        self.bind(pattern, binding);
                    }
                }
                "closure_parameters" => {
                    let mut cursor = n.walk();
                    for p in n.named_children(&mut cursor) {
                        match (
                            p.child_by_field_name("pattern"),
                            p.child_by_field_name("type"),
                        ) {
                            (Some(pattern), Some(ty)) => self.bind(pattern, Binding::Type(ty)),
                            _ => self.bind(p, Binding::Unknown),
                        }
                    }
                }
                "for_expression" | "let_condition" => {
                    if let Some(pattern) = n.child_by_field_name("pattern") {
                        self.bind(pattern, Binding::Unknown);
                    }
                }
                "match_pattern" => {
                    if let Some(pattern) = n.named_child(0) {
                        self.bind(pattern, Binding::Unknown);
                    }
                }
                "use_declaration" => {
                    let facts = crate::archive::symbols::facts(
                        text_of(self.text, n),
                        Some(crate::syntax::Language::Rust),
                    );
                    self.local_imports.extend(facts.imports);
                    continue;
                }
                _ => {}
            }
            let mut cursor = n.walk();
            let children: Vec<Node<'t>> = n.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }

    /// Binds the identifiers of a pattern (not the paths in it: `Some(x)` binds `x`).
    fn bind(&mut self, pattern: Node<'t>, binding: Binding<'t>) {
        let text = self.text;
        match pattern.kind() {
            "identifier" => {
                self.locals.push((
                    text_of(text, pattern).to_string(),
                    pattern.start_byte(),
                    binding,
                ));
            }
            "self" => {}
            _ => {
                let mut cursor = pattern.walk();
                let children: Vec<Node<'t>> = pattern.named_children(&mut cursor).collect();
                for child in children {
                    // The path of a tuple-struct or struct pattern names a type, not a binding.
                    if pattern
                        .child_by_field_name("type")
                        .is_some_and(|t| t.id() == child.id())
                    {
                        continue;
                    }
                    if child.kind() == "field_pattern" {
                        match child.child_by_field_name("pattern") {
                            Some(p) => self.bind(p, Binding::Unknown),
                            None => {
                                if let Some(name) = child.child_by_field_name("name") {
                                    self.locals.push((
                                        text_of(text, name).to_string(),
                                        name.start_byte(),
                                        Binding::Unknown,
                                    ));
                                }
                            }
                        }
                        continue;
                    }
                    self.bind(child, Binding::Unknown);
                }
            }
        }
    }

    fn locals_set(&self) -> HashSet<String> {
        self.locals.iter().map(|(n, _, _)| n.clone()).collect()
    }

    /// The binding of a local name as seen at `at`: the last one before it.
    fn local(&self, name: &str, at: usize) -> Option<Binding<'t>> {
        self.locals
            .iter()
            .filter(|(n, bound, _)| n == name && *bound < at)
            .max_by_key(|(_, bound, _)| *bound)
            .map(|(_, _, b)| *b)
    }

    fn resolve_ref(&mut self, reference: &Ref<'t>) -> Option<Use> {
        self.external = false;
        let (name, at, defs) = match reference {
            Ref::Path { segs, at } => {
                let found = self.resolve_path(&self.here.clone(), segs, 0);
                (segs.last()?.clone(), at.clone(), defs_of(found))
            }
            Ref::Method { receiver, name, at } => {
                let ty = self.type_of(*receiver, 0);
                let defs = ty.map(|t| self.method(&t, name)).unwrap_or_default();
                if defs.is_empty() {
                    // A method on a value of an unknown type is no one's to guess.
                    return Some(Use {
                        name: name.clone(),
                        at: at.clone(),
                        outcome: Outcome::External,
                    });
                }
                (name.clone(), at.clone(), defs)
            }
            Ref::SelfMethod { name, at } => {
                let ty = self.self_type.clone();
                let defs = if ty.is_empty() {
                    Vec::new()
                } else {
                    self.method(&ty, name)
                };
                if defs.is_empty() {
                    return None;
                }
                (name.clone(), at.clone(), defs)
            }
            Ref::Macro { name, at } => {
                let defs = self.macro_def(name);
                if defs.is_empty() {
                    return Some(Use {
                        name: name.clone(),
                        at: at.clone(),
                        outcome: Outcome::External,
                    });
                }
                (name.clone(), at.clone(), defs)
            }
        };
        let outcome = if !defs.is_empty() {
            Outcome::Defs(defs)
        } else if self.external {
            Outcome::External
        } else {
            Outcome::Unresolved
        };
        Some(Use { name, at, outcome })
    }

    /// The module that declares `file` with `mod name;`, if any (none: a crate root).
    fn declarer(&mut self, file: &str) -> Option<Module> {
        if let Some(known) = self.declarers.get(file) {
            return known.clone();
        }
        self.declarers.insert(file.to_string(), None); // cycles end here
        let file_name = file.rsplit('/').next().unwrap_or(file);
        let stem = file_name.strip_suffix(".rs").unwrap_or(file_name);
        let name = if stem == "mod" {
            dir(file).rsplit('/').next().unwrap_or("")
        } else {
            stem
        };
        let mut found = None;
        for decl in self.files.mod_declarations(name, file_name) {
            let module = Module {
                file: decl.path.clone(),
                scope: decl.symbol.scope.clone(),
            };
            if module.file == file {
                continue;
            }
            if self
                .child_files(&module, &decl.symbol.name, &decl.symbol.detail)
                .iter()
                .any(|c| c == file)
            {
                found = Some(module);
                break;
            }
        }
        self.declarers.insert(file.to_string(), found.clone());
        found
    }

    fn crate_root(&mut self, file: &str) -> String {
        let mut at = file.to_string();
        for _ in 0..DEPTH * 2 {
            match self.declarer(&at) {
                Some(m) => at = m.file,
                None => break,
            }
        }
        at
    }

    /// Where the files of a file's child modules live: beside a `mod.rs` or a crate root, in a
    /// folder named after any other file.
    fn module_dir(&mut self, file: &str) -> String {
        let mod_rs = file == "mod.rs" || file.ends_with("/mod.rs") || self.declarer(file).is_none();
        if mod_rs {
            dir(file).to_string()
        } else {
            file.strip_suffix(".rs").unwrap_or(file).to_string()
        }
    }

    /// The files `mod name;` in `module` may stand for.
    fn child_files(&mut self, module: &Module, name: &str, path_attr: &str) -> Vec<String> {
        let scope_dirs = module.scope.replace("::", "/");
        if !path_attr.is_empty() {
            let base = if module.scope.is_empty() {
                dir(&module.file).to_string()
            } else {
                join(&self.module_dir(&module.file), &scope_dirs).unwrap_or_default()
            };
            return join(&base, path_attr).into_iter().collect();
        }
        let Some(base) = join(&self.module_dir(&module.file), &scope_dirs) else {
            return Vec::new();
        };
        [format!("{name}.rs"), format!("{name}/mod.rs")]
            .iter()
            .filter_map(|rel| join(&base, rel))
            .collect()
    }

    fn child_module(&mut self, module: &Module, name: &str, path_attr: &str) -> Option<Module> {
        let file = self
            .child_files(module, name, path_attr)
            .into_iter()
            .find(|f| self.files.exists(f))?;
        Some(Module {
            file,
            scope: String::new(),
        })
    }

    fn parent(&mut self, module: &Module) -> Option<Module> {
        match module.scope.rsplit_once("::") {
            Some((up, _)) => Some(Module {
                file: module.file.clone(),
                scope: up.to_string(),
            }),
            None if !module.scope.is_empty() => Some(Module {
                file: module.file.clone(),
                scope: String::new(),
            }),
            None => self.declarer(&module.file.clone()),
        }
    }

    /// What `name` means in `module`: its items, its imports, its globs' items.
    fn lookup(
        &mut self,
        module: &Module,
        name: &str,
        depth: usize,
        seen: &mut HashSet<(Module, String)>,
    ) -> Vec<Res> {
        // `seen` holds the lookups under way: a cycle of globs or re-exports ends, and the same
        // name may still be looked up again on another path.
        let key = (module.clone(), name.to_string());
        if depth > DEPTH || !seen.insert(key.clone()) {
            return Vec::new();
        }
        let found = self.lookup_in(module, name, depth, seen);
        seen.remove(&key);
        found
    }

    fn lookup_in(
        &mut self,
        module: &Module,
        name: &str,
        depth: usize,
        seen: &mut HashSet<(Module, String)>,
    ) -> Vec<Res> {
        let Some(facts) = self.files.facts(&module.file) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in facts.symbols.iter().filter(|s| {
            s.name == name
                && s.scope == module.scope
                && s.container.is_empty()
                && s.kind != SymbolKind::Field
        }) {
            match s.kind {
                SymbolKind::ModFile => {
                    if let Some(m) = self.child_module(module, &s.name, &s.detail) {
                        out.push(Res::Module(m));
                    }
                }
                SymbolKind::Module => out.push(Res::Module(module.child(name))),
                _ => out.push(Res::Def(Def {
                    path: module.file.clone(),
                    symbol: s.clone(),
                })),
            }
        }
        // A module and a function may share a name (`mod spawn; pub use spawn::spawn;`): they
        // live in different namespaces, so a module found does not end the search.
        let has_def = |out: &[Res]| out.iter().any(|r| matches!(r, Res::Def(_)));
        if has_def(&out) {
            return out;
        }
        let here = *module == self.here;
        let imports: Vec<Import> = facts
            .imports
            .iter()
            .filter(|i| i.scope == module.scope)
            .chain(self.local_imports.iter().filter(|_| here))
            .cloned()
            .collect();
        for i in imports.iter().filter(|i| i.local == name) {
            let segs: Vec<String> = i.path.split("::").map(str::to_string).collect();
            out.extend(self.resolve_segments(module, &segs, depth + 1, seen));
        }
        if has_def(&out) {
            return out;
        }
        for i in imports.iter().filter(|i| i.local == "*") {
            let segs: Vec<String> = i.path.split("::").map(str::to_string).collect();
            for target in self.resolve_segments(module, &segs, depth + 1, seen) {
                match target {
                    Res::Module(m) => out.extend(self.lookup(&m, name, depth + 1, seen)),
                    // `use Enum::*` brings variants, which the symbol tables do not list.
                    Res::Def(_) => {}
                }
            }
            if has_def(&out) {
                return out;
            }
        }
        out
    }

    fn resolve_path(&mut self, from: &Module, segs: &[String], depth: usize) -> Vec<Res> {
        let mut seen = HashSet::new();
        self.resolve_segments(from, segs, depth, &mut seen)
    }

    fn resolve_segments(
        &mut self,
        from: &Module,
        segs: &[String],
        depth: usize,
        seen: &mut HashSet<(Module, String)>,
    ) -> Vec<Res> {
        let Some(first) = segs.first() else {
            return Vec::new();
        };
        if depth > DEPTH {
            return Vec::new();
        }
        let mut current: Vec<Res> = match first.as_str() {
            "" => {
                // `::name`: a crate outside.
                self.external = true;
                return Vec::new();
            }
            "crate" | "$crate" => vec![Res::Module(Module {
                file: self.crate_root(&from.file.clone()),
                scope: String::new(),
            })],
            "self" => vec![Res::Module(from.clone())],
            "super" => self.parent(from).map(Res::Module).into_iter().collect(),
            "Self" => {
                let ty = self.self_type.clone();
                if ty.is_empty() {
                    return Vec::new();
                }
                self.type_named(&ty, from, depth, seen)
            }
            name => {
                let found = self.lookup(from, name, depth, seen);
                if found.is_empty() {
                    if matches!(name, "std" | "core" | "alloc")
                        || self.imported_from_outside(from, name)
                    {
                        self.external = true;
                    }
                    return Vec::new();
                }
                found
            }
        };
        for seg in segs.iter().skip(1) {
            let mut next = Vec::new();
            for r in &current {
                match r {
                    Res::Module(m) => match seg.as_str() {
                        "super" => next.extend(self.parent(m).map(Res::Module)),
                        "self" => next.push(Res::Module(m.clone())),
                        _ => next.extend(self.lookup(m, seg, depth + 1, seen)),
                    },
                    Res::Def(d) if d.symbol.kind.is_type() => {
                        next.extend(self.associated(d, seg).into_iter().map(Res::Def));
                    }
                    Res::Def(_) => {}
                }
            }
            if next.is_empty() {
                // `Enum::Variant` (and `Enum::Variant::…`): the enum is what is used.
                let enums: Vec<Res> = current
                    .iter()
                    .filter(|r| matches!(r, Res::Def(d) if d.symbol.kind == SymbolKind::Enum))
                    .cloned()
                    .collect();
                return enums;
            }
            current = next;
        }
        current
    }

    /// Whether `name` is bound in `module` by a `use` of a path from another crate.
    fn imported_from_outside(&self, module: &Module, name: &str) -> bool {
        let Some(facts) = self.files.facts(&module.file) else {
            return false;
        };
        facts
            .imports
            .iter()
            .chain(self.local_imports.iter())
            .filter(|i| i.scope == module.scope || self.local_imports.contains(i))
            .any(|i| {
                (i.local == name || i.local == "*")
                    && !matches!(
                        i.path.split("::").next().unwrap_or(""),
                        "crate" | "self" | "super" | "Self"
                    )
            })
    }

    /// A type by name, as seen from `from` (an enclosing impl's own type).
    fn type_named(
        &mut self,
        name: &str,
        from: &Module,
        depth: usize,
        seen: &mut HashSet<(Module, String)>,
    ) -> Vec<Res> {
        let found: Vec<Res> = self
            .lookup(from, name, depth + 1, seen)
            .into_iter()
            .filter(|r| matches!(r, Res::Def(d) if d.symbol.kind.is_type()))
            .collect();
        if !found.is_empty() {
            return found;
        }
        // The impl's type may live in another module: the crate's type of that name.
        let root = self.crate_root(&from.file.clone());
        let defs: Vec<Def> = self
            .files
            .named(name)
            .into_iter()
            .filter(|d| d.symbol.kind.is_type() && d.symbol.container.is_empty())
            .collect();
        let same: Vec<Def> = defs
            .iter()
            .filter(|d| self.crate_root(&d.path) == root)
            .cloned()
            .collect();
        same.into_iter().map(Res::Def).collect()
    }

    /// The associated items named `name` of a type: its impls' and its traits'.
    fn associated(&mut self, ty: &Def, name: &str) -> Vec<Def> {
        let mut found = self.members_in_crate(&ty.symbol.name, name, &ty.path);
        if found.is_empty() && ty.symbol.kind == SymbolKind::Type && !ty.symbol.detail.is_empty() {
            found = self.members_in_crate(&ty.symbol.detail.clone(), name, &ty.path);
        }
        if found.is_empty() {
            found = self.trait_members(&ty.symbol.name, name, &ty.path);
        }
        found.retain(|d| d.symbol.kind != SymbolKind::Field);
        found
    }

    /// Members of `container` named `name`, those of `near`'s crate when there are any.
    fn members_in_crate(&mut self, container: &str, name: &str, near: &str) -> Vec<Def> {
        let all = self.files.members(container, name);
        if all.len() <= 1 {
            return all;
        }
        let root = self.crate_root(near);
        let same: Vec<Def> = all
            .iter()
            .filter(|d| self.crate_root(&d.path) == root)
            .cloned()
            .collect();
        if same.is_empty() { all } else { same }
    }

    /// Methods a type gets from the traits it implements (their provided methods).
    fn trait_members(&mut self, container: &str, name: &str, near: &str) -> Vec<Def> {
        let traits: BTreeSet<String> = self
            .files
            .members(container, "")
            .into_iter()
            .map(|d| d.symbol.of_trait)
            .filter(|t| !t.is_empty())
            .collect();
        let mut out = Vec::new();
        for t in traits {
            out.extend(
                self.members_in_crate(&t, name, near)
                    .into_iter()
                    .filter(|d| d.symbol.of_trait.is_empty()),
            );
        }
        out
    }

    /// The method `name` of values of type `ty` (its impls, its traits; a generic's bound).
    fn method(&mut self, ty: &str, name: &str) -> Vec<Def> {
        let ty = self
            .bounds
            .get(ty)
            .cloned()
            .unwrap_or_else(|| ty.to_string());
        let near = self.here.file.clone();
        let mut found = self.members_in_crate(&ty, name, &near);
        found.retain(|d| d.symbol.kind != SymbolKind::Field);
        if found.is_empty() {
            found = self.trait_members(&ty, name, &near);
        }
        if found.iter().any(|d| d.path != found[0].path) {
            found = self.same_type(&ty, found);
        }
        found
    }

    /// Of members of impls of types named `ty` in several modules, those whose impl names the
    /// type that `ty` names here (when it names one here).
    fn same_type(&mut self, ty: &str, found: Vec<Def>) -> Vec<Def> {
        let here = self.here.clone();
        let types = |r: &mut Self, m: &Module| -> Vec<(String, usize)> {
            defs_of(r.resolve_path(m, &[ty.to_string()], 0))
                .into_iter()
                .filter(|d| d.symbol.kind.is_type())
                .map(|d| (d.path, d.symbol.name_start))
                .collect()
        };
        let wanted = types(self, &here);
        if wanted.len() != 1 {
            return found;
        }
        let kept: Vec<Def> = found
            .iter()
            .filter(|d| {
                let m = Module {
                    file: d.path.clone(),
                    scope: d.symbol.scope.clone(),
                };
                types(self, &m).contains(&wanted[0])
            })
            .cloned()
            .collect();
        if kept.is_empty() { found } else { kept }
    }

    fn macro_def(&mut self, name: &str) -> Vec<Def> {
        let near = self.here.file.clone();
        let root = self.crate_root(&near);
        let all: Vec<Def> = self
            .files
            .named(name)
            .into_iter()
            .filter(|d| d.symbol.kind == SymbolKind::Macro && d.path.ends_with(".rs"))
            .collect();
        // `macro_rules!` scope is textual: this file's, an enclosing module's, one brought in by
        // `#[macro_use] mod macros;` (the convention), or an exported one.
        // Within a file, one declared in an inline module is seen only inside that module.
        let scope = self.here.scope.clone();
        let encloses = |d: &Def| {
            let s = &d.symbol.scope;
            s.is_empty() || *s == scope || scope.starts_with(&format!("{s}::"))
        };
        let here: Vec<Def> = all
            .iter()
            .filter(|d| d.path == near && encloses(d))
            .cloned()
            .collect();
        if !here.is_empty() {
            return here;
        }
        let mut ancestors = Vec::new();
        let mut at = near.clone();
        for _ in 0..DEPTH {
            match self.declarer(&at) {
                Some(m) => {
                    ancestors.push(m.file.clone());
                    at = m.file;
                }
                None => break,
            }
        }
        let visible: Vec<Def> = all
            .iter()
            .filter(|d| {
                self.crate_root(&d.path) == root
                    && (ancestors.contains(&d.path) && d.symbol.scope.is_empty()
                        || d.path.contains("/macros/")
                        || d.path.ends_with("/macros.rs")
                        || d.symbol.public)
            })
            .cloned()
            .collect();
        if visible.is_empty() {
            all.into_iter()
                .filter(|d| d.symbol.public && self.crate_root(&d.path) != root)
                .collect()
        } else {
            visible
        }
    }

    /// The head of the type of an expression, where the code states it.
    fn type_of(&mut self, node: Node<'t>, depth: usize) -> Option<String> {
        if depth > 8 {
            return None;
        }
        let text = self.text;
        match node.kind() {
            "self" => (!self.self_type.is_empty()).then(|| self.self_type.clone()),
            "identifier" => {
                let name = text_of(text, node);
                match self.local(name, node.start_byte()) {
                    Some(Binding::Type(t)) => {
                        let head = self.head(t);
                        Some(self.canonical(&head, &self.here.clone()))
                    }
                    Some(Binding::Value(v)) => self.type_of(v, depth + 1),
                    Some(Binding::Unknown) => None,
                    None => {
                        let found = self.resolve_path(&self.here.clone(), &[name.to_string()], 0);
                        defs_of(found)
                            .first()
                            .map(|d| d.symbol.detail.clone())
                            .filter(|t| !t.is_empty())
                    }
                }
            }
            "field_expression" => {
                let base = self.type_of(node.child_by_field_name("value")?, depth + 1)?;
                let field = text_of(text, node.child_by_field_name("field")?).to_string();
                let ty = self.bounds.get(&base).cloned().unwrap_or(base);
                let near = self.here.file.clone();
                let field = self
                    .members_in_crate(&ty, &field, &near)
                    .into_iter()
                    .find(|d| d.symbol.kind == SymbolKind::Field)?;
                let module = Module {
                    file: field.path.clone(),
                    scope: field.symbol.scope.clone(),
                };
                Some(self.canonical(&field.symbol.detail, &module)).filter(|t| !t.is_empty())
            }
            "call_expression" => {
                let function = node.child_by_field_name("function")?;
                let function = if function.kind() == "generic_function" {
                    function.child_by_field_name("function")?
                } else {
                    function
                };
                match function.kind() {
                    "field_expression" => {
                        let base =
                            self.type_of(function.child_by_field_name("value")?, depth + 1)?;
                        let name =
                            text_of(text, function.child_by_field_name("field")?).to_string();
                        let m = self.method(&base, &name);
                        m.first()
                            .map(|d| d.symbol.detail.clone())
                            .filter(|t| !t.is_empty())
                    }
                    "identifier" | "scoped_identifier" => {
                        let segs = path_segments(text, function)?;
                        let found = defs_of(self.resolve_path(&self.here.clone(), &segs, 0));
                        let d = found.first()?;
                        if d.symbol.kind.is_type() {
                            Some(d.symbol.name.clone())
                        } else {
                            Some(d.symbol.detail.clone()).filter(|t| !t.is_empty())
                        }
                    }
                    _ => None,
                }
            }
            "struct_expression" => Some(self.head(node.child_by_field_name("name")?)),
            "reference_expression"
            | "unary_expression"
            | "parenthesized_expression"
            | "try_expression"
            | "await_expression" => {
                let inner = node
                    .child_by_field_name("value")
                    .or_else(|| node.named_child(0))?;
                self.type_of(inner, depth + 1)
            }
            "type_cast_expression" => Some(self.head(node.child_by_field_name("type")?)),
            "scoped_identifier" => {
                let segs = path_segments(text, node)?;
                let found = defs_of(self.resolve_path(&self.here.clone(), &segs, 0));
                let d = found.first()?;
                if d.symbol.kind.is_type() {
                    Some(d.symbol.name.clone())
                } else {
                    Some(d.symbol.detail.clone()).filter(|t| !t.is_empty())
                }
            }
            _ => None,
        }
    }

    /// The name of the type a name stands for where it is written (`use a::B as C`: `C` is a
    /// `B`); the name itself when it resolves to no type of the workspace.
    fn canonical(&mut self, name: &str, module: &Module) -> String {
        if name.is_empty() || self.bounds.contains_key(name) {
            return name.to_string();
        }
        let found = defs_of(self.resolve_path(module, &[name.to_string()], 0));
        found
            .iter()
            .find(|d| d.symbol.kind.is_type())
            .map_or_else(|| name.to_string(), |d| d.symbol.name.clone())
    }

    fn head(&self, ty: Node<'t>) -> String {
        let head = rust_type_head(self.text, ty, &self.self_type);
        self.bounds.get(&head).cloned().unwrap_or(head)
    }
}

fn first_bound(bounds: Node<'_>) -> Option<Node<'_>> {
    let mut cursor = bounds.walk();
    bounds
        .named_children(&mut cursor)
        .find(|b| b.kind() != "lifetime")
}

/// The definitions among resolved segments (modules are not definitions one shows).
fn defs_of(found: Vec<Res>) -> Vec<Def> {
    let mut out: Vec<Def> = Vec::new();
    for r in found {
        if let Res::Def(d) = r
            && !out
                .iter()
                .any(|o| o.path == d.path && o.symbol.name_start == d.symbol.name_start)
        {
            out.push(d);
        }
    }
    out
}

/// The segments of a path expression or type (`a::b::C` → [a, b, C]); generic arguments and
/// turbofish dropped.
fn path_segments(text: &str, node: Node<'_>) -> Option<Vec<String>> {
    match node.kind() {
        "identifier" | "type_identifier" | "self" | "super" | "crate" | "primitive_type" => {
            Some(vec![text_of(text, node).to_string()])
        }
        "scoped_identifier" | "scoped_type_identifier" => {
            let name = text_of(text, node.child_by_field_name("name")?).to_string();
            let mut segs = match node.child_by_field_name("path") {
                Some(path) => path_segments(text, path)?,
                None => vec![String::new()],
            };
            segs.push(name);
            Some(segs)
        }
        "generic_type" | "generic_type_with_turbofish" => {
            path_segments(text, node.child_by_field_name("type")?)
        }
        "bracketed_type" => None,
        _ => None,
    }
}

/// The references in `node` (within `range`): paths and types, method calls, macros and the
/// paths written inside macro arguments. Names bound in the function and generic parameters are
/// not references to look up.
fn collect<'t>(
    text: &str,
    node: Node<'t>,
    range: &Range<usize>,
    locals: &HashSet<String>,
    generics: &HashSet<String>,
    out: &mut Vec<Ref<'t>>,
) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.end_byte() <= range.start || n.start_byte() >= range.end {
            continue;
        }
        let mut descend = true;
        match n.kind() {
            "use_declaration"
            | "attribute_item"
            | "inner_attribute_item"
            | "line_comment"
            | "block_comment"
            | "string_literal"
            | "raw_string_literal"
            | "char_literal" => {
                descend = false;
            }
            "scoped_identifier" | "scoped_type_identifier" => {
                if let Some(segs) = path_segments(text, n)
                    && !generics.contains(&segs[0])
                {
                    // `Type::item` uses the type too.
                    let owner = segs.len() - 1;
                    if owner > 0 && segs[owner - 1].starts_with(|c: char| c.is_ascii_uppercase()) {
                        let end = n
                            .child_by_field_name("path")
                            .map_or(n.start_byte(), |p| p.end_byte());
                        out.push(Ref::Path {
                            segs: segs[..owner].to_vec(),
                            at: n.start_byte()..end,
                        });
                    }
                    out.push(Ref::Path {
                        segs,
                        at: n.byte_range(),
                    });
                }
                // A path's generic arguments hold types of their own.
                if let Some(path) = n.child_by_field_name("path") {
                    push_generic_args(path, &mut stack);
                }
                descend = false;
            }
            "identifier" => {
                let name = text_of(text, n);
                if !locals.contains(name) && is_reference(n) {
                    out.push(Ref::Path {
                        segs: vec![name.to_string()],
                        at: n.byte_range(),
                    });
                }
            }
            "type_identifier" => {
                let name = text_of(text, n);
                if !generics.contains(name) && is_type_reference(n) {
                    out.push(Ref::Path {
                        segs: vec![name.to_string()],
                        at: n.byte_range(),
                    });
                }
            }
            "call_expression" => {
                if let Some(f) = n.child_by_field_name("function") {
                    let f = if f.kind() == "generic_function" {
                        f.child_by_field_name("function").unwrap_or(f)
                    } else {
                        f
                    };
                    if f.kind() == "field_expression"
                        && let (Some(value), Some(field)) = (
                            f.child_by_field_name("value"),
                            f.child_by_field_name("field"),
                        )
                    {
                        out.push(Ref::Method {
                            receiver: value,
                            name: text_of(text, field).to_string(),
                            at: field.byte_range(),
                        });
                    }
                }
            }
            "macro_invocation" => {
                if let Some(m) = n.child_by_field_name("macro") {
                    match m.kind() {
                        "identifier" => out.push(Ref::Macro {
                            name: text_of(text, m).to_string(),
                            at: m.byte_range(),
                        }),
                        _ => {
                            if let Some(segs) = path_segments(text, m) {
                                out.push(Ref::Macro {
                                    name: segs.last().cloned().unwrap_or_default(),
                                    at: m.byte_range(),
                                });
                            }
                        }
                    }
                }
                let mut cursor = n.walk();
                let trees: Vec<Node<'t>> = n
                    .named_children(&mut cursor)
                    .filter(|c| c.kind() == "token_tree")
                    .collect();
                for t in trees {
                    token_refs(text, t, locals, out);
                }
                descend = false;
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
        Ref::Path { at, .. }
        | Ref::Method { at, .. }
        | Ref::SelfMethod { at, .. }
        | Ref::Macro { at, .. } => at.start,
    });
}

fn push_generic_args<'t>(path: Node<'t>, stack: &mut Vec<Node<'t>>) {
    let mut n = Some(path);
    while let Some(p) = n {
        if p.kind() == "generic_type"
            && let Some(args) = p.child_by_field_name("type_arguments")
        {
            stack.push(args);
        }
        n = p.child_by_field_name("path");
    }
}

/// Whether an identifier is used as a value or a callee (not a binding, a field, a label…).
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
        "let_declaration" | "parameter" | "closure_parameters" => false,
        "function_item"
        | "function_signature_item"
        | "struct_item"
        | "enum_item"
        | "mod_item"
        | "const_item"
        | "static_item"
        | "macro_definition" => false,
        "field_pattern" | "shorthand_field_initializer" => {
            parent.kind() == "shorthand_field_initializer"
        }
        "tuple_struct_pattern" => field_is("type"),
        "tuple_pattern" | "slice_pattern" | "or_pattern" | "ref_pattern" | "mut_pattern"
        | "captured_pattern" | "reference_pattern" | "match_pattern" => false,
        "field_expression" => field_is("value"),
        "labeled_item" | "loop_label" | "label" => false,
        _ => true,
    }
}

/// Whether a type identifier names a type in use (not the one being declared).
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
            "struct_item"
                | "enum_item"
                | "union_item"
                | "trait_item"
                | "type_item"
                | "type_parameter"
                | "associated_type"
        ))
}

/// Paths written among a macro's tokens (`ready!(coop::poll_proceed(cx))`, `vec![Foo::new()]`),
/// and methods called on `self` there.
fn token_refs<'t>(text: &str, tree: Node<'t>, locals: &HashSet<String>, out: &mut Vec<Ref<'t>>) {
    let mut tokens: Vec<Node<'t>> = Vec::new();
    let mut stack = vec![tree];
    while let Some(n) = stack.pop() {
        let mut cursor = n.walk();
        let children: Vec<Node<'t>> = n.children(&mut cursor).collect();
        for c in children.into_iter().rev() {
            if c.kind() == "token_tree" {
                stack.push(c);
            } else {
                tokens.push(c);
            }
        }
        // Keep source order: the stack visits nested trees after their siblings.
    }
    tokens.sort_by_key(|t| t.start_byte());
    let word = |t: &Node<'_>| {
        matches!(t.kind(), "identifier" | "self" | "super" | "crate" | "Self")
            || (t.kind() == "primitive_type")
    };
    let mut k = 0;
    while k < tokens.len() {
        let t = tokens[k];
        if !word(&t) {
            k += 1;
            continue;
        }
        // `self.method(`: a method on Self.
        if text_of(text, t) == "self"
            && tokens.get(k + 1).is_some_and(|d| d.kind() == ".")
            && tokens.get(k + 2).is_some_and(|m| m.kind() == "identifier")
            && tokens.get(k + 3).is_some_and(|p| p.kind() == "(")
        {
            let m = tokens[k + 2];
            out.push(Ref::SelfMethod {
                name: text_of(text, m).to_string(),
                at: m.byte_range(),
            });
            k += 3;
            continue;
        }
        let after_dot = k > 0 && tokens[k - 1].kind() == ".";
        let start = t.start_byte();
        let mut segs = vec![text_of(text, t).to_string()];
        let mut end = t.end_byte();
        let mut j = k + 1;
        while j + 1 < tokens.len() && tokens[j].kind() == "::" && word(&tokens[j + 1]) {
            segs.push(text_of(text, tokens[j + 1]).to_string());
            end = tokens[j + 1].end_byte();
            j += 2;
        }
        let called = tokens
            .get(j)
            .is_some_and(|n| n.kind() == "(" || n.kind() == "!" || n.kind() == "{");
        let typed = segs[0].starts_with(|c: char| c.is_ascii_uppercase());
        let local = segs.len() == 1 && locals.contains(&segs[0]);
        if !after_dot && !local && (segs.len() > 1 || called || typed) && segs[0] != "self" {
            out.push(Ref::Path {
                segs,
                at: start..end,
            });
        }
        k = j;
    }
}
