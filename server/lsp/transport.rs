//! The base protocol over stdio: `Content-Length` frames of JSON-RPC between the client and the
//! server, and the one place every incoming message is routed from — through the dispatch table
//! (`dispatch.rs`), by how each method runs:
//! - a notification ("in order") runs to the end on the reading task before the next message is
//!   read, so edits are applied in the order the client sent them;
//! - `initialize` and `shutdown` ("inline") are answered on the reading task too;
//! - every other request runs on a task of its own, registered by id in `Running` (so
//!   `$/cancelRequest` aborts it and answers RequestCancelled, once), under `Backend::guard`; the
//!   task encodes its own answer, then does what its handler left for after it
//!   (`running::after_answer`);
//! - the client's answers to our requests go to `Client::answered`;
//! - frames go out through the [`Outbox`], in the order they are sent: a thread of its own
//!   writes them, or the sending thread itself when the frame is small, nothing is ahead of it
//!   and writing cannot block (a held completion an edit supersedes is answered by the reading
//!   thread, at once).
//!
//! Every request is answered: one for a method not in the table with MethodNotFound (`$/` ones
//! and `""` too — told from a missing method, an answer of the client's, by the raw JSON), one
//! before `initialize` with ServerNotInitialized, any after `shutdown` with InvalidRequest.
//! Unknown notifications, and notifications before `initialize`, are ignored (logged).
//!
//! A frame that cannot be read (a header without a usable `Content-Length`, a line that is no
//! header, a body that is not JSON) is answered with an error whose id is null, and logged; then
//! [`Frames`] skips, in bounded pieces, to the next line that ends a `Content-Length: N` header,
//! wherever on its line that starts (after a short body the next header follows it directly).
//! Such a line cannot occur inside JSON, so a body is also cut short where one appears in it: a
//! Content-Length larger than its body costs that frame, and the server answers again from the
//! next header on; until one arrives it waits, as it cannot tell a short body from a slow one.

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower_lsp_server::jsonrpc::{self, Error, ErrorCode, Id, Request, Response};

use super::body::{Body, Streamed};
use super::dispatch::{self, Runs};
use super::outbox::{Outbox, Room};
use super::running::{self, Key};
use super::server::Backend;

/// Larger frames are refused (and skipped): a client that sends one is broken.
const MAX_FRAME: usize = 256 * 1024 * 1024;

/// The LSP's answer to a request before `initialize`.
const SERVER_NOT_INITIALIZED: i64 = -32002;

/// Serves until the client sends `exit` or closes its end. `build` makes the server around the
/// queue of frames to write. Requests still running then are aborted, requests of ours still
/// waiting for the client fail; answers already made are written.
pub async fn serve<I>(
    input: I,
    output: Box<dyn Write + Send>,
    room: Room,
    build: impl FnOnce(Outbox) -> Arc<Backend>,
) where
    I: AsyncRead + Unpin,
{
    let (frames, writer) = Outbox::new(output, room);
    let stop = Arc::new(AtomicBool::new(false));
    let (written, all_written) = oneshot::channel();
    let stopping = stop.clone();
    let writer = std::thread::Builder::new()
        .name("strata-stdout".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            crate::resources::sched::respond_quickly();
            writer.run(&stopping);
            let _ = written.send(());
        });
    if let Err(e) = writer {
        tracing::error!("no thread to write to the client: {e}");
        return;
    }
    let backend = build(frames.clone());

    let mut input = Frames::new(input);
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let body = match input.next().await {
            Frame::Body(body) => {
                crate::resources::memory::busy();
                body
            }
            Frame::End => break,
            Frame::Malformed(problem) => {
                tracing::error!("unreadable message from the client: {problem}");
                send_error(&frames, Id::Null, ErrorCode::ParseError, problem);
                continue;
            }
        };
        // tower-lsp-server's `Request` takes a missing method for an empty one: a message
        // without one is the client's answer to a request of ours, one with `"method": ""` is
        // a request for a method that does not exist.
        let request = match serde_json::from_slice::<Request>(&body) {
            Ok(request) if !request.method().is_empty() || has_method(&body) => request,
            parsed => {
                match serde_json::from_slice::<Response>(&body) {
                    Ok(answer) => backend.client.answered(answer),
                    Err(not_an_answer) => {
                        let problem = match parsed {
                            Err(e) => e.to_string(),
                            Ok(_) => format!("neither a request nor an answer: {not_an_answer}"),
                        };
                        tracing::error!("invalid message from the client: {problem}");
                        let code = if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                            ErrorCode::InvalidRequest
                        } else {
                            // Perhaps its Content-Length was wrong: find the next header.
                            input.resync();
                            ErrorCode::ParseError
                        };
                        send_error(&frames, Id::Null, code, problem);
                    }
                }
                continue;
            }
        };
        let started = Instant::now();
        let order = running::read_one();
        let (method, id, params) = request.into_parts();
        let Some(id) = id else {
            // A notification.
            let Some(entry) = dispatch::find(&method) else {
                tracing::debug!(%method, "an unknown notification, ignored");
                continue;
            };
            let handler = match entry.runs {
                Runs::Exit => break,
                Runs::InOrder(handler) => handler,
                _ => {
                    tracing::debug!(%method, "a request sent as a notification, ignored");
                    continue;
                }
            };
            if !backend.initialized_yet() {
                tracing::debug!(%method, "a notification before `initialize`, dropped");
                continue;
            }
            match std::panic::catch_unwind(AssertUnwindSafe(|| handler(&backend, params))) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%method, "{}", error.message),
                Err(panic) => {
                    super::panicked(entry.name, panic.as_ref());
                }
            }
            backend
                .times
                .histogram(entry.name)
                .record(started.elapsed());
            continue;
        };

        if backend.shut_down() {
            // Editors do this in the normal course (Neovim 0.12's inline completion timer fires
            // after the user quits): the error answer is the protocol's, not a fault to report.
            tracing::debug!(%method, "a request after shutdown");
            send_error(
                &frames,
                id,
                ErrorCode::InvalidRequest,
                "the server is shutting down".into(),
            );
            continue;
        }
        let Some(entry) = dispatch::find(&method).filter(|m| !m.runs.is_notification()) else {
            tracing::debug!(%method, "a request for an unknown method");
            let mut error = Error::method_not_found();
            error.data = Some(method.as_ref().into());
            send(&frames, &id, Err(error));
            continue;
        };
        if !backend.initialized_yet() && entry.name != "initialize" {
            send_error(
                &frames,
                id,
                ErrorCode::ServerError(SERVER_NOT_INITIALIZED),
                format!("{method} before `initialize`"),
            );
            continue;
        }
        let histogram = backend.times.histogram(entry.name);
        let handler = match entry.runs {
            Runs::Inline(handler) => {
                let answer =
                    std::panic::catch_unwind(AssertUnwindSafe(|| handler(&backend, params)))
                        .unwrap_or_else(|panic| Err(super::panicked(entry.name, panic.as_ref()).0));
                let body = encoded(&id, answer.map(Body::from));
                let _ = frames.send(body.when_written(timed(entry.name, id, started, histogram)));
                if backend.initialized_yet() {
                    // Its answer is queued: the server may now send anything.
                    backend.client.open();
                }
                continue;
            }
            runs => match runs.spawned() {
                Some(handler) => handler,
                None => continue, // notifications are filtered out above
            },
        };
        tracing::trace!(method = entry.name, runs = entry.runs.name(), "spawned");
        let key = Key::Request(id.clone());
        if !backend.running.start(key.clone()) {
            send_error(
                &frames,
                id,
                ErrorCode::InvalidRequest,
                "a request with this id is still running".into(),
            );
            continue;
        }
        let (server, name) = (backend.clone(), entry.name);
        let task = tasks.spawn(running::answering(order, id.clone(), async move {
            let answer = server
                .guard(name, async { handler(server.clone(), params).await })
                .await;
            let body =
                encoded(&id, answer).when_written(timed(name, id.clone(), started, histogram));
            // Whoever takes the id out of the registry answers: this task, or a cancellation.
            let answered = server.running.answer(&id, body);
            crate::resources::memory::busy();
            answered
        }));
        // Answered or cancelled already: nothing to attach.
        let _ = backend.running.attach(&key, task);
    }

    tasks.shutdown().await;
    backend.client.close();
    // The last answers (`shutdown`'s) reach the client before the process ends, unless the
    // client has stopped reading them.
    stop.store(true, Ordering::Release);
    let _ = frames.send(Body::Bytes(Vec::new()));
    let _ = tokio::time::timeout(Duration::from_secs(1), all_written).await;
}

/// Header lines longer than this are not headers: the reader resynchronises.
const MAX_HEADER_LINE: usize = 4096;

/// How far before a line break a `Content-Length` header is looked for while skipping (the name,
/// 20 digits and some blanks fit).
const HEADER_TAIL: usize = 64;

/// What the client sent next.
#[derive(Debug)]
enum Frame {
    Body(Vec<u8>),
    /// A frame that could not be read; the reader has moved on to the next one.
    Malformed(String),
    /// The client closed its end (or it cannot be read any more).
    End,
}

/// Reads frames, and finds the next one after a malformed one: see [`Frames::next`].
struct Frames<R> {
    input: BufReader<R>,
    /// The Content-Length of the next header block, whose line has been read already (found
    /// while skipping, or inside a body that was shorter than declared).
    found: Option<usize>,
    /// Skip to the next `Content-Length` line before reading a frame.
    lost: bool,
    /// While skipping: the last bytes since the last line break, at most [`HEADER_TAIL`].
    tail: Vec<u8>,
}

impl<R: AsyncRead + Unpin> Frames<R> {
    fn new(input: R) -> Self {
        Frames {
            input: BufReader::with_capacity(64 * 1024, input),
            found: None,
            lost: false,
            tail: Vec::new(),
        }
    }

    /// The last body read may not have been what its header declared (it was not JSON): look
    /// for the next frame's header rather than take the next bytes for it.
    fn resync(&mut self) {
        self.lost = true;
    }

    /// The next frame. After a malformed one it skips (in pieces of its buffer, keeping only
    /// [`HEADER_TAIL`] bytes) to the next line that ends a `Content-Length: N` header, wherever
    /// that line starts, so a header glued to the end of a body is found. Such a line cannot
    /// occur inside JSON (a raw line break is not allowed in a string, and `Content-Length`
    /// is not JSON outside one), so a body is read as declared unless one appears in it: then
    /// the body was shorter than declared, and the line starts the next frame. No time limit:
    /// a body that is merely slow is waited for.
    async fn next(&mut self) -> Frame {
        match self.read().await {
            Ok(Ok(body)) => Frame::Body(body),
            Ok(Err(problem)) => Frame::Malformed(problem),
            Err(Closed) => Frame::End,
        }
    }

    async fn read(&mut self) -> Result<Result<Vec<u8>, String>, Closed> {
        if std::mem::take(&mut self.lost) {
            let (length, skipped) = self.skip_to_header().await?;
            if skipped > 0 {
                tracing::warn!("skipped {skipped} bytes to the next Content-Length header");
            }
            self.found = Some(length);
        }
        let length = match self.header().await? {
            Ok(length) => length,
            Err(problem) => return Ok(Err(problem)),
        };
        if length > MAX_FRAME {
            self.lost = true;
            return Ok(Err(format!(
                "a frame of {length} bytes (the limit is {MAX_FRAME})"
            )));
        }
        self.body(length).await
    }

    /// Reads a header block; its Content-Length. Sets `lost` or `found` on a problem.
    async fn header(&mut self) -> Result<Result<usize, String>, Closed> {
        let mut length = self.found.take();
        let mut any = length.is_some();
        let mut line = Vec::new();
        loop {
            line.clear();
            let complete = self.line(&mut line).await?;
            if !complete {
                // Too long for a header: skip, but look for a header at the end of this line.
                self.tail.clear();
                self.tail
                    .extend_from_slice(&line[line.len().saturating_sub(HEADER_TAIL)..]);
                self.lost = true;
                return Ok(Err(format!(
                    "a header line of more than {MAX_HEADER_LINE} bytes: {}",
                    preview(&line)
                )));
            }
            let header = line.strip_suffix(b"\r").unwrap_or(&line);
            if header.is_empty() {
                if !any {
                    continue; // stray line breaks between frames
                }
                break;
            }
            any = true;
            match content_length_at_end(header) {
                Some((0, n)) => {
                    length = Some(n);
                    continue;
                }
                Some((start, n)) => {
                    // A header glued to the end of something else.
                    self.found = Some(n);
                    return Ok(Err(format!(
                        "bytes before a header: {}",
                        preview(&header[..start])
                    )));
                }
                None => {}
            }
            let name = header.iter().position(|&b| b == b':').map(|colon| {
                let (name, value) = header.split_at(colon);
                (name, &value[1..])
            });
            match name {
                Some((name, value)) if name.eq_ignore_ascii_case(b"content-length") => {
                    self.lost = true;
                    return Ok(Err(format!("bad Content-Length: {}", preview(value))));
                }
                Some((name, _)) if !name.is_empty() && name.iter().all(|&b| is_token(b)) => {}
                _ => {
                    self.lost = true;
                    return Ok(Err(format!("bad header line: {}", preview(header))));
                }
            }
        }
        match length {
            Some(length) => Ok(Ok(length)),
            None => {
                self.lost = true;
                Ok(Err("a header without Content-Length".into()))
            }
        }
    }

    /// Reads a line into `line`, without its `\n`; false if it is longer than
    /// [`MAX_HEADER_LINE`] (then `line` holds that much of it).
    async fn line(&mut self, line: &mut Vec<u8>) -> Result<bool, Closed> {
        loop {
            let piece = fill(&mut self.input).await?;
            let room = MAX_HEADER_LINE - line.len();
            match piece.iter().take(room + 1).position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&piece[..i]);
                    self.input.consume(i + 1);
                    return Ok(true);
                }
                None => {
                    let take = piece.len().min(room);
                    line.extend_from_slice(&piece[..take]);
                    self.input.consume(take);
                    if line.len() == MAX_HEADER_LINE {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Skips to the end of the next line that ends a `Content-Length` header; its length and
    /// the bytes skipped.
    async fn skip_to_header(&mut self) -> Result<(usize, usize), Closed> {
        let mut skipped = 0;
        loop {
            let piece = fill(&mut self.input).await?;
            if let Some((end, length)) = header_in(&self.tail, piece) {
                self.input.consume(end);
                self.tail.clear();
                return Ok((length, skipped + end));
            }
            let n = piece.len();
            let keep = HEADER_TAIL.min(self.tail.len() + n);
            let from_tail = keep.saturating_sub(n);
            self.tail.drain(..self.tail.len() - from_tail);
            self.tail
                .extend_from_slice(&piece[n - (keep - from_tail)..]);
            self.input.consume(n);
            skipped += n;
        }
    }

    /// Reads a body of `length` bytes, unless a header line turns up in it.
    async fn body(&mut self, length: usize) -> Result<Result<Vec<u8>, String>, Closed> {
        let mut body = Vec::with_capacity(length.min(1 << 20));
        while body.len() < length {
            let piece = match self.input.fill_buf().await {
                Ok([]) => {
                    return Ok(Err(format!(
                        "the input ended inside a body of {length} bytes"
                    )));
                }
                Ok(piece) => piece,
                Err(e) => return Err(closed(e)),
            };
            let piece = &piece[..piece.len().min(length - body.len())];
            if let Some((end, next)) = header_in(&body, piece) {
                self.input.consume(end);
                self.found = Some(next);
                return Ok(Err(format!(
                    "a frame shorter than its Content-Length of {length}: a header began in it"
                )));
            }
            body.extend_from_slice(piece);
            let n = piece.len();
            self.input.consume(n);
        }
        Ok(Ok(body))
    }
}

/// The buffered input, at least a byte of it.
async fn fill<R: AsyncRead + Unpin>(input: &mut BufReader<R>) -> Result<&[u8], Closed> {
    match input.fill_buf().await {
        Ok([]) => Err(Closed),
        Ok(piece) => Ok(piece),
        Err(e) => Err(closed(e)),
    }
}

/// The input ended or cannot be read.
struct Closed;

fn closed(error: std::io::Error) -> Closed {
    tracing::error!("reading from the client failed: {error}");
    Closed
}

/// The first line break in `piece` that ends a `Content-Length` header (`before` holds the bytes
/// before `piece`, for a line that began there): the offset just after it, and the length.
fn header_in(before: &[u8], piece: &[u8]) -> Option<(usize, usize)> {
    let mut scratch = Vec::new();
    let mut from = 0;
    while let Some(i) = find_newline(&piece[from..]) {
        let i = from + i;
        let line = if i >= HEADER_TAIL {
            &piece[i - HEADER_TAIL..i]
        } else {
            scratch.clear();
            scratch.extend_from_slice(&before[before.len().saturating_sub(HEADER_TAIL - i)..]);
            scratch.extend_from_slice(&piece[..i]);
            &scratch[..]
        };
        if let Some((_, length)) = content_length_at_end(line) {
            return Some((i + 1, length));
        }
        from = i + 1;
    }
    None
}

/// The first `\n` in `bytes`, looked for 16 bytes at a time: every body is scanned for one.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const LF: u64 = u64::from_ne_bytes([b'\n'; 8]);
    // A word has a zero byte iff `(w - ONES) & !w & HIGHS` is not zero.
    let zero = |w: &[u8]| {
        let w = u64::from_ne_bytes(w.try_into().unwrap_or_default()) ^ LF;
        w.wrapping_sub(ONES) & !w
    };
    let mut at = 0;
    for pair in bytes.chunks_exact(16) {
        if (zero(&pair[..8]) | zero(&pair[8..])) & HIGHS != 0 {
            break;
        }
        at += 16;
    }
    bytes[at..].iter().position(|&b| b == b'\n').map(|i| at + i)
}

/// Whether `line` (without its `\n`) ends with a `Content-Length: N` header, the name in any
/// case: where that header starts, and N.
fn content_length_at_end(line: &[u8]) -> Option<(usize, usize)> {
    const NAME: &[u8] = b"content-length:";
    let blank = |b: &u8| matches!(b, b' ' | b'\t');
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits_end = line.len() - line.iter().rev().take_while(|b| blank(b)).count();
    let digits_start = digits_end
        - line[..digits_end]
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
    let length = std::str::from_utf8(&line[digits_start..digits_end])
        .ok()?
        .parse()
        .ok()?;
    let name_end = digits_start
        - line[..digits_start]
            .iter()
            .rev()
            .take_while(|b| blank(b))
            .count();
    let start = name_end.checked_sub(NAME.len())?;
    line[start..name_end]
        .eq_ignore_ascii_case(NAME)
        .then_some((start, length))
}

/// A character allowed in a header's name (RFC 9110's `tchar`).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The start of some bytes from the client, for a message.
fn preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(80)];
    let more = if shown.len() < bytes.len() { "…" } else { "" };
    format!("{:?}{more}", String::from_utf8_lossy(shown))
}

fn send_error(frames: &Outbox, id: Id, code: ErrorCode, message: String) {
    let error = Error {
        code,
        message: message.into(),
        data: None,
    };
    send(frames, &id, Err(error));
}

fn send(frames: &Outbox, id: &Id, answer: jsonrpc::Result<Body>) {
    let _ = frames.send(encoded(id, answer));
}

/// The response to request `id`: its result (already encoded) or its error.
pub(super) fn encoded(id: &Id, answer: jsonrpc::Result<Body>) -> Body {
    let error = match answer {
        Ok(mut body) => {
            let then = body.take_written();
            let id = serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec());
            let mut head = Vec::with_capacity(id.len() + 32);
            head.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
            head.extend_from_slice(&id);
            head.extend_from_slice(br#","result":"#);
            let framed = match body {
                Body::Bytes(mut bytes) => {
                    bytes.reserve(head.len() + 1);
                    bytes.splice(0..0, head);
                    bytes.push(b'}');
                    Body::Bytes(bytes)
                }
                // An answer as large as the file: the envelope goes around it as it is written.
                Body::Streamed(streamed) => Body::Streamed(streamed.wrapped(head, b"}")),
                timed => {
                    Body::Streamed(Streamed::new(timed.len(), timed.blocks()).wrapped(head, b"}"))
                }
            };
            return match then {
                Some(then) => framed.when_written(then),
                None => framed,
            };
        }
        Err(error) => error,
    };
    serde_json::to_vec(&Response::from_error(id.clone(), error))
        .unwrap_or_default()
        .into()
}

/// What the writer does once a request's answer is written: the request's time, from the
/// moment it was read to the answer's last byte written, goes into its method's histogram
/// (`strata/stats`) and, at debug level, into the log under `strata::answered`.
fn timed(
    method: &'static str,
    id: Id,
    read: Instant,
    histogram: std::sync::Arc<crate::llm::Histogram>,
) -> impl FnOnce() + Send + 'static {
    move || {
        let took = read.elapsed();
        histogram.record(took);
        tracing::debug!(
            target: "strata::answered",
            %method,
            %id,
            ms = took.as_secs_f64() * 1e3,
            "answered"
        );
    }
}

/// Whether a message has a `method` member (perhaps an empty one).
fn has_method(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        method: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(body).is_ok_and(|probe| probe.method.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    const GOOD: &str = r#"{"jsonrpc":"2.0","id":7,"method":"strata/stats"}"#;

    /// Gives its bytes one per read, so every header and body straddles the reader's pieces.
    struct Trickle(Vec<u8>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some(&b) = self.0.get(self.1) {
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    /// The frames in `input` as the transport reads them (resynchronising after a body that is
    /// not JSON): a body as its text, a malformed frame as `?`. Read whole and a byte at a
    /// time, which must agree.
    async fn frames(input: &[u8]) -> Vec<String> {
        let whole = read_all(Frames::new(input)).await;
        let trickled = read_all(Frames::new(Trickle(input.to_vec(), 0))).await;
        assert_eq!(whole, trickled, "read whole and a byte at a time");
        whole
    }

    async fn read_all<R: AsyncRead + Unpin>(mut frames: Frames<R>) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match frames.next().await {
                Frame::End => return out,
                Frame::Malformed(_) => out.push("?".into()),
                Frame::Body(body) => {
                    if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
                        frames.resync();
                    }
                    out.push(String::from_utf8(body).unwrap());
                }
            }
        }
    }

    /// `bad` then a good frame: one malformed frame, then the good one, then the end.
    async fn recovers(bad: &str) {
        let input = format!("{bad}{}", frame(GOOD));
        assert_eq!(frames(input.as_bytes()).await, ["?", GOOD], "{bad:?}");
    }

    const BODY: &str = r#"{"jsonrpc":"2.0","id":99,"method":"strata/stats"}"#;

    #[tokio::test]
    async fn frames_are_read_in_any_header_spelling() {
        let input = format!(
            "\r\n{}content-length:{}\n\n{GOOD}Content-Type: x\r\nCONTENT-LENGTH: \t{} \r\n\r\n{GOOD}",
            frame(BODY),
            GOOD.len(),
            GOOD.len(),
        );
        assert_eq!(frames(input.as_bytes()).await, [BODY, GOOD, GOOD]);
    }

    #[tokio::test]
    async fn malformed_headers_are_reported_once_and_the_next_frame_is_read() {
        let n = BODY.len();
        for bad in [
            format!("Content-Type: application/json\r\n\r\n{BODY}"),
            format!("Content-Length: -5\r\n\r\n{BODY}"),
            format!("Content-Length: abc\r\n\r\n{BODY}"),
            format!("Content-Length: 99999999999999999999999\r\n\r\n{BODY}"),
            format!("Content-Length: {n}\r\nno colon here\r\n\r\n{BODY}"),
            format!("garbage\r\n\r\n{BODY}"),
            format!("{{\"a\": 1}}: x\r\n\r\n{BODY}"),
            "Content-Length: 300000000\r\n\r\n{}".into(),
            format!("{}\r\n\r\n{BODY}", "x".repeat(3 * MAX_HEADER_LINE)),
            format!("Content-Length: {}\r\n\r\n{BODY}", n + 1000),
        ] {
            recovers(&bad).await;
        }
    }

    #[tokio::test]
    async fn a_body_longer_than_declared_is_reported_and_the_next_frame_is_read() {
        let input = format!("Content-Length: 10\r\n\r\n{BODY}{}", frame(GOOD));
        assert_eq!(frames(input.as_bytes()).await, [&BODY[..10], GOOD]);
    }

    #[tokio::test]
    async fn a_header_glued_to_garbage_starts_a_frame() {
        // Without the reader's resync: the rest of a too-long body read as a header line.
        let input = format!("x\": 1}}{}", frame(GOOD));
        assert_eq!(frames(input.as_bytes()).await, ["?", GOOD]);
        // A megabyte without a line break, then a header.
        let input = format!("{}{}", "y".repeat(1 << 20), frame(GOOD));
        assert_eq!(frames(input.as_bytes()).await, ["?", GOOD]);
    }

    #[tokio::test]
    async fn header_text_inside_json_is_body() {
        let body = r#"{"jsonrpc":"2.0","method":"x","params":{"text":"Content-Length: 5\\r\\n\\r\\nabcde"}}"#;
        let input = format!("{}{}", frame(body), frame(GOOD));
        assert_eq!(frames(input.as_bytes()).await, [body, GOOD]);
    }

    #[tokio::test]
    async fn the_input_ending_inside_a_frame_is_reported() {
        assert_eq!(frames(b"Content-Length: 50\r\n\r\n{}").await, ["?"]);
        assert_eq!(
            frames(b"Content-Length: 50\r\n").await,
            Vec::<String>::new()
        );
        assert_eq!(frames(b"").await, Vec::<String>::new());
    }

    #[test]
    fn newlines_are_found_wherever_they_are() {
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![0x8a; len];
                bytes[at] = b'\n';
                if at + 1 < len {
                    bytes[at + 1] = b'\n';
                }
                assert_eq!(find_newline(&bytes), Some(at), "{len} {at}");
            }
            assert_eq!(find_newline(&vec![b'\x0b'; len]), None);
        }
    }

    #[test]
    fn content_length_lines() {
        for (line, expected) in [
            (&b"Content-Length: 12"[..], Some((0, 12))),
            (b"content-length:12\r", Some((0, 12))),
            (b"}]}Content-Length: 3", Some((3, 3))),
            (b"Content-Length: ", None),
            (b"Content-Length: -5", None),
            (b"Content-Length: 1x", None),
            (b"Content-Length: 99999999999999999999999", None),
            (b"Content-Type: 12", None),
            (b"Length: 12", None),
            (b"12", None),
        ] {
            assert_eq!(content_length_at_end(line), expected, "{line:?}");
        }
    }
}
