//! Limits: one [`Limiter`] per provider decides when a request may start — requests and tokens
//! per minute as token buckets, a cap on requests in flight, the provider's own back-off, and
//! strict priority between completion, on-demand work and background work. It waits only on the
//! injected [`Clock`] and on permits coming back; it never sends, retries or times out a
//! request, never counts tokens itself (callers estimate and settle), and never panics.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::clock::{Clock, Sleep};

/// Who is waiting, in the order they are served: every waiting [`Priority::Interactive`] request
/// goes before any [`Priority::OnDemand`] one, which goes before any [`Priority::Background`] one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// Inline completion: someone is typing and waiting.
    Interactive,
    /// Actions and chat the user asked for.
    OnDemand,
    /// Work nobody is watching (summaries, indexing help).
    Background,
}

impl Priority {
    /// All classes, highest first; the index of each is its slot in [`LimiterStats::waiting`].
    pub const ALL: [Priority; 3] = [
        Priority::Interactive,
        Priority::OnDemand,
        Priority::Background,
    ];

    /// This class's position in [`Priority::ALL`] and [`LimiterStats::waiting`].
    pub fn index(self) -> usize {
        match self {
            Priority::Interactive => 0,
            Priority::OnDemand => 1,
            Priority::Background => 2,
        }
    }
}

/// A provider's limits; `None` is unlimited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub max_concurrent: Option<u32>,
}

/// A request that can never start under these limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// The estimate alone exceeds the whole per-minute token budget.
    TooLarge {
        estimated: u32,
        tokens_per_minute: u32,
    },
    /// A limit is set to zero (`limit` names it: "requests_per_minute" or "max_concurrent"),
    /// so no request can ever start.
    ZeroLimit { limit: &'static str },
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::TooLarge {
                estimated,
                tokens_per_minute,
            } => write!(
                f,
                "the request needs an estimated {estimated} tokens, more than the provider's \
                 whole budget of {tokens_per_minute} tokens per minute, so it can never be sent"
            ),
            LimitError::ZeroLimit { limit } => write!(
                f,
                "the provider's {limit} limit is 0, so no request can ever be sent"
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// A snapshot of a limiter, for status and logs.
#[derive(Debug, Clone, Default)]
pub struct LimiterStats {
    /// Permits alive now.
    pub in_flight: u32,
    /// Requests waiting now, per [`Priority`] (indexed as [`Priority::ALL`]).
    pub waiting: [u32; 3],
    /// Acquisitions that had to wait.
    pub waits: u64,
    /// Total time those acquisitions waited, in milliseconds.
    pub wait_ms_total: u64,
    /// What is left of a provider-requested pause, in milliseconds; 0 if none.
    pub paused_for_ms: u64,
    /// Requests left in the per-minute bucket; `None` if unlimited.
    pub requests_available: Option<f64>,
    /// Tokens left in the per-minute bucket (negative after overspending); `None` if unlimited.
    pub tokens_available: Option<f64>,
}

/// Admission for one provider. Share it as `Arc<Limiter>`; every method takes `&self`.
pub struct Limiter {
    shared: Arc<Shared>,
}

/// Permission to send one request. Dropping it frees its concurrency slot; [`Permit::settle`]
/// first corrects the token estimate with what the provider reported.
pub struct Permit {
    shared: Arc<Shared>,
    priority: Priority,
    estimated: u32,
    waited: Duration,
}

struct Shared {
    limits: Limits,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

/// Buckets hold exact integers: one token is [`UNIT`] units and a bucket of `n` per minute gains
/// `n` units every nanosecond, so refill and the time a deficit takes are computed without
/// rounding.
const UNIT: i128 = 60_000_000_000;

struct Bucket {
    per_minute: u32,
    level: i128,
    at: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Bucket {
        Bucket {
            per_minute,
            level: capacity(per_minute),
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.at {
            return;
        }
        let nanos = i128::try_from(now.duration_since(self.at).as_nanos()).unwrap_or(i128::MAX);
        let gained = nanos.saturating_mul(i128::from(self.per_minute));
        self.level = self
            .level
            .saturating_add(gained)
            .min(capacity(self.per_minute));
        self.at = now;
    }

    /// Adds (or with a negative count, takes) whole tokens; never above capacity.
    fn add(&mut self, tokens: i64) {
        self.level = self
            .level
            .saturating_add(i128::from(tokens).saturating_mul(UNIT))
            .min(capacity(self.per_minute));
    }

    /// How long until `tokens` are available (zero if they are); `None` if never by refill.
    fn wait_for(&self, tokens: u32) -> Option<Duration> {
        let deficit = i128::from(tokens)
            .saturating_mul(UNIT)
            .saturating_sub(self.level);
        if deficit <= 0 {
            return Some(Duration::ZERO);
        }
        let rate = i128::from(self.per_minute);
        if rate == 0 {
            return None;
        }
        // Round up, so that at the deadline the tokens are surely there.
        let nanos = deficit.saturating_add(rate - 1) / rate;
        Some(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    fn available(&self) -> f64 {
        self.level as f64 / UNIT as f64
    }
}

fn capacity(per_minute: u32) -> i128 {
    i128::from(per_minute).saturating_mul(UNIT)
}

struct State {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    in_flight: u32,
    background_in_flight: u32,
    paused_until: Option<Instant>,
    /// Waiters in service order — class, then arrival — each with the waker of its task.
    queue: BTreeMap<(Priority, u64), Option<Waker>>,
    next_seq: u64,
    waits: u64,
    wait_ms_total: u64,
}

/// Background work may not take the last 1/this of a bucket.
const BACKGROUND_RESERVE: u32 = 5;

/// Whether the head of the queue may start now.
enum Admit {
    Now,
    /// Not before this instant (time alone will make room).
    At(Instant),
    /// Only when something comes back: a permit dropped or settled.
    OnRelease,
}

impl State {
    fn refill(&mut self, now: Instant) {
        if let Some(b) = &mut self.requests {
            b.refill(now);
        }
        if let Some(b) = &mut self.tokens {
            b.refill(now);
        }
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
    }

    /// Whether a request of this class and size may start at `now` (buckets already refilled).
    fn admit(&self, limits: &Limits, priority: Priority, tokens: u32, now: Instant) -> Admit {
        if let Some(max) = limits.max_concurrent {
            if self.in_flight >= max {
                return Admit::OnRelease;
            }
            if priority == Priority::Background && max >= 2 && self.background_in_flight >= max - 1
            {
                return Admit::OnRelease;
            }
        }
        let mut wait = Duration::ZERO;
        for (bucket, amount) in [(&self.requests, 1), (&self.tokens, tokens)] {
            if let Some(b) = bucket {
                // Background work leaves a fifth of each bucket to the other classes, so a
                // completion does not wait for a refill that background work used up.
                let need = if priority == Priority::Background {
                    amount
                        .saturating_add(b.per_minute / BACKGROUND_RESERVE)
                        .min(b.per_minute.max(amount))
                } else {
                    amount
                };
                match b.wait_for(need) {
                    Some(d) => wait = wait.max(d),
                    None => return Admit::OnRelease,
                }
            }
        }
        let mut at = match now.checked_add(wait) {
            Some(at) => at,
            None => return Admit::OnRelease,
        };
        if let Some(until) = self.paused_until {
            at = at.max(until);
        }
        if at <= now { Admit::Now } else { Admit::At(at) }
    }

    fn take(&mut self, priority: Priority, tokens: u32) {
        if let Some(b) = &mut self.requests {
            b.add(-1);
        }
        if let Some(b) = &mut self.tokens {
            b.add(-i64::from(tokens));
        }
        self.in_flight = self.in_flight.saturating_add(1);
        if priority == Priority::Background {
            self.background_in_flight = self.background_in_flight.saturating_add(1);
        }
    }

    /// The waker of the waiter at the head of the queue, to be woken once the lock is released.
    fn head_waker(&mut self) -> Option<Waker> {
        self.queue.values_mut().next().and_then(Option::take)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wake(waker: Option<Waker>) {
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Limiter {
    /// A limiter with full buckets, nothing in flight and nobody waiting.
    pub fn new(limits: Limits, clock: Arc<dyn Clock>) -> Limiter {
        let now = clock.now();
        let state = State {
            requests: limits.requests_per_minute.map(|n| Bucket::full(n, now)),
            tokens: limits.tokens_per_minute.map(|n| Bucket::full(n, now)),
            in_flight: 0,
            background_in_flight: 0,
            paused_until: None,
            queue: BTreeMap::new(),
            next_seq: 0,
            waits: 0,
            wait_ms_total: 0,
        };
        Limiter {
            shared: Arc::new(Shared {
                limits,
                clock,
                state: Mutex::new(state),
            }),
        }
    }

    /// The limits this limiter enforces.
    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Waits until the request may start. Cancel-safe: dropping the future removes the waiter and
    /// never leaks capacity.
    ///
    /// Fails at once, without waiting, for a request no amount of waiting could admit: an
    /// estimate above the whole tokens-per-minute budget, or a limit of zero requests per minute
    /// or zero concurrent requests.
    pub async fn acquire(
        &self,
        priority: Priority,
        estimated_tokens: u32,
    ) -> Result<Permit, LimitError> {
        let limits = &self.shared.limits;
        if let Some(tokens_per_minute) = limits.tokens_per_minute
            && estimated_tokens > tokens_per_minute
        {
            return Err(LimitError::TooLarge {
                estimated: estimated_tokens,
                tokens_per_minute,
            });
        }
        if limits.requests_per_minute == Some(0) {
            return Err(LimitError::ZeroLimit {
                limit: "requests_per_minute",
            });
        }
        if limits.max_concurrent == Some(0) {
            return Err(LimitError::ZeroLimit {
                limit: "max_concurrent",
            });
        }
        let mut waiter = Waiter {
            shared: &self.shared,
            priority,
            tokens: estimated_tokens,
            started: self.shared.clock.now(),
            key: None,
            sleep: None,
        };
        std::future::poll_fn(|cx| waiter.poll(cx)).await
    }

    /// The provider said to back off (429 with Retry-After / rate-limit reset headers): no permit
    /// is granted before `until`. A pause never shortens one already in force.
    pub fn pause_until(&self, until: Instant) {
        let now = self.shared.clock.now();
        let mut state = lock(&self.shared.state);
        state.refill(now);
        if until > now {
            state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        }
        // The head may be asleep on an earlier deadline; it will find the pause when it wakes.
    }

    /// A snapshot of what is in flight, waiting, paused and left in the buckets.
    pub fn stats(&self) -> LimiterStats {
        let now = self.shared.clock.now();
        let mut state = lock(&self.shared.state);
        state.refill(now);
        let mut waiting = [0u32; 3];
        for (priority, _) in state.queue.keys() {
            let n = &mut waiting[priority.index()];
            *n = n.saturating_add(1);
        }
        LimiterStats {
            in_flight: state.in_flight,
            waiting,
            waits: state.waits,
            wait_ms_total: state.wait_ms_total,
            paused_for_ms: state
                .paused_until
                .map_or(0, |until| millis(until.saturating_duration_since(now))),
            requests_available: state.requests.as_ref().map(Bucket::available),
            tokens_available: state.tokens.as_ref().map(Bucket::available),
        }
    }
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("limits", &self.shared.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

/// One call to [`Limiter::acquire`] in progress. Dropping it (the caller gave up) leaves the
/// queue, and hands the head position on if it held it; it holds no capacity until it returns
/// a permit, so there is nothing else to give back.
struct Waiter<'a> {
    shared: &'a Arc<Shared>,
    priority: Priority,
    tokens: u32,
    started: Instant,
    /// Its place in the queue once it has had to wait.
    key: Option<(Priority, u64)>,
    /// The clock sleep towards the instant it may start, while it is at the head.
    sleep: Option<(Instant, Sleep)>,
}

impl Waiter<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<Permit, LimitError>> {
        loop {
            let now = self.shared.clock.now();
            let mut state = lock(&self.shared.state);
            state.refill(now);
            let at_head = match self.key {
                Some(key) => state.queue.keys().next() == Some(&key),
                // Not queued yet: it is first unless someone of its class or higher waits.
                None => state
                    .queue
                    .keys()
                    .next()
                    .is_none_or(|(first, _)| *first > self.priority),
            };
            let admit = if at_head {
                state.admit(&self.shared.limits, self.priority, self.tokens, now)
            } else {
                Admit::OnRelease
            };
            let deadline = match admit {
                Admit::Now => {
                    state.take(self.priority, self.tokens);
                    let waited = now.saturating_duration_since(self.started);
                    let mut next = None;
                    if let Some(key) = self.key.take() {
                        state.queue.remove(&key);
                        state.waits = state.waits.saturating_add(1);
                        state.wait_ms_total = state.wait_ms_total.saturating_add(millis(waited));
                        // The next in line may fit too (several slots may have come back).
                        next = state.head_waker();
                    }
                    drop(state);
                    self.sleep = None;
                    wake(next);
                    return Poll::Ready(Ok(Permit {
                        shared: Arc::clone(self.shared),
                        priority: self.priority,
                        estimated: self.tokens,
                        waited,
                    }));
                }
                Admit::At(at) => Some(at),
                Admit::OnRelease => None,
            };
            // Queue up (or refresh the waker) in the same critical section as the check, so a
            // release between the two cannot be missed.
            let key = match self.key {
                Some(key) => key,
                None => {
                    let key = (self.priority, state.next_seq);
                    state.next_seq = state.next_seq.wrapping_add(1);
                    self.key = Some(key);
                    key
                }
            };
            match state.queue.get_mut(&key) {
                Some(Some(w)) if w.will_wake(cx.waker()) => {}
                Some(slot) => *slot = Some(cx.waker().clone()),
                None => {
                    state.queue.insert(key, Some(cx.waker().clone()));
                }
            }
            drop(state);

            let Some(deadline) = deadline else {
                self.sleep = None;
                return Poll::Pending;
            };
            if self.sleep.as_ref().is_none_or(|(at, _)| *at != deadline) {
                self.sleep = Some((deadline, self.shared.clock.sleep_until(deadline)));
            }
            if let Some((_, sleep)) = &mut self.sleep
                && sleep.as_mut().poll(cx).is_pending()
            {
                return Poll::Pending;
            }
            // The deadline has come: look again.
            self.sleep = None;
        }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let mut state = lock(&self.shared.state);
        let was_head = state.queue.keys().next() == Some(&key);
        state.queue.remove(&key);
        let next = if was_head { state.head_waker() } else { None };
        drop(state);
        wake(next);
    }
}

impl Permit {
    /// Time spent in [`Limiter::acquire`] before this permit was granted.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The class this permit was granted to.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The token estimate this permit took from the bucket.
    pub fn estimated_tokens(&self) -> u32 {
        self.estimated
    }

    /// Corrects the token estimate with the usage the provider reported, then releases the
    /// permit. Tokens may come back (never above the bucket's capacity) or be taken beyond the
    /// estimate, which can leave the bucket negative and make later callers wait longer.
    pub fn settle(self, actual_tokens: u32) {
        let now = self.shared.clock.now();
        let mut state = lock(&self.shared.state);
        state.refill(now);
        if let Some(b) = &mut state.tokens {
            b.add(i64::from(self.estimated) - i64::from(actual_tokens));
        }
        // Dropping `self` frees the slot and wakes the head, who finds the corrected bucket.
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.in_flight = state.in_flight.saturating_sub(1);
        if self.priority == Priority::Background {
            state.background_in_flight = state.background_in_flight.saturating_sub(1);
        }
        let next = state.head_waker();
        drop(state);
        wake(next);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("priority", &self.priority)
            .field("estimated", &self.estimated)
            .field("waited", &self.waited)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use futures_util::FutureExt;
    use tokio::task::JoinHandle;

    use super::*;
    use crate::llm::clock::ManualClock;

    fn limiter(limits: Limits) -> (Arc<ManualClock>, Arc<Limiter>) {
        let clock = ManualClock::new();
        let limiter = Arc::new(Limiter::new(limits, clock.clone()));
        (clock, limiter)
    }

    fn rpm(n: u32) -> Limits {
        Limits {
            requests_per_minute: Some(n),
            ..Limits::default()
        }
    }

    fn tpm(n: u32) -> Limits {
        Limits {
            tokens_per_minute: Some(n),
            ..Limits::default()
        }
    }

    fn concurrent(n: u32) -> Limits {
        Limits {
            max_concurrent: Some(n),
            ..Limits::default()
        }
    }

    /// Polls once, without sleeping: `Some` if ready.
    fn poll<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
        f.now_or_never()
    }

    /// A permit that is available right now.
    fn now(limiter: &Limiter, priority: Priority, tokens: u32) -> Permit {
        match limiter.acquire(priority, tokens).now_or_never() {
            Some(Ok(permit)) => permit,
            other => panic!("expected an immediate permit, got {other:?}"),
        }
    }

    /// An acquisition running on its own task, so only real wake-ups can finish it.
    fn spawn(limiter: &Arc<Limiter>, priority: Priority, tokens: u32) -> JoinHandle<Permit> {
        let limiter = Arc::clone(limiter);
        tokio::spawn(async move {
            limiter
                .acquire(priority, tokens)
                .await
                .expect("the request fits")
        })
    }

    /// Lets every spawned task that has been woken run until it blocks again.
    async fn run_tasks() {
        for _ in 0..32 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn unlimited_passes_straight_through() {
        let (clock, limiter) = limiter(Limits::default());
        let permits: Vec<Permit> = (0..1000)
            .map(|i| now(&limiter, Priority::ALL[i % 3], u32::MAX))
            .collect();
        assert!(permits.iter().all(|p| p.waited() == Duration::ZERO));
        let stats = limiter.stats();
        assert_eq!(stats.in_flight, 1000);
        assert_eq!(stats.waits, 0);
        assert_eq!(stats.requests_available, None);
        assert_eq!(stats.tokens_available, None);
        assert_eq!(clock.sleepers(), 0);
        drop(permits);
        assert_eq!(limiter.stats().in_flight, 0);
    }

    #[tokio::test]
    async fn rpm_bucket_makes_the_next_request_wait_exactly_until_refill() {
        let (clock, limiter) = limiter(rpm(60));
        for _ in 0..60 {
            now(&limiter, Priority::Interactive, 0);
        }
        let mut next = Box::pin(limiter.acquire(Priority::Interactive, 0));
        assert!(poll(&mut next).is_none());
        assert_eq!(
            clock.sleepers(),
            1,
            "the head sleeps on the clock until the refill"
        );
        clock.advance(Duration::from_millis(999));
        assert!(poll(&mut next).is_none());
        clock.advance(Duration::from_millis(1));
        let permit = poll(&mut next).expect("ready after one second").unwrap();
        assert_eq!(permit.waited(), Duration::from_secs(1));
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn rpm_refill_is_exact_for_uneven_rates_and_wakes_the_task() {
        // 7 per minute: one request every 60/7 s = 8_571_428_571.43 ns, rounded up.
        let (clock, limiter) = limiter(rpm(7));
        for _ in 0..7 {
            now(&limiter, Priority::OnDemand, 0);
        }
        let task = spawn(&limiter, Priority::OnDemand, 0);
        run_tasks().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_nanos(8_571_428_571));
        run_tasks().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_nanos(1));
        let permit = task.await.unwrap();
        assert_eq!(permit.waited(), Duration::from_nanos(8_571_428_572));
        // Rounding the wait up leaves a sliver over, never a sliver short.
        let left = limiter.stats().requests_available.unwrap();
        assert!((0.0..1e-9).contains(&left), "{left}");
    }

    #[tokio::test]
    async fn buckets_start_full_and_never_overfill() {
        let (clock, limiter) = limiter(Limits {
            requests_per_minute: Some(60),
            tokens_per_minute: Some(600),
            max_concurrent: None,
        });
        let stats = limiter.stats();
        assert_eq!(stats.requests_available, Some(60.0));
        assert_eq!(stats.tokens_available, Some(600.0));
        let permit = now(&limiter, Priority::Interactive, 100);
        clock.advance(Duration::from_millis(500));
        let stats = limiter.stats();
        assert_eq!(stats.requests_available, Some(59.5));
        assert_eq!(stats.tokens_available, Some(505.0));
        clock.advance(Duration::from_secs(3600));
        permit.settle(0);
        let stats = limiter.stats();
        assert_eq!(stats.requests_available, Some(60.0));
        assert_eq!(
            stats.tokens_available,
            Some(600.0),
            "give-back stops at capacity"
        );
    }

    #[tokio::test]
    async fn tpm_takes_the_estimate_and_settle_corrects_it_both_ways() {
        // 600 per minute: 10 tokens a second.
        let (clock, limiter) = limiter(tpm(600));
        let first = now(&limiter, Priority::OnDemand, 500);
        assert_eq!(limiter.stats().tokens_available, Some(100.0));

        // 200 more do not fit; the estimate was too high and settling gives 200 back.
        let waiting = spawn(&limiter, Priority::OnDemand, 200);
        run_tasks().await;
        assert!(!waiting.is_finished());
        first.settle(300);
        let second = waiting.await.unwrap();
        assert_eq!(
            second.waited(),
            Duration::ZERO,
            "no time passed: settle woke it"
        );
        assert_eq!(limiter.stats().tokens_available, Some(100.0));

        // Now the estimate was too low: 700 more are taken and the bucket goes negative.
        second.settle(900);
        assert_eq!(limiter.stats().tokens_available, Some(-600.0));
        let mut next = Box::pin(limiter.acquire(Priority::Interactive, 0));
        assert!(poll(&mut next).is_none());
        clock.advance(Duration::from_millis(59_999));
        assert!(poll(&mut next).is_none());
        clock.advance(Duration::from_millis(1));
        let permit = poll(&mut next)
            .expect("ready once the debt is repaid")
            .unwrap();
        assert_eq!(permit.waited(), Duration::from_secs(60));
        assert_eq!(limiter.stats().tokens_available, Some(0.0));
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_is_refused_at_once() {
        let (_clock, limiter) = limiter(tpm(1000));
        let err = limiter
            .acquire(Priority::Interactive, 1001)
            .now_or_never()
            .expect("no waiting")
            .unwrap_err();
        assert_eq!(
            err,
            LimitError::TooLarge {
                estimated: 1001,
                tokens_per_minute: 1000
            }
        );
        assert_eq!(
            err.to_string(),
            "the request needs an estimated 1001 tokens, more than the provider's whole budget \
             of 1000 tokens per minute, so it can never be sent"
        );
        let stats = limiter.stats();
        assert_eq!((stats.in_flight, stats.waiting), (0, [0; 3]));
        assert_eq!(stats.tokens_available, Some(1000.0), "nothing was taken");
        // Exactly the budget fits.
        now(&limiter, Priority::Interactive, 1000);
    }

    #[tokio::test]
    async fn zero_limits_are_refused_rather_than_waited_on_forever() {
        for (limits, name) in [
            (rpm(0), "requests_per_minute"),
            (concurrent(0), "max_concurrent"),
        ] {
            let (_clock, limiter) = limiter(limits);
            let err = limiter
                .acquire(Priority::OnDemand, 0)
                .now_or_never()
                .expect("no waiting")
                .unwrap_err();
            assert_eq!(err, LimitError::ZeroLimit { limit: name });
            assert!(err.to_string().contains(name));
        }
        // Zero tokens per minute still admits requests estimated at zero tokens.
        let (_clock, limiter) = limiter(tpm(0));
        now(&limiter, Priority::OnDemand, 0);
        assert!(matches!(
            limiter.acquire(Priority::OnDemand, 1).now_or_never(),
            Some(Err(LimitError::TooLarge { .. }))
        ));
    }

    #[tokio::test]
    async fn concurrency_is_capped_and_a_dropped_permit_frees_its_slot() {
        let (clock, limiter) = limiter(concurrent(2));
        let a = now(&limiter, Priority::OnDemand, 0);
        let _b = now(&limiter, Priority::OnDemand, 0);
        let third = spawn(&limiter, Priority::OnDemand, 0);
        run_tasks().await;
        assert!(!third.is_finished());
        assert_eq!(clock.sleepers(), 0, "waiting for a slot needs no timer");
        assert_eq!(limiter.stats().in_flight, 2);
        assert_eq!(limiter.stats().waiting, [0, 1, 0]);
        drop(a);
        let c = third.await.unwrap();
        assert_eq!(limiter.stats().in_flight, 2);
        c.settle(10);
        assert_eq!(limiter.stats().in_flight, 1, "settle releases the slot too");
    }

    #[tokio::test]
    async fn waiters_are_served_strictly_by_class_then_in_arrival_order() {
        let (_clock, limiter) = limiter(concurrent(1));
        let held = now(&limiter, Priority::Interactive, 0);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (label, priority) in [
            ("background 1", Priority::Background),
            ("on-demand 1", Priority::OnDemand),
            ("background 2", Priority::Background),
            ("interactive 1", Priority::Interactive),
            ("on-demand 2", Priority::OnDemand),
            ("interactive 2", Priority::Interactive),
        ] {
            let limiter = Arc::clone(&limiter);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let permit = limiter.acquire(priority, 0).await.unwrap();
                order.lock().unwrap().push(label);
                drop(permit);
            }));
            run_tasks().await; // each one queues before the next arrives
        }
        assert_eq!(limiter.stats().waiting, [2, 2, 2]);
        assert!(order.lock().unwrap().is_empty());
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            [
                "interactive 1",
                "interactive 2",
                "on-demand 1",
                "on-demand 2",
                "background 1",
                "background 2"
            ]
        );
        let stats = limiter.stats();
        assert_eq!(
            (stats.in_flight, stats.waiting, stats.waits),
            (0, [0; 3], 6)
        );
    }

    #[tokio::test]
    async fn a_lower_class_never_takes_capacity_a_higher_one_waits_for() {
        // 60 tokens a minute: one a second.
        let (clock, limiter) = limiter(tpm(60));
        now(&limiter, Priority::Interactive, 60);
        let interactive = spawn(&limiter, Priority::Interactive, 30);
        run_tasks().await;
        // Needs no tokens at all, yet must wait behind the interactive request.
        let background = spawn(&limiter, Priority::Background, 0);
        run_tasks().await;
        assert!(!background.is_finished());
        // Nor may a newcomer of the same class jump the queue.
        assert!(
            limiter
                .acquire(Priority::Interactive, 0)
                .now_or_never()
                .is_none()
        );
        clock.advance(Duration::from_secs(29));
        run_tasks().await;
        assert!(!interactive.is_finished() && !background.is_finished());
        clock.advance(Duration::from_secs(1));
        run_tasks().await;
        assert!(interactive.is_finished());
        // Background work also leaves a fifth of the bucket (12 tokens) to the others.
        assert!(!background.is_finished());
        clock.advance(Duration::from_secs(12));
        run_tasks().await;
        assert!(background.is_finished());
        assert_eq!(limiter.stats().tokens_available, Some(12.0));
    }

    #[tokio::test]
    async fn background_work_leaves_one_slot_for_others() {
        let (_clock, limiter) = limiter(concurrent(3));
        let bg1 = now(&limiter, Priority::Background, 0);
        let _bg2 = now(&limiter, Priority::Background, 0);
        let bg3 = spawn(&limiter, Priority::Background, 0);
        run_tasks().await;
        assert!(
            !bg3.is_finished(),
            "a slot is free, but not for background work"
        );
        assert_eq!(limiter.stats().in_flight, 2);
        // Interactive finds the slot at once, though background work waits.
        let interactive = now(&limiter, Priority::Interactive, 0);
        assert_eq!(limiter.stats().in_flight, 3);
        drop(interactive);
        // Interactive gone, one background permit gone: now the waiter fits.
        drop(bg1);
        let _bg3 = bg3.await.unwrap();
        assert_eq!(limiter.stats().in_flight, 2);
        now(&limiter, Priority::OnDemand, 0);

        // With a single slot there is nothing to reserve: background may use it.
        let (_clock, limiter) = limiter_one();
        now(&limiter, Priority::Background, 0);
    }

    #[tokio::test]
    async fn background_work_leaves_a_fifth_of_the_buckets() {
        let (clock, limiter) = limiter(rpm(10));
        for _ in 0..8 {
            drop(now(&limiter, Priority::Background, 0));
        }
        let background = spawn(&limiter, Priority::Background, 0);
        run_tasks().await;
        assert!(!background.is_finished(), "background took the reserve");
        // The reserve is there for a completion at once.
        drop(now(&limiter, Priority::Interactive, 0));
        drop(now(&limiter, Priority::OnDemand, 0));
        // Background waits until the bucket holds its request plus the reserve again.
        clock.advance(Duration::from_secs(18));
        run_tasks().await;
        assert!(background.is_finished());
    }

    fn limiter_one() -> (Arc<ManualClock>, Arc<Limiter>) {
        limiter(concurrent(1))
    }

    #[tokio::test]
    async fn pause_until_holds_every_permit_until_then() {
        let (clock, limiter) = limiter(Limits::default());
        let t0 = clock.now();
        limiter.pause_until(t0 + Duration::from_secs(5));
        // A shorter pause, or one already over, does not shorten it.
        limiter.pause_until(t0 + Duration::from_secs(2));
        limiter.pause_until(t0);
        assert_eq!(limiter.stats().paused_for_ms, 5000);
        let task = spawn(&limiter, Priority::Interactive, 0);
        let mut other = Box::pin(limiter.acquire(Priority::Interactive, 0));
        assert!(poll(&mut other).is_none());
        run_tasks().await;
        clock.advance(Duration::from_millis(4999));
        run_tasks().await;
        assert!(!task.is_finished());
        assert_eq!(limiter.stats().paused_for_ms, 1);
        clock.advance(Duration::from_millis(1));
        // `other` queued first (the task had not run yet), so it goes first and hands on.
        assert!(poll(&mut other).is_some());
        let permit = task.await.unwrap();
        assert_eq!(permit.waited(), Duration::from_secs(5));
        assert_eq!(limiter.stats().paused_for_ms, 0);
        // Once over, permits flow again.
        now(&limiter, Priority::Background, 0);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaks_nothing_and_others_are_still_served() {
        let (clock, limiter) = limiter(concurrent(1));
        let held = now(&limiter, Priority::Interactive, 0);
        let mut cancelled = Box::pin(limiter.acquire(Priority::Interactive, 0));
        assert!(poll(&mut cancelled).is_none());
        let survivor = spawn(&limiter, Priority::OnDemand, 0);
        run_tasks().await;
        assert_eq!(limiter.stats().waiting, [1, 1, 0]);
        drop(cancelled);
        assert_eq!(limiter.stats().waiting, [0, 1, 0]);
        drop(held);
        let permit = survivor.await.unwrap();
        drop(permit);
        let stats = limiter.stats();
        assert_eq!((stats.in_flight, stats.waiting), (0, [0; 3]));
        now(&limiter, Priority::Background, 0);
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn dropping_the_head_hands_its_place_on_and_returns_no_tokens() {
        // 60 tokens a minute: one a second.
        let (clock, limiter) = limiter(tpm(60));
        now(&limiter, Priority::Interactive, 60);
        let mut head = Box::pin(limiter.acquire(Priority::Interactive, 30));
        assert!(poll(&mut head).is_none());
        let behind = spawn(&limiter, Priority::OnDemand, 10);
        run_tasks().await;
        assert_eq!(clock.sleepers(), 1, "only the head sleeps on the clock");
        drop(head);
        run_tasks().await;
        assert_eq!(clock.sleepers(), 1, "the new head took over the timer");
        assert_eq!(limiter.stats().waiting, [0, 1, 0]);
        clock.advance(Duration::from_millis(9_999));
        run_tasks().await;
        assert!(!behind.is_finished());
        clock.advance(Duration::from_millis(1));
        let permit = behind.await.unwrap();
        assert_eq!(permit.waited(), Duration::from_secs(10));
        assert_eq!(limiter.stats().tokens_available, Some(0.0));
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn stats_report_waits_and_their_time() {
        let (clock, limiter) = limiter(Limits {
            requests_per_minute: Some(60),
            tokens_per_minute: None,
            max_concurrent: Some(1),
        });
        let first = now(&limiter, Priority::OnDemand, 0);
        let second = spawn(&limiter, Priority::OnDemand, 0);
        run_tasks().await;
        clock.advance(Duration::from_millis(1500));
        drop(first);
        let second = second.await.unwrap();
        assert_eq!(second.waited(), Duration::from_millis(1500));
        let third = spawn(&limiter, Priority::Background, 0);
        run_tasks().await;
        clock.advance(Duration::from_millis(250));
        drop(second);
        drop(third.await.unwrap());
        let stats = limiter.stats();
        assert_eq!(stats.waits, 2);
        assert_eq!(stats.wait_ms_total, 1750);
        assert_eq!(stats.in_flight, 0);
        // 59 after the first; refilled to the cap of 60 and down to 59 for the second at 1.5 s;
        // 59.25 at 1.75 s and down to 58.25 for the third.
        assert_eq!(stats.requests_available, Some(58.25));
        assert_eq!(stats.waiting, [0, 0, 0]);
    }

    #[test]
    fn priority_serializes_in_kebab_case_and_orders_highest_first() {
        assert_eq!(
            serde_json::to_string(&Priority::OnDemand).unwrap(),
            "\"on-demand\""
        );
        let p: Priority = serde_json::from_str("\"interactive\"").unwrap();
        assert_eq!(p, Priority::Interactive);
        assert!(Priority::Interactive < Priority::OnDemand);
        assert!(Priority::OnDemand < Priority::Background);
    }

    #[test]
    fn limiter_permit_and_acquire_can_cross_threads() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let (_clock, limiter) = limiter(Limits::default());
        send_sync(&*limiter);
        let fut = limiter.acquire(Priority::Interactive, 0);
        send(&fut);
        let permit = fut.now_or_never().unwrap().unwrap();
        send_sync(&permit);
    }
}
