//! The LLM gateway: the only code that talks to models. Configuration (`config`), the providers'
//! wire formats (`wire`) and how each is asked to fill in the middle (`fim`), one provider's HTTP
//! attempts (`provider`), limits with priority classes (`limits`), prompts redacted by
//! construction (`prompt`), retry and circuit-breaker arithmetic (`retry`), the answer cache and
//! egress audit database (`store`), latency histograms (`stats`) and the orchestration
//! (`gateway`) with its parts: cache keys and lookups (`cache`), daily spending (`budget`), which
//! providers in what order (`route`), audit rows (`audit`) and what a subscriber reads (`reply`).
//! Time comes from a `clock::Clock`, so tests drive it instead of sleeping.

mod audit;
mod budget;
mod cache;
pub mod clock;
pub mod config;
pub mod fim;
pub mod gateway;
pub mod limits;
pub mod prompt;
pub mod provider;
mod reply;
pub mod retry;
mod route;
pub mod stats;
pub mod store;
pub mod wire;

pub use audit::{CacheLevel, CallOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, ConfigBuilder, ConfigWarning, ProviderConfig, ProviderKind, Trust};
pub use gateway::{
    Answer, CallRequest, Event, Gateway, GatewayError, GatewayStats, Reply, Source, Status,
};
pub use limits::{Limits, Priority};
pub use prompt::{Message, Parts, Prompt, Role};
pub use stats::{Histogram, Summary};
pub use store::{AuditRecord, Store};
pub use wire::Params;
