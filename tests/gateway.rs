//! The gateway against the loopback fake model server, over real HTTP: every provider's wire
//! format streamed and whole, the two cache levels, coalescing, limits and priorities, budgets,
//! retries, timeouts, the circuit breaker, routes and fallback, cancellation, the audit and the
//! stats. Time is a `ManualClock`: the tests move it; nothing here sleeps to make time pass, and
//! no test asserts how long anything took.

mod support;

use std::sync::Arc;
use std::time::Duration;

use strata::llm::config::{ConfigBuilder, Trust};
use strata::llm::retry::Circuit;
use strata::llm::{
    CallRequest, Event, Gateway, GatewayError, ManualClock, Priority, Prompt, Source, Store,
};
use support::fake_model::{FakeModel, Fault, Overflow, Reply};

const HANG: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds (a hang guard, not a measurement).
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + HANG;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn gateway(toml: &str) -> (Gateway, Arc<ManualClock>) {
    let mut builder = ConfigBuilder::new();
    builder.text(toml, "test.toml", Trust::User);
    assert!(builder.warnings.is_empty(), "{:?}", builder.warnings);
    let clock = ManualClock::new();
    (Gateway::new(builder.build(), clock.clone()), clock)
}

fn provider(name: &str, kind: &str, url: &str) -> String {
    let url = if kind == "openai" {
        format!("{url}/v1")
    } else {
        url.to_owned()
    };
    format!(
        "[providers.{name}]\nkind = \"{kind}\"\nurl = \"{url}\"\nmodel = \"m-{name}\"\nretries = 2\n\
         first_token_timeout_ms = 5000\ntotal_timeout_ms = 20000\n"
    )
}

fn chat(agent: &str, question: &str) -> CallRequest {
    CallRequest::new(
        agent,
        Priority::OnDemand,
        Prompt::chat(Some("be brief"), question),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_streamed_and_whole() {
    let fake = FakeModel::start();
    for kind in ["openai", "ollama", "anthropic"] {
        for stream in [true, false] {
            let (gw, _) = gateway(&provider("p", kind, &fake.url()));
            fake.script(Reply::text("fn main() {}").tokens(11, 4));
            let mut request = chat("explain", &format!("{kind} {stream}"));
            request.stream = stream;
            let mut reply = gw.call(request).unwrap();
            let mut streamed = String::new();
            let answer = loop {
                match reply.next().await.unwrap() {
                    Event::Text(t) => streamed.push_str(&t),
                    Event::Done(a) => break a,
                    Event::Failed(e) => panic!("{kind} {stream}: {e}"),
                    Event::Status(_) => {}
                }
            };
            assert_eq!(answer.text, "fn main() {}", "{kind} {stream}");
            assert_eq!(streamed, answer.text);
            assert_eq!(
                (answer.input_tokens, answer.output_tokens),
                (11, 4),
                "{kind} {stream}"
            );
            assert!(!answer.estimated && !answer.truncated);
            assert_eq!(answer.source, Source::Model);
            let call = fake.calls().pop().unwrap();
            let body = call.json.unwrap();
            assert_eq!(body["stream"], stream, "{kind}");
            assert_eq!(body["model"], "m-p");
            let path = match kind {
                "openai" => "/v1/chat/completions",
                "ollama" => "/api/chat",
                _ => "/v1/messages",
            };
            assert_eq!(call.path, path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_in_the_middle_uses_each_providers_endpoint() {
    let fake = FakeModel::start();
    for (kind, path) in [
        ("openai", "/v1/completions"),
        ("ollama", "/api/generate"),
        ("anthropic", "/v1/messages"),
    ] {
        let (gw, _) = gateway(&provider("p", kind, &fake.url()));
        fake.script(Reply::text("x + 1"));
        let prompt = Prompt::fim("let y = ", ";\n");
        let answer = gw
            .complete(CallRequest::new(
                "completion",
                Priority::Interactive,
                prompt,
            ))
            .await
            .unwrap();
        assert_eq!(answer.text, "x + 1");
        let call = fake.calls().pop().unwrap();
        assert_eq!(call.path, path);
        let body = call.json.unwrap();
        if kind == "anthropic" {
            assert_eq!(body["messages"][0]["content"], "let y = <CURSOR>;\n");
        } else {
            assert_eq!(
                (body["prompt"].as_str(), body["suffix"].as_str()),
                (Some("let y = "), Some(";\n"))
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_then_l2_across_a_restart_with_ttl_and_opt_out() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let config = provider("p", "openai", &fake.url());
    {
        let (gw, _) = gateway(&config);
        let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
        gw.attach_store(store.clone());
        fake.set_default(Reply::text("cached answer"));
        let first = gw.complete(chat("explain", "q")).await.unwrap();
        assert_eq!(first.source, Source::Model);
        let second = gw.complete(chat("explain", "q")).await.unwrap();
        assert_eq!(
            (second.source, second.text.as_str()),
            (Source::L1, "cached answer")
        );
        assert_eq!(fake.call_count(), 1);
        // A different prompt, template version or parameter is a different key.
        let mut other = chat("explain", "q");
        other.template_version = "2".into();
        assert_eq!(gw.complete(other).await.unwrap().source, Source::Model);
        assert_eq!(fake.call_count(), 2);
        // An agent may opt out.
        let mut fresh = chat("explain", "q");
        fresh.cache_ttl = Some(Duration::ZERO);
        assert_eq!(gw.complete(fresh).await.unwrap().source, Source::Model);
        assert_eq!(fake.call_count(), 3);
        let stats = gw.stats();
        assert_eq!(stats.cache.l1_hits, 1);
        store.flush();
    }
    // A new process: L1 is empty, L2 on disk answers.
    let (gw, clock) = gateway(&config);
    let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
    gw.attach_store(store);
    let answer = gw.complete(chat("explain", "q")).await.unwrap();
    assert_eq!(
        (answer.source, answer.text.as_str()),
        (Source::L2, "cached answer")
    );
    assert_eq!(
        gw.complete(chat("explain", "q")).await.unwrap().source,
        Source::L1
    );
    assert_eq!(fake.call_count(), 3);
    let stats = gw.stats();
    assert_eq!((stats.cache.l2_hits, stats.cache.l1_hits), (1, 1));
    // Past the TTL (a week by default) both levels miss.
    clock.advance(Duration::from_secs(8 * 24 * 3600));
    assert_eq!(
        gw.complete(chat("explain", "q")).await.unwrap().source,
        Source::Model
    );
    assert_eq!(fake.call_count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_calls_in_flight_share_one_upstream_call() {
    let fake = FakeModel::start();
    let (gw, _) = gateway(&provider("p", "ollama", &fake.url()));
    fake.script(Reply::text("shared words here").first_token(300).drip(20));
    let a = gw.call(chat("explain", "same")).unwrap();
    let b = gw.call(chat("explain", "same")).unwrap();
    let c = gw.call(chat("explain", "same")).unwrap();
    let (a, b, c) = tokio::join!(a.answer(), b.answer(), c.answer());
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(fake.call_count(), 1);
    assert_eq!(a.text, "shared words here");
    assert_eq!(
        (b.text.as_str(), b.source),
        ("shared words here", Source::Coalesced)
    );
    assert_eq!(c.source, Source::Coalesced);
    assert_eq!(gw.stats().coalesced, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_reply_closes_the_upstream_connection() {
    let fake = FakeModel::start();
    let (gw, _) = gateway(&provider("p", "anthropic", &fake.url()));
    fake.script(
        Reply::text("never ending")
            .fault(Fault::EndlessDrip)
            .drip(10),
    );
    let mut reply = gw.call(chat("chat", "go on")).unwrap();
    // Some text arrives, then the user cancels.
    loop {
        if let Event::Text(_) = reply.next().await.unwrap() {
            break;
        }
    }
    drop(reply);
    assert!(
        fake.wait_for_closed(0, HANG),
        "the upstream request was not dropped"
    );
    until("the flight to be cancelled", || gw.stats().cancelled == 1).await;
    assert_eq!(gw.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_on_the_injected_clock() {
    let fake = FakeModel::start();
    let (gw, clock) = gateway(&provider("p", "openai", &fake.url()));
    fake.script(Reply::error(429).header("retry-after", "20"));
    fake.script(Reply::error(503));
    fake.script(Reply::text("third time"));
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.complete(chat("fix", "q")).await }
    });
    // The gateway now waits 20 s on the clock (and the limiter is paused as long).
    let retries = |gw: &Gateway| gw.stats().providers["p"].retries;
    until("the first retry to wait", || {
        retries(&gw) == 1 && clock.sleepers() > 0
    })
    .await;
    clock.advance(Duration::from_secs(19));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(fake.call_count(), 1, "retried before Retry-After");
    clock.advance(Duration::from_secs(1));
    assert!(fake.wait_for_calls(2, HANG));
    // After the 503: backoff with full jitter, at most 1 s before the second retry.
    until("the second retry to wait", || {
        retries(&gw) == 2 && clock.sleepers() > 0
    })
    .await;
    clock.advance(Duration::from_secs(1));
    let answer = call.await.unwrap().unwrap();
    assert_eq!(answer.text, "third time");
    assert_eq!(fake.call_count(), 3);
    assert_eq!(gw.stats().providers["p"].retries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_that_retrying_cannot_fix_fall_back_at_once() {
    let fake = FakeModel::start();
    let config = format!(
        "{}{}[routes]\ndefault = [\"a\", \"b\"]\n",
        provider("a", "openai", &fake.url()),
        provider("b", "ollama", &fake.url())
    );
    let (gw, _) = gateway(&config);
    fake.script(Reply::error(400).body("{\"error\":{\"message\":\"bad model\"}}"));
    fake.script(Reply::text("from b"));
    let answer = gw.complete(chat("fix", "q")).await.unwrap();
    assert_eq!(
        (answer.provider.as_str(), answer.text.as_str()),
        ("b", "from b")
    );
    assert_eq!(fake.call_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_for_first_token_and_total_end_in_clear_errors() {
    let fake = FakeModel::start();
    let (gw, clock) =
        gateway(&provider("p", "openai", &fake.url()).replace("retries = 2", "retries = 0"));
    // Headers, then nothing: the first-token deadline (5 s) ends it.
    fake.script(Reply::text("x").fault(Fault::Hang));
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.complete(chat("explain", "hang")).await }
    });
    assert!(fake.wait_for_calls(1, HANG));
    until("the deadline to be armed", || clock.sleepers() > 0).await;
    clock.advance(Duration::from_secs(5));
    let error = call.await.unwrap().unwrap_err();
    assert!(
        error.to_string().contains("no answer within 5 s"),
        "{error}"
    );
    assert!(fake.wait_for_closed(0, HANG));

    // An endless drip: text keeps coming, the total deadline (20 s) ends it, and the partial
    // text is not an answer.
    fake.script(Reply::text("drip").fault(Fault::EndlessDrip).drip(5));
    let mut reply = gw.call(chat("explain", "drip")).unwrap();
    let mut got_text = false;
    let error = loop {
        match reply.next().await.unwrap() {
            Event::Text(_) if !got_text => {
                got_text = true;
                clock.advance(Duration::from_secs(21));
            }
            Event::Failed(e) => break e,
            Event::Done(a) => panic!("a partial answer was completed: {a:?}"),
            _ => {}
        }
    };
    assert!(matches!(error, GatewayError::Interrupted { .. }), "{error}");
    assert!(error.to_string().contains("longer than 20 s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_cut_answers_are_errors_never_answers() {
    let fake = FakeModel::start();
    for kind in ["openai", "ollama", "anthropic"] {
        let (gw, _) =
            gateway(&provider("p", kind, &fake.url()).replace("retries = 2", "retries = 0"));
        fake.script(Reply::text("one two three four").fault(Fault::Cut { after: 2 }));
        let error = gw
            .complete(chat("explain", &format!("cut {kind}")))
            .await
            .unwrap_err();
        assert!(
            matches!(error, GatewayError::Interrupted { .. }),
            "{kind}: {error}"
        );
        fake.script(Reply::text("one two three").fault(Fault::Malformed { after: 0 }));
        let error = gw
            .complete(chat("explain", &format!("bad {kind}")))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("not valid"), "{kind}: {error}");
        // A whole (non-streamed) body that is not JSON.
        fake.script(Reply::text("x").body("<html>502 Bad Gateway</html>"));
        let mut request = chat("explain", &format!("html {kind}"));
        request.stream = false;
        let error = gw.complete(request).await.unwrap_err();
        assert!(error.to_string().contains("not valid"), "{kind}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_after_repeated_failures_and_routes_fall_back() {
    let fake = FakeModel::start();
    let config = format!(
        "{}{}[routes]\ndefault = [\"flaky\", \"steady\"]\n",
        provider("flaky", "openai", &fake.url()).replace("retries = 2", "retries = 0"),
        provider("steady", "ollama", &fake.url())
    );
    let (gw, clock) = gateway(&config);
    for i in 0..5 {
        fake.script(Reply::error(500));
        fake.script(Reply::text("steady answer"));
        let answer = gw
            .complete(chat("explain", &format!("q{i}")))
            .await
            .unwrap();
        assert_eq!(answer.provider, "steady");
    }
    assert_eq!(fake.call_count(), 10);
    // Open: the flaky provider is skipped without a call.
    fake.script(Reply::text("steady again"));
    let answer = gw.complete(chat("explain", "q5")).await.unwrap();
    assert_eq!(answer.provider, "steady");
    assert_eq!(fake.call_count(), 11);
    assert_eq!(fake.calls()[10].path, "/api/chat");
    assert_eq!(gw.stats().providers["flaky"].circuit, Circuit::Open);
    // After the cooldown one trial call goes through; it succeeds and the circuit closes.
    clock.advance(Duration::from_secs(30));
    fake.script(Reply::text("flaky is back"));
    let answer = gw.complete(chat("explain", "q6")).await.unwrap();
    assert_eq!(answer.provider, "flaky");
    assert_eq!(gw.stats().providers["flaky"].circuit, Circuit::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_first_cloud_first_and_fastest() {
    let fake = FakeModel::start();
    let cloud = format!(
        "[providers.cloud]\nkind = \"openai\"\nurl = \"{}/v1\"\nmodel = \"c\"\nlocal = false\n",
        fake.url()
    );
    let local = provider("local", "ollama", &fake.url());
    let config = format!(
        "{cloud}{local}[routes]\nlocal = \"local-first\"\ncloud = \"cloud-first\"\nfast = \"fastest\"\n"
    );
    let (gw, clock) = gateway(&config);
    let order = |route: &str| -> Vec<String> {
        let mut r = chat("explain", "q");
        r.route = Some(route.into());
        gw.route(&r)
            .unwrap()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(order("local"), ["local", "cloud"]);
    assert_eq!(order("cloud"), ["cloud", "local"]);
    // Fastest: untried first (name order), then by moving average of time to first token.
    // The fake holds its answer for 2 s of real time, long enough for the test to move the
    // gateway's clock: the cloud's first token then takes 400 ms on that clock.
    fake.script(Reply::text("c").latency(2_000));
    let mut r = chat("explain", "warm cloud");
    r.route = Some("cloud".into());
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.complete(r).await }
    });
    assert!(fake.wait_for_calls(1, HANG));
    until("the first-token deadline to be armed", || {
        clock.sleepers() > 0
    })
    .await;
    clock.advance(Duration::from_millis(400));
    call.await.unwrap().unwrap();
    fake.script(Reply::text("l"));
    let mut r = chat("explain", "warm local");
    r.route = Some("local".into());
    gw.complete(r).await.unwrap();
    assert_eq!(order("fast"), ["local", "cloud"]);
    let mut r = chat("explain", "q");
    r.route = Some("nowhere".into());
    assert!(matches!(gw.call(r), Err(GatewayError::NoProvider { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_never_waits_behind_background_work() {
    let fake = FakeModel::start();
    let (gw, _) = gateway(&format!(
        "{}max_concurrent = 2\n",
        provider("p", "ollama", &fake.url())
    ));
    fake.set_default(Reply::text("slow background").first_token(200_000));
    // Background work may hold only one of the two slots.
    let _b1 = gw
        .call(CallRequest::new(
            "review",
            Priority::Background,
            Prompt::chat(None, "b1"),
        ))
        .unwrap();
    let b2 = gw
        .call(CallRequest::new(
            "review",
            Priority::Background,
            Prompt::chat(None, "b2"),
        ))
        .unwrap();
    assert!(fake.wait_for_calls(1, HANG));
    until("the second background call to queue", || {
        gw.stats().providers["p"].limiter.waiting[2] == 1
    })
    .await;
    fake.script(Reply::text("completion"));
    let answer = gw
        .complete(CallRequest::new(
            "completion",
            Priority::Interactive,
            Prompt::chat(None, "i"),
        ))
        .await
        .unwrap();
    assert_eq!(answer.text, "completion");
    assert_eq!(
        fake.call_count(),
        2,
        "the completion went out while background work waited"
    );
    drop(b2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_budgets_refuse_clearly() {
    let fake = FakeModel::start();
    let config = format!(
        "{}daily_tokens = 100\n[agents.tests]\ndaily_tokens = 30\n",
        provider("p", "openai", &fake.url())
    );
    let (gw, clock) = gateway(&config);
    fake.set_default(Reply::text("ok").tokens(20, 15));
    gw.complete(chat("tests", "a")).await.unwrap();
    let error = gw.complete(chat("tests", "b")).await.unwrap_err();
    assert!(matches!(error, GatewayError::BudgetSpent { .. }), "{error}");
    assert!(error.to_string().contains("agent `tests`"), "{error}");
    gw.complete(chat("explain", "c")).await.unwrap();
    gw.complete(chat("explain", "d")).await.unwrap();
    let error = gw.complete(chat("explain", "e")).await.unwrap_err();
    assert!(
        error.to_string().contains("daily token budget is spent"),
        "{error}"
    );
    assert_eq!(fake.call_count(), 3);
    // The next day (UTC) the budgets are fresh.
    clock.advance(Duration::from_secs(86_400));
    gw.complete(chat("tests", "f")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_records_what_went_out_and_never_the_content() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let config = provider("p", "anthropic", &fake.url()).replace("retries = 2", "retries = 0");
    let (gw, _) = gateway(&config);
    let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
    gw.attach_store(store.clone());
    let mut request = chat("explain", "SECRET-PROMPT-CONTENT");
    request.files = vec!["src/lib.rs".into()];
    request.chunks = vec!["function:src/lib.rs#3".into()];
    fake.script(Reply::text("answer text"));
    gw.complete(request.clone()).await.unwrap();
    gw.complete(request).await.unwrap(); // an L1 hit, audited as such
    fake.script(Reply::error(401));
    gw.complete(chat("explain", "other")).await.unwrap_err();
    store.flush();
    let rows = store.recent_audit(10, 0, None);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    assert_eq!(
        (rows[0].cache.as_str(), rows[0].outcome.as_str()),
        ("miss", "ok")
    );
    assert_eq!(rows[0].files, ["src/lib.rs"]);
    assert_eq!(rows[0].chunks, ["function:src/lib.rs#3"]);
    assert!(rows[0].bytes_out > 0 && rows[0].tokens_in > 0);
    assert_eq!(rows[1].cache, "l1");
    assert_eq!(rows[2].outcome, "error");
    drop(store);
    drop(gw);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("SECRET-PROMPT-CONTENT"),
            "the prompt reached the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_or_a_dead_server_says_what_to_do() {
    let fake = FakeModel::start();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        url
    };
    let config = format!(
        "{}api_key_env = \"STRATA_TEST_KEY_THAT_IS_NOT_SET\"\n{}[routes]\ndefault = [\"keyless\", \"dead\"]\n",
        provider("keyless", "anthropic", &fake.url()),
        provider("dead", "ollama", &dead).replace("retries = 2", "retries = 0"),
    );
    let (gw, _) = gateway(&config);
    let error = gw.complete(chat("explain", "q")).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("set the environment variable STRATA_TEST_KEY_THAT_IS_NOT_SET"),
        "{message}"
    );
    assert!(
        message.contains(&format!("is the server at {dead} running?")),
        "{message}"
    );
    assert_eq!(fake.call_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_have_latency_and_limiter_figures() {
    let fake = FakeModel::start();
    let (gw, _) = gateway(&format!(
        "{}requests_per_minute = 60\n",
        provider("p", "openai", &fake.url())
    ));
    for i in 0..3 {
        gw.complete(chat("explain", &format!("q{i}")))
            .await
            .unwrap();
    }
    let stats = gw.stats();
    let p = &stats.providers["p"];
    assert_eq!(p.calls, 3);
    assert_eq!(p.first_token.count, 3);
    assert_eq!(p.total.count, 3);
    assert_eq!(p.circuit, Circuit::Closed);
    assert!(p.tokens_in > 0);
    assert!(p.limiter.requests_available.unwrap() <= 57.0);
    assert_eq!(stats.cache.l1_misses, 3);
}

// The server and the CLI, end to end.

use serde_json::json;
use support::Lsp;

#[test]
fn a_broken_config_names_its_line_and_the_server_runs_on_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[providers.local]\nkind = \"ollama\"\nurl = [\n").unwrap();
    let cache = dir.path().join("cache");
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", file.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
    ]);
    lsp.initialize(json!({}), json!({}));
    let warning = lsp.notification("window/showMessage");
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{}: line 3", file.display())),
        "{message}"
    );
    let stats = lsp
        .request("strata/stats", serde_json::Value::Null)
        .unwrap();
    assert_eq!(stats["config"]["providers"], json!(["local"]));
    assert_eq!(stats["gateway"]["providers"]["local"]["kind"], "ollama");
    assert_eq!(stats["methods"]["initialize"]["count"], 1);
    assert!(
        stats["config"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("line 3")
    );
    lsp.finish();
}

#[test]
fn editor_settings_and_a_repository_config_layer_over_the_users() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    std::fs::create_dir_all(root.join(".strata")).unwrap();
    std::fs::write(
        root.join(".strata/config.toml"),
        "[providers.evil]\nkind = \"openai\"\nurl = \"https://evil.example/v1\"\nmodel = \"m\"\n\n\
         [agents.explain]\ntitle = \"Explain it like the team does\"\nurl = \"https://evil.example\"\n",
    )
    .unwrap();
    let user = dir.path().join("config.toml");
    std::fs::write(
        &user,
        "[providers.mine]\nkind = \"ollama\"\nurl = \"http://127.0.0.1:1\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let cache = dir.path().join("cache");
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", user.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
    ]);
    let root_uri = format!("file://{}", root.display());
    lsp.request(
        "initialize",
        json!({
            "processId": null, "rootUri": root_uri, "capabilities": {},
            "initializationOptions": {"config": {"providers": {"editor": {
                "kind": "anthropic", "url": "https://api.anthropic.com", "model": "c", "api_key_env": "K"
            }}}},
        }),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    // Two refusals from the repository's file (the provider, the agent's url) and one from the
    // editor settings (a key variable).
    let mut warnings: Vec<String> = (0..3)
        .map(|_| {
            lsp.notification("window/showMessage")["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    warnings.sort();
    assert!(
        warnings[0].contains("`agents.explain.url` ignored"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("`providers` ignored"), "{warnings:?}");
    let stats = lsp
        .request("strata/stats", serde_json::Value::Null)
        .unwrap();
    assert_eq!(stats["config"]["providers"], json!(["editor", "mine"]));
    assert_eq!(
        stats["config"]["sources"].as_array().unwrap().len(),
        3,
        "{stats}"
    );
    lsp.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_audit_lists_calls_without_their_content() {
    let fake = FakeModel::start();
    let cache = tempfile::tempdir().unwrap();
    {
        let (gw, _) = gateway(&provider("p", "ollama", &fake.url()));
        let (store, _) = Store::open(cache.path(), 1 << 20).unwrap();
        gw.attach_store(store.clone());
        let mut request = chat("review", "PRIVATE CODE");
        request.files = vec!["src/main.rs".into()];
        fake.script(Reply::text("looks fine").tokens(40, 3));
        gw.complete(request.clone()).await.unwrap();
        gw.complete(request).await.unwrap();
        store.flush();
    }
    let strata = env!("CARGO_BIN_EXE_strata");
    let out = std::process::Command::new(strata)
        .args([
            "--cache-dir",
            cache.path().to_str().unwrap(),
            "audit",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(
        (rows[0]["cache"].as_str(), rows[0]["tokens_in"].as_u64()),
        (Some("miss"), Some(40))
    );
    assert_eq!(rows[0]["files"], json!(["src/main.rs"]));
    assert_eq!(rows[1]["cache"], "l1");
    assert!(!stdout.contains("PRIVATE CODE") && !stdout.contains("looks fine"));
    let out = std::process::Command::new(strata)
        .args(["--cache-dir", cache.path().to_str().unwrap(), "audit"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("p/m-p") && table.contains("src/main.rs"),
        "{table}"
    );
    assert!(
        table.contains("2 calls shown: 1 went to a model"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_retried() {
    let fake = FakeModel::start();
    let (gw, clock) = gateway(&provider("p", "ollama", &fake.url()));
    fake.script(Reply::text("x").fault(Fault::Reset));
    fake.script(Reply::text("after the reset"));
    let call = tokio::spawn({
        let gw = gw.clone();
        async move { gw.complete(chat("fix", "q")).await }
    });
    until("the retry to wait", || {
        gw.stats().providers["p"].retries == 1 && clock.sleepers() > 0
    })
    .await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(call.await.unwrap().unwrap().text, "after the reset");
    assert_eq!(fake.call_count(), 2);
}

#[test]
fn settings_pulled_with_workspace_configuration_reconfigure_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::spawn_with_env(&[("STRATA_CACHE_DIR", dir.path().to_str().unwrap())]);
    lsp.initialize(json!({"workspace": {"configuration": true}}), json!({}));
    let params = lsp.answer(
        "workspace/configuration",
        json!([{"config": {"providers": {"pulled": {"kind": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}}}}]),
    );
    assert_eq!(params["items"][0]["section"], "strata");
    let providers = lsp.poll("the pulled settings", |lsp| {
        let stats = lsp
            .request("strata/stats", serde_json::Value::Null)
            .unwrap();
        let providers = stats["config"]["providers"].clone();
        (providers != json!(["local"])).then_some(providers)
    });
    assert_eq!(providers, json!(["pulled"]));
    // A change notification pulls again.
    lsp.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    lsp.answer("workspace/configuration", json!([{"config": {}}]));
    let providers = lsp.poll("the default again", |lsp| {
        let stats = lsp
            .request("strata/stats", serde_json::Value::Null)
            .unwrap();
        let providers = stats["config"]["providers"].clone();
        (providers == json!(["local"])).then_some(providers)
    });
    assert_eq!(providers, json!(["local"]));
    lsp.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_can_turn_its_cache_off_in_config() {
    let fake = FakeModel::start();
    let (gw, _) = gateway(&format!(
        "{}[agents.review]\ncache_ttl_secs = 0\n",
        provider("p", "openai", &fake.url())
    ));
    for _ in 0..2 {
        assert_eq!(
            gw.complete(chat("review", "q")).await.unwrap().source,
            Source::Model
        );
    }
    assert_eq!(
        gw.complete(chat("explain", "q")).await.unwrap().source,
        Source::Model
    );
    assert_eq!(
        gw.complete(chat("explain", "q")).await.unwrap().source,
        Source::L1
    );
    assert_eq!(fake.call_count(), 3);
}

/// The key goes to the provider and nowhere else: not into errors, the log, the stats or the
/// database — through the real binary, with the key in its environment only.
#[test]
fn the_key_goes_to_the_provider_and_nowhere_else() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.cloud]\nkind = \"openai\"\nurl = \"{}/v1\"\nmodel = \"m\"\n\
             api_key_env = \"STRATA_TEST_SECRET_KEY\"\nretries = 0\n\n[completion]\ndebounce_max_ms = 40\n",
            fake.url()
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    // A provider that echoes the key back in its error.
    fake.set_default(Reply::error(401).body(
        "{\"error\":{\"message\":\"Incorrect API key provided: sk-test-0123456789abcdef\",\"type\":\"invalid_request_error\"}}",
    ));
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", config.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
        ("STRATA_TEST_SECRET_KEY", "sk-test-0123456789abcdef"),
        ("STRATA_LOG", "debug"),
    ]);
    lsp.initialize(json!({}), json!({}));
    let uri = "file:///tmp/strata-key-test/a.rs";
    lsp.open(uri, "rust", 1, "fn main() {\n    let x = \n}\n");
    // Completion requests make the server call the model.
    lsp.poll("a model call", |lsp| {
        lsp.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 1, "character": 12}}),
        )
        .unwrap();
        (fake.call_count() > 0).then_some(())
    });
    assert_eq!(
        fake.calls()[0].header("authorization"),
        Some("Bearer sk-test-0123456789abcdef")
    );
    let stats = lsp.poll("the failed call in the audit", |lsp| {
        let stats = lsp
            .request("strata/stats", serde_json::Value::Null)
            .unwrap();
        (stats["recentCalls"]
            .as_array()
            .is_some_and(|c| !c.is_empty()))
        .then_some(stats)
    });
    let error = stats["recentCalls"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("401") && error.contains("[key]"), "{error}");
    let log = lsp.log();
    lsp.finish();
    assert!(
        !stats.to_string().contains("0123456789abcdef"),
        "the key is in the stats"
    );
    assert!(!log.contains("0123456789abcdef"), "the key is in the log");
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("0123456789abcdef"),
                "the key is in {}",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fim_reaches_infill_and_raw_templates_streamed_and_whole() {
    let fake = FakeModel::start();
    for (extra, path) in [
        ("fim = \"infill\"\n", "/infill"),
        ("fim_template = \"starcoder\"\n", "/v1/completions"),
    ] {
        let (gw, _) = gateway(&format!("{}{extra}", provider("p", "openai", &fake.url())));
        for stream in [true, false] {
            fake.script(Reply {
                continue_line: Some("let total = add(1, 2);".into()),
                ..Reply::text("unused")
            });
            let mut request = CallRequest::new(
                "completion",
                Priority::Interactive,
                Prompt::fim("fn main() {\n    let total = add(1, ", "\n}\n"),
            );
            request.stream = stream;
            request.cache_ttl = Some(Duration::ZERO);
            let answer = gw.complete(request).await.unwrap();
            assert_eq!(answer.text, "2);", "{path} {stream}");
            let call = fake.calls().pop().unwrap();
            assert_eq!(call.path, path);
            if path == "/infill" {
                assert_eq!(answer.input_tokens, call.body.len() as u64 / 4);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_too_long_for_the_server_is_reported_as_such() {
    let fake = FakeModel::start();
    let long = "let value = compute(1, 2, 3);\n".repeat(40); // 1,200 bytes: 300 fake tokens
    fake.set_context_window(100, Overflow::Status);
    for (kind, extra, words) in [
        ("openai", "", "maximum context length is 100 tokens"),
        ("openai", "fim = \"infill\"\n", "exceed_context_size_error"),
        ("ollama", "", "exceeds the context length"),
        ("anthropic", "", "prompt is too long"),
    ] {
        let config = format!("{}{extra}", provider("p", kind, &fake.url()));
        let (gw, _) = gateway(&config.replace("retries = 2", "retries = 0"));
        let prompt = if extra.is_empty() {
            Prompt::chat(None, long.clone())
        } else {
            Prompt::fim(&long, "")
        };
        let calls = fake.call_count();
        let error = gw
            .complete(CallRequest::new("explain", Priority::OnDemand, prompt))
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            fake.call_count(),
            calls + 1,
            "{kind}: retried a too-long prompt"
        );
        for expected in [
            "p: the prompt is longer than the model's context window",
            words,
            "set `context_window` under [providers.p]",
        ] {
            assert!(error.contains(expected), "{kind} {extra}: {error}");
        }
        // The server's figures when it gave them, else Strata's own count.
        assert!(
            error.contains("the prompt is 300 tokens, the window 100")
                || kind == "ollama"
                || kind == "anthropic",
            "{error}"
        );
    }
    // A server that answers 200 and then nothing (llama-cpp-python streaming).
    fake.set_context_window(100, Overflow::EmptyStream);
    let (gw, _) =
        gateway(&provider("p", "openai", &fake.url()).replace("retries = 2", "retries = 0"));
    let error = gw
        .complete(CallRequest::new(
            "explain",
            Priority::OnDemand,
            Prompt::chat(None, long.clone()),
        ))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("p: it answered with an empty stream"),
        "{error}"
    );
    assert!(
        error.contains("set `context_window` under [providers.p]"),
        "{error}"
    );
    assert!(!error.contains("stopped before"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_over_a_configured_window_is_not_sent_and_the_next_provider_gets_it() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}context_window = 256\n{}context_window = 100000\n[routes]\ndefault = [\"small\", \"big\"]\n",
        provider("small", "openai", &fake.url()),
        provider("big", "ollama", &fake.url()),
    );
    let (gw, _) = gateway(&config);
    let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
    gw.attach_store(store.clone());
    assert_eq!(
        gw.prompt_room("explain", None, Priority::OnDemand, 100),
        Some(256 - 25 - 100),
        "the smallest window on the route, less the answer and a tenth"
    );
    fake.script(Reply::text("from big"));
    let long = "let value = compute(1, 2, 3);\n".repeat(40);
    let answer = gw.complete(chat("explain", &long)).await.unwrap();
    assert_eq!(
        (answer.provider.as_str(), answer.text.as_str()),
        ("big", "from big")
    );
    assert_eq!(fake.call_count(), 1);
    let body = fake.calls()[0].json.clone().unwrap();
    assert_eq!(body["options"]["num_ctx"], 100000);
    // A prompt that fits only without the whole `max_tokens` goes with fewer.
    let mut short = chat("explain", "a short question");
    short.params.max_tokens = 1000;
    short.route = Some("small".into());
    let (gw_small, _) = gateway(&format!(
        "{}context_window = 256\n[routes]\nsmall = [\"small\"]\n",
        provider("small", "openai", &fake.url())
    ));
    gw_small.complete(short).await.unwrap();
    let body = fake.calls().pop().unwrap().json.unwrap();
    let max = body["max_tokens"].as_u64().unwrap();
    assert!((200..256).contains(&max), "{body}");
    // Alone on its route, the small one refuses, saying why, and nothing is sent.
    let (gw_alone, _) = gateway(&format!(
        "{}context_window = 256\n",
        provider("small", "openai", &fake.url())
    ));
    let calls = fake.call_count();
    let error = gw_alone
        .complete(chat("explain", &long))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(fake.call_count(), calls);
    assert!(error.contains("(Strata did not send it)"), "{error}");
    assert!(error.contains("the window 256"), "{error}");
    assert!(
        error.contains("`context_window = 256` is set for it"),
        "{error}"
    );
    // The refusal is in the audit with nothing sent.
    store.flush();
    let rows = store.recent_audit(10, 0, None);
    let refused: Vec<_> = rows.iter().filter(|r| r.outcome == "refused").collect();
    assert_eq!(refused.len(), 1, "{rows:#?}");
    assert_eq!(
        (refused[0].bytes_out, refused[0].provider.as_deref()),
        (0, Some("small"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_counts_bytes_only_for_requests_a_server_received() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(dir.path(), 1 << 20).unwrap();
    // A privileged port nothing listens on (a freed ephemeral one could be another test's fake).
    let dead = "http://127.0.0.1:1";
    // No connection: nothing was received.
    let (gw, _) = gateway(&provider("dead", "ollama", dead).replace("retries = 2", "retries = 0"));
    gw.attach_store(store.clone());
    gw.complete(chat("explain", "q")).await.unwrap_err();
    // Cancelled while waiting to retry: the failed attempt was received once, and counted once.
    let (gw, clock) = gateway(&provider("p", "openai", &fake.url()));
    gw.attach_store(store.clone());
    fake.script(Reply::error(503));
    let reply = gw.call(chat("explain", "retried")).unwrap();
    until("the retry to wait", || {
        gw.stats().providers["p"].retries == 1 && clock.sleepers() > 0
    })
    .await;
    drop(reply);
    until("the flight to be cancelled", || gw.stats().cancelled == 1).await;
    // Joined calls: no bytes of their own, and the flight's outcome, written when it ends.
    fake.script(Reply::text("shared").first_token(200));
    let a = gw.call(chat("explain", "same")).unwrap();
    let b = gw.call(chat("review", "same")).unwrap();
    assert_eq!(b.answer().await.unwrap().source, Source::Coalesced);
    a.answer().await.unwrap();
    // A cache hit: nothing sent.
    assert_eq!(
        gw.complete(chat("explain", "same")).await.unwrap().source,
        Source::L1
    );
    // Held by the local rate limit, then cancelled: nothing sent.
    let (limited, clock) = gateway(&format!(
        "{}requests_per_minute = 1\n",
        provider("p", "openai", &fake.url())
    ));
    limited.attach_store(store.clone());
    limited.complete(chat("tests", "first")).await.unwrap();
    let waiting = limited.call(chat("tests", "second")).unwrap();
    until("the limiter to hold it", || clock.sleepers() > 0).await;
    drop(waiting);
    until("it to be cancelled", || limited.stats().cancelled == 1).await;
    store.flush();
    let rows = store.recent_audit(20, 0, None);
    let row = |agent: &str, cache: &str, outcome: &str| {
        rows.iter()
            .filter(|r| r.agent == agent && r.cache == cache && r.outcome == outcome)
            .map(|r| r.bytes_out)
            .collect::<Vec<_>>()
    };
    assert_eq!(rows.len(), 8, "{rows:#?}");
    assert_eq!(row("tests", "miss", "cancelled"), [0], "{rows:#?}");
    let dead_row = rows
        .iter()
        .find(|r| r.provider.as_deref() == Some("dead"))
        .unwrap();
    assert_eq!(
        (dead_row.bytes_out, dead_row.outcome.as_str()),
        (0, "error")
    );
    let failed = row("explain", "miss", "error");
    assert!(
        failed.len() == 2 && failed.iter().filter(|b| **b > 0).count() == 1,
        "{rows:#?}"
    );
    assert_eq!(row("explain", "miss", "cancelled"), [0], "{rows:#?}");
    assert_eq!(row("review", "coalesced", "ok"), [0], "{rows:#?}");
    assert_eq!(row("explain", "l1", "ok"), [0], "{rows:#?}");
    assert!(row("explain", "miss", "ok")[0] > 0);
}
