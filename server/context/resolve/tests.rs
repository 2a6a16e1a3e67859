//! Resolution over small workspaces written here: files on disk in a temporary folder, indexed
//! by the real archive (SQLite, symbol tables), read back through `ArchiveWorkspace`; each use at
//! the cursor's chunk and what it resolved to, as a snapshot.

use std::collections::HashMap;
use std::path::Path;

use expect_test::{Expect, expect};
use ropey::Rope;

use super::{Outcome, edit_between, parse, parse_again, uses};
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

#[test]
fn a_document_parsed_again_from_its_last_parse_is_parsed_as_from_nothing() {
    // Typing into a file, a character at a time (accents and an emoji among them), deleting,
    // then pasting over a stretch, and another document in between.
    let mut text = String::from(
        "use std::fmt;\n\n/// Doc é.\npub fn helper(x: u32) -> u32 {\n    x + 1\n}\n\nfn main() {\n    let a = helper(2);\n}\n",
    );
    let other = "fn other() -> u8 { 7 }\n";
    let at = text.find("    let a").unwrap();
    let mut texts = Vec::new();
    for c in "let b = \"héllo 😀\"; // ✓".chars() {
        let typed = texts.len();
        let pos = at
            + text[at..]
                .char_indices()
                .nth(typed)
                .map_or(text.len() - at, |(i, _)| i);
        text.insert(pos, c);
        texts.push(text.clone());
    }
    for _ in 0..5 {
        let (i, _) = text
            .char_indices()
            .take_while(|(i, _)| *i < at + 12)
            .last()
            .unwrap();
        text.remove(i);
        texts.push(text.clone());
    }
    let (start, end) = (
        text.find("pub fn helper").unwrap(),
        text.find("fn main").unwrap(),
    );
    text.replace_range(start..end, "struct Pasted { é: u8 }\n\n");
    texts.push(text.clone());
    text.push_str("\nfn tail() {}\n");
    texts.push(text);
    for (n, text) in texts.iter().enumerate() {
        let again = parse_again("src/main.rs", text, Language::Rust).unwrap();
        let fresh = parse(text, Language::Rust).unwrap();
        assert_eq!(nodes(&again), nodes(&fresh), "after edit {n}: {text}");
        if n % 4 == 0 {
            parse_again("src/other.rs", other, Language::Rust).unwrap();
        }
    }
    let edit = edit_between("aé😀b", "aè😀b");
    assert_eq!(
        (edit.start_byte, edit.old_end_byte, edit.new_end_byte),
        (1, 3, 3)
    );
}

/// Every node of a tree, in order: its kind and where it lies (bytes and rows and columns).
fn nodes(tree: &tree_sitter::Tree) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = tree.walk();
    'walk: loop {
        let node = cursor.node();
        out.push(format!(
            "{} {:?} {} {}",
            node.kind(),
            node.byte_range(),
            node.start_position(),
            node.end_position()
        ));
        if cursor.goto_first_child() || cursor.goto_next_sibling() {
            continue;
        }
        loop {
            if !cursor.goto_parent() {
                break 'walk;
            }
            if cursor.goto_next_sibling() {
                break;
            }
        }
    }
    out
}

#[test]
fn the_parses_kept_for_resolution_go_when_the_server_is_idle() {
    let kept = |path: &str| super::KEPT.lock().unwrap().iter().any(|k| k.path == path);
    parse_again("src/idle.rs", "fn idle() {}\n", Language::Rust).unwrap();
    assert!(kept("src/idle.rs"));
    crate::resources::memory::release();
    assert!(!kept("src/idle.rs"));
}
