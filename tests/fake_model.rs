//! The fake LLM server (`tests/support/fake_model.rs`) over real HTTP: every provider's wire
//! format streamed and not, parsed the way a client parses it; statuses, headers and error
//! shapes; faults (malformed, cut, hang, endless drip, reset); keep-alive; call recording.
//!
//! Nothing here measures time: timeouts only guard against hangs, and the client timeouts that
//! provoke a hang-up are what the tests are about, not how long anything took.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::fake_model::{FakeModel, Fault, Reply};

/// Guards against hangs; never reached when things work.
const HANG: Duration = Duration::from_secs(120);

fn client() -> reqwest::Client {
    // reqwest is built without a default TLS provider; plain HTTP still wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build the HTTP client")
}

async fn post(fake: &FakeModel, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", fake.url()))
        .json(&body)
        .send()
        .await
        .expect("send")
}

/// SSE as a client reads it: events end at a blank line; each is (event name, data).
fn sse(body: &str) -> Vec<(Option<String>, String)> {
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "SSE stream ends mid-event: {body:?}"
    );
    body.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim_start().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.strip_prefix(' ').unwrap_or(value));
                } else {
                    panic!("not an SSE field line: {line:?}");
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// The `data:` payloads of an OpenAI stream, which must end with `[DONE]`; the JSON before it.
fn openai_chunks(body: &str) -> Vec<Value> {
    let events = sse(body);
    let (last, rest) = events.split_last().expect("events");
    assert_eq!(last, &(None, "[DONE]".to_owned()));
    rest.iter()
        .map(|(event, data)| {
            assert_eq!(event, &None);
            serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
        })
        .collect()
}

/// NDJSON as a client reads it: one JSON object per line.
fn ndjson(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "NDJSON ends mid-line: {body:?}");
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

fn prompt_tokens(fake: &FakeModel, call: usize) -> u64 {
    (fake.calls()[call].body.len() / 4).max(1) as u64
}

// --- OpenAI chat completions ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_non_stream_and_call_recording() {
    let fake = FakeModel::start();
    fake.script(Reply::text("Hello big world").tokens(12, 3));
    let response = client()
        .post(format!("{}/v1/chat/completions", fake.url()))
        .bearer_auth("sk-test")
        .header("X-Custom", "yes")
        .json(&json!({
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "Say hello"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("application/json"));
    assert!(header(&response, "x-request-id").starts_with("chatcmpl-"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-test");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["message"]["content"], "Hello big world");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15})
    );

    assert!(fake.wait_for_idle(HANG));
    assert_eq!(fake.call_count(), 1);
    let call = &fake.calls()[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/v1/chat/completions");
    assert_eq!(call.header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(call.header("x-custom"), Some("yes"));
    assert!(call.headers.iter().all(|(k, _)| *k == k.to_lowercase()));
    assert_eq!(call.header("content-type"), Some("application/json"));
    let sent = call.json.as_ref().expect("a JSON body");
    assert_eq!(sent["messages"][0]["content"], "Say hello");
    assert_eq!(serde_json::from_str::<Value>(&call.body).unwrap(), *sent);
    assert!(call.completed);
    assert!(!call.client_closed);
    assert_eq!(fake.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_chat_stream_with_and_without_usage() {
    let fake = FakeModel::start();
    for (call, include_usage) in [(0, true), (1, false)] {
        fake.script(Reply::text("Hello big world"));
        let mut request = json!({
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
        });
        if include_usage {
            request["stream_options"] = json!({"include_usage": true});
        }
        let response = post(&fake, "/v1/chat/completions", request).await;
        assert_eq!(response.status(), 200);
        assert!(header(&response, "content-type").starts_with("text/event-stream"));
        assert_eq!(header(&response, "transfer-encoding"), "chunked");
        let chunks = openai_chunks(&response.text().await.unwrap());
        for chunk in &chunks {
            assert_eq!(chunk["object"], "chat.completion.chunk");
            assert_eq!(chunk["model"], "gpt-test");
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let deltas: Vec<&str> = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(deltas, ["Hello", " big", " world"]);
        let finish = chunks
            .iter()
            .position(|c| c["choices"][0]["finish_reason"] == "stop")
            .expect("a chunk with finish_reason stop");
        if include_usage {
            assert_eq!(finish, chunks.len() - 2);
            let usage = chunks.last().unwrap();
            assert_eq!(usage["choices"], json!([]));
            let prompt = prompt_tokens(&fake, call);
            assert_eq!(
                usage["usage"],
                json!({"prompt_tokens": prompt, "completion_tokens": 3, "total_tokens": prompt + 3})
            );
        } else {
            assert_eq!(finish, chunks.len() - 1);
            assert!(chunks.iter().all(|c| c.get("usage").is_none()));
        }
    }
    assert!(fake.wait_for_idle(HANG));
    assert!(fake.calls().iter().all(|c| c.completed && !c.client_closed));
}

// --- OpenAI legacy completions (fill-in-the-middle) ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_completions_fim_non_stream_and_stream() {
    let fake = FakeModel::start();
    let request =
        json!({"model": "coder", "prompt": "fn main() {", "suffix": "}\n", "max_tokens": 16});
    fake.script(Reply::text("\n    println!(\"hi\");\n"));
    let body: Value = post(&fake, "/v1/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "\n    println!(\"hi\");\n");
    assert_eq!(body["choices"][0]["index"], 0);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let prompt = prompt_tokens(&fake, 0);
    assert_eq!(body["usage"]["prompt_tokens"], prompt);
    // Two pieces: "\n    println!(\"hi\");" and "\n".
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert_eq!(body["usage"]["total_tokens"], prompt + 2);

    fake.script(Reply::text("let x = 1;").pieces(4));
    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    streaming["stream_options"] = json!({"include_usage": true});
    let chunks = openai_chunks(
        &post(&fake, "/v1/completions", streaming)
            .await
            .text()
            .await
            .unwrap(),
    );
    let texts: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(texts.len(), 4);
    assert_eq!(texts.concat(), "let x = 1;");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 4);

    let calls = fake.calls();
    assert_eq!(calls[1].path, "/v1/completions");
    let sent = calls[1].json.as_ref().unwrap();
    assert_eq!(sent["prompt"], "fn main() {");
    assert_eq!(sent["suffix"], "}\n");
}

// --- Ollama ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_chat_streams_unless_told_not_to() {
    let fake = FakeModel::start();
    // Streams when `stream` is absent or true, with every delay in play.
    for stream in [None, Some(true)] {
        fake.script(
            Reply::text("Why is the sky blue?")
                .latency(10)
                .first_token(10)
                .drip(5),
        );
        let mut request =
            json!({"model": "llama3", "messages": [{"role": "user", "content": "q"}]});
        if let Some(stream) = stream {
            request["stream"] = json!(stream);
        }
        let response = post(&fake, "/api/chat", request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), "application/x-ndjson");
        let lines = ndjson(&response.text().await.unwrap());
        let (last, pieces) = lines.split_last().unwrap();
        assert_eq!(pieces.len(), 5);
        let mut text = String::new();
        for line in pieces {
            assert_eq!(line["model"], "llama3");
            assert!(line["created_at"].as_str().unwrap().ends_with('Z'));
            assert_eq!(line["message"]["role"], "assistant");
            assert_eq!(line["done"], false);
            text.push_str(line["message"]["content"].as_str().unwrap());
        }
        assert_eq!(text, "Why is the sky blue?");
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["message"]["content"], "");
        assert_eq!(last["eval_count"], 5);
        assert!(last["prompt_eval_count"].as_u64().unwrap() > 0);
        assert!(last["total_duration"].as_u64().is_some());
    }

    fake.script(Reply::text("Rayleigh scattering.").tokens(7, 2));
    let response = post(
        &fake,
        "/api/chat",
        json!({"model": "llama3", "messages": [], "stream": false}),
    )
    .await;
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"]["content"], "Rayleigh scattering.");
    assert_eq!(body["message"]["role"], "assistant");
    assert_eq!(body["done"], true);
    assert_eq!(body["done_reason"], "stop");
    assert_eq!(body["prompt_eval_count"], 7);
    assert_eq!(body["eval_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_generate_fim_stream_and_not() {
    let fake = FakeModel::start();
    let request = json!({"model": "codellama", "prompt": "def add(a, b):", "suffix": "\n"});
    fake.script(Reply::text("return a + b").pieces(3));
    let lines = ndjson(
        &post(&fake, "/api/generate", request.clone())
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(lines.len(), 4);
    let text: String = lines[..3]
        .iter()
        .map(|l| {
            assert_eq!(l["done"], false);
            l["response"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "return a + b");
    assert_eq!(lines[3]["done"], true);
    assert_eq!(lines[3]["response"], "");
    assert_eq!(lines[3]["eval_count"], 3);

    fake.script(Reply::text("return a + b"));
    let mut whole = request;
    whole["stream"] = json!(false);
    let body: Value = post(&fake, "/api/generate", whole)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["response"], "return a + b");
    assert_eq!(body["done"], true);
    assert_eq!(body["model"], "codellama");

    let sent = fake.calls()[0].json.clone().unwrap();
    assert_eq!(sent["prompt"], "def add(a, b):");
    assert_eq!(sent["suffix"], "\n");
}

// --- Anthropic Messages ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_stream_and_not() {
    let fake = FakeModel::start();
    let text = "héllo wörld, 😀 ok";
    fake.script(Reply::text(text).pieces(4));
    let response = client()
        .post(format!("{}/v1/messages", fake.url()))
        .header("x-api-key", "ak-test")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({
            "model": "claude-test",
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
        }))
        .send()
        .await
        .unwrap();
    assert!(header(&response, "content-type").starts_with("text/event-stream"));
    assert!(header(&response, "request-id").starts_with("msg_"));
    let events = sse(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|(name, _)| name.as_deref().expect("a named event"))
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data: Vec<Value> = events
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    for ((name, _), data) in events.iter().zip(&data) {
        assert_eq!(data["type"], name.as_deref().unwrap());
    }
    let message = &data[0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-test");
    assert_eq!(message["content"], json!([]));
    assert_eq!(message["usage"]["input_tokens"], prompt_tokens(&fake, 0));
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let streamed: String = data[3..7]
        .iter()
        .map(|d| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(streamed, text);
    assert_eq!(data[7]["index"], 0);
    assert_eq!(data[8]["delta"]["stop_reason"], "end_turn");
    assert_eq!(data[8]["usage"]["output_tokens"], 4);

    fake.script(Reply::text("Hi there").tokens(9, 2));
    let body: Value = post(
        &fake,
        "/v1/messages",
        json!({"model": "claude-test", "max_tokens": 64, "messages": []}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-test");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hi there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 9, "output_tokens": 2})
    );

    let call = &fake.calls()[0];
    assert_eq!(call.header("x-api-key"), Some("ak-test"));
    assert_eq!(call.header("anthropic-version"), Some("2023-06-01"));
}

// --- statuses, headers, routing, scripting ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_each_providers_shape_and_carry_headers() {
    let fake = FakeModel::start();

    // A streaming request still gets a JSON error, as the real APIs do.
    fake.script(
        Reply::error(429)
            .header("retry-after", "2")
            .header("x-ratelimit-reset-requests", "1s"),
    );
    let response = post(
        &fake,
        "/v1/chat/completions",
        json!({"model": "m", "messages": [], "stream": true}),
    )
    .await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "retry-after"), "2");
    assert_eq!(header(&response, "x-ratelimit-reset-requests"), "1s");
    assert!(header(&response, "content-type").starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    assert!(body["error"]["type"].is_string());
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    fake.script(Reply::error(529));
    let response = post(&fake, "/v1/messages", json!({"model": "m", "stream": true})).await;
    assert_eq!(response.status(), 529);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "overloaded_error");
    assert!(body["error"]["message"].is_string());

    fake.script(Reply::error(500));
    let response = post(&fake, "/api/generate", json!({"model": "m", "prompt": "p"})).await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 1);

    // A raw body replaces the generated one, whatever the status.
    fake.script(
        Reply::error(503)
            .body("upstream down")
            .header("content-type", "text/plain"),
    );
    let response = post(&fake, "/v1/completions", json!({"prompt": "p"})).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "content-type"), "text/plain");
    assert_eq!(response.text().await.unwrap(), "upstream down");

    // Extra headers also ride on successful streams.
    fake.script(Reply::text("fine").header("x-ratelimit-remaining-requests", "99"));
    let response = post(
        &fake,
        "/v1/chat/completions",
        json!({"messages": [], "stream": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ratelimit-remaining-requests"), "99");
    openai_chunks(&response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_and_keep_the_script() {
    let fake = FakeModel::start();
    fake.script(Reply::text("scripted"));
    let response = client()
        .get(format!("{}/v1/models", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    let response = post(&fake, "/v2/whatever", json!({})).await;
    assert_eq!(response.status(), 404);

    let body: Value = post(&fake, "/v1/chat/completions", json!({"messages": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "scripted");
    let paths: Vec<String> = fake.calls().into_iter().map(|c| c.path).collect();
    assert_eq!(
        paths,
        ["/v1/models", "/v2/whatever", "/v1/chat/completions"]
    );
    assert_eq!(fake.calls()[0].method, "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_is_first_in_first_out_then_default() {
    let fake = FakeModel::start();
    let answer = async |fake: &FakeModel| -> String {
        let body: Value = post(fake, "/api/chat", json!({"messages": [], "stream": false}))
            .await
            .json()
            .await
            .unwrap();
        body["message"]["content"].as_str().unwrap().to_owned()
    };
    assert_eq!(answer(&fake).await, "ok");
    fake.script(Reply::text("first"));
    fake.script(Reply::text("second"));
    fake.set_default(Reply::text("fallback"));
    assert_eq!(answer(&fake).await, "first");
    assert_eq!(answer(&fake).await, "second");
    assert_eq!(answer(&fake).await, "fallback");
    assert_eq!(answer(&fake).await, "fallback");
    assert_eq!(fake.call_count(), 5);
    assert!(fake.wait_for_calls(5, HANG));
}

#[test]
fn replies_split_into_pieces_and_deserialize() {
    assert_eq!(
        Reply::text("Hello big  world\n").split(),
        ["Hello", " big", "  world", "\n"]
    );
    assert_eq!(Reply::text("  lead").split(), ["  lead"]);
    assert!(Reply::text("").split().is_empty());
    let text = "héllo wörld 😀!";
    let pieces = Reply::text(text).pieces(4).split();
    assert_eq!(pieces.len(), 4);
    assert_eq!(pieces.concat(), text);
    assert!(pieces.iter().all(|p| !p.is_empty()));
    assert_eq!(Reply::text("abc").pieces(100).split(), ["a", "b", "c"]);

    let reply: Reply = serde_json::from_value(json!({
        "text": "hi",
        "status": 429,
        "headers": [["retry-after", "2"]],
        "drip_ms": 5,
        "fault": {"Cut": {"after": 2}},
    }))
    .unwrap();
    assert_eq!(reply.text, "hi");
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers, [("retry-after".to_owned(), "2".to_owned())]);
    assert_eq!(reply.drip_ms, 5);
    assert_eq!(reply.fault, Fault::Cut { after: 2 });
    let reply: Reply = serde_json::from_value(json!({"fault": "Hang"})).unwrap();
    assert_eq!(reply.fault, Fault::Hang);
    let reply: Reply = serde_json::from_value(json!({})).unwrap();
    assert_eq!(
        (reply.status, reply.fault, reply.body),
        (200, Fault::None, None)
    );
}

// --- faults ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_then_the_stream_ends_normally() {
    let fake = FakeModel::start();

    fake.script(Reply::text("a b c").fault(Fault::Malformed { after: 1 }));
    let body = post(
        &fake,
        "/v1/chat/completions",
        json!({"messages": [], "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    let events = sse(&body);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let bad: Vec<usize> = events[..events.len() - 1]
        .iter()
        .enumerate()
        .filter(|(_, (_, data))| serde_json::from_str::<Value>(data).is_err())
        .map(|(i, _)| i)
        .collect();
    // Role chunk, "a", the bad one, " b", " c", finish, [DONE].
    assert_eq!(bad, [2]);
    assert_eq!(events.len(), 7);

    fake.script(Reply::text("x y").fault(Fault::Malformed { after: 0 }));
    let body = post(&fake, "/api/chat", json!({"messages": []}))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(serde_json::from_str::<Value>(lines[0]).is_err());
    for line in &lines[1..] {
        serde_json::from_str::<Value>(line).unwrap();
    }

    fake.script(Reply::text("x y").fault(Fault::Malformed { after: 2 }));
    let body = post(&fake, "/v1/messages", json!({"stream": true}))
        .await
        .text()
        .await
        .unwrap();
    let events = sse(&body);
    let bad: Vec<&str> = events
        .iter()
        .filter(|(_, data)| serde_json::from_str::<Value>(data).is_err())
        .map(|(name, _)| name.as_deref().unwrap())
        .collect();
    assert_eq!(bad, ["content_block_delta"]);
    assert_eq!(events.last().unwrap().0.as_deref(), Some("message_stop"));

    // Whole bodies: the generated JSON cut short, or a raw body.
    fake.script(Reply::text("whole").fault(Fault::Malformed { after: 0 }));
    let response = post(&fake, "/v1/messages", json!({})).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with('{'));
    assert!(serde_json::from_str::<Value>(&body).is_err());
    fake.script(Reply::text("").body("{\"choices\": ["));
    let response = post(&fake, "/v1/chat/completions", json!({})).await;
    assert!(response.json::<Value>().await.is_err());

    assert!(fake.wait_for_idle(HANG));
    assert!(fake.calls().iter().all(|c| c.completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_are_incomplete_bodies() {
    let fake = FakeModel::start();
    fake.script(Reply::text("one two three four").fault(Fault::Cut { after: 2 }));
    let response = post(
        &fake,
        "/v1/chat/completions",
        json!({"messages": [], "stream": true}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.text().await.is_err(),
        "a cut stream must be an error"
    );

    fake.script(Reply::text("one two").fault(Fault::Cut { after: 0 }));
    let response = post(&fake, "/api/chat", json!({"messages": [], "stream": false})).await;
    assert!(
        response.text().await.is_err(),
        "a cut body must be an error"
    );

    assert!(fake.wait_for_idle(HANG));
    for call in fake.calls() {
        assert!(!call.completed);
        assert!(!call.client_closed, "the server hung up, not the client");
    }

    // On the wire: the events before the cut, then EOF without the terminating chunk.
    fake.script(Reply::text("one two three four").fault(Fault::Cut { after: 2 }));
    let mut raw = Raw::connect(&fake);
    raw.send(&request("/v1/messages", &json!({"stream": true}), ""));
    let response = raw.response();
    assert!(!response.complete);
    let names: Vec<String> = response
        .chunks
        .iter()
        .map(|c| sse(c)[0].0.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_until_the_client_times_out() {
    let fake = FakeModel::start();
    let client = client();

    // Streaming: the headers come, then nothing.
    fake.script(Reply::text("never").fault(Fault::Hang));
    let result = async {
        client
            .post(format!("{}/v1/chat/completions", fake.url()))
            .json(&json!({"messages": [], "stream": true}))
            .timeout(Duration::from_millis(500))
            .send()
            .await?
            .text()
            .await
    }
    .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(fake.wait_for_closed(0, HANG), "the hang-up was not seen");

    // Not streaming: headers with a Content-Length, then no body.
    fake.script(Reply::text("never").fault(Fault::Hang));
    let result = async {
        client
            .post(format!("{}/api/chat", fake.url()))
            .json(&json!({"messages": [], "stream": false}))
            .timeout(Duration::from_millis(500))
            .send()
            .await?
            .text()
            .await
    }
    .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(fake.wait_for_closed(1, HANG), "the hang-up was not seen");

    // A long latency is cut short the same way: the server notices before it would answer.
    fake.script(Reply::text("late").latency(600_000));
    let result = client
        .post(format!("{}/v1/messages", fake.url()))
        .json(&json!({}))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    assert!(fake.wait_for_closed(2, HANG), "the hang-up was not seen");

    assert!(fake.wait_for_idle(HANG));
    assert_eq!(fake.in_flight(), 0);
    assert!(fake.calls().iter().all(|c| !c.completed && c.client_closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_drip_until_the_client_goes_away() {
    let fake = FakeModel::start();
    fake.script(Reply::text("tick").drip(1).fault(Fault::EndlessDrip));
    let mut response = post(&fake, "/api/generate", json!({"prompt": "p"})).await;
    let mut received = String::new();
    while received.matches("\"tick\"").count() < 20 {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("an endless stream does not end");
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(fake.in_flight(), 1);
    drop(response);
    assert!(fake.wait_for_closed(0, HANG), "the hang-up was not seen");
    assert!(fake.wait_for_idle(HANG));
    assert!(!fake.calls()[0].completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_reads_the_request_and_answers_nothing() {
    let fake = FakeModel::start();
    fake.script(Reply::text("x").fault(Fault::Reset));
    let result = client()
        .post(format!("{}/v1/chat/completions", fake.url()))
        .json(&json!({"messages": [{"role": "user", "content": "reset me"}]}))
        .send()
        .await;
    assert!(result.is_err(), "{result:?}");
    assert!(fake.wait_for_idle(HANG));
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].json.as_ref().unwrap()["messages"][0]["content"],
        "reset me"
    );
    assert!(!calls[0].completed);
    assert!(!calls[0].client_closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_server_ends_a_hanging_stream() {
    let fake = FakeModel::start();
    fake.script(Reply::text("never").fault(Fault::Hang));
    let response = post(&fake, "/v1/messages", json!({"stream": true})).await;
    assert_eq!(response.status(), 200);
    assert!(fake.wait_for_calls(1, HANG));
    drop(fake);
    let body = tokio::time::timeout(HANG, response.text())
        .await
        .expect("the stream ended when the server was dropped");
    assert!(
        body.is_err(),
        "the stream never finished, so it is incomplete"
    );
}

// --- keep-alive and the raw wire ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reuses_its_connection() {
    let fake = FakeModel::start();
    let client = client();
    // The pool gets a connection back asynchronously once a body is read, so a request right
    // after another may still open a new one; over a few requests some must share.
    for stream in [false, true, false, true] {
        let response = client
            .post(format!("{}/v1/chat/completions", fake.url()))
            .json(&json!({"messages": [], "stream": stream}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut connections: Vec<u64> = fake.calls().iter().map(|c| c.connection).collect();
    connections.dedup();
    assert!(connections.len() < 4, "no connection was reused");
}

#[test]
fn keep_alive_pipelining_chunked_bodies_and_connection_close() {
    let fake = FakeModel::start();
    let mut raw = Raw::connect(&fake);

    // Two sequential requests on one connection: a whole body, then a stream.
    raw.send(&request("/api/chat", &json!({"stream": false}), ""));
    let first = raw.response();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), Some("keep-alive"));
    assert!(first.header("content-length").is_some());
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["message"]["content"], "ok");

    fake.script(Reply::text("a b c"));
    raw.send(&request(
        "/v1/chat/completions",
        &json!({"stream": true}),
        "",
    ));
    let second = raw.response();
    assert!(second.complete);
    assert_eq!(second.header("transfer-encoding"), Some("chunked"));
    // Each event is flushed as its own chunk.
    assert_eq!(second.chunks.len(), 6);
    for chunk in &second.chunks {
        assert_eq!(sse(chunk).len(), 1, "one event per chunk: {chunk:?}");
    }

    // A chunked request body and a pipelined request, sent in one write.
    let mut both = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
                    9\r\n{\"prompt\"\r\n6;ext=1\r\n: \"p\"}\r\n0\r\n\r\n"
        .to_owned();
    both.push_str(&request(
        "/api/generate",
        &json!({"prompt": "q", "stream": false}),
        "",
    ));
    raw.send(&both);
    let third = raw.response();
    let fourth = raw.response();
    assert_eq!(third.status, 200);
    assert_eq!(fourth.status, 200);
    let third: Value = serde_json::from_slice(&third.body).unwrap();
    assert_eq!(third["choices"][0]["text"], "ok");
    let fourth: Value = serde_json::from_slice(&fourth.body).unwrap();
    assert_eq!(fourth["response"], "ok");

    // `Connection: close` is honoured: the answer says so, then the server hangs up.
    raw.send(&request(
        "/v1/messages",
        &json!({}),
        "Connection: close\r\n",
    ));
    let last = raw.response();
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(raw.at_eof());

    assert!(fake.wait_for_idle(HANG));
    let calls = fake.calls();
    assert_eq!(calls.len(), 5);
    assert!(calls.iter().all(|c| c.connection == calls[0].connection));
    assert!(calls.iter().all(|c| c.completed));
    assert_eq!(calls[2].body, "{\"prompt\": \"p\"}");
    assert_eq!(calls[2].json.as_ref().unwrap()["prompt"], "p");
    assert_eq!(calls[3].path, "/api/generate");
}

/// An HTTP/1.1 request with a JSON body, as bytes on the wire.
fn request(path: &str, body: &Value, extra_headers: &str) -> String {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// A hand-rolled HTTP/1.1 client on one connection, to see the bytes themselves.
struct Raw {
    reader: BufReader<TcpStream>,
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// The chunks of a chunked body, each as text.
    chunks: Vec<String>,
    body: Vec<u8>,
    /// The body ended properly (Content-Length reached, or the terminating chunk).
    complete: bool,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Raw {
    fn connect(fake: &FakeModel) -> Raw {
        let stream = TcpStream::connect(fake.addr()).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        Raw {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &str) {
        self.reader.get_mut().write_all(bytes.as_bytes()).unwrap();
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches("\r\n").to_owned()),
        }
    }

    fn response(&mut self) -> RawResponse {
        let status_line = self.line().expect("a status line");
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut response = RawResponse {
            status,
            headers: Vec::new(),
            chunks: Vec::new(),
            body: Vec::new(),
            complete: false,
        };
        loop {
            let line = self.line().expect("a header line");
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            response
                .headers
                .push((name.to_lowercase(), value.trim().to_owned()));
        }
        if response.header("transfer-encoding") == Some("chunked") {
            loop {
                let Some(size) = self.line() else {
                    return response;
                };
                let size = usize::from_str_radix(&size, 16).unwrap();
                if size == 0 {
                    response.complete = self.line().as_deref() == Some("");
                    return response;
                }
                let mut chunk = vec![0; size + 2];
                if self.reader.read_exact(&mut chunk).is_err() {
                    return response;
                }
                assert!(chunk.ends_with(b"\r\n"));
                chunk.truncate(size);
                response.body.extend_from_slice(&chunk);
                response.chunks.push(String::from_utf8(chunk).unwrap());
            }
        }
        let length: usize = response.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; length];
        response.complete = self.reader.read_exact(&mut body).is_ok();
        response.body = body;
        response
    }

    fn at_eof(&mut self) -> bool {
        matches!(self.reader.read(&mut [0u8; 1]), Ok(0))
    }
}
