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
            Failure::NoKey { .. } | Failure::CircuitOpen | Failure::Refused { .. } => false,
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
                return Err(fail(
                    Failure::Connect {
                        message: redact(describe(&e)),
                    },
                    false,
                    0,
                ));
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
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| wire::error_message(&v))
                .unwrap_or_else(|| {
                    let text = String::from_utf8_lossy(&body);
                    text.trim().chars().take(200).collect()
                });
            return Err(AttemptError {
                failure: Failure::Status {
                    status: status.as_u16(),
                    message: redact(message),
                },
                retry_after: super::retry::retry_after(&headers, wall_now),
                streamed: false,
                bytes_in: body.len() as u64,
            });
        }

        let mut decoder = Decoder::new(self.config.kind, request.format);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
