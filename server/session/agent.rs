//! The agent pipeline, the one path from a request to a model and back: the target (what the
//! agent works on), the context pack around it, the prompt (an `llm::Prompt`, so every part is
//! redacted), the gateway call with its progress, and the outcome the agent's output kind says —
//! an edit (secrets the model saw as markers put back), a document, or findings. The LSP edge and
//! `strata ask` / `strata context --agent` call these functions; what the inspector shows for an
//! agent is the request a run would send.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use super::Session;
use super::packs::Want;
use crate::agents::{self, Agent, Finding, Inputs, Output};
use crate::context::{ContextPack, Diagnostic};
use crate::documents::Parsed;
use crate::llm::{Answer, CallRequest, Event, Priority, Status};

/// A problem the editor reports in the target, in bytes of the document.
#[derive(Clone, Debug)]
pub struct Problem {
    pub range: Range<usize>,
    pub message: String,
    pub code: Option<String>,
}

/// What an agent is asked to do: where, about what, with what the editor says there.
#[derive(Clone)]
pub struct Task {
    pub agent: Agent,
    /// The document's store key.
    pub key: String,
    pub parsed: Arc<Parsed>,
    /// The bytes the agent works on (see [`Session::target`]).
    pub target: Range<usize>,
    pub question: Option<String>,
    pub problems: Vec<Problem>,
    /// In a workflow, the outputs of the steps this one depends on.
    pub steps: String,
}

/// A request ready for the gateway, with what it was made from.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub request: CallRequest,
    /// The document's workspace-relative path (its key when outside the workspace).
    pub rel: String,
    /// The target's text as it was when the request was made.
    pub selection: String,
    pub target: Range<usize>,
    pub pack: ContextPack,
}

/// What an answer becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Code for the target (or to insert after it, per the agent's placement), the user's secrets
    /// back in place.
    Edit { code: String },
    /// Markdown to show.
    Document { text: String },
    /// Review findings, lines counted from the target's first line.
    Findings(Vec<Finding>),
}

impl Session {
    /// The bytes an agent works on: the selection, or the innermost chunk at the cursor (the whole
    /// line when no chunk holds it).
    pub fn target(parsed: &Parsed, selection: Range<usize>) -> Range<usize> {
        let text = &parsed.text;
        let (start, end) = (
            selection.start.min(text.len_bytes()),
            selection.end.min(text.len_bytes()),
        );
        if start < end {
            return start..end;
        }
        parsed
            .chunks
            .to_vec()
            .iter()
            .filter(|c| c.range.start <= start && start <= c.range.end)
            .min_by_key(|c| c.range.len())
            .map(|c| c.range.clone())
            .unwrap_or_else(|| {
                let line = text.byte_to_line(start);
                let line_start = text.line_to_byte(line);
                let content = text.line(line).to_string();
                line_start..line_start + content.trim_end_matches(['\n', '\r']).len()
            })
    }

    /// The model request for `task`: its context pack and prompt. An error when the document may
    /// not be sent (ignored, or a secrets file). Blocking: assembles context.
    pub fn prepare(&self, task: &Task) -> Result<Prepared, String> {
        let (rel, withheld) = self.locate(&task.key);
        if withheld {
            return Err(format!(
                "{rel} is ignored or looks like a secrets file, so none of it is sent to a model"
            ));
        }
        let text = &task.parsed.text;
        let diagnostics: Vec<Diagnostic> = task
            .problems
            .iter()
            .map(|p| Diagnostic {
                range: p.range.clone(),
                severity: "error".into(),
                message: p.message.clone(),
            })
            .collect();
        let (pack, rel) = self.pack(
            &task.key,
            &task.parsed,
            Want {
                selection: task.target.clone(),
                query: task.question.as_deref(),
                diagnostics: &diagnostics,
                budgets: self.budgets(Some(&task.agent)),
                ..Want::default()
            },
        );
        let lines: Vec<String> = task
            .problems
            .iter()
            .map(|p| {
                let line = text.byte_to_line(p.range.start.min(text.len_bytes())) + 1;
                let code = p
                    .code
                    .as_ref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                format!("line {line}: {}{code}", p.message)
            })
            .collect();
        let selection = text.byte_slice(task.target.clone()).to_string();
        let rendered = pack.render();
        let inputs = Inputs {
            path: &rel,
            language: task.parsed.language.map_or("text", |l| l.name()),
            selection: &selection,
            context: &rendered,
            question: task.question.as_deref(),
            diagnostics: &lines,
            steps: &task.steps,
        };
        let request = agents::call_request(&task.agent, &inputs, &pack, Priority::OnDemand);
        Ok(Prepared {
            request,
            rel,
            selection,
            target: task.target.clone(),
            pack,
        })
    }

    /// [`Session::prepare`] on the blocking pool.
    pub async fn prepare_async(&self, task: Task) -> Result<Prepared, String> {
        let session = self.clone();
        tokio::task::spawn_blocking(move || session.prepare(&task))
            .await
            .map_err(|e| format!("assembling context: {e}"))?
    }

    /// Calls the gateway, telling `report` what happens (queued, waiting for a limit, streaming…)
    /// and each piece of text as it arrives; the whole answer, or why there is none.
    pub async fn call<F, Fut>(&self, request: CallRequest, mut report: F) -> Result<Answer, String>
    where
        F: FnMut(Step) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut reply = self.gateway.call(request).map_err(|e| e.to_string())?;
        loop {
            match reply.next().await {
                Some(Event::Status(status)) => report(Step::Status(status_text(status))).await,
                Some(Event::Text(text)) => {
                    report(Step::Text {
                        text,
                        pieces: reply.pieces(),
                    })
                    .await
                }
                Some(Event::Done(answer)) => return Ok(answer),
                Some(Event::Failed(e)) => return Err(e.to_string()),
                None => return Err("cancelled".into()),
            }
        }
    }

    /// What `answer` becomes for the agent that `prepared` was made for. An edit answer with no
    /// code is not kept in the cache, so the next run asks again.
    pub fn outcome(
        &self,
        agent: &Agent,
        prepared: &Prepared,
        answer: &Answer,
    ) -> Result<Outcome, String> {
        match agent.output {
            Output::Edit => {
                let Some(code) = agents::edit_text(agent, &answer.text) else {
                    self.gateway.forget(&prepared.request);
                    return Err(
                        "the model's answer held no complete code block; nothing was changed"
                            .into(),
                    );
                };
                let code = agents::restore_secrets(&prepared.selection, &code)?;
                Ok(Outcome::Edit { code })
            }
            Output::Document | Output::Chat => Ok(Outcome::Document {
                text: agents::document_text(agent, &answer.text),
            }),
            Output::Diagnostics => Ok(Outcome::Findings(agents::findings(&answer.text))),
        }
    }
}

/// One thing a call reports while it runs.
pub enum Step {
    /// What the gateway is doing, in words for a progress line.
    Status(String),
    /// Text as it streams in; `pieces` so far.
    Text { text: String, pieces: u32 },
}

/// A gateway status in words for a progress line.
fn status_text(status: Status) -> String {
    match status {
        Status::Queued => "queued".to_owned(),
        Status::WaitingForLimit { provider } => format!("waiting for {provider}'s rate limit"),
        Status::Requesting { provider, .. } => format!("asking {provider}"),
        Status::Retrying { provider, after_ms } => {
            format!("{provider} failed; retrying in {} s", after_ms / 1000)
        }
        Status::Streaming { provider } => format!("{provider} is answering"),
    }
}
