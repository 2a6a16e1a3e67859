//! The wrapper around the LSP service: it runs requests on tokio's workers and records the
//! latency per method, from the moment a message is dispatched to the moment its handler answers
//! (for notifications, until the handler returns). Read by `strata/stats`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tower_lsp_server::jsonrpc::{Error, ErrorCode, Request, Response};
use tower_service::Service;

use crate::llm::{Histogram, Summary};

/// Method names are the client's to choose: past this many, the rest share one histogram.
const MAX_METHODS: usize = 128;

#[derive(Debug, Default)]
pub struct MethodTimes {
    methods: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl MethodTimes {
    fn histogram(&self, method: &str) -> Arc<Histogram> {
        let mut methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = methods.get(method) {
            return h.clone();
        }
        let name = if methods.len() < MAX_METHODS {
            method
        } else {
            "(other)"
        };
        methods.entry(name.to_owned()).or_default().clone()
    }

    pub fn summaries(&self) -> BTreeMap<String, Summary> {
        let methods = self.methods.lock().unwrap_or_else(|e| e.into_inner());
        methods
            .iter()
            .map(|(name, h)| (name.clone(), h.summary()))
            .collect()
    }
}

/// Requests answered on the dispatching task, in order with the notifications around them.
const IN_ORDER: [&str; 2] = ["initialize", "shutdown"];

/// Wraps the LSP service: every request but [`IN_ORDER`]'s runs on a tokio task of its own, and
/// each message's handling time is recorded under its method.
///
/// tower-lsp-server polls every handler — and turns every result into a `serde_json::Value` — on
/// the one task that also reads the client's messages, so a request that builds a large answer
/// (`documentSymbol` of a 3 MB file) held up every message behind it, edits and completions
/// included. Notifications stay on that task, in the order the client sent them.
pub struct Timed<S> {
    pub inner: S,
    pub times: Arc<MethodTimes>,
}

impl<S> Service<Request> for Timed<S>
where
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let histogram = self.times.histogram(request.method());
        let started = Instant::now();
        let spawned = request
            .id()
            .cloned()
            .filter(|_| !IN_ORDER.contains(&request.method()));
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = match spawned {
                Some(id) => {
                    let mut task = AbortOnDrop(tokio::spawn(future));
                    match (&mut task.0).await {
                        Ok(result) => result,
                        Err(error) => Ok(Some(Response::from_error(
                            id,
                            Error {
                                code: ErrorCode::InternalError,
                                message: format!("the request failed: {error}").into(),
                                data: None,
                            },
                        ))),
                    }
                }
                None => future.await,
            };
            histogram.record(started.elapsed());
            result
        })
    }
}

/// A spawned request that is aborted when its answer is no longer awaited.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
