//! Zed extension for Strata: it tells Zed how to start `strata serve --stdio` and hands the
//! user's `lsp.strata` settings to the server. Everything Strata offers then arrives through
//! standard LSP: agents as code actions, model suggestions as completion items.
//!
//! The decisions live in small pure functions (tested on the host with `cargo test`); the
//! `zed::Extension` methods only gather their inputs from Zed.

use zed_extension_api::{
    self as zed, EnvVars, LanguageServerId, Result, Worktree,
    serde_json::{self, Value},
    settings::{CommandSettings, LspSettings},
};

/// The id under `[language_servers]` in `extension.toml`, and the key under `lsp` in Zed's
/// settings.
const SERVER_ID: &str = "strata";
/// The executable looked up on the worktree's `PATH`.
const BINARY_NAME: &str = "strata";
/// How Strata is started when the user gives no arguments of their own.
const DEFAULT_ARGS: [&str; 2] = ["serve", "--stdio"];
/// The section the server asks for with `workspace/configuration`.
const CONFIGURATION_SECTION: &str = "strata";

struct StrataExtension;

impl zed::Extension for StrataExtension {
    fn new() -> Self {
        StrataExtension
    }

    fn language_server_command(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &Worktree,
    ) -> Result<zed::Command> {
        check_server_id(language_server_id.as_ref())?;
        let settings = lsp_settings(worktree)?;
        server_command(
            settings.binary.as_ref(),
            || worktree.which(BINARY_NAME),
            worktree.shell_env(),
        )
    }

    fn language_server_initialization_options(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &Worktree,
    ) -> Result<Option<Value>> {
        check_server_id(language_server_id.as_ref())?;
        Ok(lsp_settings(worktree)?.initialization_options)
    }

    fn language_server_workspace_configuration(
        &mut self,
        language_server_id: &LanguageServerId,
        worktree: &Worktree,
    ) -> Result<Option<Value>> {
        check_server_id(language_server_id.as_ref())?;
        Ok(workspace_configuration(lsp_settings(worktree)?.settings))
    }
}

zed::register_extension!(StrataExtension);

fn lsp_settings(worktree: &Worktree) -> Result<LspSettings> {
    LspSettings::for_worktree(SERVER_ID, worktree)
        .map_err(|e| format!("Strata: cannot read the `lsp.{SERVER_ID}` settings: {e}"))
}

fn check_server_id(id: &str) -> Result<()> {
    if id == SERVER_ID {
        Ok(())
    } else {
        Err(format!(
            "the Strata extension has no language server named `{id}` (only `{SERVER_ID}`)"
        ))
    }
}

/// The command that starts the server: the user's `binary.path` when set (and not blank), else
/// `strata` found on the worktree's `PATH` (`which` is only asked in that case), with the user's
/// `binary.arguments` or `serve --stdio`, and the shell environment with the user's
/// `binary.env` on top.
fn server_command(
    binary: Option<&CommandSettings>,
    which: impl FnOnce() -> Option<String>,
    shell_env: EnvVars,
) -> Result<zed::Command> {
    let configured = binary
        .and_then(|b| b.path.as_deref())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    let command = match configured {
        Some(path) => path,
        None => which().ok_or_else(not_found_message)?,
    };
    Ok(zed::Command {
        command,
        args: server_args(binary),
        env: merge_env(shell_env, binary),
    })
}

fn not_found_message() -> String {
    format!(
        "Strata: `{BINARY_NAME}` was not found on the PATH that Zed sees. Install it \
         (`cargo install --path .` in a Strata checkout) or set \
         `\"lsp\": {{ \"{SERVER_ID}\": {{ \"binary\": {{ \"path\": \"/path/to/{BINARY_NAME}\" }} }} }}` \
         in Zed's settings.json."
    )
}

/// The user's `binary.arguments` when given (even an empty list), else `serve --stdio`.
fn server_args(binary: Option<&CommandSettings>) -> Vec<String> {
    match binary.and_then(|b| b.arguments.as_ref()) {
        Some(args) => args.clone(),
        None => DEFAULT_ARGS.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// The shell environment with the user's `binary.env` applied: a variable the user sets
/// replaces the shell's value in place; new ones are appended in name order.
fn merge_env(mut env: EnvVars, binary: Option<&CommandSettings>) -> EnvVars {
    let Some(user) = binary.and_then(|b| b.env.as_ref()) else {
        return env;
    };
    let mut names: Vec<&String> = user.keys().collect();
    names.sort();
    for name in names {
        let value = user[name].clone();
        match env.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value,
            None => env.push((name.clone(), value)),
        }
    }
    env
}

/// What Zed answers `workspace/configuration` with. Zed looks the requested section up as a key
/// of this object, and Strata asks for the `strata` section and reads its `config`; so the
/// user's `lsp.strata.settings` (`{ "config": { … } }`) goes under a `strata` key. Settings
/// that already consist of a single `strata` key are passed as they are.
fn workspace_configuration(settings: Option<Value>) -> Option<Value> {
    let settings = settings.filter(|s| !s.is_null())?;
    let already_sectioned = settings
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.contains_key(CONFIGURATION_SECTION));
    if already_sectioned {
        return Some(settings);
    }
    let mut wrapped = serde_json::Map::new();
    wrapped.insert(CONFIGURATION_SECTION.to_owned(), settings);
    Some(Value::Object(wrapped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use zed_extension_api::serde_json::json;

    fn binary(path: Option<&str>, args: Option<&[&str]>, env: &[(&str, &str)]) -> CommandSettings {
        CommandSettings {
            path: path.map(str::to_owned),
            arguments: args.map(|a| a.iter().map(|s| (*s).to_owned()).collect()),
            env: if env.is_empty() {
                None
            } else {
                Some(
                    env.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<HashMap<_, _>>(),
                )
            },
        }
    }

    fn shell() -> EnvVars {
        vec![
            ("PATH".into(), "/usr/bin".into()),
            ("HOME".into(), "/home/u".into()),
        ]
    }

    #[test]
    fn defaults_to_strata_on_path_with_serve_stdio() {
        let cmd = server_command(None, || Some("/usr/local/bin/strata".into()), shell()).unwrap();
        assert_eq!(cmd.command, "/usr/local/bin/strata");
        assert_eq!(cmd.args, ["serve", "--stdio"]);
        assert_eq!(cmd.env, shell());
    }

    #[test]
    fn configured_path_wins_and_path_is_not_searched() {
        let b = binary(Some("/opt/strata/bin/strata"), None, &[]);
        let cmd = server_command(
            Some(&b),
            || panic!("which must not be called when binary.path is set"),
            shell(),
        )
        .unwrap();
        assert_eq!(cmd.command, "/opt/strata/bin/strata");
        assert_eq!(cmd.args, ["serve", "--stdio"]);
    }

    #[test]
    fn blank_path_falls_back_to_which() {
        let b = binary(Some("  "), None, &[]);
        let cmd = server_command(Some(&b), || Some("/bin/strata".into()), vec![]).unwrap();
        assert_eq!(cmd.command, "/bin/strata");
    }

    #[test]
    fn not_found_is_a_clear_error() {
        let err = server_command(None, || None, shell()).unwrap_err();
        assert!(err.contains("`strata` was not found"), "{err}");
        assert!(err.contains("\"binary\": { \"path\""), "{err}");
        assert!(err.contains("cargo install"), "{err}");
    }

    #[test]
    fn user_arguments_replace_the_defaults() {
        let b = binary(
            None,
            Some(&["serve", "--stdio", "--config", "/x.toml"]),
            &[],
        );
        assert_eq!(
            server_args(Some(&b)),
            ["serve", "--stdio", "--config", "/x.toml"]
        );
        let empty = binary(None, Some(&[]), &[]);
        assert!(server_args(Some(&empty)).is_empty());
        assert_eq!(server_args(None), ["serve", "--stdio"]);
    }

    #[test]
    fn user_env_overrides_and_extends_the_shell_env() {
        let b = binary(
            None,
            None,
            &[("STRATA_LOG", "debug"), ("HOME", "/tmp/h"), ("A_VAR", "1")],
        );
        let env = merge_env(shell(), Some(&b));
        assert_eq!(
            env,
            vec![
                ("PATH".to_owned(), "/usr/bin".to_owned()),
                ("HOME".to_owned(), "/tmp/h".to_owned()),
                ("A_VAR".to_owned(), "1".to_owned()),
                ("STRATA_LOG".to_owned(), "debug".to_owned()),
            ]
        );
        assert_eq!(merge_env(shell(), None), shell());
    }

    #[test]
    fn settings_are_served_under_the_strata_section() {
        let settings = json!({ "config": { "completion": { "mode": "items" } } });
        let answer = workspace_configuration(Some(settings.clone())).unwrap();
        // What Zed does with the answer: look the requested section up as a key.
        assert_eq!(answer.get("strata"), Some(&settings));
        assert_eq!(
            answer["strata"]["config"]["completion"]["mode"],
            json!("items")
        );
    }

    #[test]
    fn already_sectioned_settings_pass_through() {
        let settings = json!({ "strata": { "config": { "routes": { "default": ["local"] } } } });
        assert_eq!(
            workspace_configuration(Some(settings.clone())),
            Some(settings)
        );
        // A `strata` key next to others is an ordinary setting and gets wrapped.
        let mixed = json!({ "strata": 1, "config": {} });
        assert_eq!(
            workspace_configuration(Some(mixed.clone())),
            Some(json!({ "strata": mixed }))
        );
    }

    #[test]
    fn no_settings_no_configuration() {
        assert_eq!(workspace_configuration(None), None);
        assert_eq!(workspace_configuration(Some(Value::Null)), None);
    }

    #[test]
    fn only_the_strata_server_is_known() {
        assert!(check_server_id("strata").is_ok());
        assert!(check_server_id("rust-analyzer").is_err());
    }
}
