//! The editor configurations in `editors/` and the settings examples in `docs/editors/`,
//! checked against what each editor accepts and what the server reads. Nothing here starts an
//! editor. The Helix file is parsed the way Helix reads it, its options go through the server's
//! own configuration code, and one test hands them to the real binary as Helix would. The Zed
//! extension's manifest is checked against its crate, and the JSON examples in the Zed guide go
//! through the same configuration code.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strata::llm::config::ConfigBuilder;
use support::Lsp;

/// The feature names Helix 25.07 accepts in `only-features` / `except-features`: its
/// `LanguageServerFeature` enum, serialized in kebab-case (helix-core, `syntax/config.rs`), as
/// recorded in the project's notes on editors (`shared/notes/editors.md`). A name outside this
/// list makes Helix reject the whole languages.toml.
const HELIX_FEATURES: &[&str] = &[
    "format",
    "goto-declaration",
    "goto-definition",
    "goto-type-definition",
    "goto-reference",
    "goto-implementation",
    "signature-help",
    "hover",
    "document-highlight",
    "completion",
    "code-action",
    "workspace-command",
    "document-symbols",
    "workspace-symbols",
    "diagnostics",
    "rename-symbol",
    "inlay-hints",
    "document-colors",
];

/// What Strata serves, in Helix's names. The Helix file must give Strata exactly these.
const STRATA_FEATURES: &[&str] = &[
    "completion",
    "code-action",
    "workspace-command",
    "document-symbols",
    "workspace-symbols",
    "diagnostics",
];

/// Each Helix language Strata has a grammar for, with the server Helix runs for it by default.
/// That server must stay listed, and stay first, because a user's `language-servers` replaces
/// Helix's own list.
const HELIX_LANGUAGES: &[(&str, &str)] = &[
    ("rust", "rust-analyzer"),
    ("typescript", "typescript-language-server"),
    ("tsx", "typescript-language-server"),
    ("javascript", "typescript-language-server"),
    ("jsx", "typescript-language-server"),
];

/// The top-level `initializationOptions` keys the server reads (docs/lsp-extensions.md).
const INIT_OPTIONS: &[&str] = &[
    "documentSymbols",
    "foldingRanges",
    "chunks",
    "cacheDir",
    "indexThreads",
    "context",
    "config",
];

/// The languages the Zed extension registers Strata for (Zed's language names).
const ZED_LANGUAGES: &[&str] = &["Rust", "TypeScript", "TSX", "JavaScript"];

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn helix_file() -> toml::Table {
    read("editors/helix/languages.toml")
        .parse()
        .expect("editors/helix/languages.toml is TOML")
}

fn to_json(value: &toml::Value) -> Value {
    serde_json::to_value(value).expect("TOML converts to JSON")
}

/// Problems with gateway settings (the `config` object) as the server would report them, given
/// as editor settings.
fn config_problems(config: &Value, source: &str) -> Vec<String> {
    let mut builder = ConfigBuilder::new();
    builder.json(config, source);
    builder.warnings.iter().map(|w| w.to_string()).collect()
}

/// Problems with initialization options: unknown top-level keys, and whatever the server says
/// about their `config`.
fn init_option_problems(options: &Value, source: &str) -> Vec<String> {
    let Some(object) = options.as_object() else {
        return vec![format!(
            "{source}: initialization options must be an object"
        )];
    };
    let mut problems: Vec<String> = object
        .keys()
        .filter(|k| !INIT_OPTIONS.contains(&k.as_str()))
        .map(|k| format!("{source}: `{k}` is not an initialization option Strata reads"))
        .collect();
    if let Some(config) = object.get("config") {
        problems.extend(config_problems(config, &format!("{source}.config")));
    }
    problems
}

/// A `language-servers` entry: its name and its feature lists.
struct Entry {
    name: String,
    only: Option<Vec<String>>,
    except: Option<Vec<String>>,
}

fn entry(value: &toml::Value, problems: &mut Vec<String>, language: &str) -> Option<Entry> {
    let strings = |v: &toml::Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    match value {
        toml::Value::String(name) => Some(Entry {
            name: name.clone(),
            only: None,
            except: None,
        }),
        toml::Value::Table(table) => {
            for key in table.keys() {
                if !["name", "only-features", "except-features"].contains(&key.as_str()) {
                    problems.push(format!("{language}: unknown key `{key}` in a server entry"));
                }
            }
            let Some(name) = table.get("name").and_then(|n| n.as_str()) else {
                problems.push(format!("{language}: a server entry without a name"));
                return None;
            };
            let mut list = |key: &str| {
                let value = table.get(key)?;
                let list = strings(value);
                if list.is_none() {
                    problems.push(format!(
                        "{language}: `{key}` of {name} is not a list of names"
                    ));
                }
                list
            };
            let only = list("only-features");
            let except = list("except-features");
            Some(Entry {
                name: name.to_owned(),
                only,
                except,
            })
        }
        other => {
            problems.push(format!(
                "{language}: server entry {other} is neither a name nor a table"
            ));
            None
        }
    }
}

/// Everything wrong with a Helix languages.toml for Strata; empty when it is right.
fn helix_problems(file: &toml::Table) -> Vec<String> {
    let mut problems = Vec::new();
    // The server definition.
    match file.get("language-server").and_then(|s| s.get("strata")) {
        None => problems.push("no [language-server.strata]".to_owned()),
        Some(server) => {
            if server.get("command").and_then(|c| c.as_str()) != Some("strata") {
                problems.push(format!(
                    "command is {:?}, not \"strata\"",
                    server.get("command")
                ));
            }
            let args = server.get("args").map(to_json);
            if args != Some(json!(["serve", "--stdio"])) {
                problems.push(format!("args are {args:?}, not [\"serve\", \"--stdio\"]"));
            }
            // Helix sends `config` as initializationOptions.
            if let Some(config) = server.get("config") {
                problems.extend(init_option_problems(
                    &to_json(config),
                    "[language-server.strata].config",
                ));
            }
        }
    }
    // The languages.
    let languages = file
        .get("language")
        .and_then(|l| l.as_array())
        .cloned()
        .unwrap_or_default();
    for (name, primary) in HELIX_LANGUAGES {
        let matching: Vec<&toml::Value> = languages
            .iter()
            .filter(|l| l.get("name").and_then(|n| n.as_str()) == Some(*name))
            .collect();
        let [language] = matching.as_slice() else {
            problems.push(format!(
                "{name}: {} [[language]] entries, expected one",
                matching.len()
            ));
            continue;
        };
        let Some(servers) = language.get("language-servers").and_then(|s| s.as_array()) else {
            problems.push(format!("{name}: no language-servers list"));
            continue;
        };
        let entries: Vec<Entry> = servers
            .iter()
            .filter_map(|s| entry(s, &mut problems, name))
            .collect();
        if entries.first().map(|e| e.name.as_str()) != Some(*primary) {
            problems.push(format!("{name}: {primary} must be listed first"));
        }
        let mut seen = BTreeSet::new();
        for e in &entries {
            if !seen.insert(e.name.as_str()) {
                problems.push(format!("{name}: {} listed twice", e.name));
            }
            if e.only.is_some() && e.except.is_some() {
                problems.push(format!(
                    "{name}: {} has both only-features and except-features",
                    e.name
                ));
            }
            for feature in e.only.iter().chain(e.except.iter()).flatten() {
                if !HELIX_FEATURES.contains(&feature.as_str()) {
                    problems.push(format!(
                        "{name}: `{feature}` (for {}) is not a feature name Helix 25.07 accepts",
                        e.name
                    ));
                }
            }
        }
        match entries.iter().find(|e| e.name == "strata") {
            None => problems.push(format!("{name}: strata is not listed")),
            Some(strata) => {
                let wanted: BTreeSet<&str> = STRATA_FEATURES.iter().copied().collect();
                let given: BTreeSet<&str> =
                    strata.only.iter().flatten().map(String::as_str).collect();
                if given != wanted {
                    problems.push(format!(
                        "{name}: strata's only-features are {given:?}, expected {wanted:?}"
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn helix_file_lists_strata_after_each_primary_server() {
    let problems = helix_problems(&helix_file());
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The check above must be able to fail: each of these mistakes is caught.
#[test]
fn helix_check_catches_mistakes() {
    fn mutated(change: impl FnOnce(&mut toml::Table)) -> Vec<String> {
        let mut file = helix_file();
        change(&mut file);
        helix_problems(&file)
    }
    fn language<'a>(file: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
        file["language"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .map(|l| l.as_table_mut().unwrap())
            .find(|l| l["name"].as_str() == Some(name))
            .unwrap()
    }
    fn strata_entry<'a>(file: &'a mut toml::Table, name: &str) -> &'a mut toml::Table {
        language(file, name)["language-servers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .filter_map(|s| s.as_table_mut())
            .find(|s| s["name"].as_str() == Some("strata"))
            .unwrap()
    }

    let misspelled = mutated(|f| {
        let features = strata_entry(f, "rust")["only-features"]
            .as_array_mut()
            .unwrap();
        features[1] = "code-actions".into();
    });
    assert!(
        misspelled.iter().any(|p| p.contains("`code-actions`")),
        "{misspelled:#?}"
    );

    let rust_analyzer_dropped = mutated(|f| {
        language(f, "rust")["language-servers"]
            .as_array_mut()
            .unwrap()
            .remove(0);
    });
    assert!(
        rust_analyzer_dropped
            .iter()
            .any(|p| p.contains("rust-analyzer must be listed first")),
        "{rust_analyzer_dropped:#?}"
    );

    let strata_dropped = mutated(|f| {
        language(f, "tsx")["language-servers"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    assert!(
        strata_dropped.contains(&"tsx: strata is not listed".to_owned()),
        "{strata_dropped:#?}"
    );

    let unserved = mutated(|f| {
        let features = strata_entry(f, "javascript")["only-features"]
            .as_array_mut()
            .unwrap();
        features.push("hover".into());
    });
    assert!(
        unserved
            .iter()
            .any(|p| p.starts_with("javascript: strata's only-features")),
        "{unserved:#?}"
    );

    let wrong_args = mutated(|f| {
        f["language-server"]["strata"]["args"] = toml::Value::Array(vec!["serve".into()]);
    });
    assert!(
        wrong_args.iter().any(|p| p.starts_with("args are")),
        "{wrong_args:#?}"
    );

    let bad_option = mutated(|f| {
        f["language-server"]["strata"]["config"]["config"]["completion"]["mode"] =
            toml::Value::Integer(3);
    });
    assert!(
        bad_option.iter().any(|p| p.contains(".config")),
        "{bad_option:#?}"
    );

    let unknown_option = mutated(|f| {
        f["language-server"]["strata"]["config"]
            .as_table_mut()
            .unwrap()
            .insert("documentSymbol".into(), true.into());
    });
    assert!(
        unknown_option
            .iter()
            .any(|p| p.contains("`documentSymbol`")),
        "{unknown_option:#?}"
    );
}

/// What Helix does with the file, done against the real server: `config` becomes the
/// initialization options, and Helix answers `workspace/configuration` for the `strata` section
/// by walking `config` (it has no `strata` key, so the answer is null and the options stay).
#[test]
fn helix_options_start_the_server_with_completion_items_and_no_warnings() {
    let file = helix_file();
    let config = to_json(&file["language-server"]["strata"]["config"]);
    let mut lsp = Lsp::spawn();
    // The parts of Helix's client capabilities that matter here: no inlineCompletion, and it
    // answers workspace/configuration.
    let capabilities = lsp.initialize(
        json!({
            "workspace": { "configuration": true, "executeCommand": { "dynamicRegistration": false } },
            "textDocument": {
                "completion": { "completionItem": { "snippetSupport": true } },
                "codeAction": { "codeActionLiteralSupport": { "codeActionKind": { "valueSet": [""] } } }
            },
            "window": { "workDoneProgress": true }
        }),
        config.clone(),
    );
    assert!(
        capabilities.get("completionProvider").is_some(),
        "{capabilities:#}"
    );
    assert!(
        capabilities.get("inlineCompletionProvider").is_none(),
        "{capabilities:#}"
    );
    let asked = lsp.answer(
        "workspace/configuration",
        json!([helix_section(&config, "strata")]),
    );
    assert_eq!(asked["items"][0]["section"], "strata");
    let stats = lsp
        .request("strata/stats", Value::Null)
        .expect("strata/stats");
    assert_eq!(
        stats["config"]["warnings"],
        json!([]),
        "{:#}",
        stats["config"]
    );
    assert!(
        stats["config"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("editor settings"))),
        "{:#}",
        stats["config"]
    );
    lsp.finish();
}

/// Helix's answer to `workspace/configuration` for one section: the server's `config`, walked
/// one dotted part at a time, null where a part is missing.
fn helix_section(config: &Value, section: &str) -> Value {
    section
        .split('.')
        .try_fold(config, |value, part| value.get(part))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The fenced blocks of one language in a markdown file.
fn code_blocks(markdown: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(tag)) if tag.trim() == language => current = Some(String::new()),
            (Some(block), Some("")) => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unclosed ```{language} block");
    blocks
}

#[test]
fn helix_guide_examples_are_valid() {
    let guide = read("docs/editors/helix.md");
    let blocks = code_blocks(&guide, "toml");
    assert!(blocks.len() >= 2, "{blocks:#?}");
    for block in blocks {
        let table: toml::Table = block
            .parse()
            .unwrap_or_else(|e| panic!("not TOML: {e}\n{block}"));
        if let Some(options) = table
            .get("language-server")
            .and_then(|s| s.get("strata"))
            .and_then(|s| s.get("config"))
        {
            let problems = init_option_problems(&to_json(options), "docs/editors/helix.md");
            assert!(problems.is_empty(), "{problems:#?}\n{block}");
        }
    }
}

#[test]
fn zed_extension_manifest_matches_its_crate() {
    let manifest: toml::Table = read("editors/zed/extension.toml").parse().unwrap();
    assert_eq!(manifest["id"].as_str(), Some("strata"));
    assert_eq!(manifest["name"].as_str(), Some("Strata"));
    assert_eq!(manifest["schema_version"].as_integer(), Some(1));
    for key in ["description", "repository"] {
        assert!(
            manifest[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key}"
        );
    }
    assert!(!manifest["authors"].as_array().unwrap().is_empty());
    let servers = manifest["language_servers"].as_table().unwrap();
    assert_eq!(servers.keys().collect::<Vec<_>>(), ["strata"]);
    assert_eq!(servers["strata"]["name"].as_str(), Some("Strata"));
    assert_eq!(
        to_json(&servers["strata"]["languages"]),
        json!(ZED_LANGUAGES)
    );

    let cargo: toml::Table = read("editors/zed/Cargo.toml").parse().unwrap();
    assert_eq!(cargo["package"]["name"].as_str(), Some("zed-strata"));
    assert_eq!(
        cargo["package"]["version"].as_str(),
        manifest["version"].as_str(),
        "extension.toml and Cargo.toml disagree on the version"
    );
    assert_eq!(to_json(&cargo["lib"]["crate-type"]), json!(["cdylib"]));
    assert!(
        cargo["workspace"].is_table(),
        "editors/zed must be its own workspace root"
    );
    let api = cargo["dependencies"]["zed_extension_api"].as_str().unwrap();
    assert!(api.starts_with("0.7"), "zed_extension_api {api}");

    // The server id the extension code answers to is the one the manifest registers.
    let lib = read("editors/zed/src/lib.rs");
    assert!(
        lib.contains("const SERVER_ID: &str = \"strata\";"),
        "SERVER_ID in editors/zed/src/lib.rs"
    );
    assert!(read("editors/zed/LICENSE").starts_with("MIT License"));
    assert!(
        read("editors/zed/.gitignore")
            .lines()
            .any(|l| l == "target/")
    );
}

#[test]
fn zed_guide_settings_are_ones_strata_reads() {
    let guide = read("docs/editors/zed.md");
    let blocks = code_blocks(&guide, "json");
    let mut seen_lsp = false;
    let mut seen_languages = false;
    for block in blocks {
        let value: Value =
            serde_json::from_str(&block).unwrap_or_else(|e| panic!("not JSON: {e}\n{block}"));
        if let Some(strata) = value.pointer("/lsp/strata") {
            seen_lsp = true;
            for key in strata.as_object().unwrap().keys() {
                assert!(
                    ["binary", "initialization_options", "settings"].contains(&key.as_str()),
                    "lsp.strata.{key} is not a Zed LSP setting"
                );
            }
            if let Some(binary) = strata.get("binary") {
                assert!(binary["path"].is_string(), "{binary}");
                let args = binary["arguments"].as_array().unwrap();
                assert_eq!(args[..2], [json!("serve"), json!("--stdio")], "{binary}");
            }
            if let Some(options) = strata.get("initialization_options") {
                let problems = init_option_problems(options, "lsp.strata.initialization_options");
                assert!(problems.is_empty(), "{problems:#?}");
            }
            if let Some(settings) = strata.get("settings") {
                for key in settings.as_object().unwrap().keys() {
                    assert_eq!(key, "config", "Strata reads only `config` from its section");
                }
                let problems = config_problems(&settings["config"], "lsp.strata.settings.config");
                assert!(problems.is_empty(), "{problems:#?}");
            }
        }
        if let Some(languages) = value.get("languages") {
            seen_languages = true;
            for (language, settings) in languages.as_object().unwrap() {
                assert!(
                    ZED_LANGUAGES.contains(&language.as_str()),
                    "{language} is not a language the extension registers"
                );
                let servers: Vec<&str> = settings["language_servers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                let strata = servers.iter().position(|s| *s == "strata");
                let primary = servers.iter().position(|s| !s.starts_with('!'));
                assert!(
                    strata.is_some() && strata != primary,
                    "{language}: strata must be listed after the primary server: {servers:?}"
                );
                assert_eq!(servers.last(), Some(&"..."), "{language}: {servers:?}");
            }
        }
    }
    assert!(
        seen_lsp && seen_languages,
        "the guide shows both kinds of settings"
    );
}
