//! Snapshot tests of completion fitting: a fixture with a `$0` cursor and a model's answer → the
//! shape read at the cursor and the text the editor would insert, with the line it makes.
//! The path is the server's: the document's own parse (its trees), `Anchor::at`, `shape`, `fit`.
//! Refresh with `UPDATE_EXPECT=1 cargo test --lib completion::fit_tests`.

use expect_test::{Expect, expect};
use ropey::Rope;

use super::{Anchor, fit, shape};
use crate::chunks::ChunkConfig;
use crate::context::fixture::Fixture;
use crate::documents::Syntax;

/// Fits `answer` at the fixture's cursor and shows the shape, the inserted text (`⏎` marks
/// nothing) and the cursor's line(s) once it is inserted.
fn check(fixture: &str, answer: &str, expect: Expect) {
    let f = Fixture::parse(fixture);
    let text = Rope::from_str(f.text());
    let cursor = f.selection.start;
    let parsed =
        Syntax::new(f.language(), ChunkConfig::default()).update(0, text.clone(), &[], true);
    // The tree covering the cursor, in its segment's offsets (as the completion prompter finds it).
    let tree = parsed.trees.iter().rev().find_map(|(offset, tree)| {
        let inside = cursor >= *offset && cursor - offset <= tree.root_node().end_byte();
        inside.then_some((tree, cursor - offset))
    });
    let anchor = Anchor::at(&text, cursor);
    let shape = shape(&anchor.before, &anchor.after, tree);
    let mut out = format!(
        "{} indent {} after {:?}\n",
        if shape.multiline {
            "multiline"
        } else {
            "one line"
        },
        shape.indent,
        shape.after
    );
    match fit(answer, &shape) {
        None => out.push_str("nothing inserted\n"),
        Some(inserted) => {
            let line_start = text.line_to_byte(text.byte_to_line(cursor));
            let line_end = line_start + anchor.before.len() + anchor.after.len();
            let before = text.byte_slice(line_start..cursor).to_string();
            let after = text.byte_slice(cursor..line_end).to_string();
            out.push_str(&format!(
                "inserted {inserted:?}\n---\n{before}{inserted}$0{after}"
            ));
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
    }
    expect.assert_eq(&out);
}

#[test]
fn inside_call_arguments_the_closing_text_is_not_typed_twice() {
    check(
        r#"
        fn total(items: &[u32]) -> u32 {
            sum(items.iter()$0);
        }
        "#,
        ".copied());\n    let unused = 1;",
        expect![[r#"
            one line indent 4 after ");"
            inserted ".copied()"
            ---
                sum(items.iter().copied()$0);
        "#]],
    );
    check(
        r#"
        fn main() {
            let total = $0;
        }
        "#,
        "compute(load());",
        expect![[r#"
            one line indent 4 after ";"
            inserted "compute(load())"
            ---
                let total = compute(load())$0;
        "#]],
    );
}

#[test]
fn on_an_empty_line_of_a_body_several_lines_up_to_the_end_of_the_block() {
    check(
        r#"
        fn parse(text: &str) -> Option<u32> {
            $0
        }
        "#,
        "let trimmed = text.trim();\n    if trimmed.is_empty() {\n        return None;\n    }\n    trimmed.parse().ok()\n}\n\nfn main() {}\n",
        expect![[r#"
            multiline indent 4 after ""
            inserted "let trimmed = text.trim();\n    if trimmed.is_empty() {\n        return None;\n    }\n    trimmed.parse().ok()"
            ---
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return None;
                }
                trimmed.parse().ok()$0
        "#]],
    );
}

#[test]
fn inside_a_string_only_the_rest_of_the_line() {
    check(
        r#"
        fn greet() -> String {
            let s = "Hello, $0
        }
        "#,
        "world\";\n    s.to_string()",
        expect![[r#"
            one line indent 4 after ""
            inserted "world\";"
            ---
                let s = "Hello, world";$0
        "#]],
    );
}

#[test]
fn a_typescript_class_body_takes_a_whole_member() {
    check(
        r#"
        //- /src/queue.ts
        class Queue<T> {
          private items: T[] = [];
          $0
        }
        "#,
        "```ts\nsize(): number {\n    return this.items.length;\n  }\n```",
        expect![[r#"
            multiline indent 2 after ""
            inserted "size(): number {\n    return this.items.length;\n  }"
            ---
              size(): number {
                return this.items.length;
              }$0
        "#]],
    );
}

#[test]
fn an_unclosed_answer_is_cut_back_to_where_it_balanced() {
    check(
        r#"
        fn area(w: f64, h: f64) -> f64 {
            let a = $0
        }
        "#,
        "w * h + margin(w, ",
        expect![[r#"
            one line indent 4 after ""
            inserted "w * h + margin"
            ---
                let a = w * h + margin$0
        "#]],
    );
}

#[test]
fn an_answer_that_only_repeats_what_follows_inserts_nothing() {
    check(
        r#"
        fn main() {
            run($0);
        }
        "#,
        ");",
        expect![[r#"
            one line indent 4 after ");"
            nothing inserted
        "#]],
    );
}
