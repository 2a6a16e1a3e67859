//! [`Running`]: the one registry of what can be cancelled — every request task the transport
//! spawned, by request id, and every agent run, by its progress token — and the one place that
//! answers a request the transport spawned. Whoever takes a request's id out of the registry
//! answers it: its task with its result, or `$/cancelRequest` with RequestCancelled, so each
//! request is answered exactly once. A handler may leave work for after its answer is queued
//! ([`after_answer`]), so that nothing that work sends overtakes the answer. A request held
//! open until something newer about its document comes (a held completion) leaves its empty
//! answer here ([`Running::hold`]), and the edit or request that supersedes it answers it with
//! that at once ([`Running::supersede`]), on the thread that read it, before the held task has
//! even woken. It runs nothing itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::AbortHandle;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Id, Response};

use super::body::Body;
use super::outbox::Outbox;
use crate::resources::lock;

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
    /// Held requests by document: where each came in the order read, its id, and its empty
    /// answer, encoded.
    held: Mutex<HashMap<String, Vec<HeldRequest>>>,
}

struct HeldRequest {
    order: u64,
    id: Id,
    empty: Vec<u8>,
}

/// A request of [`Running::hold`]'s, no longer held once this is dropped (answered, or its task
/// ended or was aborted).
pub struct Held<'a> {
    running: &'a Running,
    uri: String,
    id: Id,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = lock(&self.running.held);
        if let Some(list) = held.get_mut(&self.uri) {
            list.retain(|h| h.id != self.id);
            if list.is_empty() {
                held.remove(&self.uri);
            }
        }
    }
}

impl Running {
    pub fn new(outbox: Outbox) -> Running {
        Running {
            outbox,
            tasks: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
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

    /// The handle of `key`'s task, unless it is done or cancelled already; false if it is
    /// (the task is not aborted here).
    pub fn attach(&self, key: &Key, handle: AbortHandle) -> bool {
        match lock(&self.tasks).get_mut(key) {
            Some(slot) => {
                *slot = Some(handle);
                true
            }
            None => false,
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

    /// A request's answer, already encoded: written unless it was cancelled meanwhile; true if
    /// it was written.
    pub fn answer(&self, id: &Id, body: Body) -> bool {
        let first = self.finish(&Key::Request(id.clone()));
        if first {
            let _ = self.outbox.send(body);
        }
        first
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
                let _ = self.outbox.send(body.into());
            }
        }
    }

    /// Holds the request whose task this is until it is answered or something newer about
    /// `uri` comes: then [`Running::supersede`] answers it with `empty`. Requests of `uri` read
    /// before this one are answered so now. `None` outside a request's task.
    pub fn hold(&self, uri: &str, empty: &impl serde::Serialize) -> Option<Held<'_>> {
        let (order, id) = (read_order()?, REQUEST_ID.try_with(Id::clone).ok()?);
        let result = serde_json::to_vec(empty).ok()?;
        let empty = super::transport::encoded(&id, Ok(result.into())).into_bytes();
        self.supersede(uri, order);
        lock(&self.held)
            .entry(uri.to_owned())
            .or_default()
            .push(HeldRequest {
                order,
                id: id.clone(),
                empty,
            });
        Some(Held {
            running: self,
            uri: uri.to_owned(),
            id,
        })
    }

    /// An edit or a request of `uri`, read at `order`, supersedes the requests of `uri` held
    /// since before it: each is answered with its empty answer now, unless it was already.
    pub fn supersede(&self, uri: &str, order: u64) {
        let superseded = {
            let mut held = lock(&self.held);
            let Some(list) = held.get_mut(uri) else {
                return;
            };
            let (older, newer) = std::mem::take(list)
                .into_iter()
                .partition(|h| h.order < order);
            *list = newer;
            if list.is_empty() {
                held.remove(uri);
            }
            older
        };
        for h in superseded {
            let HeldRequest { id, empty, .. } = h;
            self.answer(&id, empty.into());
        }
    }

    /// How many are registered (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.tasks).len()
    }
}

tokio::task_local! {
    /// What the request whose task this is left for after its answer.
    static AFTER_ANSWER: RefCell<Vec<Box<dyn FnOnce() + Send>>>;
    /// Where the request whose task this is came in the order the client's messages were read.
    static READ_ORDER: u64;
    /// The id of the request whose task this is.
    static REQUEST_ID: Id;
}

/// Messages read from the client so far, in this process.
static READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a message read from the client: its place in the order they were read. Tasks run in
/// any order; this is the order the client sent them in.
pub fn read_one() -> u64 {
    READ.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
}

/// The place of the message read last (for a notification handled as it is read).
pub fn last_read() -> u64 {
    READ.load(std::sync::atomic::Ordering::Relaxed)
}

/// The place of this task's request in the order the client's messages were read; `None`
/// outside a request's task.
pub fn read_order() -> Option<u64> {
    READ_ORDER.try_with(|order| *order).ok()
}

/// Leaves `work` for after the answer of the request whose task this is has been queued, so
/// nothing `work` sends can reach the client before that answer; dropped unrun when the request
/// is cancelled first. Outside a request task (see [`answering`]), `work` runs now.
pub fn after_answer(work: impl FnOnce() + Send + 'static) {
    let mut work = Some(Box::new(work) as Box<dyn FnOnce() + Send>);
    let _ = AFTER_ANSWER.try_with(|after| after.borrow_mut().extend(work.take()));
    if let Some(work) = work {
        work();
    }
}

/// Runs a request's task, `request` returning whether its answer was queued; then, if it was,
/// the work its handler left with [`after_answer`].
pub async fn answering(order: u64, id: Id, request: impl Future<Output = bool>) {
    let answered = AFTER_ANSWER.scope(RefCell::new(Vec::new()), async move {
        if request.await {
            for work in AFTER_ANSWER.with(|after| after.take()) {
                work();
            }
        }
    });
    READ_ORDER
        .scope(order, REQUEST_ID.scope(id, answered))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn a_request_is_answered_once_whoever_comes_first() {
        let (outbox, mut frames) = Outbox::channel();
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
            serde_json::from_slice(&frames.recv().await.unwrap().into_bytes()).unwrap();
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], -32800);
        // The task's own answer, had it come, and a second cancellation: nothing more.
        running.answer(&id, b"late".to_vec().into());
        running.cancel_request(id.clone());
        assert!(frames.try_recv().is_err());
        // Answered first: the cancellation says nothing.
        assert!(running.start(key.clone()));
        running.answer(&id, b"done".to_vec().into());
        running.cancel_request(id);
        assert_eq!(frames.try_recv().unwrap().into_bytes(), b"done");
        assert!(frames.try_recv().is_err());
        assert_eq!(running.len(), 0);
    }

    #[tokio::test]
    async fn work_left_for_after_the_answer_runs_after_it_and_only_if_it_went_out() {
        let (outbox, mut frames) = Outbox::channel();
        let running = std::sync::Arc::new(Running::new(outbox.clone()));
        let left = |tag: &'static [u8]| {
            let outbox = outbox.clone();
            move || {
                let _ = outbox.send(tag.to_vec().into());
            }
        };
        let request = |id: i64| {
            let (running, work) = (running.clone(), left(b"after"));
            answering(read_one(), Id::Number(id), async move {
                after_answer(work);
                running.answer(&Id::Number(id), b"answer".to_vec().into())
            })
        };
        assert!(running.start(Key::Request(Id::Number(1))));
        request(1).await;
        assert_eq!(frames.try_recv().unwrap().into_bytes(), b"answer");
        assert_eq!(frames.try_recv().unwrap().into_bytes(), b"after");
        // Cancelled before its answer: the work is dropped.
        assert!(running.start(Key::Request(Id::Number(2))));
        running.cancel_request(Id::Number(2));
        let cancelled: serde_json::Value =
            serde_json::from_slice(&frames.try_recv().unwrap().into_bytes()).unwrap();
        assert_eq!(cancelled["error"]["code"], -32800);
        request(2).await;
        assert!(
            frames.try_recv().is_err(),
            "the cancelled request's work ran"
        );
        // Outside a request task, at once.
        after_answer(left(b"now"));
        assert_eq!(frames.try_recv().unwrap().into_bytes(), b"now");
    }

    #[tokio::test]
    async fn a_run_is_cancelled_by_its_token_and_a_request_id_does_not_reach_it() {
        let (outbox, _frames) = Outbox::channel();
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

    #[tokio::test]
    async fn a_held_request_is_answered_empty_by_what_supersedes_it_and_once() {
        let (outbox, mut frames) = Outbox::channel();
        let running = std::sync::Arc::new(Running::new(outbox));
        let (release, released) = tokio::sync::watch::channel(false);
        // A held request: registers its empty answer, then waits; its own answer comes last.
        let held = |id: i64, uri: &'static str| {
            let (running, mut released) = (running.clone(), released.clone());
            assert!(running.start(Key::Request(Id::Number(id))));
            let order = read_one();
            tokio::spawn(answering(order, Id::Number(id), async move {
                let held = running.hold(uri, &serde_json::json!({"items": []}));
                assert!(held.is_some());
                let _ = released.wait_for(|r| *r).await;
                drop(held);
                running.answer(&Id::Number(id), b"late".to_vec().into())
            }))
        };
        let answered = |frames: &mut mpsc::UnboundedReceiver<Body>| -> Vec<serde_json::Value> {
            std::iter::from_fn(|| frames.try_recv().ok())
                .map(|b| serde_json::from_slice(&b.into_bytes()).unwrap())
                .collect()
        };
        let first = held(1, "file:///a.rs");
        let other = held(2, "file:///b.rs");
        while lock(&running.held).values().map(Vec::len).sum::<usize>() < 2 {
            tokio::task::yield_now().await;
        }
        // A newer request of the same document supersedes the first.
        let second = held(3, "file:///a.rs");
        while lock(&running.held)
            .get("file:///a.rs")
            .is_none_or(|l| l.iter().all(|h| h.id != Id::Number(3)))
        {
            tokio::task::yield_now().await;
        }
        let now = answered(&mut frames);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0]["id"], 1);
        assert_eq!(now[0]["result"], serde_json::json!({"items": []}));
        // An edit of that document read now supersedes the second; the other document's stays.
        running.supersede("file:///a.rs", read_one());
        let now = answered(&mut frames);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0]["id"], 3);
        // An edit read before a request does not supersede it.
        running.supersede("file:///b.rs", 0);
        assert!(answered(&mut frames).is_empty());
        // The held tasks end: the first two say nothing more, the other's own answer goes out.
        release.send(true).unwrap();
        for task in [first, second, other] {
            task.await.unwrap();
        }
        let last: Vec<u8> = frames.try_recv().unwrap().into_bytes();
        assert_eq!(last, b"late");
        assert!(frames.try_recv().is_err());
        assert!(
            lock(&running.held).is_empty(),
            "held entries outlive their tasks"
        );
        assert_eq!(running.len(), 0);
    }
}
