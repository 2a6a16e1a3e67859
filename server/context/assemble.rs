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
use super::working::{NEARBY, Working, working};
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
    /// The document's chunks, per segment of its parse: a pack lists those around the selection
    /// ([`DocChunks::around`]) and looks up the rest where it wants a definition.
    pub chunks: &'a DocChunks,
    /// The trees of the parse the chunks come from that are still held, each with its segment's
    /// start: resolution reads them where it can rather than parse the segment again.
    pub trees: &'a [(usize, tree_sitter::Tree)],
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

impl<'a> Request<'a> {
    /// A request for `selection` in a document and nothing more: no question, no diagnostics,
    /// no conversation, no recent edits, the default budgets.
    pub fn at(
        path: &'a str,
        text: &'a Rope,
        chunks: &'a DocChunks,
        selection: Range<usize>,
    ) -> Request<'a> {
        Request {
            path,
            text,
            chunks,
            trees: &[],
            selection,
            query: None,
            diagnostics: &[],
            messages: &[],
            recent: &[],
            summary: None,
            budgets: Budgets::default(),
            withheld: false,
        }
    }
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
    assemble_around(request, workspace, tokenizer, NEARBY)
}

/// [`assemble`], listing the chunks of the segments around the selection until `around` (at
/// least [`NEARBY`]) lie on either side: more changes nothing, which the tests hold it to.
fn assemble_around(
    request: &Request<'_>,
    workspace: &dyn Workspace,
    tokenizer: &Tokenizer,
    around: usize,
) -> ContextPack {
    if request.withheld {
        let empty = Rope::new();
        let without = Request {
            path: request.path,
            text: &empty,
            chunks: &DocChunks::default(),
            trees: &[],
            selection: 0..0,
            query: request.query,
            diagnostics: &[],
            messages: request.messages,
            recent: request.recent,
            summary: request.summary,
            budgets: request.budgets,
            withheld: false,
        };
        let mut pack = assemble_around(&without, workspace, tokenizer, around);
        pack.notes.push(format!(
            "{} is ignored or holds secrets: none of it leaves the machine",
            request.path
        ));
        return pack;
    }
    let mut redactions = 0;
    // Only the chunks around the selection are listed (NEARBY on either side, what the working
    // tier ranks by nearness), not the 10,000 of a 3 MB file.
    let window = request
        .chunks
        .around(request.selection.clone(), around.max(NEARBY));
    let at = focus(&window, &request.selection);
    let immediate = immediate(request, &window, &at);
    let Working {
        candidates: working,
        archive,
        related_files,
    } = working(request, &window, workspace, &at);
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
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
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
            diagnostics: &diagnostics,
            messages: &messages,
            summary: Some("Earlier we renamed helper."),
            ..Request::at("src/main.rs", &text, &chunks, cursor..cursor)
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

    #[test]
    fn a_pack_from_the_chunks_around_the_cursor_is_the_pack_from_all_of_them() {
        // Calls to definitions far away in the file (other segments), methods of the same name in
        // many impls (found by name, not resolved), and names defined nowhere.
        let n = 4000;
        let source: String = (0..n)
            .map(|i| match i % 4 {
                0 => format!("impl A{i} {{\n    fn dup(&self) -> u32 {{ {i} }}\n}}\n\n"),
                1 => format!("/// Doc {i}.\nfn helper{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n\n"),
                2 => format!(
                    "fn f{i}(x: u32) -> u32 {{\n    let a = helper{}(x);\n    let b = thing.dup();\n    a + b + missing{i}\n}}\n\n",
                    (i * 7919 + 1) % n / 4 * 4 + 1
                ),
                _ => format!("struct S{i} {{ a: u32 }}\n\n"),
            })
            .collect();
        let text = Rope::from_str(&source);
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default());
        assert!(chunks.segments() > 5, "{} segments", chunks.segments());
        let tokenizer = Tokenizer::new(crate::context::Encoding::default());
        let places: Vec<usize> = source
            .match_indices("let a = helper")
            .map(|(i, _)| i + 9)
            .collect();
        let mut resolved = 0;
        for &at in places.iter().step_by(places.len() / 12) {
            assert!(chunks.around(at..at, NEARBY).len() < chunks.len() / 2);
            let request = Request::at("src/lib.rs", &text, &chunks, at..at);
            let pack = |around| {
                let pack = assemble_around(&request, &NoWorkspace, &tokenizer, around);
                serde_json::to_value(&pack).unwrap()
            };
            let whole = pack(usize::MAX);
            assert_eq!(pack(NEARBY), whole, "at {at}");
            resolved += whole.to_string().contains("defines `helper") as usize;
        }
        assert!(
            resolved > 10,
            "definitions elsewhere in the file found at {resolved} places"
        );
    }
}
