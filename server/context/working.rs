//! The working tier's candidates: the definitions the immediate chunks use (same file first,
//! then the workspace, files this one imports first), chunks edited recently, the rest of the
//! current file ranked by shared names and distance, and search hits for the question — the best
//! three promoted here, the rest kept for the archive tier by name. It also says which files
//! lent definitions, for the background tier's outlines. Nothing here counts tokens or fits a
//! budget.

use std::collections::BTreeSet;
use std::ops::Range;

use super::assemble::{Candidate, Request, Workspace, chunk_candidate};
use crate::archive::identifiers;
use crate::chunks::{Chunk, ChunkKind};

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

/// What the working pass found.
pub(super) struct Working {
    /// Candidates for the working tier.
    pub(super) candidates: Vec<Candidate>,
    /// Search hits not promoted: the archive tier.
    pub(super) archive: Vec<Candidate>,
    /// Files other than this one whose definitions are used, in the order first used.
    pub(super) related_files: Vec<String>,
}

/// The working tier and the archive tier's hits, around the focus chunks `at`.
pub(super) fn working(request: &Request<'_>, workspace: &dyn Workspace, at: &[usize]) -> Working {
    let text = request.text;
    let chunks = request.chunks;

    let used: Vec<String> = {
        let mut seen = BTreeSet::new();
        let mut ordered = Vec::new();
        for &i in at {
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
    for &i in at {
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
    Working {
        candidates: working,
        archive,
        related_files,
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
