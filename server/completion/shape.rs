//! What a completion may look like at the cursor, read from the syntax tree and the line, and the
//! post-processing that makes a model's answer fit it: one line or several, never the text that
//! already follows the cursor, brackets balanced, stopping at the end of the current block.
//! Pure functions of text and tree.

use tree_sitter::Tree;

/// The shape a completion must take at one cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Several lines may be suggested (the cursor is on an empty line of a body, or after an
    /// opening bracket at the end of a line).
    pub multiline: bool,
    /// The text after the cursor on its line.
    pub after: String,
    /// Leading whitespace of the cursor's line, in columns.
    pub indent: usize,
}

/// Node kinds of the grammars that hold statements or members, one per line.
const BODIES: &[&str] = &[
    "block",
    "statement_block",
    "declaration_list",
    "field_declaration_list",
    "enum_variant_list",
    "class_body",
    "interface_body",
    "object_type",
    "match_block",
    "source_file",
    "program",
    "switch_body",
    "object",
];

/// Reads the shape at byte `cursor` of `line_before` + `line_after` (the cursor's line split at
/// the cursor). `tree` is the syntax tree covering the cursor, with `cursor_in_tree` the cursor
/// in its offsets; without one, the line alone decides.
pub fn shape(line_before: &str, line_after: &str, tree: Option<(&Tree, usize)>) -> Shape {
    let indent = line_before
        .chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum();
    let after = line_after.trim_end_matches(['\n', '\r']).to_owned();
    let before = line_before.trim_end();
    let opens = before.ends_with(['{', '(', '[']) || before.ends_with("=>");
    let mut multiline = after.trim().is_empty() && (before.is_empty() || opens);
    if let Some((tree, at)) = tree {
        let at_node = tree
            .root_node()
            .descendant_for_byte_range(at.saturating_sub(1), at)
            .or_else(|| tree.root_node().descendant_for_byte_range(at, at));
        if let Some(node) = at_node {
            let mut literal = false;
            let mut body = false;
            let mut current = Some(node);
            while let Some(n) = current {
                let kind = n.kind();
                if kind.contains("string") || kind.contains("comment") || kind == "template_string"
                {
                    // Inside a literal (not just after its end).
                    if n.start_byte() < at && at < n.end_byte() {
                        literal = true;
                    }
                }
                if BODIES.contains(&kind) {
                    body = true;
                    break;
                }
                current = n.parent();
            }
            if literal || (!body && !opens) {
                multiline = false;
            }
        }
    }
    Shape {
        multiline,
        after,
        indent,
    }
}

/// Makes a model's answer fit `shape`; `None` when nothing useful is left.
pub fn fit(answer: &str, shape: &Shape) -> Option<String> {
    let mut text = strip_fences(answer);
    if !shape.multiline {
        if let Some(newline) = text.find('\n') {
            // An answer that starts with a line break has nothing for this line.
            text.truncate(newline);
        }
    } else {
        text = end_of_block(&text, shape.indent);
    }
    text = balance(&text);
    text = without_overlap(&text, &shape.after);
    let text = text.trim_end().to_owned();
    (!text.trim().is_empty()).then_some(text)
}

/// Chat models wrap code in fences despite being asked not to.
fn strip_fences(answer: &str) -> String {
    let trimmed = answer.trim_start_matches('\n');
    if let Some(rest) = trimmed.strip_prefix("```") {
        let body = rest.split_once('\n').map_or("", |(_, b)| b);
        let body = match body.rfind("```") {
            Some(end) => &body[..end],
            None => body,
        };
        return body.trim_end_matches('\n').to_owned();
    }
    answer.to_owned()
}

/// Cuts a multi-line answer where it leaves the block the cursor is in: at a line indented less
/// than the cursor's line, or at a closing bracket that closes something the answer did not open.
fn end_of_block(text: &str, indent: usize) -> String {
    let mut out = String::new();
    let mut depth: i32 = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let content = line.trim_end_matches(['\n', '\r']);
        let leading: usize = content
            .chars()
            .take_while(|c| c.is_whitespace())
            .map(|c| if c == '\t' { 4 } else { 1 })
            .sum();
        if i > 0 && !content.trim().is_empty() && leading < indent && depth <= 0 {
            break;
        }
        let mut cut = None;
        for (at, c) in content.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth < 0 {
                        cut = Some(at);
                        break;
                    }
                }
                _ => {}
            }
        }
        match cut {
            Some(at) => {
                let head = &content[..at];
                if !head.trim().is_empty() {
                    out.push_str(head);
                }
                break;
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The longest prefix with no closing bracket the answer did not open and, when the answer
/// leaves openers unclosed, cut back to where it was last balanced (if that leaves anything).
fn balance(text: &str) -> String {
    let mut depth: i32 = 0;
    let mut stack = Vec::new();
    let mut last_balanced = 0;
    for (at, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                stack.push(c);
            }
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.last() != Some(&open) {
                    // Closes something before the cursor: the code after the cursor has it.
                    return text[..at].to_owned();
                }
                stack.pop();
                depth -= 1;
                if depth == 0 {
                    last_balanced = at + c.len_utf8();
                }
            }
            _ if depth == 0 => last_balanced = at + c.len_utf8(),
            _ => {}
        }
    }
    if depth > 0 && last_balanced > 0 && !text[..last_balanced].trim().is_empty() {
        return text[..last_balanced].to_owned();
    }
    text.to_owned()
}

/// Drops the end of the answer that repeats the start of the text after the cursor (`)`, `;`,
/// `) {`): the editor keeps that text, the suggestion must not type it again. Runs after
/// [`balance`], so every closer left in the answer closes an opener of the answer: an end that
/// holds one is the answer's own (`.copied()` before `);`) and stays.
fn without_overlap(text: &str, after: &str) -> String {
    let after = after.trim_end();
    if after.is_empty() {
        return text.to_owned();
    }
    let mut longest = 0;
    for (k, _) in after
        .char_indices()
        .skip(1)
        .chain(std::iter::once((after.len(), ' ')))
    {
        if text.ends_with(&after[..k]) && !closes_outside(&after[..k]) {
            longest = k;
        }
    }
    text[..text.len() - longest].to_owned()
}

/// Whether `text` closes a bracket it did not open.
fn closes_outside(text: &str) -> bool {
    let mut depth: i32 = 0;
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::Language;

    fn at(source: &str, language: Language) -> (Shape, String) {
        let cursor = source.find('$').unwrap();
        let text = source.replace('$', "");
        let mut parser = tree_sitter::Parser::new();
        parser.set_language(&language.grammar()).unwrap();
        let tree = parser.parse(&text, None).unwrap();
        let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[cursor..].find('\n').map_or(text.len(), |i| cursor + i);
        (
            shape(
                &text[line_start..cursor],
                &text[cursor..line_end],
                Some((&tree, cursor)),
            ),
            text,
        )
    }

    #[test]
    fn the_syntax_decides_one_line_or_several() {
        let (s, _) = at("fn f() {\n    $\n}\n", Language::Rust);
        assert!(s.multiline);
        assert_eq!(s.indent, 4);
        let (s, _) = at("fn f() {\n    let x = $\n}\n", Language::Rust);
        assert!(!s.multiline);
        let (s, _) = at("fn f() {\n    g($);\n}\n", Language::Rust);
        assert!(!s.multiline);
        assert_eq!(s.after, ");");
        let (s, _) = at("fn f() {\n    let s = \"ab$\n}\n", Language::Rust);
        assert!(!s.multiline, "inside a string");
        let (s, _) = at("class A {\n  $\n}\n", Language::TypeScript);
        assert!(s.multiline);
        let (s, _) = at("function f() {$\n}\n", Language::TypeScript);
        assert!(s.multiline, "after an opening brace");
        let (s, _) = at("// a comment $\nfn f() {}\n", Language::Rust);
        assert!(!s.multiline);
    }

    fn shape_of(multiline: bool, after: &str, indent: usize) -> Shape {
        Shape {
            multiline,
            after: after.into(),
            indent,
        }
    }

    #[test]
    fn answers_are_fitted() {
        let one = shape_of(false, "", 4);
        assert_eq!(fit("x + 1;\nlet y = 2;", &one).as_deref(), Some("x + 1;"));
        // Never repeat what follows the cursor.
        let call = shape_of(false, ");", 4);
        assert_eq!(fit("a, b);", &call).as_deref(), Some("a, b"));
        assert_eq!(fit("a, b)", &call).as_deref(), Some("a, b"));
        // A closer the answer did not open belongs to the code after the cursor.
        assert_eq!(
            fit("a, b) + c", &shape_of(false, "", 4)).as_deref(),
            Some("a, b")
        );
        // Unclosed openers: back to where it was balanced.
        assert_eq!(fit("foo + bar(1, ", &one).as_deref(), Some("foo + bar"));
        assert_eq!(fit("vec![1, 2]", &one).as_deref(), Some("vec![1, 2]"));
        // Several lines, up to the end of the block.
        let body = shape_of(true, "", 4);
        let answer =
            "let a = 1;\n    if a > 0 {\n        return a;\n    }\n    a\n}\n\nfn next() {}\n";
        assert_eq!(
            fit(answer, &body).as_deref(),
            Some("let a = 1;\n    if a > 0 {\n        return a;\n    }\n    a")
        );
        let dedent = "a();\n    b();\nc();\n";
        assert_eq!(fit(dedent, &body).as_deref(), Some("a();\n    b();"));
        assert_eq!(
            fit("```rust\nlet x = 1;\n```\n", &one).as_deref(),
            Some("let x = 1;")
        );
        assert_eq!(fit("\nfoo", &one), None);
        assert_eq!(fit("   ", &one), None);
        assert_eq!(fit(");", &call), None);
    }
}
