//! [`Running`]: the one registry of what can be cancelled — every request task the transport
//! spawned, by request id, and every agent run, by its progress token — and the one place that
//! answers a request the transport spawned. Whoever takes a request's id out of the registry
//! answers it: its task with its result, or `$/cancelRequest` with RequestCancelled, so each
//! request is answered exactly once. It runs nothing itself.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::task::AbortHandle;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Id, Response};

use super::client::Outbox;

/// What a cancellation names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A request of the client's, cancelled by `$/cancelRequest`.
    Request(Id),
    /// A run that reports `$/progress` under this token, cancelled by
    /// `window/workDoneProgress/cancel`.
    Progress(String),
}

pub struct Running {
    outbox: Outbox,
    /// `None` until the task's handle is known (it may finish before).
    tasks: Mutex<HashMap<Key, Option<AbortHandle>>>,
}

impl Running {
    pub fn new(outbox: Outbox) -> Running {
        Running {
            outbox,
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Registers `key` before its task is spawned; false if it is registered already (a
    /// request id the client reused while the first is running).
    pub fn start(&self, key: Key) -> bool {
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(&key) {
            return false;
        }
        tasks.insert(key, None);
        true
    }

    /// The handle of `key`'s task, unless it is done or cancelled already.
    pub fn attach(&self, key: &Key, handle: AbortHandle) {
        if let Some(slot) = lock(&self.tasks).get_mut(key) {
            *slot = Some(handle);
        }
    }

    /// Takes `key` out: true for the one caller that does so.
    pub fn finish(&self, key: &Key) -> bool {
        lock(&self.tasks).remove(key).is_some()
    }

    /// Aborts `key`'s task, if it is still registered; true if it was.
    pub fn cancel(&self, key: &Key) -> bool {
        match lock(&self.tasks).remove(key) {
            Some(handle) => {
                if let Some(handle) = handle {
                    handle.abort();
                }
                true
            }
            None => false,
        }
    }

    /// A request's answer, already encoded: written unless it was cancelled meanwhile.
    pub fn answer(&self, id: &Id, body: Vec<u8>) {
        if self.finish(&Key::Request(id.clone())) {
            let _ = self.outbox.send(body);
        }
    }

    /// `$/cancelRequest`: aborts the request's task and answers RequestCancelled, once. A
    /// request already answered (or unknown) is left alone.
    pub fn cancel_request(&self, id: Id) {
        if self.cancel(&Key::Request(id.clone())) {
            let error = Error {
                code: ErrorCode::RequestCancelled,
                message: "cancelled".into(),
                data: None,
            };
            if let Ok(body) = serde_json::to_vec(&Response::from_error(id, error)) {
                let _ = self.outbox.send(body);
            }
        }
    }

    /// How many are registered (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.tasks).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn a_request_is_answered_once_whoever_comes_first() {
        let (outbox, mut frames) = mpsc::unbounded_channel();
        let running = Running::new(outbox);
        let id = Id::Number(7);
        let key = Key::Request(id.clone());
        assert!(running.start(key.clone()));
        assert!(!running.start(key.clone()), "a reused id is refused");
        let task = tokio::spawn(std::future::pending::<()>());
        running.attach(&key, task.abort_handle());
        running.cancel_request(id.clone());
        assert!(task.await.unwrap_err().is_cancelled(), "the task runs on");
        let answer: serde_json::Value =
            serde_json::from_slice(&frames.recv().await.unwrap()).unwrap();
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], -32800);
        // The task's own answer, had it come, and a second cancellation: nothing more.
        running.answer(&id, b"late".to_vec());
        running.cancel_request(id.clone());
        assert!(frames.try_recv().is_err());
        // Answered first: the cancellation says nothing.
        assert!(running.start(key.clone()));
        running.answer(&id, b"done".to_vec());
        running.cancel_request(id);
        assert_eq!(frames.try_recv().unwrap(), b"done");
        assert!(frames.try_recv().is_err());
        assert_eq!(running.len(), 0);
    }

    #[tokio::test]
    async fn a_run_is_cancelled_by_its_token_and_a_request_id_does_not_reach_it() {
        let (outbox, _frames) = mpsc::unbounded_channel();
        let running = Running::new(outbox);
        let token = Key::Progress("strata-agent-1".into());
        let run = tokio::spawn(std::future::pending::<()>());
        assert!(running.start(token.clone()));
        running.attach(&token, run.abort_handle());
        running.cancel_request(Id::String("strata-agent-1".into()));
        assert_eq!(running.len(), 1);
        assert!(running.cancel(&token));
        assert!(run.await.unwrap_err().is_cancelled());
        assert!(!running.cancel(&token));
    }
}
