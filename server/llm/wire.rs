//! The three providers' wire formats: how a prompt becomes an HTTP request body, and how the bytes
//! of an answer — one JSON document, Server-Sent Events or NDJSON — become text, usage and a
//! finish reason. Pure: no I/O, no clock; the HTTP layer feeds bytes in as they arrive.
//!
//! A stream counts as complete only when the provider said so (`[DONE]` or a finish reason,
//! `message_stop`, `"done": true`). Bytes that end before that are a cut stream, never a short
//! answer.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::{ProviderConfig, ProviderKind};
use super::fim::{self, Plan};
use super::prompt::{Message, Parts, Prompt};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub max_tokens: u32,
    pub temperature: f32,
    pub stop: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            max_tokens: 1024,
            temperature: 0.2,
            stop: Vec::new(),
        }
    }
}

/// The marker a chat model is asked to fill when the provider takes only chat prompts.
pub const CURSOR: &str = "<CURSOR>";
const FIM_SYSTEM: &str = "You complete code. Reply with only the text that belongs at <CURSOR>: \
no explanation, no code fences, nothing repeated from before or after the cursor.";

/// The method, path and body to send.
#[derive(Clone, Debug, PartialEq)]
pub struct WireRequest {
    pub url: String,
    pub body: Value,
    pub format: Format,
    /// How the answer's objects are shaped.
    pub dialect: Dialect,
}

/// How the answer arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON document.
    Json,
    /// Server-Sent Events (OpenAI, Anthropic, llama.cpp).
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
}

/// Whose objects an answer is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// `choices` with `delta.content` or `text` (chat and plain completions).
    Openai,
    /// `message.content` or `response`, and `done`.
    Ollama,
    /// Typed events: `content_block_delta`, `message_stop`.
    Anthropic,
    /// llama.cpp's own endpoints (`/infill`): `content`, and `stop` on the last object.
    LlamaCpp,
}

impl From<ProviderKind> for Dialect {
    fn from(kind: ProviderKind) -> Dialect {
        match kind {
            ProviderKind::Openai => Dialect::Openai,
            ProviderKind::Ollama => Dialect::Ollama,
            ProviderKind::Anthropic => Dialect::Anthropic,
        }
    }
}

fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// The server's root for an OpenAI-style base URL (`http://h:8080/v1` → `http://h:8080`), where
/// llama.cpp serves `/infill`.
fn root(base: &str) -> &str {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// The request for `prompt` on `provider`. A fill-in-the-middle prompt takes the provider's
/// [`Plan`]: the `suffix` field, `/infill`, a raw prompt in the model's FIM tokens (with their
/// stops), the prefix alone, or a chat prompt marking the cursor. The FIM tokens of every
/// template are first removed from the user's text (and what is left redacted again, as one
/// text), then the plan's own tokens are put around it.
pub fn request(
    provider: &ProviderConfig,
    prompt: &Prompt,
    params: &Params,
    stream: bool,
) -> WireRequest {
    let model = &provider.model;
    let mut stop = params.stop.clone();
    let (url, mut body, dialect) = match prompt.parts() {
        Parts::Chat { system, messages } => chat(provider, system.as_deref(), messages),
        Parts::Fim { prefix, suffix } => {
            let plan = provider.fim_plan();
            let (prefix, suffix) = cleaned(prefix, suffix, &plan);
            let plain = |prompt: &str, suffix: Option<&str>| {
                let mut body = json!({"model": model, "prompt": prompt});
                if let Some(suffix) = suffix {
                    body["suffix"] = json!(suffix);
                } else if provider.kind == ProviderKind::Ollama {
                    // The model's own chat template must not wrap a raw prompt.
                    body["raw"] = json!(true);
                }
                let path = match provider.kind {
                    ProviderKind::Ollama => "api/generate",
                    _ => "completions",
                };
                (
                    join(&provider.url, path),
                    body,
                    Dialect::from(provider.kind),
                )
            };
            match plan {
                Plan::Chat => chat(
                    provider,
                    Some(FIM_SYSTEM),
                    &[Message::user(format!("{prefix}{CURSOR}{suffix}"))],
                ),
                Plan::Suffix => plain(&prefix, Some(&suffix)),
                Plan::Prefix => plain(&prefix, None),
                Plan::Template(template) => {
                    for s in &template.stop {
                        if !stop.contains(s) {
                            stop.push(s.clone());
                        }
                    }
                    plain(&template.render(&prefix, &suffix), None)
                }
                Plan::Infill => (
                    join(root(&provider.url), "infill"),
                    json!({
                        "input_prefix": prefix,
                        "input_suffix": suffix,
                        "input_extra": [],
                        "prompt": "",
                    }),
                    Dialect::LlamaCpp,
                ),
            }
        }
    };
    body["stream"] = json!(stream);
    match dialect {
        Dialect::Openai | Dialect::Anthropic => {
            body["max_tokens"] = json!(params.max_tokens);
            body["temperature"] = json!(params.temperature);
            if stream && dialect == Dialect::Openai {
                body["stream_options"] = json!({"include_usage": true});
            }
            if !stop.is_empty() {
                let field = if dialect == Dialect::Openai {
                    "stop"
                } else {
                    "stop_sequences"
                };
                body[field] = json!(stop);
            }
        }
        Dialect::Ollama => {
            let mut options =
                json!({"num_predict": params.max_tokens, "temperature": params.temperature});
            if !stop.is_empty() {
                options["stop"] = json!(stop);
            }
            // Ollama runs a model with the window it is told (its default is small).
            if let Some(window) = provider.context_window {
                options["num_ctx"] = json!(window);
            }
            body["options"] = options;
        }
        Dialect::LlamaCpp => {
            body["n_predict"] = json!(params.max_tokens);
            body["temperature"] = json!(params.temperature);
            if !stop.is_empty() {
                body["stop"] = json!(stop);
            }
        }
    }
    let format = match (stream, dialect) {
        (false, _) => Format::Json,
        (true, Dialect::Ollama) => Format::Ndjson,
        (true, _) => Format::Sse,
    };
    WireRequest {
        url,
        body,
        format,
        dialect,
    }
}

/// A chat request in the provider's own shape. OpenAI and Ollama take the system prompt as the
/// first message; Anthropic as a field.
fn chat(
    provider: &ProviderConfig,
    system: Option<&str>,
    messages: &[Message],
) -> (String, Value, Dialect) {
    let model = &provider.model;
    let turns = |system: Option<&str>| -> Vec<Value> {
        system
            .iter()
            .map(|s| json!({"role": "system", "content": s}))
            .chain(
                messages
                    .iter()
                    .map(|m| json!({"role": m.role, "content": m.content})),
            )
            .collect()
    };
    let (path, body) = match provider.kind {
        ProviderKind::Openai => (
            "chat/completions",
            json!({"model": model, "messages": turns(system)}),
        ),
        ProviderKind::Ollama => (
            "api/chat",
            json!({"model": model, "messages": turns(system)}),
        ),
        ProviderKind::Anthropic => {
            let mut body = json!({"model": model, "messages": turns(None)});
            if let Some(system) = system {
                body["system"] = json!(system);
            }
            ("v1/messages", body)
        }
    };
    (
        join(&provider.url, path),
        body,
        Dialect::from(provider.kind),
    )
}

/// The two parts without any text `plan` reserves; when something was removed, what is left is
/// redacted again as one text, so removing a token cannot join a secret back together.
fn cleaned(prefix: &str, suffix: &str, plan: &Plan) -> (String, String) {
    match fim::neutralise(prefix, suffix, &plan.reserved(CURSOR)) {
        None => (prefix.to_owned(), suffix.to_owned()),
        Some((prefix, suffix)) => match Prompt::fim(&prefix, &suffix).parts() {
            Parts::Fim { prefix, suffix } => (prefix.clone(), suffix.clone()),
            Parts::Chat { .. } => (String::new(), String::new()),
        },
    }
}

/// Headers every request to `provider` carries, with the key (read by the caller from the
/// environment) in the provider's own header.
pub fn headers(provider: &ProviderConfig, key: Option<&str>) -> Vec<(String, String)> {
    let mut out = vec![("content-type".to_owned(), "application/json".to_owned())];
    match provider.kind {
        ProviderKind::Anthropic => {
            out.push(("anthropic-version".to_owned(), "2023-06-01".to_owned()));
            if let Some(key) = key {
                out.push(("x-api-key".to_owned(), key.to_owned()));
            }
        }
        ProviderKind::Openai | ProviderKind::Ollama => {
            if let Some(key) = key {
                out.push(("authorization".to_owned(), format!("Bearer {key}")));
            }
        }
    }
    for (k, v) in &provider.headers {
        out.push((k.to_ascii_lowercase(), v.clone()));
    }
    out
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// It finished its answer (or hit a stop sequence).
    Stop,
    /// It ran out of `max_tokens`: complete as a response, but the text may be cut short.
    Length,
    Other(String),
}

/// One thing decoded from an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// Token counts as the provider reported them; either may be missing.
    Usage {
        input: Option<u32>,
        output: Option<u32>,
    },
    Finish(Finish),
}

/// A response that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Not the JSON the format promises.
    Malformed(String),
    /// The provider reported an error inside a 200 response (mid-stream).
    Provider(String),
    /// The bytes ended before the provider said the answer was complete.
    Cut,
    /// A successful status and then nothing at all: what some servers send when the prompt does
    /// not fit their context window.
    Empty,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Malformed(what) => write!(f, "the model's answer is not valid: {what}"),
            WireError::Provider(message) => write!(f, "the model reported an error: {message}"),
            WireError::Cut => write!(f, "the answer stopped before the model finished it"),
            WireError::Empty => write!(f, "the server answered with an empty body"),
        }
    }
}

/// Turns the bytes of one response into [`Piece`]s as they arrive.
#[derive(Debug)]
pub struct Decoder {
    dialect: Dialect,
    format: Format,
    buffer: Vec<u8>,
    /// SSE: the current event's name and data lines.
    event: String,
    data: String,
    finished: bool,
    /// OpenAI streams: a finish reason was seen; `[DONE]` (or the end of the body) completes.
    finish_seen: bool,
    /// Something (an event, a line, a body) arrived.
    seen: bool,
}

/// A response body larger than this is refused rather than buffered.
const MAX_BUFFER: usize = 16 << 20;

impl Decoder {
    pub fn new(dialect: Dialect, format: Format) -> Decoder {
        Decoder {
            dialect,
            format,
            buffer: Vec::new(),
            event: String::new(),
            data: String::new(),
            finished: false,
            finish_seen: false,
            seen: false,
        }
    }

    /// Whether the provider has said the answer is complete.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Decodes what `bytes` completes.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Piece>) -> Result<(), WireError> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() > MAX_BUFFER {
            return Err(WireError::Malformed("a response larger than 16 MB".into()));
        }
        if self.format == Format::Json {
            return Ok(());
        }
        while let Some(newline) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=newline).collect();
            let mut line = &line[..line.len() - 1];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = std::str::from_utf8(line)
                .map_err(|_| WireError::Malformed("a line that is not UTF-8".into()))?;
            match self.format {
                Format::Ndjson => self.ndjson_line(line, out)?,
                Format::Sse => self.sse_line(line, out)?,
                Format::Json => {}
            }
        }
        Ok(())
    }

    /// The body ended: decodes what is left and fails unless the answer was complete.
    pub fn end(&mut self, out: &mut Vec<Piece>) -> Result<(), WireError> {
        match self.format {
            Format::Json => {
                let body = std::mem::take(&mut self.buffer);
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Err(WireError::Empty);
                }
                self.seen = true;
                let value: Value = serde_json::from_slice(&body)
                    .map_err(|e| WireError::Malformed(format!("{e}")))?;
                self.whole(&value, out)?;
            }
            Format::Ndjson => {
                let rest = std::mem::take(&mut self.buffer);
                let rest = String::from_utf8_lossy(&rest);
                if !rest.trim().is_empty() {
                    self.ndjson_line(rest.trim(), out)?;
                }
            }
            Format::Sse => {
                if !self.buffer.is_empty() {
                    self.feed(b"\n", out)?;
                }
                self.sse_line("", out)?;
                // Some OpenAI-compatible servers end the body after the finish reason without
                // `[DONE]`; the finish reason already said the answer is whole.
                if self.finish_seen {
                    self.finished = true;
                }
            }
        }
        if self.finished {
            Ok(())
        } else if self.seen {
            Err(WireError::Cut)
        } else {
            Err(WireError::Empty)
        }
    }

    fn sse_line(&mut self, line: &str, out: &mut Vec<Piece>) -> Result<(), WireError> {
        if line.is_empty() {
            if self.data.is_empty() {
                self.event.clear();
                return Ok(());
            }
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            return self.sse_event(&event, &data, out);
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
        Ok(())
    }

    fn sse_event(
        &mut self,
        event: &str,
        data: &str,
        out: &mut Vec<Piece>,
    ) -> Result<(), WireError> {
        self.seen = true;
        if self.finished {
            return Ok(());
        }
        if data.trim() == "[DONE]" {
            self.finished = true;
            return Ok(());
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|e| WireError::Malformed(format!("an event that is not JSON ({e})")))?;
        if let Some(message) = error_message(&value) {
            return Err(WireError::Provider(message));
        }
        match self.dialect {
            Dialect::LlamaCpp => self.llama(&value, out),
            Dialect::Anthropic => {
                let kind = value["type"].as_str().unwrap_or(event);
                match kind {
                    "message_start" => {
                        let usage = &value["message"]["usage"];
                        out.push(Piece::Usage {
                            input: as_u32(&usage["input_tokens"]),
                            output: as_u32(&usage["output_tokens"]),
                        });
                    }
                    "content_block_delta" => {
                        if let Some(text) = value["delta"]["text"].as_str() {
                            push_text(out, text);
                        }
                    }
                    "message_delta" => {
                        if let Some(output) = as_u32(&value["usage"]["output_tokens"]) {
                            out.push(Piece::Usage {
                                input: as_u32(&value["usage"]["input_tokens"]),
                                output: Some(output),
                            });
                        }
                        if let Some(reason) = value["delta"]["stop_reason"].as_str() {
                            out.push(Piece::Finish(anthropic_finish(reason)));
                        }
                    }
                    "message_stop" => self.finished = true,
                    _ => {}
                }
            }
            Dialect::Openai | Dialect::Ollama => {
                if let Some(choice) = value["choices"].get(0) {
                    let text = choice["delta"]["content"]
                        .as_str()
                        .or_else(|| choice["text"].as_str());
                    if let Some(text) = text {
                        push_text(out, text);
                    }
                    if let Some(reason) = choice["finish_reason"].as_str() {
                        self.finish_seen = true;
                        out.push(Piece::Finish(openai_finish(reason)));
                    }
                } else if value.get("choices").is_none() && value.get("usage").is_none() {
                    return Err(WireError::Malformed("an event without choices".into()));
                }
                if value["usage"].is_object() {
                    out.push(openai_usage(&value["usage"]));
                }
            }
        }
        Ok(())
    }

    fn ndjson_line(&mut self, line: &str, out: &mut Vec<Piece>) -> Result<(), WireError> {
        if line.trim().is_empty() || self.finished {
            return Ok(());
        }
        self.seen = true;
        let value: Value = serde_json::from_str(line)
            .map_err(|e| WireError::Malformed(format!("a line that is not JSON ({e})")))?;
        if let Some(message) = error_message(&value) {
            return Err(WireError::Provider(message));
        }
        self.ollama(&value, out)
    }

    fn ollama(&mut self, value: &Value, out: &mut Vec<Piece>) -> Result<(), WireError> {
        let text = value["message"]["content"]
            .as_str()
            .or_else(|| value["response"].as_str());
        match (text, value["done"].as_bool()) {
            (_, None) => return Err(WireError::Malformed("an object without `done`".into())),
            (Some(text), _) => push_text(out, text),
            (None, Some(false)) => {
                return Err(WireError::Malformed("an object without text".into()));
            }
            (None, Some(true)) => {}
        }
        if value["done"].as_bool() == Some(true) {
            out.push(Piece::Usage {
                input: as_u32(&value["prompt_eval_count"]),
                output: as_u32(&value["eval_count"]),
            });
            let reason = value["done_reason"].as_str().unwrap_or("stop");
            out.push(Piece::Finish(match reason {
                "stop" => Finish::Stop,
                "length" => Finish::Length,
                other => Finish::Other(other.to_owned()),
            }));
            self.finished = true;
        }
        Ok(())
    }

    /// One object of llama.cpp's own format: `content`, and on the last `stop: true` with
    /// `stop_type` and the token counts.
    fn llama(&mut self, value: &Value, out: &mut Vec<Piece>) {
        if let Some(text) = value["content"].as_str() {
            push_text(out, text);
        }
        if value["stop"].as_bool() == Some(true) {
            out.push(Piece::Usage {
                input: as_u32(&value["tokens_evaluated"]),
                output: as_u32(&value["tokens_predicted"]),
            });
            // `eos` and `word` (a stop sequence) end an answer; `limit` is `n_predict` spent.
            out.push(Piece::Finish(match value["stop_type"].as_str() {
                Some("limit") => Finish::Length,
                _ => Finish::Stop,
            }));
            self.finished = true;
        }
    }

    /// A whole (non-streamed) response.
    fn whole(&mut self, value: &Value, out: &mut Vec<Piece>) -> Result<(), WireError> {
        if let Some(message) = error_message(value) {
            return Err(WireError::Provider(message));
        }
        match self.dialect {
            Dialect::LlamaCpp => {
                self.llama(value, out);
                if !self.finished {
                    return Err(WireError::Cut);
                }
            }
            Dialect::Ollama => {
                self.ollama(value, out)?;
                if !self.finished {
                    return Err(WireError::Cut);
                }
            }
            Dialect::Openai => {
                let choice = value["choices"]
                    .get(0)
                    .ok_or_else(|| WireError::Malformed("a response without choices".into()))?;
                let text = choice["message"]["content"]
                    .as_str()
                    .or_else(|| choice["text"].as_str())
                    .ok_or_else(|| WireError::Malformed("a choice without text".into()))?;
                push_text(out, text);
                if value["usage"].is_object() {
                    out.push(openai_usage(&value["usage"]));
                }
                let reason = choice["finish_reason"].as_str().unwrap_or("stop");
                out.push(Piece::Finish(openai_finish(reason)));
                self.finished = true;
            }
            Dialect::Anthropic => {
                let blocks = value["content"]
                    .as_array()
                    .ok_or_else(|| WireError::Malformed("a message without content".into()))?;
                let text: String = blocks
                    .iter()
                    .filter(|b| b["type"] == "text")
                    .filter_map(|b| b["text"].as_str())
                    .collect();
                push_text(out, &text);
                out.push(Piece::Usage {
                    input: as_u32(&value["usage"]["input_tokens"]),
                    output: as_u32(&value["usage"]["output_tokens"]),
                });
                let reason = value["stop_reason"].as_str().unwrap_or("end_turn");
                out.push(Piece::Finish(anthropic_finish(reason)));
                self.finished = true;
            }
        }
        Ok(())
    }
}

fn push_text(out: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        out.push(Piece::Text(text.to_owned()));
    }
}

fn as_u32(value: &Value) -> Option<u32> {
    value.as_u64().map(|v| v.min(u32::MAX as u64) as u32)
}

fn openai_usage(usage: &Value) -> Piece {
    Piece::Usage {
        input: as_u32(&usage["prompt_tokens"]),
        output: as_u32(&usage["completion_tokens"]),
    }
}

fn openai_finish(reason: &str) -> Finish {
    match reason {
        "stop" | "eos" => Finish::Stop,
        "length" => Finish::Length,
        other => Finish::Other(other.to_owned()),
    }
}

fn anthropic_finish(reason: &str) -> Finish {
    match reason {
        "end_turn" | "stop_sequence" => Finish::Stop,
        "max_tokens" => Finish::Length,
        other => Finish::Other(other.to_owned()),
    }
}

/// The message of an error object in any of the three shapes: `{"error": "..."}` (Ollama),
/// `{"error": {"message": ...}}` (OpenAI), `{"type": "error", "error": {...}}` (Anthropic).
pub fn error_message(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    if error.is_null() {
        return None;
    }
    Some(match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let message = o.get("message").and_then(Value::as_str).unwrap_or("");
            let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
            match (kind.is_empty(), message.is_empty()) {
                (false, false) => format!("{kind}: {message}"),
                (true, false) => message.to_owned(),
                (false, true) => kind.to_owned(),
                (true, true) => error.to_string(),
            }
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::config::FimMode;

    fn provider(kind: ProviderKind) -> ProviderConfig {
        let mut p = ProviderConfig::ollama("http://h:1/v1/", "m");
        p.kind = kind;
        p
    }

    fn decode(
        kind: impl Into<Dialect>,
        format: Format,
        body: &str,
        split: usize,
    ) -> (String, Vec<Piece>, Result<(), WireError>) {
        let mut d = Decoder::new(kind.into(), format);
        let mut pieces = Vec::new();
        for chunk in body.as_bytes().chunks(split.max(1)) {
            if let Err(e) = d.feed(chunk, &mut pieces) {
                return (String::new(), pieces, Err(e));
            }
        }
        let end = d.end(&mut pieces);
        let text = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        (text, pieces, end)
    }

    #[test]
    fn requests_follow_each_provider() {
        let chat = Prompt::chat(Some("sys"), "hi");
        let fim = Prompt::fim("a", "b");
        let params = Params::default();
        let r = request(&provider(ProviderKind::Openai), &chat, &params, true);
        assert_eq!(r.url, "http://h:1/v1/chat/completions");
        assert_eq!(r.body["messages"][0]["role"], "system");
        assert_eq!(r.body["stream_options"]["include_usage"], true);
        let r = request(&provider(ProviderKind::Openai), &fim, &params, false);
        assert_eq!(r.url, "http://h:1/v1/completions");
        assert_eq!(
            (r.body["prompt"].as_str(), r.body["suffix"].as_str()),
            (Some("a"), Some("b"))
        );
        assert_eq!(r.format, Format::Json);
        let mut ollama = provider(ProviderKind::Ollama);
        ollama.url = "http://h:1".into();
        let r = request(&ollama, &fim, &params, true);
        assert_eq!(r.url, "http://h:1/api/generate");
        assert_eq!(r.format, Format::Ndjson);
        assert_eq!(r.body["options"]["num_predict"], 1024);
        let mut anthropic = provider(ProviderKind::Anthropic);
        anthropic.url = "https://api.anthropic.com".into();
        let r = request(&anthropic, &chat, &params, true);
        assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(r.body["system"], "sys");
        assert_eq!(r.body["messages"][0]["role"], "user");
        // No FIM endpoint: a chat prompt with the cursor marked.
        let r = request(&anthropic, &fim, &params, true);
        assert_eq!(r.body["messages"][0]["content"], "a<CURSOR>b");
        let h = headers(&anthropic, Some("sekrit"));
        assert!(h.contains(&("x-api-key".into(), "sekrit".into())));
        let h = headers(&provider(ProviderKind::Openai), Some("sekrit"));
        assert!(h.contains(&("authorization".into(), "Bearer sekrit".into())));
    }

    #[test]
    fn each_fim_plan_sends_its_exact_body() {
        let fim = Prompt::fim("fn a() {\n    <|fim_middle|>let x", " = 1;\n}\n");
        let params = Params {
            max_tokens: 64,
            temperature: 0.1,
            stop: vec!["\n".into()],
        };
        let openai = |model: &str, mode: FimMode| {
            let mut p = provider(ProviderKind::Openai);
            p.url = "http://h:8080/v1".into();
            p.model = model.into();
            p.fim = mode;
            p
        };
        // A Qwen model behind an OpenAI-compatible server: its own FIM tokens, raw.
        let r = request(
            &openai("qwen2.5-coder-7b", FimMode::Auto),
            &fim,
            &params,
            false,
        );
        assert_eq!(r.url, "http://h:8080/v1/completions");
        assert_eq!(
            r.body,
            json!({
                "model": "qwen2.5-coder-7b",
                "prompt": "<|fim_prefix|>fn a() {\n    let x<|fim_suffix|> = 1;\n}\n<|fim_middle|>",
                "stream": false,
                "max_tokens": 64,
                "temperature": 0.1f32,
                "stop": ["\n", "<|endoftext|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
                         "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"],
            })
        );
        // llama.cpp's /infill, at the server's root.
        let r = request(&openai("any", FimMode::Infill), &fim, &params, true);
        assert_eq!(
            (r.url.as_str(), r.dialect, r.format),
            ("http://h:8080/infill", Dialect::LlamaCpp, Format::Sse)
        );
        assert_eq!(
            r.body,
            json!({
                "input_prefix": "fn a() {\n    let x",
                "input_suffix": " = 1;\n}\n",
                "input_extra": [],
                "prompt": "",
                "stream": true,
                "n_predict": 64,
                "temperature": 0.1f32,
                "stop": ["\n"],
            })
        );
        // The prefix alone; the suffix field.
        let r = request(&openai("any", FimMode::Prefix), &fim, &params, false);
        assert_eq!(r.body["prompt"], "fn a() {\n    let x");
        assert!(r.body.get("suffix").is_none());
        let r = request(&openai("any", FimMode::Suffix), &fim, &params, false);
        assert_eq!(
            (r.body["prompt"].as_str(), r.body["suffix"].as_str()),
            (Some("fn a() {\n    let x"), Some(" = 1;\n}\n"))
        );
        // Ollama with a template: raw, so its own chat template does not wrap it; the window
        // goes to Ollama as num_ctx.
        let mut ollama = provider(ProviderKind::Ollama);
        ollama.url = "http://h:11434".into();
        ollama.fim_template = Some("codellama".into());
        ollama.context_window = Some(4096);
        let r = request(&ollama, &fim, &params, true);
        assert_eq!(r.url, "http://h:11434/api/generate");
        assert_eq!(
            r.body,
            json!({
                "model": "m",
                "prompt": "<PRE> fn a() {\n    let x <SUF> = 1;\n}\n <MID>",
                "raw": true,
                "stream": true,
                "options": {
                    "num_predict": 64,
                    "temperature": 0.1f32,
                    "stop": ["\n", "<EOT>", "</s>", "<PRE>", "<SUF>", "<MID>"],
                    "num_ctx": 4096,
                },
            })
        );
        // A chat-only model: the cursor marked, and a marker in the text removed.
        let marked = Prompt::fim("a <CURSOR> b", " c");
        let r = request(&openai("any", FimMode::Chat), &marked, &params, false);
        assert_eq!(r.url, "http://h:8080/v1/chat/completions");
        assert_eq!(r.body["messages"][1]["content"], "a  b<CURSOR> c");
    }

    #[test]
    fn removing_a_fim_token_cannot_uncover_a_secret() {
        // The redactor saw `AKIA<|fim_middle|>…`, which is no key; with the token removed it is.
        let fim = Prompt::fim("key = \"AKIA<|fim_middle|>IOSFODNN7EXAMPLF\"", "");
        let mut p = provider(ProviderKind::Openai);
        p.model = "qwen2.5-coder".into();
        let r = request(&p, &fim, &Params::default(), false);
        let prompt = r.body["prompt"].as_str().unwrap();
        assert!(!prompt.contains("IOSFODNN7EXAMPLF"), "{prompt}");
        assert!(prompt.contains("[redacted:aws-access-key-id]"), "{prompt}");
    }

    #[test]
    fn llama_cpp_answers_streamed_and_whole() {
        let body = "data: {\"content\":\"let \",\"stop\":false}\n\n\
                    data: {\"content\":\"x\",\"stop\":false}\n\n\
                    data: {\"content\":\"\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_evaluated\":30,\"tokens_predicted\":2}\n\n";
        for split in [1, 5, 1000] {
            let (text, pieces, end) = decode(Dialect::LlamaCpp, Format::Sse, body, split);
            assert_eq!((text.as_str(), end), ("let x", Ok(())));
            assert!(pieces.contains(&Piece::Finish(Finish::Length)));
            assert!(pieces.contains(&Piece::Usage {
                input: Some(30),
                output: Some(2)
            }));
        }
        let (text, _, end) = decode(
            Dialect::LlamaCpp,
            Format::Json,
            "{\"content\":\"y\",\"stop\":true,\"stop_type\":\"eos\"}",
            3,
        );
        assert_eq!((text.as_str(), end), ("y", Ok(())));
        let cut = "data: {\"content\":\"a\",\"stop\":false}\n\n";
        assert_eq!(
            decode(Dialect::LlamaCpp, Format::Sse, cut, 4).2,
            Err(WireError::Cut)
        );
    }

    #[test]
    fn an_empty_answer_is_told_from_a_cut_one() {
        for (dialect, format) in [
            (Dialect::Openai, Format::Sse),
            (Dialect::Ollama, Format::Ndjson),
            (Dialect::LlamaCpp, Format::Sse),
            (Dialect::Openai, Format::Json),
        ] {
            assert_eq!(decode(dialect, format, "", 1).2, Err(WireError::Empty));
            assert_eq!(decode(dialect, format, "\n\n", 1).2, Err(WireError::Empty));
            if format == Format::Sse {
                // A keep-alive comment is no answer either.
                assert_eq!(
                    decode(dialect, format, ": ping\n\n", 1).2,
                    Err(WireError::Empty)
                );
            }
        }
    }

    #[test]
    fn openai_stream_in_any_split() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n\
                    data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\r\n\r\n\
                    : keep-alive\n\n\
                    data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo 👋\"},\"finish_reason\":null}]}\n\n\
                    data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
                    data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n\
                    data: [DONE]\n\n";
        for split in [1, 2, 3, 7, 64, 10_000] {
            let (text, pieces, end) = decode(ProviderKind::Openai, Format::Sse, body, split);
            assert_eq!(end, Ok(()));
            assert_eq!(text, "Hello 👋", "split {split}");
            assert!(pieces.contains(&Piece::Usage {
                input: Some(7),
                output: Some(2)
            }));
            assert!(pieces.contains(&Piece::Finish(Finish::Stop)));
        }
    }

    #[test]
    fn a_cut_stream_is_an_error_not_a_short_answer() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n";
        let (_, _, end) = decode(ProviderKind::Openai, Format::Sse, body, 5);
        assert_eq!(end, Err(WireError::Cut));
        let body = "{\"message\":{\"content\":\"a\"},\"done\":false}\n";
        assert_eq!(
            decode(ProviderKind::Ollama, Format::Ndjson, body, 4).2,
            Err(WireError::Cut)
        );
        let body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n\
                    event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n";
        assert_eq!(
            decode(ProviderKind::Anthropic, Format::Sse, body, 9).2,
            Err(WireError::Cut)
        );
        assert!(matches!(
            decode(
                ProviderKind::Openai,
                Format::Json,
                "{\"choices\":[{\"message\":{\"con",
                3
            )
            .2,
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn malformed_and_error_events() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n";
        assert!(matches!(
            decode(ProviderKind::Openai, Format::Sse, body, 3).2,
            Err(WireError::Malformed(_))
        ));
        let body = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(
            decode(ProviderKind::Anthropic, Format::Sse, body, 100).2,
            Err(WireError::Provider("overloaded_error: Overloaded".into()))
        );
        let body = "{\"error\":\"model 'x' not found\"}\n";
        assert_eq!(
            decode(ProviderKind::Ollama, Format::Ndjson, body, 100).2,
            Err(WireError::Provider("model 'x' not found".into()))
        );
    }

    #[test]
    fn ollama_and_anthropic_streams() {
        let body = "{\"model\":\"m\",\"response\":\"fn \",\"done\":false}\n{\"model\":\"m\",\"response\":\"main\",\"done\":false}\n\
                    {\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":12,\"eval_count\":2}\n";
        let (text, pieces, end) = decode(ProviderKind::Ollama, Format::Ndjson, body, 5);
        assert_eq!((text.as_str(), end), ("fn main", Ok(())));
        assert!(pieces.contains(&Piece::Finish(Finish::Length)));
        assert!(pieces.contains(&Piece::Usage {
            input: Some(12),
            output: Some(2)
        }));

        let body = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
                    event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
                    event: ping\ndata: {\"type\": \"ping\"}\n\n\
                    event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
                    event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
                    event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n\
                    event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (text, pieces, end) = decode(ProviderKind::Anthropic, Format::Sse, body, 11);
        assert_eq!((text.as_str(), end), ("Hi", Ok(())));
        assert!(pieces.contains(&Piece::Usage {
            input: None,
            output: Some(5)
        }));
    }

    #[test]
    fn whole_responses() {
        let (text, _, end) = decode(
            ProviderKind::Openai,
            Format::Json,
            "{\"choices\":[{\"message\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}",
            4,
        );
        assert_eq!((text.as_str(), end), ("ok", Ok(())));
        let (text, _, end) = decode(
            ProviderKind::Anthropic,
            Format::Json,
            "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
            4,
        );
        assert_eq!((text.as_str(), end), ("ab", Ok(())));
        let (_, _, end) = decode(ProviderKind::Openai, Format::Json, "{\"choices\":[]}", 4);
        assert!(matches!(end, Err(WireError::Malformed(_))));
    }
}
