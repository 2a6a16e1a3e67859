//! A lane: a few threads kept for one kind of short job that something waits on (parses), so
//! that it never queues behind the runtime's other blocking work — context packs, prompt
//! builds, searches — which take tens of milliseconds on a large file. Threads start on demand,
//! up to the lane's width, and end after an idle spell, their stacks with them.

use std::collections::VecDeque;
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

    /// Queues `job` on the lane. Jobs start in the order given, on up to one thread per core.
    /// Should no thread run and none start, the queued jobs run here, on the caller's thread:
    /// slower, but a job is never lost (a parse holds its document's parse state).
    pub fn spawn(&'static self, job: impl FnOnce() + Send + 'static) {
        let mut state = self.lock();
        state.queue.push_back(Box::new(job));
        if state.idle > 0 {
            self.ready.notify_one();
        } else if state.live < super::cores() {
            state.live += 1;
            let spawned = std::thread::Builder::new()
                .name(self.name.to_owned())
                .spawn(move || self.serve());
            if let Err(e) = spawned {
                state.live -= 1;
                tracing::error!(
                    "no thread for {}: {e}; its jobs run on the caller's",
                    self.name
                );
                if state.live == 0 {
                    let jobs = std::mem::take(&mut state.queue);
                    drop(state);
                    for job in jobs {
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                }
            }
        }
    }

    fn serve(&'static self) {
        super::sched::yield_on_wakeup();
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                // A job that panics ends there; the thread goes on.
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

    /// Runs `job` on `LANE` and waits for its result: `None` when it panicked.
    fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        LANE.spawn(move || {
            let _ = tx.send(job());
        });
        rx.recv().ok()
    }

    #[test]
    fn jobs_run_in_order_and_a_panic_loses_nothing_but_itself() {
        assert_eq!(run(|| 2 + 2), Some(4));
        assert_eq!(run(|| -> u32 { panic!("a job that panics") }), None);
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..20 {
            let tx = tx.clone();
            LANE.spawn(move || tx.send(i).unwrap());
        }
        drop(tx);
        let mut results: Vec<i32> = rx.iter().collect();
        results.sort();
        assert_eq!(results, (0..20).collect::<Vec<_>>());
        // Idle threads end; the next job starts one again.
        for _ in 0..500 {
            if LANE.lock().live == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(LANE.lock().live, 0);
        assert_eq!(run(|| "again"), Some("again"));
    }

    /// A lane's threads run under `SCHED_BATCH`, so waking one does not take the waker's core.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_lane_thread_does_not_preempt_the_thread_that_wakes_it() {
        // SAFETY: asks for the calling thread's policy.
        let policy = run(|| unsafe { libc::sched_getscheduler(0) });
        assert_eq!(policy, Some(libc::SCHED_BATCH));
    }
}
