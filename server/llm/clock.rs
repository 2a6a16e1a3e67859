//! Clock: the one place the gateway reads time and waits for it. [`SystemClock`] is tokio's
//! monotonic time; [`ManualClock`] moves only when a test calls [`ManualClock::advance`], so
//! tests drive time instead of sleeping. Nothing here knows about providers, limits or requests,
//! and nothing here ever reads the wall clock or sleeps for real on a manual clock.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A boxed future that completes when a deadline is reached.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Monotonic time and waiting on it, injectable so tests need not sleep.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// A future that completes once [`Clock::now`] has reached `deadline` (at once if it has).
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// A future that completes after `d` has passed. A `d` too large to represent never
    /// completes.
    fn sleep(&self, d: Duration) -> Sleep {
        match self.now().checked_add(d) {
            Some(deadline) => self.sleep_until(deadline),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// The real clock: `tokio::time`, so it follows tokio's paused time where that is used.
/// Its sleeps need a tokio runtime with the time driver enabled.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(
            deadline,
        )))
    }
}

/// A clock for tests: time starts at the instant of creation and moves only on
/// [`ManualClock::advance`], which completes every sleep whose deadline it reaches.
pub struct ManualClock {
    origin: Instant,
    shared: Arc<Mutex<Manual>>,
}

/// How far a [`ManualClock`] can be advanced: a century, so `origin + offset` always fits in
/// an [`Instant`] and time never has to stand still or wrap.
const MAX_OFFSET: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// The moving part of a [`ManualClock`], shared with its sleep futures.
#[derive(Default)]
struct Manual {
    /// How far time has been advanced since `origin`.
    offset: Duration,
    next_id: u64,
    /// Pending sleeps by id: how far past `origin` each completes, and who to wake then.
    sleepers: BTreeMap<u64, (Duration, Option<Waker>)>,
}

fn lock(m: &Mutex<Manual>) -> MutexGuard<'_, Manual> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ManualClock {
    /// A clock standing at the current instant, shared so it can be handed to a limiter as
    /// `Arc<dyn Clock>` and advanced by the test.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock {
            origin: Instant::now(),
            shared: Arc::new(Mutex::new(Manual::default())),
        })
    }

    /// Moves time forward by `d` (at most a century in all) and wakes every sleep whose
    /// deadline is now reached.
    pub fn advance(&self, d: Duration) {
        let woken: Vec<Waker> = {
            let mut m = lock(&self.shared);
            m.offset = m.offset.saturating_add(d).min(MAX_OFFSET);
            let offset = m.offset;
            let due: Vec<u64> = m
                .sleepers
                .iter()
                .filter(|(_, (at, _))| *at <= offset)
                .map(|(id, _)| *id)
                .collect();
            due.iter()
                .filter_map(|id| m.sleepers.remove(id).and_then(|(_, waker)| waker))
                .collect()
        };
        for waker in woken {
            waker.wake();
        }
    }

    /// How far time has been advanced since creation.
    pub fn elapsed(&self) -> Duration {
        lock(&self.shared).offset
    }

    /// How many sleep futures exist whose deadline has not been reached yet.
    pub fn sleepers(&self) -> usize {
        lock(&self.shared).sleepers.len()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = lock(&self.shared);
        f.debug_struct("ManualClock")
            .field("elapsed", &m.offset)
            .field("sleepers", &m.sleepers.len())
            .finish()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let offset = lock(&self.shared).offset;
        // `advance` caps the offset so this always fits; the fallback only avoids a panic.
        self.origin.checked_add(offset).unwrap_or(self.origin)
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let at = deadline.saturating_duration_since(self.origin);
        let mut m = lock(&self.shared);
        let id = m.next_id;
        m.next_id = m.next_id.wrapping_add(1);
        if at > m.offset {
            m.sleepers.insert(id, (at, None));
        }
        drop(m);
        Box::pin(ManualSleep {
            shared: Arc::clone(&self.shared),
            id,
            at,
        })
    }
}

/// A sleep on a [`ManualClock`]; registered from creation until it completes or is dropped.
struct ManualSleep {
    shared: Arc<Mutex<Manual>>,
    id: u64,
    at: Duration,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut m = lock(&self.shared);
        if m.offset >= self.at {
            m.sleepers.remove(&self.id);
            return Poll::Ready(());
        }
        let waker = cx.waker();
        match m.sleepers.get_mut(&self.id) {
            Some((_, Some(w))) if w.will_wake(waker) => {}
            Some((_, slot)) => *slot = Some(waker.clone()),
            None => {
                m.sleepers.insert(self.id, (self.at, Some(waker.clone())));
            }
        }
        Poll::Pending
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        lock(&self.shared).sleepers.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[test]
    fn manual_now_moves_only_on_advance() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), t0 + Duration::from_millis(1500));
        assert_eq!(clock.elapsed(), Duration::from_millis(1500));
    }

    #[test]
    fn manual_sleep_completes_exactly_at_its_deadline() {
        let clock = ManualClock::new();
        let mut sleep = clock.sleep(Duration::from_secs(2));
        assert_eq!(clock.sleepers(), 1);
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_millis(1999));
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(clock.sleepers(), 1);
        clock.advance(Duration::from_millis(1));
        assert_eq!(clock.sleepers(), 0);
        assert!((&mut sleep).now_or_never().is_some());
    }

    #[test]
    fn past_deadline_is_ready_at_once_and_not_counted() {
        let clock = ManualClock::new();
        let t0 = clock.now();
        clock.advance(Duration::from_secs(1));
        let sleep = clock.sleep_until(t0);
        assert_eq!(clock.sleepers(), 0);
        assert!(sleep.now_or_never().is_some());
        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }

    #[test]
    fn dropping_a_sleep_unregisters_it() {
        let clock = ManualClock::new();
        let a = clock.sleep(Duration::from_secs(1));
        let b = clock.sleep(Duration::from_secs(3));
        assert_eq!(clock.sleepers(), 2);
        drop(a);
        assert_eq!(clock.sleepers(), 1);
        drop(b);
        assert_eq!(clock.sleepers(), 0);
    }

    #[test]
    fn huge_durations_never_panic() {
        let clock = ManualClock::new();
        let mut forever = clock.sleep(Duration::MAX);
        assert!((&mut forever).now_or_never().is_none());
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        let _ = clock.now();
    }

    #[tokio::test]
    async fn advance_wakes_a_spawned_sleeper() {
        let clock = ManualClock::new();
        let sleep = clock.sleep(Duration::from_secs(5));
        let task = tokio::spawn(sleep);
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_secs(1));
        assert!(task.await.is_ok());
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn system_clock_zero_sleep_completes() {
        let clock = SystemClock;
        let before = clock.now();
        clock.sleep(Duration::ZERO).await;
        assert!(clock.now() >= before);
    }
}
