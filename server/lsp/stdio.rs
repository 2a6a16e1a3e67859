//! Stdin and stdout on threads of their own. Tokio's `stdin()` and `stdout()` do each read and
//! each write as a job on the runtime's blocking pool, where it queues behind context packs and
//! prompt builds (15–25 ms each on a 3 MB file): every request would wait to be read, and every
//! answer to be written, behind them. Here one thread reads stdin into an in-memory pipe the
//! transport reads, and another writes what the transport writes to stdout, as it comes.

use std::io::{Read, Write};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// How much of a message may sit between a stdio thread and the transport.
const PIPE: usize = 256 * 1024;

/// The transport's input (what the client sends) and output (what goes to the client), and the
/// thread writing stdout, which ends once the output is dropped and everything in it written.
/// Must be called inside the runtime.
pub fn stdio() -> (
    DuplexStream,
    DuplexStream,
    Option<std::thread::JoinHandle<()>>,
) {
    let runtime = tokio::runtime::Handle::current();
    let (input, mut feed) = tokio::io::duplex(PIPE);
    let (output, mut drain) = tokio::io::duplex(PIPE);
    let reading = runtime.clone();
    let spawned = std::thread::Builder::new()
        .name("strata-stdin".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let n = match stdin.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::error!("reading stdin: {e}");
                        break;
                    }
                };
                if reading.block_on(feed.write_all(&buffer[..n])).is_err() {
                    break; // the transport has ended
                }
            }
            // Dropping `feed` is the end of input for the transport.
        });
    if let Err(e) = spawned {
        // Without it the transport sees its input end at once, and says so.
        tracing::error!("no thread to read stdin: {e}");
    }
    let spawned = std::thread::Builder::new()
        .name("strata-stdout".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut buffer = vec![0; 64 * 1024];
            loop {
                let n = match runtime.block_on(drain.read(&mut buffer)) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut stdout = std::io::stdout().lock();
                if let Err(e) = stdout.write_all(&buffer[..n]).and_then(|()| stdout.flush()) {
                    // The client is gone: dropping `drain` fails the transport's next write.
                    tracing::debug!("writing stdout: {e}");
                    break;
                }
            }
        });
    let writing = spawned
        .inspect_err(|e| tracing::error!("no thread to write stdout: {e}"))
        .ok();
    (input, output, writing)
}
