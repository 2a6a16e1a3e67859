//! The configuration end to end, through the CLI and the real server over stdio with the fake
//! model: `ignore` patterns from the user's config and from the repository's `.strata/config.toml`
//! keep files out of the archive, of `strata/context`, of agent runs and of completions (and new
//! patterns from a settings reload apply at once); `[context]` budgets are the default of
//! `strata/context`, of `strata context` and of every agent run, and an agent's own budgets win.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{FakeModel, Reply};

const HANG: Duration = Duration::from_secs(60);

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// A line of `helper`'s long body: present only when the working tier holds it in full.
const BODY_LINE: &str = "let v77 = x + 77;";

/// `src/lib.rs` (`add` calls a `helper` of about 1,000 tokens), `src/other.rs`, a file the
/// user's `ignore` leaves out (`src/generated/`) and one the repository's does (`vendor/`).
fn workspace(root: &Path) {
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let body: String = (0..120)
        .map(|i| format!("    let v{i} = x + {i};\n"))
        .collect();
    write(
        root,
        "src/lib.rs",
        &format!(
            "fn helper(x: u32) -> u32 {{\n{body}    x\n}}\n\npub fn add(a: u32, b: u32) -> u32 {{\n    helper(a) + b\n}}\n"
        ),
    );
    write(
        root,
        "src/other.rs",
        "pub fn other_marker_fn() -> u32 {\n    3\n}\n",
    );
    write(
        root,
        "src/generated/gen.rs",
        "pub fn generated_marker_fn() -> u32 {\n    7\n}\n",
    );
    write(
        root,
        "vendor/copied.rs",
        "pub fn vendored_marker_fn() -> u32 {\n    8\n}\n",
    );
    write(root, ".strata/config.toml", "ignore = [\"vendor/\"]\n");
}

/// The user's config: the fake model (when given), `ignore`, `[context] working = 300`, and an
/// agent `wide` with its own working budget.
fn user_config(dir: &Path, model_url: Option<&str>) -> std::path::PathBuf {
    let mut text = String::from("ignore = [\"generated/\"]\n\n[context]\nworking = 300\n\n");
    if let Some(url) = model_url {
        text += &format!(
            "[providers.local]\nkind = \"ollama\"\nurl = \"{url}\"\nmodel = \"coder\"\nretries = 0\n\n"
        );
    }
    text += "[agents.wide]\ntitle = \"Wide\"\noutput = \"document\"\nprompt = \"{{context}}\"\nbudgets = { working = 4000 }\n";
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn strata(ws: &Path, cache: &Path, config: &Path, args: &[&str]) -> String {
    support::strata_cli(ws, cache, config, args)
}

#[test]
fn the_cli_leaves_ignored_files_out_and_takes_budgets_from_the_config() {
    let ws = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let config = user_config(cache.path(), None);
    let run = |args: &[&str]| strata(ws.path(), cache.path(), &config, args);

    assert!(run(&["search", "other_marker_fn", "--json"]).contains("src/other.rs"));
    for (marker, by) in [
        ("generated_marker_fn", "the user's ignore"),
        ("vendored_marker_fn", "the repository's ignore"),
    ] {
        let found = run(&["search", marker, "--json"]);
        assert!(found.trim().is_empty(), "{by} let {marker} in: {found}");
    }

    let pack: Value = serde_json::from_str(&run(&["context", "src/lib.rs:126", "--json"])).unwrap();
    assert_eq!(pack["tiers"][1]["budget"], 300, "{pack}");
    assert!(!pack["rendered"].as_str().unwrap().contains(BODY_LINE));
    // An explicit --budgets still wins.
    let pack: Value = serde_json::from_str(&run(&[
        "context",
        "src/lib.rs:126",
        "--json",
        "--budgets",
        "4096,5000,16384",
    ]))
    .unwrap();
    assert_eq!(pack["tiers"][1]["budget"], 5000);
    assert!(pack["rendered"].as_str().unwrap().contains(BODY_LINE));

    for (file, marker) in [
        ("src/generated/gen.rs:2", "generated_marker_fn"),
        ("vendor/copied.rs:2", "vendored_marker_fn"),
    ] {
        let pack: Value = serde_json::from_str(&run(&["context", file, "--json"])).unwrap();
        assert!(
            pack["notes"][0].as_str().unwrap().contains("ignored"),
            "{pack}"
        );
        assert!(!pack.to_string().contains(marker), "{pack}");
    }
}

fn uri(root: &Path, rel: &str) -> String {
    format!("file://{}/{rel}", root.display())
}

/// The server on `ws` with the fake model; the client answers `workspace/configuration`.
fn serve(ws: &Path, dir: &Path, fake: &FakeModel) -> Lsp {
    let config = user_config(dir, Some(&fake.url()));
    let cache = dir.join("cache");
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", config.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
    ]);
    let init = lsp
        .request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": format!("file://{}", ws.display()),
                "capabilities": {
                    "textDocument": {"completion": {"completionItem": {}}},
                    "window": {"showDocument": {"support": true}},
                    "workspace": {"configuration": true},
                },
            }),
        )
        .unwrap();
    // With a workspace folder, its symbols are on offer (editors ask only when told so).
    assert_eq!(init["capabilities"]["workspaceSymbolProvider"], true);
    lsp.notify("initialized", json!({}));
    lsp.answer("workspace/configuration", json!([{}]));
    lsp.poll("the index", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["archive"]["files"].as_u64() == Some(2)).then_some(())
    });
    lsp
}

fn context_at(lsp: &mut Lsp, uri: &str, line: u32) -> Value {
    lsp.request(
        "strata/context",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 4}}),
    )
    .unwrap()
}

fn run_agent(lsp: &mut Lsp, agent: &str, uri: &str, line: u32) -> Value {
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": agent, "textDocument": {"uri": uri}, "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}}}]}),
    );
    lsp.run_result(id).unwrap()
}

#[test]
fn the_server_withholds_ignored_documents_from_context_agents_and_symbols() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("An answer."));
    let ws = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let root = ws.path().canonicalize().unwrap();
    let mut lsp = serve(&root, dir.path(), &fake);

    let symbols = |lsp: &mut Lsp, query: &str| {
        lsp.request("workspace/symbol", json!({"query": query}))
            .unwrap()
            .to_string()
    };
    assert!(symbols(&mut lsp, "other_marker_fn").contains("src/other.rs"));
    assert!(!symbols(&mut lsp, "generated_marker_fn").contains("generated_marker_fn"));
    assert!(!symbols(&mut lsp, "vendored_marker_fn").contains("vendored_marker_fn"));

    // An open document that a pattern (the user's, the repository's) names: its context holds
    // none of it, and an agent sends nothing.
    for (rel, marker) in [
        ("src/generated/gen.rs", "generated_marker_fn"),
        ("vendor/copied.rs", "vendored_marker_fn"),
    ] {
        let text = std::fs::read_to_string(root.join(rel)).unwrap();
        let uri = uri(&root, rel);
        lsp.open(&uri, "rust", 1, &text);
        let pack = context_at(&mut lsp, &uri, 1);
        assert!(
            pack["notes"][0].as_str().unwrap().contains("ignored"),
            "{pack}"
        );
        assert!(!pack.to_string().contains(marker), "{pack}");
        let result = run_agent(&mut lsp, "explain", &uri, 1);
        assert!(
            result["error"].as_str().unwrap().contains("ignored"),
            "{result}"
        );
        lsp.notification("window/showMessage");
    }
    assert_eq!(
        fake.call_count(),
        0,
        "an ignored document reached the model"
    );

    // The budgets: `[context]` for strata/context and for agents without their own; `wide`'s own.
    let lib = uri(&root, "src/lib.rs");
    let text = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    lsp.open(&lib, "rust", 1, &text);
    let pack = context_at(&mut lsp, &lib, 125);
    assert_eq!(pack["tiers"][1]["budget"], 300, "{pack}");
    assert!(!pack["rendered"].as_str().unwrap().contains(BODY_LINE));
    for (agent, call, full) in [("explain", 0, false), ("wide", 1, true)] {
        let id = lsp.send_request(
            "workspace/executeCommand",
            json!({"command": "strata.runAgent", "arguments": [{"agent": agent, "textDocument": {"uri": lib}, "range": {"start": {"line": 125, "character": 0}, "end": {"line": 125, "character": 0}}}]}),
        );
        lsp.answer("window/showDocument", json!({"success": true}));
        let result = lsp.run_result(id).unwrap();
        assert!(result.get("error").is_none(), "{result}");
        lsp.notification("window/showMessage");
        let prompt = fake.calls()[call].json.clone().unwrap()["messages"][1]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(prompt.contains("helper(a) + b"), "{prompt}");
        assert_eq!(prompt.contains(BODY_LINE), full, "{agent}: {prompt}");
    }

    // A settings reload that ignores src/other.rs: the next request withholds it.
    let other = uri(&root, "src/other.rs");
    let text = std::fs::read_to_string(root.join("src/other.rs")).unwrap();
    lsp.open(&other, "rust", 1, &text);
    let pack = context_at(&mut lsp, &other, 1);
    assert!(
        pack["rendered"]
            .as_str()
            .unwrap()
            .contains("other_marker_fn")
    );
    lsp.notify("workspace/didChangeConfiguration", json!({"settings": {}}));
    lsp.answer(
        "workspace/configuration",
        json!([{"config": {"ignore": ["other.rs"]}}]),
    );
    lsp.poll("the new pattern", |lsp| {
        let pack = context_at(lsp, &other, 1);
        (!pack["rendered"]
            .as_str()
            .unwrap()
            .contains("other_marker_fn"))
        .then_some(())
    });
    lsp.poll("src/other.rs to leave the archive", |lsp| {
        (!symbols(lsp, "other_marker_fn").contains("other_marker_fn")).then_some(())
    });
    lsp.finish();
}

#[test]
fn a_completion_in_an_ignored_document_calls_no_model() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("42"));
    let ws = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let root = ws.path().canonicalize().unwrap();
    let mut lsp = serve(&root, dir.path(), &fake);

    let started = |lsp: &mut Lsp| {
        lsp.request("strata/stats", Value::Null).unwrap()["completion"]["callsStarted"]
            .as_u64()
            .unwrap()
    };
    let complete = |lsp: &mut Lsp, uri: &str, text: &str| {
        let line = text.matches('\n').count();
        let character = text.rsplit('\n').next().unwrap().len();
        lsp.request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}),
        )
        .unwrap();
    };
    // The ignored document: the engine starts a call, and the prompt is refused.
    let text = "pub fn generated_marker_fn() -> u32 {\n    let secret_generated = ";
    let ignored = uri(&root, "src/generated/gen.rs");
    lsp.open(&ignored, "rust", 1, text);
    lsp.poll("a completion call for the ignored document", |lsp| {
        complete(lsp, &ignored, text);
        (started(lsp) >= 1).then_some(())
    });
    // A document that is not ignored: its call reaches the model.
    let text = "pub fn plain_fn() -> u32 {\n    let plain = ";
    let plain = uri(&root, "src/other.rs");
    lsp.open(&plain, "rust", 1, text);
    lsp.poll("a model call for the plain document", |lsp| {
        complete(lsp, &plain, text);
        (fake.call_count() >= 1).then_some(())
    });
    assert!(fake.wait_for_idle(HANG));
    let calls = fake.calls();
    assert!(!calls.is_empty());
    for call in calls {
        let body = call.json.clone().unwrap().to_string();
        assert!(body.contains("plain_fn"), "{body}");
        assert!(!body.contains("secret_generated"), "{body}");
    }
    lsp.finish();
}

#[test]
fn a_new_completion_mode_from_the_settings_says_a_restart_is_needed() {
    let fake = FakeModel::start();
    let ws = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let root = ws.path().canonicalize().unwrap();
    let mut lsp = serve(&root, dir.path(), &fake);
    // The client was told "items" (it has no inline completion) from the default "auto".
    lsp.notify("workspace/didChangeConfiguration", json!({"settings": {}}));
    lsp.answer(
        "workspace/configuration",
        json!([{"config": {"completion": {"mode": "off"}}}]),
    );
    let message = lsp.notification("window/showMessage");
    let text = message["message"].as_str().unwrap();
    assert!(
        text.contains("\"off\"") && text.contains("restart"),
        "{message}"
    );
    // Said once: the same settings again say nothing more; back to the first mode says nothing.
    lsp.notify("workspace/didChangeConfiguration", json!({"settings": {}}));
    lsp.answer(
        "workspace/configuration",
        json!([{"config": {"completion": {"mode": "off"}}}]),
    );
    lsp.notify("workspace/didChangeConfiguration", json!({"settings": {}}));
    lsp.answer("workspace/configuration", json!([{}]));
    lsp.request("strata/stats", Value::Null).unwrap();
    assert!(lsp.try_notification("window/showMessage").is_none());
    lsp.finish();
}
