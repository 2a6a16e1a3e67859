//! Chat turns: the message below the last `## You` of a `*.strata.md` file, the conversation so
//! far from the history database (the last turns verbatim, older ones as a summary the
//! `summarize` agent writes and the history keeps), context from the workspace, and the request
//! for the chat agent. Recording a turn keeps it in the history and in the archive, so a
//! conversation can be searched like the code.

use std::future::Future;
use std::sync::Arc;

use super::agent::{Prepared, Step};
use super::{Session, packs::Want};
use crate::agents::history::pending_message;
use crate::agents::{self, Agent, Inputs};
use crate::context::Message as ContextMessage;
use crate::documents::Parsed;
use crate::llm::{CallRequest, Priority};

/// Chat turns sent verbatim; older ones go as a summary.
const RECENT_TURNS: usize = 6;

/// A chat turn ready for the gateway.
pub struct ChatTurn {
    /// What the user wrote.
    pub message: String,
    pub prepared: Prepared,
}

impl Session {
    /// The request for the chat in document `key`. When `summarize` and older turns are not yet
    /// summarised, the summary is made first (a model call, reported through `report`); the
    /// inspector passes `false` and shows the turn with the summary the history holds.
    pub async fn chat_turn<F, Fut>(
        &self,
        agent: &Agent,
        key: &str,
        parsed: Arc<Parsed>,
        summarize: bool,
        mut report: F,
    ) -> Result<ChatTurn, String>
    where
        F: FnMut(Step) -> Fut,
        Fut: Future<Output = ()>,
    {
        let text = parsed.text.to_string();
        let message = pending_message(&text)
            .ok_or("write your message below the last “## You”, then send")?;
        let history = self
            .history()
            .map_err(|e| format!("the chat history cannot be opened: {e}"))?;
        let turns = history.turns(key);
        let keep = turns.len().saturating_sub(RECENT_TURNS);
        let (older, recent) = turns.split_at(keep);
        let mut summary = history.summary(key).map(|(s, _)| s);
        if summarize
            && let Some(last) = older.last()
            && history.summary(key).is_none_or(|(_, upto)| upto < last.id)
            && let Ok(summarizer) = self.agent("summarize")
        {
            report(Step::Status("summarizing earlier turns".into())).await;
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
            if let Ok(answer) = self.call(request, &mut report).await {
                let _ = history.set_summary(key, &answer.text, last.id);
                summary = Some(answer.text);
            }
        }
        let conversation: Vec<ContextMessage> = recent
            .iter()
            .map(|t| ContextMessage {
                role: t.role.clone(),
                text: t.content.clone(),
            })
            .collect();
        let (session, agent, key, query) =
            (self.clone(), agent.clone(), key.to_owned(), message.clone());
        let prepared = tokio::task::spawn_blocking(move || {
            let end = parsed.text.len_bytes();
            session.fit_to_window(&agent, |budgets| {
                let (pack, rel) = session.pack(
                    &key,
                    &parsed,
                    Want {
                        selection: end..end,
                        query: Some(&query),
                        budgets,
                        conversation: &conversation,
                        summary: summary.as_deref(),
                        ..Want::default()
                    },
                );
                let rendered = pack.render();
                let inputs = Inputs {
                    path: &rel,
                    language: "markdown",
                    selection: "",
                    context: &rendered,
                    question: Some(&query),
                    diagnostics: &[],
                    steps: "",
                };
                let request = agents::call_request(&agent, &inputs, &pack, Priority::OnDemand);
                Prepared {
                    request,
                    rel,
                    selection: String::new(),
                    target: end..end,
                    pack,
                    text: parsed.text.clone(),
                    language: parsed.language,
                }
            })
        })
        .await
        .map_err(|e| format!("assembling context: {e}"))?;
        Ok(ChatTurn { message, prepared })
    }

    /// Keeps a finished turn in the history.
    pub fn record_turn(&self, key: &str, message: &str, answer: &str) -> Result<(), String> {
        let history = self.history()?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        history
            .add(key, "user", message, now_ms)
            .and_then(|_| history.add(key, "assistant", answer, now_ms))
            .map(|_| ())
    }

    /// Indexes the whole chat (with its new answer) in the archive, off the caller's task.
    pub fn index_chat(&self, key: &str, whole: ropey::Rope) {
        if let Some(archive) = self.archive.get().cloned() {
            let name = key.rsplit('/').next().unwrap_or("chat").to_owned();
            tokio::task::spawn_blocking(move || {
                archive.index_note(&format!("strata-chats/{name}"), &whole)
            });
        }
    }
}
