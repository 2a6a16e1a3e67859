//! The process's memory: the allocator (the system's — glibc's malloc with one arena per core
//! in the server ([`limit_arenas`]) — or mimalloc, tuned, with the `mimalloc` feature), what
//! the process holds (`/proc/self/status`, `smaps_rollup`, the allocator's counters), and handing back
//! what an idle server does not use. Every activity (a message from the client, a file indexed)
//! calls [`busy`]; once nothing happened for the idle time, one thread [`release`]s: the
//! allocator's free pages go back to the system, and the pages of code and read-only tables
//! (the token tables, the grammars) mapped from the binary are dropped from the process — they
//! stay in the page cache and come back on the next touch, without I/O while the page cache
//! keeps them (so not while the user edits: [`EDITING`]). Never touches data: only read-only
//! file mappings that hold no private page. Linux does all of this; elsewhere the allocator
//! alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// mimalloc, with the `mimalloc` feature, for every binary that links Strata (the server, the
/// CLI, tests and benches) and for the C code too (tree-sitter, SQLite). Not the default: each
/// thread keeps pages of its own, and typing into lib.dom.d.ts peaked at 32-34 MiB with it
/// against 27-29 with glibc's malloc at two arenas (`cargo bench --bench memory`), while cold
/// indexing ran at the same speed with either (glibc's default arenas; `cargo bench --bench
/// archive`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tunes the allocator for a long-running process on a small machine: arenas are committed as
/// they are used, not up front, and freed pages go back to the system after 50 ms. With
/// mimalloc's defaults the server held 143 MiB after opening a 1 MB file and peaked at 331 MiB
/// while typing (freed pages of eagerly committed arenas stay counted); with these, 77 and 158
/// (glibc: 88 and 186). Purging at once (0 ms) costs a fifth of the indexer's speed.
///
/// Transparent huge pages are off for the allocator: with them on (the system's `madvise` mode
/// here) mimalloc purges only whole 2 MiB stretches, and the server held 16 MiB more while
/// typing into lib.dom.d.ts (`cargo bench --bench memory`).
#[cfg(feature = "mimalloc")]
extern "C" fn tune_allocator() {
    // Option indices from mimalloc v3's mimalloc.h (libmimalloc-sys builds v3 unless its `v2`
    // feature is on); the first two are the same in v2.
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    const PURGE_DELAY: std::ffi::c_int = 15;
    const ALLOW_THP: std::ffi::c_int = 43;
    // SAFETY: setting an option is a plain store that mimalloc allows at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 50);
        libmimalloc_sys::mi_option_set(ALLOW_THP, 0);
    }
}

/// Runs [`tune_allocator`] as a constructor, before the Rust runtime's first allocation creates
/// mimalloc's first arena with the default settings. The constructor section is the platform's:
/// ELF's `.init_array`, Mach-O's `__mod_init_func`, the MSVC CRT's `.CRT$XCU`.
#[cfg(feature = "mimalloc")]
#[used]
#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_os = "freebsd"),
    unsafe(link_section = ".init_array")
)]
#[cfg_attr(
    target_vendor = "apple",
    unsafe(link_section = "__DATA,__mod_init_func")
)]
#[cfg_attr(target_os = "windows", unsafe(link_section = ".CRT$XCU"))]
static TUNE_ALLOCATOR: extern "C" fn() = tune_allocator;

/// Limits the system allocator (glibc's malloc, when the `mimalloc` feature is off) to
/// `arenas` arenas. glibc gives each thread that meets contention an arena of its own, up to
/// eight per core, and each keeps pages the others cannot use: with eight, typing into
/// lib.dom.d.ts peaked at 31.5 MiB, with two at 29.0, with one at 26.9 (`cargo bench --bench
/// memory`); cold indexing on two threads lost half its speed with one arena and a tenth with
/// two (`cargo bench --bench archive`). Takes effect for arenas made after it: call it before
/// the process starts threads. Elsewhere, nothing.
pub fn limit_arenas(arenas: usize) {
    #[cfg(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; any value is accepted.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas.clamp(1, 64) as libc::c_int);
    }
    #[cfg(not(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Activity so far: a count, and when the last happened (ms since [`epoch`]).
static ACTIVITY: AtomicU64 = AtomicU64::new(0);
static LAST_ACTIVE_MS: AtomicU64 = AtomicU64::new(0);

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Something happened: the idle release waits for the idle time to pass again.
pub fn busy() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
    LAST_ACTIVE_MS.store(now_ms(), Ordering::Relaxed);
}

/// The user's last edit (ms since [`epoch`]); 0 before the first.
static LAST_EDIT_MS: AtomicU64 = AtomicU64::new(0);

/// How long after the user's last edit the code stays mapped: a pause while editing is not a
/// quiet spell for the code. Dropped at every pause, the pages the next keystroke and the next
/// suggestion run on had to come back, and where the page cache had let them go that is a read
/// from disk — traced in the completion bench: a major fault in one pause of four after a
/// pause that released, and on a machine busy with I/O the suggestion 25–280 ms late.
const EDITING: Duration = Duration::from_secs(30);

/// The user edited a document: see [`EDITING`]. (The message that brought the edit counted as
/// activity already.)
pub fn edited() {
    LAST_EDIT_MS.store(now_ms().max(1), Ordering::Relaxed);
}

/// Whether the code is kept mapped at `now_ms`, the last edit at `last_edit_ms` (0: none yet).
fn editing(now_ms: u64, last_edit_ms: u64) -> bool {
    last_edit_ms != 0 && now_ms.saturating_sub(last_edit_ms) < EDITING.as_millis() as u64
}

/// Starts the thread that hands memory back once per quiet spell — after the profile's
/// `release_idle` without [`busy`]: the allocator's free pages then, and the resident pages of
/// the code and tables mapped from files too unless the user is editing ([`EDITING`]), in
/// which case once the editing is over.
pub fn release_when_idle() {
    let _ = epoch();
    let spawned = std::thread::Builder::new()
        .name("strata-idle".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // The activity count at the last release of each kind.
            let (mut trimmed, mut dropped) = (u64::MAX, u64::MAX);
            loop {
                let idle = crate::resources::current().release_idle;
                std::thread::sleep((idle / 4).max(Duration::from_millis(20)));
                let seen = ACTIVITY.load(Ordering::Relaxed);
                let now = now_ms();
                let quiet = now.saturating_sub(LAST_ACTIVE_MS.load(Ordering::Relaxed));
                if quiet < idle.as_millis() as u64 {
                    continue;
                }
                if seen != trimmed {
                    trimmed = seen;
                    release_allocator();
                }
                if seen != dropped && !editing(now, LAST_EDIT_MS.load(Ordering::Relaxed)) {
                    dropped = seen;
                    #[cfg(target_os = "linux")]
                    drop_mapped_pages();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("no idle release: {e}");
    }
}

/// Hands back what the process does not use now: the allocator's free memory and the resident
/// pages of read-only file mappings. Returns the bytes of such pages dropped.
pub fn release() -> usize {
    release_allocator();
    #[cfg(target_os = "linux")]
    {
        drop_mapped_pages()
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The allocator's free memory, back to the system.
fn release_allocator() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: mimalloc's collection may run on any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu"))]
    // SAFETY: glibc's trim may run on any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Drops the resident pages of the read-only file mappings (the code and tables of the binary
/// and its libraries) that hold no private page: the kernel maps them again from the page cache
/// on the next touch.
#[cfg(target_os = "linux")]
fn drop_mapped_pages() -> usize {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        if let Some(mapping) = Mapping::parse(line) {
            mappings.push(mapping);
        } else if let Some(last) = mappings.last_mut() {
            let mut fields = line.split_whitespace();
            match (fields.next(), fields.next()) {
                (Some("Rss:"), Some(kb)) => last.rss_kb = kb.parse().unwrap_or(0),
                (Some("Anonymous:"), Some(kb)) => last.anon_kb = kb.parse().unwrap_or(u64::MAX),
                _ => {}
            }
        }
    }
    let mut dropped = 0;
    for m in &mappings {
        if m.file.1 == 0 || m.writable || m.anon_kb != 0 || m.rss_kb == 0 {
            continue;
        }
        // SAFETY: the range is a whole mapping of a file, read-only and without a private page:
        // dropping it loses nothing, the next access maps the file's page again.
        let done = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if done == 0 {
            dropped += m.rss_kb as usize * 1024;
        }
    }
    dropped
}

#[cfg(target_os = "linux")]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    /// (device, inode) of the file mapped; (0, 0) for anonymous memory.
    file: (u64, u64),
    rss_kb: u64,
    anon_kb: u64,
}

#[cfg(target_os = "linux")]
impl Mapping {
    /// A mapping's header line: `start-end perms offset dev inode [path]`.
    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        if perms.len() != 4 {
            return None;
        }
        let _offset = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let inode: u64 = fields.next()?.parse().ok()?;
        let device =
            u64::from_str_radix(major, 16).ok()? << 32 | u64::from_str_radix(minor, 16).ok()?;
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            writable: perms.as_bytes()[1] == b'w',
            file: (device, inode),
            rss_kb: 0,
            // Unknown until its line is read: taken for holding private pages.
            anon_kb: u64::MAX,
        })
    }
}

/// What the process holds now, in bytes (zero where the system does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub rss: u64,
    /// Its peak so far.
    pub peak: u64,
    /// Private memory: the heap, stacks.
    pub anonymous: u64,
    /// Pages mapped from files: code and read-only tables of the binary and its libraries.
    pub file: u64,
    pub threads: u64,
    /// The allocator's own view, where it gives one (glibc's malloc): bytes allocated, and bytes
    /// it holds free in its arenas.
    pub heap_in_use: Option<u64>,
    pub heap_free: Option<u64>,
}

/// The process's memory now, from `/proc` (Linux).
pub fn usage() -> Usage {
    let mut usage = Usage::default();
    let kb = |line: &str| -> u64 {
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    for line in std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
    {
        if line.starts_with("VmRSS:") {
            usage.rss = kb(line);
        } else if line.starts_with("VmHWM:") {
            usage.peak = kb(line);
        } else if line.starts_with("RssFile:") {
            usage.file = kb(line);
        } else if line.starts_with("Threads:") {
            usage.threads = kb(line) / 1024;
        }
    }
    for line in std::fs::read_to_string("/proc/self/smaps_rollup")
        .unwrap_or_default()
        .lines()
    {
        if line.starts_with("Anonymous:") {
            usage.anonymous = kb(line);
        }
    }
    #[cfg(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 reads the allocator's counters (taking each arena's lock).
        let info = unsafe { libc::mallinfo2() };
        usage.heap_in_use = Some((info.uordblks + info.hblkhd) as u64);
        usage.heap_free = Some(info.fordblks as u64);
    }
    usage
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn releasing_drops_mapped_code_pages_and_the_code_still_runs() {
        // Touch some code and read-only data, then drop it.
        let before = usage();
        assert!(before.rss > 0 && before.file > 0, "{before:?}");
        let dropped = release();
        assert!(dropped > 0, "nothing dropped");
        // The code runs on (its pages come back), and data was not touched.
        let data: Vec<u64> = (0..1000).collect();
        assert_eq!(data.iter().sum::<u64>(), 499_500);
        let after = usage();
        assert!(after.rss > 0);
        #[cfg(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu"))]
        assert!(after.heap_in_use.is_some_and(|n| n >= 8000), "{after:?}");
        busy();
        assert!(ACTIVITY.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn the_code_stays_mapped_while_the_user_edits() {
        let editing_ms = EDITING.as_millis() as u64;
        assert!(
            !editing(5_000, 0),
            "no edit yet: startup and indexing are over"
        );
        assert!(editing(5_000, 4_750), "a pause while typing");
        assert!(editing(4_000 + editing_ms - 1, 4_000));
        assert!(
            !editing(4_000 + editing_ms, 4_000),
            "the user stopped editing"
        );
    }
}
