//! The answer cache: what it keeps of an answer (`Cached`), its keys (provider, model,
//! parameters, template version and prompt, hashed), how long an answer may be reused, the L1
//! in-memory cache (moka, weighed in bytes), the L2 lookup in `gateway.sqlite` (off the async
//! threads) and remembering an answer in both. Nothing here counts hits, routes or calls a model:
//! the gateway decides when to look and what a hit means.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::Config;
use super::gateway::{Answer, CallRequest};
use super::provider::Provider;
use super::store::Store;

/// What the cache keeps of an answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Cached {
    pub(super) answer: Answer,
    pub(super) expires_ms: i64,
}

/// The in-memory cache, by cache key.
pub(super) type L1 = moka::sync::Cache<u128, Arc<Cached>>;

/// The cache's figures for `strata/stats`.
#[derive(Clone, Debug)]
pub struct CacheStats {
    pub l1_hits: u64,
    pub l1_misses: u64,
    pub l1_entries: u64,
    pub l1_bytes: u64,
    pub l2_hits: u64,
    pub l2_misses: u64,
    pub l2_entries: u64,
    pub l2_bytes: u64,
}

/// An L1 cache holding about `bytes` of answers.
pub(super) fn l1_cache(bytes: u64) -> L1 {
    moka::sync::Cache::builder()
        .max_capacity(bytes)
        .weigher(|_, v: &Arc<Cached>| {
            (v.answer.text.len() + v.answer.provider.len() + 128).min(u32::MAX as usize) as u32
        })
        .build()
}

/// The cache key: provider, model, how it is asked to fill in the middle, parameters, template
/// version and the prompt.
pub(super) fn cache_key(provider: &Provider, request: &CallRequest) -> u128 {
    let config = &provider.config;
    let material = serde_json::to_vec(&(
        (config.kind.as_str(), &config.url, &config.model),
        (config.fim, &config.fim_template, &config.fim_stop),
        &request.params,
        &request.template_version,
        &request.prompt,
    ))
    .unwrap_or_default();
    xxhash_rust::xxh3::xxh3_128(&material)
}

/// A cache key as the L2 cache spells it.
pub(super) fn l2_key(key: u128) -> String {
    format!("{key:032x}")
}

/// How long the answer to `request` may be reused: the request's TTL, else its agent's, else the
/// config's. Zero: neither looked up nor kept.
pub(super) fn ttl(config: &Config, request: &CallRequest) -> Duration {
    request.cache_ttl.unwrap_or_else(|| {
        let secs = config
            .agents
            .get(&request.agent)
            .and_then(|a| a.cache_ttl_secs)
            .unwrap_or(config.cache.ttl_secs);
        Duration::from_secs(secs)
    })
}

/// The first of `keys` the L2 cache holds an unexpired answer for: its index and the answer.
/// Reads the database on a blocking thread.
pub(super) async fn l2_lookup(
    store: Arc<Store>,
    keys: &[u128],
    now_ms: i64,
) -> Option<(usize, Cached)> {
    let hexes: Vec<String> = keys.iter().map(|k| l2_key(*k)).collect();
    let found = tokio::task::spawn_blocking(move || {
        hexes
            .iter()
            .enumerate()
            .find_map(|(i, h)| store.get(h, now_ms).map(|s| (i, s)))
    })
    .await
    .ok()
    .flatten();
    found.and_then(|(i, s)| Some((i, serde_json::from_str::<Cached>(&s.answer).ok()?)))
}

/// Keeps `answer` under `key` for `ttl`, in L2 (when there is a store) and in L1.
pub(super) fn remember(
    l1: &L1,
    store: Option<&Store>,
    key: u128,
    answer: &Answer,
    ttl: Duration,
    now_ms: i64,
) {
    let expires_ms = now_ms.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
    let cached = Cached {
        answer: answer.clone(),
        expires_ms,
    };
    if let Some(store) = store
        && let Ok(json) = serde_json::to_string(&cached)
    {
        store.put(
            &l2_key(key),
            &answer.provider,
            &answer.model,
            json,
            now_ms,
            expires_ms,
        );
    }
    l1.insert(key, Arc::new(cached));
}
