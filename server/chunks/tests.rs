//! Fixture tests: a snippet → the chunk list it yields, as a snapshot (refresh with
//! `UPDATE_EXPECT=1 cargo test`). Each line shows the chunk's id, its lines, and its signature.

use expect_test::{Expect, expect};
use ropey::Rope;

use super::*;
use crate::documents::{Syntax, chunk_text as doc_chunks};
use crate::syntax::{Language, input_edit};

fn chunk_text(text: &Rope, language: Option<Language>, config: &ChunkConfig) -> Vec<Chunk> {
    doc_chunks(text, language, config).to_vec()
}

fn render(chunks: &[Chunk], text: &Rope) -> String {
    let mut depth = vec![0usize; chunks.len()];
    let mut out = String::new();
    for (i, c) in chunks.iter().enumerate() {
        depth[i] = c.parent.map_or(0, |p| depth[p] + 1);
        let (first, last) = c.lines(text);
        let signature = text.byte_slice(c.signature.clone()).to_string();
        let signature = signature.lines().next().unwrap_or("");
        out.push_str(&format!(
            "{}{} L{}-{} `{}`\n",
            "  ".repeat(depth[i]),
            c.id,
            first + 1,
            last + 1,
            signature
        ));
    }
    out
}

fn check(language: Language, source: &str, expected: Expect) {
    let text = Rope::from_str(source);
    let chunks = chunk_text(&text, Some(language), &ChunkConfig::default());
    assert_covers_in_order(&chunks);
    expected.assert_eq(&render(&chunks, &text));
}

/// Chunks are in document order, children inside their parents, siblings disjoint.
fn assert_covers_in_order(chunks: &[Chunk]) {
    for (i, c) in chunks.iter().enumerate() {
        assert!(c.range.start <= c.range.end);
        assert!(
            c.signature.start >= c.range.start && c.signature.end <= c.range.end,
            "{c:?}"
        );
        if let Some(p) = c.parent {
            assert!(p < i);
            let parent = &chunks[p];
            assert!(parent.range.start <= c.range.start && c.range.end <= parent.range.end);
        }
        if i > 0 {
            assert!(chunks[i - 1].range.start <= c.range.start);
        }
    }
}

#[test]
fn rust_items_with_docs_attributes_and_groups() {
    check(
        Language::Rust,
        r#"//! Crate docs stay out of the first item.

use std::fmt;
use std::sync::Arc;

const LIMIT: usize = 4;

/// A point.
#[derive(Debug, Clone)]
pub struct Point<T> {
    x: T,
}

/// Shapes.
pub trait Shape {
    fn area(&self) -> f64;
    fn name(&self) -> String { String::new() }
}

impl<T: fmt::Debug> fmt::Display for Point<T> {
    /// Formats.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn helper() {}
        write!(f, "{:?}", self.x)
    }
}

impl<T> Point<T> {
    pub fn new(x: T) -> Self { Point { x } }
    pub fn new(x: T) -> Self { Point { x } }
}

enum Color { Red, Green }
type Id = u64;
union U { a: u32 }
macro_rules! square { ($x:expr) => { $x * $x }; }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_works() {}
}
"#,
        expect![[r#"
            group:comments#0 L1-1 ``
            group:imports#0 L3-4 ``
            group:items#0 L6-6 ``
            struct:Point#0 L8-12 `pub struct Point<T>`
            trait:Shape#0 L14-18 `pub trait Shape`
              method:Shape::area#0 L16-16 `fn area(&self) -> f64;`
              method:Shape::name#0 L17-17 `fn name(&self) -> String`
            impl:fmt::Display for Point<T>#0 L20-26 `impl<T: fmt::Debug> fmt::Display for Point<T>`
              method:fmt::Display for Point<T>::fmt#0 L21-25 `fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result`
            impl:Point<T>#0 L28-31 `impl<T> Point<T>`
              method:Point<T>::new#0 L29-29 `pub fn new(x: T) -> Self`
              method:Point<T>::new#1 L30-30 `pub fn new(x: T) -> Self`
            enum:Color#0 L33-33 `enum Color`
            type:Id#0 L34-34 `type Id = u64;`
            union:U#0 L35-35 `union U`
            macro:square#0 L36-36 `macro_rules! square { ($x:expr) => { $x * $x }; }`
            module:tests#0 L38-44 `mod tests`
              function:tests::it_works#0 L42-43 `fn it_works()`
        "#]],
    );
}

#[test]
fn typescript_declarations_exports_and_members() {
    check(
        Language::TypeScript,
        r#"import { a } from "./a";
import b from "b";

/** Adds. */
export function add(x: number, y: number): number {
  return x + y;
}

export const double = (x: number): number => x * 2;

@Component({ selector: "app" })
export class Widget extends Base implements Shape {
  private count = 0;

  /** Renders. */
  @Input()
  render(): string {
    return "";
  }

  onClick = (e: Event) => {
    this.count++;
  };
}

export interface Shape {
  area(): number;
}

type Pair<T> = [T, T];

enum Color { Red, Green }

namespace Geometry {
  export function area(): number { return 0; }
}

declare module "lib" {
  export function f(): void;
}

console.log(add(1, 2));
"#,
        expect![[r##"
            group:imports#0 L1-2 ``
            function:add#0 L4-7 `export function add(x: number, y: number): number`
            function:double#0 L9-9 `export const double = (x: number): number =>`
            class:Widget#0 L11-24 `@Component({ selector: "app" })`
              method:Widget.render#0 L15-19 `render(): string`
              method:Widget.onClick#0 L21-23 `onClick = (e: Event) =>`
            interface:Shape#0 L26-28 `export interface Shape`
            type:Pair#0 L30-30 `type Pair<T> = [T, T];`
            enum:Color#0 L32-32 `enum Color`
            module:Geometry#0 L34-36 `namespace Geometry`
              function:Geometry.area#0 L35-35 `export function area(): number`
            module:"lib"#0 L38-40 `declare module "lib"`
            group:items#0 L42-42 ``
        "##]],
    );
}

#[test]
fn tsx_inherits_typescript_chunks() {
    check(
        Language::Tsx,
        r#"import React from "react";

export function App({ name }: { name: string }) {
  return <div className="app">{name}</div>;
}

export default class Page extends React.Component<Props> {
  render() {
    return <App name="x" />;
  }
}
"#,
        expect![[r#"
            group:imports#0 L1-1 ``
            function:App#0 L3-5 `export function App({ name }: { name: string })`
            class:Page#0 L7-11 `export default class Page extends React.Component<Props>`
              method:Page.render#0 L8-10 `render()`
        "#]],
    );
}

#[test]
fn javascript_and_jsx() {
    check(
        Language::JavaScript,
        r#"const fs = require("fs");

/** Reads. */
function read(path) {
  return fs.readFileSync(path);
}

export const view = () => <p>hi</p>;

class Store {
  items = [];
  add(item) { this.items.push(item); }
  remove = (item) => { this.items = this.items.filter((i) => i !== item); };
}

module.exports = { read, Store };
"#,
        expect![[r#"
            group:items#0 L1-1 ``
            function:read#0 L3-6 `function read(path)`
            function:view#0 L8-8 `export const view = () =>`
            class:Store#0 L10-14 `class Store`
              method:Store.add#0 L12-12 `add(item)`
              method:Store.remove#0 L13-13 `remove = (item) =>`
            group:items#1 L16-16 ``
        "#]],
    );
}

#[test]
fn oversized_functions_are_cut_into_parts() {
    let body: String = (0..400)
        .map(|i| format!("    let v{i} = {i} * 2;\n"))
        .collect();
    let source = format!("fn big() {{\n{body}}}\n\nfn small() {{}}\n");
    let text = Rope::from_str(&source);
    let config = ChunkConfig {
        max_chunk_bytes: 2048,
        ..Default::default()
    };
    let chunks = chunk_text(&text, Some(Language::Rust), &config);
    assert_covers_in_order(&chunks);
    let parts: Vec<&Chunk> = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Part)
        .collect();
    assert!(parts.len() >= 4, "{}", render(&chunks, &text));
    assert!(
        parts
            .iter()
            .all(|p| p.range.len() <= 2048 && p.parent == Some(0))
    );
    assert_eq!(&*parts[1].id, "part:big#1");
    // The parts cover the body's statements without overlap.
    for pair in parts.windows(2) {
        assert!(pair[0].range.end <= pair[1].range.start);
    }
    assert_eq!(chunks.last().unwrap().name.as_ref(), "small");
}

#[test]
fn unknown_languages_and_minified_files_get_line_windows() {
    let text = Rope::from_str(&"word ".repeat(10).repeat(100));
    let chunks = chunk_text(&text, None, &ChunkConfig::default());
    assert!(chunks.iter().all(|c| c.kind == ChunkKind::Window));

    // Text that does not parse as its language at all.
    let garbage: String = (0..500)
        .map(|i| ["}}", ")))", "]", "=>", "::"][i % 5])
        .collect();
    let text = Rope::from_str(&garbage);
    let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
    assert!(
        chunks.iter().all(|c| c.kind == ChunkKind::Window),
        "{chunks:?}"
    );

    let minified = format!("function a(){{{}}}", "x();".repeat(5000));
    let text = Rope::from_str(&minified);
    let chunks = chunk_text(&text, Some(Language::JavaScript), &ChunkConfig::default());
    assert!(chunks.len() > 1);
    assert!(
        chunks
            .iter()
            .all(|c| c.kind == ChunkKind::Window && c.range.len() <= 6 * 1024)
    );
}

/// A document being edited through [`Syntax`], checked against a fresh chunking after each edit.
struct Editing {
    language: Language,
    text: Rope,
    syntax: Syntax,
    version: i32,
}

/// `n` documented Rust functions of about 80 bytes each, one after another.
fn documented_functions(n: usize) -> String {
    (0..n)
        .map(|i| format!("/// Doc {i}.\npub fn f{i}(x: u32) -> u32 {{\n    let y = x * {i};\n    y + 1\n}}\n\n"))
        .collect()
}

impl Editing {
    fn new(language: Language, source: &str) -> (Editing, Vec<Chunk>) {
        let text = Rope::from_str(source);
        let mut syntax = Syntax::new(Some(language), ChunkConfig::default());
        let chunks = syntax.update(1, text.clone(), &[], true).chunks.to_vec();
        (
            Editing {
                language,
                text,
                syntax,
                version: 1,
            },
            chunks,
        )
    }

    /// Replaces the first occurrence of `find` (or inserts before it, with `insert_only`).
    fn edit(
        &mut self,
        find: &str,
        replace: &str,
        insert_only: bool,
    ) -> (crate::documents::ParseStats, Vec<Chunk>) {
        self.edit_checked(find, replace, insert_only, true)
    }

    /// Replaces bytes `at..end` with `replace`, and updates the parse.
    fn replace_at(&mut self, at: usize, end: usize, replace: &str) -> crate::documents::Parsed {
        let before = self.text.clone();
        let start = self.text.byte_to_char(at);
        self.text.remove(start..self.text.byte_to_char(end));
        self.text.insert(start, replace);
        let edit = input_edit(&before, &self.text, at, end, at + replace.len());
        self.version += 1;
        self.syntax
            .update(self.version, self.text.clone(), &[edit], false)
    }

    fn edit_checked(
        &mut self,
        find: &str,
        replace: &str,
        insert_only: bool,
        check: bool,
    ) -> (crate::documents::ParseStats, Vec<Chunk>) {
        let at = self
            .text
            .to_string()
            .find(find)
            .unwrap_or_else(|| panic!("{find:?} not found"));
        let end = if insert_only { at } else { at + find.len() };
        let parsed = self.replace_at(at, end, replace);
        let chunks = parsed.chunks.to_vec();
        if !check {
            return (parsed.stats, chunks);
        }
        // The segments' start points, kept through the edit, are where the text puts them.
        let bases: Vec<usize> = parsed.chunks.lists().iter().map(|(b, _)| *b).collect();
        let points: Vec<_> = bases
            .iter()
            .map(|&b| crate::syntax::point_at(self.text.slice(..), b))
            .collect();
        assert_eq!(parsed.starts, points, "after replacing {find:?}");
        let fresh = chunk_text(&self.text, Some(self.language), &ChunkConfig::default());
        if let Some(i) = (0..chunks.len().max(fresh.len())).find(|&i| chunks.get(i) != fresh.get(i))
        {
            panic!(
                "after replacing {find:?}: incremental != fresh ({} vs {} chunks) from #{i}:\n{:#?}\nvs\n{:#?}",
                chunks.len(),
                fresh.len(),
                &chunks[i..(i + 3).min(chunks.len())],
                &fresh[i..(i + 3).min(fresh.len())]
            );
        }
        (parsed.stats, chunks)
    }
}

#[test]
fn an_edit_recomputes_only_the_chunks_it_touches() {
    let source: String = (0..50)
        .map(|i| format!("/// Doc {i}.\nfn f{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\n"))
        .collect();
    let (mut doc, before) = Editing::new(Language::Rust, &source);
    assert_eq!(before.len(), 50);

    // Type inside the body of f20.
    let (stats, after) = doc.edit("x + 20", "x + 200", false);
    assert_eq!(stats.chunk.extracted, 1, "{stats:?}");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b.id, a.id);
        if i == 20 {
            assert_ne!(b.hash, a.hash);
        } else {
            assert_eq!(b.hash, a.hash, "chunk {i} changed");
        }
    }
    // Editing a doc comment changes its item's hash, not the others'.
    let (_, after2) = doc.edit("Doc 30", "Note 30", false);
    let changed: Vec<usize> = (0..50)
        .filter(|&i| after[i].hash != after2[i].hash)
        .collect();
    assert_eq!(changed, vec![30]);

    // A blank line between a doc comment and its item detaches it into a group.
    let (_, after3) = doc.edit("fn f40", "\n", true);
    assert_eq!(after3.len(), 51);
    // Unbalancing a brace and closing it again ends where a fresh chunking does.
    doc.edit("fn f10", "fn open() {\n", true);
    doc.edit("fn f10", "}\n", true);
}

/// A file of many segments: an edit reparses one segment, and the chunks stay those of a
/// fresh chunking through typing, errors that run on, and pastes.
#[test]
fn large_files_are_parsed_in_segments() {
    let source: String = (0..6000)
        .map(|i| format!("/// Doc {i}.\n#[inline]\npub fn f{i}(x: u32) -> u32 {{\n    let y = x * {i};\n    y + 1\n}}\n\nconst C{i}: u32 = {i};\n"))
        .collect();
    assert!(source.len() > 10 * crate::documents::SEGMENT_TARGET);
    let (mut doc, before) = Editing::new(Language::Rust, &source);
    assert_eq!(before.len(), 12_000);
    let segments = doc
        .syntax
        .update(1, doc.text.clone(), &[], false)
        .chunks
        .segments();
    assert!(segments >= 10, "{segments} segments");

    let (stats, _) = doc.edit("x * 3000;", "x * 30000;", false);
    assert_eq!(
        (stats.segments_parsed, stats.chunk.extracted),
        (1, 1),
        "{stats:?}"
    );
    // An unbalanced brace (the code is broken until its match is typed further on), closed more
    // than a segment later: the parser recovers from the `{` inside its segment, which then does
    // not end in an error, and still the `}` must find it.
    let items_apart = 2 * crate::documents::SEGMENT_TARGET / 80;
    doc.edit_checked("/// Doc 3500.", "fn open() {\n", true, false);
    doc.edit(&format!("/// Doc {}.", 3500 + items_apart), "}\n", true);
    // An unclosed block comment runs on into the next segments, up to SEGMENT_MAX...
    let (stats, _) = doc.edit_checked("const C100:", "/* ", true, false);
    assert!(stats.segments_parsed > 1, "{stats:?}");
    // ...and its end heals them.
    doc.edit("const C200:", "*/ ", true);
    // An edit across a segment boundary, and a paste larger than a segment.
    let at = doc.text.to_string().find("pub fn f2000").unwrap();
    let cut: String = doc
        .text
        .byte_slice(at..at + 3 * crate::documents::SEGMENT_TARGET)
        .to_string();
    let next_item = cut.rfind("/// Doc").unwrap();
    doc.edit(&cut[..next_item], "", false);
    let paste: String = (0..2000).map(|i| format!("fn p{i}() {{}}\n")).collect();
    doc.edit("/// Doc 10.", &paste, true);
    let (stats, _) = doc.edit("y + 1\n}\n\nconst C5999", "y + 2\n}\n\nconst C5999", false);
    assert_eq!(stats.segments_parsed, 1);
}

/// Typing a call's arguments leaves a `(` open for a few keystrokes: in a file that parses, the
/// segment it is typed in ends in an error, but no later segment holds anything that could
/// close it, so every keystroke reparses that one segment, not a quarter megabyte after it.
#[test]
fn an_open_paren_typed_in_a_large_file_reparses_one_segment() {
    let source = documented_functions(6000);
    let (mut doc, _) = Editing::new(Language::Rust, &source);
    // A half line left a few segments before, an error that leaves nothing open: no closer of it
    // is looked for either.
    let (stats, _) = doc.edit_checked(
        "/// Doc 2800.",
        "fn half() {\n    let h = \n}\n",
        true,
        false,
    );
    assert_eq!(stats.segments_parsed, 1, "{stats:?}");
    let mut typed = String::new();
    for c in "let v = g(y, ".chars() {
        let find = format!("    {typed}y + 1\n}}\n\n/// Doc 3001.");
        typed.push(c);
        let (stats, _) = doc.edit_checked(
            &find,
            &format!("    {typed}y + 1\n}}\n\n/// Doc 3001."),
            false,
            false,
        );
        assert_eq!(stats.segments_parsed, 1, "after {typed:?}: {stats:?}");
    }
    // Closing it ends where a fresh chunking does.
    doc.edit(
        &format!("    {typed}y + 1\n"),
        "    let v = g(y, 2);\n    y + 1\n",
        false,
    );
}

/// An opener typed in one segment and its closer typed in another, with a whole segment of
/// code between them: once closed, the chunks are a fresh chunking's (the comment spans them).
#[test]
fn a_comment_closed_segments_later_heals_the_segments_between() {
    let source = documented_functions(6000);
    let (mut doc, _) = Editing::new(Language::Rust, &source);
    // About 80 bytes an item: 1,000 items apart is two to three segments.
    doc.edit_checked("/// Doc 2000.", "/* ", true, false);
    doc.edit("/// Doc 3000.", "*/ ", true);
    // Deleting the opener heals too.
    doc.edit("/* ", "", false);
    // And the closer first, then the opener before it.
    doc.edit("*/ ", "", false);
    doc.edit_checked("/// Doc 3000.", "*/ ", true, false);
    doc.edit("/// Doc 2000.", "/* ", true);
    // A string, closer first: nothing to attach to the item after it (in a new document: the
    // segments above are one now).
    let (mut doc, _) = Editing::new(Language::Rust, &source);
    doc.edit_checked("/// Doc 3000.", "\";\n", true, false);
    let (_, chunks) = doc.edit("/// Doc 2000.", "const S: &str = \"", true);
    // One chunk holds the constant, string and all.
    let text = doc.text.to_string();
    let (start, end) = (text.find("const S").unwrap(), text.find("\";\n").unwrap());
    assert!(
        chunks
            .iter()
            .any(|c| c.range.start <= start && c.range.end > end)
    );
}

/// Openers and closers typed anywhere in a file of many segments, then taken out again in
/// reverse: every time the text is back to the original, the chunks are a fresh chunking's,
/// whatever merges the broken states in between made.
#[test]
fn any_run_of_broken_edits_undone_ends_as_a_fresh_chunking() {
    let source = documented_functions(3000);
    let (mut doc, original) = Editing::new(Language::Rust, &source);
    const PIECES: &[&str] = &["(", ")", "{", "}", "/*", "*/", "\"", "fn g() {", "'", "\n"];
    let mut seed = 0x5EED_u64;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    for round in 0..6 {
        let mut done: Vec<(usize, &str)> = Vec::new();
        for _ in 0..4 {
            // Line starts only, so that a piece never splits a token.
            let len = doc.text.len_bytes();
            let line = doc.text.byte_to_line(next(len));
            let at = doc.text.line_to_byte(line);
            let piece = PIECES[next(PIECES.len())];
            doc.replace_at(at, at, piece);
            done.push((at, piece));
        }
        for (at, piece) in done.into_iter().rev() {
            doc.replace_at(at, at + piece.len(), "");
        }
        assert_eq!(doc.text.to_string(), source);
        let chunks = doc
            .syntax
            .update(doc.version, doc.text.clone(), &[], false)
            .chunks
            .to_vec();
        assert!(
            chunks == original,
            "round {round}: chunks differ from a fresh chunking"
        );
    }
}

/// A block comment's closer can hide inside a comment of a later segment (`// end */`, the end
/// of a JSDoc), where, parsed on its own, it is no error: the comment opened segments before it
/// still ends there, as in a fresh chunking.
#[test]
fn a_block_comment_closed_inside_a_later_comment_heals() {
    let rust = documented_functions(6000);
    // The closer first, then the opener.
    let (mut doc, _) = Editing::new(Language::Rust, &rust);
    doc.edit("/// Doc 3000.", "// end */\n", true);
    doc.edit("/// Doc 2000.", "/* ", true);
    // The opener first, then the closer.
    let (mut doc, _) = Editing::new(Language::Rust, &rust);
    doc.edit_checked("/// Doc 2000.", "/* ", true, false);
    doc.edit("/// Doc 3000.", "// end */\n", true);

    // TypeScript: the end of the next JSDoc closes a `/*` typed segments above it.
    let ts: String = (0..6000)
        .map(|i| {
            let jsdoc = if i == 3000 { "/** Doc. */\n" } else { "" };
            format!("// Doc {i}.\n{jsdoc}export function f{i}(x: number): number {{\n    const y = x * {i};\n    return y + 1;\n}}\n\n")
        })
        .collect();
    let (mut doc, _) = Editing::new(Language::TypeScript, &ts);
    doc.edit("// Doc 2000.", "/* ", true);
}

#[test]
fn a_syntax_error_does_not_spoil_the_rest_of_a_large_file() {
    let mut source = documented_functions(6000);
    source.insert_str(
        source.find("/// Doc 20.").unwrap(),
        "const BAD: u32 = ;\n\n",
    );
    let text = Rope::from_str(&source);
    let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
    let functions = chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Function)
        .count();
    assert_eq!(functions, 6000, "every function survives the one error");
}

#[test]
fn one_very_large_item_stays_whole() {
    let body: String = (0..12000)
        .map(|i| format!("    #[test]\n    fn t{i}() {{ assert_eq!({i}, {i}); }}\n\n"))
        .collect();
    let source =
        format!("fn before() {{}}\n\n#[cfg(test)]\nmod tests {{\n{body}}}\n\nfn after() {{}}\n");
    assert!(source.len() > 2 * crate::documents::SEGMENT_MAX);
    let text = Rope::from_str(&source);
    let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
    let module = chunks
        .iter()
        .find(|c| c.kind == ChunkKind::Module)
        .expect("the module is one chunk");
    let expected = format!("#[cfg(test)]\nmod tests {{\n{body}}}");
    assert!(
        text.byte_slice(module.range.clone()) == expected.as_str(),
        "the module chunk is not the whole module"
    );
    assert_eq!(
        chunks
            .iter()
            .filter(|c| c.kind == ChunkKind::Function && c.parent.is_some())
            .count(),
        12000
    );
    assert_eq!(chunks.last().unwrap().name.as_ref(), "after");
}

/// Edits next to a segment boundary that change what may be cut there.
#[test]
fn boundaries_that_no_longer_hold_are_merged_away() {
    // A comment typed above the first item of a segment attaches to it.
    let source: String = (0..3000)
        .map(|i| format!("/// Doc {i}.\npub fn f{i}() -> u32 {{\n    {i}\n}}\n\n"))
        .collect();
    let (mut doc, _) = Editing::new(Language::Rust, &source);
    let starts = doc
        .syntax
        .update(1, doc.text.clone(), &[], false)
        .chunks
        .segment_starts();
    assert!(starts.len() > 2);
    let boundary = starts[1];
    let after: String = doc.text.byte_slice(boundary..boundary + 20).to_string();
    doc.edit(&after, &format!("// note\n{after}"), false);

    // A segment whose first item is deleted begins with a run of small items that continues
    // the one before it.
    let source: String = (0..1500)
        .map(|i| format!("/// Doc {i}.\npub fn f{i}() {{}}\nconst C{i}: u32 = {i};\n\n"))
        .collect();
    let (mut doc, _) = Editing::new(Language::Rust, &source);
    let starts = doc
        .syntax
        .update(1, doc.text.clone(), &[], false)
        .chunks
        .segment_starts();
    let boundary = starts[1];
    let tail = doc.text.byte_slice(boundary..).to_string();
    let first_item = &tail[..tail.find("const").unwrap()];
    doc.edit(first_item, "", false);
}

#[test]
fn deeply_nested_containers_do_not_exhaust_the_stack() {
    let source = format!(
        "{}fn inner() {{}}\n{}",
        "mod a {\n".repeat(5000),
        "}\n".repeat(5000)
    );
    let text = Rope::from_str(&source);
    let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
    assert!(!chunks.is_empty());
}

#[test]
fn every_query_file_compiles() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("queries");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let lang_dir = entry.unwrap().path();
        let name = lang_dir.file_name().unwrap().to_str().unwrap().to_owned();
        let language = Language::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .unwrap_or_else(|| panic!("queries/{name} names no known language"));
        for file in std::fs::read_dir(&lang_dir).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_some_and(|e| e == "scm") {
                let source = std::fs::read_to_string(&path).unwrap();
                let source = query::resolve(&source, &mut |n| {
                    std::fs::read_to_string(dir.join(n).join(path.file_name().unwrap())).ok()
                });
                if let Err(e) = compile_query(language, &source) {
                    panic!("{}: {e}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 4);
}

#[test]
fn chunk_ids_spell_kind_path_and_ordinal() {
    use super::extract::chunk_id;
    assert_eq!(&*chunk_id(ChunkKind::Function, "f", 0), "function:f#0");
    assert_eq!(&*chunk_id(ChunkKind::Method, "T::m", 10), "method:T::m#10");
    assert_eq!(
        &*chunk_id(ChunkKind::Class, "a.b", u32::MAX),
        "class:a.b#4294967295"
    );
    // The buffer is reused: a shorter id after a longer one.
    assert_eq!(&*chunk_id(ChunkKind::Function, "", 7), "function:#7");
}

#[test]
fn a_chunk_found_alone_is_the_one_the_whole_list_gives() {
    // The same impl again and again (ids numbered across segments), each body a few times over.
    let source: String = (0..3000)
        .map(|i| match i % 3 {
            0 => format!(
                "impl Shape {{\n    fn area(&self) -> u32 {{ {} }}\n}}\n\n",
                i / 7
            ),
            1 => format!("/// Doc {}.\npub fn f(x: u32) -> u32 {{ x }}\n\n", i % 7),
            _ => format!("pub fn g{i}() {{}}\n"),
        })
        .collect();
    let text = Rope::from_str(&source);
    let mut syntax = Syntax::new(Some(Language::Rust), ChunkConfig::default());
    let parsed = syntax.update(1, text, &[], true);
    assert!(
        parsed.chunks.segments() > 3,
        "{} segments",
        parsed.chunks.segments()
    );
    let all = parsed.chunks.to_vec();
    assert!(
        all.iter().any(|c| c.id.ends_with("#40")),
        "ordinals past one segment"
    );
    for c in &all {
        let first = all
            .iter()
            .find(|d| d.kind == c.kind && d.path == c.path && d.hash == c.hash);
        let found = parsed
            .chunks
            .find(|_, r| r.kind == c.kind && r.path == c.path && r.hash == c.hash);
        assert_eq!(found.as_ref(), first, "{}", c.id);
    }
    assert_eq!(parsed.chunks.find(|_, r| &*r.name == "nowhere"), None);
}
