//! A lane: a few threads kept for one kind of short job that something waits on (parses), so
//! that it never queues behind the runtime's other blocking work — context packs, prompt
//! builds, searches — which take tens of milliseconds on a large file. Threads start on demand,
//! up to the lane's width, and end after an idle spell, their stacks with them.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

pub struct Lane {
    name: &'static str,
    keep_alive: Duration,
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    queue: VecDeque<Job>,
    /// Threads running.
    live: usize,
    /// Threads waiting for a job.
    idle: usize,
}

impl Lane {
    pub const fn new(name: &'static str, keep_alive: Duration) -> Lane {
        Lane {
            name,
            keep_alive,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                live: 0,
                idle: 0,
            }),
            ready: Condvar::new(),
        }
    }

    /// Runs `job` on the lane: resolves to its result, or `None` if it panicked or no thread
    /// could start. Jobs run in the order given, on up to one thread per core.
    pub fn run<T, F>(&'static self, job: F) -> impl Future<Output = Option<T>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(job());
        });
        let mut state = self.lock();
        state.queue.push_back(job);
        if state.idle > 0 {
            self.ready.notify_one();
        } else if state.live < super::cores() {
            state.live += 1;
            let spawned = std::thread::Builder::new()
                .name(self.name.to_owned())
                .spawn(move || self.serve());
            if let Err(e) = spawned {
                state.live -= 1;
                tracing::error!("no thread for {}: {e}", self.name);
                if state.live == 0 {
                    // Nobody would ever take it: dropping it answers `None`.
                    state.queue.clear();
                }
            }
        }
        drop(state);
        async move { rx.await.ok() }
    }

    fn serve(&'static self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A job that panics drops its sender: its caller gets `None`, the thread goes on.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                state = self.lock();
                continue;
            }
            state.idle += 1;
            let (next, timeout) = self
                .ready
                .wait_timeout_while(state, self.keep_alive, |s| s.queue.is_empty())
                .unwrap_or_else(|e| e.into_inner());
            state = next;
            state.idle -= 1;
            if timeout.timed_out() && state.queue.is_empty() {
                state.live -= 1;
                return;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static LANE: Lane = Lane::new("strata-test-lane", Duration::from_millis(50));

    #[tokio::test]
    async fn jobs_run_and_a_panic_answers_none_without_losing_the_lane() {
        assert_eq!(LANE.run(|| 2 + 2).await, Some(4));
        let panicked = LANE.run(|| -> u32 { panic!("a job that panics") }).await;
        assert_eq!(panicked, None);
        let many: Vec<_> = (0..20).map(|i| LANE.run(move || i * 10)).collect();
        let mut results = Vec::new();
        for job in many {
            results.push(job.await);
        }
        assert_eq!(results, (0..20).map(|i| Some(i * 10)).collect::<Vec<_>>());
        // Idle threads end; the next job starts one again.
        for _ in 0..500 {
            if LANE.lock().live == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(LANE.lock().live, 0);
        assert_eq!(LANE.run(|| "again").await, Some("again"));
    }
}
