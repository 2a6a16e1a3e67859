//! Assembly of a context pack for a position or selection: a pure function of the document, its
//! chunks, what the workspace answers and the budgets. No network I/O; the same inputs give the
//! same pack, byte for byte (every ordering is explicit).

use std::collections::BTreeSet;
use std::ops::Range;

use ropey::Rope;

use super::pack::{Budgets, ContextPack, Dropped, Fidelity, Item, Tier, TierPack};
use super::redact::redact;
use super::tokens::Tokenizer;
use crate::archive::{Located, identifiers};
use crate::chunks::{Chunk, ChunkKind};
use crate::syntax::hash_bytes;

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
    pub chunks: &'a [Chunk],
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
struct Candidate {
    source: String,
    lines: Option<(u32, u32)>,
    chunk_id: Option<String>,
    kind: String,
    name: String,
    score: f64,
    reason: String,
    full: String,
    signature: String,
}

/// Words that name no definition worth fetching.
const KEYWORDS: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "dyn",
    "function",
    "var",
    "new",
    "this",
    "class",
    "interface",
    "export",
    "import",
    "from",
    "extends",
    "implements",
    "null",
    "undefined",
    "void",
    "string",
    "number",
    "boolean",
    "any",
    "unknown",
    "never",
    "typeof",
    "instanceof",
    "of",
    "Some",
    "None",
    "Ok",
    "Err",
    "Option",
    "Result",
    "Vec",
    "String",
    "Box",
    "Arc",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "usize",
    "i32",
    "i64",
    "f64",
    "bool",
];

/// Most identifiers of the immediate chunk whose definitions are looked up.
const LOOKUPS: usize = 64;
/// Bytes at the top of a file searched for the names of the modules it imports.
const HEAD_BYTES: usize = 16 * 1024;
/// Chunks of the current file, nearest to the cursor, ranked for the working tier.
const NEARBY: usize = 300;

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
    let text = request.text;
    let chunks = request.chunks;

    // Immediate: the smallest chunks at the cursor or over the selection.
    let at = focus(chunks, &request.selection);
    let mut immediate = Vec::new();
    for &i in &at {
        let c = &chunks[i];
        let parent = c
            .parent
            .map(|p| format!(" in {} {}", chunks[p].kind.as_str(), chunks[p].path))
            .unwrap_or_default();
        immediate.push(chunk_candidate(
            request.path,
            text,
            c,
            100.0,
            format!("at the cursor{parent}"),
        ));
    }
    for d in request.diagnostics {
        immediate.push(Candidate {
            source: request.path.to_string(),
            lines: Some((
                text.byte_to_line(d.range.start.min(text.len_bytes())) as u32,
                text.byte_to_line(d.range.end.min(text.len_bytes())) as u32,
            )),
            chunk_id: None,
            kind: "diagnostic".into(),
            name: d.severity.clone(),
            score: 90.0,
            reason: "reported by the editor in the range".into(),
            full: d.message.clone(),
            signature: d.message.clone(),
        });
    }
    for (k, m) in request.messages.iter().enumerate() {
        immediate.push(Candidate {
            source: "conversation".into(),
            lines: None,
            chunk_id: None,
            kind: "message".into(),
            name: m.role.clone(),
            score: 80.0 + k as f64 / 100.0, // later messages first to stay
            reason: "recent conversation".into(),
            full: m.text.clone(),
            signature: m.text.clone(),
        });
    }

    // Working: definitions the immediate chunks use, then the rest of the file by relevance.
    let used: Vec<String> = {
        let mut seen = BTreeSet::new();
        let mut ordered = Vec::new();
        for &i in &at {
            let body = text.byte_slice(chunks[i].range.clone()).to_string();
            for ident in identifiers(&body) {
                if ident.len() > 1
                    && !KEYWORDS.contains(&ident)
                    && ident != &*chunks[i].name
                    && seen.insert(ident.to_string())
                {
                    ordered.push(ident.to_string());
                }
            }
        }
        ordered.truncate(LOOKUPS);
        ordered
    };
    let in_focus = |c: &Chunk| at.iter().any(|&i| overlaps(&chunks[i].range, &c.range));
    let mut working = Vec::new();
    let mut taken: BTreeSet<(String, String)> = BTreeSet::new();
    for &i in &at {
        taken.insert((request.path.to_string(), chunks[i].id.to_string()));
    }
    let mut related_files: Vec<String> = Vec::new();
    // Imports sit at the top of a file.
    let head_end = text.char_to_byte(text.byte_to_char(text.len_bytes().min(HEAD_BYTES)));
    let head = text.byte_slice(..head_end).to_string();
    for (rank, name) in used.iter().enumerate() {
        let closeness = 1.0 - rank as f64 / (LOOKUPS as f64 * 2.0);
        // Same file first.
        let local: Vec<&Chunk> = chunks
            .iter()
            .filter(|c| &*c.name == name && is_definition(c.kind) && !in_focus(c))
            .collect();
        if !local.is_empty() {
            for c in local {
                if taken.insert((request.path.to_string(), c.id.to_string())) {
                    working.push(chunk_candidate(
                        request.path,
                        text,
                        c,
                        60.0 + closeness,
                        format!("defines `{name}`, used at the cursor"),
                    ));
                }
            }
            continue;
        }
        // Then the workspace: files this one mentions first, then the rest by path.
        let mut found = workspace.definitions(name);
        found.retain(|d| d.path != request.path);
        found.sort_by_key(|d| (!mentions(&head, &d.path), d.path.clone(), d.start_byte));
        for d in found.into_iter().take(3) {
            if !taken.insert((d.path.clone(), d.chunk_id.clone())) {
                continue;
            }
            let Some(file) = workspace.text(&d.path) else {
                continue;
            };
            if d.end_byte > file.len_bytes() || d.start_byte > d.end_byte {
                continue; // the file changed since it was indexed
            }
            if !related_files.contains(&d.path) {
                related_files.push(d.path.clone());
            }
            let full = file.byte_slice(d.start_byte..d.end_byte).to_string();
            let signature = if d.doc.is_empty() {
                d.signature.clone()
            } else {
                format!("/// {}\n{}", d.doc, d.signature)
            };
            working.push(Candidate {
                source: d.path.clone(),
                lines: Some((d.start_line, d.end_line)),
                chunk_id: Some(d.chunk_id.clone()),
                kind: d.kind.clone(),
                name: d.qualified.clone(),
                score: 50.0 + closeness,
                reason: format!("defines `{name}`, used at the cursor"),
                full,
                signature,
            });
        }
    }
    for (rank, r) in request.recent.iter().enumerate() {
        if !taken.insert((r.path.clone(), r.chunk_id.clone())) {
            continue;
        }
        working.push(Candidate {
            source: r.path.clone(),
            lines: Some(r.lines),
            chunk_id: Some(r.chunk_id.clone()),
            kind: r.kind.clone(),
            name: r.name.clone(),
            score: 45.0 - rank as f64 / 10.0,
            reason: "edited recently".into(),
            full: r.text.clone(),
            signature: r.signature.clone(),
        });
    }
    let focus_lines: Vec<usize> = at
        .iter()
        .map(|&i| text.byte_to_line(chunks[i].range.start))
        .collect();
    let focus_line = focus_lines
        .first()
        .copied()
        .unwrap_or_else(|| text.byte_to_line(request.selection.start.min(text.len_bytes())));
    let used_set: BTreeSet<&str> = used.iter().map(String::as_str).collect();
    let mut has_children = vec![false; chunks.len()];
    for c in chunks {
        if let Some(p) = c.parent {
            has_children[p] = true;
        }
    }
    // The rest of the file, nearest first: only the NEARBY closest chunks are candidates (the
    // working budget holds a few hundred lines; ranking thousands would only cost time).
    let mut nearby: Vec<(usize, usize)> = chunks
        .iter()
        .enumerate()
        .map(|(ci, c)| (text.byte_to_line(c.range.start).abs_diff(focus_line), ci))
        .collect();
    nearby.sort_unstable();
    nearby.truncate(NEARBY);
    nearby.sort_unstable_by_key(|&(_, ci)| ci);
    for (ci, c) in nearby.into_iter().map(|(_, ci)| (ci, &chunks[ci])) {
        if in_focus(c)
            || c.kind == ChunkKind::Part
            || c.parent
                .is_some_and(|p| in_focus(&chunks[p]) && !at.contains(&p))
        {
            continue;
        }
        // Containers are represented by their members; a leaf inside is ranked on its own.
        if c.kind.is_container() && has_children[ci] {
            continue;
        }
        if !taken.insert((request.path.to_string(), c.id.to_string())) {
            continue;
        }
        let body = text.byte_slice(c.range.clone()).to_string();
        let shared = identifiers(&body)
            .filter(|w| used_set.contains(w))
            .collect::<BTreeSet<_>>()
            .len();
        let distance = text.byte_to_line(c.range.start).abs_diff(focus_line) as f64;
        let score = shared as f64 * 2.0 + 10.0 / (1.0 + distance / 20.0);
        working.push(chunk_candidate(
            request.path,
            text,
            c,
            score.min(40.0),
            "same file".into(),
        ));
    }

    // Archive: search hits for the question; the best few are promoted into working.
    let mut archive = Vec::new();
    if let Some(query) = request.query.filter(|q| !q.trim().is_empty()) {
        for (rank, hit) in workspace.search(query).into_iter().enumerate() {
            if !taken.insert((hit.path.clone(), hit.chunk_id.clone())) {
                continue;
            }
            let promoted = rank < 3;
            let full = workspace
                .text(&hit.path)
                .filter(|f| hit.end_byte <= f.len_bytes() && hit.start_byte <= hit.end_byte)
                .map(|f| f.byte_slice(hit.start_byte..hit.end_byte).to_string());
            let Some(full) = full else { continue };
            let candidate = Candidate {
                source: hit.path.clone(),
                lines: Some((hit.start_line, hit.end_line)),
                chunk_id: Some(hit.chunk_id.clone()),
                kind: hit.kind.clone(),
                name: hit.qualified.clone(),
                score: 30.0 - rank as f64,
                reason: format!(
                    "{} search hit {} for {query:?}",
                    if promoted { "promoted:" } else { "archive:" },
                    rank + 1
                ),
                signature: hit.signature.clone(),
                full,
            };
            if promoted {
                working.push(candidate)
            } else {
                archive.push(candidate)
            }
        }
    }

    // Background: outlines of the related files, manifest facts, the folder map.
    let mut background = Vec::new();
    for (rank, path) in related_files.iter().enumerate() {
        let outline = workspace.outline(path);
        if outline.is_empty() {
            continue;
        }
        let lines: Vec<String> = outline
            .iter()
            .map(|d| {
                format!(
                    "{} {}: {}",
                    d.kind,
                    d.qualified,
                    d.signature.lines().next().unwrap_or("")
                )
            })
            .collect();
        let full = lines.join("\n");
        background.push(Candidate {
            source: path.clone(),
            lines: None,
            chunk_id: None,
            kind: "outline".into(),
            name: path.clone(),
            score: 20.0 - rank as f64 / 10.0,
            reason: "outline of a file whose definitions are used".into(),
            signature: lines
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            full,
        });
    }
    for manifest in ["Cargo.toml", "package.json"] {
        if let Some(facts) = workspace
            .text(manifest)
            .and_then(|t| manifest_facts(manifest, &t.to_string()))
        {
            background.push(Candidate {
                source: manifest.into(),
                lines: None,
                chunk_id: None,
                kind: "manifest".into(),
                name: manifest.into(),
                score: 15.0,
                reason: "project manifest".into(),
                signature: facts.lines().next().unwrap_or("").to_string(),
                full: facts,
            });
        }
    }
    if let Some(summary) = request.summary.filter(|s| !s.trim().is_empty()) {
        background.push(Candidate {
            source: "conversation".into(),
            lines: None,
            chunk_id: None,
            kind: "summary".into(),
            name: "earlier conversation".into(),
            score: 25.0,
            reason: "summary of the older conversation".into(),
            signature: summary.lines().next().unwrap_or("").to_string(),
            full: summary.to_string(),
        });
    }
    let folders = workspace.folders();
    if !folders.is_empty() {
        let full = folders
            .iter()
            .map(|(f, n)| format!("{f}/ ({n} files)"))
            .collect::<Vec<_>>()
            .join("\n");
        background.push(Candidate {
            source: "folders".into(),
            lines: None,
            chunk_id: None,
            kind: "folders".into(),
            name: "top-level folders".into(),
            score: 10.0,
            reason: "map of the workspace".into(),
            signature: full.clone(),
            full,
        });
    }

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

fn is_definition(kind: ChunkKind) -> bool {
    !matches!(kind, ChunkKind::Group | ChunkKind::Part | ChunkKind::Window)
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end || a == b
}

/// Whether `text` names the module of `path` (its file stem), as an import would.
fn mentions(head: &str, path: &str) -> bool {
    let stem = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .split('.')
        .next()
        .unwrap_or("");
    stem.len() > 1 && head.contains(stem)
}

/// The chunks the pack centres on: the smallest chunk holding the cursor, or the smallest chunks
/// overlapping the selection.
fn focus(chunks: &[Chunk], selection: &Range<usize>) -> Vec<usize> {
    let holds = |c: &Chunk| {
        if selection.is_empty() {
            c.range.start <= selection.start && selection.start <= c.range.end
        } else {
            c.range.start < selection.end && selection.start < c.range.end
        }
    };
    let candidates: Vec<usize> = (0..chunks.len())
        .filter(|&i| holds(&chunks[i]) && chunks[i].kind != ChunkKind::Part)
        .collect();
    if selection.is_empty() {
        // The innermost: the smallest range holding the cursor.
        return candidates
            .iter()
            .copied()
            .min_by_key(|&i| (chunks[i].range.len(), i))
            .into_iter()
            .collect();
    }
    // Over a selection: the chunks none of whose children is also selected.
    candidates
        .iter()
        .copied()
        .filter(|&i| !candidates.iter().any(|&j| chunks[j].parent == Some(i)))
        .collect()
}

fn chunk_candidate(path: &str, text: &Rope, c: &Chunk, score: f64, reason: String) -> Candidate {
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

/// Name and dependencies from a manifest.
fn manifest_facts(name: &str, text: &str) -> Option<String> {
    match name {
        "Cargo.toml" => {
            let mut package = None;
            let mut deps = Vec::new();
            let mut section = String::new();
            for line in text.lines() {
                let line = line.trim();
                if line.starts_with('[') {
                    section = line.trim_matches(['[', ']']).to_string();
                    continue;
                }
                let Some((key, value)) = line.split_once('=') else {
                    continue;
                };
                let key = key.trim();
                if section == "package" && key == "name" {
                    package = Some(value.trim().trim_matches('"').to_string());
                } else if section.ends_with("dependencies")
                    && !key.is_empty()
                    && !key.starts_with('#')
                {
                    deps.push(key.to_string());
                }
            }
            let package = package?;
            Some(format!(
                "Rust crate `{package}`; dependencies: {}",
                deps.join(", ")
            ))
        }
        "package.json" => {
            let json: serde_json::Value = serde_json::from_str(text).ok()?;
            let package = json.get("name")?.as_str()?.to_string();
            let mut deps: Vec<String> = ["dependencies", "devDependencies"]
                .iter()
                .filter_map(|k| json.get(*k)?.as_object())
                .flat_map(|m| m.keys().cloned())
                .collect();
            deps.sort();
            Some(format!(
                "npm package `{package}`; dependencies: {}",
                deps.join(", ")
            ))
        }
        _ => None,
    }
}

/// An item's place in the plan: its fidelity (`None` once dropped), its cost in tokens
/// (estimated or exact), and its rendering once made (text, secrets redacted).
type Planned = (Option<Fidelity>, u64, Option<(String, usize)>);

/// Fits candidates into a budget. All start at full fidelity; while the tier is over budget, the
/// lowest-scored items are lowered to signature and doc, then to names, and only then dropped,
/// lowest first. The plan is made on estimates (bytes / 3) and then checked with exact counts of
/// what is kept, so only kept items are redacted and tokenized; what the estimates lowered beyond
/// the budget's need is given back, highest score first.
fn fit(
    tier: Tier,
    budget: u32,
    mut candidates: Vec<Candidate>,
    tokenizer: &Tokenizer,
    redactions: &mut usize,
) -> TierPack {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.lines.cmp(&b.lines))
    });
    let raw = |c: &Candidate, fidelity: Fidelity| -> String {
        match fidelity {
            Fidelity::Full => c.full.clone(),
            Fidelity::Signature => c.signature.clone(),
            Fidelity::Name => format!("{} {}", c.kind, c.name),
        }
    };
    let estimate = |c: &Candidate, fidelity: Fidelity| -> u64 {
        let bytes = match fidelity {
            Fidelity::Full => c.full.len(),
            Fidelity::Signature => c.signature.len(),
            Fidelity::Name => c.kind.len() + c.name.len() + 1,
        };
        (bytes as u64).div_ceil(3)
    };
    let exact = |c: &Candidate, fidelity: Fidelity| -> (String, u64, usize) {
        let (text, found) = redact(&raw(c, fidelity));
        let tokens = tokenizer.count_cached(hash_bytes(text.as_bytes()), &text);
        (text, u64::from(tokens), found.len())
    };
    // Each item: its fidelity (None once dropped) and its cost, estimated or exact.
    let mut plan: Vec<Planned> = candidates
        .iter()
        .map(|c| (Some(Fidelity::Full), estimate(c, Fidelity::Full), None))
        .collect();
    let lower = |plan: &mut Vec<Planned>, exact_costs: bool| {
        let total =
            |plan: &[Planned]| -> u64 { plan.iter().filter(|p| p.0.is_some()).map(|p| p.1).sum() };
        let mut sum = total(plan);
        for step in [Some(Fidelity::Signature), Some(Fidelity::Name), None] {
            for i in (0..candidates.len()).rev() {
                if sum <= u64::from(budget) {
                    return;
                }
                match (step, plan[i].0) {
                    (Some(fidelity), Some(current)) if current < fidelity => {
                        let (cost, rendered) = if exact_costs {
                            let (text, tokens, found) = exact(&candidates[i], fidelity);
                            (tokens, Some((text, found)))
                        } else {
                            (estimate(&candidates[i], fidelity), None)
                        };
                        // Keep the cheaper of the two: a short body can be smaller than its signature.
                        if cost < plan[i].1 {
                            sum = sum - plan[i].1 + cost;
                            plan[i] = (Some(fidelity), cost, rendered);
                        }
                    }
                    (None, Some(_)) => {
                        sum -= plan[i].1;
                        plan[i].0 = None;
                    }
                    _ => {}
                }
            }
        }
    };
    lower(&mut plan, false);
    // Exact counts for what the estimate kept; then lower again if the estimate was short.
    for (i, entry) in plan.iter_mut().enumerate() {
        if let (Some(fidelity), None) = (entry.0, &entry.2) {
            let (text, tokens, found) = exact(&candidates[i], fidelity);
            *entry = (Some(fidelity), tokens, Some((text, found)));
        }
    }
    lower(&mut plan, true);
    // The estimates run high (code has fewer tokens than a third of its bytes), so the first
    // pass can lower more than the budget needed. Give back, on exact counts, what fits: highest
    // score first, one step at a time (dropped → name → signature → full), each step ending at
    // the first item that does not fit, so no item gets back more than a higher-scored one.
    let mut sum: u64 = plan.iter().filter(|p| p.0.is_some()).map(|p| p.1).sum();
    for (from, to) in [
        (None, Fidelity::Name),
        (Some(Fidelity::Name), Fidelity::Signature),
        (Some(Fidelity::Signature), Fidelity::Full),
    ] {
        for i in 0..candidates.len() {
            if plan[i].0 != from {
                continue;
            }
            let (text, tokens, found) = exact(&candidates[i], to);
            let freed = if from.is_some() { plan[i].1 } else { 0 };
            if sum - freed + tokens > u64::from(budget) {
                break;
            }
            sum = sum - freed + tokens;
            plan[i] = (Some(to), tokens, Some((text, found)));
        }
    }
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (c, (fidelity, tokens, rendered)) in candidates.iter().zip(plan) {
        let score = (c.score * 1000.0).round() / 1000.0;
        match (fidelity, rendered) {
            (Some(fidelity), Some((text, found))) => {
                *redactions += found;
                kept.push(Item {
                    source: c.source.clone(),
                    lines: c.lines,
                    chunk_id: c.chunk_id.clone(),
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                    fidelity,
                    tokens: tokens as u32,
                    score,
                    reason: c.reason.clone(),
                    text,
                });
            }
            _ => dropped.push(Dropped {
                source: c.source.clone(),
                chunk_id: c.chunk_id.clone(),
                name: c.name.clone(),
                score,
            }),
        }
    }
    let tokens = kept.iter().map(|i| i.tokens).sum();
    TierPack {
        tier,
        budget: if budget == u32::MAX { 0 } else { budget },
        tokens,
        items: kept,
        dropped,
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
