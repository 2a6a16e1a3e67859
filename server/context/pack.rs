//! The context pack: what an agent will send, tier by tier, with every item's source, range,
//! fidelity, tokens, score and the reason it is there; and its rendering to prompt text.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Immediate,
    Working,
    Background,
    Archive,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Immediate => "immediate",
            Tier::Working => "working",
            Tier::Background => "background",
            Tier::Archive => "archive",
        }
    }
}

/// How much of an item is kept: tiers degrade fidelity before they drop anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    Full,
    /// Signature and doc comment.
    Signature,
    /// Kind and qualified name.
    Name,
}

/// Token budgets per tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Budgets {
    pub immediate: u32,
    pub working: u32,
    pub background: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            immediate: 4096,
            working: 8192,
            background: 16384,
        }
    }
}

impl Budgets {
    /// The budgets a pack is built under, tier by tier: the run's own (an agent's `budgets`),
    /// else the configuration's (`[context]`, every layer of it merged), else the default. Each
    /// is `[immediate, working, background]`. Every pack — `strata/context`, each agent run, the
    /// CLI's `context` and `ask` — takes its budgets from here (an explicit `--budgets` aside).
    pub fn resolve(own: Option<[Option<u32>; 3]>, configured: [Option<u32>; 3]) -> Budgets {
        let own = own.unwrap_or_default();
        let default = Budgets::default();
        let tier = |i: usize, d: u32| own[i].or(configured[i]).unwrap_or(d);
        Budgets {
            immediate: tier(0, default.immediate),
            working: tier(1, default.working),
            background: tier(2, default.background),
        }
    }
}

impl Budgets {
    /// The three budgets added up.
    pub fn total(&self) -> u32 {
        self.immediate
            .saturating_add(self.working)
            .saturating_add(self.background)
    }

    /// These budgets narrowed to `total` tokens in all (a model's context window): the
    /// background tier gives first, then working, then immediate, which keeps at least one.
    pub fn within(self, total: u32) -> Budgets {
        let mut excess = self.total().saturating_sub(total);
        let mut narrowed = self;
        for tier in [&mut narrowed.background, &mut narrowed.working] {
            let cut = excess.min(*tier);
            *tier -= cut;
            excess -= cut;
        }
        narrowed.immediate -= excess.min(narrowed.immediate.saturating_sub(1));
        narrowed
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Workspace-relative path, or a label (`manifest`, `folders`, `conversation`).
    pub source: String,
    /// Zero-based first and last line, when the item is a stretch of a file.
    pub lines: Option<(u32, u32)>,
    pub chunk_id: Option<String>,
    pub kind: String,
    pub name: String,
    pub fidelity: Fidelity,
    pub tokens: u32,
    pub score: f64,
    pub reason: String,
    /// The text sent, at this fidelity, secrets redacted.
    pub text: String,
}

/// An item left out because the tier's budget ran out even at the lowest fidelity.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dropped {
    pub source: String,
    pub chunk_id: Option<String>,
    pub name: String,
    pub score: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TierPack {
    pub tier: Tier,
    pub budget: u32,
    pub tokens: u32,
    pub items: Vec<Item>,
    pub dropped: Vec<Dropped>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextPack {
    /// The tokenizer the counts come from.
    pub encoding: &'static str,
    pub tiers: Vec<TierPack>,
    /// Secrets replaced by `[redacted:<kind>]` across the pack.
    pub redactions: usize,
    /// Why the pack is empty or partial, when it is (an ignored file, no archive…).
    pub notes: Vec<String>,
}

impl ContextPack {
    pub fn tier(&self, tier: Tier) -> Option<&TierPack> {
        self.tiers.iter().find(|t| t.tier == tier)
    }

    /// The prompt text: each tier under a heading, each item under a line naming its source.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for tier in &self.tiers {
            if tier.items.is_empty() {
                continue;
            }
            out.push_str(&format!("## {} context\n\n", tier.tier.name()));
            for item in &tier.items {
                let place = match item.lines {
                    Some((a, b)) => format!("{}:{}-{}", item.source, a + 1, b + 1),
                    None => item.source.clone(),
                };
                out.push_str(&format!("### {place} ({} {})\n", item.kind, item.name));
                out.push_str(&item.text);
                if !item.text.ends_with('\n') {
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_own_budgets_win_tier_by_tier_over_the_configured_over_the_default() {
        let d = Budgets::default();
        assert_eq!(Budgets::resolve(None, [None; 3]), d);
        let configured = [None, Some(300), Some(900)];
        assert_eq!(
            Budgets::resolve(None, configured),
            Budgets {
                immediate: d.immediate,
                working: 300,
                background: 900
            }
        );
        assert_eq!(
            Budgets::resolve(Some([Some(100), None, Some(50)]), configured),
            Budgets {
                immediate: 100,
                working: 300,
                background: 50
            }
        );
    }

    #[test]
    fn narrowed_to_a_window_background_gives_first_then_working_then_immediate() {
        let d = Budgets::default(); // 4096 + 8192 + 16384
        assert_eq!(d.within(100_000), d);
        let b = |immediate, working, background| Budgets {
            immediate,
            working,
            background,
        };
        assert_eq!(d.within(20_000), b(4096, 8192, 7712));
        assert_eq!(d.within(10_000), b(4096, 5904, 0));
        assert_eq!(d.within(3_000), b(3000, 0, 0));
        assert_eq!(d.within(0), b(1, 0, 0));
        assert_eq!(d.within(20_000).total(), 20_000);
    }
}
