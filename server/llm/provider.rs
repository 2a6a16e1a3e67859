//! One configured provider at run time: its HTTP client, limiter, circuit breaker, moving average
//! of time to first token and counters, and one attempt at a call — send the request, check the
//! status, decode the body as it arrives, enforce the first-token and total deadlines on the
//! injected clock. Retrying, falling back and caching are the gateway's business.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use serde::Serialize;

use super::clock::Clock;
use super::config::ProviderConfig;
use super::limits::{Limiter, LimiterStats, Limits};
use super::retry::{Admission, Breaker, Circuit, Ewma};
use super::stats::{Histogram, Summary};
use super::wire::{self, Decoder, Finish, Piece, WireError, WireRequest};
use crate::resources::lock;

/// Bytes of an error body read for its message.
const ERROR_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub config: ProviderConfig,
    /// Built on the first call: loading TLS roots has no place on the path to `initialize`.
    client: std::sync::OnceLock<reqwest::Client>,
    pub limiter: Limiter,
    breaker: Mutex<Breaker>,
    ttft: Mutex<Ewma>,
    pub ttft_hist: Histogram,
    pub total_hist: Histogram,
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub retries: AtomicU64,
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
}

/// A call let through the circuit breaker.
pub struct Admitted<'a> {
    provider: &'a Provider,
    trial: bool,
}

impl Admitted<'_> {
    pub fn succeeded(mut self) {
        lock(&self.provider.breaker).success();
        self.trial = false;
    }

    pub fn failed(mut self, failure: &Failure, now: Instant) {
        self.provider.record_failure(failure, now);
        self.trial = false;
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if self.trial {
            lock(&self.provider.breaker).release();
        }
    }
}

/// How one attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Failure {
    /// No connection, or it broke.
    Connect { message: String },
    /// No first token before the deadline.
    FirstTokenTimeout { after_ms: u64 },
    /// The answer did not finish before the total deadline.
    TotalTimeout { after_ms: u64 },
    /// The server answered with an error status.
    Status { status: u16, message: String },
    /// The answer could not be understood, or the provider reported an error inside it.
    Malformed { message: String },
    /// The stream ended before the model finished.
    Cut,
    /// The provider's key variable is not set.
    NoKey { variable: String },
    /// The circuit breaker is open after repeated failures.
    CircuitOpen,
    /// The request can never fit the provider's limits, or its daily budget is spent.
    Refused { message: String },
    /// The prompt is longer than the model's context window: the server said so (`message`),
    /// answered with nothing at all (`message` empty), or Strata counted it before sending.
    /// `tokens` and `window` are the server's figures when it gave them, else Strata's count
    /// and the configured `context_window`.
    TooLong {
        tokens: Option<u64>,
        window: Option<u64>,
        message: String,
    },
}

impl Failure {
    /// Whether trying the same provider again may help.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Connect { .. } => true,
            Failure::Status { status, .. } => *status == 429 || *status == 408 || *status >= 500,
            _ => false,
        }
    }

    /// Whether the failure says something about the provider's health (for the breaker).
    /// A 400 or 413 says the request was bad, not that the provider is down.
    pub fn counts_against_provider(&self) -> bool {
        match self {
            Failure::NoKey { .. }
            | Failure::CircuitOpen
            | Failure::Refused { .. }
            | Failure::TooLong { .. } => false,
            Failure::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => true,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect { message } => write!(f, "cannot connect ({message})"),
            Failure::FirstTokenTimeout { after_ms } => {
                write!(f, "no answer within {} s", *after_ms as f64 / 1000.0)
            }
            Failure::TotalTimeout { after_ms } => {
                write!(
                    f,
                    "the answer took longer than {} s",
                    *after_ms as f64 / 1000.0
                )
            }
            Failure::Status { status, message } if message.is_empty() => {
                write!(f, "HTTP {status}")
            }
            Failure::Status { status, message } => write!(f, "HTTP {status}: {message}"),
            Failure::Malformed { message } => f.write_str(message),
            Failure::Cut => f.write_str("the answer stopped before the model finished it"),
            Failure::NoKey { variable } => {
                write!(f, "no API key: set the environment variable {variable}")
            }
            Failure::CircuitOpen => f.write_str("skipped after repeated failures (circuit open)"),
            Failure::Refused { message } => f.write_str(message),
            Failure::TooLong {
                tokens,
                window,
                message,
            } => {
                if message.is_empty() {
                    f.write_str(
                        "it answered with an empty stream, which servers do when the prompt is longer than their context window",
                    )?;
                } else {
                    write!(
                        f,
                        "the prompt is longer than the model's context window ({message})"
                    )?;
                }
                match (tokens, window) {
                    (Some(t), Some(w)) => write!(f, "; the prompt is {t} tokens, the window {w}"),
                    (Some(t), None) => write!(f, "; the prompt is about {t} tokens"),
                    (None, Some(w)) => write!(f, "; the window is {w} tokens"),
                    (None, None) => Ok(()),
                }
            }
        }
    }
}

/// A failed attempt, with what the caller needs to decide what comes next.
#[derive(Debug)]
pub struct AttemptError {
    pub failure: Failure,
    /// The server asked for a pause this long.
    pub retry_after: Option<Duration>,
    /// Text had already been handed on when it failed: it cannot be retried silently.
    pub streamed: bool,
    pub bytes_in: u64,
    /// The request reached the server (false when no connection could be made).
    pub delivered: bool,
}

/// A finished attempt.
#[derive(Debug)]
pub struct Attempt {
    pub text: String,
    pub finish: Finish,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub ttft: Duration,
    pub bytes_in: u64,
}

/// What an attempt reports while it runs.
pub trait Sink {
    fn text(&self, text: &str);
}

static CRYPTO: std::sync::Once = std::sync::Once::new();

fn client(config: &ProviderConfig) -> reqwest::Client {
    CRYPTO.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|e| {
            tracing::error!(
                "cannot build an HTTP client with timeouts ({e}); using the default one"
            );
            reqwest::Client::new()
        })
}

/// A provider's figures for `strata/stats`.
#[derive(Clone, Debug)]
pub struct ProviderStats {
    pub kind: &'static str,
    pub model: String,
    pub local: bool,
    pub circuit: Circuit,
    pub calls: u64,
    pub failures: u64,
    pub retries: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub first_token: Summary,
    pub total: Summary,
    pub ewma_first_token_ms: Option<f64>,
    pub limiter: LimiterStats,
}

impl Provider {
    pub fn new(name: &str, config: ProviderConfig, clock: Arc<dyn Clock>) -> Provider {
        let limits = Limits {
            requests_per_minute: config.requests_per_minute,
            tokens_per_minute: config.tokens_per_minute,
            max_concurrent: config.max_concurrent,
        };
        Provider {
            name: name.to_owned(),
            client: std::sync::OnceLock::new(),
            limiter: Limiter::new(limits, clock),
            config,
            breaker: Mutex::new(Breaker::new()),
            ttft: Mutex::new(Ewma::default()),
            ttft_hist: Histogram::new(),
            total_hist: Histogram::new(),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            tokens_in: AtomicU64::new(0),
            tokens_out: AtomicU64::new(0),
        }
    }

    /// The key from the environment; `Err` when a variable is named but not set.
    pub fn key(&self) -> Result<Option<String>, Failure> {
        match &self.config.api_key_env {
            None => Ok(None),
            Some(variable) => match std::env::var(variable) {
                Ok(key) if !key.is_empty() => Ok(Some(key)),
                _ => Err(Failure::NoKey {
                    variable: variable.clone(),
                }),
            },
        }
    }

    /// Lets a call through the circuit breaker, or not. The guard reports the call's end to the
    /// breaker; dropped without a verdict (cancelled, panicked), it gives the trial slot back.
    pub fn admit(&self, now: Instant) -> Option<Admitted<'_>> {
        match lock(&self.breaker).admit(now) {
            Admission::Refused => None,
            admission => Some(Admitted {
                provider: self,
                trial: admission == Admission::Trial,
            }),
        }
    }

    pub fn circuit(&self, now: Instant) -> Circuit {
        lock(&self.breaker).state(now)
    }

    pub fn record_success(&self, ttft: Duration, total: Duration) {
        lock(&self.ttft).observe(ttft.as_secs_f64() * 1000.0);
        self.ttft_hist.record(ttft);
        self.total_hist.record(total);
    }

    fn record_failure(&self, failure: &Failure, now: Instant) {
        if failure.counts_against_provider() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            lock(&self.breaker).failure(now);
            // A provider that fails is not the fastest: the failure counts as a slow answer.
            lock(&self.ttft).observe(self.config.first_token_timeout_ms as f64);
        } else {
            lock(&self.breaker).release();
        }
    }

    pub fn ewma_ttft(&self) -> Option<f64> {
        lock(&self.ttft).get()
    }

    pub fn stats(&self, now: Instant) -> ProviderStats {
        ProviderStats {
            kind: self.config.kind.as_str(),
            model: self.config.model.clone(),
            local: self.config.is_local(),
            circuit: self.circuit(now),
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            tokens_in: self.tokens_in.load(Ordering::Relaxed),
            tokens_out: self.tokens_out.load(Ordering::Relaxed),
            first_token: self.ttft_hist.summary(),
            total: self.total_hist.summary(),
            ewma_first_token_ms: self.ewma_ttft(),
            limiter: self.limiter.stats(),
        }
    }

    /// One HTTP exchange. `key` is the API key (kept out of every message this returns).
    pub async fn attempt(
        &self,
        request: &WireRequest,
        key: Option<&str>,
        clock: &dyn Clock,
        wall_now: SystemTime,
        sink: &(dyn Sink + Sync),
    ) -> Result<Attempt, AttemptError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = clock.now();
        let first_deadline = started + Duration::from_millis(self.config.first_token_timeout_ms);
        let total_deadline = started + Duration::from_millis(self.config.total_timeout_ms);
        let redact = |message: String| match key {
            Some(key) if !key.is_empty() => message.replace(key, "[key]"),
            _ => message,
        };
        let fail = |failure: Failure, streamed: bool, bytes_in: u64| AttemptError {
            failure,
            retry_after: None,
            streamed,
            bytes_in,
            delivered: true,
        };
        let timeout = |got_text: bool| {
            if got_text {
                Failure::TotalTimeout {
                    after_ms: self.config.total_timeout_ms,
                }
            } else {
                Failure::FirstTokenTimeout {
                    after_ms: self
                        .config
                        .first_token_timeout_ms
                        .min(self.config.total_timeout_ms),
                }
            }
        };

        let mut builder = self
            .client
            .get_or_init(|| client(&self.config))
            .post(&request.url)
            .body(serde_json::to_vec(&request.body).unwrap_or_default());
        for (name, value) in wire::headers(&self.config, key) {
            builder = builder.header(name, value);
        }
        let response = match before(clock, first_deadline.min(total_deadline), builder.send()).await
        {
            None => return Err(fail(timeout(false), false, 0)),
            Some(Err(e)) => {
                let mut error = fail(
                    Failure::Connect {
                        message: redact(describe(&e)),
                    },
                    false,
                    0,
                );
                error.delivered = !e.is_connect();
                return Err(error);
            }
            Some(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let mut body = Vec::new();
            let mut stream = response.bytes_stream();
            while body.len() < ERROR_BODY {
                match before(clock, total_deadline, stream.next()).await {
                    Some(Some(Ok(bytes))) => body.extend_from_slice(&bytes),
                    _ => break,
                }
            }
            let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
            let message = json
                .as_ref()
                .and_then(wire::error_message)
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&body);
                    text.trim().chars().take(200).collect()
                });
            let message = redact(message);
            let failure = match too_long(status.as_u16(), &message, json.as_ref()) {
                Some(failure) => failure,
                None => Failure::Status {
                    status: status.as_u16(),
                    message,
                },
            };
            return Err(AttemptError {
                failure,
                retry_after: super::retry::retry_after(&headers, wall_now),
                streamed: false,
                bytes_in: body.len() as u64,
                delivered: true,
            });
        }

        let mut decoder = Decoder::new(request.dialect, request.format);
        let mut stream = response.bytes_stream();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut ttft = None;
        let (mut input_tokens, mut output_tokens) = (None, None);
        let mut finish = Finish::Stop;
        let mut bytes_in = 0u64;
        // A whole (non-streamed) answer has no first token before its end: once the headers are
        // in, only the total deadline applies.
        let whole = request.format == wire::Format::Json;
        loop {
            let got_text = ttft.is_some() || whole;
            let deadline = if got_text {
                total_deadline
            } else {
                first_deadline.min(total_deadline)
            };
            let decoded = match before(clock, deadline, stream.next()).await {
                None => return Err(fail(timeout(got_text), got_text, bytes_in)),
                Some(None) => {
                    let end = decoder.end(&mut pieces);
                    end.map(|()| true)
                }
                Some(Some(Err(e))) => {
                    return Err(fail(
                        Failure::Connect {
                            message: redact(describe(&e)),
                        },
                        got_text,
                        bytes_in,
                    ));
                }
                Some(Some(Ok(bytes))) => {
                    bytes_in += bytes.len() as u64;
                    decoder.feed(&bytes, &mut pieces).map(|()| false)
                }
            };
            for piece in pieces.drain(..) {
                match piece {
                    Piece::Text(t) => {
                        if ttft.is_none() {
                            ttft = Some(clock.now().saturating_duration_since(started));
                        }
                        sink.text(&t);
                        text.push_str(&t);
                    }
                    Piece::Usage { input, output } => {
                        input_tokens = input.or(input_tokens);
                        output_tokens = output.or(output_tokens);
                    }
                    Piece::Finish(f) => finish = f,
                }
            }
            match decoded {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    let failure = match e {
                        WireError::Cut => Failure::Cut,
                        WireError::Empty => Failure::TooLong {
                            tokens: None,
                            window: None,
                            message: String::new(),
                        },
                        other => Failure::Malformed {
                            message: redact(other.to_string()),
                        },
                    };
                    return Err(fail(failure, ttft.is_some(), bytes_in));
                }
            }
        }
        let ttft = ttft.unwrap_or_else(|| clock.now().saturating_duration_since(started));
        Ok(Attempt {
            text,
            finish,
            input_tokens,
            output_tokens,
            ttft,
            bytes_in,
        })
    }
}

/// Phrases servers use when a prompt does not fit the model's context window: OpenAI
/// (`context_length_exceeded`, "maximum context length"), llama.cpp (`exceed_context_size_error`,
/// "exceeds the available context size"), llama-cpp-python ("Requested tokens … exceed context
/// window"), vLLM and TGI ("maximum context length", "must have less than"), Ollama and others
/// ("context length", "context window"), Anthropic ("prompt is too long").
const TOO_LONG: [&str; 9] = [
    "context_length_exceeded",
    "exceed_context_size",
    "exceeds the available context size",
    "maximum context length",
    "context length",
    "context window",
    "prompt is too long",
    "input is too long",
    "too many tokens",
];

/// A 400 or 413 that says the prompt is too long, with the server's figures when it gave them.
fn too_long(status: u16, message: &str, json: Option<&serde_json::Value>) -> Option<Failure> {
    let lower = message.to_ascii_lowercase();
    if !(status == 400 || status == 413 || status == 422)
        || !TOO_LONG.iter().any(|p| lower.contains(p))
    {
        return None;
    }
    let error = json.map(|j| &j["error"]);
    let field = |name: &str| error.and_then(|e| e[name].as_u64());
    let tokens = field("n_prompt_tokens")
        .or_else(|| number_after(&lower, "requested tokens ("))
        .or_else(|| number_after(&lower, "tokens ("))
        .or_else(|| number_after(&lower, "resulted in "))
        .or_else(|| number_after(&lower, "request ("))
        .or_else(|| number_after(&lower, "prompt is too long: "))
        .or_else(|| number_after(&lower, "requested "));
    let window = field("n_ctx")
        .or_else(|| number_after(&lower, "maximum context length is "))
        .or_else(|| number_after(&lower, "available context size ("))
        .or_else(|| number_after(&lower, "context window of "));
    Some(Failure::TooLong {
        tokens,
        window,
        message: message.to_owned(),
    })
}

/// The number that follows `marker` in `text`.
fn number_after(text: &str, marker: &str) -> Option<u64> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// `f`, unless `deadline` on `clock` comes first.
pub async fn before<F: std::future::Future>(
    clock: &dyn Clock,
    deadline: Instant,
    f: F,
) -> Option<F::Output> {
    let sleep = clock.sleep_until(deadline);
    tokio::select! {
        biased;
        value = f => Some(value),
        () = sleep => None,
    }
}

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error;
    // The innermost cause says what happened ("Connection refused"); the outer ones repeat the url.
    let mut cause: &dyn Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let what = if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else if error.is_body() || error.is_decode() {
        "the connection broke"
    } else {
        "request failed"
    };
    format!("{what}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: u16, body: &str) -> Option<Failure> {
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let message = json
            .as_ref()
            .and_then(wire::error_message)
            .unwrap_or_default();
        too_long(status, &message, json.as_ref())
    }

    #[test]
    fn each_servers_too_long_answer_is_read_with_its_figures() {
        let cases = [
            // OpenAI.
            (
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                Some(9001),
                Some(8192),
            ),
            // llama.cpp server.
            (
                r#"{"error":{"code":400,"message":"request (13392 tokens) exceeds the available context size (8192 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":13392,"n_ctx":8192}}"#,
                Some(13392),
                Some(8192),
            ),
            // llama-cpp-python, a plain completion.
            (
                r#"{"error":{"message":"This model's maximum context length is 2048 tokens, however you requested 3000 tokens (2872 in your prompt; 128 for the completion). Please reduce your prompt; or completion length.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
                Some(2872),
                Some(2048),
            ),
            // Anthropic.
            (
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210345 tokens > 200000 maximum"}}"#,
                Some(210_345),
                None,
            ),
        ];
        for (body, tokens, window) in cases {
            match read(400, body) {
                Some(Failure::TooLong {
                    tokens: t,
                    window: w,
                    message,
                }) => {
                    assert_eq!((t, w), (tokens, window), "{body}");
                    assert!(!message.is_empty());
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        // Other 400s, and the phrase under another status, are what they are.
        assert_eq!(read(400, r#"{"error":"model 'x' not found"}"#), None);
        assert_eq!(
            read(
                500,
                r#"{"error":{"message":"maximum context length is 10"}}"#
            ),
            None
        );
        let shown = Failure::TooLong {
            tokens: None,
            window: None,
            message: String::new(),
        }
        .to_string();
        assert!(shown.contains("empty stream"), "{shown}");
        assert!(
            !Failure::TooLong {
                tokens: None,
                window: None,
                message: String::new()
            }
            .counts_against_provider()
        );
    }
}
