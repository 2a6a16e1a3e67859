//! The working tier's candidates: the definitions the immediate chunks use, as resolution ties
//! them to the uses (`resolve`; the use under the cursor first), then chunks edited recently, the
//! rest of the current file ranked by shared names and distance, and search hits for the
//! question — the best three promoted here, the rest kept for the archive tier by name. A name
//! resolution could not tie gets a few same-named definitions of the same language, ranked below
//! everything else. It also says which files lent definitions, for the background tier's
//! outlines. Nothing here counts tokens or fits a budget.

use std::collections::BTreeSet;
use std::ops::Range;

use ropey::Rope;

use super::assemble::{Candidate, Request, Workspace, chunk_candidate};
use super::resolve::{self, Def, Outcome, family};
use crate::archive::symbols::{Symbol, SymbolKind};
use crate::archive::{Located, identifiers};
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

/// Most identifiers of the immediate chunk ranked against the rest of the file.
const LOOKUPS: usize = 64;
/// Most resolved definitions offered, and most for one use.
const RESOLVED: usize = 64;
const PER_USE: usize = 4;
/// The length at which a definition's rank among the cursor's uses is halved by its size.
const LONG_BYTES: f64 = 6000.0;
/// Most same-named definitions offered for names resolution could not tie.
const GUESSES: usize = 8;
/// Chunks of the current file, nearest to the cursor, ranked for the working tier.
pub(super) const NEARBY: usize = 300;

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
/// `chunks` are the document's around the selection (the focus `at` indexes them); the rest of
/// the document is looked up in `request.chunks`.
pub(super) fn working(
    request: &Request<'_>,
    chunks: &[Chunk],
    workspace: &dyn Workspace,
    at: &[usize],
) -> Working {
    let text = request.text;

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
    // What the focus uses, resolved: the use under the cursor first, then in written order.
    let uses = resolve::uses(request, chunks, workspace, at);
    let mut unresolved: Vec<&str> = Vec::new();
    let mut rank = 0usize;
    for (k, u) in uses.iter().enumerate() {
        let defs = match &u.outcome {
            Outcome::Defs(defs) => defs,
            Outcome::Unresolved => {
                if !unresolved.contains(&u.name.as_str()) {
                    unresolved.push(&u.name);
                }
                continue;
            }
            Outcome::External => continue,
        };
        let under_cursor =
            k == 0 && u.at.start <= request.selection.start && request.selection.start <= u.at.end;
        for d in defs.iter().take(PER_USE) {
            if rank >= RESOLVED {
                break;
            }
            if matches!(d.symbol.kind, SymbolKind::Module | SymbolKind::ModFile) {
                continue;
            }
            // Scored in `fit::KEPT_FIRST`'s band: kept before anything else when the budget binds.
            let closeness = 1.0 - rank as f64 / (RESOLVED as f64 * 2.0);
            let score = if under_cursor { 80.0 } else { 70.0 + closeness };
            let reason = format!("defines `{}`, used at the cursor", u.name);
            let Some(mut candidate) = def_candidate(request, workspace, d, score, reason) else {
                continue;
            };
            if !under_cursor {
                // Under a binding budget a long definition goes to its signature before shorter
                // ones lose theirs: more of what the cursor uses stays declared in the text.
                let size = 1.0 / (1.0 + candidate.full.len() as f64 / LONG_BYTES);
                candidate.score = 70.0 + (closeness + size) / 2.0;
            }
            if d.path == request.path
                && at
                    .iter()
                    .any(|&i| overlaps(&chunks[i].range, &d.symbol.range))
            {
                continue; // the focus itself (a recursive call, its own type)
            }
            let key = (
                candidate.source.clone(),
                candidate.chunk_id.clone().unwrap_or_default(),
            );
            if !taken.insert(key) {
                continue;
            }
            if d.path != request.path && !related_files.contains(&d.path) {
                related_files.push(d.path.clone());
            }
            rank += 1;
            working.push(candidate);
        }
    }
    // Names resolution could not tie to a definition: same-named definitions of the same
    // language, ranked below everything else so they degrade and go first.
    let family = family(request.path);
    let mut guesses = 0;
    for name in unresolved {
        if guesses >= GUESSES || name.len() < 2 || KEYWORDS.contains(&name) {
            continue;
        }
        let reason = format!("same name as `{name}` at the cursor (not resolved to it)");
        let local = request
            .chunks
            .filter(|_, c| &*c.name == name && is_definition(c.kind));
        let mut found = Vec::new();
        for c in local.iter().filter(|c| !in_focus(c)) {
            found.push(chunk_candidate(request.path, text, c, 0.0, reason.clone()));
        }
        let mut others = workspace.definitions(name);
        others.retain(|d| d.path != request.path && super::resolve::family(&d.path) == family);
        for d in others {
            if let Some(c) = located_candidate(workspace, &d, 0.0, reason.clone()) {
                found.push(c);
            }
        }
        for mut c in found.into_iter().take(2) {
            if guesses >= GUESSES {
                break;
            }
            if !taken.insert((c.source.clone(), c.chunk_id.clone().unwrap_or_default())) {
                continue;
            }
            c.score = 1.0 - guesses as f64 / 100.0;
            guesses += 1;
            working.push(c);
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
    for (ci, c) in nearby(text, chunks, focus_line)
        .into_iter()
        .map(|ci| (ci, &chunks[ci]))
    {
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

/// The [`NEARBY`] chunks whose first line is closest to `focus_line` (of equally close ones, the
/// earlier), in document order. Chunks come in document order, their starts never decreasing,
/// so the closest lie on either side of where the focus line starts: they are taken outwards,
/// the closer side first, until NEARBY are in and the next is farther than the last taken — a
/// few hundred lines looked up in the rope, not one per chunk of the file (9,700 at 2.5 MB).
fn nearby(text: &Rope, chunks: &[Chunk], focus_line: usize) -> Vec<usize> {
    let distance = |ci: usize| {
        text.byte_to_line(chunks[ci].range.start)
            .abs_diff(focus_line)
    };
    let mut picked: Vec<(usize, usize)> = if chunks.is_sorted_by_key(|c| c.range.start) {
        let at = text.line_to_byte(focus_line.min(text.len_lines().saturating_sub(1)));
        let split = chunks.partition_point(|c| c.range.start < at);
        let (mut left, mut right) = (split, split);
        let mut picked = Vec::with_capacity(NEARBY + 8);
        let mut last = None;
        loop {
            let before = (left > 0).then(|| (distance(left - 1), left - 1));
            let after = (right < chunks.len()).then(|| (distance(right), right));
            let next = match (before, after) {
                (Some(b), Some(a)) => b.min(a),
                (Some(only), None) | (None, Some(only)) => only,
                (None, None) => break,
            };
            if picked.len() >= NEARBY && last != Some(next.0) {
                break;
            }
            if next.1 < split {
                left -= 1;
            } else {
                right += 1;
            }
            last = Some(next.0);
            picked.push(next);
        }
        picked
    } else {
        (0..chunks.len()).map(|ci| (distance(ci), ci)).collect()
    };
    picked.sort_unstable();
    picked.truncate(NEARBY);
    picked.sort_unstable_by_key(|&(_, ci)| ci);
    picked.into_iter().map(|(_, ci)| ci).collect()
}

/// A definition as a candidate: its chunk when one is the definition (doc comments and all),
/// else the symbol's own text. `None` when the file changed since it was indexed.
fn def_candidate(
    request: &Request<'_>,
    workspace: &dyn Workspace,
    d: &Def,
    score: f64,
    reason: String,
) -> Option<Candidate> {
    let s = &d.symbol;
    if d.path == request.path {
        let text = request.text;
        let chunk = request.chunks.find(|base, c| {
            base + c.name_range.start == s.name_start && is_definition(c.kind) && *c.name == *s.name
        });
        if let Some(c) = chunk {
            return Some(chunk_candidate(request.path, text, &c, score, reason));
        }
        return symbol_candidate(&d.path, text, s, score, reason);
    }
    let file = workspace.text(&d.path)?;
    let chunk = workspace
        .outline(&d.path)
        .into_iter()
        .find(|c| c.name == s.name && c.start_byte <= s.name_start && s.name_start < c.end_byte);
    match chunk {
        Some(c) if c.end_byte <= file.len_bytes() => located_text(&file, &c, score, reason),
        _ => symbol_candidate(&d.path, &file, s, score, reason),
    }
}

/// A symbol's own text as a candidate, if the file still has it where the archive says.
fn symbol_candidate(
    path: &str,
    file: &Rope,
    s: &Symbol,
    score: f64,
    reason: String,
) -> Option<Candidate> {
    let end = s.range.end;
    if end > file.len_bytes()
        || s.range.start > s.name_start
        || s.name_start + s.name.len() > end
        || file.byte_slice(s.name_start..s.name_start + s.name.len()) != s.name.as_str()
    {
        return None;
    }
    let full = file.byte_slice(s.range.clone()).to_string();
    let signature = file
        .byte_slice(s.range.start..s.signature_end.clamp(s.range.start, end))
        .to_string();
    let name = if s.container.is_empty() {
        s.name.clone()
    } else {
        format!("{}::{}", s.container, s.name)
    };
    Some(Candidate {
        source: path.to_string(),
        lines: Some(s.lines),
        chunk_id: Some(format!("{}:{name}@{}", s.kind.as_str(), s.name_start)),
        kind: s.kind.as_str().to_string(),
        name,
        score,
        reason,
        full,
        signature: signature.trim_end().to_string(),
    })
}

/// An archived chunk as a candidate, read from its file.
fn located_candidate(
    workspace: &dyn Workspace,
    d: &Located,
    score: f64,
    reason: String,
) -> Option<Candidate> {
    let file = workspace.text(&d.path)?;
    located_text(&file, d, score, reason)
}

fn located_text(file: &Rope, d: &Located, score: f64, reason: String) -> Option<Candidate> {
    if d.end_byte > file.len_bytes() || d.start_byte > d.end_byte {
        return None; // the file changed since it was indexed
    }
    let full = file.byte_slice(d.start_byte..d.end_byte).to_string();
    let signature = if d.doc.is_empty() {
        d.signature.clone()
    } else {
        format!("/// {}\n{}", d.doc, d.signature)
    };
    Some(Candidate {
        source: d.path.clone(),
        lines: Some((d.start_line, d.end_line)),
        chunk_id: Some(d.chunk_id.clone()),
        kind: d.kind.clone(),
        name: d.qualified.clone(),
        score,
        reason,
        full,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunks::ChunkConfig;
    use crate::documents::chunk_text;
    use crate::syntax::Language;

    #[test]
    fn the_nearby_chunks_are_the_closest_by_line_whatever_the_focus() {
        // Items of uneven lengths, some sharing a line, so that distances tie.
        let mut source = String::new();
        for n in 0..900 {
            match n % 4 {
                0 => source.push_str(&format!("fn f{n}() {{}} fn g{n}() {{}}\n")),
                1 => source.push_str(&format!(
                    "/// Doc.\nfn h{n}(a: u32) -> u32 {{\n    let b = a + {n};\n    b\n}}\n\n"
                )),
                2 => source.push_str(&format!(
                    "struct S{n} {{ a: u32 }}\nimpl S{n} {{\n    fn m(&self) {{}}\n}}\n"
                )),
                _ => source.push_str(&format!("const C{n}: u32 = {n};\n")),
            }
        }
        let text = Rope::from_str(&source);
        let chunks = chunk_text(&text, Some(Language::Rust), &ChunkConfig::default()).to_vec();
        assert!(chunks.len() > 3 * NEARBY, "{} chunks", chunks.len());
        let every = |focus: usize| {
            let mut all: Vec<(usize, usize)> = (0..chunks.len())
                .map(|ci| {
                    (
                        text.byte_to_line(chunks[ci].range.start).abs_diff(focus),
                        ci,
                    )
                })
                .collect();
            all.sort_unstable();
            all.truncate(NEARBY);
            let mut all: Vec<usize> = all.into_iter().map(|(_, ci)| ci).collect();
            all.sort_unstable();
            all
        };
        let lines = text.len_lines();
        for focus in (0..lines).step_by(37).chain([0, 1, lines - 1, lines + 5]) {
            assert_eq!(
                nearby(&text, &chunks, focus),
                every(focus),
                "focus line {focus}"
            );
        }
        // Chunks out of document order are ranked one by one, with the same answer.
        let mut shuffled = chunks.clone();
        shuffled.swap(1, 2);
        let focus = lines / 2;
        let expected: Vec<usize> = every(focus);
        let got = nearby(&text, &shuffled, focus);
        let key = |list: &[Chunk], v: Vec<usize>| {
            let mut v: Vec<usize> = v.into_iter().map(|i| list[i].range.start).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(key(&shuffled, got), key(&chunks, expected));
    }
}
