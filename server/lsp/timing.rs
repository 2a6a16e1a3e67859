//! Latency per LSP method, measured around the service: from the moment a message is dispatched
//! to the moment its handler answers (for notifications, until the handler returns). Read by
//! `strata/stats`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tower_lsp_server::jsonrpc::{Request, Response};
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

/// Wraps the LSP service and records each message's handling time under its method.
pub struct Timed<S> {
    pub inner: S,
    pub times: Arc<MethodTimes>,
}

impl<S> Service<Request> for Timed<S>
where
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
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
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            histogram.record(started.elapsed());
            result
        })
    }
}
