//! Workflows: agents run as a directed acyclic graph (`[workflows.NAME] steps = [{agent,
//! depends_on}]`), at most `max_parallel_agents` at a time. A step sees the outputs of the steps
//! it depends on; a step that fails stops only the steps that depend on it. The built-in
//! `review-all` runs security, performance and style reviewers in parallel, then a summary.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

use crate::llm::Config;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The step's name, for `depends_on` (default: the agent's name).
    #[serde(default)]
    pub id: String,
    pub agent: String,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workflow {
    pub name: String,
    pub steps: Vec<Step>,
    pub max_parallel: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Declared {
    steps: Vec<Step>,
    #[serde(default)]
    max_parallel_agents: Option<usize>,
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    Done {
        output: String,
    },
    Failed {
        error: String,
    },
    /// Not run: a step it depends on failed.
    Skipped {
        because: String,
    },
}

const DEFAULT_PARALLEL: usize = 2;

fn review_all() -> Workflow {
    let step = |agent: &str, deps: &[&str]| Step {
        id: agent.to_owned(),
        agent: agent.to_owned(),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    };
    Workflow {
        name: "review-all".into(),
        steps: vec![
            step("review-security", &[]),
            step("review-performance", &[]),
            step("review-style", &[]),
            step(
                "review-summary",
                &["review-security", "review-performance", "review-style"],
            ),
        ],
        max_parallel: 3,
    }
}

/// The built-in workflows and the config's, checked; a broken one is reported, not run.
pub fn workflows(config: &Config) -> (Vec<Workflow>, Vec<String>) {
    let mut out: BTreeMap<String, Workflow> = BTreeMap::new();
    out.insert("review-all".into(), review_all());
    let mut problems = Vec::new();
    for (name, value) in &config.workflows {
        let declared = match Declared::deserialize(value.clone()) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("workflows.{name}: {e}"));
                continue;
            }
        };
        let mut steps = declared.steps;
        for step in &mut steps {
            if step.id.is_empty() {
                step.id = step.agent.clone();
            }
        }
        let workflow = Workflow {
            name: name.clone(),
            steps,
            max_parallel: declared
                .max_parallel_agents
                .unwrap_or(DEFAULT_PARALLEL)
                .clamp(1, 16),
        };
        match check(&workflow) {
            Ok(()) => {
                out.insert(name.clone(), workflow);
            }
            Err(e) => problems.push(format!("workflows.{name}: {e}")),
        }
    }
    (out.into_values().collect(), problems)
}

/// Unique step ids, known dependencies, no cycle.
pub fn check(workflow: &Workflow) -> Result<(), String> {
    let mut ids = HashMap::new();
    for (i, step) in workflow.steps.iter().enumerate() {
        if ids.insert(step.id.as_str(), i).is_some() {
            return Err(format!("two steps are named `{}`", step.id));
        }
    }
    for step in &workflow.steps {
        for dep in &step.depends_on {
            if !ids.contains_key(dep.as_str()) {
                return Err(format!(
                    "`{}` depends on `{dep}`, which is not a step",
                    step.id
                ));
            }
        }
    }
    // Kahn's algorithm: every step must become ready.
    let mut waiting: Vec<usize> = workflow.steps.iter().map(|s| s.depends_on.len()).collect();
    let mut ready: Vec<usize> = (0..waiting.len()).filter(|&i| waiting[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = ready.pop() {
        seen += 1;
        for (j, step) in workflow.steps.iter().enumerate() {
            if step.depends_on.iter().any(|d| d == &workflow.steps[i].id) {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    if seen < workflow.steps.len() {
        return Err("its steps depend on each other in a cycle".into());
    }
    Ok(())
}

/// Runs the workflow: `run(step, inputs)` gets the outputs of the step's dependencies as
/// (step id, output), in `depends_on` order. Results by step id.
pub async fn run<F, Fut>(workflow: &Workflow, run: F) -> BTreeMap<String, StepResult>
where
    F: Fn(Step, Vec<(String, String)>) -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let mut results: BTreeMap<String, StepResult> = BTreeMap::new();
    let mut started: Vec<bool> = vec![false; workflow.steps.len()];
    let mut running = FuturesUnordered::new();
    loop {
        // Skip what can never run; start what is ready, up to the limit.
        for (i, step) in workflow.steps.iter().enumerate() {
            if started[i] {
                continue;
            }
            let failed = step.depends_on.iter().find(|d| {
                matches!(
                    results.get(d.as_str()),
                    Some(StepResult::Failed { .. } | StepResult::Skipped { .. })
                )
            });
            if let Some(dep) = failed {
                started[i] = true;
                results.insert(
                    step.id.clone(),
                    StepResult::Skipped {
                        because: format!("`{dep}` did not finish"),
                    },
                );
                continue;
            }
            let ready = step
                .depends_on
                .iter()
                .all(|d| matches!(results.get(d.as_str()), Some(StepResult::Done { .. })));
            if ready && running.len() < workflow.max_parallel.max(1) {
                started[i] = true;
                let inputs = step
                    .depends_on
                    .iter()
                    .filter_map(|d| match results.get(d.as_str()) {
                        Some(StepResult::Done { output }) => Some((d.clone(), output.clone())),
                        _ => None,
                    })
                    .collect();
                let id = step.id.clone();
                let future = run(step.clone(), inputs);
                running.push(async move { (id, future.await) });
            }
        }
        match running.next().await {
            Some((id, Ok(output))) => {
                results.insert(id, StepResult::Done { output });
            }
            Some((id, Err(error))) => {
                results.insert(id, StepResult::Failed { error });
            }
            None => {
                if started.iter().all(|s| *s) {
                    return results;
                }
                // Nothing running and nothing startable: only unreachable steps remain (a
                // checked workflow has none).
                for (i, step) in workflow.steps.iter().enumerate() {
                    if !started[i] {
                        results.insert(
                            step.id.clone(),
                            StepResult::Skipped {
                                because: "its dependencies never finished".into(),
                            },
                        );
                    }
                }
                return results;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn step(id: &str, deps: &[&str]) -> Step {
        Step {
            id: id.into(),
            agent: id.into(),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn steps_run_in_dependency_order_within_the_parallel_limit() {
        let wf = Workflow {
            name: "w".into(),
            steps: vec![
                step("a", &[]),
                step("b", &[]),
                step("c", &[]),
                step("d", &["a", "b"]),
            ],
            max_parallel: 2,
        };
        let active = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        let results = run(&wf, |s, inputs| {
            let (active, most, order) = (&active, &most, &order);
            async move {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                order.lock().unwrap().push(s.id.clone());
                active.fetch_sub(1, Ordering::SeqCst);
                let seen: Vec<String> = inputs
                    .iter()
                    .map(|(id, out)| format!("{id}={out}"))
                    .collect();
                Ok(format!("{}[{}]", s.id, seen.join(",")))
            }
        })
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(
            results["d"],
            StepResult::Done {
                output: "d[a=a[],b=b[]]".into()
            }
        );
        let order = order.lock().unwrap();
        let at = |id: &str| order.iter().position(|o| o == id).unwrap();
        assert!(at("d") > at("a") && at("d") > at("b"), "{order:?}");
    }

    #[tokio::test]
    async fn a_failure_stops_only_its_dependents() {
        let wf = Workflow {
            name: "w".into(),
            steps: vec![
                step("a", &[]),
                step("b", &["a"]),
                step("c", &["b"]),
                step("x", &[]),
            ],
            max_parallel: 4,
        };
        let results = run(&wf, |s, _| async move {
            if s.id == "a" {
                Err("no model".into())
            } else {
                Ok(s.id)
            }
        })
        .await;
        assert!(matches!(results["a"], StepResult::Failed { .. }));
        assert!(matches!(results["b"], StepResult::Skipped { .. }));
        assert!(matches!(results["c"], StepResult::Skipped { .. }));
        assert_eq!(results["x"], StepResult::Done { output: "x".into() });
    }

    #[test]
    fn broken_workflows_are_reported() {
        let wf = |steps| Workflow {
            name: "w".into(),
            steps,
            max_parallel: 1,
        };
        assert!(
            check(&wf(vec![step("a", &["b"]), step("b", &["a"])]))
                .unwrap_err()
                .contains("cycle")
        );
        assert!(
            check(&wf(vec![step("a", &["nope"])]))
                .unwrap_err()
                .contains("not a step")
        );
        assert!(
            check(&wf(vec![step("a", &[]), step("a", &[])]))
                .unwrap_err()
                .contains("two steps")
        );
        assert!(check(&review_all()).is_ok());
        let mut b = crate::llm::ConfigBuilder::new();
        b.text(
            "[workflows.ship]\nmax_parallel_agents = 3\nsteps = [{agent = \"tests\"}, {agent = \"review\", depends_on = [\"tests\"]}]\n\n\
             [workflows.bad]\nsteps = [{agent = \"a\", depends_on = [\"a\"]}]\n",
            "t.toml",
            crate::llm::Trust::User,
        );
        let (found, problems) = workflows(&b.build());
        assert_eq!(
            found.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(),
            ["review-all", "ship"]
        );
        assert_eq!(found[1].max_parallel, 3);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
