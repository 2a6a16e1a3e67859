//! Agents at the protocol edge: the code actions that offer them (no model involved), and
//! `workspace/executeCommand strata.runAgent`, which assembles context, calls the gateway with
//! `$/progress` (cancellable, as is the request itself), and turns the answer into what the
//! agent's output says — one `workspace/applyEdit` against the version the run started from, a
//! markdown answer opened with `window/showDocument`, or diagnostics with fixes.

use std::collections::HashMap;
use std::ops::Range as Bytes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use ropey::Rope;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_lsp_server::Client;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use super::packs::{Packs, Want};
use super::position::{Encoding, to_byte_clamped, to_range};
use crate::agents::history::{CHAT_TEMPLATE, History, data_dir, pending_message};
use crate::agents::workflow::{self, StepResult};
use crate::agents::{self, Agent, Inputs, Output, Placement};
use crate::context::Message as ContextMessage;
use crate::context::{Budgets, Diagnostic as ContextDiagnostic};
use crate::documents::DocumentStore;
use crate::llm::{CallRequest, Event, Gateway, Priority, Status};

pub const RUN_AGENT: &str = "strata.runAgent";
pub const RUN_WORKFLOW: &str = "strata.runWorkflow";

/// Arguments of `strata.runWorkflow`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowArgs {
    pub workflow: String,
    pub text_document: TextDocumentIdentifier,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub query: Option<String>,
}

/// Arguments of `strata.runAgent`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunArgs {
    pub agent: String,
    pub text_document: TextDocumentIdentifier,
    #[serde(default)]
    pub range: Option<Range>,
    #[serde(default)]
    pub query: Option<String>,
    /// The editor's diagnostics in the range (code actions pass them on for `fix`).
    #[serde(default)]
    pub diagnostics: Vec<Diagnostic>,
}

/// What the client can do, from `initialize`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientCaps {
    pub progress: bool,
    pub show_document: bool,
}

/// Runs agents for the server; cheap to share.
pub struct Agents {
    pub client: Client,
    pub store: Arc<DocumentStore>,
    pub gateway: Gateway,
    pub packs: Arc<OnceLock<Packs>>,
    pub caps: OnceLock<ClientCaps>,
    pub encoding: OnceLock<Encoding>,
    /// Where answers are written (`<cache>/answers`).
    pub answers: OnceLock<PathBuf>,
    /// Runs in progress, by progress token, to cancel from `window/workDoneProgress/cancel`.
    running: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Review findings published per document, for their code actions.
    findings: Mutex<HashMap<String, Vec<Diagnostic>>>,
    next_token: AtomicU64,
    /// The chat history, opened on the first chat turn.
    history: OnceLock<Arc<History>>,
}

/// The workspace-relative path of a document, for file names and headings.
fn packs_rel(agents: &Agents, uri: &Uri) -> String {
    agents
        .packs
        .get()
        .map_or_else(|| uri.as_str().to_owned(), |p| p.locate(uri).0)
}

/// A request ready for the gateway, with the document's relative path and the target's text.
struct Prepared {
    request: CallRequest,
    rel: String,
    selection: String,
}

/// Chat turns sent verbatim; older ones go as a summary.
const RECENT_TURNS: usize = 6;
pub const NEW_CHAT: &str = "strata.newChat";

/// Aborts a spawned run when the request that started it is dropped ($/cancelRequest).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Agents {
    pub fn new(
        client: Client,
        store: Arc<DocumentStore>,
        gateway: Gateway,
        packs: Arc<OnceLock<Packs>>,
    ) -> Agents {
        Agents {
            client,
            store,
            gateway,
            packs,
            caps: OnceLock::new(),
            encoding: OnceLock::new(),
            answers: OnceLock::new(),
            running: Mutex::new(HashMap::new()),
            findings: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
            history: OnceLock::new(),
        }
    }

    fn encoding(&self) -> Encoding {
        *self.encoding.get().unwrap_or(&Encoding::Utf16)
    }

    /// The agents on offer at a place, as code actions; no model is involved.
    pub fn code_actions(&self, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
        let uri = &params.text_document.uri;
        let mut actions = Vec::new();
        if uri.as_str().ends_with(".strata.md") {
            let arguments = json!({"agent": "chat", "textDocument": {"uri": uri}});
            return vec![CodeActionOrCommand::CodeAction(CodeAction {
                title: "Strata: send".into(),
                kind: Some(CodeActionKind::new("source.strata")),
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
        for finding in findings {
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
        let (workflows, _) = workflow::workflows(&self.gateway.config());
        for wf in workflows {
            let title = if wf.name == "review-all" {
                "Strata: Review all (security, performance, style)".to_owned()
            } else {
                format!("Strata: workflow {}", wf.name)
            };
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: title.clone(),
                kind: Some(CodeActionKind::new("source.strata")),
                command: Some(Command {
                    title,
                    command: RUN_WORKFLOW.to_owned(),
                    arguments: Some(vec![json!({
                        "workflow": wf.name, "textDocument": {"uri": uri}, "range": params.range,
                    })]),
                }),
                ..Default::default()
            }));
        }
        let has_diagnostics = !params.context.diagnostics.is_empty();
        for agent in agents::declared(&self.gateway.config()) {
            if !agent.in_code_actions || (agent.needs_diagnostics && !has_diagnostics) {
                continue;
            }
            let kind = match (agent.needs_diagnostics, agent.output) {
                (true, _) => CodeActionKind::QUICKFIX,
                (_, Output::Edit) => CodeActionKind::REFACTOR_REWRITE,
                _ => CodeActionKind::new("source.strata"),
            };
            let arguments = json!({
                "agent": agent.name,
                "textDocument": {"uri": uri},
                "range": params.range,
                "diagnostics": if agent.needs_diagnostics { json!(params.context.diagnostics) } else { json!([]) },
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
    /// output (the last step's first).
    pub async fn run_workflow(self: &Arc<Self>, args: WorkflowArgs) -> Result<Value> {
        let config = self.gateway.config();
        let (workflows, problems) = workflow::workflows(&config);
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
        let this = self.clone();
        self.supervise("workflow", move |token| async move {
            this.execute_workflow(wf, args, token).await
        })
        .await
    }

    /// Runs `work` as a task of its own under a fresh progress token: cancelled when the
    /// request is (the future is dropped) or when the client cancels the token's progress.
    async fn supervise<F, Fut>(&self, what: &str, work: F) -> Result<Value>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<Value>> + Send + 'static,
    {
        let token = format!(
            "strata-{what}-{}",
            self.next_token.fetch_add(1, Ordering::Relaxed)
        );
        let task = tokio::spawn(work(token.clone()));
        lock(&self.running).insert(token.clone(), task.abort_handle());
        let guard = AbortOnDrop(task.abort_handle());
        let outcome = task.await;
        drop(guard);
        lock(&self.running).remove(&token);
        match outcome {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => Ok(json!({"cancelled": true})),
            Err(e) => Err(internal(format!("the {what} failed: {e}"))),
        }
    }

    async fn execute_workflow(
        self: Arc<Self>,
        wf: workflow::Workflow,
        args: WorkflowArgs,
        token: String,
    ) -> Result<Value> {
        let uri = args.text_document.uri.clone();
        let parsed = super::parsed(&self.store, &uri).await?;
        let packs = self
            .packs
            .get()
            .cloned()
            .ok_or_else(|| Error::invalid_params("the server is not initialized"))?;
        let target = target(&parsed, args.range, self.encoding());
        let progress = Progress::begin(&self, &token, &format!("Strata: {}", wf.name)).await;
        let declared = agents::declared(&self.gateway.config());
        let run_args = RunArgs {
            agent: String::new(),
            text_document: args.text_document.clone(),
            range: args.range,
            query: args.query.clone(),
            diagnostics: Vec::new(),
        };
        let (this, progress_ref, declared_ref, run_args_ref) =
            (&self, &progress, &declared, &run_args);
        let results = workflow::run(&wf, |step, inputs| {
            let (packs, parsed, target) = (packs.clone(), parsed.clone(), target.clone());
            async move {
                let agent = declared_ref
                    .iter()
                    .find(|a| a.name == step.agent)
                    .ok_or_else(|| format!("no agent named `{}`", step.agent))?;
                progress_ref.report(&format!("{}: running", step.id)).await;
                let steps: String = inputs
                    .iter()
                    .map(|(id, out)| format!("### {id}\n\n{out}\n\n"))
                    .collect();
                let prepared = this
                    .prepare(agent, run_args_ref, &parsed, packs, target, &steps)
                    .await
                    .map_err(|e| e.message.to_string())??;
                let answer = this.stream(prepared.request, progress_ref).await?;
                progress_ref.report(&format!("{}: done", step.id)).await;
                Ok(answer.text)
            }
        })
        .await;
        let rel = packs_rel(&self, &uri);
        let mut report = String::new();
        for step in wf.steps.iter().rev() {
            match results.get(&step.id) {
                Some(StepResult::Done { output }) => {
                    report.push_str(&format!("## {}\n\n{}\n\n", step.id, output.trim_end()))
                }
                Some(StepResult::Failed { error }) => {
                    report.push_str(&format!("## {}\n\nFailed: {error}\n\n", step.id))
                }
                Some(StepResult::Skipped { because }) => {
                    report.push_str(&format!("## {}\n\nNot run: {because}\n\n", step.id))
                }
                None => {}
            }
        }
        let path = self.write_answer(&wf.name, &format!("Workflow {}", wf.name), &rel, &report)?;
        let shown = self.open(&path, "the answer is in").await;
        let done = results
            .values()
            .filter(|r| matches!(r, StepResult::Done { .. }))
            .count();
        progress
            .end(&format!("{done} of {} steps done", wf.steps.len()))
            .await;
        Ok(json!({"workflow": wf.name, "steps": results, "path": path, "shown": shown}))
    }

    /// `run` again, boxed: a run may offer to start itself over.
    fn rerun(
        self: Arc<Self>,
        args: RunArgs,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let _ = self.run(args).await;
        })
    }

    /// `window/workDoneProgress/cancel`: stops the run behind the token.
    pub fn cancel(&self, token: &ProgressToken) {
        let key = token_key(token);
        if let Some(handle) = lock(&self.running).remove(&key) {
            handle.abort();
        }
    }

    /// `strata.runAgent`: runs to the end (or until cancelled) and says what happened.
    pub async fn run(self: &Arc<Self>, args: RunArgs) -> Result<Value> {
        let config = self.gateway.config();
        let agent = agents::declared(&config)
            .into_iter()
            .find(|a| a.name == args.agent)
            .ok_or_else(|| Error::invalid_params(format!("no agent named `{}`", args.agent)))?;
        let this = self.clone();
        self.supervise("agent", move |token| async move {
            this.execute(agent, args, token).await
        })
        .await
    }

    async fn execute(self: Arc<Self>, agent: Agent, args: RunArgs, token: String) -> Result<Value> {
        let uri = args.text_document.uri.clone();
        let parsed = super::parsed(&self.store, &uri).await?;
        let packs = self
            .packs
            .get()
            .cloned()
            .ok_or_else(|| Error::invalid_params("the server is not initialized"))?;
        let encoding = self.encoding();
        let text = parsed.text.clone();
        let target = target(&parsed, args.range, encoding);
        let progress = Progress::begin(&self, &token, &agent.title).await;
        progress.report("assembling context").await;
        if agent.output == Output::Chat {
            return self.chat(agent, uri, parsed, packs, progress).await;
        }
        let Prepared {
            request,
            rel,
            selection,
        } = match self
            .prepare(&agent, &args, &parsed, packs, target.clone(), "")
            .await?
        {
            Ok(prepared) => prepared,
            Err(message) => {
                progress.end(&message).await;
                self.show(MessageType::WARNING, format!("Strata: {message}"));
                return Ok(json!({"agent": agent.name, "error": message}));
            }
        };

        let answer = match self.stream(request.clone(), &progress).await {
            Ok(answer) => answer,
            Err(message) => return Ok(self.failed(&agent, &progress, message).await),
        };
        match agent.output {
            Output::Edit => {
                let Some(code) = agents::edit_text(&agent, &answer.text) else {
                    // Not worth keeping: the next run asks again.
                    self.gateway.forget(&request);
                    let message =
                        "the model's answer held no complete code block; nothing was changed"
                            .to_owned();
                    return Ok(self.failed(&agent, &progress, message).await);
                };
                let result = self.apply(&uri, target, &selection, &agent, code).await;
                if result["conflict"] == true {
                    // Offer the run again, on the code as it is now.
                    let message = format!(
                        "Strata {}: the code changed while the model was answering, so the edit was not applied. Run it again?",
                        agent.name
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
                progress
                    .end(if result["applied"] == true {
                        "applied"
                    } else {
                        "not applied"
                    })
                    .await;
                Ok(result)
            }
            Output::Document | Output::Chat => {
                let text = agents::document_text(&agent, &answer.text);
                let path = self.write_answer(&agent.name, &agent.title, &rel, &text)?;
                let shown = self.open(&path, "the answer is in").await;
                progress.end("done").await;
                Ok(
                    json!({"agent": agent.name, "output": "document", "path": path, "shown": shown,
                          "source": answer.source, "provider": answer.provider}),
                )
            }
            Output::Diagnostics => {
                let findings = agents::findings(&answer.text);
                let first_line = text.byte_to_line(target.start) as u32;
                let published: Vec<Diagnostic> = findings
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
                        Diagnostic {
                            range: to_range(&text, start..end, encoding),
                            severity: Some(severity),
                            source: Some("strata".into()),
                            message: f.message.clone(),
                            data: f.suggestion.as_ref().map(|s| json!({"suggestion": s})),
                            ..Default::default()
                        }
                    })
                    .collect();
                lock(&self.findings).insert(uri.as_str().to_owned(), published.clone());
                self.client
                    .publish_diagnostics(uri.clone(), published.clone(), None)
                    .await;
                progress.end(&format!("{} findings", published.len())).await;
                Ok(
                    json!({"agent": agent.name, "output": "diagnostics", "findings": published.len()}),
                )
            }
        }
    }

    /// The model request for an agent at a place: context pack, rendered prompt, what goes out.
    /// `Ok(Err(..))` when the document may not be sent.
    async fn prepare(
        &self,
        agent: &Agent,
        args: &RunArgs,
        parsed: &Arc<crate::documents::Parsed>,
        packs: Packs,
        target: Bytes<usize>,
        steps: &str,
    ) -> Result<std::result::Result<Prepared, String>> {
        let uri = args.text_document.uri.clone();
        let encoding = self.encoding();
        let text = parsed.text.clone();
        let packs_withheld = packs.locate(&uri).1;
        let diagnostics: Vec<String> = args
            .diagnostics
            .iter()
            .map(|d| {
                format!(
                    "line {}: {}{}",
                    d.range.start.line + 1,
                    d.message,
                    d.code
                        .as_ref()
                        .map(|c| match c {
                            NumberOrString::Number(n) => format!(" ({n})"),
                            NumberOrString::String(s) => format!(" ({s})"),
                        })
                        .unwrap_or_default()
                )
            })
            .collect();
        let context_diagnostics: Vec<ContextDiagnostic> = args
            .diagnostics
            .iter()
            .map(|d| ContextDiagnostic {
                range: to_byte_clamped(&text, d.range.start, encoding)
                    ..to_byte_clamped(&text, d.range.end, encoding),
                severity: "error".into(),
                message: d.message.clone(),
            })
            .collect();
        let budgets = Budgets::resolve(agent.budgets, self.gateway.config().context.tiers());
        let (pack_uri, pack_parsed, pack_target, query) = (
            uri.clone(),
            parsed.clone(),
            target.clone(),
            args.query.clone(),
        );
        let (pack, rel) = tokio::task::spawn_blocking(move || {
            packs.pack(
                &pack_uri,
                &pack_parsed,
                Want {
                    selection: pack_target,
                    query: query.as_deref(),
                    diagnostics: &context_diagnostics,
                    budgets,
                    ..Want::default()
                },
            )
        })
        .await
        .map_err(|e| internal(format!("assembling context: {e}")))?;
        if packs_withheld {
            return Ok(Err(format!(
                "{rel} is ignored or looks like a secrets file, so none of it is sent to a model"
            )));
        }
        let selection = text.byte_slice(target.clone()).to_string();
        let rendered = pack.render();
        let language = parsed.language.map_or("text", |l| l.name());
        let inputs = Inputs {
            path: &rel,
            language,
            selection: &selection,
            context: &rendered,
            question: args.query.as_deref(),
            diagnostics: &diagnostics,
            steps,
        };
        let request = agents::call_request(agent, &inputs, &pack, Priority::OnDemand);
        Ok(Ok(Prepared {
            request,
            rel,
            selection,
        }))
    }

    fn history(&self) -> std::result::Result<Arc<History>, String> {
        if let Some(h) = self.history.get() {
            return Ok(h.clone());
        }
        let opened = Arc::new(History::open(&data_dir())?);
        Ok(self.history.get_or_init(|| opened).clone())
    }

    /// `strata.newChat`: a new chat file under the data directory, opened in the editor.
    pub async fn new_chat(&self) -> Result<Value> {
        let dir = data_dir().join("chats");
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = dir.join(format!("chat-{stamp}.strata.md"));
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, CHAT_TEMPLATE))
            .map_err(|e| internal(format!("cannot create {}: {e}", path.display())))?;
        let shown = self.open(&path, "a new chat is in").await;
        let uri = Uri::from_file_path(&path).map(|u| u.as_str().to_owned());
        Ok(json!({"path": path, "uri": uri, "shown": shown}))
    }

    /// A chat turn: the message below the last `## You`, the history of the chat (older turns
    /// summarised), context from the workspace; the answer appended to the file.
    async fn chat(
        &self,
        agent: Agent,
        uri: Uri,
        parsed: Arc<crate::documents::Parsed>,
        packs: Packs,
        progress: Progress,
    ) -> Result<Value> {
        let text = parsed.text.to_string();
        let Some(message) = pending_message(&text) else {
            let error = "write your message below the last “## You”, then send".to_owned();
            return Ok(self.failed(&agent, &progress, error).await);
        };
        let history = match self.history() {
            Ok(h) => h,
            Err(e) => {
                let error = format!("the chat history cannot be opened: {e}");
                return Ok(self.failed(&agent, &progress, error).await);
            }
        };
        let session = uri.as_str().to_owned();
        let turns = history.turns(&session);
        // The last turns go verbatim; older ones as a summary, made (and cached) when needed.
        let keep = turns.len().saturating_sub(RECENT_TURNS);
        let (older, recent) = turns.split_at(keep);
        let mut summary = history.summary(&session).map(|(s, _)| s);
        if let Some(last) = older.last()
            && history
                .summary(&session)
                .is_none_or(|(_, upto)| upto < last.id)
        {
            progress.report("summarizing earlier turns").await;
            let summarizer = agents::declared(&self.gateway.config())
                .into_iter()
                .find(|a| a.name == "summarize");
            if let Some(summarizer) = summarizer {
                let transcript: String = summary
                    .iter()
                    .map(|s| format!("Summary so far:\n{s}\n\n"))
                    .chain(
                        older
                            .iter()
                            .map(|t| format!("{}: {}\n\n", t.role, t.content)),
                    )
                    .collect();
                let inputs = Inputs {
                    context: &transcript,
                    ..Inputs::default()
                };
                let mut request = CallRequest::new(
                    "summarize",
                    Priority::Background,
                    agents::prompt(&summarizer, &inputs),
                );
                request.template_version = agents::template_version(&summarizer);
                if let Ok(answer) = self.stream(request, &progress).await {
                    let _ = history.set_summary(&session, &answer.text, last.id);
                    summary = Some(answer.text);
                }
            }
        }
        let conversation: Vec<ContextMessage> = recent
            .iter()
            .map(|t| ContextMessage {
                role: t.role.clone(),
                text: t.content.clone(),
            })
            .collect();
        let end = parsed.text.len_bytes();
        let budgets = Budgets::resolve(agent.budgets, self.gateway.config().context.tiers());
        let query = message.clone();
        let (pack_uri, pack_parsed, pack_summary) = (uri.clone(), parsed.clone(), summary.clone());
        let (pack, rel) = tokio::task::spawn_blocking(move || {
            packs.pack(
                &pack_uri,
                &pack_parsed,
                Want {
                    selection: end..end,
                    query: Some(&query),
                    budgets,
                    conversation: &conversation,
                    summary: pack_summary.as_deref(),
                    ..Want::default()
                },
            )
        })
        .await
        .map_err(|e| internal(format!("assembling context: {e}")))?;
        let rendered = pack.render();
        let inputs = Inputs {
            path: &rel,
            language: "markdown",
            selection: "",
            context: &rendered,
            question: Some(&message),
            diagnostics: &[],
            steps: "",
        };
        let request = agents::call_request(&agent, &inputs, &pack, Priority::OnDemand);
        let answer = match self.stream(request, &progress).await {
            Ok(answer) => answer,
            Err(message) => return Ok(self.failed(&agent, &progress, message).await),
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let saved = history
            .add(&session, "user", &message, now_ms)
            .and_then(|_| history.add(&session, "assistant", &answer.text, now_ms));
        if let Err(e) = &saved {
            tracing::error!("chat history: {e}");
        }
        // Appended at the end of the file as it is now (the user may have typed meanwhile).
        let Some(current) = self.store.entry(uri.as_str()) else {
            return Ok(
                json!({"agent": agent.name, "applied": false, "error": "the chat file was closed"}),
            );
        };
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
                        uri: uri.clone(),
                        version: Some(current.version),
                    },
                    edits: vec![OneOf::Left(edit)],
                }])),
                ..Default::default()
            })
            .await
            .is_ok_and(|r| r.applied);
        // Every turn goes to the archive, so the conversation can be searched like the code.
        if let Some(archive) = self.packs.get().and_then(|p| p.archive.get().cloned()) {
            let name = uri.as_str().rsplit('/').next().unwrap_or("chat").to_owned();
            let mut whole = current.text.clone();
            let at = whole.len_chars();
            whole.insert(
                at,
                &format!("{lead}## Strata\n\n{}\n", answer.text.trim_end()),
            );
            tokio::task::spawn_blocking(move || {
                archive.index_note(&format!("strata-chats/{name}"), &whole)
            });
        }
        progress
            .end(if applied { "answered" } else { "not applied" })
            .await;
        Ok(
            json!({"agent": agent.name, "output": "chat", "applied": applied, "saved": saved.is_ok()}),
        )
    }

    /// Calls the gateway, reporting its progress; the whole answer, or why there is none.
    async fn stream(
        &self,
        request: CallRequest,
        progress: &Progress,
    ) -> std::result::Result<crate::llm::Answer, String> {
        let mut reply = self.gateway.call(request).map_err(|e| e.to_string())?;
        loop {
            match reply.next().await {
                Some(Event::Status(status)) => {
                    let what = match status {
                        Status::Queued => "queued".to_owned(),
                        Status::WaitingForLimit { provider } => {
                            format!("waiting for {provider}'s rate limit")
                        }
                        Status::Requesting { provider, .. } => format!("asking {provider}"),
                        Status::Retrying { provider, after_ms } => {
                            format!("{provider} failed; retrying in {} s", after_ms / 1000)
                        }
                        Status::Streaming { provider } => format!("{provider} is answering"),
                    };
                    progress.report(&what).await;
                }
                Some(Event::Text(_)) => {
                    progress
                        .report(&format!("streaming, {} pieces", reply.pieces()))
                        .await;
                }
                Some(Event::Done(answer)) => return Ok(answer),
                Some(Event::Failed(e)) => return Err(e.to_string()),
                None => return Err("cancelled".into()),
            }
        }
    }

    async fn failed(&self, agent: &Agent, progress: &Progress, message: String) -> Value {
        progress.end(&format!("failed: {message}")).await;
        self.show(
            MessageType::ERROR,
            format!("Strata {}: {message}", agent.name),
        );
        json!({"agent": agent.name, "error": message})
    }

    /// Applies an edit answer, unless the user changed the target meanwhile.
    async fn apply(
        &self,
        uri: &Uri,
        target: Bytes<usize>,
        selection: &str,
        agent: &Agent,
        code: String,
    ) -> Value {
        let encoding = self.encoding();
        let Some(now) = self.store.entry(uri.as_str()) else {
            return json!({"agent": agent.name, "applied": false, "error": "the document was closed"});
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
            return json!({"agent": agent.name, "applied": false, "conflict": true});
        };
        let (range, new_text) = match agent.placement {
            Placement::Replace => (here.clone(), code),
            Placement::InsertAfter => (here.end..here.end, format!("\n\n{code}")),
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
            Ok(response) if response.applied => {
                json!({"agent": agent.name, "output": "edit", "applied": true, "version": now.version})
            }
            Ok(response) => json!({"agent": agent.name, "applied": false,
                                   "error": response.failure_reason.unwrap_or_else(|| "the editor refused the edit".into())}),
            Err(e) => json!({"agent": agent.name, "applied": false, "error": e.to_string()}),
        }
    }

    /// Writes an answer under `<cache>/answers`, named by time, `name` and the document.
    fn write_answer(&self, name: &str, title: &str, rel: &str, text: &str) -> Result<PathBuf> {
        let dir = self
            .answers
            .get()
            .cloned()
            .unwrap_or_else(|| crate::archive::cache_base(None).join("answers"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| internal(format!("cannot write the answer to {}: {e}", dir.display())))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let file: String = rel
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let path = dir.join(format!("{stamp}-{name}-{file}.md"));
        let body = format!("# {title} — {rel}\n\n{text}\n");
        std::fs::write(&path, body)
            .map_err(|e| internal(format!("cannot write {}: {e}", path.display())))?;
        Ok(path)
    }

    /// Opens a file in the editor (`window/showDocument`), or names it when the client cannot.
    async fn open(&self, path: &std::path::Path, what: &str) -> bool {
        let caps = self.caps.get().copied().unwrap_or_default();
        let uri = Uri::from_file_path(path);
        if caps.show_document
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
        self.show(
            MessageType::INFO,
            format!("Strata: {what} {}", path.display()),
        );
        false
    }

    fn show(&self, typ: MessageType, message: String) {
        let client = self.client.clone();
        tokio::spawn(async move { client.show_message(typ, message).await });
    }
}

/// `$/progress` for one run, when the client supports it.
struct Progress {
    client: Client,
    token: Option<ProgressToken>,
}

impl Progress {
    async fn begin(agents: &Agents, token: &str, title: &str) -> Progress {
        let caps = agents.caps.get().copied().unwrap_or_default();
        if !caps.progress {
            return Progress {
                client: agents.client.clone(),
                token: None,
            };
        }
        let token = ProgressToken::String(token.to_owned());
        let created = agents
            .client
            .send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                token: token.clone(),
            })
            .await
            .is_ok();
        let progress = Progress {
            client: agents.client.clone(),
            token: created.then_some(token),
        };
        progress
            .send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_owned(),
                cancellable: Some(true),
                message: Some("starting".into()),
                percentage: None,
            }))
            .await;
        progress
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<notification::Progress>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }

    async fn report(&self, message: &str) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(true),
            message: Some(message.to_owned()),
            percentage: None,
        }))
        .await;
    }

    async fn end(&self, message: &str) {
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd {
            message: Some(message.to_owned()),
        }))
        .await;
    }
}

/// The bytes an agent works on: the selection, or the innermost chunk at the cursor (the whole
/// line when no chunk holds it).
fn target(
    parsed: &crate::documents::Parsed,
    range: Option<Range>,
    encoding: Encoding,
) -> Bytes<usize> {
    let text = &parsed.text;
    let (start, end) = match range {
        Some(r) => (
            to_byte_clamped(text, r.start, encoding),
            to_byte_clamped(text, r.end, encoding),
        ),
        None => (0, 0),
    };
    if start < end {
        return start..end;
    }
    let chunks = parsed.chunks.to_vec();
    chunks
        .iter()
        .filter(|c| c.range.start <= start && start <= c.range.end)
        .min_by_key(|c| c.range.len())
        .map(|c| c.range.clone())
        .unwrap_or_else(|| {
            let line = text.byte_to_line(start.min(text.len_bytes()));
            text.line_to_byte(line)..line_end(text, line)
        })
}

fn line_end(text: &Rope, line: usize) -> usize {
    let slice = text.line(line);
    let mut end = text.line_to_byte(line) + slice.len_bytes();
    let s = slice.to_string();
    end -= s.len() - s.trim_end_matches(['\n', '\r']).len();
    end
}

fn token_key(token: &ProgressToken) -> String {
    match token {
        ProgressToken::String(s) => s.clone(),
        ProgressToken::Number(n) => n.to_string(),
    }
}

fn internal(message: String) -> Error {
    Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::InternalError,
        message: message.into(),
        data: None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
