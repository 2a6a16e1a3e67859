//! Daily spending: the tokens each provider and each agent used today (UTC, on the gateway's
//! clock), and the refusals when a daily budget is spent. The day rolls over on the first use
//! after midnight; on start the gateway loads today's spending from the audit. Nothing here
//! decides routes, talks to providers or writes the audit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::gateway::GatewayError;
use super::provider::Failure;
use super::store::Spent;

const DAY_MS: i64 = 86_400_000;

/// The UTC day of a wall-clock time in milliseconds since the epoch.
pub(super) fn day(wall_ms: i64) -> i64 {
    wall_ms.div_euclid(DAY_MS)
}

/// The first millisecond of a UTC day.
pub(super) fn day_start_ms(day: i64) -> i64 {
    day * DAY_MS
}

/// Tokens spent today, for `strata/stats`.
#[derive(Clone, Debug, Default)]
pub struct SpentToday {
    pub providers: BTreeMap<String, u64>,
    pub agents: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Spend {
    day: i64,
    providers: HashMap<String, u64>,
    agents: HashMap<String, u64>,
}

/// Today's spending per provider and per agent. Every method takes `today` (see [`day`]).
#[derive(Debug, Default)]
pub(super) struct Spending {
    spend: Mutex<Spend>,
}

impl Spending {
    /// Adds what the audit says was spent today (the gateway has just attached its store).
    pub(super) fn load(&self, today: i64, providers: Spent, agents: Spent) {
        let mut spend = self.lock();
        spend.day = today;
        for (p, t) in providers {
            *spend.providers.entry(p).or_default() += t;
        }
        for (a, t) in agents {
            *spend.agents.entry(a).or_default() += t;
        }
    }

    /// Refuses a call of `agent` whose daily `budget` is spent.
    pub(super) fn check_agent(
        &self,
        today: i64,
        agent: &str,
        budget: Option<u64>,
    ) -> Result<(), GatewayError> {
        let Some(budget) = budget else {
            return Ok(());
        };
        let spent = self.today_locked(today).agents.get(agent).copied();
        let spent = spent.unwrap_or(0);
        if spent >= budget {
            return Err(GatewayError::BudgetSpent {
                scope: format!("agent `{agent}`"),
                budget,
                spent,
            });
        }
        Ok(())
    }

    /// Refuses `provider` for the rest of the day once its daily `budget` is spent.
    pub(super) fn check_provider(
        &self,
        today: i64,
        provider: &str,
        budget: Option<u64>,
    ) -> Result<(), Failure> {
        let Some(budget) = budget else {
            return Ok(());
        };
        let spent = self.today_locked(today).providers.get(provider).copied();
        let spent = spent.unwrap_or(0);
        if spent >= budget {
            return Err(Failure::Refused {
                message: format!(
                    "its daily token budget is spent ({spent} of {budget} tokens; resets at 00:00 UTC)"
                ),
            });
        }
        Ok(())
    }

    /// Counts `tokens` against both the provider and the agent.
    pub(super) fn add(&self, today: i64, provider: &str, agent: &str, tokens: u64) {
        let mut spend = self.today_locked(today);
        *spend.providers.entry(provider.to_owned()).or_default() += tokens;
        *spend.agents.entry(agent.to_owned()).or_default() += tokens;
    }

    /// What was spent today.
    pub(super) fn today(&self, today: i64) -> SpentToday {
        let spend = self.today_locked(today);
        SpentToday {
            providers: spend
                .providers
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            agents: spend.agents.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        }
    }

    /// The spending, emptied first when `today` is a new day.
    fn today_locked(&self, today: i64) -> std::sync::MutexGuard<'_, Spend> {
        let mut spend = self.lock();
        if spend.day != today {
            spend.day = today;
            spend.providers.clear();
            spend.agents.clear();
        }
        spend
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spend> {
        self.spend.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_refuses_until_the_next_utc_day() {
        let spending = Spending::default();
        let monday = day(3 * DAY_MS + 5);
        spending.load(
            monday,
            vec![("local".into(), 60)],
            vec![("explain".into(), 60)],
        );
        assert_eq!(spending.check_agent(monday, "explain", Some(100)), Ok(()));
        spending.add(monday, "local", "explain", 40);
        assert_eq!(
            spending.check_agent(monday, "explain", Some(100)),
            Err(GatewayError::BudgetSpent {
                scope: "agent `explain`".into(),
                budget: 100,
                spent: 100,
            })
        );
        assert!(spending.check_provider(monday, "local", Some(100)).is_err());
        assert_eq!(spending.check_provider(monday, "cloud", Some(100)), Ok(()));
        assert_eq!(spending.check_agent(monday, "explain", None), Ok(()));
        assert_eq!(spending.today(monday).agents["explain"], 100);

        let tuesday = day(day_start_ms(monday + 1));
        assert_eq!(tuesday, monday + 1);
        assert_eq!(spending.check_agent(tuesday, "explain", Some(100)), Ok(()));
        assert_eq!(spending.check_provider(tuesday, "local", Some(100)), Ok(()));
        assert!(spending.today(tuesday).providers.is_empty());
    }

    #[test]
    fn days_are_utc_and_negative_times_round_down() {
        assert_eq!(day(DAY_MS - 1), 0);
        assert_eq!(day(DAY_MS), 1);
        assert_eq!(day(-1), -1);
    }
}
