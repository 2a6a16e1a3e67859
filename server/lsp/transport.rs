//! The base protocol over stdio: `Content-Length` frames of JSON-RPC between the client and the
//! service. It takes the place of tower-lsp-server's `Server`, which polls every handler, and
//! turns every result into a `serde_json::Value` and encodes it, on the one task that also reads
//! the client's messages: one large answer held up every message behind it.
//!
//! Here:
//! - a notification is polled once as soon as it is read, so edits are applied in the order the
//!   client sent them (handlers mutate before their first `.await`); if it is not done by then,
//!   it finishes on a task of its own;
//! - a request runs on a task of its own, which also encodes its answer;
//! - the whole-document answers ([`outline::METHODS`]) are encoded straight from their types by
//!   [`Outline::encoded`], without a `Value`; the transport also handles their `$/cancelRequest`
//!   and refuses them after `shutdown`, as the service does for its own requests;
//! - one writer task writes frames in the order the answers are done.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tower_lsp_server::ClientSocket;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Id, Request, Response};
use tower_service::Service;

use super::outline::{self, Outline};
use super::timing::MethodTimes;

/// Larger frames are refused (and skipped): a client that sends one is broken.
const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Serves until the client sends `exit` or closes its end. Requests still running then are
/// aborted; answers already made are written.
pub async fn serve<I, O, S>(
    input: I,
    output: O,
    mut service: S,
    socket: ClientSocket,
    outline: Outline,
    times: Arc<MethodTimes>,
) where
    I: AsyncRead + Unpin,
    O: AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display + Send + 'static,
{
    let (frames, receiver) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_frames(output, receiver));
    let (mut to_client, mut client_answers) = socket.split();
    let forward = {
        let frames = frames.clone();
        tokio::spawn(async move {
            while let Some(request) = to_client.next().await {
                if let Ok(body) = serde_json::to_vec(&request) {
                    let _ = frames.send(body);
                }
            }
        })
    };

    let mut input = BufReader::new(input);
    let mut tasks = JoinSet::new();
    // The requests the transport answers itself, until they are answered or cancelled.
    let own: Arc<Mutex<HashMap<Id, Option<AbortHandle>>>> = Arc::default();
    let mut shut_down = false;
    loop {
        while tasks.try_join_next().is_some() {}
        let body = match read_frame(&mut input).await {
            Ok(Some(body)) => body,
            Ok(None) => break,
            Err(problem) => {
                tracing::error!("unreadable message from the client: {problem}");
                send_error(&frames, Id::Null, ErrorCode::ParseError, problem);
                continue;
            }
        };
        // tower-lsp-server's `Request` takes a missing method for an empty one: a message
        // without one is the client's answer to a request of ours.
        let request = match serde_json::from_slice::<Request>(&body) {
            Ok(request) if !request.method().is_empty() => request,
            parsed => {
                match serde_json::from_slice::<Response>(&body) {
                    Ok(answer) => {
                        if client_answers.send(answer).await.is_err() {
                            tracing::warn!("an answer from the client arrived after shutdown");
                        }
                    }
                    Err(not_an_answer) => {
                        let problem = match parsed {
                            Err(e) => e.to_string(),
                            Ok(_) => format!("neither a request nor an answer: {not_an_answer}"),
                        };
                        tracing::error!("invalid message from the client: {problem}");
                        let code = if serde_json::from_slice::<serde_json::Value>(&body).is_ok() {
                            ErrorCode::InvalidRequest
                        } else {
                            ErrorCode::ParseError
                        };
                        send_error(&frames, Id::Null, code, problem);
                    }
                }
                continue;
            }
        };

        let started = Instant::now();
        let histogram = times.histogram(request.method());
        match request.method() {
            "shutdown" => shut_down = true,
            "$/cancelRequest" => {
                let id = request
                    .params()
                    .and_then(|p| serde_json::from_value::<Id>(p.get("id")?.clone()).ok());
                if let Some(entry) = id.and_then(|id| Some((lock(&own).remove(&id)?, id))) {
                    let (handle, id) = entry;
                    if let Some(handle) = handle {
                        handle.abort();
                    }
                    send_error(&frames, id, ErrorCode::RequestCancelled, "cancelled".into());
                    continue;
                }
            }
            _ => {}
        }
        if let Some(id) = request
            .id()
            .filter(|_| outline.initialized() && outline::METHODS.contains(&request.method()))
            .cloned()
        {
            if shut_down {
                send_error(
                    &frames,
                    id,
                    ErrorCode::InvalidRequest,
                    "the server is shutting down".into(),
                );
                continue;
            }
            let (method, _, params) = request.into_parts();
            let answer = outline.encoded(&method, id.clone(), params);
            // Whoever takes the id out of `own` answers: this task, or a cancellation.
            lock(&own).insert(id.clone(), None);
            let (frames, own_here, key) = (frames.clone(), own.clone(), id.clone());
            let handle = tasks.spawn(async move {
                let body = answer.await;
                histogram.record(started.elapsed());
                if lock(&own_here).remove(&key).is_some() {
                    let _ = frames.send(body);
                }
            });
            if let Some(entry) = lock(&own).get_mut(&id) {
                *entry = Some(handle);
            }
            continue;
        }

        if let Err(error) = std::future::poll_fn(|cx| service.poll_ready(cx)).await {
            tracing::error!("the service stopped: {error}");
            break;
        }
        let exit = request.method() == "exit";
        let notification = request.id().is_none();
        let mut answer = Box::pin(service.call(request));
        let frames = frames.clone();
        let finish = move |result: Result<Option<Response>, S::Error>| {
            histogram.record(started.elapsed());
            match result {
                Ok(Some(response)) => match serde_json::to_vec(&response) {
                    Ok(body) => {
                        let _ = frames.send(body);
                    }
                    Err(e) => tracing::error!("encoding an answer failed: {e}"),
                },
                Ok(None) => {}
                Err(error) => tracing::error!("the service failed: {error}"),
            }
        };
        if notification {
            // Its synchronous part runs now, in the order the client sent it.
            let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
            if let Poll::Ready(result) = answer.as_mut().poll(&mut cx) {
                finish(result);
                if exit {
                    break;
                }
                continue;
            }
        }
        tasks.spawn(async move { finish(answer.await) });
        if exit {
            break;
        }
    }

    tasks.shutdown().await;
    forward.abort();
    let _ = forward.await;
    drop(frames);
    let _ = writer.await;
}

/// Reads one frame's body; `None` at the end of the input.
async fn read_frame<R: AsyncRead + Unpin>(
    input: &mut BufReader<R>,
) -> Result<Option<Vec<u8>>, String> {
    let mut length = None;
    let mut line = String::new();
    let mut any = false;
    loop {
        line.clear();
        let n = input
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading the header: {e}"))?;
        if n == 0 {
            return if any {
                Err("the input ended inside a header".into())
            } else {
                Ok(None)
            };
        }
        let header = line.trim_end_matches(['\r', '\n']);
        if header.is_empty() {
            if !any {
                continue; // stray line breaks between frames
            }
            break;
        }
        any = true;
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length: {value:?}"))?,
                );
            }
        } else {
            return Err(format!("bad header line: {header:?}"));
        }
    }
    let length = length.ok_or("a header without Content-Length")?;
    if length > MAX_FRAME {
        // Skip it, so that the next frame can be read.
        tokio::io::copy(
            &mut (&mut *input).take(length as u64),
            &mut tokio::io::sink(),
        )
        .await
        .map_err(|e| format!("skipping a frame: {e}"))?;
        return Err(format!(
            "a frame of {length} bytes (the limit is {MAX_FRAME})"
        ));
    }
    let mut body = vec![0; length];
    input
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading a body of {length} bytes: {e}"))?;
    Ok(Some(body))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn send_error(frames: &mpsc::UnboundedSender<Vec<u8>>, id: Id, code: ErrorCode, message: String) {
    let response = Response::from_error(
        id,
        Error {
            code,
            message: message.into(),
            data: None,
        },
    );
    if let Ok(body) = serde_json::to_vec(&response) {
        let _ = frames.send(body);
    }
}

/// Writes each body as a frame, flushing when no other is waiting.
async fn write_frames<O: AsyncWrite + Unpin>(
    output: O,
    mut bodies: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut output = pin!(tokio::io::BufWriter::new(output));
    while let Some(body) = bodies.recv().await {
        let header = format!("Content-Length: {}\r\n\r\n", body.len());
        if output.write_all(header.as_bytes()).await.is_err()
            || output.write_all(&body).await.is_err()
        {
            return; // the client is gone
        }
        if bodies.is_empty() && output.flush().await.is_err() {
            return;
        }
    }
    let _ = output.flush().await;
}
