//! What the process spends. Resource profiles: one setting (`profile` in the configuration: `high_performance`,
//! `balanced` — the default — or `low_resource`) that scales what the server spends on being
//! fast — cache sizes, indexing threads, tier budgets, completion pacing and prefetch, how
//! often an open buffer is indexed while typing, how soon an idle server hands memory back.
//! [`Resources`] is a plain struct of those numbers; the configuration sets the process's
//! current one ([`set`]) and every part reads it ([`current`]) when it sizes something.
//! Explicit settings (`[completion] debounce_min_ms`, `[context]` budgets, `indexThreads`)
//! win over the profile. Numbers only: no I/O, nothing that acts. The allocator and handing
//! memory back are [`memory`]'s.

pub mod lane;
pub mod memory;
pub mod sched;

use std::sync::RwLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// More memory and threads for shorter waits: larger caches, every core indexing, larger
    /// tier budgets, eager completion, buffers indexed often.
    HighPerformance,
    /// The default.
    #[default]
    Balanced,
    /// The least memory and CPU: one indexing thread, small caches and budgets, completion after
    /// longer pauses and without prefetch, buffers indexed only when typing pauses.
    LowResource,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::HighPerformance => "high_performance",
            Profile::Balanced => "balanced",
            Profile::LowResource => "low_resource",
        }
    }

    pub fn from_name(name: &str) -> Option<Profile> {
        [
            Profile::HighPerformance,
            Profile::Balanced,
            Profile::LowResource,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }

    /// This profile's numbers on this machine (`cores`: the CPUs available).
    pub fn resources(self, cores: usize) -> Resources {
        let cores = cores.max(1);
        match self {
            Profile::HighPerformance => Resources {
                profile: self,
                index_threads: cores,
                archive_busy_cache_kib: 64 * 1024,
                archive_idle_cache_kib: 8 * 1024,
                token_cache_entries: 400_000,
                tiers: [8_192, 16_384, 32_768],
                debounce_min_ms: 20,
                debounce_max_ms: 150,
                refresh_ms: 200,
                prefetch: true,
                buffer_index_every: Some(Duration::from_secs(5)),
                release_idle: Duration::from_secs(10),
            },
            Profile::Balanced => Resources {
                profile: self,
                index_threads: (cores - 1).max(1),
                archive_busy_cache_kib: 16 * 1024,
                archive_idle_cache_kib: 512,
                token_cache_entries: 200_000,
                tiers: [4_096, 8_192, 16_384],
                debounce_min_ms: 40,
                debounce_max_ms: 250,
                refresh_ms: 300,
                prefetch: true,
                buffer_index_every: Some(Duration::from_secs(15)),
                release_idle: Duration::from_millis(250),
            },
            Profile::LowResource => Resources {
                profile: self,
                index_threads: 1,
                archive_busy_cache_kib: 4 * 1024,
                archive_idle_cache_kib: 256,
                token_cache_entries: 50_000,
                tiers: [2_048, 4_096, 8_192],
                debounce_min_ms: 80,
                debounce_max_ms: 400,
                refresh_ms: 600,
                prefetch: false,
                buffer_index_every: None,
                release_idle: Duration::from_millis(100),
            },
        }
    }
}

/// What a profile spends, in numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resources {
    pub profile: Profile,
    /// Threads that parse files while the workspace is indexed (`indexThreads` wins).
    pub index_threads: usize,
    /// SQLite's page cache for the archive writer (KiB) while a workspace is indexed, and while
    /// single files arrive; it gives back all of it once it has nothing to write.
    pub archive_busy_cache_kib: i64,
    pub archive_idle_cache_kib: i64,
    /// Token counts remembered by content hash.
    pub token_cache_entries: usize,
    /// Tier budgets in tokens (immediate, working, background) where `[context]` sets none.
    pub tiers: [u32; 3],
    /// Completion pacing where `[completion]` sets none: the pause that starts a model call
    /// adapts between the first two; while typing goes on, at most one new call per refresh.
    pub debounce_min_ms: u64,
    pub debounce_max_ms: u64,
    pub refresh_ms: u64,
    /// Whether the next completion suggestion is fetched before it is asked for (after an
    /// accepted suggestion, on a pause in an empty body), where `[completion]` does not say.
    pub prefetch: bool,
    /// How often an open buffer is indexed while typing goes on (`None`: only when it pauses).
    pub buffer_index_every: Option<Duration>,
    /// The quiet time after which the process hands memory back (`memory::release_when_idle`).
    pub release_idle: Duration,
}

impl Default for Resources {
    fn default() -> Self {
        Profile::Balanced.resources(cores())
    }
}

/// The CPUs this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

static CURRENT: RwLock<Option<Resources>> = RwLock::new(None);

/// A mutex's guard, even if a thread panicked while holding it: a handler's panic is answered
/// as an error and the server goes on, with what the lock holds as the panic left it.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The process's resources now: the configured profile's, else `balanced`'s.
pub fn current() -> Resources {
    CURRENT
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default()
}

/// Makes `profile` the process's (a configuration load does it).
pub fn set(profile: Profile) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = Some(profile.resources(cores()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_scale_every_number_one_way() {
        let [high, balanced, low] = [
            Profile::HighPerformance,
            Profile::Balanced,
            Profile::LowResource,
        ]
        .map(|p| p.resources(4));
        assert_eq!(Profile::default(), Profile::Balanced);
        for (more, less) in [(high, balanced), (balanced, low)] {
            assert!(more.index_threads >= less.index_threads);
            assert!(more.archive_busy_cache_kib > less.archive_busy_cache_kib);
            assert!(more.archive_idle_cache_kib > less.archive_idle_cache_kib);
            assert!(more.token_cache_entries > less.token_cache_entries);
            assert!(more.tiers.iter().zip(less.tiers).all(|(m, l)| *m > l));
            assert!(more.debounce_min_ms < less.debounce_min_ms);
            assert!(more.debounce_max_ms < less.debounce_max_ms);
            assert!(more.refresh_ms < less.refresh_ms);
            assert!(more.prefetch >= less.prefetch);
            assert!(more.release_idle > less.release_idle);
        }
        assert!(high.prefetch && balanced.prefetch && !low.prefetch);
        assert_eq!(balanced.index_threads, 3);
        assert_eq!(Profile::Balanced.resources(1).index_threads, 1);
        for p in [high, balanced, low] {
            assert_eq!(Profile::from_name(p.profile.name()), Some(p.profile));
        }
        assert_eq!(Profile::from_name("fast"), None);
    }
}
