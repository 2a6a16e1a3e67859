//! A fake LLM server on loopback, for tests.
//!
//! [`FakeModel::start`] binds `127.0.0.1:0` and answers HTTP/1.1 on a background thread, one
//! thread per connection, with nothing but `std::net` and `std::thread` — so it works under any
//! async runtime (or none), and can later be wrapped in a standalone binary.
//!
//! It speaks the real wire formats of three providers, chosen by the request path:
//!
//! | path                       | provider                   | stream format                 |
//! |----------------------------|----------------------------|-------------------------------|
//! | `POST /v1/chat/completions`| OpenAI chat completions    | SSE `data:` chunks, `[DONE]`  |
//! | `POST /v1/completions`     | OpenAI legacy (FIM)        | SSE `data:` chunks, `[DONE]`  |
//! | `POST /api/chat`           | Ollama chat                | NDJSON, streams by default    |
//! | `POST /api/generate`       | Ollama generate (FIM)      | NDJSON, streams by default    |
//! | `POST /v1/messages`        | Anthropic Messages         | SSE with named events         |
//! | `POST /infill`             | llama.cpp server infill    | SSE `data:` objects, `stop`   |
//!
//! Anything else gets a 404 with a JSON error (and does not consume a scripted reply).
//!
//! A test scripts what the "model" answers with [`Reply`] values: queued with
//! [`FakeModel::script`] (first in, first out), or [`FakeModel::set_default`] for every request
//! the queue does not cover. A reply sets the text and how it is streamed (pieces, latency, time
//! to first token, drip between pieces), the status and extra headers, a raw body, and a
//! [`Fault`]: malformed JSON, a cut connection, a hang, an endless stream, a reset.
//!
//! A fill-in-the-middle request is understood in each of its shapes: `prompt` and `suffix`,
//! llama.cpp's `input_prefix` and `input_suffix`, or a raw prompt in one of the built-in FIM
//! templates (Qwen, DeepSeek, StarCoder, CodeLlama, Codestral) — [`fim_prefix`] reads the text
//! before the cursor out of any of them, for `continue_line`. [`FakeModel::set_context_window`]
//! makes it refuse prompts longer than a window (a bytes / 4 count of the prompt's text), as its
//! provider does: a 400 in the provider's words, or a 200 with an empty stream.
//!
//! Every request is recorded as a [`Call`] (method, path, headers, body, parsed JSON), with
//! whether its response was written in full and whether the client hung up first — so a test
//! can check that a cancelled request really closed its connection ([`FakeModel::wait_for_closed`]).
//! Every sleep inside the server watches the socket, so a client that goes away is noticed
//! promptly, and every thread ends once its client goes away or the `FakeModel` is dropped.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// How often blocked reads and sleeps look at the socket and at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// A write that blocks this long (a client that stopped reading) counts as a client gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request heads larger than this are refused (431).
const MAX_HEAD: usize = 64 * 1024;
/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The shortest pause between pieces of an endless drip, so `drip_ms: 0` does not spin.
const MIN_ENDLESS_DRIP_MS: u64 = 5;

/// A fake LLM server on `127.0.0.1`. Stops accepting when dropped.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The request target as sent: path plus any query string.
    pub path: String,
    /// Header names lowercased, values trimmed, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies decoded), lossily as UTF-8.
    pub body: String,
    /// The body parsed as JSON, if it is JSON.
    pub json: Option<Value>,
    /// Which TCP connection carried it (numbered from 0 in accept order): two calls with the
    /// same number came over one kept-alive connection.
    pub connection: u64,
    /// The whole response was written.
    pub completed: bool,
    /// The client disconnected before the response finished.
    pub client_closed: bool,
    /// When the whole request had been read.
    pub received: Instant,
    /// When the response had been written (or the writing failed).
    pub ended: Option<Instant>,
}

impl Call {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake model answers to one request.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(default)]
pub struct Reply {
    /// The answer.
    pub text: String,
    /// Stream the answer in this many pieces, split on char boundaries (at most one char per
    /// piece). 0, the default: one piece per whitespace-separated word, each word carrying the
    /// whitespace before it (`"a b"` → `"a"`, `" b"`).
    pub pieces: usize,
    /// Default 200. Anything else sends the provider's error JSON (or `body`, if set), never a
    /// stream.
    pub status: u16,
    /// Extra response headers, e.g. `("retry-after", "2")`. They replace a generated header of
    /// the same name (content-type, say), except the framing headers (content-length,
    /// transfer-encoding). `("connection", "close")` closes the connection after the response.
    pub headers: Vec<(String, String)>,
    /// A raw body sent as-is, with Content-Length, instead of the generated one (stream or
    /// not).
    pub body: Option<String>,
    /// Before the status line is written.
    pub latency_ms: u64,
    /// Streams: after the headers, before the first event. Otherwise added to `latency_ms`.
    pub first_token_ms: u64,
    /// Held until [`FakeModel::release`]: streams after the headers, before the first event;
    /// otherwise before the status line. The client going away ends the wait.
    pub held: bool,
    /// Streams: between pieces.
    pub drip_ms: u64,
    pub fault: Fault,
    /// Usage to report. 0, the default: a rough count from the request body (bytes / 4, at
    /// least 1).
    pub prompt_tokens: u32,
    /// 0, the default: the number of pieces.
    pub completion_tokens: u32,
    /// A fill-in-the-middle request (`prompt`) whose last line, indentation aside, begins this
    /// line is answered with the rest of it, as a code model would; any other with `text`.
    pub continue_line: Option<String>,
}

/// Something going wrong with a response.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Fault {
    #[default]
    None,
    /// Streams: after this many good pieces, one event/line that is not valid JSON, then the
    /// rest as normal. Whole bodies: the body is cut in half (so not valid JSON), with a correct
    /// Content-Length.
    Malformed { after: usize },
    /// Streams: after this many pieces, the socket is closed abruptly (no final event, no
    /// terminating chunk). Whole bodies: half the body is written under the full
    /// Content-Length, then the socket is closed.
    Cut { after: usize },
    /// The headers are sent, then nothing until the client goes away.
    Hang,
    /// Streams: after the pieces, the pieces again, one every `drip_ms`, forever (until the
    /// client goes away). Whole bodies: a chunked body of spaces, one every `drip_ms`, forever.
    EndlessDrip,
    /// The request is read, then the connection is closed without any response.
    Reset,
    /// A success status and headers, then the body ends with nothing in it (no event, no
    /// object): what some servers send when a prompt does not fit their context window.
    Empty,
}

/// How the fake model answers a prompt longer than its context window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// HTTP 400 with the provider's own error: OpenAI's `context_length_exceeded`, llama.cpp's
    /// `exceed_context_size_error` (on `/infill`), Ollama's and Anthropic's messages.
    Status,
    /// HTTP 200 and an empty body ([`Fault::Empty`]).
    EmptyStream,
}

impl Default for Reply {
    fn default() -> Reply {
        Reply {
            text: "ok".to_owned(),
            pieces: 0,
            status: 200,
            headers: Vec::new(),
            body: None,
            latency_ms: 0,
            first_token_ms: 0,
            held: false,
            drip_ms: 0,
            fault: Fault::None,
            prompt_tokens: 0,
            completion_tokens: 0,
            continue_line: None,
        }
    }
}

impl Reply {
    /// A 200 answering `text`.
    pub fn text(text: &str) -> Reply {
        Reply {
            text: text.to_owned(),
            ..Reply::default()
        }
    }

    /// A reply with this status and the provider's error body.
    pub fn error(status: u16) -> Reply {
        Reply::text("").status(status)
    }

    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = Some(body.to_owned());
        self
    }

    pub fn pieces(mut self, pieces: usize) -> Reply {
        self.pieces = pieces;
        self
    }

    pub fn latency(mut self, ms: u64) -> Reply {
        self.latency_ms = ms;
        self
    }

    pub fn first_token(mut self, ms: u64) -> Reply {
        self.first_token_ms = ms;
        self
    }

    /// Held until [`FakeModel::release`].
    pub fn held(mut self) -> Reply {
        self.held = true;
        self
    }

    pub fn drip(mut self, ms: u64) -> Reply {
        self.drip_ms = ms;
        self
    }

    pub fn fault(mut self, fault: Fault) -> Reply {
        self.fault = fault;
        self
    }

    pub fn tokens(mut self, prompt: u32, completion: u32) -> Reply {
        self.prompt_tokens = prompt;
        self.completion_tokens = completion;
        self
    }

    /// The answer cut into the pieces it is streamed in.
    pub fn split(&self) -> Vec<String> {
        if self.pieces == 0 {
            let mut out = Vec::new();
            let mut current = String::new();
            let mut after_space = true;
            for c in self.text.chars() {
                if c.is_whitespace() && !after_space && !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                current.push(c);
                after_space = c.is_whitespace();
            }
            if !current.is_empty() {
                out.push(current);
            }
            return out;
        }
        let starts: Vec<usize> = self.text.char_indices().map(|(i, _)| i).collect();
        let n = self.pieces.min(starts.len());
        (0..n)
            .map(|i| {
                let from = starts[i * starts.len() / n];
                let to = starts
                    .get((i + 1) * starts.len() / n)
                    .copied()
                    .unwrap_or(self.text.len());
                self.text[from..to].to_owned()
            })
            .collect()
    }
}

impl FakeModel {
    /// Binds `127.0.0.1:0` and serves on a background thread.
    pub fn start() -> FakeModel {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake model");
        let addr = listener.local_addr().expect("fake model address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: VecDeque::new(),
                default: Reply::text("ok"),
                calls: Vec::new(),
                in_flight: 0,
                released: false,
                window: None,
            }),
            changed: Condvar::new(),
            stopped: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let accepting = shared.clone();
        let acceptor = thread::Builder::new()
            .name("fake-model-accept".to_owned())
            .spawn(move || accept(listener, accepting))
            .expect("spawn the fake model");
        FakeModel {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply: the next request to a provider path gets it (first in, first out).
    pub fn script(&self, reply: Reply) {
        self.shared.lock().script.push_back(reply);
    }

    /// The reply used when the queue is empty (initially `Reply::text("ok")`).
    pub fn set_default(&self, reply: Reply) {
        self.shared.lock().default = reply;
    }

    /// From now on, a prompt longer than `tokens` (its text's bytes / 4) is refused as
    /// `overflow` says, without taking a scripted reply.
    pub fn set_context_window(&self, tokens: usize, overflow: Overflow) {
        self.shared.lock().window = Some((tokens, overflow));
    }

    /// Every request received, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    pub fn call_count(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// Lets every held reply, now and later, go on.
    pub fn release(&self) {
        self.shared.update(|s| s.released = true);
    }

    /// Requests whose response is still being written.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }

    /// Waits until at least `n` requests have arrived; false on timeout.
    pub fn wait_for_calls(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.calls.len() >= n)
    }

    /// Waits until the client of call `call_index` has hung up before its response finished;
    /// false on timeout.
    pub fn wait_for_closed(&self, call_index: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| {
            s.calls.get(call_index).is_some_and(|c| c.client_closed)
        })
    }

    /// Waits until no response is being written (so `completed` and `client_closed` are final
    /// for every call so far); false on timeout.
    pub fn wait_for_idle(&self, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.in_flight == 0)
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.changed.notify_all();
        // Wake the blocking accept so the listener closes now; connection threads notice the
        // stop flag within `POLL`.
        let woke = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).is_ok();
        if let Some(acceptor) = self.acceptor.take()
            && woke
        {
            let _ = acceptor.join();
        }
    }
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stopped: AtomicBool,
    connections: AtomicU64,
}

struct State {
    script: VecDeque<Reply>,
    default: Reply,
    calls: Vec<Call>,
    in_flight: usize,
    /// [`FakeModel::release`] was called.
    released: bool,
    window: Option<(usize, Overflow)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let out = f(&mut self.lock());
        self.changed.notify_all();
        out
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |s| !done(s))
            .unwrap_or_else(|e| e.into_inner());
        done(&guard)
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(stream) = stream else {
            thread::sleep(POLL);
            continue;
        };
        let id = shared.connections.fetch_add(1, Ordering::SeqCst);
        let shared = shared.clone();
        let _ = thread::Builder::new()
            .name(format!("fake-model-conn-{id}"))
            .spawn(move || Connection::new(stream, shared, id).serve());
    }
}

/// How a response ended, when it did not end well.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// The client went away (or stopped reading) before the response finished.
    ClientGone,
    /// The server stopped: a scripted fault, or the `FakeModel` was dropped.
    Aborted,
}

type Step = Result<(), Ended>;

struct Request {
    method: String,
    target: String,
    http10: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    fn keep_alive(&self) -> bool {
        if self.has_token("connection", "close") {
            false
        } else if self.http10 {
            self.has_token("connection", "keep-alive")
        } else {
            true
        }
    }
}

enum ReadError {
    /// The connection ended (or the server stopped) before a whole request arrived.
    Gone,
    /// A request the server refuses: status and message.
    Bad(u16, &'static str),
}

struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    id: u64,
    /// Bytes read but not yet consumed (the start of a pipelined request, say).
    buffer: Vec<u8>,
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Shared>, id: u64) -> Connection {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        Connection {
            stream,
            shared,
            id,
            buffer: Vec::new(),
        }
    }

    fn serve(mut self) {
        loop {
            let request = match self.read_request() {
                Ok(request) => request,
                Err(ReadError::Gone) => break,
                Err(ReadError::Bad(status, message)) => {
                    let body = openai_error(message, "invalid_request_error", None);
                    let _ = self.write_whole(status, &[], "application/json", &body, false);
                    break;
                }
            };
            if !self.handle(request) {
                break;
            }
        }
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Answers one request; true to keep the connection for another.
    fn handle(&mut self, request: Request) -> bool {
        let path = request.target.split('?').next().unwrap_or_default();
        let api = if request.method == "POST" {
            Api::for_path(path)
        } else {
            None
        };
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let json = serde_json::from_str::<Value>(&body).ok();
        let call = Call {
            method: request.method.clone(),
            path: request.target.clone(),
            headers: request.headers.clone(),
            body,
            json: json.clone(),
            connection: self.id,
            completed: false,
            client_closed: false,
            received: Instant::now(),
            ended: None,
        };
        let tokens = json.as_ref().map_or(0, prompt_tokens);
        let (index, reply) = self.shared.update(|s| {
            s.calls.push(call);
            s.in_flight += 1;
            let reply = api.map(|api| match s.window {
                Some((window, overflow)) if tokens > window => {
                    overflowed(api, overflow, tokens, window)
                }
                _ => s.script.pop_front().unwrap_or_else(|| s.default.clone()),
            });
            (s.calls.len() - 1, reply)
        });
        let mut keep_alive = request.keep_alive();
        let ended = match (api, reply) {
            (Some(api), Some(reply)) => {
                if reply.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close")
                }) {
                    keep_alive = false;
                }
                let json = json.unwrap_or(Value::Null);
                let reply = continued(reply, &json);
                self.respond(api, index, &request, &json, &reply, keep_alive)
            }
            _ => {
                let message = format!("no route for {} {}", request.method, request.target);
                let body = openai_error(&message, "invalid_request_error", Some("not_found"));
                self.write_whole(404, &[], "application/json", &body, keep_alive)
            }
        };
        self.shared.update(|s| {
            s.in_flight -= 1;
            let call = &mut s.calls[index];
            call.completed = ended.is_ok();
            call.client_closed = ended == Err(Ended::ClientGone);
            call.ended = Some(Instant::now());
        });
        ended.is_ok() && keep_alive
    }

    fn respond(
        &mut self,
        api: Api,
        index: usize,
        request: &Request,
        json: &Value,
        reply: &Reply,
        keep_alive: bool,
    ) -> Step {
        if reply.fault == Fault::Reset {
            return Err(Ended::Aborted);
        }
        let streaming = match api {
            Api::OllamaChat | Api::OllamaGenerate => json["stream"] != Value::Bool(false),
            _ => json["stream"] == Value::Bool(true),
        };
        if reply.fault == Fault::Empty && (200..300).contains(&reply.status) {
            self.pause(reply.latency_ms)?;
            let content_type = if streaming {
                api.stream_content_type()
            } else {
                "application/json"
            };
            return if streaming {
                self.write_head(reply.status, &reply.headers, content_type, None, keep_alive)?;
                self.write(b"0\r\n\r\n")
            } else {
                self.write_whole(reply.status, &reply.headers, content_type, b"", keep_alive)
            };
        }
        let pieces = reply.split();
        let format = Format {
            api,
            model: json["model"].as_str().unwrap_or("fake-model").to_owned(),
            id: index,
            created: SystemTime::now(),
            started: Instant::now(),
            include_usage: json["stream_options"]["include_usage"] == Value::Bool(true),
            prompt_tokens: if reply.prompt_tokens > 0 {
                reply.prompt_tokens
            } else {
                (request.body.len() / 4).max(1) as u32
            },
            completion_tokens: if reply.completion_tokens > 0 {
                reply.completion_tokens
            } else {
                pieces.len() as u32
            },
        };
        let whole = !(200..300).contains(&reply.status) || reply.body.is_some() || !streaming;
        let latency = if whole {
            reply.latency_ms.saturating_add(reply.first_token_ms)
        } else {
            reply.latency_ms
        };
        if whole && reply.held {
            self.hold()?;
        }
        self.pause(latency)?;
        let mut headers = vec![(api.request_id_header().to_owned(), format.id_string())];
        headers.extend(reply.headers.iter().cloned());
        if !whole {
            return self.stream(&format, reply, &pieces, &headers, keep_alive);
        }
        let (content_type, body) = match &reply.body {
            Some(body) => (
                if streaming && (200..300).contains(&reply.status) {
                    api.stream_content_type()
                } else {
                    "application/json"
                },
                body.clone().into_bytes(),
            ),
            None if (200..300).contains(&reply.status) => (
                "application/json",
                format.whole(&reply.text).to_string().into_bytes(),
            ),
            None => ("application/json", format.error(reply.status).into_bytes()),
        };
        match reply.fault {
            Fault::Malformed { .. } => {
                let half = half(&body);
                self.write_whole(reply.status, &headers, content_type, half, keep_alive)
            }
            Fault::Cut { .. } => {
                self.write_head(
                    reply.status,
                    &headers,
                    content_type,
                    Some(body.len()),
                    false,
                )?;
                self.write(half(&body))?;
                Err(Ended::Aborted)
            }
            Fault::Hang => {
                self.write_head(
                    reply.status,
                    &headers,
                    content_type,
                    Some(body.len()),
                    false,
                )?;
                self.hang()
            }
            Fault::EndlessDrip => {
                self.write_head(reply.status, &headers, content_type, None, false)?;
                loop {
                    self.pause(reply.drip_ms.max(MIN_ENDLESS_DRIP_MS))?;
                    self.write_chunk(b" ")?;
                }
            }
            Fault::None | Fault::Reset | Fault::Empty => {
                self.write_whole(reply.status, &headers, content_type, &body, keep_alive)
            }
        }
    }

    fn stream(
        &mut self,
        format: &Format,
        reply: &Reply,
        pieces: &[String],
        headers: &[(String, String)],
        keep_alive: bool,
    ) -> Step {
        let mut headers = headers.to_vec();
        headers.insert(0, ("cache-control".to_owned(), "no-cache".to_owned()));
        let content_type = format.api.stream_content_type();
        self.write_head(reply.status, &headers, content_type, None, keep_alive)?;
        if reply.fault == Fault::Hang {
            return self.hang();
        }
        if reply.held {
            self.hold()?;
        }
        self.pause(reply.first_token_ms)?;
        for event in format.head() {
            self.write_chunk(event.as_bytes())?;
        }
        let cut = match reply.fault {
            Fault::Cut { after } => Some(after),
            _ => None,
        };
        let malformed = match reply.fault {
            Fault::Malformed { after } => Some(after),
            _ => None,
        };
        for (sent, piece) in pieces.iter().enumerate() {
            if cut == Some(sent) {
                return Err(Ended::Aborted);
            }
            if malformed == Some(sent) {
                self.write_chunk(format.malformed().as_bytes())?;
            }
            if sent > 0 {
                self.pause(reply.drip_ms)?;
            }
            self.write_chunk(format.piece(piece).as_bytes())?;
        }
        if cut.is_some_and(|after| after >= pieces.len()) {
            return Err(Ended::Aborted);
        }
        if malformed.is_some_and(|after| after >= pieces.len()) {
            self.write_chunk(format.malformed().as_bytes())?;
        }
        if reply.fault == Fault::EndlessDrip {
            let fallback = [".".to_owned()];
            let cycle = if pieces.is_empty() {
                &fallback[..]
            } else {
                pieces
            };
            for piece in cycle.iter().cycle() {
                self.pause(reply.drip_ms.max(MIN_ENDLESS_DRIP_MS))?;
                self.write_chunk(format.piece(piece).as_bytes())?;
            }
        }
        for event in format.tail() {
            self.write_chunk(event.as_bytes())?;
        }
        self.write(b"0\r\n\r\n")
    }

    // --- writing ---

    fn write(&mut self, bytes: &[u8]) -> Step {
        if self.shared.stopped() {
            return Err(Ended::Aborted);
        }
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|_| Ended::ClientGone)
    }

    fn write_chunk(&mut self, data: &[u8]) -> Step {
        let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
        chunk.extend_from_slice(data);
        chunk.extend_from_slice(b"\r\n");
        self.write(&chunk)
    }

    /// The status line and headers; `length: None` means a chunked body.
    fn write_head(
        &mut self,
        status: u16,
        extra: &[(String, String)],
        content_type: &str,
        length: Option<usize>,
        keep_alive: bool,
    ) -> Step {
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".to_owned(), content_type.to_owned()),
            match length {
                Some(n) => ("content-length".to_owned(), n.to_string()),
                None => ("transfer-encoding".to_owned(), "chunked".to_owned()),
            },
            (
                "connection".to_owned(),
                if keep_alive { "keep-alive" } else { "close" }.to_owned(),
            ),
        ];
        for (name, value) in extra {
            let framing = ["content-length", "transfer-encoding"]
                .iter()
                .any(|f| name.eq_ignore_ascii_case(f));
            if framing {
                continue;
            }
            match headers
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
            {
                Some(existing) => existing.1 = value.clone(),
                None => headers.push((name.clone(), value.clone())),
            }
        }
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in &headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.write(head.as_bytes())
    }

    fn write_whole(
        &mut self,
        status: u16,
        extra: &[(String, String)],
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
    ) -> Step {
        self.write_head(status, extra, content_type, Some(body.len()), keep_alive)?;
        self.write(body)
    }

    // --- waiting ---

    /// Sleeps `ms`, watching the socket: a client that hangs up ends the sleep with
    /// `ClientGone`, a dropped `FakeModel` with `Aborted`.
    fn pause(&mut self, ms: u64) -> Step {
        if ms == 0 {
            return Ok(());
        }
        let deadline = Instant::now().checked_add(Duration::from_millis(ms));
        loop {
            let step = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(());
                    }
                    left.min(POLL)
                }
                None => POLL,
            };
            self.watch(step)?;
        }
    }

    /// Waits for [`FakeModel::release`] (or the client to go away, or the server to stop).
    fn hold(&mut self) -> Step {
        while !self.shared.lock().released {
            self.watch(POLL)?;
        }
        Ok(())
    }

    /// Waits for the client to go away (or the server to stop).
    fn hang(&mut self) -> Step {
        loop {
            self.watch(POLL)?;
        }
    }

    /// Waits up to `step` for the socket to close. Returns early with the reason if it did or
    /// if the server stopped.
    fn watch(&mut self, step: Duration) -> Step {
        if self.shared.stopped() {
            return Err(Ended::Aborted);
        }
        let step = step.max(Duration::from_millis(1));
        let _ = self.stream.set_read_timeout(Some(step));
        match self.stream.peek(&mut [0u8; 1]) {
            Ok(0) => Err(Ended::ClientGone),
            // The client sent more (a pipelined request): the socket cannot tell us it closed
            // until that is read, so just sleep; a write will notice.
            Ok(_) => {
                thread::sleep(step);
                Ok(())
            }
            Err(e) if is_timeout(&e) => Ok(()),
            Err(_) => Err(Ended::ClientGone),
        }
    }

    // --- reading ---

    /// Reads more bytes into the buffer, polling the stop flag.
    fn fill(&mut self) -> Result<(), ReadError> {
        let _ = self.stream.set_read_timeout(Some(POLL));
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.shared.stopped() {
                return Err(ReadError::Gone);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Gone),
                Ok(n) => {
                    self.buffer.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if is_timeout(&e) => continue,
                Err(_) => return Err(ReadError::Gone),
            }
        }
    }

    /// The next line (without its CRLF), reading as needed.
    fn take_line(&mut self, limit: usize) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(at) = find(&self.buffer, b"\r\n") {
                let line = self.buffer[..at].to_vec();
                self.buffer.drain(..at + 2);
                return Ok(line);
            }
            if self.buffer.len() > limit {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            self.fill()?;
        }
    }

    fn take_exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buffer.len() < n {
            self.fill()?;
        }
        Ok(self.buffer.drain(..n).collect())
    }

    fn read_request(&mut self) -> Result<Request, ReadError> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if self.buffer.len() > MAX_HEAD {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        self.buffer.drain(..head_end + 4);
        // Tolerate stray blank lines before the request line.
        let mut lines = head.split("\r\n").skip_while(|l| l.is_empty());
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ReadError::Bad(400, "malformed request line"));
        };
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(ReadError::Bad(505, "only HTTP/1.0 and HTTP/1.1")),
        };
        // An absolute-form target (as sent to a proxy): keep only the path.
        let target = match target.split_once("://") {
            Some((_, rest)) => match rest.find('/') {
                Some(slash) => rest[slash..].to_owned(),
                None => "/".to_owned(),
            },
            None => target.to_owned(),
        };
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(ReadError::Bad(400, "malformed header"));
            };
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut request = Request {
            method: method.to_owned(),
            target,
            http10,
            headers,
            body: Vec::new(),
        };
        let chunked = request.has_token("transfer-encoding", "chunked");
        let length = match request.header("content-length") {
            Some(n) => Some(
                n.parse::<usize>()
                    .map_err(|_| ReadError::Bad(400, "bad content-length"))?,
            ),
            None => None,
        };
        if length.is_some_and(|n| n > MAX_BODY) {
            return Err(ReadError::Bad(413, "request body too large"));
        }
        let has_body = chunked || length.is_some_and(|n| n > 0);
        if has_body && request.has_token("expect", "100-continue") {
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                .map_err(|_| ReadError::Gone)?;
        }
        if chunked {
            loop {
                let line = self.take_line(MAX_HEAD)?;
                let line = String::from_utf8_lossy(&line);
                let size = line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| ReadError::Bad(400, "bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to a blank line.
                    while !self.take_line(MAX_HEAD)?.is_empty() {}
                    break;
                }
                if request.body.len() + size > MAX_BODY {
                    return Err(ReadError::Bad(413, "request body too large"));
                }
                let data = self.take_exact(size + 2)?;
                if !data.ends_with(b"\r\n") {
                    return Err(ReadError::Bad(400, "bad chunk"));
                }
                request.body.extend_from_slice(&data[..size]);
            }
        } else if let Some(n) = length {
            request.body = self.take_exact(n)?;
        }
        Ok(request)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first half of a body, on a char boundary if it is text: never valid JSON when the body
/// is a JSON object.
fn half(body: &[u8]) -> &[u8] {
    let mut at = body.len() / 2;
    while at > 0 && at < body.len() && (body[at] & 0xC0) == 0x80 {
        at -= 1;
    }
    &body[..at]
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        529 => "Overloaded",
        _ => "Unknown",
    }
}

fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        .to_string()
        .into_bytes()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    OpenAiChat,
    OpenAiCompletions,
    OllamaChat,
    OllamaGenerate,
    Anthropic,
    LlamaInfill,
}

impl Api {
    fn for_path(path: &str) -> Option<Api> {
        match path.trim_end_matches('/') {
            "/v1/chat/completions" => Some(Api::OpenAiChat),
            "/v1/completions" => Some(Api::OpenAiCompletions),
            "/api/chat" => Some(Api::OllamaChat),
            "/api/generate" => Some(Api::OllamaGenerate),
            "/v1/messages" => Some(Api::Anthropic),
            "/infill" => Some(Api::LlamaInfill),
            _ => None,
        }
    }

    fn stream_content_type(self) -> &'static str {
        match self {
            Api::OllamaChat | Api::OllamaGenerate => "application/x-ndjson",
            Api::OpenAiChat | Api::OpenAiCompletions => "text/event-stream; charset=utf-8",
            Api::Anthropic | Api::LlamaInfill => "text/event-stream; charset=utf-8",
        }
    }

    fn request_id_header(self) -> &'static str {
        match self {
            Api::Anthropic => "request-id",
            _ => "x-request-id",
        }
    }
}

/// Builds one response's bodies and events in its provider's wire format.
struct Format {
    api: Api,
    model: String,
    id: usize,
    created: SystemTime,
    started: Instant,
    include_usage: bool,
    prompt_tokens: u32,
    completion_tokens: u32,
}

impl Format {
    fn id_string(&self) -> String {
        match self.api {
            Api::OpenAiChat => format!("chatcmpl-fake{}", self.id),
            Api::OpenAiCompletions => format!("cmpl-fake{}", self.id),
            Api::Anthropic => format!("msg_fake{}", self.id),
            Api::OllamaChat | Api::OllamaGenerate => format!("ollama-fake{}", self.id),
            Api::LlamaInfill => format!("infill-fake{}", self.id),
        }
    }

    fn created_secs(&self) -> u64 {
        self.created
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn openai_usage(&self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }

    fn ollama_counts(&self, object: &mut Value) {
        let elapsed = self.started.elapsed().as_nanos() as u64;
        let object = object.as_object_mut().expect("an object");
        object.insert("done_reason".into(), json!("stop"));
        object.insert("total_duration".into(), json!(elapsed.max(3)));
        object.insert("load_duration".into(), json!(1));
        object.insert("prompt_eval_count".into(), json!(self.prompt_tokens));
        object.insert("prompt_eval_duration".into(), json!(1));
        object.insert("eval_count".into(), json!(self.completion_tokens));
        object.insert("eval_duration".into(), json!(elapsed.max(1)));
    }

    fn ollama_object(&self, text: &str, done: bool) -> Value {
        let mut object = match self.api {
            Api::OllamaChat => json!({
                "model": self.model,
                "created_at": rfc3339(SystemTime::now()),
                "message": {"role": "assistant", "content": text},
                "done": done,
            }),
            _ => json!({
                "model": self.model,
                "created_at": rfc3339(SystemTime::now()),
                "response": text,
                "done": done,
            }),
        };
        if done {
            self.ollama_counts(&mut object);
        }
        object
    }

    fn anthropic_usage(&self) -> Value {
        json!({"input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens})
    }

    /// A non-streamed answer.
    fn whole(&self, text: &str) -> Value {
        match self.api {
            Api::OpenAiChat => json!({
                "id": self.id_string(),
                "object": "chat.completion",
                "created": self.created_secs(),
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": self.openai_usage(),
            }),
            Api::OpenAiCompletions => json!({
                "id": self.id_string(),
                "object": "text_completion",
                "created": self.created_secs(),
                "model": self.model,
                "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}],
                "usage": self.openai_usage(),
            }),
            Api::OllamaChat | Api::OllamaGenerate => self.ollama_object(text, true),
            Api::LlamaInfill => self.llama_object(text, true),
            Api::Anthropic => json!({
                "id": self.id_string(),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": self.anthropic_usage(),
            }),
        }
    }

    /// The provider's error body for a non-2xx status.
    fn error(&self, status: u16) -> String {
        let message = match status {
            400 => "Invalid request",
            401 => "Invalid API key",
            403 => "Permission denied",
            404 => "Model not found",
            413 => "Request too large",
            429 => "Rate limit reached",
            529 => "Overloaded",
            500..=599 => "The server had an error while processing your request",
            _ => "Request failed",
        };
        let message = format!("{message} (fake model, status {status})");
        match self.api {
            Api::OpenAiChat | Api::OpenAiCompletions => {
                let (kind, code) = match status {
                    401 => ("invalid_request_error", Some("invalid_api_key")),
                    403 => ("permission_error", None),
                    404 => ("invalid_request_error", Some("model_not_found")),
                    429 => ("requests", Some("rate_limit_exceeded")),
                    500..=599 => ("server_error", None),
                    _ => ("invalid_request_error", None),
                };
                String::from_utf8(openai_error(&message, kind, code)).unwrap_or_default()
            }
            Api::OllamaChat | Api::OllamaGenerate => json!({"error": message}).to_string(),
            Api::LlamaInfill => {
                json!({"error": {"code": status, "message": message, "type": "invalid_request_error"}})
                    .to_string()
            }
            Api::Anthropic => {
                let kind = match status {
                    400 => "invalid_request_error",
                    401 => "authentication_error",
                    402 => "billing_error",
                    403 => "permission_error",
                    404 => "not_found_error",
                    413 => "request_too_large",
                    429 => "rate_limit_error",
                    504 => "timeout_error",
                    529 => "overloaded_error",
                    _ => "api_error",
                };
                json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
            }
        }
    }

    /// llama.cpp's own object: a piece of `content`, and on the last one `stop`, why and the
    /// token counts.
    fn llama_object(&self, text: &str, done: bool) -> Value {
        let mut object = json!({
            "index": 0,
            "content": text,
            "tokens": [],
            "id_slot": 0,
            "stop": done,
        });
        if done {
            let fields = object.as_object_mut().expect("an object");
            fields.insert("model".into(), json!(self.model));
            fields.insert("stop_type".into(), json!("eos"));
            fields.insert("stopping_word".into(), json!(""));
            fields.insert("tokens_predicted".into(), json!(self.completion_tokens));
            fields.insert("tokens_evaluated".into(), json!(self.prompt_tokens));
            fields.insert("truncated".into(), json!(false));
            fields.insert(
                "timings".into(),
                json!({"prompt_n": self.prompt_tokens, "predicted_n": self.completion_tokens}),
            );
        }
        object
    }

    fn sse(data: &Value) -> String {
        format!("data: {data}\n\n")
    }

    fn event(name: &str, data: &Value) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }

    fn openai_chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id_string(),
            "object": "chat.completion.chunk",
            "created": self.created_secs(),
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": null,
                "finish_reason": finish_reason,
            }],
        })
    }

    fn completion_chunk(&self, text: &str, finish_reason: Option<&str>) -> Value {
        json!({
            "id": self.id_string(),
            "object": "text_completion",
            "created": self.created_secs(),
            "model": self.model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish_reason}],
        })
    }

    fn usage_chunk(&self, object: &str) -> Value {
        json!({
            "id": self.id_string(),
            "object": object,
            "created": self.created_secs(),
            "model": self.model,
            "choices": [],
            "usage": self.openai_usage(),
        })
    }

    /// Stream events before the first piece.
    fn head(&self) -> Vec<String> {
        match self.api {
            Api::OpenAiChat => vec![Self::sse(
                &self.openai_chunk(json!({"role": "assistant", "content": ""}), None),
            )],
            Api::OpenAiCompletions | Api::OllamaChat | Api::OllamaGenerate | Api::LlamaInfill => {
                Vec::new()
            }
            Api::Anthropic => vec![
                Self::event(
                    "message_start",
                    &json!({
                        "type": "message_start",
                        "message": {
                            "id": self.id_string(),
                            "type": "message",
                            "role": "assistant",
                            "model": self.model,
                            "content": [],
                            "stop_reason": null,
                            "stop_sequence": null,
                            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 1},
                        },
                    }),
                ),
                Self::event(
                    "content_block_start",
                    &json!({
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    }),
                ),
                Self::event("ping", &json!({"type": "ping"})),
            ],
        }
    }

    /// The stream event carrying one piece of the answer.
    fn piece(&self, text: &str) -> String {
        match self.api {
            Api::OpenAiChat => Self::sse(&self.openai_chunk(json!({"content": text}), None)),
            Api::OpenAiCompletions => Self::sse(&self.completion_chunk(text, None)),
            Api::LlamaInfill => Self::sse(&self.llama_object(text, false)),
            Api::OllamaChat | Api::OllamaGenerate => {
                format!("{}\n", self.ollama_object(text, false))
            }
            Api::Anthropic => Self::event(
                "content_block_delta",
                &json!({
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                }),
            ),
        }
    }

    /// An event (or NDJSON line) shaped like a piece but whose JSON is cut short.
    fn malformed(&self) -> String {
        let good = match self.api {
            Api::OllamaChat | Api::OllamaGenerate => self.ollama_object("…", false),
            Api::OpenAiChat => self.openai_chunk(json!({"content": "…"}), None),
            Api::OpenAiCompletions => self.completion_chunk("…", None),
            Api::LlamaInfill => self.llama_object("…", false),
            Api::Anthropic => json!({
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "…"},
            }),
        };
        let good = good.to_string();
        let broken = std::str::from_utf8(half(good.as_bytes())).unwrap_or("{");
        match self.api {
            Api::OllamaChat | Api::OllamaGenerate => format!("{broken}\n"),
            Api::OpenAiChat | Api::OpenAiCompletions | Api::LlamaInfill => {
                format!("data: {broken}\n\n")
            }
            Api::Anthropic => format!("event: content_block_delta\ndata: {broken}\n\n"),
        }
    }

    /// Stream events after the last piece.
    fn tail(&self) -> Vec<String> {
        match self.api {
            Api::OpenAiChat | Api::OpenAiCompletions => {
                let (last, object) = if self.api == Api::OpenAiChat {
                    (
                        self.openai_chunk(json!({}), Some("stop")),
                        "chat.completion.chunk",
                    )
                } else {
                    (self.completion_chunk("", Some("stop")), "text_completion")
                };
                let mut events = vec![Self::sse(&last)];
                if self.include_usage {
                    events.push(Self::sse(&self.usage_chunk(object)));
                }
                events.push("data: [DONE]\n\n".to_owned());
                events
            }
            Api::OllamaChat | Api::OllamaGenerate => {
                vec![format!("{}\n", self.ollama_object("", true))]
            }
            Api::LlamaInfill => vec![Self::sse(&self.llama_object("", true))],
            Api::Anthropic => vec![
                Self::event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                Self::event(
                    "message_delta",
                    &json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                        "usage": {"output_tokens": self.completion_tokens},
                    }),
                ),
                Self::event("message_stop", &json!({"type": "message_stop"})),
            ],
        }
    }
}

/// `2024-05-06T07:08:09.123456789Z`, as Ollama writes `created_at`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), by 400-year eras.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z",
        since.subsec_nanos()
    )
}

/// The text before the cursor of a fill-in-the-middle request in any of its shapes: llama.cpp's
/// `input_prefix`, or `prompt` — raw in a built-in template's tokens, or plain.
pub fn fim_prefix(json: &Value) -> Option<String> {
    if let Some(prefix) = json["input_prefix"].as_str() {
        return Some(prefix.to_owned());
    }
    let prompt = json["prompt"].as_str()?;
    // (before the prefix, after it) per template; Codestral puts the prefix last.
    let templates = [
        ("<|fim_prefix|>", "<|fim_suffix|>"),
        (
            "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
            "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
        ),
        ("<fim_prefix>", "<fim_suffix>"),
        ("<PRE> ", " <SUF>"),
    ];
    for (open, close) in templates {
        if let Some(start) = prompt.find(open) {
            let rest = &prompt[start + open.len()..];
            return Some(rest[..rest.find(close).unwrap_or(rest.len())].to_owned());
        }
    }
    if let Some(start) = prompt.find("[PREFIX]") {
        return Some(prompt[start + "[PREFIX]".len()..].to_owned());
    }
    Some(prompt.to_owned())
}

/// The prompt's size as the fake model counts it: the bytes of every text field, / 4.
fn prompt_tokens(json: &Value) -> usize {
    let mut bytes = 0;
    for field in ["prompt", "suffix", "input_prefix", "input_suffix", "system"] {
        bytes += json[field].as_str().map_or(0, str::len);
    }
    if let Some(messages) = json["messages"].as_array() {
        bytes += messages
            .iter()
            .filter_map(|m| m["content"].as_str())
            .map(str::len)
            .sum::<usize>();
    }
    bytes / 4
}

/// The answer to a prompt of `tokens` over a `window`, in `api`'s words.
fn overflowed(api: Api, overflow: Overflow, tokens: usize, window: usize) -> Reply {
    if overflow == Overflow::EmptyStream {
        return Reply::text("").fault(Fault::Empty);
    }
    let body = match api {
        Api::OpenAiChat | Api::OpenAiCompletions => json!({"error": {
            "message": format!("This model's maximum context length is {window} tokens. However, your messages resulted in {tokens} tokens. Please reduce the length of the messages."),
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded",
        }}),
        Api::LlamaInfill => json!({"error": {
            "code": 400,
            "message": format!("request ({tokens} tokens) exceeds the available context size ({window} tokens), try increasing it"),
            "type": "exceed_context_size_error", "n_prompt_tokens": tokens, "n_ctx": window,
        }}),
        Api::OllamaChat | Api::OllamaGenerate => json!({
            "error": format!("the input length ({tokens} tokens) exceeds the context length ({window} tokens)"),
        }),
        Api::Anthropic => json!({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": format!("prompt is too long: {tokens} tokens > {window} maximum"),
        }}),
    };
    Reply::error(400).body(&body.to_string())
}

/// `reply` with `continue_line` applied to the request's text before the cursor.
fn continued(mut reply: Reply, json: &Value) -> Reply {
    if let (Some(line), Some(prompt)) = (&reply.continue_line, fim_prefix(json)) {
        let last = prompt.rsplit('\n').next().unwrap_or("").trim_start();
        if let Some(rest) = line.strip_prefix(last) {
            reply.text = rest.to_owned();
        }
    }
    reply
}

/// Writes a user config file in `dir` whose one provider, `local`, is Ollama at `url` (a fake's
/// `url()`), model `coder`, followed by `extra` TOML; returns its path (for `STRATA_CONFIG`).
pub fn ollama_config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[providers.local]\nkind = \"ollama\"\nurl = \"{url}\"\nmodel = \"coder\"\n{extra}"
    );
    std::fs::write(&path, text).expect("write the config file");
    path
}
