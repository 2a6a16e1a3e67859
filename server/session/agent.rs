//! The agent pipeline, the one path from a request to a model and back: the target (what the
//! agent works on), the context pack around it, the prompt (an `llm::Prompt`, so every part is
//! redacted), the gateway call with its progress, and the outcome the agent's output kind says —
//! an edit (secrets the model saw as markers put back), a document, or findings. The LSP edge and
//! `strata ask` / `strata context --agent` call these functions; what the inspector shows for an
//! agent is the request a run would send.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use super::Session;
use super::packs::Want;
use crate::agents::Placement;
use crate::agents::{self, Agent, Finding, Inputs, Output};
use crate::chunks::ChunkKind;
use crate::context::{ContextPack, Diagnostic};
use crate::documents::Parsed;
use crate::llm::{Answer, CallRequest, Event, Priority, Status};
use crate::syntax::Language;
use ropey::Rope;

/// A problem the editor reports in the target, in bytes of the document.
#[derive(Clone, Debug)]
pub struct Problem {
    pub range: Range<usize>,
    pub message: String,
    pub code: Option<String>,
}

/// What an agent is asked to do: where, about what, with what the editor says there.
#[derive(Clone)]
pub struct Task {
    pub agent: Agent,
    /// The document's store key.
    pub key: String,
    pub parsed: Arc<Parsed>,
    /// The bytes the agent works on (see [`Session::target`]).
    pub target: Range<usize>,
    pub question: Option<String>,
    pub problems: Vec<Problem>,
    /// In a workflow, the outputs of the steps this one depends on.
    pub steps: String,
}

/// A request ready for the gateway, with what it was made from.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub request: CallRequest,
    /// The document's workspace-relative path (its key when outside the workspace).
    pub rel: String,
    /// The target's text as it was when the request was made.
    pub selection: String,
    pub target: Range<usize>,
    pub pack: ContextPack,
    /// The document as it was, and its language: what an edit is checked against.
    pub text: Rope,
    pub language: Option<Language>,
}

/// What an answer becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The text to put in place of the target, or to insert at its end, per the agent's
    /// placement: the user's secrets back in place, line breaks as they go in the document.
    Edit { code: String },
    /// Markdown to show.
    Document { text: String },
    /// Review findings, lines counted from the target's first line.
    Findings(Vec<Finding>),
    /// An edit that is not applied because its code would not parse: why, and a markdown
    /// document with the reason and the change as a diff, for the user to read.
    Unparsable { reason: String, document: String },
}

impl Session {
    /// The bytes an agent works on: the selection, or the innermost chunk at the cursor — an item,
    /// not a part of one cut for size, so an edit replaces whole code — (the whole line when no
    /// chunk holds it). A selection shorter than a token — one character (Helix sends its
    /// cursor so), or part of one word — is a cursor.
    pub fn target(parsed: &Parsed, selection: Range<usize>) -> Range<usize> {
        let text = &parsed.text;
        let (start, end) = (
            selection.start.min(text.len_bytes()),
            selection.end.min(text.len_bytes()),
        );
        if start < end && !within_a_word(&text.byte_slice(start..end).to_string()) {
            return start..end;
        }
        parsed
            .chunks
            .to_vec()
            .iter()
            .filter(|c| c.range.start <= start && start <= c.range.end)
            .min_by_key(|c| (c.kind == ChunkKind::Part, c.range.len()))
            .map(|c| c.range.clone())
            .unwrap_or_else(|| {
                let line = text.byte_to_line(start);
                let line_start = text.line_to_byte(line);
                let content = text.line(line).to_string();
                line_start..line_start + content.trim_end_matches(['\n', '\r']).len()
            })
    }

    /// The model request for `task`: its context pack and prompt. An error when the document may
    /// not be sent (ignored, or a secrets file). Blocking: assembles context.
    pub fn prepare(&self, task: &Task) -> Result<Prepared, String> {
        let (rel, withheld) = self.locate(&task.key);
        if withheld {
            return Err(format!(
                "{rel} is ignored or looks like a secrets file, so none of it is sent to a model"
            ));
        }
        let text = &task.parsed.text;
        let diagnostics: Vec<Diagnostic> = task
            .problems
            .iter()
            .map(|p| Diagnostic {
                range: p.range.clone(),
                severity: "error".into(),
                message: p.message.clone(),
            })
            .collect();
        let lines: Vec<String> = task
            .problems
            .iter()
            .map(|p| {
                let line = text.byte_to_line(p.range.start.min(text.len_bytes())) + 1;
                let code = p
                    .code
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                format!("line {line}: {}{code}", p.message)
            })
            .collect();
        let selection = text.byte_slice(task.target.clone()).to_string();
        Ok(self.fit_to_window(&task.agent, |budgets| {
            let (pack, rel) = self.pack(
                &task.key,
                &task.parsed,
                Want {
                    selection: task.target.clone(),
                    query: task.question.as_deref(),
                    diagnostics: &diagnostics,
                    budgets,
                    ..Want::default()
                },
            );
            let rendered = pack.render();
            let inputs = Inputs {
                path: &rel,
                language: task.parsed.language.map_or("text", |l| l.name()),
                selection: &selection,
                context: &rendered,
                question: task.question.as_deref(),
                diagnostics: &lines,
                steps: &task.steps,
            };
            let request = agents::call_request(&task.agent, &inputs, &pack, Priority::OnDemand);
            Prepared {
                request,
                rel,
                selection: selection.clone(),
                target: task.target.clone(),
                pack,
                text: task.parsed.text.clone(),
                language: task.parsed.language,
            }
        }))
    }

    /// [`Session::prepare`] on the blocking pool.
    pub async fn prepare_async(&self, task: Task) -> Result<Prepared, String> {
        let session = self.clone();
        tokio::task::spawn_blocking(move || session.prepare(&task))
            .await
            .map_err(|e| format!("assembling context: {e}"))?
    }

    /// Calls the gateway, telling `report` what happens (queued, waiting for a limit, streaming…)
    /// and each piece of text as it arrives; the whole answer, or why there is none.
    pub async fn call<F, Fut>(&self, request: CallRequest, mut report: F) -> Result<Answer, String>
    where
        F: FnMut(Step) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut reply = self.gateway.call(request).map_err(|e| e.to_string())?;
        loop {
            match reply.next().await {
                Some(Event::Status(status)) => report(Step::Status(status_text(status))).await,
                Some(Event::Text(text)) => {
                    report(Step::Text {
                        text,
                        pieces: reply.pieces(),
                    })
                    .await
                }
                Some(Event::Done(answer)) => return Ok(answer),
                Some(Event::Failed(e)) => return Err(e.to_string()),
                None => return Err("cancelled".into()),
            }
        }
    }

    /// What `answer` becomes for the agent that `prepared` was made for. An edit answer with no
    /// code, or whose code would leave the document with syntax errors it did not have, is
    /// refused and not kept in the cache, so the next run asks again.
    pub async fn outcome(
        &self,
        agent: &Agent,
        prepared: &Prepared,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        match agent.output {
            Output::Edit => {
                let Some(code) = agents::edit_text(agent, &answer.text) else {
                    self.gateway.forget(&prepared.request);
                    return Err(
                        "the model's answer held no complete code block; nothing was changed"
                            .into(),
                    );
                };
                let code = agents::restore_secrets(&prepared.selection, &code)?;
                let code = placed(&prepared.selection, agent.placement, code);
                let (text, language, target, placement) = (
                    prepared.text.clone(),
                    prepared.language,
                    prepared.target.clone(),
                    agent.placement,
                );
                let edited = code.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    let (new, span) = edited_text(&text, target.clone(), placement, &edited);
                    parses_as_well(language, &text, target, &new, span)
                })
                .await
                .unwrap_or(Ok(()));
                if let Err(problem) = checked {
                    self.gateway.forget(&prepared.request);
                    let reason =
                        format!("the edited code would not parse ({problem}); nothing was changed");
                    let document = format!(
                        "Not applied: {reason}.\n\nThe change {} proposed for {}:\n\n```diff\n{}```\n",
                        agent.name,
                        prepared.rel,
                        super::diff::unified(&prepared.selection, &code)
                    );
                    return Ok(Outcome::Unparsable { reason, document });
                }
                Ok(Outcome::Edit { code })
            }
            Output::Document | Output::Chat => Ok(Outcome::Document {
                text: agents::document_text(agent, &answer.text),
            }),
            Output::Diagnostics => Ok(Outcome::Findings(agents::findings(&answer.text))),
        }
    }
}

/// One thing a call reports while it runs.
pub enum Step {
    /// What the gateway is doing, in words for a progress line.
    Status(String),
    /// Text as it streams in; `pieces` so far.
    Text { text: String, pieces: u32 },
}

/// A gateway status in words for a progress line.
fn status_text(status: Status) -> String {
    match status {
        Status::Queued => "queued".to_owned(),
        Status::WaitingForLimit { provider } => format!("waiting for {provider}'s rate limit"),
        Status::Requesting { provider, .. } => format!("asking {provider}"),
        Status::Retrying { provider, after_ms } => {
            format!("{provider} failed; retrying in {} s", after_ms / 1000)
        }
        Status::Streaming { provider } => format!("{provider} is answering"),
    }
}

/// An edit's code as it goes into the document. In place of the target, it ends with the line
/// breaks the target ended with (a range that ends at a line's start holds them; a code block
/// never does). After the target, it is one blank line away: after a target that ends its line,
/// the code takes whole lines of its own.
fn placed(selection: &str, placement: Placement, code: String) -> String {
    let kept = selection.trim_end_matches(['\n', '\r']);
    let breaks = &selection[kept.len()..];
    match placement {
        Placement::Replace if code.ends_with('\n') => code,
        Placement::Replace => code + breaks,
        Placement::InsertAfter if breaks.is_empty() => format!("\n\n{}", code.trim_end()),
        Placement::InsertAfter => format!("{breaks}{}{breaks}", code.trim_end()),
    }
}

/// Whether a selected text is no more than one character, or lies inside one word.
fn within_a_word(selected: &str) -> bool {
    selected.chars().count() <= 1 || selected.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// The document with an edit's code (as [`placed`] made it) in place of the target or at its
/// end, and the bytes the code took in it.
pub fn edited_text(
    text: &Rope,
    target: Range<usize>,
    placement: Placement,
    code: &str,
) -> (Rope, Range<usize>) {
    let mut new = text.clone();
    let (start, end) = (
        target.start.min(text.len_bytes()),
        target.end.min(text.len_bytes()),
    );
    let (start_char, end_char) = (text.byte_to_char(start), text.byte_to_char(end));
    match placement {
        Placement::Replace => {
            new.remove(start_char..end_char);
            new.insert(start_char, code);
            (new, start..start + code.len())
        }
        Placement::InsertAfter => {
            new.insert(end_char, code);
            (new, end..end + code.len())
        }
    }
}

/// Whether the edited stretch of `new` parses as well as the target did in `old`: no syntax
/// error, missing token or misplaced item (a `struct` inside an `impl`, which tree-sitter
/// accepts but the compiler does not) that the target did not already have. Text without a
/// grammar, or too large or slow to parse, passes.
fn parses_as_well(
    language: Option<Language>,
    old: &Rope,
    target: Range<usize>,
    new: &Rope,
    edited: Range<usize>,
) -> Result<(), String> {
    let Some(language) = language else {
        return Ok(());
    };
    let limits = crate::syntax::ParseLimits::default();
    if !limits.admits(new) {
        return Ok(());
    }
    let mut parser = tree_sitter::Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        return Ok(());
    }
    let mut problems = |text: &Rope, range: Range<usize>| {
        crate::syntax::parse_rope(&mut parser, text.slice(..), None, &limits).map(|tree| {
            let whole = problems(&tree, text, 0..text.len_bytes(), language, false);
            (whole, problems(&tree, text, range, language, true))
        })
    };
    let (Some(before), Some(after)) = (problems(old, target), problems(new, edited)) else {
        return Ok(());
    };
    // New problems in the edited stretch, or anywhere (an unclosed brace shows at the end).
    match (after.1.get(before.1.len()), after.0.get(before.0.len())) {
        (Some(problem), _) | (None, Some(problem)) => Err(problem.clone()),
        (None, None) => Ok(()),
    }
}

/// What does not parse in `range` of a tree: error and missing nodes, and (with `items`) items
/// where the language allows none (`line N: …` each). Without `items` only subtrees that hold an
/// error are walked.
fn problems(
    tree: &tree_sitter::Tree,
    text: &Rope,
    range: Range<usize>,
    language: Language,
    items: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    let at = |node: tree_sitter::Node| format!("line {}", node.start_position().row + 1);
    let mut cursor = tree.walk();
    loop {
        let node = cursor.node();
        let overlaps =
            node.start_byte() < range.end.max(range.start + 1) && range.start < node.end_byte();
        if overlaps {
            if node.is_missing() {
                out.push(format!("{}: missing `{}`", at(node), node.kind()));
            } else if node.is_error() {
                // An error that began before the range is shown where the range begins.
                let start = node.start_byte().max(range.start).min(text.len_bytes());
                let end = node
                    .end_byte()
                    .min(text.len_bytes())
                    .min(start + 40)
                    .max(start);
                let snippet = text.byte_slice(start..end).to_string();
                let snippet = snippet.lines().next().unwrap_or("").trim().to_owned();
                let line = text.byte_to_line(start) + 1;
                out.push(format!("line {line}: unexpected `{snippet}`"));
            } else if let Some(container) = misplaced(language, node).filter(|_| items) {
                out.push(format!(
                    "{}: a {} inside {container}",
                    at(node),
                    node.kind().trim_end_matches("_item").replace('_', " ")
                ));
            }
        }
        // Descend into what overlaps the range and is not itself a problem.
        let descend =
            overlaps && !node.is_error() && !node.is_missing() && (items || node.has_error());
        if descend && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                return out;
            }
        }
    }
}

/// The container `node` may not stand in (`"an impl"`), for the languages whose grammar admits
/// more than their compiler does.
fn misplaced(language: Language, node: tree_sitter::Node) -> Option<&'static str> {
    if language != Language::Rust || !node.is_named() || node.is_extra() {
        return None;
    }
    let list = node.parent().filter(|p| p.kind() == "declaration_list")?;
    let container = match list.parent()?.kind() {
        "impl_item" => "an impl",
        "trait_item" => "a trait",
        _ => return None,
    };
    const ALLOWED: &[&str] = &[
        "function_item",
        "function_signature_item",
        "const_item",
        "type_item",
        "associated_type",
        "macro_invocation",
        "attribute_item",
        "inner_attribute_item",
        "line_comment",
        "block_comment",
    ];
    (!ALLOWED.contains(&node.kind())).then_some(container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_goes_in_with_the_line_breaks_of_the_document() {
        let code = || "fn t() {}".to_owned();
        // A target within its lines, and one that ends at the next line's start.
        assert_eq!(placed("fn a() {}", Placement::Replace, code()), "fn t() {}");
        assert_eq!(
            placed("fn a() {}\n", Placement::Replace, code()),
            "fn t() {}\n"
        );
        assert_eq!(
            placed("fn a() {}\n", Placement::Replace, "fn t() {}\n".into()),
            "fn t() {}\n"
        );
        assert_eq!(
            placed("fn a() {}", Placement::InsertAfter, code()),
            "\n\nfn t() {}"
        );
        assert_eq!(
            placed("fn a() {}\n", Placement::InsertAfter, code()),
            "\nfn t() {}\n"
        );
        let (text, target) = ("fn a() {}\nfn b() {}\n", 0..10);
        let (new, _) = edited_text(
            &Rope::from_str(text),
            target.clone(),
            Placement::InsertAfter,
            &placed(&text[target], Placement::InsertAfter, code()),
        );
        assert_eq!(new.to_string(), "fn a() {}\n\nfn t() {}\nfn b() {}\n");
    }

    #[test]
    fn a_selection_shorter_than_a_token_is_a_cursor() {
        for (selected, cursor) in [
            ("p", true),
            ("}", true),
            ("é", true),
            ("add", true),
            ("helper_2", true),
            ("a + b", false),
            ("fn add", false),
            ("{}", false),
            ("\n", true),
        ] {
            assert_eq!(within_a_word(selected), cursor, "{selected:?}");
        }
    }

    const SOURCE: &str = "struct Point { x: u32 }\n\nimpl Point {\n    fn x(&self) -> u32 {\n        self.x\n    }\n}\n";

    fn check(text: &str, target: &str, placement: Placement, code: &str) -> Result<(), String> {
        let old = Rope::from_str(text);
        let start = text.find(target).unwrap();
        let target = start..start + target.len();
        let (new, span) = edited_text(&old, target.clone(), placement, code);
        parses_as_well(Some(Language::Rust), &old, target, &new, span)
    }

    #[test]
    fn an_edit_that_breaks_the_syntax_is_caught_and_one_that_does_not_passes() {
        let method = "fn x(&self) -> u32 {\n        self.x\n    }";
        // What a real model answered: a struct nested inside the impl.
        let nested = "struct Point { x: u32 }\n    fn x(&self) -> u32 {\n        self.x\n    }";
        let problem = check(SOURCE, method, Placement::Replace, nested).unwrap_err();
        assert_eq!(problem, "line 4: a struct inside an impl");
        assert!(
            check(
                SOURCE,
                method,
                Placement::Replace,
                "fn x(&self) -> u32 {\n        self.x + 0"
            )
            .is_err()
        );
        assert_eq!(
            check(
                SOURCE,
                method,
                Placement::Replace,
                "/// The x.\n    fn x(&self) -> u32 {\n        self.x\n    }"
            ),
            Ok(())
        );
        assert_eq!(
            check(
                SOURCE,
                "impl Point {\n    fn x(&self) -> u32 {\n        self.x\n    }\n}",
                Placement::InsertAfter,
                "\n\n#[test]\nfn x_is_x() {\n    assert_eq!(Point { x: 1 }.x(), 1);\n}"
            ),
            Ok(())
        );
    }

    #[test]
    fn a_document_with_errors_may_keep_them_but_not_gain_more() {
        let broken = format!("{SOURCE}\nfn unfinished( {{\n");
        let method = "fn x(&self) -> u32 {\n        self.x\n    }";
        assert_eq!(
            check(
                &broken,
                method,
                Placement::Replace,
                "fn x(&self) -> u32 {\n        self.x * 1\n    }"
            ),
            Ok(())
        );
        assert!(
            check(
                &broken,
                method,
                Placement::Replace,
                "fn x(&self) -> u32 {{{"
            )
            .is_err()
        );
        // No grammar: nothing to check.
        let old = Rope::from_str("some text");
        assert_eq!(
            parses_as_well(None, &old, 0..4, &Rope::from_str("}{ text"), 0..2),
            Ok(())
        );
    }
}
