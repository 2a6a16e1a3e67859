//! The immediate tier's candidates: the chunk at the cursor (or the smallest chunks over the
//! selection), the diagnostics the editor reported there, and the last messages of the
//! conversation. `focus` finds the chunks the whole pack centres on. Nothing here reads the
//! workspace, ranks other code or counts tokens.

use std::ops::Range;

use super::assemble::{Candidate, Request, chunk_candidate};
use crate::chunks::{Chunk, ChunkKind};

/// The immediate tier: the chunks at `at` (see [`focus`]), the diagnostics, the conversation.
/// `chunks` are the document's around the selection, `at` indices into them.
pub(super) fn immediate(request: &Request<'_>, chunks: &[Chunk], at: &[usize]) -> Vec<Candidate> {
    let text = request.text;
    let mut immediate = Vec::new();
    for &i in at {
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
    immediate
}

/// The chunks the pack centres on: the smallest chunk holding the cursor, or the smallest chunks
/// overlapping the selection.
pub(crate) fn focus(chunks: &[Chunk], selection: &Range<usize>) -> Vec<usize> {
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
