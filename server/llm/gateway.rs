//! The gateway: the one door to models. `Gateway::call` looks a call up in L1, joins it to an
//! identical call already in flight, or starts a flight: L2, then the route provider by provider,
//! each behind its daily budget, limiter and circuit breaker, retried on 429, 5xx and broken
//! connections with backoff — its answer streamed to every subscriber. Dropping the last
//! subscriber cancels the flight, which drops the HTTP request.
//!
//! This file holds the call's vocabulary (`CallRequest`, `Answer`, `Source`, `GatewayError`) and
//! its orchestration. The parts it orchestrates live beside it: cache keys and lookups in
//! `cache`, daily spending in `budget`, provider order in `route`, audit rows in `audit`, what a
//! subscriber reads in `reply`. Time comes from the injected clock, so tests drive limits,
//! backoff and timeouts without sleeping. It never speaks a wire format or HTTP itself (`wire`,
//! `provider`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::audit::{CacheLevel, CallOutcome};
use super::budget::{self, Spending};
use super::cache::{self, L1, cache_key, l1_cache, l2_key};
use super::clock::Clock;
use super::config::Config;
use super::limits::Priority;
use super::prompt::{Parts, Prompt};
use super::provider::{Attempt, Failure, Provider, ProviderStats};
use super::reply::{Progress, ProgressSink, ready};
use super::retry::{MAX_RETRY_AFTER, backoff};
use super::route::{Setup, build_setup, route};
use super::store::Store;
use super::wire::{self, Finish, Params};
use crate::context::{Encoding, Tokenizer};
use crate::resources::lock;

pub use super::budget::SpentToday;
pub use super::cache::CacheStats;
pub use super::reply::{Event, Reply, Status};

/// One request for a model's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    /// Who asks (an agent's name): for budgets, cache TTL and the audit.
    pub agent: String,
    /// A route name from `[routes]`; default: the agent's route, else `completion` for
    /// interactive calls, else `default`, else every provider.
    pub route: Option<String>,
    pub priority: Priority,
    pub prompt: Prompt,
    pub params: Params,
    /// Changes when the prompt template does, so old answers are not reused.
    pub template_version: String,
    /// How long the answer may be reused; `None` = the agent's or the config's TTL; zero = never.
    pub cache_ttl: Option<Duration>,
    /// What went out, for the audit: workspace-relative paths and chunk ids.
    pub files: Vec<String>,
    pub chunks: Vec<String>,
    /// Ask the provider to stream (text arrives as it is written); otherwise one JSON answer.
    pub stream: bool,
}

impl CallRequest {
    pub fn new(agent: &str, priority: Priority, prompt: Prompt) -> CallRequest {
        CallRequest {
            agent: agent.to_owned(),
            route: None,
            priority,
            prompt,
            params: Params::default(),
            template_version: "1".to_owned(),
            cache_ttl: None,
            files: Vec::new(),
            chunks: Vec::new(),
            stream: true,
        }
    }
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A model answered this call.
    Model,
    /// The in-memory cache.
    L1,
    /// The on-disk cache.
    L2,
    /// An identical call already in flight answered it.
    Coalesced,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub text: String,
    pub provider: String,
    pub model: String,
    /// The model ran out of `max_tokens`: complete as a response, perhaps cut short as text.
    pub truncated: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Token counts are estimates (the provider reported none).
    pub estimated: bool,
    pub source: Source,
    pub first_token_ms: Option<u64>,
    pub total_ms: u64,
}

/// Why a call produced no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GatewayError {
    /// The route names no configured provider.
    NoProvider {
        route: String,
    },
    /// A daily budget is spent.
    BudgetSpent {
        scope: String,
        budget: u64,
        spent: u64,
    },
    /// Every provider on the route failed; one line per provider.
    Unavailable {
        tried: Vec<(String, String)>,
    },
    /// The provider failed after part of the answer had arrived; the part is not an answer.
    Interrupted {
        provider: String,
        message: String,
    },
    Cancelled,
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::NoProvider { route } => write!(
                f,
                "the route `{route}` names no configured provider — check [providers] and [routes] in your config"
            ),
            GatewayError::BudgetSpent {
                scope,
                budget,
                spent,
            } => write!(
                f,
                "the daily token budget of {scope} is spent ({spent} of {budget} tokens); it resets at 00:00 UTC"
            ),
            GatewayError::Unavailable { tried } => {
                f.write_str("no model answered: ")?;
                for (i, (provider, why)) in tried.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{provider}: {why}")?;
                }
                Ok(())
            }
            GatewayError::Interrupted { provider, message } => write!(
                f,
                "{provider} stopped in the middle of its answer ({message}); nothing partial was used"
            ),
            GatewayError::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for GatewayError {}

#[derive(Debug, Default)]
struct Counters {
    l1_hits: AtomicU64,
    l1_misses: AtomicU64,
    l2_hits: AtomicU64,
    l2_misses: AtomicU64,
    coalesced: AtomicU64,
    refused: AtomicU64,
    cancelled: AtomicU64,
}

struct Inner {
    setup: RwLock<Arc<Setup>>,
    clock: Arc<dyn Clock>,
    /// Wall time at `epoch` on the clock, so cache expiry and budgets follow the injected clock.
    epoch: (Instant, SystemTime),
    /// Rebuilt when `[cache] memory_mb` changes.
    l1: RwLock<L1>,
    store: RwLock<Option<Arc<Store>>>,
    inflight: Mutex<HashMap<u128, Weak<watch::Sender<Progress>>>>,
    counters: Counters,
    /// The last call found no provider reachable.
    offline: std::sync::atomic::AtomicBool,
    spending: Spending,
    rng: Mutex<u64>,
    workspace: RwLock<Option<String>>,
}

/// The LLM gateway. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// The gateway's figures for `strata/stats`.
#[derive(Clone, Debug)]
pub struct GatewayStats {
    pub providers: BTreeMap<String, ProviderStats>,
    pub cache: CacheStats,
    pub coalesced: u64,
    pub refused: u64,
    pub cancelled: u64,
    pub in_flight: usize,
    pub spent_today: SpentToday,
}

impl Gateway {
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Gateway {
        let l1_bytes = config.cache.memory_mb.saturating_mul(1 << 20);
        let setup = Arc::new(build_setup(config, &clock, None));
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Gateway {
            inner: Arc::new(Inner {
                setup: RwLock::new(setup),
                epoch: (clock.now(), SystemTime::now()),
                clock,
                l1: RwLock::new(l1_cache(l1_bytes)),
                store: RwLock::new(None),
                inflight: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                offline: std::sync::atomic::AtomicBool::new(false),
                spending: Spending::default(),
                rng: Mutex::new(seed),
                workspace: RwLock::new(None),
            }),
        }
    }

    /// Connects the on-disk cache and the audit. Blocking (reads today's spending): call it off
    /// the LSP task.
    pub fn attach_store(&self, store: Arc<Store>) {
        let day_start = budget::day_start_ms(self.today());
        let (providers, agents) = store.spent_since(day_start);
        self.inner.spending.load(self.today(), providers, agents);
        *write(&self.inner.store) = Some(store);
    }

    pub fn store(&self) -> Option<Arc<Store>> {
        read(&self.inner.store).clone()
    }

    /// Names the workspace in audit rows.
    pub fn set_workspace(&self, workspace: Option<String>) {
        *write(&self.inner.workspace) = workspace;
    }

    /// Replaces the configuration. Providers whose settings did not change keep their state
    /// (circuit, moving averages, limiter, counters).
    pub fn reconfigure(&self, config: Config) {
        let old = self.setup();
        if old.config.cache.memory_mb != config.cache.memory_mb {
            *write(&self.inner.l1) = l1_cache(config.cache.memory_mb.saturating_mul(1 << 20));
        }
        let setup = build_setup(config, &self.inner.clock, Some(&old));
        *write(&self.inner.setup) = Arc::new(setup);
    }

    pub fn config(&self) -> Config {
        self.setup().config.clone()
    }

    pub fn completion_config(&self) -> super::config::CompletionConfig {
        self.setup().config.completion.clone()
    }

    fn l1(&self) -> L1 {
        read(&self.inner.l1).clone()
    }

    fn setup(&self) -> Arc<Setup> {
        read(&self.inner.setup).clone()
    }

    pub(super) fn wall_ms(&self) -> i64 {
        let (instant, wall) = self.inner.epoch;
        let now = wall + self.inner.clock.now().saturating_duration_since(instant);
        now.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// Milliseconds on the clock since `started`.
    pub(super) fn ms_since(&self, started: Instant) -> u64 {
        self.inner
            .clock
            .now()
            .saturating_duration_since(started)
            .as_millis() as u64
    }

    /// The workspace audit rows name.
    pub(super) fn workspace(&self) -> Option<String> {
        read(&self.inner.workspace).clone()
    }

    fn wall_now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.wall_ms().max(0) as u64)
    }

    /// Today (UTC) on the gateway's clock, for daily budgets.
    fn today(&self) -> i64 {
        budget::day(self.wall_ms())
    }

    /// The providers a call tries, in order.
    pub fn route(&self, request: &CallRequest) -> Result<Vec<Arc<Provider>>, GatewayError> {
        route(&self.setup(), request)
    }

    /// The tokens of `text` as the configured tokenizer counts them (`[context] encoding`).
    pub fn tokens(&self, text: &str) -> u64 {
        let encoding = (self.setup().config.context.encoding.as_deref())
            .and_then(Encoding::from_name)
            .unwrap_or_default();
        u64::from(Tokenizer::new(encoding).count(text))
    }

    /// The prompt's tokens, part by part, as [`Gateway::tokens`] counts them.
    pub fn prompt_tokens(&self, prompt: &Prompt) -> u64 {
        let count = |text: &str| self.tokens(text);
        match prompt.parts() {
            Parts::Chat { system, messages } => {
                system.as_deref().map_or(0, count)
                    + messages.iter().map(|m| count(&m.content)).sum::<u64>()
            }
            Parts::Fim { prefix, suffix } => count(prefix) + count(suffix),
        }
    }

    /// The most tokens a prompt for `agent` (on `route`, at `priority`) may hold: the smallest
    /// `context_window` of the providers it may go to, less `max_tokens` for the answer and a
    /// tenth spare (Strata's tokenizer is not the model's). `None` when no provider on the route
    /// sets a window: then nothing limits a prompt but the tiers' budgets.
    pub fn prompt_room(
        &self,
        agent: &str,
        route: Option<&str>,
        priority: Priority,
        max_tokens: u32,
    ) -> Option<u32> {
        let mut probe = CallRequest::new(agent, priority, Prompt::chat(None, ""));
        probe.route = route.map(str::to_owned);
        let window = self
            .route(&probe)
            .ok()?
            .iter()
            .filter_map(|p| p.config.context_window)
            .min()?;
        Some((window - window / 10).saturating_sub(max_tokens))
    }

    /// Starts a call (or joins an identical one, or answers from the cache) and returns at once.
    pub fn call(&self, request: CallRequest) -> Result<Reply, GatewayError> {
        let started = self.inner.clock.now();
        let setup = self.setup();
        let providers = route(&setup, &request)?;
        let ttl = cache::ttl(&setup.config, &request);
        let keys: Vec<(Arc<Provider>, u128)> = providers
            .iter()
            .map(|p| (p.clone(), cache_key(p, &request)))
            .collect();
        let now_ms = self.wall_ms();
        if !ttl.is_zero() {
            for (_, key) in &keys {
                if let Some(hit) = self.l1().get(key) {
                    if hit.expires_ms > now_ms {
                        self.inner.counters.l1_hits.fetch_add(1, Ordering::Relaxed);
                        let mut answer = hit.answer.clone();
                        answer.source = Source::L1;
                        answer.first_token_ms = Some(0);
                        answer.total_ms = 0;
                        self.audit(
                            &request,
                            &answer.provider,
                            &answer.model,
                            CacheLevel::L1,
                            0,
                            Ok(&answer),
                            started,
                        );
                        return Ok(ready(answer));
                    }
                    self.l1().invalidate(key);
                }
            }
            self.inner
                .counters
                .l1_misses
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Err(refusal) = self.check_agent_budget(&setup.config, &request) {
            self.audit_row(
                &request,
                None,
                None,
                CacheLevel::Miss,
                0,
                0,
                (0, 0),
                CallOutcome::Refused,
                Some(refusal.to_string()),
                None,
                started,
            );
            return Err(refusal);
        }

        let flight = flight_key(&keys, &request);
        let mut inflight = lock(&self.inner.inflight);
        if let Some(sender) = inflight.get(&flight).and_then(Weak::upgrade) {
            let joined = sender.borrow().outcome.is_none();
            if joined {
                self.inner
                    .counters
                    .coalesced
                    .fetch_add(1, Ordering::Relaxed);
                // Its audit row is written when the flight ends, with how it ended.
                let joiner = CallRequest {
                    prompt: Prompt::chat(None, ""),
                    agent: request.agent.clone(),
                    route: request.route.clone(),
                    priority: request.priority,
                    params: request.params.clone(),
                    template_version: request.template_version.clone(),
                    cache_ttl: request.cache_ttl,
                    files: request.files.clone(),
                    chunks: request.chunks.clone(),
                    stream: request.stream,
                };
                sender.send_modify(|p| p.joined.push((joiner, started)));
                return Ok(Reply::new(sender.subscribe(), true));
            }
        }
        let (tx, rx) = watch::channel(Progress::queued());
        let tx = Arc::new(tx);
        inflight.insert(flight, Arc::downgrade(&tx));
        drop(inflight);
        let gateway = self.clone();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                outcome = gateway.run(&request, &keys, ttl, &tx, started) => Some(outcome),
                () = tx.closed() => None,
            };
            if outcome.is_none() {
                // Counted before the flight leaves the map, so `in_flight() == 0` implies it.
                gateway
                    .inner
                    .counters
                    .cancelled
                    .fetch_add(1, Ordering::Relaxed);
            }
            {
                let mut inflight = lock(&gateway.inner.inflight);
                if inflight
                    .get(&flight)
                    .is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(&tx)))
                {
                    inflight.remove(&flight);
                }
            }
            let mut joined = Vec::new();
            tx.send_if_modified(|p| {
                joined = std::mem::take(&mut p.joined);
                false
            });
            gateway.audit_joined(joined, outcome.as_ref());
            match outcome {
                Some(outcome) => tx.send_modify(|p| p.outcome = Some(outcome)),
                None => {
                    let sent = tx.borrow().sent.clone();
                    let (provider, model, bytes) = match &sent {
                        Some((p, m, b)) => (Some(p.as_str()), Some(m.as_str()), *b),
                        None => (None, None, 0),
                    };
                    gateway.audit_row(
                        &request,
                        provider,
                        model,
                        CacheLevel::Miss,
                        bytes,
                        0,
                        (0, 0),
                        CallOutcome::Cancelled,
                        None,
                        None,
                        started,
                    );
                }
            }
        });
        Ok(Reply::new(rx, false))
    }

    /// Forgets the cached answers to `request` (its caller found the answer unusable), so the
    /// next identical call asks a model again.
    pub fn forget(&self, request: &CallRequest) {
        let Ok(providers) = self.route(request) else {
            return;
        };
        let store = self.store();
        for provider in providers {
            let key = cache_key(&provider, request);
            self.l1().invalidate(&key);
            if let Some(store) = &store {
                store.forget(&l2_key(key));
            }
        }
    }

    /// Calls and waits for the whole answer.
    pub async fn complete(&self, request: CallRequest) -> Result<Answer, GatewayError> {
        self.call(request)?.answer().await
    }

    fn check_agent_budget(
        &self,
        config: &Config,
        request: &CallRequest,
    ) -> Result<(), GatewayError> {
        let budget = config
            .agents
            .get(&request.agent)
            .and_then(|a| a.daily_tokens);
        let checked = self
            .inner
            .spending
            .check_agent(self.today(), &request.agent, budget);
        if checked.is_err() {
            self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        checked
    }

    fn provider_budget(&self, provider: &Provider) -> Result<(), Failure> {
        let checked = self.inner.spending.check_provider(
            self.today(),
            &provider.name,
            provider.config.daily_tokens,
        );
        if checked.is_err() {
            self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        checked
    }

    fn spend(&self, provider: &str, agent: &str, tokens: u64) {
        self.inner
            .spending
            .add(self.today(), provider, agent, tokens);
    }

    fn jitter(&self) -> f64 {
        let mut state = lock(&self.inner.rng);
        // xorshift64*
        let mut x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    async fn run(
        &self,
        request: &CallRequest,
        keys: &[(Arc<Provider>, u128)],
        ttl: Duration,
        tx: &watch::Sender<Progress>,
        started: Instant,
    ) -> Result<Answer, GatewayError> {
        let clock = &*self.inner.clock;
        if !ttl.is_zero()
            && let Some(store) = self.store()
        {
            let hexes: Vec<u128> = keys.iter().map(|(_, k)| *k).collect();
            match cache::l2_lookup(store, &hexes, self.wall_ms()).await {
                Some((i, cached)) => {
                    self.inner.counters.l2_hits.fetch_add(1, Ordering::Relaxed);
                    self.l1().insert(keys[i].1, Arc::new(cached.clone()));
                    let mut answer = cached.answer;
                    answer.source = Source::L2;
                    answer.first_token_ms = Some(0);
                    answer.total_ms =
                        clock.now().saturating_duration_since(started).as_millis() as u64;
                    tx.send_modify(|p| p.text = answer.text.clone());
                    self.audit(
                        request,
                        &answer.provider,
                        &answer.model,
                        CacheLevel::L2,
                        0,
                        Ok(&answer),
                        started,
                    );
                    return Ok(answer);
                }
                None => {
                    self.inner
                        .counters
                        .l2_misses
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
        }

        let estimate = estimate_tokens(request);
        let mut tried: Vec<(String, String)> = Vec::new();
        // Whether every provider tried failed to connect (the status line's "offline").
        let mut unreachable = true;
        // The prompt's tokens, counted when a provider's window asks for them.
        let mut counted: Option<u64> = None;
        let mut count = || *counted.get_or_insert_with(|| self.prompt_tokens(&request.prompt));
        for (provider, key) in keys {
            let mut params = request.params.clone();
            if let Some(window) = provider.config.context_window.map(u64::from) {
                let tokens = count();
                if tokens >= window {
                    // Not sent: the server could only refuse it, or cut it without saying so.
                    let failure = Failure::TooLong {
                        tokens: Some(tokens),
                        window: Some(window),
                        message: "Strata did not send it".to_owned(),
                    };
                    self.audit_row(
                        request,
                        Some(&provider.name),
                        Some(&provider.config.model),
                        CacheLevel::Miss,
                        0,
                        0,
                        (0, 0),
                        CallOutcome::Refused,
                        Some(failure.to_string()),
                        None,
                        started,
                    );
                    unreachable = false;
                    tried.push((provider.name.clone(), too_long_hint(provider, &failure)));
                    continue;
                }
                // The answer gets what room is left.
                let room = (window - tokens).min(u64::from(u32::MAX)) as u32;
                params.max_tokens = params.max_tokens.min(room);
            }
            let wire = wire::request(&provider.config, &request.prompt, &params, request.stream);
            let body_len = serde_json::to_vec(&wire.body).map_or(0, |b| b.len()) as u64;
            let api_key = match provider.key() {
                Ok(k) => k,
                Err(failure) => {
                    tried.push((provider.name.clone(), failure.to_string()));
                    unreachable = false;
                    continue;
                }
            };
            if let Err(failure) = self.provider_budget(provider) {
                tried.push((provider.name.clone(), failure.to_string()));
                unreachable = false;
                continue;
            }
            let mut attempt_no = 0u32;
            let outcome: Result<(Attempt, Instant), Failure> = loop {
                let Some(admitted) = provider.admit(clock.now()) else {
                    break Err(Failure::CircuitOpen);
                };
                tx.send_modify(|p| {
                    p.status = Status::WaitingForLimit {
                        provider: provider.name.clone(),
                    }
                });
                let permit = match provider.limiter.acquire(request.priority, estimate).await {
                    Ok(permit) => permit,
                    Err(e) => {
                        drop(admitted);
                        break Err(Failure::Refused {
                            message: e.to_string(),
                        });
                    }
                };
                tx.send_modify(|p| {
                    p.status = Status::Requesting {
                        provider: provider.name.clone(),
                        attempt: attempt_no,
                    }
                });
                let sink = ProgressSink {
                    tx,
                    provider: &provider.name,
                };
                tx.send_modify(|p| {
                    p.sent = Some((
                        provider.name.clone(),
                        provider.config.model.clone(),
                        body_len,
                    ))
                });
                let attempt_started = clock.now();
                let result = provider
                    .attempt(&wire, api_key.as_deref(), clock, self.wall_now(), &sink)
                    .await;
                // The attempt's row is written below; a cancellation from here on sent nothing.
                tx.send_modify(|p| p.sent = None);
                match result {
                    Ok(done) => {
                        admitted.succeeded();
                        let used = done
                            .input_tokens
                            .unwrap_or(0)
                            .saturating_add(done.output_tokens.unwrap_or(0));
                        permit.settle(if used > 0 { used } else { estimate });
                        break Ok((done, attempt_started));
                    }
                    Err(error) => {
                        admitted.failed(&error.failure, clock.now());
                        if error.streamed {
                            // The model worked on it: the tokens count, as estimated.
                            drop(permit);
                            self.spend(&provider.name, &request.agent, u64::from(estimate));
                        } else {
                            permit.settle(0);
                        }
                        self.audit_row(
                            request,
                            Some(&provider.name),
                            Some(&provider.config.model),
                            CacheLevel::Miss,
                            if error.delivered { body_len } else { 0 },
                            error.bytes_in,
                            (0, 0),
                            CallOutcome::Error,
                            Some(error.failure.to_string()),
                            None,
                            started,
                        );
                        if error.streamed {
                            return Err(GatewayError::Interrupted {
                                provider: provider.name.clone(),
                                message: error.failure.to_string(),
                            });
                        }
                        let asked = error.retry_after.filter(|d| !d.is_zero());
                        if !error.failure.retryable()
                            || attempt_no >= provider.config.retries
                            || asked.is_some_and(|d| d > MAX_RETRY_AFTER)
                        {
                            break Err(error.failure);
                        }
                        if let Some(pause) = asked {
                            provider.limiter.pause_until(clock.now() + pause);
                        }
                        let delay =
                            backoff(attempt_no, self.jitter()).max(asked.unwrap_or_default());
                        provider.retries.fetch_add(1, Ordering::Relaxed);
                        tx.send_modify(|p| {
                            p.status = Status::Retrying {
                                provider: provider.name.clone(),
                                after_ms: delay.as_millis() as u64,
                            }
                        });
                        tracing::info!(
                            "{}: {} — retrying in {} ms",
                            provider.name,
                            error.failure,
                            delay.as_millis()
                        );
                        clock.sleep(delay).await;
                        attempt_no += 1;
                    }
                }
            };
            match outcome {
                Ok((done, attempt_started)) => {
                    // A filtered or refused answer is passed on but not kept.
                    let cacheable = matches!(done.finish, Finish::Stop | Finish::Length);
                    let total = clock.now().saturating_duration_since(started);
                    provider.record_success(
                        done.ttft,
                        clock.now().saturating_duration_since(attempt_started),
                    );
                    let estimated = done.input_tokens.is_none() && done.output_tokens.is_none();
                    let input = done
                        .input_tokens
                        .map_or_else(|| request.prompt.len() as u64 / 4, u64::from);
                    let output = done
                        .output_tokens
                        .map_or_else(|| done.text.len() as u64 / 4, u64::from);
                    provider.tokens_in.fetch_add(input, Ordering::Relaxed);
                    provider.tokens_out.fetch_add(output, Ordering::Relaxed);
                    self.spend(&provider.name, &request.agent, input + output);
                    let answer = Answer {
                        text: done.text,
                        provider: provider.name.clone(),
                        model: provider.config.model.clone(),
                        truncated: done.finish == Finish::Length,
                        input_tokens: input,
                        output_tokens: output,
                        estimated,
                        source: Source::Model,
                        first_token_ms: Some(done.ttft.as_millis() as u64),
                        total_ms: total.as_millis() as u64,
                    };
                    self.audit_row(
                        request,
                        Some(&provider.name),
                        Some(&provider.config.model),
                        CacheLevel::Miss,
                        body_len,
                        done.bytes_in,
                        (input, output),
                        CallOutcome::Ok,
                        None,
                        answer.first_token_ms,
                        started,
                    );
                    if !ttl.is_zero() && cacheable {
                        cache::remember(
                            &self.l1(),
                            self.store().as_deref(),
                            *key,
                            &answer,
                            ttl,
                            self.wall_ms(),
                        );
                    }
                    self.inner.offline.store(false, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(failure) => {
                    if matches!(failure, Failure::CircuitOpen) {
                        tracing::info!("{}: circuit open, falling back", provider.name);
                    }
                    unreachable &= matches!(failure, Failure::Connect { .. });
                    let url = &provider.config.url;
                    let why = match failure {
                        Failure::Connect { .. } => {
                            format!("{failure} — is the server at {url} running?")
                        }
                        Failure::TooLong {
                            tokens,
                            window,
                            message,
                        } => {
                            let failure = Failure::TooLong {
                                tokens: tokens.or_else(|| Some(count())),
                                window: window.or(provider.config.context_window.map(u64::from)),
                                message,
                            };
                            too_long_hint(provider, &failure)
                        }
                        failure => failure.to_string(),
                    };
                    tried.push((provider.name.clone(), why));
                }
            }
        }
        self.inner
            .offline
            .store(unreachable && !tried.is_empty(), Ordering::Relaxed);
        Err(GatewayError::Unavailable { tried })
    }

    /// The gateway's figures. Reads the on-disk cache's size: call it off the LSP task.
    pub fn stats(&self) -> GatewayStats {
        let setup = self.setup();
        let now = self.inner.clock.now();
        let c = &self.inner.counters;
        let (l2_entries, l2_bytes) = self.store().map_or((0, 0), |s| s.cached());
        self.l1().run_pending_tasks();
        let spent = self.inner.spending.today(self.today());
        GatewayStats {
            providers: setup
                .providers
                .iter()
                .map(|(name, p)| (name.clone(), p.stats(now)))
                .collect(),
            cache: CacheStats {
                l1_hits: c.l1_hits.load(Ordering::Relaxed),
                l1_misses: c.l1_misses.load(Ordering::Relaxed),
                l1_entries: self.l1().entry_count(),
                l1_bytes: self.l1().weighted_size(),
                l2_hits: c.l2_hits.load(Ordering::Relaxed),
                l2_misses: c.l2_misses.load(Ordering::Relaxed),
                l2_entries,
                l2_bytes,
            },
            coalesced: c.coalesced.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            cancelled: c.cancelled.load(Ordering::Relaxed),
            in_flight: lock(&self.inner.inflight)
                .values()
                .filter(|w| w.strong_count() > 0)
                .count(),
            spent_today: spent,
        }
    }

    /// Calls in flight, whether one waits for a rate limit, and whether the last call found no
    /// provider reachable — for the editor's status line. Cheap, no I/O.
    pub fn status(&self) -> (usize, bool, bool) {
        let limited = self.setup().providers.values().any(|p| {
            let s = p.limiter.stats();
            s.waiting.iter().any(|w| *w > 0) || s.paused_for_ms > 0
        });
        (
            self.in_flight(),
            limited,
            self.inner.offline.load(Ordering::Relaxed),
        )
    }

    /// Calls in flight right now.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner.inflight)
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}

/// A too-long failure with what to do about it.
fn too_long_hint(provider: &Provider, failure: &Failure) -> String {
    let name = &provider.name;
    let what = match provider.config.context_window {
        Some(w) => format!(
            "`context_window = {w}` is set for it: if the server's window is smaller, set the server's figure"
        ),
        None => "set `context_window`".to_owned(),
    };
    format!(
        "{failure} — {what} under [providers.{name}] in your config (llama.cpp: its `-c`; Ollama: the `num_ctx` you want), and Strata fits prompts to it with room for the answer"
    )
}

/// Tokens a call may use, for the limiter: the prompt at ~4 bytes a token plus the most it may
/// write.
fn estimate_tokens(request: &CallRequest) -> u32 {
    let prompt = (request.prompt.len() / 4 + 1).min(u32::MAX as usize) as u32;
    prompt.saturating_add(request.params.max_tokens)
}

/// Identical calls in flight share this key: the same providers, parameters and prompt.
fn flight_key(keys: &[(Arc<Provider>, u128)], request: &CallRequest) -> u128 {
    let mut material = Vec::with_capacity(keys.len() * 16 + 8);
    for (_, key) in keys {
        material.extend_from_slice(&key.to_le_bytes());
    }
    material.push(request.priority as u8);
    xxhash_rust::xxh3::xxh3_128(&material)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}
