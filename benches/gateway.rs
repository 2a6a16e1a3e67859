//! What the gateway costs on top of the model: per-call overhead against the loopback fake model
//! server answering at once (the same streamed request sent with plain reqwest, then through the
//! gateway with the cache off), an L1 hit, and an L2 hit (L1 disabled); then what building a
//! `Prompt` (every part through the redactor) costs for an agent run and a completion. Prints
//! tables for docs/benchmarks.md. Run: `cargo bench --bench gateway`.

#[path = "../tests/support/fake_model.rs"]
#[allow(dead_code)]
mod fake_model;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_model::{FakeModel, Reply};
use futures_util::StreamExt;
use strata::llm::config::{ConfigBuilder, Trust};
use strata::llm::{CallRequest, Gateway, Priority, Prompt, Source, Store, SystemClock};

const ROUNDS: usize = 2000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn row(label: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.5), percentile(samples, 0.99));
    println!(
        "| {label} | {} | {} | {} | {} |",
        us(p50),
        us(percentile(samples, 0.95)),
        us(p99),
        us(*samples.last().unwrap())
    );
    (p50, p99)
}

fn gateway(url: &str, memory_mb: u64) -> Gateway {
    let mut builder = ConfigBuilder::new();
    builder.text(
        &format!(
            "[providers.fake]\nkind = \"openai\"\nurl = \"{url}/v1\"\nmodel = \"m\"\n\n[cache]\nmemory_mb = {memory_mb}\n"
        ),
        "bench",
        Trust::User,
    );
    Gateway::new(builder.build(), Arc::new(SystemClock))
}

fn request(i: usize, cache: bool) -> CallRequest {
    let mut r = CallRequest::new(
        "bench",
        Priority::Interactive,
        Prompt::chat(
            Some("be brief"),
            format!("question {i}: {}", "context ".repeat(200)),
        ),
    );
    if !cache {
        r.cache_ttl = Some(Duration::ZERO);
    }
    r
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = FakeModel::start();
    fake.set_default(Reply::text("fn answer() -> u32 { 42 }").tokens(60, 12));
    let url = fake.url();
    runtime.block_on(async {
        println!("| path ({ROUNDS} calls) | p50 µs | p95 µs | p99 µs | max µs |");
        println!("|---|---|---|---|---|");

        // The same request the gateway sends, with plain reqwest: the floor.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::new();
        let gw = gateway(&url, 32);
        let probe = request(0, false);
        let provider = gw.route(&probe).unwrap()[0].config.clone();
        let mut direct = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS + 100 {
            let wire = strata::llm::wire::request(&provider, &request(i, false).prompt, &Default::default(), true);
            let started = Instant::now();
            let response = client.post(&wire.url).json(&wire.body).send().await.unwrap();
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                chunk.unwrap();
            }
            if i >= 100 {
                direct.push(started.elapsed());
            }
        }
        let (direct_p50, direct_p99) = row("HTTP alone (reqwest, streamed)", &mut direct);

        let mut through = Vec::with_capacity(ROUNDS);
        for i in 0..ROUNDS + 100 {
            // Built before the clock starts: the prompt's redaction is measured on its own below.
            let call = request(i, false);
            let started = Instant::now();
            let answer = gw.complete(call).await.unwrap();
            assert_eq!(answer.source, Source::Model);
            if i >= 100 {
                through.push(started.elapsed());
            }
        }
        let (gw_p50, gw_p99) = row("gateway, cache off (model at 0 ms)", &mut through);

        gw.complete(request(0, true)).await.unwrap();
        let mut l1 = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let call = request(0, true);
            let started = Instant::now();
            let answer = gw.complete(call).await.unwrap();
            l1.push(started.elapsed());
            assert_eq!(answer.source, Source::L1);
        }
        row("L1 hit", &mut l1);

        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(dir.path(), 1 << 30).unwrap();
        let warm = gateway(&url, 0);
        warm.attach_store(store.clone());
        for i in 0..64 {
            warm.complete(request(i, true)).await.unwrap();
        }
        store.flush();
        let mut l2 = Vec::with_capacity(ROUNDS);
        for r in 0..ROUNDS {
            let call = request(r % 64, true);
            let started = Instant::now();
            let answer = warm.complete(call).await.unwrap();
            l2.push(started.elapsed());
            assert_eq!(answer.source, Source::L2, "L1 is off here");
        }
        row("L2 hit (L1 off)", &mut l2);
        println!();
        println!(
            "Gateway overhead per call: p50 {} µs, p99 {} µs (gateway minus HTTP alone, percentile by percentile)",
            us(gw_p50.saturating_sub(direct_p50)),
            us(gw_p99.saturating_sub(direct_p99))
        );
        println!("Upstream calls seen by the fake server: {}", fake.call_count());
    });
    prompts();
}

/// What redaction by construction costs: building the `Prompt` of an agent run (about 100 KB of
/// this repository's own Rust as the rendered context and target) and of a completion (the
/// default 6,000 bytes before the cursor and 2,000 after), every part through the redactor.
fn prompts() {
    let mut source = String::new();
    for file in [
        "server/context/redact.rs",
        "server/llm/gateway.rs",
        "server/session/agent.rs",
        "server/lsp/agents.rs",
    ] {
        source.push_str(&std::fs::read_to_string(file).unwrap());
    }
    let agent: String = source.chars().take(100_000).collect();
    let (prefix, suffix) = (&agent[..6000], &agent[6000..8000]);
    println!();
    println!("| prompt built (200 each) | bytes | p50 µs | p95 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|");
    let time = |label: &str, bytes: usize, build: &dyn Fn() -> Prompt| {
        let mut samples: Vec<Duration> = (0..220)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(build());
                started.elapsed()
            })
            .skip(20)
            .collect();
        samples.sort();
        println!(
            "| {label} | {bytes} | {} | {} | {} | {} |",
            us(percentile(&samples, 0.5)),
            us(percentile(&samples, 0.95)),
            us(percentile(&samples, 0.99)),
            us(*samples.last().unwrap())
        );
    };
    time("agent: system + 100 KB message", agent.len(), &|| {
        Prompt::chat(Some("You explain code."), agent.clone())
    });
    time("completion: FIM 6,000 + 2,000 bytes", 8000, &|| {
        Prompt::fim(prefix, suffix)
    });
}
