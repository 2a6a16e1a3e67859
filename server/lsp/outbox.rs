//! What the server sends to the client, in the order it is sent. A thread of its own (the
//! writer) writes the frames queued for it, so that an answer of megabytes, which the client
//! takes as fast as it reads, never holds up the thread that made it. A small frame whose turn
//! has come — nothing queued or being written before it, and the pipe to the client empty or
//! the socket's buffer with room for it, so that writing it cannot block — is written at once
//! by the thread that sends it: an answer waiting for a thread to wake is late by that wake-up,
//! up to milliseconds on busy cores (the empty answer to a held completion that an edit
//! supersedes, a suggestion the model has just finished).
//!
//! Order: a frame is written directly only while no frame is queued (`queued` counts the frames
//! sent to the writer and not yet written), checked under the lock that every write takes, so a
//! frame never overtakes one sent before it.

use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use tokio::sync::mpsc;

use super::body::{Body, Written};
use crate::resources::lock;

/// Frames up to this size may be written by the thread that sends them.
const DIRECT_MAX: usize = 16 * 1024;

/// Room kept free in the pipe or socket besides the frame itself (its header, and the kernel's
/// bookkeeping of a socket's buffers).
const SLACK: usize = 16 * 1024;

/// The queue of frames to the client.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Body>,
    shared: Arc<Shared>,
}

/// The writer's end: see [`Writer::run`].
pub struct Writer {
    bodies: mpsc::UnboundedReceiver<Body>,
    shared: Arc<Shared>,
}

struct Shared {
    output: Mutex<Output>,
    /// Frames sent to the writer and not yet written.
    queued: AtomicUsize,
    room: Room,
}

struct Output {
    writer: BufWriter<Box<dyn Write + Send>>,
    /// What to run once the frames written so far have left the buffer.
    then: Vec<Written>,
    /// Writing failed: the client is gone, and what is sent from now on goes nowhere.
    broken: bool,
}

/// The writer has stopped: the frame was not sent.
#[derive(Debug)]
pub struct Closed;

/// Whether a write of some bytes to the client would be taken at once.
#[derive(Clone, Copy, Debug)]
pub enum Room {
    /// Never known: every frame goes through the writer.
    Unknown,
    /// A regular file (or the like): writes never wait on a reader.
    Always,
    /// A pipe of this capacity, on this descriptor.
    #[cfg(target_os = "linux")]
    Pipe(libc::c_int, usize),
    /// A stream socket with this send buffer, on this descriptor (libuv's children — Neovim's,
    /// and Node's, so VS Code's — get a socket pair, not a pipe).
    #[cfg(target_os = "linux")]
    Socket(libc::c_int, usize),
}

impl Room {
    /// What a write to `fd` may count on.
    pub fn of(fd: i32) -> Room {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: fstat fills the struct it is given for a descriptor this process holds.
            let mut stat: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(fd, &mut stat) } != 0 {
                return Room::Unknown;
            }
            match stat.st_mode & libc::S_IFMT {
                libc::S_IFREG => Room::Always,
                libc::S_IFIFO => {
                    // SAFETY: F_GETPIPE_SZ only reads the pipe's size.
                    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
                    usize::try_from(size).map_or(Room::Unknown, |size| Room::Pipe(fd, size))
                }
                libc::S_IFSOCK => {
                    let mut size: libc::c_int = 0;
                    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                    // SAFETY: SO_SNDBUF is an int, written into `size` of the length given.
                    let got = unsafe {
                        libc::getsockopt(
                            fd,
                            libc::SOL_SOCKET,
                            libc::SO_SNDBUF,
                            (&mut size as *mut libc::c_int).cast(),
                            &mut len,
                        )
                    };
                    match usize::try_from(size) {
                        Ok(size) if got == 0 => Room::Socket(fd, size),
                        _ => Room::Unknown,
                    }
                }
                _ => Room::Unknown,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = fd;
            Room::Unknown
        }
    }

    /// Whether `bytes` more would be taken now, without waiting for the client to read.
    fn fits(self, bytes: usize) -> bool {
        match self {
            Room::Unknown => false,
            Room::Always => true,
            // A pipe holds size / 4 KiB pages, and a write that does not fit the last page's
            // rest takes a page of its own: the bytes waiting do not say how many pages are
            // free. An empty pipe has them all.
            #[cfg(target_os = "linux")]
            Room::Pipe(fd, size) => {
                bytes + SLACK <= size
                    && unread(fd, libc::FIONREAD).is_some_and(|unread| unread == 0)
            }
            // A socket's send buffer counts the kernel's overhead too: half of it is kept.
            #[cfg(target_os = "linux")]
            Room::Socket(fd, size) => {
                unread(fd, libc::TIOCOUTQ).is_some_and(|unsent| unsent + bytes + SLACK <= size / 2)
            }
        }
    }
}

/// The bytes waiting in a pipe (`FIONREAD`) or a socket's send queue (`TIOCOUTQ`, which is
/// `SIOCOUTQ`).
#[cfg(target_os = "linux")]
fn unread(fd: libc::c_int, request: libc::Ioctl) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: both requests write one int into `n`.
    let done = unsafe { libc::ioctl(fd, request, &mut n) };
    if done != 0 {
        return None;
    }
    usize::try_from(n).ok()
}

impl Outbox {
    /// The queue to `output`, whose `room` says when a frame may skip the writer.
    pub fn new(output: Box<dyn Write + Send>, room: Room) -> (Outbox, Writer) {
        let (queue, bodies) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            output: Mutex::new(Output {
                writer: BufWriter::with_capacity(64 * 1024, output),
                then: Vec::new(),
                broken: false,
            }),
            queued: AtomicUsize::new(0),
            room,
        });
        let outbox = Outbox {
            queue,
            shared: shared.clone(),
        };
        (outbox, Writer { bodies, shared })
    }

    /// A queue whose frames are only ever queued, read back from the receiver (for tests).
    #[cfg(test)]
    pub fn channel() -> (Outbox, mpsc::UnboundedReceiver<Body>) {
        let (outbox, writer) = Outbox::new(Box::new(std::io::sink()), Room::Unknown);
        (outbox, writer.bodies)
    }

    /// Sends `body` as the next frame: written now if it is small and its turn has come,
    /// otherwise queued for the writer.
    pub fn send(&self, body: Body) -> Result<(), Closed> {
        let length = body.len();
        if length > 0 && length <= DIRECT_MAX && self.shared.queued.load(Ordering::Acquire) == 0 {
            let output = match self.shared.output.try_lock() {
                Ok(output) => Some(output),
                Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut output) = output
                && self.shared.queued.load(Ordering::Acquire) == 0
            {
                if output.broken {
                    return Err(Closed);
                }
                if self.shared.room.fits(length) {
                    output.write(body, true);
                    return if output.broken { Err(Closed) } else { Ok(()) };
                }
            }
        }
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.queue.send(body).map_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            Closed
        })
    }
}

impl Output {
    /// Writes `body` as a frame, then, if `flush`, flushes and runs what was waiting for it
    /// (its own hook among them).
    fn write(&mut self, mut body: Body, flush: bool) {
        if self.broken {
            return;
        }
        self.then.extend(body.take_written());
        let written = if body.len() > 0 {
            write_frame(&mut self.writer, body)
        } else {
            Ok(())
        };
        let flushed = match written {
            Ok(()) if flush => self.writer.flush().map(|()| true),
            Ok(()) => Ok(false),
            Err(e) => Err(e),
        };
        match flushed {
            Ok(true) => self.then.drain(..).for_each(|then| then()),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!("writing to the client: {e}");
                self.broken = true;
                self.then.clear();
            }
        }
    }
}

impl Writer {
    /// Writes each body queued as a frame, flushing when no other is waiting, until `stop` is
    /// set; then what is queued already. An empty body is no message (every message is a JSON
    /// object): it is skipped, and only wakes the writer to look at `stop`.
    pub fn run(mut self, stop: &AtomicBool) {
        while let Some(body) = self.bodies.blocking_recv() {
            let mut output = lock(&self.shared.output);
            output.write(body, self.bodies.is_empty());
            // Under the lock: a frame sent directly now comes after this one.
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            if output.broken {
                return;
            }
            drop(output);
            if stop.load(Ordering::Acquire) {
                let mut output = lock(&self.shared.output);
                while let Ok(body) = self.bodies.try_recv() {
                    output.write(body, false);
                    self.shared.queued.fetch_sub(1, Ordering::AcqRel);
                }
                output.write(Body::Bytes(Vec::new()), true);
                return;
            }
        }
        lock(&self.shared.output).write(Body::Bytes(Vec::new()), true);
    }
}

/// One frame: the header, then the body. A streamed body is counted before it is written.
/// Should the two ever differ (a bug), the frame still holds exactly the bytes its header
/// announced — cut short, or padded with blanks — so that this one answer is unreadable but the
/// client finds the next.
fn write_frame(output: &mut impl Write, body: Body) -> std::io::Result<()> {
    let length = body.len();
    write!(output, "Content-Length: {length}\r\n\r\n")?;
    let (mut written, mut made) = (0, 0);
    for block in body.blocks() {
        made += block.len();
        let fits = block.len().min(length - written);
        output.write_all(&block[..fits])?;
        written += fits;
    }
    if made != length {
        tracing::error!("a body of {made} bytes was announced as {length}");
        output.write_all(&vec![b' '; length - written])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lsp::body::Streamed;
    use std::io;

    /// Output shared with the test, which sees what has reached it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        /// The frames written so far, read back (header, then that many bytes).
        fn frames(&self) -> Vec<Vec<u8>> {
            let out = self.0.lock().unwrap().clone();
            let mut frames = Vec::new();
            let mut rest = &out[..];
            while !rest.is_empty() {
                let header_end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                let header = std::str::from_utf8(&rest[..header_end]).unwrap();
                let length: usize = header
                    .strip_prefix("Content-Length: ")
                    .unwrap()
                    .parse()
                    .unwrap();
                frames.push(rest[header_end + 4..header_end + 4 + length].to_vec());
                rest = &rest[header_end + 4 + length..];
            }
            frames
        }
    }

    /// Sends `bodies`, then runs the writer until they are all written.
    fn through_the_writer(room: Room, bodies: Vec<Body>) -> Shared {
        let out = Shared::default();
        let (outbox, writer) = Outbox::new(Box::new(out.clone()), room);
        for body in bodies {
            outbox.send(body).unwrap();
        }
        drop(outbox);
        writer.run(&AtomicBool::new(false));
        out
    }

    #[test]
    fn a_streamed_body_that_is_not_the_length_it_announced_keeps_the_frames_apart() {
        let blocks = |parts: &[&str]| {
            parts
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect::<Vec<_>>()
                .into_iter()
        };
        let out = through_the_writer(
            Room::Unknown,
            vec![
                Body::Streamed(Streamed::new(7, blocks(&["[1,", "2]"]))),
                Body::Bytes(b"{}".to_vec()),
                Body::Streamed(Streamed::new(3, blocks(&["[1,", "2,3]"]))),
                Body::Streamed(Streamed::new(5, blocks(&["[1,", "2]"]))),
                Body::Bytes(b"[]".to_vec()),
            ],
        );
        assert_eq!(
            out.frames(),
            [&b"[1,2]  "[..], b"{}", b"[1,", b"[1,2]", b"[]"],
            "padded, cut short, exact"
        );
    }

    #[test]
    fn an_answer_is_timed_once_its_last_byte_has_left_the_buffer() {
        let out = Shared::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (outbox, writer) = Outbox::new(Box::new(out.clone()), Room::Unknown);
        for (i, text) in ["{\"a\":1}", "{\"b\":2}"].into_iter().enumerate() {
            let (out, seen) = (out.clone(), seen.clone());
            let body = Body::from(text.as_bytes().to_vec()).when_written(move || {
                let written = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
                seen.lock().unwrap().push((i, written.ends_with(text)));
            });
            outbox.send(body).unwrap();
        }
        drop(outbox);
        writer.run(&AtomicBool::new(false));
        // Both were queued before the writer started: one flush, after the second, then both.
        assert_eq!(*seen.lock().unwrap(), [(0, false), (1, true)]);
    }

    #[test]
    fn frames_left_at_shutdown_are_written_and_timed() {
        let out = Shared::default();
        let (outbox, writer) = Outbox::new(Box::new(out.clone()), Room::Unknown);
        let ran = Arc::new(AtomicUsize::new(0));
        for text in ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"] {
            let ran = ran.clone();
            let body = Body::from(text.as_bytes().to_vec()).when_written(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            });
            outbox.send(body).unwrap();
        }
        writer.run(&AtomicBool::new(true));
        assert_eq!(out.frames().len(), 3);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            3,
            "every frame written is timed"
        );
    }

    #[test]
    fn a_small_frame_whose_turn_has_come_is_written_by_its_sender() {
        let out = Shared::default();
        let (outbox, writer) = Outbox::new(Box::new(out.clone()), Room::Always);
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let body =
            Body::from(b"{}".to_vec()).when_written(move || flag.store(true, Ordering::SeqCst));
        outbox.send(body).unwrap();
        // The writer has not run: the frame is out, flushed, and timed.
        assert_eq!(out.frames(), [b"{}"]);
        assert!(ran.load(Ordering::SeqCst));
        // Too large to skip the writer: queued; and a small one sent after it waits its turn.
        let large = vec![b' '; DIRECT_MAX + 1];
        outbox.send(large.clone().into()).unwrap();
        outbox.send(b"[]".to_vec().into()).unwrap();
        assert_eq!(out.frames().len(), 1, "both wait for the writer");
        drop(outbox);
        writer.run(&AtomicBool::new(false));
        assert_eq!(
            out.frames(),
            [&b"{}"[..], &large, b"[]"],
            "in the order sent"
        );
    }

    #[test]
    fn without_room_known_every_frame_goes_through_the_writer() {
        let out = Shared::default();
        let (outbox, writer) = Outbox::new(Box::new(out.clone()), Room::Unknown);
        outbox.send(b"{}".to_vec().into()).unwrap();
        assert!(out.frames().is_empty());
        drop(outbox);
        writer.run(&AtomicBool::new(false));
        assert_eq!(out.frames(), [b"{}"]);
    }

    /// A real pipe, nobody reading it: room while it is empty, none once the client falls
    /// behind (frames of 2–4 KB each take a page of their own, so bytes waiting say little).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_has_room_until_the_client_falls_behind() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: pipe writes two new descriptors into the array, owned below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let room = Room::of(write.as_raw_fd());
        let Room::Pipe(_, size) = room else {
            panic!("a pipe is not seen as one: {room:?}");
        };
        assert!(room.fits(100));
        assert!(!room.fits(size), "larger than the pipe");
        let mut file = std::fs::File::from(write);
        file.write_all(&[b'x'; 2100]).unwrap();
        assert!(!room.fits(100), "the client has not read what is there");
        drop(read);
    }

    /// A socket pair, as libuv gives its children (Neovim's, VS Code's): the same, by its send
    /// queue.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_socket_has_room_until_the_client_falls_behind() {
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let room = Room::of(ours.as_raw_fd());
        assert!(matches!(room, Room::Socket(..)), "{room:?}");
        assert!(room.fits(100));
        ours.set_nonblocking(true).unwrap();
        let block = vec![b'x'; 4096];
        while ours.write(&block).is_ok() {}
        assert!(!room.fits(100), "a full socket would block the sender");
        drop(theirs);
    }
}
