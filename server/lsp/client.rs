//! The server→client side of the protocol: [`Client`], a cheap-clone handle that writes
//! notifications and requests onto the transport's frame queue and waits for the client's
//! answers, which the transport hands back through [`Client::answered`]. It never reads input.
//!
//! Every request has a deadline ([`ANSWER_TIMEOUT`], or [`USER_TIMEOUT`] for a question a person
//! answers): an answer that never comes is an error, not a handler waiting forever. When the
//! session ends ([`Client::close`]) every waiting request fails at once. Until the answer to
//! `initialize` is on its way ([`Client::open`]), only what the LSP allows then is sent:
//! `window/showMessage`, `window/logMessage`, `telemetry/event` and `window/showMessageRequest`;
//! anything else is dropped (a notification) or refused (a request), and logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::resources::lock;
use serde::Serialize;
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Id, Response, Result};
use tower_lsp_server::ls_types::notification::{self, Notification};
use tower_lsp_server::ls_types::request::{self, Request};
use tower_lsp_server::ls_types::*;

use super::outbox::Outbox;

/// How long the client has to answer a request a program answers (create a progress token,
/// apply an edit, show a document, send settings, register a capability).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a question put to the user (`window/showMessageRequest`) stays open.
pub const USER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What may be sent before the answer to `initialize`.
const BEFORE_INITIALIZE: [&str; 4] = [
    "window/showMessage",
    "window/logMessage",
    "telemetry/event",
    "window/showMessageRequest",
];

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    outbox: Outbox,
    /// Requests sent and not answered yet, by id.
    pending: Mutex<HashMap<Id, oneshot::Sender<Result<serde_json::Value>>>>,
    next_id: AtomicI64,
    /// The answer to `initialize` has been queued.
    open: AtomicBool,
    /// The session is over: nothing more is sent.
    closed: AtomicBool,
    /// [`ANSWER_TIMEOUT`], shorter in tests.
    timeout: Duration,
}

impl Client {
    pub fn new(outbox: Outbox) -> Client {
        Client::with_timeout(outbox, ANSWER_TIMEOUT)
    }

    pub fn with_timeout(outbox: Outbox, timeout: Duration) -> Client {
        Client {
            inner: Arc::new(Inner {
                outbox,
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(0),
                open: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                timeout,
            }),
        }
    }

    /// The answer to `initialize` is queued: from now on anything may be sent.
    pub fn open(&self) {
        self.inner.open.store(true, Ordering::Release);
    }

    /// The session is over: waiting requests fail now, later ones at once.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        lock(&self.inner.pending).clear();
    }

    /// The client's answer to one of our requests (from the transport).
    pub fn answered(&self, response: Response) {
        let (id, result) = response.into_parts();
        match lock(&self.inner.pending).remove(&id) {
            Some(waiting) => {
                let _ = waiting.send(result);
            }
            None => tracing::warn!(%id, "an answer to no request of ours (or a late one)"),
        }
    }

    /// Whether `method` may go out now.
    fn allowed(&self, method: &str) -> bool {
        if self.inner.closed.load(Ordering::Acquire) {
            tracing::debug!(method, "not sent: the session is over");
            return false;
        }
        if !self.inner.open.load(Ordering::Acquire) && !BEFORE_INITIALIZE.contains(&method) {
            tracing::warn!(method, "not sent: `initialize` is not answered yet");
            return false;
        }
        true
    }

    pub fn send_notification<N: Notification>(&self, params: N::Params) {
        if !self.allowed(N::METHOD) {
            return;
        }
        #[derive(Serialize)]
        struct Message<'a, P> {
            jsonrpc: &'static str,
            method: &'a str,
            params: P,
        }
        match serde_json::to_vec(&Message {
            jsonrpc: "2.0",
            method: N::METHOD,
            params,
        }) {
            Ok(body) => {
                let _ = self.inner.outbox.send(body.into());
            }
            Err(e) => tracing::error!(method = N::METHOD, "encoding a notification: {e}"),
        }
    }

    /// Sends a request and waits, at most [`ANSWER_TIMEOUT`], for the client's answer.
    pub async fn send_request<R: Request>(&self, params: R::Params) -> Result<R::Result> {
        self.request::<R>(params, self.inner.timeout).await
    }

    async fn request<R: Request>(&self, params: R::Params, timeout: Duration) -> Result<R::Result> {
        if !self.allowed(R::METHOD) {
            return Err(failure(format!("{} cannot be sent now", R::METHOD)));
        }
        let id = Id::Number(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        #[derive(Serialize)]
        struct Message<'a, P> {
            jsonrpc: &'static str,
            id: &'a Id,
            method: &'a str,
            params: P,
        }
        let body = serde_json::to_vec(&Message {
            jsonrpc: "2.0",
            id: &id,
            method: R::METHOD,
            params,
        })
        .map_err(|e| failure(format!("encoding {}: {e}", R::METHOD)))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id.clone(), tx);
        // Closed meanwhile: `close` cleared the map before this entry went in.
        if self.inner.closed.load(Ordering::Acquire) {
            lock(&self.inner.pending).remove(&id);
            return Err(failure("the session is over".into()));
        }
        if self.inner.outbox.send(body.into()).is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(failure("the client is gone".into()));
        }
        let answer = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(_)) => return Err(failure("the session ended before an answer".into())),
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                tracing::warn!(method = R::METHOD, "the client did not answer in time");
                return Err(failure(format!(
                    "the client did not answer {} within {} s",
                    R::METHOD,
                    timeout.as_secs_f32()
                )));
            }
        };
        serde_json::from_value(answer)
            .map_err(|e| failure(format!("the client's answer to {}: {e}", R::METHOD)))
    }

    pub fn show_message(&self, typ: MessageType, message: impl Into<String>) {
        self.send_notification::<notification::ShowMessage>(ShowMessageParams {
            typ,
            message: message.into(),
        });
    }

    pub fn log_message(&self, typ: MessageType, message: impl Into<String>) {
        self.send_notification::<notification::LogMessage>(LogMessageParams {
            typ,
            message: message.into(),
        });
    }

    /// Asks the user; waits at most [`USER_TIMEOUT`].
    pub async fn show_message_request(
        &self,
        typ: MessageType,
        message: impl Into<String>,
        actions: Option<Vec<MessageActionItem>>,
    ) -> Result<Option<MessageActionItem>> {
        let params = ShowMessageRequestParams {
            typ,
            message: message.into(),
            actions,
        };
        self.request::<request::ShowMessageRequest>(params, USER_TIMEOUT.max(self.inner.timeout))
            .await
    }

    /// Whether the editor showed the document.
    pub async fn show_document(&self, params: ShowDocumentParams) -> Result<bool> {
        let result = self.send_request::<request::ShowDocument>(params).await?;
        Ok(result.success)
    }

    pub fn publish_diagnostics(
        &self,
        uri: Uri,
        diagnostics: Vec<Diagnostic>,
        version: Option<i32>,
    ) {
        self.send_notification::<notification::PublishDiagnostics>(PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        });
    }

    pub async fn apply_edit(&self, edit: WorkspaceEdit) -> Result<ApplyWorkspaceEditResponse> {
        self.send_request::<request::ApplyWorkspaceEdit>(ApplyWorkspaceEditParams {
            label: None,
            edit,
        })
        .await
    }

    pub async fn configuration(
        &self,
        items: Vec<ConfigurationItem>,
    ) -> Result<Vec<serde_json::Value>> {
        self.send_request::<request::WorkspaceConfiguration>(ConfigurationParams { items })
            .await
    }

    pub async fn register_capability(&self, registrations: Vec<Registration>) -> Result<()> {
        self.send_request::<request::RegisterCapability>(RegistrationParams { registrations })
            .await
    }

    pub async fn create_work_done_progress(&self, token: ProgressToken) -> Result<()> {
        self.send_request::<request::WorkDoneProgressCreate>(WorkDoneProgressCreateParams { token })
            .await
    }

    /// `$/progress` for a work-done token.
    pub fn progress(&self, token: ProgressToken, value: WorkDoneProgress) {
        self.send_notification::<notification::Progress>(ProgressParams {
            token,
            value: ProgressParamsValue::WorkDone(value),
        });
    }
}

fn failure(message: String) -> Error {
    Error {
        code: ErrorCode::InternalError,
        message: message.into(),
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsp::body::Body;
    use serde_json::{Value, json};
    use tokio::sync::mpsc;

    fn client(timeout: Duration) -> (Client, mpsc::UnboundedReceiver<Body>) {
        let (outbox, frames) = Outbox::channel();
        (Client::with_timeout(outbox, timeout), frames)
    }

    fn next(frames: &mut mpsc::UnboundedReceiver<Body>) -> Option<Value> {
        frames
            .try_recv()
            .ok()
            .map(|body| serde_json::from_slice(&body.into_bytes()).unwrap())
    }

    #[tokio::test]
    async fn an_answer_reaches_the_request_with_its_id_typed() {
        let (client, mut frames) = client(ANSWER_TIMEOUT);
        client.open();
        let asking = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .configuration(vec![ConfigurationItem {
                        scope_uri: None,
                        section: Some("strata".into()),
                    }])
                    .await
            }
        });
        let sent = loop {
            if let Some(sent) = next(&mut frames) {
                break sent;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(sent["method"], "workspace/configuration");
        assert_eq!(sent["params"]["items"][0]["section"], "strata");
        let id: Id = serde_json::from_value(sent["id"].clone()).unwrap();
        // An answer to another id is not this one's.
        client.answered(Response::from_ok(Id::Number(999), json!([1])));
        client.answered(Response::from_ok(id, json!([{"config": {"a": 1}}])));
        let values = asking.await.unwrap().unwrap();
        assert_eq!(values, [json!({"config": {"a": 1}})]);
    }

    #[tokio::test]
    async fn an_unanswered_request_fails_instead_of_waiting_forever() {
        let (client, mut frames) = client(Duration::from_millis(1));
        client.open();
        let error = client
            .create_work_done_progress(ProgressToken::String("t".into()))
            .await
            .unwrap_err();
        assert!(error.message.contains("did not answer"), "{error:?}");
        assert!(next(&mut frames).is_some(), "the request was not sent");
        assert!(
            lock(&client.inner.pending).is_empty(),
            "the request is still pending"
        );
    }

    #[tokio::test]
    async fn closing_fails_every_waiting_request() {
        let (client, _frames) = client(ANSWER_TIMEOUT);
        client.open();
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.apply_edit(WorkspaceEdit::default()).await }
        });
        while lock(&client.inner.pending).is_empty() {
            tokio::task::yield_now().await;
        }
        client.close();
        assert!(waiting.await.unwrap().is_err());
        assert!(client.apply_edit(WorkspaceEdit::default()).await.is_err());
    }

    #[tokio::test]
    async fn before_initialize_only_messages_go_out() {
        let (client, mut frames) = client(Duration::from_millis(1));
        client.progress(
            ProgressToken::String("t".into()),
            WorkDoneProgress::End(WorkDoneProgressEnd { message: None }),
        );
        let refused = client.register_capability(Vec::new()).await.unwrap_err();
        assert!(
            refused.message.contains("cannot be sent now"),
            "{refused:?}"
        );
        client.show_message(MessageType::INFO, "hello");
        client.log_message(MessageType::INFO, "log");
        assert_eq!(next(&mut frames).unwrap()["method"], "window/showMessage");
        assert_eq!(next(&mut frames).unwrap()["method"], "window/logMessage");
        assert_eq!(next(&mut frames), None);
        client.open();
        client.progress(
            ProgressToken::String("t".into()),
            WorkDoneProgress::End(WorkDoneProgressEnd { message: None }),
        );
        assert_eq!(next(&mut frames).unwrap()["method"], "$/progress");
    }
}
