//! Agents at the protocol edge: the code actions that offer them (no model involved), and
//! `workspace/executeCommand strata.runAgent` / `strata.runWorkflow` / `strata.newChat`. A run's
//! arguments are checked (the agent or workflow exists, the document is open and parsed) before
//! the request is answered; the run itself goes on as a run of `runs.rs`, which says how it
//! ended. The work — target, pack, prompt, call, outcome — is the session's (`crate::session`);
//! this file converts positions to bytes on the way in, reports `$/progress`, and turns the
//! outcome into protocol: one `workspace/applyEdit` against the version the run started from, a
//! markdown answer opened with `window/showDocument`, or diagnostics with fixes. Those findings
//! follow later edits of their document (`didChange`): moved with the lines above them, dropped
//! once the line they flag reads differently.

use std::collections::HashMap;
use std::ops::Range as Bytes;
use std::sync::{Arc, Mutex, OnceLock};

use ropey::Rope;
use serde_json::{Value, json};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::client::Client;
use super::ext::{
    AgentOutput, NewChatResult, RunAgentResult, RunArgs, RunResult, RunStarted, RunWorkflowResult,
    WorkflowArgs,
};
use super::position::{Encoding, to_byte_clamped, to_range};
use super::running::Running;
use super::runs::{Label, Progress, Runs};
use super::to_ext::path_string;
use crate::agents::history::{CHAT_TEMPLATE, data_dir};
use crate::agents::workflow;
use crate::agents::{self, Agent, Output, Placement};
use crate::chunks::ChunkKind;
use crate::resources::lock;
use crate::session::{Outcome, Problem, Session, Task};

pub const RUN_AGENT: &str = "strata.runAgent";
pub const RUN_WORKFLOW: &str = "strata.runWorkflow";

/// What the client can do, from `initialize`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCaps {
    pub progress: bool,
    pub show_document: bool,
}

/// Runs agents for the server; cheap to share.
pub struct Agents {
    pub client: Client,
    /// Set in `initialize`.
    pub session: Arc<OnceLock<Session>>,
    pub caps: OnceLock<ClientCaps>,
    pub encoding: OnceLock<Encoding>,
    /// Where runs start, and say how they ended.
    runs: Runs,
    /// Review findings published per document, for their code actions.
    findings: Mutex<HashMap<String, Vec<Finding>>>,
}

/// A review finding as published, with its line as it read then: it follows edits above it and
/// goes once that line reads differently (its fix would replace code it never saw).
#[derive(Clone)]
struct Finding {
    diagnostic: Diagnostic,
    line: String,
}

/// One change of a `didChange`, as much as moving a finding through it needs: the range it
/// replaced (`None`: the whole document) and how many line breaks its new text holds.
pub struct LineEdit {
    pub range: Option<Range>,
    pub line_breaks: u32,
}

impl LineEdit {
    pub fn new(range: Option<Range>, text: &str) -> LineEdit {
        // Line breaks as the document store counts them: \n, \r\n and a lone \r.
        let breaks =
            text.matches('\n').count() + text.matches('\r').count() - text.matches("\r\n").count();
        LineEdit {
            range,
            line_breaks: u32::try_from(breaks).unwrap_or(u32::MAX),
        }
    }

    /// Where the start of `line` is after this change, or `None` when the change replaced it.
    fn follow(&self, line: u32) -> Option<u32> {
        let Some(range) = self.range else {
            return Some(line);
        };
        let at = Position::new(line, 0);
        if range.end <= at {
            let removed = range.end.line - range.start.line;
            Some((line - removed).saturating_add(self.line_breaks))
        } else if range.start > at {
            Some(line)
        } else {
            None
        }
    }
}

/// The kind of the actions that ask a model about code without editing it (explain, review, a
/// workflow, the chat's send): a refactoring kind, which every editor's main code-action menu
/// shows — VS Code keeps `source.*` out of its lightbulb and Ctrl+. menu.
const ASK: &str = "refactor.strata";

pub const NEW_CHAT: &str = "strata.newChat";

impl Agents {
    pub fn new(client: Client, running: Arc<Running>, session: Arc<OnceLock<Session>>) -> Agents {
        Agents {
            runs: Runs::new(client.clone(), running),
            client,
            session,
            caps: OnceLock::new(),
            encoding: OnceLock::new(),
            findings: Mutex::new(HashMap::new()),
        }
    }

    fn caps(&self) -> ClientCaps {
        self.caps.get().copied().unwrap_or_default()
    }

    fn encoding(&self) -> Encoding {
        *self.encoding.get().unwrap_or(&Encoding::Utf16)
    }

    fn session(&self) -> Result<Session> {
        self.session
            .get()
            .cloned()
            .ok_or_else(|| Error::invalid_params("the server is not initialized"))
    }

    /// What the agent is asked to do, from the command's arguments: the target in bytes and the
    /// editor's diagnostics there.
    async fn task(
        &self,
        session: &Session,
        agent: Agent,
        document: &TextDocumentIdentifier,
        range: Option<Range>,
        question: Option<String>,
        diagnostics: &[Diagnostic],
    ) -> Result<Task> {
        let parsed = super::parsed(&session.store, &document.uri).await?;
        let encoding = self.encoding();
        let text = &parsed.text;
        let bytes = |r: &Range| {
            to_byte_clamped(text, r.start, encoding)..to_byte_clamped(text, r.end, encoding)
        };
        let selection = range.as_ref().map_or(0..0, bytes);
        let problems = diagnostics
            .iter()
            .map(|d| Problem {
                range: bytes(&d.range),
                message: d.message.clone(),
                code: d.code.as_ref().map(|c| match c {
                    NumberOrString::Number(n) => n.to_string(),
                    NumberOrString::String(s) => s.clone(),
                }),
            })
            .collect();
        Ok(Task {
            target: Session::target(&parsed, selection),
            agent,
            key: document.uri.as_str().to_owned(),
            parsed,
            question,
            problems,
            steps: String::new(),
        })
    }

    /// The agents on offer at a place, as code actions; no model is involved. Only the kinds the
    /// client asks for (`context.only`) are offered.
    pub fn code_actions(&self, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
        let mut actions = self.all_code_actions(params);
        if let Some(only) = &params.context.only {
            actions.retain(|action| {
                let CodeActionOrCommand::CodeAction(action) = action else {
                    return false;
                };
                let kind = action.kind.as_ref().map_or("", |k| k.as_str());
                only.iter().any(|wanted| {
                    let wanted = wanted.as_str();
                    kind == wanted
                        || (kind.starts_with(wanted) && kind[wanted.len()..].starts_with('.'))
                })
            });
        }
        actions
    }

    fn all_code_actions(&self, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
        let uri = &params.text_document.uri;
        let mut actions = Vec::new();
        let document = TextDocumentIdentifier { uri: uri.clone() };
        if uri.as_str().ends_with(".strata.md") {
            let arguments = command_arguments(RunArgs {
                agent: "chat".into(),
                text_document: document,
                range: None,
                query: None,
                diagnostics: Vec::new(),
            });
            return vec![CodeActionOrCommand::CodeAction(CodeAction {
                title: "Strata: send".into(),
                kind: Some(CodeActionKind::new(ASK)),
                command: Some(Command {
                    title: "Strata: send".into(),
                    command: RUN_AGENT.to_owned(),
                    arguments: Some(vec![arguments]),
                }),
                ..Default::default()
            })];
        }
        // Fixes a review suggested, for the findings under the cursor.
        let findings = lock(&self.findings)
            .get(uri.as_str())
            .cloned()
            .unwrap_or_default();
        for Finding {
            diagnostic: finding,
            ..
        } in findings
        {
            let touches = finding.range.start.line <= params.range.end.line
                && params.range.start.line <= finding.range.end.line;
            let Some(suggestion) = finding
                .data
                .as_ref()
                .and_then(|d| d.get("suggestion"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            if !touches {
                continue;
            }
            let edit = TextEdit {
                range: finding.range,
                new_text: suggestion.to_owned(),
            };
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!("Strata: apply the suggested fix ({})", finding.message),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![finding.clone()]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(uri.clone(), vec![edit])])),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        let config = self
            .session
            .get()
            .map(|s| s.gateway.config())
            .unwrap_or_default();
        let (workflows, _) = workflow::workflows(&config);
        for wf in workflows {
            let title = if wf.name == "review-all" {
                "Strata: Review all (security, performance, style)".to_owned()
            } else {
                format!("Strata: workflow {}", wf.name)
            };
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: title.clone(),
                kind: Some(CodeActionKind::new(ASK)),
                command: Some(Command {
                    title,
                    command: RUN_WORKFLOW.to_owned(),
                    arguments: Some(vec![command_arguments(WorkflowArgs {
                        workflow: wf.name.clone(),
                        text_document: document.clone(),
                        range: Some(params.range),
                        query: None,
                    })]),
                }),
                ..Default::default()
            }));
        }
        let has_diagnostics = !params.context.diagnostics.is_empty();
        for agent in agents::declared(&config) {
            if !agent.in_code_actions || (agent.needs_diagnostics && !has_diagnostics) {
                continue;
            }
            let kind = match (agent.needs_diagnostics, agent.output) {
                (true, _) => CodeActionKind::QUICKFIX,
                (_, Output::Edit) => CodeActionKind::REFACTOR_REWRITE,
                _ => CodeActionKind::new(ASK),
            };
            let arguments = command_arguments(RunArgs {
                agent: agent.name.clone(),
                text_document: document.clone(),
                range: Some(params.range),
                query: None,
                diagnostics: if agent.needs_diagnostics {
                    params.context.diagnostics.clone()
                } else {
                    Vec::new()
                },
            });
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: agent.title.clone(),
                kind: Some(kind),
                diagnostics: agent
                    .needs_diagnostics
                    .then(|| params.context.diagnostics.clone()),
                command: Some(Command {
                    title: agent.title.clone(),
                    command: RUN_AGENT.to_owned(),
                    arguments: Some(vec![arguments]),
                }),
                ..Default::default()
            }));
        }
        actions
    }

    /// `strata.runWorkflow`: the workflow's steps as a DAG, then one document with every step's
    /// output (the last step's first). Answers once the run is started.
    pub async fn run_workflow(self: &Arc<Self>, args: WorkflowArgs) -> Result<RunStarted> {
        let session = self.session()?;
        let (workflows, problems) = workflow::workflows(&session.gateway.config());
        let Some(wf) = workflows.into_iter().find(|w| w.name == args.workflow) else {
            return Err(Error::invalid_params(format!(
                "no workflow named `{}`{}",
                args.workflow,
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", problems.join("; "))
                }
            )));
        };
        // Each step's agent replaces this placeholder.
        let placeholder = session
            .agent("explain")
            .or_else(|_| session.agents().into_iter().next().ok_or(()))
            .map_err(|_| Error::invalid_params("no agents are declared"))?;
        let task = self
            .task(
                &session,
                placeholder,
                &args.text_document,
                args.range,
                args.query.clone(),
                &[],
            )
            .await?;
        let label = Label::Workflow {
            name: wf.name.clone(),
        };
        let this = self.clone();
        Ok(self
            .runs
            .start(label, self.caps().progress, move |progress| {
                this.execute_workflow(session, wf, task, progress)
            }))
    }

    async fn execute_workflow(
        self: Arc<Self>,
        session: Session,
        wf: workflow::Workflow,
        task: Task,
        progress: Progress,
    ) -> std::result::Result<RunResult, String> {
        let key = task.key.clone();
        let report = session
            .run_workflow(&wf, task, |step| progress.step(step))
            .await;
        let rel = session.locate(&key).0;
        let path = session.write_answer(
            &wf.name,
            &format!("Workflow {}", wf.name),
            &rel,
            &report.text,
        )?;
        let shown = self.show_document(&path).await;
        Ok(RunResult::Workflow(RunWorkflowResult {
            workflow: wf.name,
            steps: Some(
                report
                    .results
                    .iter()
                    .map(|(id, step)| (id.clone(), step.into()))
                    .collect(),
            ),
            path: Some(path_string(&path)),
            shown: Some(shown),
            ..Default::default()
        }))
    }

    /// `run` again, boxed: a run may offer to start itself over.
    fn rerun(
        self: Arc<Self>,
        args: RunArgs,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let agent = args.agent.clone();
            if let Err(e) = self.run(args).await {
                self.client.show_message(
                    MessageType::ERROR,
                    format!("Strata {agent}: cannot run it again: {}", e.message),
                );
            }
        })
    }

    /// `strata.runAgent`: answers once the run is started; `runs.rs` says how it ended.
    pub async fn run(self: &Arc<Self>, args: RunArgs) -> Result<RunStarted> {
        let session = self.session()?;
        let agent = session.agent(&args.agent).map_err(Error::invalid_params)?;
        let task = self
            .task(
                &session,
                agent.clone(),
                &args.text_document,
                args.range,
                args.query.clone(),
                &args.diagnostics,
            )
            .await?;
        let label = Label::Agent {
            name: agent.name.clone(),
            title: agent.title.clone(),
            target: target_words(&task),
            inserts: agent.placement == Placement::InsertAfter,
        };
        let this = self.clone();
        Ok(self
            .runs
            .start(label, self.caps().progress, move |progress| async move {
                this.execute(session, agent, args, task, progress)
                    .await
                    .map(RunResult::Agent)
            }))
    }

    async fn execute(
        self: Arc<Self>,
        session: Session,
        agent: Agent,
        args: RunArgs,
        task: Task,
        progress: Progress,
    ) -> std::result::Result<RunAgentResult, String> {
        progress.report("assembling context");
        if agent.output == Output::Chat {
            return self.chat(session, agent, task, progress).await;
        }
        let uri = args.text_document.uri.clone();
        let text = task.parsed.text.clone();
        let failed = |message: String| {
            Ok(RunAgentResult {
                error: Some(message),
                ..ran(&agent)
            })
        };
        let prepared = match session.prepare_async(task).await {
            Ok(prepared) => prepared,
            Err(message) => return failed(message),
        };
        let answer = match session
            .call(prepared.request.clone(), |step| progress.step(step))
            .await
        {
            Ok(answer) => answer,
            Err(message) => return failed(message),
        };
        let outcome = match session.outcome(&agent, &prepared, &answer).await {
            Ok(outcome) => outcome,
            Err(message) => return failed(message),
        };
        match outcome {
            Outcome::Edit { code } => {
                let result = self
                    .apply(
                        &session,
                        &uri,
                        prepared.target.clone(),
                        &prepared.selection,
                        &agent,
                        code,
                    )
                    .await;
                if result.conflict {
                    // Offer the run again, on the code as it is now.
                    let message = format!(
                        "{} — the code changed while the model was answering, so the edit was not applied. Run it again?",
                        agent.title
                    );
                    let (this, again) = (self.clone(), args.clone());
                    tokio::spawn(async move {
                        let choice = this
                            .client
                            .show_message_request(
                                MessageType::WARNING,
                                message,
                                Some(vec![MessageActionItem {
                                    title: "Run again".into(),
                                    properties: HashMap::new(),
                                }]),
                            )
                            .await;
                        if let Ok(Some(item)) = choice
                            && item.title == "Run again"
                        {
                            this.rerun(again).await;
                        }
                    });
                }
                Ok(result)
            }
            Outcome::Document { text } => {
                let path = session.write_answer(&agent.name, &agent.title, &prepared.rel, &text)?;
                let shown = self.show_document(&path).await;
                Ok(RunAgentResult {
                    output: Some(AgentOutput::Document),
                    path: Some(path_string(&path)),
                    shown: Some(shown),
                    source: Some(answer.source.into()),
                    provider: Some(answer.provider),
                    ..ran(&agent)
                })
            }
            Outcome::Unparsable { reason, document } => {
                // Not applied; the user can still read what was proposed, and why not.
                let title = format!("{} — not applied", agent.title);
                let path = session.write_answer(&agent.name, &title, &prepared.rel, &document)?;
                let shown = self.show_document(&path).await;
                Ok(RunAgentResult {
                    path: Some(path_string(&path)),
                    shown: Some(shown),
                    error: Some(reason),
                    ..ran(&agent)
                })
            }
            Outcome::Findings(findings) => {
                let encoding = self.encoding();
                let first_line = text.byte_to_line(prepared.target.start) as u32;
                let kept: Vec<Finding> = findings
                    .iter()
                    .map(|f| {
                        let line = (first_line + f.line - 1)
                            .min(text.len_lines().saturating_sub(1) as u32);
                        let start = text.line_to_byte(line as usize);
                        let end = line_end(&text, line as usize);
                        let severity = match f.severity.as_str() {
                            "error" => DiagnosticSeverity::ERROR,
                            "information" | "info" => DiagnosticSeverity::INFORMATION,
                            "hint" => DiagnosticSeverity::HINT,
                            _ => DiagnosticSeverity::WARNING,
                        };
                        let diagnostic = Diagnostic {
                            range: to_range(&text, start..end, encoding),
                            severity: Some(severity),
                            source: Some("strata".into()),
                            message: f.message.clone(),
                            data: f.suggestion.as_ref().map(|s| json!({"suggestion": s})),
                            ..Default::default()
                        };
                        Finding {
                            diagnostic,
                            line: text.byte_slice(start..end).to_string(),
                        }
                    })
                    .collect();
                let published: Vec<Diagnostic> =
                    kept.iter().map(|f| f.diagnostic.clone()).collect();
                lock(&self.findings).insert(uri.as_str().to_owned(), kept);
                self.client
                    .publish_diagnostics(uri.clone(), published.clone(), None);
                Ok(RunAgentResult {
                    output: Some(AgentOutput::Diagnostics),
                    findings: Some(published.len()),
                    ..ran(&agent)
                })
            }
        }
    }

    /// Whether review findings are published for `uri` (so edits to it must move them).
    pub fn has_findings(&self, uri: &Uri) -> bool {
        lock(&self.findings)
            .get(uri.as_str())
            .is_some_and(|f| !f.is_empty())
    }

    /// Moves the document's review findings through `edits` (in order, each in the coordinates
    /// the one before left, as `didChange` sends them), drops each whose line no longer reads as
    /// it did, and publishes what is left when anything changed. `text` is the document after the
    /// edits.
    pub fn follow_edits(&self, uri: &Uri, edits: &[LineEdit], text: &Rope) {
        let published = {
            let mut all = lock(&self.findings);
            let Some(findings) = all.get_mut(uri.as_str()) else {
                return;
            };
            let before = findings.len();
            let mut moved = false;
            findings.retain_mut(|f| {
                let range = &mut f.diagnostic.range;
                let Some(line) = edits
                    .iter()
                    .try_fold(range.start.line, |line, edit| edit.follow(line))
                else {
                    return false;
                };
                if (line as usize) >= text.len_lines() {
                    return false;
                }
                let now = text.line_to_byte(line as usize)..line_end(text, line as usize);
                if text.byte_slice(now) != f.line.as_str() {
                    return false;
                }
                if line != range.start.line {
                    range.end.line = line + (range.end.line - range.start.line);
                    range.start.line = line;
                    moved = true;
                }
                true
            });
            if findings.len() == before && !moved {
                return;
            }
            findings.iter().map(|f| f.diagnostic.clone()).collect()
        };
        self.client
            .publish_diagnostics(uri.clone(), published, None);
    }

    /// `strata.newChat`: a new chat file under the data directory, opened in the editor.
    pub async fn new_chat(&self) -> Result<NewChatResult> {
        let dir = data_dir().join("chats");
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = dir.join(format!("chat-{stamp}.strata.md"));
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, CHAT_TEMPLATE))
            .map_err(|e| internal(format!("cannot create {}: {e}", path.display())))?;
        let shown = self.show_document(&path).await;
        if !shown {
            self.client.show_message(
                MessageType::INFO,
                format!("Strata: a new chat is in {}", path.display()),
            );
        }
        let uri = Uri::from_file_path(&path).map(|u| u.as_str().to_owned());
        Ok(NewChatResult {
            path: path_string(&path),
            uri,
            shown,
        })
    }

    /// A chat turn (the session builds it), its answer appended to the file.
    async fn chat(
        &self,
        session: Session,
        agent: Agent,
        task: Task,
        progress: Progress,
    ) -> std::result::Result<RunAgentResult, String> {
        let key = task.key.clone();
        let failed = |message: String| {
            Ok(RunAgentResult {
                error: Some(message),
                ..ran(&agent)
            })
        };
        let turn = match session
            .chat_turn(&agent, &key, task.parsed, true, |step| progress.step(step))
            .await
        {
            Ok(turn) => turn,
            Err(message) => return failed(message),
        };
        let answer = match session
            .call(turn.prepared.request, |step| progress.step(step))
            .await
        {
            Ok(answer) => answer,
            Err(message) => return failed(message),
        };
        let saved = session.record_turn(&key, &turn.message, &answer.text);
        if let Err(e) = &saved {
            tracing::error!("chat history: {e}");
        }
        // Appended at the end of the file as it is now (the user may have typed meanwhile).
        let Some(current) = session.store.entry(&key) else {
            return Ok(RunAgentResult {
                applied: Some(false),
                error: Some("the chat file was closed".into()),
                ..ran(&agent)
            });
        };
        let uri: Uri = key.parse().map_err(|_| format!("not a URI: {key}"))?;
        let end = current.text.len_bytes();
        let tail = current.text.to_string();
        let lead = if tail.ends_with("\n\n") {
            ""
        } else if tail.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        let edit = TextEdit {
            range: to_range(&current.text, end..end, self.encoding()),
            new_text: format!(
                "{lead}## Strata\n\n{}\n\n## You\n\n",
                answer.text.trim_end()
            ),
        };
        let applied = self
            .client
            .apply_edit(WorkspaceEdit {
                document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri,
                        version: Some(current.version),
                    },
                    edits: vec![OneOf::Left(edit)],
                }])),
                ..Default::default()
            })
            .await;
        let refused = match applied {
            Ok(response) if response.applied => None,
            Ok(response) => Some(
                response
                    .failure_reason
                    .unwrap_or_else(|| "the editor refused to add the answer".into()),
            ),
            Err(e) => Some(e.to_string()),
        };
        // Every turn goes to the archive, so the conversation can be searched like the code.
        let mut whole = current.text.clone();
        let at = whole.len_chars();
        whole.insert(
            at,
            &format!("{lead}## Strata\n\n{}\n", answer.text.trim_end()),
        );
        session.index_chat(&key, whole);
        Ok(RunAgentResult {
            output: Some(AgentOutput::Chat),
            applied: Some(refused.is_none()),
            saved: Some(saved.is_ok()),
            error: refused,
            ..ran(&agent)
        })
    }

    /// Applies an edit answer, unless the user changed the target meanwhile.
    async fn apply(
        &self,
        session: &Session,
        uri: &Uri,
        target: Bytes<usize>,
        selection: &str,
        agent: &Agent,
        code: String,
    ) -> RunAgentResult {
        let encoding = self.encoding();
        let Some(now) = session.store.entry(uri.as_str()) else {
            return RunAgentResult {
                applied: Some(false),
                error: Some("the document was closed".into()),
                ..ran(agent)
            };
        };
        // The target, found again in the current text: where it was, or moved by edits
        // elsewhere; not when its own text changed.
        let here = if now.text.len_bytes() >= target.end
            && now.text.byte_slice(target.clone()) == selection
        {
            Some(target.clone())
        } else {
            let current = now.text.to_string();
            let found: Vec<usize> = current.match_indices(selection).map(|(i, _)| i).collect();
            (found.len() == 1 && !selection.is_empty())
                .then(|| found[0]..found[0] + selection.len())
        };
        let Some(here) = here else {
            return RunAgentResult {
                applied: Some(false),
                conflict: true,
                ..ran(agent)
            };
        };
        let (range, new_text) = match agent.placement {
            Placement::Replace => (here.clone(), code),
            Placement::InsertAfter => (here.end..here.end, code),
        };
        let edit = TextEdit {
            range: to_range(&now.text, range, encoding),
            new_text,
        };
        let workspace_edit = WorkspaceEdit {
            document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: Some(now.version),
                },
                edits: vec![OneOf::Left(edit)],
            }])),
            ..Default::default()
        };
        match self.client.apply_edit(workspace_edit).await {
            Ok(response) if response.applied => RunAgentResult {
                output: Some(AgentOutput::Edit),
                applied: Some(true),
                version: Some(now.version),
                ..ran(agent)
            },
            Ok(response) => RunAgentResult {
                applied: Some(false),
                error: Some(
                    response
                        .failure_reason
                        .unwrap_or_else(|| "the editor refused the edit".into()),
                ),
                ..ran(agent)
            },
            Err(e) => RunAgentResult {
                applied: Some(false),
                error: Some(e.to_string()),
                ..ran(agent)
            },
        }
    }

    /// Opens a file in the editor (`window/showDocument`); false when the client cannot (the
    /// caller names the file).
    async fn show_document(&self, path: &std::path::Path) -> bool {
        let uri = Uri::from_file_path(path);
        if self.caps().show_document
            && let Some(uri) = uri
        {
            let params = ShowDocumentParams {
                uri,
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            };
            if let Ok(true) = self.client.show_document(params).await {
                return true;
            }
        }
        false
    }
}

/// What a run works on, in words for the line that says how it ended: the item(s) the target
/// holds or lies in ("`add`", "`add` and `sub`"), else its lines.
fn target_words(task: &Task) -> String {
    let target = &task.target;
    let named =
        |kind: ChunkKind| !matches!(kind, ChunkKind::Group | ChunkKind::Part | ChunkKind::Window);
    let chunks = task.parsed.chunks.to_vec();
    let inside =
        |c: &crate::chunks::Chunk| target.start <= c.range.start && c.range.end <= target.end;
    // Whole items in the target, not those inside another one there.
    let whole: Vec<&str> = chunks
        .iter()
        .filter(|c| named(c.kind) && inside(c))
        .filter(|c| {
            !c.parent
                .is_some_and(|p| chunks.get(p).is_some_and(|p| inside(p) && named(p.kind)))
        })
        .map(|c| &*c.name)
        .collect();
    match whole.as_slice() {
        [one] => return format!("`{one}`"),
        [one, two] => return format!("`{one}` and `{two}`"),
        [] => {}
        more => return format!("{} items", more.len()),
    }
    // Else the innermost item the target lies in.
    let around = chunks
        .iter()
        .filter(|c| named(c.kind) && c.range.start <= target.start && target.end <= c.range.end)
        .min_by_key(|c| c.range.len());
    if let Some(chunk) = around {
        return format!("`{}`", chunk.name);
    }
    let text = &task.parsed.text;
    let first = text.byte_to_line(target.start.min(text.len_bytes())) + 1;
    let last = text.byte_to_line(
        target
            .end
            .saturating_sub(1)
            .max(target.start)
            .min(text.len_bytes()),
    ) + 1;
    if first == last {
        format!("line {first}")
    } else {
        format!("lines {first}–{last}")
    }
}

/// A command's arguments as a code action carries them.
fn command_arguments(args: impl serde::Serialize) -> Value {
    serde_json::to_value(args).unwrap_or_else(|e| {
        tracing::error!("encoding command arguments: {e}");
        Value::Null
    })
}

/// A run's result with nothing in it yet but the agent's name.
fn ran(agent: &Agent) -> RunAgentResult {
    RunAgentResult {
        agent: agent.name.clone(),
        ..Default::default()
    }
}

fn line_end(text: &Rope, line: usize) -> usize {
    let slice = text.line(line);
    let mut end = text.line_to_byte(line) + slice.len_bytes();
    let s = slice.to_string();
    end -= s.len() - s.trim_end_matches(['\n', '\r']).len();
    end
}

fn internal(message: impl Into<String>) -> Error {
    Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
        message: message.into().into(),
        data: None,
    }
}
