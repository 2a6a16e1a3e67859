//! An editor in a test: spawns the real `strata` binary, speaks LSP to it over stdio, and fails
//! the test on any message it did not read (a notification nobody expected, a server request
//! nobody answered) or on a panic in the server's log.

#![allow(dead_code)]

pub mod fake_model;

use std::collections::HashMap;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long to wait for a message before calling the server hung. Generous: this guards against
/// hangs, it does not measure anything.
const HANG: Duration = Duration::from_secs(120);

pub struct Lsp {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    next_id: i64,
    unread: VecDeque<Value>,
    statuses: Arc<Mutex<Vec<Value>>>,
    /// How the response to each request (by numeric id) came off the pipe.
    arrivals: Arc<Mutex<HashMap<i64, Arrival>>>,
    /// The default `STRATA_DATA_DIR` (history), removed with the harness.
    _data: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
    /// Reads the server's stderr into `stderr` until the server closes it.
    stderr_thread: Option<std::thread::JoinHandle<()>>,
    /// The read end of the server's stdout (owned by the reader thread).
    #[cfg(unix)]
    stdout_fd: std::os::fd::RawFd,
}

impl Lsp {
    pub fn spawn() -> Lsp {
        Self::spawn_with_env(&[])
    }

    /// Spawns strata with the loopback model at `model_url` as its only provider: the config
    /// (`fake_model::ollama_config`, plus `config_extra`) and the cache both go in `dir`; `env`
    /// adds to the environment.
    pub fn spawn_with_model(
        dir: &std::path::Path,
        model_url: &str,
        config_extra: &str,
        env: &[(&str, &str)],
    ) -> Lsp {
        let config = fake_model::ollama_config(dir, model_url, config_extra);
        let cache = dir.join("cache");
        let mut all = vec![
            ("STRATA_CONFIG", config.to_str().unwrap()),
            ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        Lsp::spawn_with_env(&all)
    }

    pub fn spawn_with_env(env: &[(&str, &str)]) -> Lsp {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata"));
        // Never touch the real user cache from a test.
        command.env(
            "STRATA_CACHE_DIR",
            std::env::temp_dir().join("strata-test-cache-unused"),
        );
        // Nor the user's chat history.
        let data = tempfile::tempdir().expect("a data dir");
        command.env("STRATA_DATA_DIR", data.path());
        // Nor the user's real config.
        command.env(
            "STRATA_CONFIG",
            std::env::temp_dir().join("strata-test-no-such-config.toml"),
        );
        command
            .args(["serve", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("STRATA_LOG", "info");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn strata");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        #[cfg(unix)]
        let stdout_fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
        let stderr_pipe = child.stderr.take().unwrap();
        let (tx, incoming) = channel();
        // `strata/status` is the status line's feed, sent whenever it changes: kept aside for
        // tests that look at it, never counted as unread.
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let status_sink = statuses.clone();
        let arrivals = Arc::new(Mutex::new(HashMap::new()));
        let arrival_sink = arrivals.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            while let Some((message, header, read, bytes)) = read_message(&mut reader) {
                if message.get("method").is_none()
                    && let Some(id) = message["id"].as_i64()
                {
                    let parsed = Instant::now();
                    let arrival = Arrival {
                        header,
                        read,
                        parsed,
                        bytes,
                    };
                    arrival_sink.lock().unwrap().insert(id, arrival);
                }
                if message["method"] == "strata/status" {
                    status_sink.lock().unwrap().push(message["params"].clone());
                    continue;
                }
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut reader = BufReader::new(stderr_pipe);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Lsp {
            child,
            stdin,
            incoming,
            next_id: 1,
            unread: VecDeque::new(),
            statuses,
            arrivals,
            _data: data,
            stderr,
            stderr_thread: Some(stderr_thread),
            #[cfg(unix)]
            stdout_fd,
        }
    }

    /// How many bytes the pipe from the server's stdout holds (Linux).
    #[cfg(target_os = "linux")]
    pub fn stdout_pipe_bytes(&self) -> usize {
        // SAFETY: F_GETPIPE_SZ only reads the size of the pipe behind a descriptor this
        // harness holds open (the reader thread owns it until the server exits).
        let size = unsafe { libc::fcntl(self.stdout_fd, libc::F_GETPIPE_SZ) };
        usize::try_from(size).unwrap_or(0)
    }

    /// `initialize` + `initialized`; returns the server's capabilities.
    pub fn initialize(&mut self, capabilities: Value, options: Value) -> Value {
        let result = self
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": null,
                    "capabilities": capabilities,
                    "initializationOptions": options,
                }),
            )
            .expect("initialize");
        self.notify("initialized", json!({}));
        result["capabilities"].clone()
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_string(message).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Writes bytes as they are, framing included.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for an error response with a null id (the answer to a message that could not be
    /// read); returns its error.
    pub fn error_without_id(&mut self) -> Value {
        let is_it = |m: &Value| m.get("method").is_none() && m["id"].is_null();
        if let Some(i) = self.unread.iter().position(is_it) {
            return self.unread.remove(i).unwrap()["error"].clone();
        }
        loop {
            let message = self.receive();
            if is_it(&message) {
                return message["error"].clone();
            }
            self.unread.push_back(message);
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request without waiting; returns its id.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn request(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// Waits for the response to request `id`; anything else that arrives meanwhile is kept
    /// as unread.
    pub fn response(&mut self, id: i64) -> Result<Value, Value> {
        if let Some(i) = self.unread.iter().position(|m| is_response(m, id)) {
            return into_result(self.unread.remove(i).unwrap());
        }
        loop {
            let message = self.receive();
            if is_response(&message, id) {
                return into_result(message);
            }
            self.unread.push_back(message);
        }
    }

    /// How the run that `workspace/executeCommand` request `id` started (`strata.runAgent`,
    /// `strata.runWorkflow`) ended: the request's error if it started none, else the `result` of
    /// the `strata/runEnded` notification with the token the request answered — waiting for it.
    /// Everything else that arrives meanwhile stays unread.
    pub fn run_result(&mut self, id: i64) -> Result<Value, Value> {
        let started = self.response(id)?;
        let token = started["token"]
            .as_str()
            .unwrap_or_else(|| panic!("a run's token in {started}"))
            .to_owned();
        Ok(self.run_ended(&token))
    }

    /// The `result` of the `strata/runEnded` notification for run `token` (waiting for it).
    pub fn run_ended(&mut self, token: &str) -> Value {
        let is_it = |m: &Value| m["method"] == "strata/runEnded" && m["params"]["token"] == token;
        if let Some(i) = self.unread.iter().position(is_it) {
            return self.unread.remove(i).unwrap()["params"]["result"].clone();
        }
        loop {
            let message = self.receive();
            if is_it(&message) {
                return message["params"]["result"].clone();
            }
            self.unread.push_back(message);
        }
    }

    /// Waits for the next response whose id is `id` (any JSON id); returns the whole message.
    pub fn message_with_id(&mut self, id: &Value) -> Value {
        let is_it = |m: &Value| m.get("method").is_none() && m["id"] == *id;
        if let Some(i) = self.unread.iter().position(is_it) {
            return self.unread.remove(i).unwrap();
        }
        loop {
            let message = self.receive();
            if is_it(&message) {
                return message;
            }
            self.unread.push_back(message);
        }
    }

    /// Takes the next notification with this method (waiting for it if need be).
    pub fn notification(&mut self, method: &str) -> Value {
        if let Some(i) = self
            .unread
            .iter()
            .position(|m| m["method"] == method && m.get("id").is_none())
        {
            return self.unread.remove(i).unwrap()["params"].clone();
        }
        loop {
            let message = self.receive();
            if message["method"] == method && message.get("id").is_none() {
                return message["params"].clone();
            }
            self.unread.push_back(message);
        }
    }

    /// Takes a notification with this method if one is unread or arrives within 300 ms.
    pub fn try_notification(&mut self, method: &str) -> Option<Value> {
        let is_it = |m: &Value| m["method"] == method && m.get("id").is_none();
        if let Some(i) = self.unread.iter().position(is_it) {
            return Some(self.unread.remove(i).unwrap()["params"].clone());
        }
        while let Ok(message) = self.incoming.recv_timeout(Duration::from_millis(300)) {
            if is_it(&message) {
                return Some(message["params"].clone());
            }
            self.unread.push_back(message);
        }
        None
    }

    /// Waits for a request from the server with this method, answers it with `result`, and
    /// returns its params.
    pub fn answer(&mut self, method: &str, result: Value) -> Value {
        let is_request = |m: &Value| m["method"] == method && m.get("id").is_some();
        let message = match self.unread.iter().position(is_request) {
            Some(i) => self.unread.remove(i).unwrap(),
            None => loop {
                let message = self.receive();
                if is_request(&message) {
                    break message;
                }
                self.unread.push_back(message);
            },
        };
        self.send(&json!({"jsonrpc": "2.0", "id": message["id"], "result": result}));
        message["params"].clone()
    }

    /// Polls `check` with fresh `strata/stats` until it returns `Some`; gives up after the hang
    /// limit.
    pub fn poll<T>(&mut self, what: &str, mut check: impl FnMut(&mut Lsp) -> Option<T>) -> T {
        let started = std::time::Instant::now();
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            assert!(
                started.elapsed() < HANG,
                "gave up waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn receive(&mut self) -> Value {
        match self.incoming.recv_timeout(HANG) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no message from strata in {HANG:?}\n{}", self.log())
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "strata closed its output (exit {:?})\n{}",
                    self.child.try_wait(),
                    self.log()
                )
            }
        }
    }

    /// When the response to request `id` arrived (read off the pipe and parsed, before anyone
    /// asked for it), if it has.
    pub fn arrived(&self, id: i64) -> Option<Instant> {
        self.arrival(id).map(|a| a.parsed)
    }

    /// How the response to request `id` came off the pipe, if it has.
    pub fn arrival(&self, id: i64) -> Option<Arrival> {
        self.arrivals.lock().unwrap().get(&id).copied()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every `strata/status` received so far, oldest first.
    pub fn statuses(&self) -> Vec<Value> {
        self.statuses.lock().unwrap().clone()
    }

    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn open(&mut self, uri: &str, language: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}}),
        );
    }

    pub fn debug_text(&mut self, uri: &str) -> Value {
        self.request("strata/debug/text", json!({"textDocument": {"uri": uri}}))
            .expect("strata/debug/text")
    }

    pub fn chunks(&mut self, uri: &str) -> Value {
        self.request("strata/chunks", json!({"textDocument": {"uri": uri}}))
            .expect("strata/chunks")
    }

    /// Waits (polling `strata/stats`) until the document's latest parse is of `version`;
    /// returns that document's stats.
    pub fn wait_parsed(&mut self, uri: &str, version: i64) -> Value {
        loop {
            let stats = self
                .request("strata/stats", Value::Null)
                .expect("strata/stats");
            let doc = stats["documents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["uri"] == uri)
                .cloned();
            if let Some(doc) = doc.filter(|d| d["parsedVersion"] == version) {
                return doc;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `shutdown` and `exit`; the server must exit 0, having left no message unread and
    /// without a panic in its log.
    /// Returns the server's whole log.
    pub fn finish(mut self) -> String {
        self.request("shutdown", Value::Null).expect("shutdown");
        self.exit()
    }

    /// `exit` (after a `shutdown` the test sent); the same checks as [`Lsp::finish`].
    /// Returns the server's whole log.
    pub fn exit(mut self) -> String {
        self.notify("exit", Value::Null);
        let status = self.child.wait().expect("wait for strata");
        // The server is gone and its stderr closed: its log is all read.
        if let Some(reader) = self.stderr_thread.take() {
            let _ = reader.join();
        }
        // Drain what is left on stdout.
        while let Ok(message) = self.incoming.recv_timeout(Duration::from_millis(200)) {
            self.unread.push_back(message);
        }
        assert!(
            self.unread.is_empty(),
            "unread messages from strata: {:#?}",
            self.unread
        );
        let log = self.log();
        assert!(!log.contains("panicked"), "strata panicked:\n{log}");
        assert!(status.success(), "strata exited with {status}\n{log}");
        log
    }
}

fn is_response(message: &Value, id: i64) -> bool {
    message.get("method").is_none() && message["id"] == id
}

/// The response's result or error, taken out of it (an answer of megabytes is not copied).
fn into_result(message: Value) -> Result<Value, Value> {
    let Value::Object(mut message) = message else {
        return Ok(Value::Null);
    };
    match message.remove("error") {
        Some(error) => Err(error),
        None => Ok(message.remove("result").unwrap_or(Value::Null)),
    }
}

/// A response as the reader thread took it off the pipe.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// When its header was read: the server had encoded the whole answer by then (the header
    /// gives its length).
    pub header: Instant,
    /// When its last byte was read.
    pub read: Instant,
    /// When it was parsed (what an editor waits for before it can use it).
    pub parsed: Instant,
    /// The body's length.
    pub bytes: usize,
}

/// The next message, when its header and its last byte were read, and its body's length.
fn read_message(reader: &mut impl BufRead) -> Option<(Value, Instant, Instant, usize)> {
    let mut length = None;
    let mut header = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        header.get_or_insert_with(Instant::now);
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    reader.read_exact(&mut body).ok()?;
    let read = Instant::now();
    let message = serde_json::from_slice(&body).expect("strata wrote invalid JSON");
    Some((message, header?, read, body.len()))
}

/// A small deterministic generator (splitmix64), so failures replay.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// An independent model of LSP positions over a Rust string: lines end at `\n`, `\r\n` or `\r`;
/// characters count in the given encoding.
pub struct Positions {
    pub encoding: &'static str,
}

impl Positions {
    /// Byte offsets where a position may point: every character boundary except between the
    /// `\r` and `\n` of a CRLF.
    pub fn boundaries(&self, text: &str) -> Vec<usize> {
        let bytes = text.as_bytes();
        (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .filter(|&i| !(i > 0 && i < bytes.len() && bytes[i - 1] == b'\r' && bytes[i] == b'\n'))
            .collect()
    }

    pub fn position(&self, text: &str, byte: usize) -> Value {
        let (mut line, mut line_start) = (0, 0);
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < byte {
            match bytes[i] {
                b'\n' => {
                    line += 1;
                    line_start = i + 1;
                }
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                    line += 1;
                    line_start = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        let prefix = &text[line_start..byte];
        let character = match self.encoding {
            "utf-8" => prefix.len(),
            "utf-16" => prefix.encode_utf16().count(),
            _ => prefix.chars().count(),
        };
        json!({"line": line, "character": character})
    }
}

/// Runs the `strata` command in `cwd` with its databases under `cache` (chat history under
/// `cache/data`) and the user config file `config`; its stdout, the command having succeeded.
pub fn strata_cli(
    cwd: &std::path::Path,
    cache: &std::path::Path,
    config: &std::path::Path,
    args: &[&str],
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--cache-dir")
        .arg(cache)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("STRATA_DATA_DIR", cache.join("data"))
        .current_dir(cwd)
        .output()
        .expect("run strata");
    assert!(
        out.status.success(),
        "strata {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 on stdout")
}
