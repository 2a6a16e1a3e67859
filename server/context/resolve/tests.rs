//! Resolution over small workspaces written here: files on disk in a temporary folder, indexed
//! by the real archive (SQLite, symbol tables), read back through `ArchiveWorkspace`; each use at
//! the cursor's chunk and what it resolved to, as a snapshot.

use std::collections::HashMap;
use std::path::Path;

use expect_test::{Expect, expect};
use ropey::Rope;

use super::{Outcome, uses};
use crate::archive::{Archive, IndexConfig};
use crate::context::ArchiveWorkspace;
use crate::context::assemble::Request;
use crate::context::fixture::Fixture;
use crate::context::immediate::focus;
use crate::documents::chunk_text;
use crate::syntax::Language;

fn check(fixture: &str, expected: Expect) {
    let fixture = Fixture::parse(fixture);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    for (path, text) in &fixture.files {
        let file = root.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let (archive, _) = Archive::open(&root, Some(&dir.path().join("cache"))).unwrap();
    let config = IndexConfig::default();
    archive.index(&config, &|_, _| {}).unwrap();
    let workspace = ArchiveWorkspace::new(&archive, config.clone(), HashMap::new());
    let text = Rope::from_str(fixture.text());
    let language = Language::from_path(Path::new(&fixture.path));
    let document = chunk_text(&text, language, &config.chunk);
    let chunks = document.to_vec();
    let request = Request::at(&fixture.path, &text, &document, fixture.selection.clone());
    let at = focus(&chunks, &fixture.selection);
    let found = uses(&request, &chunks, &workspace, &at);
    let mut out = String::new();
    for u in &found {
        let what = match &u.outcome {
            Outcome::Defs(defs) => defs
                .iter()
                .map(|d| {
                    let s = &d.symbol;
                    let owner = if s.container.is_empty() {
                        String::new()
                    } else {
                        format!("{}::", s.container)
                    };
                    format!(
                        "{}:{} {} {owner}{}",
                        d.path,
                        s.lines.0 + 1,
                        s.kind.as_str(),
                        s.name
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Outcome::External => "external".into(),
            Outcome::Unresolved => "unresolved".into(),
        };
        out.push_str(&format!("{} → {what}\n", u.name));
    }
    expected.assert_eq(&out);
    // The same state resolves the same way.
    assert_eq!(found, uses(&request, &chunks, &workspace, &at));
}

#[test]
fn rust_use_trees_reexports_module_files_macro_items_and_methods() {
    check(
        r#"
        //- /src/lib.rs
        mod a;
        #[path = "platform/unix.rs"]
        mod sys;
        pub mod runtime;
        mod task;
        //- /src/a/mod.rs
        pub mod b;
        pub use self::b::Remapper as Renamed;
        //- /src/a/b.rs
        pub struct C;
        pub struct Remapper { table: Table }
        pub struct Table;
        impl Remapper {
            pub fn new() -> Self { Remapper { table: Table } }
            pub fn remap(&self) -> u32 { self.table.lookup() }
        }
        impl Table {
            pub fn lookup(&self) -> u32 { 1 }
        }
        pub fn helper() {}
        //- /src/platform/unix.rs
        pub fn page_size() -> usize { 4096 }
        //- /src/runtime/mod.rs
        macro_rules! cfg_rt { ($($item:item)*) => { $($item)* } }
        cfg_rt! {
            mod blocking;
            pub use blocking::spawn_blocking;
        }
        //- /src/runtime/blocking.rs
        pub fn spawn_blocking(f: u32) -> u32 { f }
        //- /src/task.rs
        use crate::a::b::{self, C};
        use crate::a::Renamed;
        use super::sys;
        use std::sync::Arc;

        struct Worker { remapper: Renamed, shared: Arc<b::Table> }

        impl Worker {
            fn run(&self, n: u32) -> usize {
                let local = Renamed::new();
                let c: C = C;
                b::helper();
                let _ = local.remap() + self.remapper.remap() + self.shared.lookup();
                crate::runtime::spawn_blocking$0(n);
                let _ = Arc::new(c);
                sys::page_size()
            }
        }
        "#,
        expect![[r#"
            spawn_blocking → src/runtime/blocking.rs:1 function spawn_blocking
            Renamed → src/a/b.rs:2 struct Remapper
            new → src/a/b.rs:5 method Remapper::new
            C → src/a/b.rs:1 struct C
            helper → src/a/b.rs:11 function helper
            remap → src/a/b.rs:6 method Remapper::remap
            remap → src/a/b.rs:6 method Remapper::remap
            lookup → src/a/b.rs:9 method Table::lookup
            Arc → external
            new → external
            page_size → src/platform/unix.rs:1 function page_size
        "#]],
    );
}

#[test]
fn rust_a_macro_of_an_inline_module_is_seen_only_inside_it() {
    check(
        r#"
        //- /src/lib.rs
        macro_rules! check { ($e:expr) => { $e } }
        fn run() -> u32 {
            check$0!(1) + other!(2)
        }
        #[cfg(test)]
        mod tests {
            macro_rules! other { ($e:expr) => { $e } }
            macro_rules! check { ($e:expr) => { $e } }
            fn inner() -> u32 { check!(3) }
        }
        "#,
        expect![[r#"
            check → src/lib.rs:1 macro check
            other → external
        "#]],
    );
}

#[test]
fn typescript_barrels_reexports_paths_and_import_kinds() {
    check(
        r#"
        //- /tsconfig.json
        {
          // comments are allowed
          "compilerOptions": { "baseUrl": ".", "paths": { "@lib/*": ["src/lib/*"], }, },
        }
        //- /src/lib/index.ts
        export * from './subscriber';
        export { map as mapped } from './operators/map';
        export * as ops from './operators/map';
        //- /src/lib/subscriber.ts
        import { Subscription } from './subscription';
        export class Subscriber<T> extends Subscription {
          next(value: T): void {}
        }
        //- /src/lib/subscription.ts
        export class Subscription {
          unsubscribe(): void {}
        }
        //- /src/lib/operators/map.ts
        export function map<T>(f: (x: T) => T) { return f; }
        export function filter() {}
        //- /src/lib/types.ts
        export interface Observer<T> { next(value: T): void }
        //- /src/lib/config.ts
        const config = { debug: false };
        export default config;
        //- /src/app.ts
        import type { Observer } from './lib/types';
        import { Subscriber, mapped } from '@lib/index';
        import * as lib from './lib';
        import config from './lib/config.js';

        export function run(observer: Observer<number>, s: Subscriber<number>) {
          const m = mapped$0((x: number) => x);
          s.next(1);
          s.unsubscribe();
          lib.ops.filter();
          return config.debug ? lib.mapped : m;
        }
        "#,
        expect![[r#"
            mapped → src/lib/operators/map.ts:1 function map
            Observer → src/lib/types.ts:1 interface Observer
            Subscriber → src/lib/subscriber.ts:2 class Subscriber
            next → src/lib/subscriber.ts:3 method Subscriber::next
            unsubscribe → src/lib/subscription.ts:2 method Subscription::unsubscribe
            lib → external
            ops → external
            filter → src/lib/operators/map.ts:2 function filter
            config → src/lib/config.ts:1 variable config
            debug → external
            lib → external
            mapped → src/lib/operators/map.ts:1 function map
        "#]],
    );
}

/// What the cursor uses, found in a file its parse cut into many segments: each use at its
/// place in the document, each definition of the document with its place in it (bytes and
/// lines), the same whether resolution reads the trees the parse holds or parses segments
/// again — and a TypeScript method knows its class, declared segments after the file's start.
#[test]
fn uses_in_a_file_of_many_segments_are_found_at_their_places_in_it() {
    // Enough small items to fill more segments than the parse keeps trees of.
    let fill = |item: fn(usize) -> String| -> String { (0..800).map(item).collect() };
    let rust_filler = fill(|i| {
        format!("/// Filler {i}.\npub fn filler{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\n")
    });
    let rust = format!(
        "pub struct Target {{\n    pub n: u32,\n}}\n\n{rust_filler}fn user() -> Target {{\n    let t = make_target();\n    t\n}}\n\nfn make_target() -> Target {{\n    Target {{ n: 1 }}\n}}\n"
    );
    let ts_filler = fill(|i| {
        format!("export function filler{i}(x: number): number {{\n  return x + {i};\n}}\n\n")
    });
    let ts = format!(
        "{ts_filler}export class Service {{\n  helper(): number {{\n    return 1;\n  }}\n\n  run(): number {{\n    return this.helper();\n  }}\n}}\n"
    );
    for (path, text, cursor_at, expected) in [
        (
            "src/lib.rs",
            &rust,
            "make_target();",
            vec![
                ("make_target", "fn make_target"),
                ("Target", "pub struct Target"),
            ],
        ),
        (
            "src/service.ts",
            &ts,
            "helper();",
            vec![("helper", "helper(): number {")],
        ),
    ] {
        let rope = Rope::from_str(text);
        let language = Language::from_path(Path::new(path));
        let parsed = crate::documents::Syntax::new(language, Default::default()).update(
            1,
            rope.clone(),
            &[],
            true,
        );
        assert!(
            parsed.chunks.segments() > crate::documents::HOT_SEGMENTS + 1,
            "{path}: {} segments",
            parsed.chunks.segments()
        );
        assert!(!parsed.trees.is_empty());
        let cursor = text.find(cursor_at).unwrap();
        let chunks = parsed.chunks.to_vec();
        let at = focus(&chunks, &(cursor..cursor));
        let parsing = Request::at(path, &rope, &parsed.chunks, cursor..cursor);
        let reading = Request {
            trees: &parsed.trees,
            ..Request::at(path, &rope, &parsed.chunks, cursor..cursor)
        };
        let found = uses(&reading, &chunks, &crate::context::NoWorkspace, &at);
        assert_eq!(
            found,
            uses(&parsing, &chunks, &crate::context::NoWorkspace, &at)
        );
        for (name, declared) in expected {
            let u = found
                .iter()
                .find(|u| u.name == name)
                .unwrap_or_else(|| panic!("{path}: no use of {name}: {found:#?}"));
            assert_eq!(&text[u.at.clone()], name, "{path}");
            let Outcome::Defs(defs) = &u.outcome else {
                panic!("{path}: {name} resolved to {:?}", u.outcome);
            };
            let declared = text.find(declared).unwrap();
            let symbol = &defs[0].symbol;
            assert!(
                symbol.range.start <= declared && declared < symbol.range.end,
                "{path}: {name} declared at {declared}, found at {:?}",
                symbol.range
            );
            assert_eq!(
                &text[symbol.name_start..symbol.name_start + name.len()],
                name
            );
            let line = text[..declared].matches('\n').count() as u32;
            assert_eq!(symbol.lines.0, line, "{path}: {name}");
        }
    }
}
