//! Core values → the wire types of Strata's protocol extension (`ext.rs`): context packs,
//! prompts, gateway and completion figures, audit rows, workflow steps. The core's structs never
//! reach the wire themselves, so renaming a core field cannot rename what editors read; every
//! field is spelled out here, and a new core field goes on the wire only when it is added to
//! `ext.rs` (and to docs/lsp-extensions.md). Pure functions, no I/O.

use std::collections::BTreeMap;

use super::ext::{
    AnswerSource, CacheInfo, CallInfo, CircuitState, CompletionInfo, ContextItem, ContextResult,
    ContextTier, DroppedItem, FidelityName, GatewayInfo, Latency, LimiterInfo, MemoryInfo,
    ProviderInfo, SentMessage, SentPrompt, SpentToday, StepState, TierName,
};
use crate::agents::workflow::StepResult;
use crate::completion::CompletionStats;
use crate::context::{ContextPack, Dropped, Fidelity, Item, Tier, TierPack};
use crate::llm::gateway::{GatewayStats, Source};
use crate::llm::limits::LimiterStats;
use crate::llm::provider::ProviderStats;
use crate::llm::retry::Circuit;
use crate::llm::{AuditRecord, Parts, Prompt, Role, Summary};

/// `strata/context`'s result: the pack built from document `version`, with its rendering and,
/// for an agent, the prompt it sends.
pub fn context_result(
    pack: &ContextPack,
    version: i32,
    prompt: Option<SentPrompt>,
) -> ContextResult {
    ContextResult {
        version,
        encoding: pack.encoding,
        tiers: pack.tiers.iter().map(context_tier).collect(),
        redactions: pack.redactions,
        notes: pack.notes.clone(),
        rendered: pack.render(),
        prompt,
    }
}

fn context_tier(tier: &TierPack) -> ContextTier {
    ContextTier {
        tier: match tier.tier {
            Tier::Immediate => TierName::Immediate,
            Tier::Working => TierName::Working,
            Tier::Background => TierName::Background,
            Tier::Archive => TierName::Archive,
        },
        budget: tier.budget,
        tokens: tier.tokens,
        items: tier.items.iter().map(context_item).collect(),
        dropped: tier.dropped.iter().map(dropped_item).collect(),
    }
}

fn context_item(item: &Item) -> ContextItem {
    ContextItem {
        source: item.source.clone(),
        lines: item.lines.map(|(first, last)| [first, last]),
        chunk_id: item.chunk_id.clone(),
        kind: item.kind.clone(),
        name: item.name.clone(),
        fidelity: match item.fidelity {
            Fidelity::Full => FidelityName::Full,
            Fidelity::Signature => FidelityName::Signature,
            Fidelity::Name => FidelityName::Name,
        },
        tokens: item.tokens,
        score: item.score,
        reason: item.reason.clone(),
        text: item.text.clone(),
    }
}

fn dropped_item(dropped: &Dropped) -> DroppedItem {
    DroppedItem {
        source: dropped.source.clone(),
        chunk_id: dropped.chunk_id.clone(),
        name: dropped.name.clone(),
        score: dropped.score,
    }
}

impl SentPrompt {
    /// The prompt `agent` sends, part by part: a chat prompt's system text and messages, or a
    /// fill-in-the-middle prompt as two messages, `prefix` and `suffix`.
    pub fn new(agent: &str, prompt: &Prompt) -> SentPrompt {
        let message = |role, content: &String| SentMessage {
            role,
            content: content.clone(),
        };
        let (system, messages) = match prompt.parts() {
            Parts::Chat { system, messages } => (
                system.clone(),
                messages
                    .iter()
                    .map(|m| {
                        let role = match m.role {
                            Role::User => "user",
                            Role::Assistant => "assistant",
                        };
                        message(role, &m.content)
                    })
                    .collect(),
            ),
            Parts::Fim { prefix, suffix } => (
                None,
                vec![message("prefix", prefix), message("suffix", suffix)],
            ),
        };
        SentPrompt {
            agent: agent.to_owned(),
            system,
            messages,
        }
    }
}

impl From<crate::resources::memory::Usage> for MemoryInfo {
    fn from(u: crate::resources::memory::Usage) -> Self {
        MemoryInfo {
            rss: u.rss,
            peak: u.peak,
            anonymous: u.anonymous,
            file: u.file,
            threads: u.threads,
            heap_in_use: u.heap_in_use,
            heap_free: u.heap_free,
        }
    }
}

impl From<&Summary> for Latency {
    fn from(s: &Summary) -> Latency {
        Latency {
            count: s.count,
            p50_ms: s.p50_ms,
            p95_ms: s.p95_ms,
            p99_ms: s.p99_ms,
            max_ms: s.max_ms,
            mean_ms: s.mean_ms,
        }
    }
}

/// Handling times by method.
pub fn latencies(summaries: &BTreeMap<String, Summary>) -> BTreeMap<String, Latency> {
    summaries
        .iter()
        .map(|(method, summary)| (method.clone(), summary.into()))
        .collect()
}

impl From<&GatewayStats> for GatewayInfo {
    fn from(g: &GatewayStats) -> GatewayInfo {
        GatewayInfo {
            providers: g
                .providers
                .iter()
                .map(|(name, p)| (name.clone(), p.into()))
                .collect(),
            cache: CacheInfo {
                l1_hits: g.cache.l1_hits,
                l1_misses: g.cache.l1_misses,
                l1_entries: g.cache.l1_entries,
                l1_bytes: g.cache.l1_bytes,
                l2_hits: g.cache.l2_hits,
                l2_misses: g.cache.l2_misses,
                l2_entries: g.cache.l2_entries,
                l2_bytes: g.cache.l2_bytes,
            },
            coalesced: g.coalesced,
            refused: g.refused,
            cancelled: g.cancelled,
            in_flight: g.in_flight,
            spent_today: SpentToday {
                providers: g.spent_today.providers.clone(),
                agents: g.spent_today.agents.clone(),
            },
        }
    }
}

impl From<&ProviderStats> for ProviderInfo {
    fn from(p: &ProviderStats) -> ProviderInfo {
        ProviderInfo {
            kind: p.kind,
            model: p.model.clone(),
            local: p.local,
            circuit: match p.circuit {
                Circuit::Closed => CircuitState::Closed,
                Circuit::Open => CircuitState::Open,
                Circuit::HalfOpen => CircuitState::HalfOpen,
            },
            calls: p.calls,
            failures: p.failures,
            retries: p.retries,
            tokens_in: p.tokens_in,
            tokens_out: p.tokens_out,
            first_token: (&p.first_token).into(),
            total: (&p.total).into(),
            ewma_first_token_ms: p.ewma_first_token_ms,
            limiter: (&p.limiter).into(),
        }
    }
}

impl From<&LimiterStats> for LimiterInfo {
    fn from(l: &LimiterStats) -> LimiterInfo {
        LimiterInfo {
            in_flight: l.in_flight,
            waiting: l.waiting,
            waits: l.waits,
            wait_ms_total: l.wait_ms_total,
            paused_for_ms: l.paused_for_ms,
            requests_available: l.requests_available,
            tokens_available: l.tokens_available,
        }
    }
}

impl From<&AuditRecord> for CallInfo {
    fn from(r: &AuditRecord) -> CallInfo {
        CallInfo {
            at_ms: r.at_ms,
            workspace: r.workspace.clone(),
            agent: r.agent.clone(),
            priority: r.priority.clone(),
            provider: r.provider.clone(),
            model: r.model.clone(),
            cache: r.cache.as_str().to_owned(),
            bytes_out: r.bytes_out,
            bytes_in: r.bytes_in,
            tokens_in: r.tokens_in,
            tokens_out: r.tokens_out,
            files: r.files.clone(),
            chunks: r.chunks.clone(),
            outcome: r.outcome.as_str().to_owned(),
            error: r.error.clone(),
            ttft_ms: r.ttft_ms,
            total_ms: r.total_ms,
        }
    }
}

impl From<&CompletionStats> for CompletionInfo {
    fn from(c: &CompletionStats) -> CompletionInfo {
        CompletionInfo {
            requests: c.requests,
            from_suggestion: c.from_suggestion,
            from_in_flight: c.from_in_flight,
            from_held: c.from_held,
            empty: c.empty,
            superseded: c.superseded,
            timed_out: c.timed_out,
            calls_started: c.calls_started,
            calls_cancelled: c.calls_cancelled,
            calls_failed: c.calls_failed,
            prefetches: c.prefetches,
            from_prefetch: c.from_prefetch,
        }
    }
}

impl From<&StepResult> for StepState {
    fn from(step: &StepResult) -> StepState {
        match step {
            StepResult::Done { output } => StepState::Done {
                output: output.clone(),
            },
            StepResult::Failed { error } => StepState::Failed {
                error: error.clone(),
            },
            StepResult::Skipped { because } => StepState::Skipped {
                because: because.clone(),
            },
        }
    }
}

impl From<Source> for AnswerSource {
    fn from(source: Source) -> AnswerSource {
        match source {
            Source::Model => AnswerSource::Model,
            Source::L1 => AnswerSource::L1,
            Source::L2 => AnswerSource::L2,
            Source::Coalesced => AnswerSource::Coalesced,
        }
    }
}

/// A path as the wire carries it.
pub fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    //! What goes on the wire, as JSON: the names editors and docs/lsp-extensions.md use.
    //! Refresh a snapshot with `UPDATE_EXPECT=1 cargo test --lib lsp::to_ext`, then read the diff:
    //! a changed name is a change editors see.

    use expect_test::expect;
    use serde_json::{Value, json};

    use super::*;
    use crate::llm::Message;
    use crate::llm::gateway::{CacheStats, SpentToday as CoreSpent};
    use crate::lsp::ext::{
        AgentOutput, ArchiveInfo, ConfigReport, DocumentInfo, IndexingStatus, RunAgentResult,
        RunEndedParams, RunResult, RunStarted, RunWorkflowResult, StatsResult, StatusParams,
    };

    fn pack() -> ContextPack {
        let item = Item {
            source: "src/lib.rs".into(),
            lines: Some((3, 9)),
            chunk_id: Some("function:add#0".into()),
            kind: "function".into(),
            name: "add".into(),
            fidelity: Fidelity::Signature,
            tokens: 12,
            score: 0.5,
            reason: "at the cursor".into(),
            text: "fn add(a: i32, b: i32) -> i32".into(),
        };
        ContextPack {
            encoding: "o200k_base",
            tiers: vec![
                TierPack {
                    tier: Tier::Immediate,
                    budget: 4096,
                    tokens: 12,
                    items: vec![item],
                    dropped: vec![Dropped {
                        source: "src/big.rs".into(),
                        chunk_id: None,
                        name: "huge".into(),
                        score: 0.25,
                    }],
                },
                TierPack {
                    tier: Tier::Archive,
                    budget: 0,
                    tokens: 0,
                    items: Vec::new(),
                    dropped: Vec::new(),
                },
            ],
            redactions: 1,
            notes: vec!["a note".into()],
        }
    }

    #[test]
    fn strata_context_is_the_pack_as_strata_context_json_prints_it_with_version_and_prompt() {
        let pack = pack();
        let mut wire = serde_json::to_value(context_result(&pack, 7, None)).unwrap();
        assert_eq!(wire["version"], 7);
        assert_eq!(wire["tiers"][0]["items"][0]["lines"], json!([3, 9]));
        assert_eq!(wire["tiers"][0]["items"][0]["fidelity"], "signature");
        assert_eq!(wire["tiers"][1]["tier"], "archive");
        assert!(wire.get("prompt").is_none(), "{wire}");
        // The CLI prints the core pack and its rendering: the same names, the same shape.
        let mut cli = serde_json::to_value(&pack).unwrap();
        cli["rendered"] = pack.render().into();
        wire.as_object_mut().unwrap().remove("version");
        assert_eq!(wire, cli);
    }

    #[test]
    fn a_prompt_goes_out_part_by_part() {
        let chat = Prompt::conversation(
            Some("be brief"),
            vec![Message::user("what is this?"), Message::assistant("a sum")],
        );
        let result = context_result(&pack(), 1, Some(SentPrompt::new("chat", &chat)));
        assert_eq!(
            serde_json::to_value(result).unwrap()["prompt"],
            json!({"agent": "chat", "system": "be brief", "messages": [
                {"role": "user", "content": "what is this?"},
                {"role": "assistant", "content": "a sum"},
            ]})
        );
        let fim = SentPrompt::new("completion", &Prompt::fim("fn a() {", "}"));
        assert_eq!(
            serde_json::to_value(fim).unwrap(),
            json!({"agent": "completion", "system": null, "messages": [
                {"role": "prefix", "content": "fn a() {"},
                {"role": "suffix", "content": "}"},
            ]})
        );
    }

    fn stats() -> StatsResult {
        let summary = Summary {
            count: 2,
            p50_ms: 1.0,
            p95_ms: 2.0,
            p99_ms: 2.0,
            max_ms: 2.0,
            mean_ms: 1.5,
        };
        let provider = ProviderStats {
            kind: "ollama",
            model: "m".into(),
            local: true,
            circuit: Circuit::HalfOpen,
            calls: 2,
            failures: 1,
            retries: 1,
            tokens_in: 10,
            tokens_out: 5,
            first_token: summary.clone(),
            total: summary.clone(),
            ewma_first_token_ms: Some(3.0),
            limiter: LimiterStats {
                requests_available: Some(59.0),
                ..LimiterStats::default()
            },
        };
        let gateway = GatewayStats {
            providers: [("local".to_owned(), provider)].into(),
            cache: CacheStats {
                l1_hits: 1,
                l1_misses: 2,
                l1_entries: 1,
                l1_bytes: 100,
                l2_hits: 0,
                l2_misses: 2,
                l2_entries: 1,
                l2_bytes: 100,
            },
            coalesced: 0,
            refused: 0,
            cancelled: 1,
            in_flight: 0,
            spent_today: CoreSpent {
                providers: [("local".to_owned(), 15)].into(),
                agents: [("explain".to_owned(), 15)].into(),
            },
        };
        let call = AuditRecord {
            at_ms: 1,
            agent: "explain".into(),
            priority: "on-demand".into(),
            provider: Some("local".into()),
            cache: crate::llm::CacheLevel::Miss,
            files: vec!["src/lib.rs".into()],
            outcome: crate::llm::CallOutcome::Ok,
            ttft_ms: Some(3),
            total_ms: 4,
            ..AuditRecord::default()
        };
        StatsResult {
            version: "0.1.0",
            documents: vec![DocumentInfo {
                uri: "file:///w/src/lib.rs".into(),
                version: 1,
                in_sync: true,
                language: Some("rust"),
                bytes: 10,
                parsed_version: Some(1),
                chunks: 1,
                segments: 1,
                trees: 1,
                parse_ms: 0.5,
                chunk_ms: 0.5,
            }],
            archive: Some(ArchiveInfo {
                path: "/c/archive.sqlite".into(),
                files: 1,
                chunks: 1,
                chunks_written: 1,
                chunks_kept: 0,
                last_error: None,
            }),
            methods: latencies(&[("textDocument/completion".to_owned(), summary)].into()),
            gateway: (&gateway).into(),
            recent_calls: vec![(&call).into()],
            completion: (&CompletionStats::default()).into(),
            config: ConfigReport::default(),
            memory: crate::resources::memory::Usage {
                heap_in_use: Some(1),
                heap_free: Some(1),
                ..Default::default()
            }
            .into(),
        }
    }

    /// The field names of every object in `value`, map keys (provider, agent, method names)
    /// included; those in the test data are camelCase too.
    fn keys(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    out.push(key.clone());
                    keys(value, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_field_of_strata_stats_is_camel_case() {
        let value = serde_json::to_value(stats()).unwrap();
        let mut names = Vec::new();
        keys(&value, &mut names);
        let snake: Vec<_> = names.iter().filter(|k| k.contains('_')).collect();
        assert!(snake.is_empty(), "not camelCase: {snake:?}");
        let provider = &value["gateway"]["providers"]["local"];
        assert_eq!(provider["circuit"], "half-open");
        assert_eq!(provider["firstToken"]["p99Ms"], 2.0);
        assert_eq!(provider["limiter"]["requestsAvailable"], 59.0);
        assert_eq!(provider["limiter"]["tokensAvailable"], Value::Null);
        assert_eq!(value["methods"]["textDocument/completion"]["count"], 2);
        assert_eq!(value["recentCalls"][0]["ttftMs"], 3);
        assert_eq!(value["gateway"]["spentToday"]["agents"]["explain"], 15);
        assert_eq!(value["completion"]["fromSuggestion"], 0);
        assert_eq!(value["memory"]["heapInUse"], 1);
    }

    #[test]
    fn command_results_and_status_as_editors_read_them() {
        let show = |value: Value| format!("{value}\n");
        let cancelled = RunAgentResult {
            agent: "explain".into(),
            cancelled: true,
            ..Default::default()
        };
        let applied = RunAgentResult {
            agent: "fix".into(),
            output: Some(AgentOutput::Edit),
            applied: Some(true),
            version: Some(4),
            ..Default::default()
        };
        let document = RunAgentResult {
            agent: "explain".into(),
            output: Some(AgentOutput::Document),
            path: Some("/a/explain.md".into()),
            shown: Some(false),
            source: Some(Source::L2.into()),
            provider: Some("local".into()),
            ..Default::default()
        };
        let workflow = RunWorkflowResult {
            workflow: "ship".into(),
            steps: Some(
                [
                    (
                        "a",
                        StepResult::Done {
                            output: "ok".into(),
                        },
                    ),
                    ("b", StepResult::Failed { error: "no".into() }),
                    (
                        "c",
                        StepResult::Skipped {
                            because: "b".into(),
                        },
                    ),
                ]
                .iter()
                .map(|(id, step)| (id.to_string(), step.into()))
                .collect(),
            ),
            path: Some("/a/ship.md".into()),
            shown: Some(true),
            ..Default::default()
        };
        let started = RunStarted {
            agent: Some("explain".into()),
            workflow: None,
            token: "strata-agent-7".into(),
        };
        let ended = RunEndedParams {
            token: "strata-workflow-8".into(),
            result: RunResult::Workflow(RunWorkflowResult {
                workflow: "ship".into(),
                error: Some("cannot write the answer".into()),
                ..Default::default()
            }),
        };
        let status = StatusParams {
            indexing: Some(IndexingStatus { done: 1, total: 3 }),
            in_flight: 2,
            rate_limited: false,
            offline: true,
        };
        let all = [
            serde_json::to_value(cancelled),
            serde_json::to_value(applied),
            serde_json::to_value(document),
            serde_json::to_value(workflow),
            serde_json::to_value(started),
            serde_json::to_value(ended),
            serde_json::to_value(status),
        ]
        .into_iter()
        .map(|v| show(v.unwrap()))
        .collect::<String>();
        expect![[r#"
            {"agent":"explain","cancelled":true}
            {"agent":"fix","applied":true,"output":"edit","version":4}
            {"agent":"explain","output":"document","path":"/a/explain.md","provider":"local","shown":false,"source":"l2"}
            {"path":"/a/ship.md","shown":true,"steps":{"a":{"output":"ok","state":"done"},"b":{"error":"no","state":"failed"},"c":{"because":"b","state":"skipped"}},"workflow":"ship"}
            {"agent":"explain","token":"strata-agent-7"}
            {"result":{"error":"cannot write the answer","workflow":"ship"},"token":"strata-workflow-8"}
            {"inFlight":2,"indexing":{"done":1,"total":3},"offline":true,"rateLimited":false}
        "#]]
        .assert_eq(&all);
    }
}
