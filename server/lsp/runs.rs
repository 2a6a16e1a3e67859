//! [`Runs`]: an agent or workflow run, which outlives the `workspace/executeCommand` request that
//! started it. [`Runs::start`] names the run with a progress token (`strata-agent-N`,
//! `strata-workflow-N`), registers it in `Running` under that token (so
//! `window/workDoneProgress/cancel` stops it) and starts it once the request's answer — that
//! token — is queued. However the run ends (done, failed, cancelled, panicked) this file ends its
//! `$/progress`, tells the user what happened in one line (`window/showMessage`) and sends
//! `strata/runEnded` with the whole result. What a run does is the caller's (`agents.rs`); this
//! file never talks to a model or touches a document.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tower_lsp_server::ls_types::*;

use super::client::Client;
use super::ext::{
    AgentOutput, AnswerSource, RunAgentResult, RunEndedNotification, RunEndedParams, RunResult,
    RunStarted, RunWorkflowResult, StepState,
};
use super::running::{self, Key, Running};
use crate::session::Step;

/// What a run is, as the user is told how it ended.
#[derive(Clone, Debug)]
pub enum Label {
    Agent {
        name: String,
        /// The agent's title ("Strata: Explain this code").
        title: String,
        /// What it works on, in words ("`add`", "lines 5–7").
        target: String,
        /// Its edit goes after the target (tests), not in its place.
        inserts: bool,
    },
    Workflow {
        name: String,
    },
}

impl Label {
    /// The progress title, and the start of every line the user is told.
    fn title(&self) -> String {
        match self {
            Label::Agent { title, .. } if title.starts_with("Strata") => title.clone(),
            Label::Agent { title, .. } => format!("Strata: {title}"),
            Label::Workflow { name } => format!("Strata: {name}"),
        }
    }

    fn failed(&self, message: String) -> RunResult {
        match self {
            Label::Agent { name, .. } => RunResult::Agent(RunAgentResult {
                agent: name.clone(),
                error: Some(message),
                ..Default::default()
            }),
            Label::Workflow { name } => RunResult::Workflow(RunWorkflowResult {
                workflow: name.clone(),
                error: Some(message),
                ..Default::default()
            }),
        }
    }

    fn cancelled(&self) -> RunResult {
        match self {
            Label::Agent { name, .. } => RunResult::Agent(RunAgentResult {
                agent: name.clone(),
                cancelled: true,
                ..Default::default()
            }),
            Label::Workflow { name } => RunResult::Workflow(RunWorkflowResult {
                workflow: name.clone(),
                cancelled: true,
                ..Default::default()
            }),
        }
    }
}

/// Starts runs and says how they ended; cheap to share.
pub struct Runs {
    client: Client,
    running: Arc<Running>,
    next_token: AtomicU64,
}

impl Runs {
    pub fn new(client: Client, running: Arc<Running>) -> Runs {
        Runs {
            client,
            running,
            next_token: AtomicU64::new(1),
        }
    }

    /// Starts `work` as a run of its own, reporting `$/progress` when `progress` (the client
    /// has `window.workDoneProgress`); returns what the request answers. `work` is given the
    /// run's progress and returns its result, or why it has none.
    pub fn start<F, Fut>(&self, label: Label, progress: bool, work: F) -> RunStarted
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<RunResult, String>> + Send + 'static,
    {
        let (kind, started) = match &label {
            Label::Agent { name, .. } => ("agent", (Some(name.clone()), None)),
            Label::Workflow { name } => ("workflow", (None, Some(name.clone()))),
        };
        let token = format!(
            "strata-{kind}-{}",
            self.next_token.fetch_add(1, Ordering::Relaxed)
        );
        // Registered now, so a cancellation that follows the answer at once finds it.
        let key = Key::Progress(token.clone());
        self.running.start(key.clone());
        let pending = Unstarted {
            running: self.running.clone(),
            key: Some(key),
        };
        let (client, answer) = (self.client.clone(), token.clone());
        running::after_answer(move || {
            let run = Run {
                key: pending.take(),
                client,
                token,
                label,
            };
            tokio::spawn(run.supervise(progress, work));
        });
        RunStarted {
            agent: started.0,
            workflow: started.1,
            token: answer,
        }
    }
}

/// A run's registration, taken out of `Running` if the run never starts (its request was
/// cancelled before its answer went out).
struct Unstarted {
    running: Arc<Running>,
    key: Option<Key>,
}

impl Unstarted {
    fn take(mut self) -> (Arc<Running>, Key) {
        let key = self.key.take().expect("taken once");
        (self.running.clone(), key)
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            self.running.finish(key);
        }
    }
}

struct Run {
    key: (Arc<Running>, Key),
    client: Client,
    token: String,
    label: Label,
}

impl Run {
    async fn supervise<F, Fut>(self, progress: bool, work: F)
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<RunResult, String>> + Send + 'static,
    {
        let (running, key) = &self.key;
        let title = self.label.title();
        let progress = Progress::begin(&self.client, progress, &self.token, &title).await;
        let task = tokio::spawn(work(progress.clone()));
        if !running.attach(key, task.abort_handle()) {
            // Cancelled before it started.
            task.abort();
        }
        let result = match task.await {
            Ok(Ok(result)) => result,
            Ok(Err(message)) => self.label.failed(message),
            Err(e) if e.is_cancelled() => self.label.cancelled(),
            Err(e) => {
                let panic = e.into_panic();
                let (_, what) = super::panicked("workspace/executeCommand", panic.as_ref());
                self.label.failed(format!("internal error: {what}"))
            }
        };
        running.finish(key);
        let (told, words) = told(&self.label, &result);
        progress.end(&words);
        if let Some(typ) = told {
            self.client.show_message(typ, format!("{title} — {words}"));
        }
        self.client
            .send_notification::<RunEndedNotification>(RunEndedParams {
                token: self.token,
                result,
            });
    }
}

/// How a run ended, in words: the type of the message that tells the user (none when the run
/// asks a question of its own instead: a conflict offers "Run again") and what follows its title.
fn told(label: &Label, result: &RunResult) -> (Option<MessageType>, String) {
    match result {
        RunResult::Agent(r) => agent_told(label, r),
        RunResult::Workflow(r) => workflow_told(r),
    }
}

fn agent_told(label: &Label, r: &RunAgentResult) -> (Option<MessageType>, String) {
    let (info, error) = (Some(MessageType::INFO), Some(MessageType::ERROR));
    let (target, inserts) = match label {
        Label::Agent {
            target, inserts, ..
        } => (target.as_str(), *inserts),
        Label::Workflow { .. } => ("the code", false),
    };
    let elsewhere = |what: &str| match (&r.path, r.shown) {
        (Some(path), Some(false)) => format!("; {what} is in {path}"),
        _ => String::new(),
    };
    if r.cancelled {
        return (info, "cancelled".into());
    }
    if r.conflict {
        return (
            None,
            "not applied: the code changed while the model was answering".into(),
        );
    }
    if let Some(message) = &r.error {
        return (
            error,
            format!("{message}{}", elsewhere("the proposed change")),
        );
    }
    match (r.output, r.applied) {
        (_, Some(false)) => (error, "not applied".into()),
        (Some(AgentOutput::Edit), _) if inserts => (info, format!("added after {target}")),
        (Some(AgentOutput::Edit), _) => (info, format!("applied to {target}")),
        (Some(AgentOutput::Document), _) if r.shown == Some(false) => (
            info,
            format!("the answer is in {}", r.path.as_deref().unwrap_or("a file")),
        ),
        (Some(AgentOutput::Document), _) => {
            let cached = matches!(r.source, Some(AnswerSource::L1 | AnswerSource::L2));
            (
                info,
                if cached {
                    "answered (from the cache)".into()
                } else {
                    "answered".into()
                },
            )
        }
        (Some(AgentOutput::Diagnostics), _) => (info, findings(r.findings.unwrap_or(0))),
        (Some(AgentOutput::Chat), _) => (info, "answered".into()),
        (None, _) => (info, "done".into()),
    }
}

fn findings(n: usize) -> String {
    match n {
        0 => "no findings".into(),
        1 => "1 finding".into(),
        n => format!("{n} findings"),
    }
}

fn workflow_told(r: &RunWorkflowResult) -> (Option<MessageType>, String) {
    if r.cancelled {
        return (Some(MessageType::INFO), "cancelled".into());
    }
    if let Some(message) = &r.error {
        return (Some(MessageType::ERROR), message.clone());
    }
    let steps = r.steps.as_ref();
    let total = steps.map_or(0, |s| s.len());
    let done = steps.map_or(0, |s| {
        s.values()
            .filter(|s| matches!(s, StepState::Done { .. }))
            .count()
    });
    let failure = steps.and_then(|s| {
        s.iter().find_map(|(id, step)| match step {
            StepState::Failed { error } => Some(format!("; {id} failed: {error}")),
            _ => None,
        })
    });
    let report = match (&r.path, r.shown) {
        (Some(path), Some(false)) => format!("; the report is in {path}"),
        _ => String::new(),
    };
    let typ = if failure.is_some() {
        MessageType::WARNING
    } else {
        MessageType::INFO
    };
    (
        Some(typ),
        format!(
            "{done} of {total} steps done{}{report}",
            failure.unwrap_or_default()
        ),
    )
}

/// `$/progress` for one run, when the client supports it.
#[derive(Clone)]
pub struct Progress {
    client: Client,
    token: Option<ProgressToken>,
}

impl Progress {
    async fn begin(client: &Client, supported: bool, token: &str, title: &str) -> Progress {
        let token = ProgressToken::String(token.to_owned());
        let created = supported
            && client
                .create_work_done_progress(token.clone())
                .await
                .is_ok();
        let progress = Progress {
            client: client.clone(),
            token: created.then_some(token),
        };
        progress.send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: title.to_owned(),
            cancellable: Some(true),
            message: Some("starting".into()),
            percentage: None,
        }));
        progress
    }

    fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client.progress(token.clone(), value);
        }
    }

    pub fn report(&self, message: &str) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message.to_owned()),
            percentage: None,
        }));
    }

    /// What a session call reports, as a progress line.
    pub async fn step(&self, step: Step) {
        match step {
            Step::Status(what) => self.report(&what),
            Step::Text { pieces, .. } => self.report(&format!("streaming, {pieces} pieces")),
        }
    }

    fn end(&self, message: &str) {
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.to_owned()),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(inserts: bool) -> Label {
        Label::Agent {
            name: "document".into(),
            title: "Strata: Write documentation comments".into(),
            target: "`add`".into(),
            inserts,
        }
    }

    fn said(label: &Label, result: RunResult) -> String {
        let (typ, words) = told(label, &result);
        let typ = match typ {
            Some(MessageType::ERROR) => "error",
            Some(MessageType::WARNING) => "warning",
            Some(_) => "info",
            None => "asks",
        };
        format!("{typ}: {} — {words}\n", label.title())
    }

    #[test]
    fn every_ending_is_told_in_one_line() {
        let edit = |r: RunAgentResult| {
            RunResult::Agent(RunAgentResult {
                agent: "document".into(),
                ..r
            })
        };
        let mut lines = String::new();
        lines += &said(
            &agent(false),
            edit(RunAgentResult {
                output: Some(AgentOutput::Edit),
                applied: Some(true),
                ..Default::default()
            }),
        );
        lines += &said(
            &agent(true),
            edit(RunAgentResult {
                output: Some(AgentOutput::Edit),
                applied: Some(true),
                ..Default::default()
            }),
        );
        lines += &said(
            &agent(false),
            edit(RunAgentResult {
                applied: Some(false),
                conflict: true,
                ..Default::default()
            }),
        );
        lines += &said(
            &agent(false),
            edit(RunAgentResult {
                error: Some("the edited code would not parse (line 3: missing `}`)".into()),
                path: Some("/c/answers/1-refactor.md".into()),
                shown: Some(false),
                ..Default::default()
            }),
        );
        lines += &said(&agent(false), agent(false).cancelled());
        lines += &said(
            &agent(false),
            agent(false).failed("no model answered".into()),
        );
        let explain = Label::Agent {
            name: "explain".into(),
            title: "Explain like the team".into(),
            target: "lines 5–7".into(),
            inserts: false,
        };
        let document = |shown, source| {
            RunResult::Agent(RunAgentResult {
                agent: "explain".into(),
                output: Some(AgentOutput::Document),
                path: Some("/c/answers/2-explain.md".into()),
                shown: Some(shown),
                source: Some(source),
                ..Default::default()
            })
        };
        lines += &said(&explain, document(true, AnswerSource::Model));
        lines += &said(&explain, document(true, AnswerSource::L2));
        lines += &said(&explain, document(false, AnswerSource::Model));
        for n in [0, 1, 3] {
            lines += &said(
                &explain,
                RunResult::Agent(RunAgentResult {
                    agent: "review".into(),
                    output: Some(AgentOutput::Diagnostics),
                    findings: Some(n),
                    ..Default::default()
                }),
            );
        }
        let workflow = Label::Workflow {
            name: "review-all".into(),
        };
        let steps = |failed: bool| {
            let mut steps = std::collections::BTreeMap::new();
            steps.insert(
                "a".to_owned(),
                StepState::Done {
                    output: "ok".into(),
                },
            );
            steps.insert(
                "b".to_owned(),
                if failed {
                    StepState::Failed {
                        error: "no model answered".into(),
                    }
                } else {
                    StepState::Done {
                        output: "ok".into(),
                    }
                },
            );
            RunResult::Workflow(RunWorkflowResult {
                workflow: "review-all".into(),
                steps: Some(steps),
                path: Some("/c/answers/3-review-all.md".into()),
                shown: Some(failed),
                ..Default::default()
            })
        };
        lines += &said(&workflow, steps(false));
        lines += &said(&workflow, steps(true));
        lines += &said(&workflow, workflow.cancelled());
        expect_test::expect![[r#"
            info: Strata: Write documentation comments — applied to `add`
            info: Strata: Write documentation comments — added after `add`
            asks: Strata: Write documentation comments — not applied: the code changed while the model was answering
            error: Strata: Write documentation comments — the edited code would not parse (line 3: missing `}`); the proposed change is in /c/answers/1-refactor.md
            info: Strata: Write documentation comments — cancelled
            error: Strata: Write documentation comments — no model answered
            info: Strata: Explain like the team — answered
            info: Strata: Explain like the team — answered (from the cache)
            info: Strata: Explain like the team — the answer is in /c/answers/2-explain.md
            info: Strata: Explain like the team — no findings
            info: Strata: Explain like the team — 1 finding
            info: Strata: Explain like the team — 3 findings
            info: Strata: review-all — 2 of 2 steps done; the report is in /c/answers/3-review-all.md
            warning: Strata: review-all — 1 of 2 steps done; b failed: no model answered
            info: Strata: review-all — cancelled
        "#]]
        .assert_eq(&lines);
    }
}
