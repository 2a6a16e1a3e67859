//! The subscriber's side of a call: `Progress`, the state one flight publishes on a `watch`
//! (text so far, status, outcome), and `Reply`, which turns it into `Event`s for one subscriber.
//! Every subscriber of a flight reads the same `Progress`; dropping the last `Reply` closes the
//! channel, which is how the gateway learns to cancel. Nothing here starts, routes or caches a
//! call.

use serde::Serialize;
use tokio::sync::watch;

use std::time::Instant;

use super::gateway::{Answer, CallRequest, GatewayError, Source};
use super::provider::Sink;

/// What a call is doing, for progress reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Status {
    Queued,
    WaitingForLimit { provider: String },
    Requesting { provider: String, attempt: u32 },
    Retrying { provider: String, after_ms: u64 },
    Streaming { provider: String },
}

#[derive(Debug)]
pub(super) struct Progress {
    /// The provider, model and request bytes of the attempt under way, for the audit.
    pub(super) sent: Option<(String, String, u64)>,
    pub(super) text: String,
    pub(super) pieces: u32,
    pub(super) status: Status,
    pub(super) outcome: Option<Result<Answer, GatewayError>>,
    /// Identical calls that joined this one (their prompt left out) and when: each gets an
    /// audit row with the flight's outcome when it ends.
    pub(super) joined: Vec<(CallRequest, Instant)>,
}

impl Progress {
    /// A call that has not started.
    pub(super) fn queued() -> Progress {
        Progress {
            sent: None,
            text: String::new(),
            pieces: 0,
            status: Status::Queued,
            outcome: None,
            joined: Vec::new(),
        }
    }
}

/// One event of a call, as its subscriber sees it.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Status(Status),
    /// More text (streamed calls; a cached answer arrives as one piece).
    Text(String),
    Done(Answer),
    Failed(GatewayError),
}

/// A subscription to one call. Dropping every subscription of a call cancels it.
#[derive(Debug)]
pub struct Reply {
    rx: watch::Receiver<Progress>,
    sent: usize,
    last_status: Option<Status>,
    finished: bool,
    coalesced: bool,
}

impl Reply {
    pub(super) fn new(rx: watch::Receiver<Progress>, coalesced: bool) -> Reply {
        Reply {
            rx,
            sent: 0,
            last_status: None,
            finished: false,
            coalesced,
        }
    }

    /// The next event; `None` after `Done` or `Failed`.
    pub async fn next(&mut self) -> Option<Event> {
        if self.finished {
            return None;
        }
        loop {
            {
                let p = self.rx.borrow_and_update();
                if p.text.len() > self.sent {
                    let delta = p.text[self.sent..].to_owned();
                    self.sent = p.text.len();
                    return Some(Event::Text(delta));
                }
                if let Some(outcome) = &p.outcome {
                    self.finished = true;
                    return Some(match outcome.clone() {
                        Ok(mut answer) => {
                            if self.coalesced && answer.source == Source::Model {
                                answer.source = Source::Coalesced;
                            }
                            Event::Done(answer)
                        }
                        Err(e) => Event::Failed(e),
                    });
                }
                if self.last_status.as_ref() != Some(&p.status) {
                    self.last_status = Some(p.status.clone());
                    return Some(Event::Status(p.status.clone()));
                }
            }
            if self.rx.changed().await.is_err() {
                self.finished = true;
                return Some(Event::Failed(GatewayError::Cancelled));
            }
        }
    }

    /// Waits for the whole answer.
    pub async fn answer(mut self) -> Result<Answer, GatewayError> {
        while let Some(event) = self.next().await {
            match event {
                Event::Done(answer) => return Ok(answer),
                Event::Failed(e) => return Err(e),
                _ => {}
            }
        }
        Err(GatewayError::Cancelled)
    }

    /// The text received so far and whether the call has ended, without waiting.
    pub fn peek(&self) -> (String, bool) {
        let p = self.rx.borrow();
        (p.text.clone(), p.outcome.is_some())
    }

    /// Pieces of text streamed so far.
    pub fn pieces(&self) -> u32 {
        self.rx.borrow().pieces
    }
}

/// A reply that is already complete (a cache hit).
pub(super) fn ready(answer: Answer) -> Reply {
    let (_tx, rx) = watch::channel(Progress {
        sent: None,
        text: answer.text.clone(),
        pieces: 1,
        status: Status::Queued,
        outcome: Some(Ok(answer)),
        joined: Vec::new(),
    });
    Reply::new(rx, false)
}

/// Streams a provider's text into a flight's `Progress`.
pub(super) struct ProgressSink<'a> {
    pub(super) tx: &'a watch::Sender<Progress>,
    pub(super) provider: &'a str,
}

impl Sink for ProgressSink<'_> {
    fn text(&self, text: &str) {
        self.tx.send_modify(|p| {
            p.text.push_str(text);
            p.pieces += 1;
            if !matches!(p.status, Status::Streaming { .. }) {
                p.status = Status::Streaming {
                    provider: self.provider.to_owned(),
                };
            }
        });
    }
}
