//! Snapshot tests of answer post-processing: a model's answer → what the edit, the document or
//! the review becomes (`edit_text`, `document_text`, `first_code_block`, `findings`), for each
//! way an agent may declare it (`postprocess`). Refresh with
//! `UPDATE_EXPECT=1 cargo test --lib agents::answer_tests`.

use expect_test::{Expect, expect};

use super::*;

fn agent(name: &str, postprocess: Post) -> Agent {
    let mut agent = builtins()
        .into_iter()
        .find(|a| a.name == name)
        .expect("a built-in agent");
    agent.postprocess = postprocess;
    agent
}

fn shown(text: Option<String>) -> String {
    match text {
        Some(text) => format!("{text}\n"),
        None => "nothing\n".into(),
    }
}

/// What an edit agent (`fix`) applies and what a document agent (`explain`) shows, under each
/// `postprocess`.
fn check(answer: &str, expect: Expect) {
    let mut out = String::new();
    for (label, post) in [
        ("default", Post::Default),
        ("first-code-block", Post::FirstCodeBlock),
        ("none", Post::Whole),
    ] {
        out.push_str(&format!("edit, {label}:\n"));
        out.push_str(&shown(edit_text(&agent("fix", post), answer)));
        out.push_str(&format!("document, {label}:\n"));
        out.push_str(&shown(Some(document_text(&agent("explain", post), answer))));
    }
    expect.assert_eq(&out);
}

#[test]
fn prose_around_a_fenced_block() {
    check(
        "Here is the fix:\n\n```rust\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n```\n\nThis adds both numbers.\n",
        expect![[r#"
            edit, default:
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            document, default:
            Here is the fix:

            ```rust
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            ```

            This adds both numbers.
            edit, first-code-block:
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            document, first-code-block:
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            edit, none:
            Here is the fix:

            ```rust
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            ```

            This adds both numbers.
            document, none:
            Here is the fix:

            ```rust
            fn add(a: u32, b: u32) -> u32 {
                a + b
            }
            ```

            This adds both numbers.
        "#]],
    );
}

#[test]
fn an_answer_without_a_fence() {
    check(
        "\nfn add(a: u32, b: u32) -> u32 { a + b }\n\n",
        expect![[r#"
            edit, default:
            nothing
            document, default:
            fn add(a: u32, b: u32) -> u32 { a + b }
            edit, first-code-block:
            nothing
            document, first-code-block:

            fn add(a: u32, b: u32) -> u32 { a + b }


            edit, none:
            fn add(a: u32, b: u32) -> u32 { a + b }
            document, none:
            fn add(a: u32, b: u32) -> u32 { a + b }
        "#]],
    );
}

#[test]
fn two_blocks_and_an_empty_one() {
    check(
        "```\n\n```\nthen\n```ts\nconst a = 1;\n```\n```ts\nconst b = 2;\n```\n",
        expect![[r#"
            edit, default:
            nothing
            document, default:
            ```

            ```
            then
            ```ts
            const a = 1;
            ```
            ```ts
            const b = 2;
            ```
            edit, first-code-block:
            nothing
            document, first-code-block:
            ```

            ```
            then
            ```ts
            const a = 1;
            ```
            ```ts
            const b = 2;
            ```

            edit, none:
            ```

            ```
            then
            ```ts
            const a = 1;
            ```
            ```ts
            const b = 2;
            ```
            document, none:
            ```

            ```
            then
            ```ts
            const a = 1;
            ```
            ```ts
            const b = 2;
            ```
        "#]],
    );
}

#[test]
fn a_block_cut_short_by_the_stream() {
    expect![[r#"
        nothing
    "#]]
    .assert_eq(&shown(first_code_block(
        "```python\ndef area(w, h):\n    return w * h",
    )));
}

fn check_findings(answer: &str, expect: Expect) {
    let out: String = findings(answer)
        .iter()
        .map(|f| {
            let suggestion = f
                .suggestion
                .as_deref()
                .map(|s| format!(" → {s:?}"))
                .unwrap_or_default();
            format!("{} {}: {}{suggestion}\n", f.line, f.severity, f.message)
        })
        .collect();
    expect.assert_eq(&out);
}

#[test]
fn review_findings_are_read_one_json_object_a_line() {
    check_findings(
        r#"Looking at the code:
```json
{"line": 3, "severity": "error", "message": "divides by zero when `n` is 0", "suggestion": "if n == 0 { return 0; }"},
{"line": 7, "message": "`unwrap` on user input"}
{"line": 0, "message": "no such line"}
{"line": 9, "message": "   "}
{"severity": "info", "message": "no line at all"}
{"line": 12, "severity": "info", "message": "name could say more"
```
That is all."#,
        expect![[r#"
            3 error: divides by zero when `n` is 0 → "if n == 0 { return 0; }"
            7 warning: `unwrap` on user input
        "#]],
    );
}

#[test]
fn findings_spread_over_lines_or_in_an_array() {
    // The review prompt asks for one JSON object per line; models also answer with a
    // pretty-printed object or a one-line array. Neither is read today: such a review reports
    // no findings at all.
    check_findings(
        "{\n  \"line\": 4,\n  \"message\": \"off by one\"\n}\n[{\"line\": 5, \"message\": \"shadowed\"}]\n",
        expect![[r#""#]],
    );
}
