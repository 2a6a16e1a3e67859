//! Assembly of a context pack for a position or selection, the one entry point: `assemble` is a
//! pure function of the document, its chunks, what the workspace answers and the budgets. It
//! gathers each tier's candidates (`immediate`, `working`, `background`) and fits each tier to
//! its budget (`fit`). This file holds the request, the `Workspace` trait assembly reads through,
//! and `Candidate`, what the tiers hand to `fit`. No network I/O; the same inputs give the same
//! pack, byte for byte (every ordering is explicit).

use std::ops::Range;
use std::sync::Arc;

use ropey::Rope;

use super::background::background;
use super::fit::fit;
use super::immediate::{focus, immediate};
use super::pack::{Budgets, ContextPack, Tier};
use super::tokens::Tokenizer;
use super::working::{Working, working};
use crate::archive::Located;
use crate::archive::symbols::{FileFacts, Symbol};
use crate::chunks::{Chunk, DocChunks};

/// What assembly may ask of the workspace (the archive and the files). Implementations do the
/// I/O; assembly stays pure.
pub trait Workspace {
    /// Chunks named exactly `name`, anywhere in the workspace.
    fn definitions(&self, name: &str) -> Vec<Located>;
    /// The chunks of a file, in order.
    fn outline(&self, path: &str) -> Vec<Located>;
    /// Search hits for a question.
    fn search(&self, query: &str) -> Vec<Located>;
    /// The text of a workspace file (the editor's buffer when it is open).
    fn text(&self, path: &str) -> Option<Rope>;
    /// Top-level folders and their file counts.
    fn folders(&self) -> Vec<(String, usize)>;
    /// The symbol tables of a workspace file (`None` when it is not in the archive).
    fn facts(&self, _path: &str) -> Option<Arc<FileFacts>> {
        None
    }
    /// Symbols named exactly `name`, with their files, in path order.
    fn symbols_named(&self, _name: &str) -> Vec<(String, Symbol)> {
        Vec::new()
    }
    /// Symbols declared in `container` named `name` (all of them for an empty name).
    fn members(&self, _container: &str, _name: &str) -> Vec<(String, Symbol)> {
        Vec::new()
    }
    /// Rust `mod name;` declarations, and those whose `#[path]` ends in `file_name`.
    fn mod_declarations(&self, _name: &str, _file_name: &str) -> Vec<(String, Symbol)> {
        Vec::new()
    }
}

/// A workspace with nothing in it: a pack of one file, when there is no archive.
pub struct NoWorkspace;

impl Workspace for NoWorkspace {
    fn definitions(&self, _: &str) -> Vec<Located> {
        Vec::new()
    }
    fn outline(&self, _: &str) -> Vec<Located> {
        Vec::new()
    }
    fn search(&self, _: &str) -> Vec<Located> {
        Vec::new()
    }
    fn text(&self, _: &str) -> Option<Rope> {
        None
    }
    fn folders(&self) -> Vec<(String, usize)> {
        Vec::new()
    }
}

/// A diagnostic the client reported in the range.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub range: Range<usize>,
    pub severity: String,
    pub message: String,
}

/// One message of a conversation (chat arrives with the agents).
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: String,
    pub text: String,
}

/// A chunk edited recently elsewhere (or in this file), resolved by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct RecentChunk {
    /// Workspace-relative path of its file.
    pub path: String,
    pub lines: (u32, u32),
    pub chunk_id: String,
    pub kind: String,
    pub name: String,
    pub text: String,
    pub signature: String,
}

pub struct Request<'a> {
    /// Workspace-relative path of the document.
    pub path: &'a str,
    pub text: &'a Rope,
    /// The document's chunks around the selection, as [`DocChunks::around`] gives them with
    /// [`NEARBY`] on either side (or all of them): the ones a pack centres on and ranks by
    /// nearness.
    pub chunks: &'a [Chunk],
    /// All of the document's chunks, where the ones that define a name are looked up when
    /// `chunks` holds only those around the selection (`None`: `chunks` holds them all).
    pub document: Option<&'a DocChunks>,
    /// The cursor (empty) or the selection, in bytes.
    pub selection: Range<usize>,
    pub query: Option<&'a str>,
    pub diagnostics: &'a [Diagnostic],
    pub messages: &'a [Message],
    /// Chunks edited recently, newest first.
    pub recent: &'a [RecentChunk],
    /// The summary of the conversation older than `messages`, when there is one.
    pub summary: Option<&'a str>,
    pub budgets: Budgets,
    /// The document may not leave the machine (ignored, or a secrets file): none of its text is
    /// used, and the pack says so.
    pub withheld: bool,
}

/// A candidate for a tier, before budgets.
pub(super) struct Candidate {
    pub(super) source: String,
    pub(super) lines: Option<(u32, u32)>,
    pub(super) chunk_id: Option<String>,
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) score: f64,
    pub(super) reason: String,
    pub(super) full: String,
    pub(super) signature: String,
}

/// The context pack for `request`: each tier's candidates, fitted to its budget.
pub fn assemble(
    request: &Request<'_>,
    workspace: &dyn Workspace,
    tokenizer: &Tokenizer,
) -> ContextPack {
    if request.withheld {
        let empty = Rope::new();
        let without = Request {
            path: request.path,
            text: &empty,
            chunks: &[],
            document: None,
            selection: 0..0,
            query: request.query,
            diagnostics: &[],
            messages: request.messages,
            recent: request.recent,
            summary: request.summary,
            budgets: request.budgets,
            withheld: false,
        };
        let mut pack = assemble(&without, workspace, tokenizer);
        pack.notes.push(format!(
            "{} is ignored or holds secrets: none of it leaves the machine",
            request.path
        ));
        return pack;
    }
    let mut redactions = 0;
    let at = focus(request.chunks, &request.selection);
    let immediate = immediate(request, &at);
    let Working {
        candidates: working,
        archive,
        related_files,
    } = working(request, workspace, &at);
    let background = background(request, workspace, &related_files);

    let budgets = request.budgets;
    let tiers = vec![
        fit(
            Tier::Immediate,
            budgets.immediate,
            immediate,
            tokenizer,
            &mut redactions,
        ),
        fit(
            Tier::Working,
            budgets.working,
            working,
            tokenizer,
            &mut redactions,
        ),
        fit(
            Tier::Background,
            budgets.background,
            background,
            tokenizer,
            &mut redactions,
        ),
        // The archive tier is a record of what search found and did not promote: names only.
        fit(
            Tier::Archive,
            u32::MAX,
            archive
                .into_iter()
                .map(|mut c| {
                    c.full = c.signature.clone();
                    c
                })
                .collect(),
            tokenizer,
            &mut redactions,
        ),
    ];
    ContextPack {
        encoding: tokenizer.encoding().name(),
        tiers,
        redactions,
        notes: Vec::new(),
    }
}

/// A chunk of the document as a candidate: its text, and its doc comment and signature.
pub(super) fn chunk_candidate(
    path: &str,
    text: &Rope,
    c: &Chunk,
    score: f64,
    reason: String,
) -> Candidate {
    let full = text.byte_slice(c.range.clone()).to_string();
    let doc = text
        .byte_slice(c.range.start..c.signature.start.max(c.range.start))
        .to_string();
    let signature = format!("{doc}{}", text.byte_slice(c.signature.clone()));
    Candidate {
        source: path.to_string(),
        lines: Some(c.lines(text)).map(|(a, b)| (a as u32, b as u32)),
        chunk_id: Some(c.id.to_string()),
        kind: c.kind.as_str().to_string(),
        name: c.path.to_string(),
        score,
        reason,
        full,
        signature,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ChunkConfig;
    use crate::documents::chunk_text;
    use crate::syntax::Language;

    #[test]
    fn conversation_diagnostics_and_summary_take_their_tiers() {
        let text =
            Rope::from_str("fn helper() -> u32 { 1 }\n\nfn main() {\n    let x = helper();\n}\n");
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default()).to_vec();
        let cursor = text.line_to_byte(3) + 8;
        let diagnostics = [Diagnostic {
            range: cursor..cursor + 6,
            severity: "warning".into(),
            message: "unused variable `x`".into(),
        }];
        let messages = [Message {
            role: "user".into(),
            text: "why is x unused?".into(),
        }];
        let request = Request {
            path: "src/main.rs",
            text: &text,
            chunks: &chunks,
            document: None,
            selection: cursor..cursor,
            query: None,
            diagnostics: &diagnostics,
            messages: &messages,
            recent: &[],
            summary: Some("Earlier we renamed helper."),
            budgets: Budgets::default(),
            withheld: false,
        };
        let tokenizer = Tokenizer::new(super::super::Encoding::default());
        let pack = assemble(&request, &NoWorkspace, &tokenizer);
        let kinds = |tier: Tier| -> Vec<String> {
            pack.tier(tier)
                .unwrap()
                .items
                .iter()
                .map(|i| format!("{} {}", i.kind, i.name))
                .collect()
        };
        assert_eq!(
            kinds(Tier::Immediate),
            ["function main", "diagnostic warning", "message user"]
        );
        assert_eq!(kinds(Tier::Working), ["function helper"]);
        assert_eq!(kinds(Tier::Background), ["summary earlier conversation"]);
        assert_eq!(
            pack,
            assemble(&request, &NoWorkspace, &tokenizer),
            "deterministic"
        );
    }
}
