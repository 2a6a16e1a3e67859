//! Routing: which providers a call tries and in what order. `Setup` is the configuration and
//! its providers at run time (replaced whole on reconfiguration, keeping the state of providers
//! whose settings did not change); `route` picks the route — the request's, the agent's,
//! `completion` for interactive calls, `default`, else every provider — and orders it by its
//! strategy. Nothing here sends, caches or counts a call.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::clock::Clock;
use super::config::{Config, Strategy};
use super::gateway::{CallRequest, GatewayError};
use super::limits::Priority;
use super::provider::Provider;

/// The configured providers and routes; replaced whole when the configuration changes.
#[derive(Debug)]
pub(super) struct Setup {
    pub(super) config: Config,
    pub(super) providers: BTreeMap<String, Arc<Provider>>,
}

/// The providers of `config`, reusing those of `old` whose settings did not change (their
/// circuit, moving averages, limiter and counters).
pub(super) fn build_setup(config: Config, clock: &Arc<dyn Clock>, old: Option<&Setup>) -> Setup {
    let providers = config
        .providers
        .iter()
        .map(|(name, pc)| {
            let kept = old
                .and_then(|o| o.providers.get(name))
                .filter(|p| p.config == *pc)
                .cloned();
            (
                name.clone(),
                kept.unwrap_or_else(|| Arc::new(Provider::new(name, pc.clone(), clock.clone()))),
            )
        })
        .collect();
    Setup { config, providers }
}

/// The providers a call tries, in order.
pub(super) fn route(
    setup: &Setup,
    request: &CallRequest,
) -> Result<Vec<Arc<Provider>>, GatewayError> {
    let config = &setup.config;
    let name = request
        .route
        .clone()
        .or_else(|| {
            config
                .agents
                .get(&request.agent)
                .and_then(|a| a.route.clone())
        })
        .or_else(|| {
            (request.priority == Priority::Interactive && config.routes.contains_key("completion"))
                .then(|| "completion".to_owned())
        })
        .or_else(|| {
            config
                .routes
                .contains_key("default")
                .then(|| "default".to_owned())
        });
    let (strategy, names): (Strategy, Vec<String>) =
        match name.as_deref().map(|n| (n, config.routes.get(n))) {
            Some((_, Some(route))) => {
                let names = if route.providers.is_empty() {
                    setup.providers.keys().cloned().collect()
                } else {
                    route.providers.clone()
                };
                (route.strategy.clone(), names)
            }
            Some((n, None)) if n != "default" && n != "completion" => {
                return Err(GatewayError::NoProvider {
                    route: n.to_owned(),
                });
            }
            _ => (Strategy::Ordered, setup.providers.keys().cloned().collect()),
        };
    let mut providers: Vec<Arc<Provider>> = names
        .iter()
        .filter_map(|n| setup.providers.get(n).cloned())
        .collect();
    match strategy {
        Strategy::Ordered => {}
        Strategy::LocalFirst => providers.sort_by_key(|p| !p.config.is_local()),
        Strategy::CloudFirst => providers.sort_by_key(|p| p.config.is_local()),
        Strategy::Fastest => providers.sort_by(|a, b| {
            let (a, b) = (a.ewma_ttft().unwrap_or(0.0), b.ewma_ttft().unwrap_or(0.0));
            a.total_cmp(&b)
        }),
    }
    if providers.is_empty() {
        return Err(GatewayError::NoProvider {
            route: name.unwrap_or_else(|| "default".to_owned()),
        });
    }
    Ok(providers)
}
