//! What is inspected is what is sent: for every built-in agent, the prompt `strata/context` shows
//! with `agent` (over LSP) and `strata context --agent NAME --json` shows (from the terminal)
//! equals, part by part and byte by byte, the body the fake model receives when that agent runs
//! — `strata.runAgent` and `strata ask` on the same place of the same workspace. And an edit
//! agent that saw secrets as `[redacted:…]` markers gives them back in the edit it applies.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{FakeModel, Reply};

const LIB: &str = "\
use crate::util::scale;

/// Doubles and scales.
pub fn double(x: u32) -> u32 {
    scale(x * 2)
}

pub fn connect() -> String {
    let password = \"hunter2-correct-horse\";
    format!(\"db://{password}\")
}
";

const UTIL: &str = "\
/// Multiplies by the factor.
pub fn scale(x: u32) -> u32 {
    x * 3
}
";

/// The agents a user can run on code (chat has its own file; summarize its own input).
const AGENTS: &[&str] = &["explain", "document", "fix", "tests", "refactor", "review"];

fn workspace(root: &Path) {
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/lib.rs"), LIB).unwrap();
    std::fs::write(root.join("src/util.rs"), UTIL).unwrap();
}

/// The system text and messages of a request body, in the shape `strata/context` shows them.
fn sent(body: &Value) -> (Option<String>, Vec<(String, String)>) {
    let mut system = None;
    let mut messages = Vec::new();
    for m in body["messages"].as_array().expect("a chat body") {
        let (role, content) = (m["role"].as_str().unwrap(), m["content"].as_str().unwrap());
        if role == "system" {
            system = Some(content.to_owned());
        } else {
            messages.push((role.to_owned(), content.to_owned()));
        }
    }
    (system, messages)
}

/// The same, from what the inspector returned.
fn shown(prompt: &Value) -> (Option<String>, Vec<(String, String)>) {
    let messages = prompt["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (prompt["system"].as_str().map(str::to_owned), messages)
}

/// The `i`th call the model received is the one run of `agent`, and its prompt is the one the
/// inspector showed, part by part — and that prompt carries the code at the cursor and the
/// question, so the comparison is not between two empty things.
fn same_prompt(fake: &FakeModel, i: usize, agent: &str, inspected: &Value, question: &str) {
    let calls = fake.calls();
    assert_eq!(calls.len(), i + 1, "{agent} made one call");
    let body = calls[i].json.clone().unwrap();
    assert_eq!(
        shown(&inspected["prompt"]),
        sent(&body),
        "{agent}: the inspector's prompt differs from what the model received"
    );
    let (_, messages) = sent(&body);
    let user = &messages[0].1;
    assert!(
        user.contains("scale(x * 2)") && user.contains(question),
        "{user}"
    );
}

fn answer_for(agent: &str) -> Reply {
    match agent {
        "review" => Reply::text("{\"line\": 1, \"severity\": \"warning\", \"message\": \"ok\"}\n"),
        "explain" => Reply::text("It doubles."),
        _ => Reply::text("```rust\npub fn double(x: u32) -> u32 {\n    scale(x * 2)\n}\n```\n"),
    }
}

#[test]
fn the_lsp_inspector_shows_the_prompt_each_agent_sends() {
    let fake = FakeModel::start();
    let ws = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let root = ws.path().canonicalize().unwrap();
    let config = support::fake_model::ollama_config(
        dir.path(),
        &fake.url(),
        "retries = 0\n\n[cache]\nttl_secs = 0\n\n[completion]\nmode = \"off\"\n",
    );
    let cache = dir.path().join("cache");
    let data = dir.path().join("data");
    let mut lsp = Lsp::spawn_with_env(&[
        ("STRATA_CONFIG", config.to_str().unwrap()),
        ("STRATA_CACHE_DIR", cache.to_str().unwrap()),
        ("STRATA_DATA_DIR", data.to_str().unwrap()),
    ]);
    lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    lsp.poll("the index", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["archive"]["files"].as_u64() == Some(2)).then_some(())
    });
    let uri = format!("file://{}/src/lib.rs", root.display());
    lsp.open(&uri, "rust", 1, LIB);
    lsp.wait_parsed(&uri, 1);
    let cursor = json!({"start": {"line": 4, "character": 6}, "end": {"line": 4, "character": 6}});
    for (i, agent) in AGENTS.iter().enumerate() {
        let question = format!("question {i}");
        let inspected = lsp
            .request(
                "strata/context",
                json!({"textDocument": {"uri": uri}, "position": cursor["start"], "query": question, "agent": agent}),
            )
            .unwrap();
        assert_eq!(inspected["prompt"]["agent"], *agent, "{inspected}");
        fake.script(answer_for(agent));
        let id = lsp.send_request(
            "workspace/executeCommand",
            json!({"command": "strata.runAgent", "arguments": [{"agent": agent, "textDocument": {"uri": uri}, "range": cursor, "query": question}]}),
        );
        if ["document", "fix", "tests", "refactor"].contains(agent) {
            lsp.answer("workspace/applyEdit", json!({"applied": true}));
        }
        let result = lsp.run_result(id).unwrap();
        assert!(result.get("error").is_none(), "{agent}: {result}");
        if *agent == "review" {
            lsp.notification("textDocument/publishDiagnostics");
        }
        // How the run ended (explain: where its answer is, as the editor cannot show it).
        let told = lsp.notification("window/showMessage")["message"].clone();
        if *agent == "explain" {
            assert!(
                told.as_str().unwrap().contains("the answer is in"),
                "{told}"
            );
        }
        let calls = fake.calls();
        assert_eq!(calls.len(), i + 1, "{agent} made one call");
        let body = calls[i].json.clone().unwrap();
        assert_eq!(
            shown(&inspected["prompt"]),
            sent(&body),
            "{agent}: the inspector's prompt differs from what the model received"
        );
        // The prompt is not empty talk: it carries the code at the cursor and what it uses.
        let (_, messages) = sent(&body);
        let user = &messages[0].1;
        assert!(
            user.contains("scale(x * 2)") && user.contains(&question),
            "{user}"
        );
    }
    lsp.finish();
}

#[test]
fn the_cli_inspector_shows_the_prompt_strata_ask_sends() {
    let fake = FakeModel::start();
    let ws = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    workspace(ws.path());
    let config = support::fake_model::ollama_config(
        dir.path(),
        &fake.url(),
        "retries = 0\n\n[cache]\nttl_secs = 0\n",
    );
    let cache = dir.path().join("cache");
    let strata = |args: &[&str]| support::strata_cli(ws.path(), &cache, &config, args);
    for (i, agent) in AGENTS.iter().enumerate() {
        let question = format!("why {i}?");
        let inspected: Value = serde_json::from_str(&strata(&[
            "context",
            "src/lib.rs:5:7",
            "--agent",
            agent,
            "--query",
            &question,
            "--json",
        ]))
        .unwrap();
        fake.script(answer_for(agent));
        strata(&["ask", agent, "src/lib.rs:5:7", "--query", &question]);
        same_prompt(&fake, i, agent, &inspected, &question);
    }
}

#[test]
fn an_edit_puts_back_the_secrets_the_model_saw_redacted() {
    let fake = FakeModel::start();
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::spawn_with_model(
        dir.path(),
        &fake.url(),
        "retries = 0\n\n[completion]\nmode = \"off\"\n",
        &[],
    );
    lsp.initialize(json!({}), json!({}));
    let uri = "file:///tmp/strata-inspector-test/src/lib.rs";
    lsp.open(uri, "rust", 1, LIB);
    lsp.wait_parsed(uri, 1);
    // `connect`, lines 7–10.
    let range = json!({"start": {"line": 7, "character": 0}, "end": {"line": 10, "character": 1}});
    fake.script(Reply::text(
        "```rust\n/// Connects.\npub fn connect() -> String {\n    let password = \"[redacted:password]\";\n    format!(\"db://{password}\")\n}\n```\n",
    ));
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": "document", "textDocument": {"uri": uri}, "range": range}]}),
    );
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    let result = lsp.run_result(id).unwrap();
    assert_eq!(result["applied"], true, "{result}");
    lsp.notification("window/showMessage");
    let body = fake.calls()[0].body.clone();
    assert!(
        !body.contains("hunter2-correct-horse"),
        "the model saw the password"
    );
    assert_eq!(
        edit["edit"]["documentChanges"][0]["edits"][0]["newText"],
        "/// Connects.\npub fn connect() -> String {\n    let password = \"hunter2-correct-horse\";\n    format!(\"db://{password}\")\n}"
    );

    // A marker that was not in the target is refused: no secret is overwritten.
    fake.script(Reply::text(
        "```rust\npub fn connect() -> String {\n    let token = \"[redacted:github-token]\";\n    String::new()\n}\n```\n",
    ));
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": "refactor", "textDocument": {"uri": uri}, "range": range}]}),
    );
    let result = lsp.run_result(id).unwrap();
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("redacted secret"),
        "{result}"
    );
    lsp.notification("window/showMessage");
    lsp.finish();
}
