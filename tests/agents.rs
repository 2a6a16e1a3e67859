//! Agents end to end: the real binary over stdio, the fake model server, an editor that answers
//! the server's requests. Code actions list the agents; `strata.runAgent` answers at once with the
//! run's token, before the model does; the run edits the buffer through `workspace/applyEdit`
//! only with a complete answer and only if the target is unchanged, opens explanations with
//! `window/showDocument`, publishes review findings with fixes, reports `$/progress`, stops —
//! closing the model's connection — when its progress is cancelled, and ends with a
//! `window/showMessage` line and `strata/runEnded`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{FakeModel, Fault, Reply};

const URI: &str = "file:///tmp/strata-agents-test/src/lib.rs";
const HANG: Duration = Duration::from_secs(60);
const SOURCE: &str =
    "fn helper(x: u32) -> u32 {\n    x + 1\n}\n\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n";

fn start(fake_url: &str, capabilities: Value) -> (Lsp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::spawn_with_model(
        dir.path(),
        fake_url,
        "retries = 0\n\n[completion]\nmode = \"off\"\n",
        &[],
    );
    let caps = lsp.initialize(capabilities, json!({}));
    assert_eq!(
        caps["executeCommandProvider"]["commands"],
        json!(["strata.runAgent", "strata.runWorkflow", "strata.newChat"])
    );
    assert_eq!(caps["codeActionProvider"], true);
    lsp.open(URI, "rust", 1, SOURCE);
    lsp.wait_parsed(URI, 1);
    (lsp, dir)
}

/// The range of `add` (lines 4–6).
fn add_range() -> Value {
    json!({"start": {"line": 4, "character": 0}, "end": {"line": 6, "character": 1}})
}

fn run_agent(lsp: &mut Lsp, agent: &str, range: Value) -> i64 {
    lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": agent, "textDocument": {"uri": URI}, "range": range}]}),
    )
}

/// The line a run's end was told in: `window/showMessage`'s type and message.
fn told(lsp: &mut Lsp) -> (i64, String) {
    let message = lsp.notification("window/showMessage");
    (
        message["type"].as_i64().unwrap(),
        message["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn code_actions_offer_the_agents_without_a_model() {
    let fake = FakeModel::start();
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let titles = |lsp: &mut Lsp, diagnostics: Value| -> Vec<String> {
        let actions = lsp
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": URI}, "range": add_range(), "context": {"diagnostics": diagnostics}}),
            )
            .unwrap();
        actions
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let command = a["command"]["command"].as_str().unwrap();
                assert!(
                    command == "strata.runAgent" || command == "strata.runWorkflow",
                    "{a}"
                );
                a["title"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    let plain = titles(&mut lsp, json!([]));
    for expected in [
        "Explain",
        "documentation",
        "tests",
        "Refactor",
        "Review",
        "Review all",
    ] {
        assert!(
            plain.iter().any(|t| t.contains(expected)),
            "{expected} missing from {plain:?}"
        );
    }
    assert!(
        !plain.iter().any(|t| t.contains("Fix")),
        "fix needs diagnostics: {plain:?}"
    );
    let with_problem = titles(
        &mut lsp,
        json!([{"range": add_range(), "message": "mismatched types", "severity": 1}]),
    );
    assert!(
        with_problem.iter().any(|t| t.contains("Fix")),
        "{with_problem:?}"
    );
    assert_eq!(fake.call_count(), 0, "listing agents called a model");
    lsp.finish();
}

#[test]
fn an_edit_agent_applies_one_complete_edit_with_progress() {
    let fake = FakeModel::start();
    fake.script(Reply::text(
        "Here it is:\n```rust\n/// Adds two numbers.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n```\n",
    ));
    let (mut lsp, _dir) = start(&fake.url(), json!({"window": {"workDoneProgress": true}}));
    let id = run_agent(&mut lsp, "document", add_range());
    lsp.answer("window/workDoneProgress/create", Value::Null);
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    let change = &edit["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["version"], 1);
    assert_eq!(change["edits"][0]["range"], add_range());
    assert_eq!(
        change["edits"][0]["newText"],
        "/// Adds two numbers.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}"
    );
    let result = lsp.run_result(id).unwrap();
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(
        told(&mut lsp),
        (
            3,
            "Strata: Write documentation comments — applied to `add`".to_owned()
        )
    );
    // Progress: begin, reports, end.
    let mut kinds = Vec::new();
    loop {
        let p = lsp.notification("$/progress");
        let kind = p["value"]["kind"].as_str().unwrap().to_owned();
        kinds.push(kind.clone());
        if kind == "end" {
            assert_eq!(p["value"]["message"], "applied to `add`");
            break;
        }
    }
    assert_eq!(kinds.first().map(String::as_str), Some("begin"));
    assert!(
        kinds.iter().filter(|k| *k == "report").count() >= 2,
        "{kinds:?}"
    );
    // The prompt carried the code and the context.
    let prompt = fake.calls()[0].json.clone().unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("fn add(a: u32, b: u32)"), "{prompt}");
    lsp.finish();
}

#[test]
fn an_answer_without_code_or_a_changed_target_edits_nothing() {
    let fake = FakeModel::start();
    fake.script(Reply::text("I would rather not."));
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let id = run_agent(&mut lsp, "refactor", add_range());
    let result = lsp.run_result(id).unwrap();
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("no complete code block"), "{result}");
    // Said once, in the error's own words.
    assert_eq!(
        told(&mut lsp),
        (1, format!("Strata: Refactor for clarity — {error}"))
    );

    // The user edits the target while the model works: the answer is not applied.
    fake.script(
        Reply::text("```rust\nfn add(a: u32, b: u32) -> u32 { b + a }\n```").first_token(1500),
    );
    let id = run_agent(&mut lsp, "refactor", add_range());
    assert!(fake.wait_for_calls(2, HANG));
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": URI, "version": 2}, "contentChanges": [{
            "range": {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 9}},
            "text": "a.wrapping_add(b)"}]}),
    );
    let result = lsp.run_result(id).unwrap();
    assert_eq!(result["conflict"], true, "{result}");
    assert_eq!(
        lsp.debug_text(URI)["text"]
            .as_str()
            .unwrap()
            .matches("wrapping_add")
            .count(),
        1
    );
    // The user takes the offer to run it again: on the code as it is now.
    fake.script(Reply::text(
        "```rust\nfn add(a: u32, b: u32) -> u32 {\n    a.saturating_add(b)\n}\n```",
    ));
    let question = lsp.answer("window/showMessageRequest", json!({"title": "Run again"}));
    assert!(
        question["message"].as_str().unwrap().contains("changed"),
        "{question}"
    );
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    let change = &edit["edit"]["documentChanges"][0];
    assert_eq!(change["textDocument"]["version"], 2);
    assert!(
        change["edits"][0]["newText"]
            .as_str()
            .unwrap()
            .contains("saturating_add")
    );
    // The run started again ends as any run does.
    assert_eq!(
        lsp.notification("strata/runEnded")["result"]["applied"],
        true
    );
    assert_eq!(
        told(&mut lsp).1,
        "Strata: Refactor for clarity — applied to `add`"
    );
    let prompt = fake.calls()[2].json.clone().unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("a.wrapping_add(b)"),
        "the re-run saw the new code: {prompt}"
    );
    lsp.finish();
}

#[test]
fn explain_opens_a_markdown_answer() {
    let fake = FakeModel::start();
    fake.script(Reply::text("`add` returns the sum of its arguments."));
    let (mut lsp, _dir) = start(
        &fake.url(),
        json!({"window": {"showDocument": {"support": true}}}),
    );
    let id = run_agent(&mut lsp, "explain", add_range());
    let shown = lsp.answer("window/showDocument", json!({"success": true}));
    let result = lsp.run_result(id).unwrap();
    assert_eq!(result["shown"], true);
    assert_eq!(
        told(&mut lsp),
        (3, "Strata: Explain this code — answered".to_owned())
    );
    let path = result["path"].as_str().unwrap();
    assert!(shown["uri"].as_str().unwrap().ends_with(".md"));
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("returns the sum of its arguments"), "{text}");
    lsp.finish();
}

#[test]
fn review_publishes_findings_with_fixes() {
    let fake = FakeModel::start();
    fake.script(Reply::text(
        "{\"line\": 2, \"severity\": \"warning\", \"message\": \"may overflow\", \"suggestion\": \"    a.checked_add(b).unwrap_or(u32::MAX)\"}\n",
    ));
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let id = run_agent(&mut lsp, "review", add_range());
    let published = lsp.notification("textDocument/publishDiagnostics");
    let result = lsp.run_result(id).unwrap();
    assert_eq!(result["findings"], 1);
    assert_eq!(told(&mut lsp).1, "Strata: Review this code — 1 finding");
    let diagnostic = &published["diagnostics"][0];
    assert_eq!(diagnostic["source"], "strata");
    assert_eq!(diagnostic["range"]["start"]["line"], 5);
    let actions = lsp
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": URI}, "range": diagnostic["range"], "context": {"diagnostics": [diagnostic]}}),
        )
        .unwrap();
    let fix = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("suggested fix"))
        .expect("a fix action");
    assert_eq!(
        fix["edit"]["changes"][URI][0]["newText"],
        "    a.checked_add(b).unwrap_or(u32::MAX)"
    );
    lsp.finish();
}

#[test]
fn review_findings_follow_edits_and_go_once_their_line_changes() {
    let fake = FakeModel::start();
    fake.script(Reply::text(
        "{\"line\": 2, \"severity\": \"warning\", \"message\": \"may overflow\", \"suggestion\": \"    a.saturating_add(b)\"}\n",
    ));
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let id = run_agent(&mut lsp, "review", add_range());
    let published = lsp.notification("textDocument/publishDiagnostics");
    lsp.run_result(id).unwrap();
    told(&mut lsp);
    assert_eq!(published["diagnostics"][0]["range"]["start"]["line"], 5);
    let fix_at = |lsp: &mut Lsp, line: u32| {
        let range =
            json!({"start": {"line": line, "character": 4}, "end": {"line": line, "character": 4}});
        let actions = lsp
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": URI}, "range": range, "context": {"diagnostics": []}}),
            )
            .unwrap();
        actions
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["title"].as_str().unwrap().contains("suggested fix"))
            .map(|fix| fix["edit"]["changes"][URI][0]["range"].clone())
    };
    let change = |lsp: &mut Lsp, version: i32, range: Value, text: &str| {
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": URI, "version": version},
                   "contentChanges": [{"range": range, "text": text}]}),
        );
    };
    // Two lines inserted above `add` (a doc comment, as the document agent writes): the finding
    // and its fix move down with the line they flag.
    change(
        &mut lsp,
        2,
        json!({"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}),
        "/// Adds.\n/// Wraps never.\n",
    );
    let moved = lsp.notification("textDocument/publishDiagnostics");
    assert_eq!(moved["diagnostics"][0]["range"]["start"]["line"], 7);
    assert_eq!(moved["diagnostics"][0]["range"]["end"]["line"], 7);
    assert_eq!(fix_at(&mut lsp, 7).unwrap()["start"]["line"], 7);
    // An edit elsewhere (within another line) leaves it be.
    change(
        &mut lsp,
        3,
        json!({"start": {"line": 1, "character": 4}, "end": {"line": 1, "character": 5}}),
        "y",
    );
    assert!(fix_at(&mut lsp, 7).is_some());
    // The flagged line itself changes: the finding goes, and with it its fix.
    change(
        &mut lsp,
        4,
        json!({"start": {"line": 7, "character": 4}, "end": {"line": 7, "character": 9}}),
        "a.wrapping_add(b)",
    );
    let cleared = lsp.notification("textDocument/publishDiagnostics");
    assert_eq!(cleared["diagnostics"], json!([]));
    assert_eq!(fix_at(&mut lsp, 7), None);
    lsp.finish();
}

#[test]
fn the_answer_comes_before_the_model_does_and_the_run_ends_after_it() {
    let fake = FakeModel::start();
    fake.script(
        Reply::text("```rust\n/// Adds.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n```\n")
            .held(),
    );
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let id = run_agent(&mut lsp, "document", add_range());
    // The model holds its answer until released: the request is answered regardless.
    let started = lsp.response(id).unwrap();
    assert_eq!(started["agent"], "document", "{started}");
    let token = started["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("strata-agent-"), "{token}");
    assert!(fake.wait_for_calls(1, HANG));
    assert_eq!(fake.in_flight(), 1, "the model call is open");
    assert!(
        lsp.try_notification("strata/runEnded").is_none(),
        "the run ended before the model answered"
    );
    fake.release();
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert!(
        edit["edit"]["documentChanges"][0]["edits"][0]["newText"]
            .as_str()
            .unwrap()
            .starts_with("/// Adds.")
    );
    assert_eq!(
        told(&mut lsp),
        (
            3,
            "Strata: Write documentation comments — applied to `add`".to_owned()
        )
    );
    let result = lsp.run_ended(&token);
    assert_eq!(result["agent"], "document");
    assert_eq!(result["applied"], true, "{result}");
    assert_eq!(result["version"], 1, "{result}");

    // Arguments no run can start from are an error at once, and nothing runs.
    let unknown = run_agent(&mut lsp, "poetry", add_range());
    let error = lsp.run_result(unknown).unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("poetry"),
        "{error}"
    );
    let closed = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": "explain", "textDocument": {"uri": "file:///tmp/strata-agents-test/src/nowhere.rs"}}]}),
    );
    let error = lsp.run_result(closed).unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("is not open"),
        "{error}"
    );
    assert_eq!(fake.call_count(), 1);
    lsp.finish();
}

#[test]
fn cancelling_the_progress_closes_the_model_call_and_cancelling_the_request_cannot() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("never").fault(Fault::Hang));
    let (mut lsp, _dir) = start(&fake.url(), json!({"window": {"workDoneProgress": true}}));
    let id = run_agent(&mut lsp, "tests", add_range());
    let token = lsp.response(id).unwrap()["token"].clone();
    let create = lsp.answer("window/workDoneProgress/create", Value::Null);
    assert_eq!(create["token"], token, "the progress is the run's");
    assert!(fake.wait_for_calls(1, HANG));
    // The request was answered: cancelling it reaches nothing (and is not answered again).
    lsp.notify("$/cancelRequest", json!({"id": id}));
    lsp.notify("window/workDoneProgress/cancel", json!({"token": token}));
    let result = lsp.run_ended(token.as_str().unwrap());
    assert_eq!(result["cancelled"], true, "{result}");
    assert_eq!(
        told(&mut lsp),
        (3, "Strata: Write tests — cancelled".to_owned())
    );
    assert!(fake.wait_for_closed(0, HANG), "the model call stayed open");
    // Its progress ends too.
    let end = loop {
        let p = lsp.notification("$/progress");
        if p["value"]["kind"] == "end" {
            break p;
        }
    };
    assert_eq!(end["token"], token);
    assert_eq!(end["value"]["message"], "cancelled");

    // A workflow, the same way.
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runWorkflow", "arguments": [{"workflow": "review-all", "textDocument": {"uri": URI}, "range": add_range()}]}),
    );
    let started = lsp.response(id).unwrap();
    assert_eq!(started["workflow"], "review-all", "{started}");
    let token = started["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("strata-workflow-"), "{token}");
    lsp.answer("window/workDoneProgress/create", Value::Null);
    assert!(fake.wait_for_calls(2, HANG));
    lsp.notify("window/workDoneProgress/cancel", json!({"token": token}));
    let result = lsp.run_ended(&token);
    assert_eq!(result, json!({"workflow": "review-all", "cancelled": true}));
    assert_eq!(told(&mut lsp).1, "Strata: review-all — cancelled");
    assert!(
        fake.wait_for_closed(1, HANG),
        "the step's model call stayed open"
    );
    // Whatever progress was reported is read.
    while lsp.try_notification("$/progress").is_some() {}
    lsp.finish();
}

#[test]
fn no_model_says_what_to_do() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (mut lsp, _dir) = start(&dead, json!({}));
    let id = run_agent(&mut lsp, "explain", add_range());
    let result = lsp.run_result(id).unwrap();
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("is the server at {dead} running?")),
        "{error}"
    );
    let (typ, message) = told(&mut lsp);
    assert_eq!(typ, 1);
    assert!(message.contains("no model answered"), "{message}");
    lsp.finish();
}

#[test]
fn strata_ask_streams_an_agent_from_the_terminal() {
    let fake = FakeModel::start();
    fake.script(Reply::text("`add` sums two numbers.").pieces(4));
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join(".git")).unwrap();
    std::fs::create_dir_all(ws.path().join("src")).unwrap();
    std::fs::write(ws.path().join("src/lib.rs"), SOURCE).unwrap();
    let config = support::fake_model::ollama_config(ws.path(), &fake.url(), "");
    let cache = tempfile::tempdir().unwrap();
    let strata = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(ws.path())
            .arg("--cache-dir")
            .arg(cache.path())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = strata(&["ask", "explain", "src/lib.rs:6", "--query", "is it safe?"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "`add` sums two numbers.\n"
    );
    assert!(stderr.contains("local/coder"), "{stderr}");
    let prompt = fake.calls()[0].json.clone().unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("fn add(a: u32, b: u32)") && prompt.contains("is it safe?"),
        "{prompt}"
    );
    // The same call again is answered by the cache, and both are in the audit.
    let again = strata(&["ask", "explain", "src/lib.rs:6", "--query", "is it safe?"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("L2"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(fake.call_count(), 1);
    let audit = strata(&["audit", "--json"]);
    assert_eq!(String::from_utf8_lossy(&audit.stdout).lines().count(), 2);
    let unknown = strata(&["ask", "poetry", "src/lib.rs:6"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no agent named `poetry`"));
}

#[test]
fn a_chat_file_keeps_its_history_across_restarts() {
    let fake = FakeModel::start();
    let data = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        let mut lsp = Lsp::spawn_with_model(
            dir.path(),
            &fake.url(),
            "",
            &[("STRATA_DATA_DIR", data.path().to_str().unwrap())],
        );
        let caps = lsp.initialize(
            json!({"window": {"showDocument": {"support": true}}}),
            json!({}),
        );
        assert_eq!(
            caps["executeCommandProvider"]["commands"],
            json!(["strata.runAgent", "strata.runWorkflow", "strata.newChat"])
        );
        lsp
    };
    let mut lsp = spawn();
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.newChat"}),
    );
    let shown = lsp.answer("window/showDocument", json!({"success": true}));
    let created = lsp.response(id).unwrap();
    let uri = created["uri"].as_str().unwrap().to_owned();
    assert_eq!(shown["uri"], uri);
    assert!(uri.ends_with(".strata.md"));
    let template = std::fs::read_to_string(created["path"].as_str().unwrap()).unwrap();
    let mut text = format!("{template}What does add do?\n");
    lsp.open(&uri, "markdown", 1, &text);
    let actions = lsp
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "context": {"diagnostics": []}}),
        )
        .unwrap();
    assert_eq!(actions.as_array().unwrap().len(), 1);
    assert_eq!(actions[0]["title"], "Strata: send");
    let send = |lsp: &mut Lsp, text: &mut String, version: i32| {
        let id = lsp.send_request("workspace/executeCommand", actions[0]["command"].clone());
        let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
        let appended = edit["edit"]["documentChanges"][0]["edits"][0]["newText"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
        assert_eq!(told(lsp).1, "Strata: Chat — answered");
        text.push_str(&appended);
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
        appended
    };
    fake.script(Reply::text("It adds two numbers."));
    let appended = send(&mut lsp, &mut text, 2);
    assert_eq!(
        appended,
        "\n## Strata\n\nIt adds two numbers.\n\n## You\n\n"
    );
    lsp.finish();

    // A new server: the history is still there and feeds the next turn.
    let mut lsp = spawn();
    text.push_str("And does it overflow?\n");
    lsp.open(&uri, "markdown", 3, &text);
    fake.script(Reply::text("It can, in debug builds it panics."));
    send(&mut lsp, &mut text, 4);
    let prompt = fake.calls()[1].json.clone().unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("It adds two numbers."), "{prompt}");
    assert!(prompt.contains("And does it overflow?"), "{prompt}");
    lsp.finish();
}

#[test]
fn review_all_runs_three_reviewers_then_a_summary() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("- line 6: fine").first_token(100));
    let (mut lsp, _dir) = start(
        &fake.url(),
        json!({"window": {"showDocument": {"support": true}}}),
    );
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runWorkflow", "arguments": [{"workflow": "review-all", "textDocument": {"uri": URI}, "range": add_range()}]}),
    );
    lsp.answer("window/showDocument", json!({"success": true}));
    let result = lsp.run_result(id).unwrap();
    assert_eq!(told(&mut lsp).1, "Strata: review-all — 4 of 4 steps done");
    for step in [
        "review-security",
        "review-performance",
        "review-style",
        "review-summary",
    ] {
        assert_eq!(result["steps"][step]["state"], "done", "{result}");
    }
    assert_eq!(fake.call_count(), 4);
    // The summary saw the three reviews.
    let calls = fake.calls();
    let summary_prompt = calls
        .iter()
        .map(|c| {
            c.json.clone().unwrap()["messages"][1]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .find(|p| p.contains("came from separate reviewers"))
        .expect("a summary call");
    for step in ["review-security", "review-performance", "review-style"] {
        assert!(
            summary_prompt.contains(&format!("### {step}")),
            "{summary_prompt}"
        );
    }
    let report = std::fs::read_to_string(result["path"].as_str().unwrap()).unwrap();
    assert!(report.find("## review-summary").unwrap() < report.find("## review-security").unwrap());
    lsp.finish();
}

#[test]
fn chat_turns_go_to_the_archive() {
    let fake = FakeModel::start();
    let ws = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ws.path().join(".git")).unwrap();
    std::fs::write(ws.path().join("lib.rs"), SOURCE).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut lsp = Lsp::spawn_with_model(dir.path(), &fake.url(), "", &[]);
    let root = ws.path().canonicalize().unwrap();
    lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", root.display()), "capabilities": {}}),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    lsp.poll("the archive", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["archive"]["files"].as_u64() == Some(1)).then_some(())
    });
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.newChat"}),
    );
    lsp.notification("window/showMessage"); // no showDocument support: the path is named
    let created = lsp.response(id).unwrap();
    let uri = created["uri"].as_str().unwrap().to_owned();
    let template = std::fs::read_to_string(created["path"].as_str().unwrap()).unwrap();
    lsp.open(
        &uri,
        "markdown",
        1,
        &format!("{template}How do we handle overflow?\n"),
    );
    fake.script(Reply::text(
        "We saturate: zanzibarian arithmetic everywhere.",
    ));
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [{"agent": "chat", "textDocument": {"uri": uri}}]}),
    );
    lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    lsp.notification("window/showMessage");
    let hit = lsp.poll("the turn in the archive", |lsp| {
        let result = lsp
            .request("strata/search", json!({"query": "zanzibarian", "limit": 5}))
            .unwrap();
        result["hits"].as_array().and_then(|h| h.first().cloned())
    });
    assert!(
        hit["path"]
            .as_str()
            .unwrap()
            .starts_with("strata-chats/chat-"),
        "{hit}"
    );
    lsp.finish();
}

#[test]
fn an_edit_whose_code_would_not_parse_is_not_applied() {
    let fake = FakeModel::start();
    // A complete answer whose code block leaves `add` without its closing brace.
    fake.script(Reply::text(
        "```rust\nfn add(a: u32, b: u32) -> u32 {\n    a.wrapping_add(b)\n```\n",
    ));
    let (mut lsp, _dir) = start(
        &fake.url(),
        json!({"window": {"showDocument": {"support": true}}}),
    );
    let id = run_agent(&mut lsp, "refactor", add_range());
    // Not applied, but opened for the user to read: the reason and the change as a diff.
    let shown = lsp.answer("window/showDocument", json!({"success": true}));
    let result = lsp.run_result(id).unwrap();
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("would not parse") && error.contains("line "),
        "{result}"
    );
    // The editor shows the proposed change: the message says why only.
    assert_eq!(
        told(&mut lsp),
        (1, format!("Strata: Refactor for clarity — {error}"))
    );
    assert_eq!(lsp.debug_text(URI)["text"], SOURCE, "the buffer changed");
    let path = result["path"].as_str().unwrap();
    assert!(
        shown["uri"]
            .as_str()
            .unwrap()
            .ends_with(path.rsplit('/').next().unwrap())
    );
    let document = std::fs::read_to_string(path).unwrap();
    assert!(document.contains("would not parse"), "{document}");
    assert!(
        document.contains("```diff\n@@ -1,3 +1,2 @@\n fn add(a: u32, b: u32) -> u32 {\n-    a + b\n-}\n+    a.wrapping_add(b)\n```"),
        "{document}"
    );
    // Not cached: the next run asks the model again, and a good answer is applied.
    fake.script(Reply::text(
        "```rust\nfn add(a: u32, b: u32) -> u32 {\n    a.wrapping_add(b)\n}\n```\n",
    ));
    let id = run_agent(&mut lsp, "refactor", add_range());
    lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    lsp.notification("window/showMessage");
    assert_eq!(fake.call_count(), 2);
    lsp.finish();
}

#[test]
fn a_one_character_range_is_a_cursor_and_a_range_to_a_line_start_keeps_its_line_break() {
    let fake = FakeModel::start();
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let documented = "/// Adds two numbers.\nfn add(a: u32, b: u32) -> u32 {\n    a + b\n}";
    // Helix in normal mode: the one-character cursor on the `p`… of `fn add` is sent as the range.
    fake.script(Reply::text(&format!("```rust\n{documented}\n```\n")));
    let one_char =
        json!({"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 5}});
    let id = run_agent(&mut lsp, "document", one_char);
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    assert_eq!(
        told(&mut lsp).1,
        "Strata: Write documentation comments — applied to `add`"
    );
    let change = &edit["edit"]["documentChanges"][0]["edits"][0];
    assert_eq!(
        change["range"],
        add_range(),
        "the whole function, not one character"
    );
    assert_eq!(change["newText"], documented);
    let prompt = fake.calls()[0].json.clone().unwrap()["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt.contains("fn add(a: u32, b: u32) -> u32 {\n    a + b\n}"),
        "{prompt}"
    );

    // Neovim's `:StrataAsk` on lines 5–7: the range ends at the start of line 8, so the target
    // holds the function's line break; the code block does not, and the edit keeps it.
    fake.script(Reply::text(&format!("```rust\n{documented}\n```\n")));
    let lines = json!({"start": {"line": 4, "character": 0}, "end": {"line": 7, "character": 0}});
    let id = run_agent(&mut lsp, "document", lines.clone());
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    lsp.notification("window/showMessage");
    let change = &edit["edit"]["documentChanges"][0]["edits"][0];
    assert_eq!(change["range"], lines);
    assert_eq!(change["newText"], format!("{documented}\n"));
    lsp.finish();
}

#[test]
fn code_actions_have_kinds_every_editor_shows_and_honour_only() {
    let fake = FakeModel::start();
    let (mut lsp, _dir) = start(&fake.url(), json!({}));
    let actions = |lsp: &mut Lsp, only: Value| -> Vec<(String, String)> {
        let mut context = json!({"diagnostics": [{"range": add_range(), "message": "mismatched types", "severity": 1}]});
        if !only.is_null() {
            context["only"] = only;
        }
        lsp.request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": URI}, "range": add_range(), "context": context}),
        )
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_owned(),
                a["title"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
    };
    let all = actions(&mut lsp, Value::Null);
    assert!(all.len() >= 7, "{all:?}");
    // VS Code keeps `source.*` out of the lightbulb and Ctrl+.: none of ours is one.
    assert!(
        all.iter().all(|(kind, _)| !kind.starts_with("source")),
        "{all:?}"
    );
    let quickfix = actions(&mut lsp, json!(["quickfix"]));
    assert!(
        !quickfix.is_empty() && quickfix.iter().all(|(k, _)| k == "quickfix"),
        "{quickfix:?}"
    );
    assert!(
        quickfix.iter().any(|(_, t)| t.contains("Fix")),
        "{quickfix:?}"
    );
    let refactor = actions(&mut lsp, json!(["refactor"]));
    assert_eq!(refactor.len(), all.len() - quickfix.len(), "{refactor:?}");
    assert!(
        refactor.iter().any(|(_, t)| t.contains("Explain")),
        "{refactor:?}"
    );
    assert!(actions(&mut lsp, json!(["source.organizeImports"])).is_empty());
    assert_eq!(fake.call_count(), 0);
    lsp.finish();
}
