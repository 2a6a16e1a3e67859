//! Stdin and stdout without the runtime's blocking pool. Tokio's `stdin()` and `stdout()` do
//! each read and each write as a job on that pool, where it queues behind context packs and
//! prompt builds (15–25 ms each on a 3 MB file): every request would wait to be read, and every
//! answer to be written, behind them. Here the transport's reading loop reads stdin itself, with
//! a blocking read: that loop runs on the thread that called `Runtime::block_on` (the process's
//! main thread), never on one of the runtime's workers, so its wait holds up nothing else, and a
//! message is handled on the thread that read it. The transport writes stdout from a thread of
//! its own, or a small frame from the thread that sends it when writing cannot block
//! (`outbox.rs`).

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::outbox::Room;

/// Stdin, read with blocking reads: only for a future polled by `Runtime::block_on` on a thread
/// of its own (a runtime worker waiting here would stall the tasks queued on it).
pub struct Stdin(std::io::Stdin);

impl AsyncRead for Stdin {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            match self.0.lock().read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// The transport's input (what the client sends), its output (what goes to the client), and
/// what a write to that output may count on (see `outbox`).
pub fn stdio() -> std::io::Result<(Stdin, Box<dyn Write + Send>, Room)> {
    widen_stdout();
    Ok((Stdin(std::io::stdin()), stdout()?, Room::of(1)))
}

/// Stdout itself, not Rust's line-buffered handle, which would write each frame in two at its
/// header's line break.
#[cfg(unix)]
fn stdout() -> std::io::Result<Box<dyn Write + Send>> {
    use std::os::fd::AsFd;
    let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
    Ok(Box::new(std::fs::File::from(stdout)))
}

#[cfg(not(unix))]
fn stdout() -> std::io::Result<Box<dyn Write + Send>> {
    Ok(Box::new(std::io::stdout()))
}

/// What a pipe to the client may hold: a megabyte, the most Linux gives a process without
/// privileges (`/proc/sys/fs/pipe-max-size`); the same asked of a socket's send buffer.
#[cfg(target_os = "linux")]
const STDOUT_BUFFER: libc::c_int = 1 << 20;

/// A whole-file answer is megabytes (documentSymbol is 3.2 MB for a 3 MB Rust file): through
/// the default 64 KB pipe it goes in fifty turns of the writer filling the pipe and the client
/// emptying it. A larger pipe lets the writer run ahead while the client reads. Editors built on
/// libuv (Neovim, and VS Code through Node) give their servers a socket pair instead of a pipe:
/// its send buffer is asked for the same (Linux grants up to `net.core.wmem_max`, 208 KB unless
/// raised). Elsewhere (a terminal, a file) nothing changes.
fn widen_stdout() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: F_SETPIPE_SZ only resizes the pipe's buffer, and fails harmlessly on
        // descriptors that are not pipes.
        if unsafe { libc::fcntl(1, libc::F_SETPIPE_SZ, STDOUT_BUFFER) } >= 0 {
            return;
        }
        let size = STDOUT_BUFFER;
        // SAFETY: SO_SNDBUF takes an int, read from `size` of the length given; it fails
        // harmlessly on descriptors that are not sockets.
        let set = unsafe {
            libc::setsockopt(
                1,
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set != 0 {
            tracing::debug!(
                "stdout keeps its buffer: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
