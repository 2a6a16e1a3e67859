//! The egress audit as the gateway writes it: one row per call (when, which agent, provider and
//! model, how the cache took part, bytes and tokens, which files and chunks went out, how it
//! ended, never the text), and the two words those rows are made of, `CacheLevel` and
//! `CallOutcome`, spelled in the database and on the wire as they always were. The rows are
//! stored by `store`; nothing here decides whether a call is made.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::gateway::{Answer, CallRequest, Gateway, GatewayError};
use super::store::AuditRecord;

/// How the cache took part in a call: the audit's `cache` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheLevel {
    /// No cache answered: a model was asked (or the call was refused or cancelled first).
    #[default]
    Miss,
    /// The in-memory cache answered.
    L1,
    /// The on-disk cache answered.
    L2,
    /// An identical call already in flight answered.
    Coalesced,
}

/// How a call ended: the audit's `outcome` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallOutcome {
    #[default]
    Ok,
    Error,
    /// Every subscriber left before the answer was complete.
    Cancelled,
    /// A daily budget was spent; nothing was sent.
    Refused,
}

/// The spelling of a column value, and back.
macro_rules! spelled {
    ($ty:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        impl $ty {
            /// The spelling in the audit table, `strata audit` and `strata/stats`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)+
                }
            }

            /// The value a spelling stands for.
            pub fn parse(word: &str) -> Option<$ty> {
                match word {
                    $($word => Some($ty::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        /// Comparison with the spelling, for readers of the audit that still hold strings.
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

spelled!(CacheLevel { Miss => "miss", L1 => "l1", L2 => "l2", Coalesced => "coalesced" });
spelled!(CallOutcome { Ok => "ok", Error => "error", Cancelled => "cancelled", Refused => "refused" });

impl Gateway {
    /// Writes one audit row (when a store is attached).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn audit_row(
        &self,
        request: &CallRequest,
        provider: Option<&str>,
        model: Option<&str>,
        cache: CacheLevel,
        bytes_out: u64,
        bytes_in: u64,
        tokens: (u64, u64),
        outcome: CallOutcome,
        error: Option<String>,
        ttft_ms: Option<u64>,
        started: Instant,
    ) {
        let Some(store) = self.store() else { return };
        store.audit(AuditRecord {
            at_ms: self.wall_ms(),
            workspace: self.workspace(),
            agent: request.agent.clone(),
            priority: format!("{:?}", request.priority).to_lowercase(),
            provider: provider.map(str::to_owned),
            model: model.map(str::to_owned),
            cache,
            bytes_out,
            bytes_in,
            tokens_in: tokens.0,
            tokens_out: tokens.1,
            files: request.files.clone(),
            chunks: request.chunks.clone(),
            outcome,
            error,
            ttft_ms,
            total_ms: self.ms_since(started),
        });
    }

    /// Writes the rows of the calls that joined a flight, each with how the flight ended (`None`:
    /// cancelled): nothing of theirs was sent, so no bytes.
    pub(super) fn audit_joined(
        &self,
        joined: Vec<(CallRequest, Instant)>,
        outcome: Option<&Result<Answer, GatewayError>>,
    ) {
        for (request, started) in joined {
            let (provider, model, outcome, error) = match outcome {
                Some(Ok(a)) => (
                    Some(a.provider.as_str()),
                    Some(a.model.as_str()),
                    CallOutcome::Ok,
                    None,
                ),
                Some(Err(e)) => (None, None, CallOutcome::Error, Some(e.to_string())),
                None => (None, None, CallOutcome::Cancelled, None),
            };
            self.audit_row(
                &request,
                provider,
                model,
                CacheLevel::Coalesced,
                0,
                0,
                (0, 0),
                outcome,
                error,
                None,
                started,
            );
        }
    }

    /// Writes the row of a call the cache answered (or failed to).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn audit(
        &self,
        request: &CallRequest,
        provider: &str,
        model: &str,
        cache: CacheLevel,
        bytes_out: u64,
        answer: Result<&Answer, &GatewayError>,
        started: Instant,
    ) {
        match answer {
            Ok(a) => self.audit_row(
                request,
                Some(provider),
                Some(model),
                cache,
                bytes_out,
                0,
                (0, 0),
                CallOutcome::Ok,
                None,
                a.first_token_ms,
                started,
            ),
            Err(e) => self.audit_row(
                request,
                Some(provider),
                Some(model),
                cache,
                bytes_out,
                0,
                (0, 0),
                CallOutcome::Error,
                Some(e.to_string()),
                None,
                started,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_their_spelling_on_the_wire_and_in_the_table() {
        for (level, word) in [
            (CacheLevel::Miss, "miss"),
            (CacheLevel::L1, "l1"),
            (CacheLevel::L2, "l2"),
            (CacheLevel::Coalesced, "coalesced"),
        ] {
            assert_eq!(serde_json::to_value(level).unwrap(), word);
            assert_eq!(level.as_str(), word);
            assert_eq!(CacheLevel::parse(word), Some(level));
            assert_eq!(level, word);
        }
        for (outcome, word) in [
            (CallOutcome::Ok, "ok"),
            (CallOutcome::Error, "error"),
            (CallOutcome::Cancelled, "cancelled"),
            (CallOutcome::Refused, "refused"),
        ] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), word);
            assert_eq!(CallOutcome::parse(word), Some(outcome));
            assert_eq!(
                serde_json::from_value::<CallOutcome>(word.into()).unwrap(),
                outcome
            );
        }
        assert_eq!(CacheLevel::parse("memory"), None);
        assert_eq!(format!("[{:<6}]", CacheLevel::L1), "[l1    ]");
    }
}
