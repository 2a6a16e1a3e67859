//! The session: what one workspace's requests are served from — the document store, the archive,
//! the workspace root, the configuration (through the gateway, which holds the current one), the
//! tokenizer, the gateway itself and where answers and chat history go. The LSP edge makes one at
//! `initialize`; every CLI command that needs one makes one over the file it is given. Both then
//! call the same functions: context packs (`packs.rs`), the agent pipeline — target, pack, prompt,
//! call, outcome (`agent.rs`) — chat turns (`chat.rs`) and workflows (`workflow.rs`).
//!
//! It knows nothing of the protocol: documents are named by their store key and places are byte
//! offsets; `path_of` (given by whoever made the session) says which file a key is. It never
//! talks to a model except through the gateway, and builds every prompt as an `llm::Prompt`,
//! which redacts every part.

mod agent;
mod chat;
pub mod diff;
mod packs;
mod workflow;

pub use agent::{Outcome, Prepared, Problem, Step, Task};
pub use chat::ChatTurn;
pub use packs::{Want, workspace_path};
pub use workflow::WorkflowReport;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::agents::history::History;
use crate::archive::{Archive, IndexConfig};
use crate::context::{Budgets, Tokenizer};
use crate::documents::DocumentStore;
use crate::llm::Gateway;

/// Which file a document key names, if any.
pub type PathOf = fn(&str) -> Option<PathBuf>;

/// Everything a request is served from; cheap to clone (every field is shared).
#[derive(Clone)]
pub struct Session {
    pub store: Arc<DocumentStore>,
    /// Set once the archive is open; never when it cannot be.
    pub archive: Arc<OnceLock<Arc<Archive>>>,
    pub root: Option<PathBuf>,
    /// What the archive admits (ignore rules, size cap) and how files are chunked.
    pub index: IndexConfig,
    pub tokenizer: Arc<Tokenizer>,
    /// The only door to models; it holds the current configuration.
    pub gateway: Gateway,
    /// Tier budgets that win over the agent's and the configuration's (the CLI's `--budgets`).
    pub budgets: Option<Budgets>,
    /// Where document answers are written.
    pub answers: PathBuf,
    pub path_of: PathOf,
    /// The chat history, opened on the first chat turn.
    history: Arc<OnceLock<Arc<History>>>,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<DocumentStore>,
        archive: Arc<OnceLock<Arc<Archive>>>,
        root: Option<PathBuf>,
        index: IndexConfig,
        tokenizer: Arc<Tokenizer>,
        gateway: Gateway,
        budgets: Option<Budgets>,
        cache_dir: Option<&Path>,
        path_of: PathOf,
    ) -> Session {
        Session {
            store,
            archive,
            root,
            index,
            tokenizer,
            gateway,
            budgets,
            answers: crate::archive::cache_base(cache_dir).join("answers"),
            path_of,
            history: Arc::new(OnceLock::new()),
        }
    }

    /// The agents declared now: built-ins overridden and extended by the configuration.
    pub fn agents(&self) -> Vec<crate::agents::Agent> {
        crate::agents::declared(&self.gateway.config())
    }

    /// The agent named `name`, or an error that lists the ones there are.
    pub fn agent(&self, name: &str) -> Result<crate::agents::Agent, String> {
        let declared = self.agents();
        if let Some(agent) = declared.iter().find(|a| a.name == name) {
            return Ok(agent.clone());
        }
        let names: Vec<&str> = declared.iter().map(|a| a.name.as_str()).collect();
        Err(format!(
            "no agent named `{name}`; there are {}",
            names.join(", ")
        ))
    }

    /// The tier budgets for a run of `agent` (or for a pack no agent asked for): per tier, the
    /// agent's own, else the configuration's `[context]`, else the default — unless the session
    /// was given budgets that win.
    pub fn budgets(&self, agent: Option<&crate::agents::Agent>) -> Budgets {
        self.budgets.unwrap_or_else(|| {
            Budgets::resolve(
                agent.and_then(|a| a.budgets),
                self.gateway.config().context.tiers(),
            )
        })
    }

    /// What `build` makes with `agent`'s tier budgets, narrowed to fit the smallest context
    /// window on its route with room for its answer (`Gateway::prompt_room`): the tiers first
    /// get at most that room together, then, the whole prompt counted, lose what it still holds
    /// too many (a few builds at most; packs are deterministic, so the inspector shows the same).
    /// Budgets the session was given (`--budgets`) are kept as they are.
    pub fn fit_to_window(
        &self,
        agent: &crate::agents::Agent,
        mut build: impl FnMut(Budgets) -> Prepared,
    ) -> Prepared {
        let budgets = self.budgets(Some(agent));
        let room = match self.budgets {
            Some(_) => None,
            None => self.gateway.prompt_room(
                &agent.name,
                agent.route.as_deref(),
                crate::llm::Priority::OnDemand,
                agent.max_tokens,
            ),
        };
        let Some(room) = room else {
            return build(budgets);
        };
        let mut budgets = budgets.within(room);
        let mut built = build(budgets);
        for _ in 0..3 {
            let tokens = self.gateway.prompt_tokens(&built.request.prompt);
            let over = tokens.saturating_sub(u64::from(room));
            if over == 0 || budgets.total() <= 1 {
                break;
            }
            // A little more than the excess: a fidelity step rarely lands on the token.
            let over = u32::try_from(over + over / 8 + 16).unwrap_or(u32::MAX);
            budgets = budgets.within(budgets.total().saturating_sub(over));
            built = build(budgets);
        }
        built
    }

    fn history(&self) -> Result<Arc<History>, String> {
        if let Some(h) = self.history.get() {
            return Ok(h.clone());
        }
        let opened = Arc::new(History::open(&crate::agents::history::data_dir())?);
        Ok(self.history.get_or_init(|| opened).clone())
    }

    /// Writes an answer under the answers directory, named by time, `name` and the document.
    pub fn write_answer(
        &self,
        name: &str,
        title: &str,
        rel: &str,
        text: &str,
    ) -> Result<PathBuf, String> {
        let dir = &self.answers;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot write the answer to {}: {e}", dir.display()))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let file: String = rel
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let path = dir.join(format!("{stamp}-{name}-{file}.md"));
        let body = format!("# {title} — {rel}\n\n{text}\n");
        std::fs::write(&path, body).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }
}
