//! The configuration as the server sees it: the user's file, the editor's settings
//! (`initializationOptions.config`, then the `config` object of the `strata` section pulled with
//! `workspace/configuration`), and the repository's file, rebuilt whenever one of them may have
//! changed and handed to the gateway. `initializationOptions.context` is an editor layer of its
//! own, below the editor's `config`. The `ignore` patterns go to the archive's matcher, shared
//! with every `IndexConfig` the server makes. Problems are shown to the user once each.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use tower_lsp_server::ls_types::{ConfigurationItem, MessageType};

use super::client::Client;
use super::ext::ConfigReport;
use crate::archive::IgnorePatterns;
use crate::llm::Gateway;
use crate::llm::config::{
    ConfigBuilder, ConfigWarning, ContextConfig, Trust, repository_config_path, user_config_path,
};

/// What runs when the `ignore` patterns change.
type OnIgnoreChange = Box<dyn Fn() + Send + Sync>;

pub struct Settings {
    client: Client,
    gateway: Gateway,
    /// `--config` from the command line.
    config_file: Option<PathBuf>,
    root: OnceLock<Option<PathBuf>>,
    /// The client answers `workspace/configuration`.
    pull: OnceLock<bool>,
    /// `initializationOptions.context`.
    context: Mutex<ContextConfig>,
    /// `initializationOptions.config`.
    editor: Mutex<serde_json::Value>,
    /// The `config` of the pulled `strata` section; it replaces the above while present.
    pulled: Mutex<Option<serde_json::Value>>,
    /// The end of the last pull started: each pull waits for the one before it, so the pulls
    /// ask and apply in the order the client's notifications came (their tasks may start in any
    /// order).
    last_pull: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    report: Mutex<ConfigReport>,
    ignore: IgnorePatterns,
    on_ignore_change: OnceLock<OnIgnoreChange>,
    /// `[completion] mode` as it was when `initialize` told the client what to ask for, and the
    /// last other mode the user was told needs a restart.
    completion_mode: OnceLock<String>,
    told_mode: Mutex<Option<String>>,
}

impl Settings {
    pub fn new(
        client: Client,
        gateway: Gateway,
        config_file: Option<PathBuf>,
        ignore: IgnorePatterns,
    ) -> Settings {
        Settings {
            client,
            gateway,
            config_file,
            root: OnceLock::new(),
            pull: OnceLock::new(),
            context: Mutex::new(ContextConfig::default()),
            editor: Mutex::new(serde_json::Value::Null),
            pulled: Mutex::new(None),
            last_pull: Mutex::new(None),
            report: Mutex::new(ConfigReport::default()),
            ignore,
            on_ignore_change: OnceLock::new(),
            completion_mode: OnceLock::new(),
            told_mode: Mutex::new(None),
        }
    }

    /// From `initialize`: the workspace root, `initializationOptions.context` and `.config`, and
    /// whether the client can be asked for settings later.
    pub fn initialize(
        &self,
        root: Option<PathBuf>,
        context: ContextConfig,
        editor: Option<serde_json::Value>,
        pull: bool,
    ) {
        let _ = self.root.set(root);
        let _ = self.pull.set(pull);
        *self.context.lock().unwrap_or_else(|e| e.into_inner()) = context;
        *self.editor.lock().unwrap_or_else(|e| e.into_inner()) = editor.unwrap_or_default();
        self.load();
    }

    /// Records the `[completion] mode` the capabilities were chosen by (from `initialize`): a
    /// reload that changes it says that a restart is needed, since clients fix the completion
    /// capability at startup.
    pub fn fix_completion_mode(&self, mode: &str) {
        let _ = self.completion_mode.set(mode.to_owned());
    }

    /// Sets what runs each time a reload changes the `ignore` patterns (once).
    pub fn on_ignore_change(&self, run: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_ignore_change.set(Box::new(run));
    }

    pub fn report(&self) -> ConfigReport {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the client for the `strata` section (when it can answer) and reloads. Spawned: no
    /// handler waits on the client (and the client's deadline ends the wait).
    pub fn pull(self: Arc<Self>) {
        if self.pull.get() != Some(&true) {
            // The files may still have changed.
            self.load();
            return;
        }
        let (done, this_pull) = tokio::sync::oneshot::channel::<()>();
        let previous = self
            .last_pull
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(this_pull);
        tokio::spawn(async move {
            // Ended, answered or not (a dropped sender ends the wait too).
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let _done = done;
            let item = ConfigurationItem {
                scope_uri: None,
                section: Some("strata".into()),
            };
            match self.client.configuration(vec![item]).await {
                Ok(values) => {
                    // A section without `config` (never set, or removed) leaves the
                    // initialization options in force.
                    let config = values
                        .into_iter()
                        .next()
                        .and_then(|v| v.get("config").cloned())
                        .filter(|c| !c.is_null());
                    *self.pulled.lock().unwrap_or_else(|e| e.into_inner()) = config;
                    self.load();
                }
                Err(e) => tracing::info!("workspace/configuration: {e}"),
            }
        });
    }

    /// Rebuilds the configuration from its layers and hands it to the gateway.
    pub fn load(&self) {
        let mut builder = ConfigBuilder::new();
        if let Some(path) = user_config_path(self.config_file.as_deref()) {
            if self.config_file.is_some() && !path.exists() {
                builder.warnings.push(ConfigWarning {
                    source: path.display().to_string(),
                    message: "no such file".into(),
                });
            }
            builder.file(&path, Trust::User);
        }
        let context = self
            .context
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if context != ContextConfig::default() {
            builder.json(
                &serde_json::json!({ "context": context }),
                "initializationOptions.context",
            );
        }
        let pulled = self
            .pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let editor = pulled.unwrap_or_else(|| {
            self.editor
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        builder.json(&editor, "editor settings (strata.config)");
        if let Some(Some(root)) = self.root.get() {
            builder.file(&repository_config_path(root), Trust::Repository);
        }
        let config = builder.build();
        crate::resources::set(config.profile);
        let (ignore_changed, problems) = self.ignore.set(&config.ignore);
        for problem in problems {
            // Each pattern was checked with its layer; this is not expected.
            tracing::warn!("config: {problem}");
        }
        let warnings: Vec<String> = builder.warnings.iter().map(|w| w.to_string()).collect();
        let report = ConfigReport {
            sources: builder.sources.clone(),
            warnings: warnings.clone(),
            providers: config.providers.keys().cloned().collect(),
        };
        let new_warnings: Vec<String> = {
            let mut old = self.report.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = warnings
                .iter()
                .filter(|w| !old.warnings.contains(w))
                .cloned()
                .collect();
            *old = report;
            fresh
        };
        for warning in new_warnings {
            tracing::warn!("config: {warning}");
            self.client.show_message(
                MessageType::WARNING,
                format!("Strata config: {warning}. Strata keeps running without it."),
            );
        }
        if let Some(at_start) = self.completion_mode.get() {
            let now = &config.completion.mode;
            let mut told = self.told_mode.lock().unwrap_or_else(|e| e.into_inner());
            if now != at_start && told.as_ref() != Some(now) {
                self.client.show_message(
                    MessageType::WARNING,
                    format!(
                        "Strata: `[completion] mode` is now \"{now}\", but the editor was told \
                         \"{at_start}\" when Strata started; restart Strata (or reload the \
                         window) for the new mode to take effect"
                    ),
                );
            }
            *told = (now != at_start).then(|| now.clone());
        }
        self.gateway.reconfigure(config);
        if ignore_changed && let Some(run) = self.on_ignore_change.get() {
            run();
        }
    }
}
