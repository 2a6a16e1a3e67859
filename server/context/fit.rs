//! Degradation under a budget: `fit` turns a tier's candidates into a `TierPack`, lowering the
//! lowest-scored items from full text to signature and doc, then to names, and only then
//! dropping them (what the cursor uses, the `KEPT_FIRST` band, each step after the rest); it
//! redacts and tokenizes exactly what is kept. Nothing here chooses candidates or reads the
//! workspace.

use super::assemble::Candidate;
use super::pack::{Dropped, Fidelity, Item, Tier, TierPack};
use super::redact::redact;
use super::tokens::Tokenizer;
use crate::syntax::hash_bytes;

/// An item's place in the plan: its fidelity (`None` once dropped), its cost in tokens
/// (estimated or exact), and its rendering once made (text, secrets redacted).
type Planned = (Option<Fidelity>, u64, Option<(String, usize)>);

/// Fits candidates into a budget. All start at full fidelity; while the tier is over budget, the
/// lowest-scored items are lowered to signature and doc, then to names, and only then dropped,
/// lowest first, items of the `KEPT_FIRST` band each step after the rest. The plan is made on estimates (bytes / 3) and then checked with exact counts of
/// what is kept, so only kept items are redacted and tokenized; what the estimates lowered beyond
/// the budget's need is given back, highest score first.
pub(super) fn fit(
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
            Fidelity::Signature => elided(c),
            Fidelity::Name => format!("{} {}", c.kind, c.name),
        }
    };
    let estimate = |c: &Candidate, fidelity: Fidelity| -> u64 {
        let bytes = match fidelity {
            Fidelity::Full => c.full.len(),
            Fidelity::Signature => c.signature.len() + ELISION.len(),
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
        // Below the band first: what the cursor uses goes to its signature only once the rest
        // is down to names, and to its name only once the rest is dropped.
        for (step, first) in [
            (Some(Fidelity::Signature), false),
            (Some(Fidelity::Name), false),
            (Some(Fidelity::Signature), true),
            (None, false),
            (Some(Fidelity::Name), true),
            (None, true),
        ] {
            for i in (0..candidates.len()).rev() {
                if sum <= u64::from(budget) {
                    return;
                }
                if (candidates[i].score >= KEPT_FIRST) != first {
                    continue;
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
    // The `KEPT_FIRST` band gets back all it can before the rest gets anything.
    let mut sum: u64 = plan.iter().filter(|p| p.0.is_some()).map(|p| p.1).sum();
    for (first, from, to) in [true, false].into_iter().flat_map(|first| {
        [
            (first, None, Fidelity::Name),
            (first, Some(Fidelity::Name), Fidelity::Signature),
            (first, Some(Fidelity::Signature), Fidelity::Full),
        ]
    }) {
        for i in 0..candidates.len() {
            if plan[i].0 != from || (candidates[i].score >= KEPT_FIRST) != first {
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

/// The score band of what the cursor uses (the working tier's resolved definitions): items at or
/// above it degrade only after everything below has gone one step further.
pub(super) const KEPT_FIRST: f64 = 50.0;

/// What stands for a body left out at signature fidelity.
const ELISION: &str = " { … }";

/// A candidate's signature as sent: when its definition goes on with a body, `ELISION` marks the
/// body left out, so the declaration reads as written (not as a declaration without a body).
fn elided(c: &Candidate) -> String {
    let signature = c.signature.trim_end();
    let last = signature.lines().last().unwrap_or("").trim();
    if last.is_empty() {
        return c.signature.clone();
    }
    match c.full.find(last) {
        Some(at) if c.full[at + last.len()..].trim_start().starts_with('{') => {
            format!("{signature}{ELISION}")
        }
        _ => c.signature.clone(),
    }
}
