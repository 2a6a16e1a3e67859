//! Latency per LSP method, recorded by the transport: from the moment a request is read to the
//! moment its answer's last byte is written to the client (for notifications, until the handler
//! returns). A request answered by something else first (cancelled, or superseded while held)
//! is not counted. Read by `strata/stats`; each answer's time is also logged at debug level
//! under `strata::answered`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::llm::{Histogram, Summary};

/// Method names are the client's to choose: past this many, the rest share one histogram.
const MAX_METHODS: usize = 128;

#[derive(Debug, Default)]
pub struct MethodTimes {
    methods: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl MethodTimes {
    pub(super) fn histogram(&self, method: &str) -> Arc<Histogram> {
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
