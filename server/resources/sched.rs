//! How the server's threads share the cores with each other and with the editor. On a busy
//! machine a thread that is woken waits for a core; these settings decide which waits.

/// A lane's thread does not take the core from the thread that woke it (Linux's `SCHED_BATCH`:
/// no wakeup preemption; it runs as soon as a core is free, at the same share of time). A
/// keystroke's `didChange` wakes the parse lane; had the parse taken the reading thread's core,
/// that thread would have finished the change — answering the completion request it supersedes —
/// only after the parse, 1.5 ms later (traced in the completion bench).
pub fn yield_on_wakeup() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sets the calling thread's policy (pid 0); `param` lives across the call.
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if set != 0 {
            tracing::debug!("SCHED_BATCH refused: {}", std::io::Error::last_os_error());
        }
    }
}

/// The thread reading the client's messages and the one writing the answers do a little at a
/// time, then wait. Woken, such a thread should run before threads in the middle of longer work
/// (a parse, a prompt's build, the editor's own), not after their turn on the core: on Linux
/// 6.12 and later (EEVDF), a short slice asked for with `sched_setattr` gives it that. Traced in
/// the completion bench on two busy cores: the writer thread waited up to 4 ms to write a
/// superseded request's empty answer. Threads it starts get the default slice back (they may be
/// the runtime's blocking pool, which builds prompts). Older kernels ignore the slice.
pub fn respond_quickly() {
    #[cfg(target_os = "linux")]
    {
        let mut attr = SchedAttr::current().unwrap_or_default();
        attr.sched_runtime = SHORT_SLICE_NS;
        attr.sched_flags |= SCHED_FLAG_RESET_ON_FORK;
        // SAFETY: sets the calling thread's attributes (pid 0) from a `sched_attr` of the size
        // it declares, alive across the call.
        let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr, 0) };
        if set != 0 {
            tracing::debug!("no short slice: {}", std::io::Error::last_os_error());
        }
    }
}

/// The shortest slice Linux accepts (0.1 ms).
#[cfg(target_os = "linux")]
const SHORT_SLICE_NS: u64 = 100_000;

/// Threads started by this one do not inherit its scheduling.
#[cfg(target_os = "linux")]
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

/// Linux's `struct sched_attr` (the fields of its first version).
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

#[cfg(target_os = "linux")]
impl SchedAttr {
    /// The calling thread's.
    fn current() -> Option<SchedAttr> {
        let mut attr = SchedAttr::default();
        let size = std::mem::size_of::<SchedAttr>() as u32;
        // SAFETY: fills `attr`, `size` bytes, for the calling thread (pid 0).
        let got = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr, size, 0) };
        attr.size = size;
        (got == 0).then_some(attr)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Where the kernel has slices (it reports the default one), the thread asks for a short
    /// one, and the threads it starts have the default.
    #[test]
    fn a_thread_that_responds_quickly_has_a_short_slice_and_its_children_do_not() {
        let slice = || SchedAttr::current().map(|a| a.sched_runtime);
        let slices = std::thread::spawn(move || {
            let before = slice();
            respond_quickly();
            let child = std::thread::spawn(slice).join().unwrap();
            (before, slice(), child)
        })
        .join()
        .unwrap();
        match slices {
            (Some(0) | None, _, _) => {} // a kernel without slices
            (default, after, child) => {
                assert_eq!(after, Some(SHORT_SLICE_NS));
                assert_eq!(child, default);
            }
        }
    }
}
