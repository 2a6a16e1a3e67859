//! Workflows: several agents over one target as a graph (`agents::workflow` runs the graph), each
//! step through the same pipeline as a single agent — its prompt carries the outputs of the steps
//! it depends on — and one report of every step's output, the last step's first.

use std::collections::BTreeMap;
use std::future::Future;

use super::Session;
use super::agent::{Step, Task};
use crate::agents::workflow::{self, StepResult, Workflow};

/// What a workflow run did.
pub struct WorkflowReport {
    pub results: BTreeMap<String, StepResult>,
    /// Markdown: one section per step, the last step's first.
    pub text: String,
}

impl Session {
    /// Runs `wf` over `task` (whose agent is replaced by each step's); `report` hears which step
    /// runs and what each call does.
    pub async fn run_workflow<F, Fut>(&self, wf: &Workflow, task: Task, report: F) -> WorkflowReport
    where
        F: Fn(Step) -> Fut + Sync,
        Fut: Future<Output = ()>,
    {
        let declared = self.agents();
        let (declared, task, report) = (&declared, &task, &report);
        let results = workflow::run(wf, |step, inputs| async move {
            let agent = declared
                .iter()
                .find(|a| a.name == step.agent)
                .ok_or_else(|| format!("no agent named `{}`", step.agent))?;
            report(Step::Status(format!("{}: running", step.id))).await;
            let steps: String = inputs
                .iter()
                .map(|(id, out)| format!("### {id}\n\n{out}\n\n"))
                .collect();
            let prepared = self
                .prepare_async(Task {
                    agent: agent.clone(),
                    steps,
                    ..task.clone()
                })
                .await?;
            let answer = self.call(prepared.request, report).await?;
            report(Step::Status(format!("{}: done", step.id))).await;
            Ok(answer.text)
        })
        .await;
        let mut text = String::new();
        for step in wf.steps.iter().rev() {
            match results.get(&step.id) {
                Some(StepResult::Done { output }) => {
                    text.push_str(&format!("## {}\n\n{}\n\n", step.id, output.trim_end()))
                }
                Some(StepResult::Failed { error }) => {
                    text.push_str(&format!("## {}\n\nFailed: {error}\n\n", step.id))
                }
                Some(StepResult::Skipped { because }) => {
                    text.push_str(&format!("## {}\n\nNot run: {because}\n\n", step.id))
                }
                None => {}
            }
        }
        WorkflowReport { results, text }
    }
}
