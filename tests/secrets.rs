//! No secret reaches a model, on any path: a workspace whose code holds a fake credential of
//! every kind in the secret corpus (in the function under the cursor, in the functions around it
//! and in another file) and the corpus's decoys; then every way Strata calls a model — `strata
//! ask` for each built-in agent, `strata.runAgent` for each at the cursor and on a selection, a
//! chat of two turns, the `review-all` workflow, inline and items completion — with every request
//! body the loopback model receives checked for the secrets (as written and JSON-escaped) and for
//! decoys cut or changed. A failure prints which path sent which kinds.

mod support;

#[allow(dead_code)]
#[path = "fixtures/secret_corpus.rs"]
mod secret_corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use secret_corpus::{DECOYS, MARK, SECRET_CASES};
use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{Call, FakeModel, Reply};

/// The agents a user can run on code; `chat` runs on a chat file, the `review-*` steps in the
/// workflow.
const AGENTS: &[&str] = &[
    "explain",
    "document",
    "fix",
    "tests",
    "refactor",
    "review",
    "summarize",
];

/// One answer every agent can use: a review finding, and a code block that parses wherever an
/// edit agent puts it.
const ANSWER: &str = "{\"line\": 1, \"severity\": \"warning\", \"message\": \"a credential is written in the code\"}\n\n```rust\nfn replaced() {}\n```\n";

/// Caching off (every call must reach the model), no retries.
const CONFIG: &str = "retries = 0\n\n[cache]\nttl_secs = 0\n";

const TARGET: &str = "src/billing.rs";
const OTHER: &str = "src/keys.rs";

/// The workspace on disk and where the target function is in it.
struct Workspace {
    _dir: tempfile::TempDir,
    root: PathBuf,
    text: String,
    /// 0-based line of `let keys = load_keys();`, the first line of the target's body.
    cursor_line: usize,
    /// 0-based lines of the selection: from the first secret to the line after the last decoy.
    selection: (usize, usize),
    /// 0-based line inside `rotate` in the other file, a function without secrets.
    rotate_line: usize,
}

impl Workspace {
    fn uri(&self, rel: &str) -> String {
        format!("file://{}/{rel}", self.root.display())
    }
}

/// The text of a case: its surrounding code with the secret in place.
fn case_text(case: usize) -> String {
    let (_, template, secret) = SECRET_CASES[case];
    template.replace(MARK, secret)
}

/// `let NAME = r###"` + newline + `text` + `"###;`: the text keeps its own line starts.
fn raw_let(name: &str, text: &str) -> String {
    format!("    let {name} = r###\"\n{text}\"###;\n")
}

fn decoy_marker(i: usize) -> String {
    format!("let decoy_{i:02} = r###\"\n")
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn workspace() -> Workspace {
    for text in SECRET_CASES
        .iter()
        .map(|c| c.1)
        .chain(DECOYS.iter().copied())
    {
        assert!(!text.contains("\"###"), "cannot be a raw string: {text:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    write(
        &root,
        "Cargo.toml",
        "[package]\nname = \"billing\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write(&root, "src/lib.rs", "pub mod billing;\npub mod keys;\n");

    // Every case and decoy in the target; every third case also in each function around it and
    // in the other file, and decoys around it too.
    let n = SECRET_CASES.len();
    let helper = |name: &str, doc: &str, cases: Vec<usize>, decoys: Vec<usize>| {
        let mut f = format!("/// {doc}\nfn {name}() -> Vec<&'static str> {{\n");
        let mut names = Vec::new();
        for case in cases {
            let var = format!("case_{case:02}");
            f.push_str(&raw_let(&var, &case_text(case)));
            names.push(var);
        }
        for decoy in decoys {
            let var = format!("decoy_{decoy:02}");
            f.push_str(&raw_let(&var, DECOYS[decoy]));
            names.push(var);
        }
        f.push_str(&format!("    vec![{}]\n}}\n", names.join(", ")));
        f
    };
    let mut text = String::from(
        "//! Billing: charges customers through the payment provider.\n\nuse crate::keys::{load_keys, rotate};\n\n",
    );
    text.push_str(&helper(
        "before_helper",
        "The settings the provider needs before a charge.",
        (0..n).filter(|c| c % 3 == 0).collect(),
        (0..DECOYS.len()).filter(|d| d % 3 == 0).collect(),
    ));
    text.push_str("\n/// Charges a customer with the provider's credentials.\npub fn charge(amount: u64) -> usize {\n");
    let cursor_line = text.lines().count();
    text.push_str("    let keys = load_keys();\n");
    let selection_start = text.lines().count();
    let mut names = Vec::new();
    for case in 0..n {
        let var = format!("case_{case:02}");
        text.push_str(&raw_let(&var, &case_text(case)));
        names.push(var);
    }
    for (i, decoy) in DECOYS.iter().enumerate() {
        let var = format!("decoy_{i:02}");
        text.push_str(&raw_let(&var, decoy));
        names.push(var);
    }
    let selection_end = text.lines().count();
    text.push_str(&format!(
        "    let all = [{}];\n    rotate(amount);\n    keys.len() + all.len() + before_helper().len() + after_helper().len()\n}}\n\n",
        names.join(", ")
    ));
    text.push_str(&helper(
        "after_helper",
        "The settings the provider needs after a charge.",
        (0..n).filter(|c| c % 3 == 1).collect(),
        (0..DECOYS.len()).filter(|d| d % 3 == 1).collect(),
    ));
    write(&root, TARGET, &text);

    let mut other = String::from("//! The provider's keys.\n\n");
    other.push_str(&helper(
        "keys_inner",
        "Keys as shipped.",
        (0..n).filter(|c| c % 3 == 2).collect(),
        Vec::new(),
    ));
    other.push_str(
        "\n/// Every key the provider needs.\npub fn load_keys() -> Vec<&'static str> {\n",
    );
    for (i, decoy) in DECOYS.iter().enumerate().step_by(4) {
        other.push_str(&raw_let(&format!("decoy_{i:02}"), decoy));
    }
    other.push_str("    keys_inner()\n}\n\n/// Rotates the keys after `amount` charges.\npub fn rotate(amount: u64) {\n");
    let rotate_line = other.lines().count();
    other.push_str("    let _ = amount;\n}\n");
    write(&root, OTHER, &other);

    // The test is about paths, not about the redactor: the redactor finds every secret in these
    // texts, so a secret that reaches the model went by a path that skipped it.
    for (rel, text) in [(TARGET, &text), (OTHER, &other)] {
        let (redacted, _) = strata::context::redact(text);
        let missed: Vec<&str> = secrets()
            .into_iter()
            .filter(|(secret, _)| redacted.contains(secret))
            .map(|(_, kind)| kind)
            .collect();
        assert!(
            missed.is_empty(),
            "the redactor misses in {rel}: {missed:?}"
        );
        for (i, decoy) in DECOYS.iter().enumerate() {
            let whole = format!("{}{decoy}\"###;", decoy_marker(i));
            assert_eq!(
                text.contains(&whole),
                redacted.contains(&whole),
                "the redactor changes decoy {i} in {rel}"
            );
        }
    }
    Workspace {
        _dir: dir,
        root,
        text,
        cursor_line,
        selection: (selection_start, selection_end),
        rotate_line,
    }
}

/// Each distinct secret of the corpus with its kind.
fn secrets() -> BTreeMap<&'static str, &'static str> {
    SECRET_CASES.iter().map(|&(kind, _, s)| (s, kind)).collect()
}

/// A chat message with every case in it.
fn chat_message() -> String {
    let mut message = String::from("Why does the charge fail with these settings?\n\n");
    for case in 0..SECRET_CASES.len() {
        message.push_str(&format!("Setting {case}:\n\n{}\n", case_text(case)));
    }
    message
}

/// What one request body gave away.
#[derive(Default)]
struct Findings {
    /// Kind → secrets of that kind found.
    kinds: BTreeMap<&'static str, BTreeSet<&'static str>>,
    /// Decoys in the prompt that were changed.
    damaged: BTreeSet<usize>,
    /// Decoys whose line was in the prompt.
    seen: BTreeSet<usize>,
}

/// Every string in a JSON value (the prompt's parts, decoded).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn examine(call: &Call) -> Findings {
    let secrets = secrets();
    let mut decoded = Vec::new();
    if let Some(json) = &call.json {
        strings(json, &mut decoded);
    }
    let mut findings = Findings::default();
    for (&secret, &kind) in &secrets {
        // A longer secret holding this one (`SK` + 32 hex digits holds the 32 hex digits)
        // is masked first, so each leak is charged to its own kind.
        let mask = |text: &str| {
            secrets
                .keys()
                .filter(|&&other| other != secret && other.contains(secret))
                .fold(text.to_owned(), |t, other| t.replace(other, "\u{1}"))
        };
        let escaped = serde_json::to_string(secret).unwrap();
        let escaped = &escaped[1..escaped.len() - 1];
        let body = mask(&call.body);
        let found = body.contains(secret)
            || body.contains(escaped)
            || decoded.iter().any(|s| mask(s).contains(secret));
        if found {
            findings.kinds.entry(kind).or_default().insert(secret);
        }
    }
    // A decoy whose line is in the prompt is there whole, or cut only by the end of the text
    // (completion prompts end at a byte budget).
    for (i, decoy) in DECOYS.iter().enumerate() {
        let marker = decoy_marker(i);
        let whole = format!("{decoy}\"###;");
        for s in &decoded {
            for (at, _) in s.match_indices(&marker) {
                findings.seen.insert(i);
                let rest = &s[at + marker.len()..];
                if !(rest.starts_with(&whole) || whole.starts_with(rest)) {
                    findings.damaged.insert(i);
                }
            }
        }
    }
    findings
}

/// How many cases' surrounding code reached the model (the secret's neighbourhood, whatever
/// became of the secret): proof that a path had secrets in reach at all.
fn in_reach(calls: &[Call]) -> usize {
    let mut decoded = Vec::new();
    for call in calls {
        if let Some(json) = &call.json {
            strings(json, &mut decoded);
        }
    }
    SECRET_CASES
        .iter()
        .filter(|(_, template, _)| {
            let before = template.split(MARK).next().unwrap();
            let line = before.rsplit('\n').next().unwrap();
            line.trim().len() >= 6 && decoded.iter().any(|s| s.contains(line))
        })
        .count()
}

/// The calls each path made, in order.
struct Paths {
    fake: FakeModel,
    seen: usize,
    paths: Vec<(String, Vec<Call>)>,
}

impl Paths {
    /// The calls made since the last path are this path's; it must have made one.
    fn record(&mut self, path: &str) {
        let calls = self.fake.calls();
        let new = calls[self.seen..].to_vec();
        assert!(!new.is_empty(), "{path} never called the model");
        self.seen = calls.len();
        self.paths.push((path.to_owned(), new));
    }

    /// The table of leaks and damaged decoys, and whether there were any (or a path without
    /// secrets in reach).
    fn report(&self) -> (String, bool) {
        let mut table = format!(
            "{:<52} {:>5} {:>8} {:>7} {:>5} {:>6} {:>7}  kinds leaked\n",
            "path", "calls", "in reach", "secrets", "kinds", "decoys", "damaged"
        );
        let mut any = false;
        let mut all_kinds = BTreeSet::new();
        for (path, calls) in &self.paths {
            let mut kinds: BTreeSet<&str> = BTreeSet::new();
            let mut leaked: BTreeSet<&str> = BTreeSet::new();
            let (mut damaged, mut seen) = (BTreeSet::new(), BTreeSet::new());
            for call in calls {
                let f = examine(call);
                kinds.extend(f.kinds.keys());
                leaked.extend(f.kinds.values().flatten());
                damaged.extend(f.damaged);
                seen.extend(f.seen);
            }
            // A path that had no secret in reach would prove nothing.
            let reach = in_reach(calls);
            any |= !kinds.is_empty() || !damaged.is_empty() || reach == 0;
            all_kinds.extend(kinds.iter().copied());
            table.push_str(&format!(
                "{path:<52} {:>5} {:>8} {:>7} {:>5} {:>6} {:>7}  {}\n",
                calls.len(),
                reach,
                leaked.len(),
                kinds.len(),
                seen.len(),
                damaged.len(),
                kinds.into_iter().collect::<Vec<_>>().join(" ")
            ));
            if !damaged.is_empty() {
                table.push_str(&format!("    damaged decoys: {damaged:?}\n"));
            }
        }
        let total: BTreeSet<&str> = SECRET_CASES.iter().map(|c| c.0).collect();
        table.push_str(&format!(
            "{} of the corpus's {} kinds ({} distinct secrets, {} cases) leaked on some path; \
             in reach: cases whose surrounding code reached the model; decoys: decoys in the \
             prompt\n",
            all_kinds.len(),
            total.len(),
            secrets().len(),
            SECRET_CASES.len()
        ));
        (table, any)
    }
}

/// `strata ask` with the fake model, its caches and data in the temp dir, nothing in the home.
fn cli(ws: &Workspace, home: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(&ws.root)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("STRATA_CACHE_DIR", home.join("strata-cache"))
        .env("STRATA_DATA_DIR", home.join("strata-data"))
        .env("STRATA_CONFIG", config)
        .arg("--cache-dir")
        .arg(home.join("strata-cache"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// A server rooted at the workspace, with the archive holding its files.
fn server(
    ws: &Workspace,
    fake: &FakeModel,
    home: &Path,
    name: &str,
    extra: &str,
    caps: Value,
) -> Lsp {
    let dir = home.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let home_s = home.to_str().unwrap().to_owned();
    let data = home.join("strata-data");
    let env = [
        ("HOME", home_s.as_str()),
        ("XDG_CONFIG_HOME", &format!("{home_s}/config")),
        ("XDG_CACHE_HOME", &format!("{home_s}/cache")),
        ("XDG_DATA_HOME", &format!("{home_s}/data")),
        ("STRATA_DATA_DIR", data.to_str().unwrap()),
    ];
    let mut lsp = Lsp::spawn_with_model(&dir, &fake.url(), &format!("{CONFIG}{extra}"), &env);
    lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": format!("file://{}", ws.root.display()), "capabilities": caps}),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    lsp.poll("the archive", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["archive"]["files"].as_u64() >= Some(3)).then_some(())
    });
    lsp.open(&ws.uri(TARGET), "rust", 1, &ws.text);
    lsp.wait_parsed(&ws.uri(TARGET), 1);
    let other = std::fs::read_to_string(ws.root.join(OTHER)).unwrap();
    lsp.open(&ws.uri(OTHER), "rust", 1, &other);
    lsp.wait_parsed(&ws.uri(OTHER), 1);
    lsp
}

/// Runs an agent or the workflow and plays the editor until it answers.
fn run(lsp: &mut Lsp, command: &str, args: Value, output: &str) -> Value {
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": command, "arguments": [args]}),
    );
    match output {
        "document" => {
            lsp.answer("window/showDocument", json!({"success": true}));
        }
        "edit" => {
            // Applied as far as the server knows; the buffer stays as it was for the next run.
            lsp.answer("workspace/applyEdit", json!({"applied": true}));
        }
        "diagnostics" => {
            lsp.notification("textDocument/publishDiagnostics");
        }
        _ => unreachable!(),
    }
    let result = lsp.run_result(id).unwrap();
    assert!(result.get("error").is_none(), "{command} {args}: {result}");
    lsp.notification("window/showMessage");
    result
}

fn output_of(agent: &str) -> &'static str {
    match agent {
        "explain" | "summarize" => "document",
        "review" => "diagnostics",
        _ => "edit",
    }
}

/// Types a new line after the target's first line, asking for a completion after each keystroke,
/// until the model has been asked for a fill-in-the-middle.
fn complete_until_called(lsp: &mut Lsp, fake: &FakeModel, ws: &Workspace, inline: bool) {
    let uri = ws.uri(TARGET);
    let mut text = ws.text.clone();
    let mut offset = text
        .split_inclusive('\n')
        .take(ws.cursor_line + 1)
        .map(str::len)
        .sum::<usize>()
        - 1;
    let typed: Vec<char> = "\n    let fee = amount / 100;".chars().collect();
    let before = fake
        .calls()
        .iter()
        .filter(|c| c.path == "/api/generate")
        .count();
    let (mut version, mut next) = (1, 0);
    lsp.poll("a fill-in-the-middle call", |lsp| {
        let c = typed[next % typed.len()];
        next += 1;
        let position = |text: &str, at: usize| {
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            json!({"line": text[..at].matches('\n').count(), "character": text[line_start..at].encode_utf16().count()})
        };
        let at = position(&text, offset);
        version += 1;
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": {"start": at, "end": at}, "text": c.to_string()}]}),
        );
        text.insert(offset, c);
        offset += c.len_utf8();
        let at = position(&text, offset);
        let response = if inline {
            lsp.request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": uri}, "position": at, "context": {"triggerKind": 2}}),
            )
        } else {
            lsp.request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": at}),
            )
        };
        assert!(response.is_ok(), "{response:?}");
        std::thread::sleep(std::time::Duration::from_millis(60));
        let calls = fake
            .calls()
            .iter()
            .filter(|c| c.path == "/api/generate")
            .count();
        (calls > before).then_some(())
    });
}

#[test]
fn no_secret_reaches_a_model_on_any_path() {
    let ws = workspace();
    let home = tempfile::tempdir().unwrap();
    let fake = FakeModel::start();
    fake.set_default(Reply::text(ANSWER));
    let mut paths = Paths {
        fake,
        seen: 0,
        paths: Vec::new(),
    };

    // The terminal: each agent once, each question distinct.
    let config = support::fake_model::ollama_config(home.path(), &paths.fake.url(), CONFIG);
    let position = format!("{TARGET}:{}", ws.cursor_line + 1);
    for agent in AGENTS {
        let query = format!("what does this do ({agent})?");
        let out = cli(
            &ws,
            home.path(),
            &config,
            &["ask", agent, &position, "--query", &query],
        );
        assert!(
            out.status.success(),
            "strata ask {agent}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        paths.record(&format!("cli ask {agent}"));
    }

    // A question carrying secrets, about a function that holds none.
    let rotate = format!("{OTHER}:{}", ws.rotate_line + 1);
    let out = cli(
        &ws,
        home.path(),
        &config,
        &["ask", "explain", &rotate, "--query", &chat_message()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    paths.record("cli ask explain (secrets in --query only)");

    // The editor: inline completion on, so one server serves everything but items.
    let mut lsp = server(
        &ws,
        &paths.fake,
        home.path(),
        "lsp-inline",
        "\n[completion]\nmode = \"inline\"\n",
        json!({"window": {"showDocument": {"support": true}}, "textDocument": {"inlineCompletion": {}}}),
    );
    let uri = ws.uri(TARGET);
    let cursor = json!({"start": {"line": ws.cursor_line, "character": 4}, "end": {"line": ws.cursor_line, "character": 4}});
    let selection = json!({"start": {"line": ws.selection.0, "character": 0}, "end": {"line": ws.selection.1, "character": 0}});
    for (name, range) in [("cursor", &cursor), ("selection", &selection)] {
        for agent in AGENTS {
            let mut args = json!({"agent": agent, "textDocument": {"uri": uri}, "range": range});
            if *agent == "fix" {
                args["diagnostics"] =
                    json!([{"range": range, "message": "mismatched types", "severity": 1}]);
            }
            run(&mut lsp, "strata.runAgent", args, output_of(agent));
            paths.record(&format!("lsp runAgent {agent} ({name})"));
        }
    }

    let rotate = json!({"start": {"line": ws.rotate_line, "character": 4}, "end": {"line": ws.rotate_line, "character": 4}});
    run(
        &mut lsp,
        "strata.runAgent",
        json!({"agent": "explain", "textDocument": {"uri": ws.uri(OTHER)}, "range": rotate, "query": chat_message()}),
        "document",
    );
    paths.record("lsp runAgent explain (secrets in query only)");

    // A chat of two turns: the first message holds every case, the second goes with it as history.
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.newChat"}),
    );
    lsp.answer("window/showDocument", json!({"success": true}));
    let created = lsp.response(id).unwrap();
    let chat = created["uri"].as_str().unwrap().to_owned();
    let template = std::fs::read_to_string(created["path"].as_str().unwrap()).unwrap();
    let mut text = format!("{template}{}", chat_message());
    lsp.open(&chat, "markdown", 1, &text);
    let chat_args = json!({"agent": "chat", "textDocument": {"uri": chat}});
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [chat_args]}),
    );
    let edit = lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    lsp.notification("window/showMessage");
    paths.record("lsp chat (first turn)");
    text.push_str(
        edit["edit"]["documentChanges"][0]["edits"][0]["newText"]
            .as_str()
            .unwrap(),
    );
    text.push_str("And with the first setting alone?\n");
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": chat, "version": 2}, "contentChanges": [{"text": text}]}),
    );
    lsp.wait_parsed(&chat, 2);
    let id = lsp.send_request(
        "workspace/executeCommand",
        json!({"command": "strata.runAgent", "arguments": [chat_args]}),
    );
    lsp.answer("workspace/applyEdit", json!({"applied": true}));
    assert_eq!(lsp.run_result(id).unwrap()["applied"], true);
    lsp.notification("window/showMessage");
    paths.record("lsp chat (second turn, history)");

    // The workflow: three reviewers and a summary.
    for (name, range) in [("cursor", &cursor), ("selection", &selection)] {
        let result = run(
            &mut lsp,
            "strata.runWorkflow",
            json!({"workflow": "review-all", "textDocument": {"uri": uri}, "range": range}),
            "document",
        );
        assert_eq!(
            result["steps"]["review-summary"]["state"], "done",
            "{result}"
        );
        paths.record(&format!("lsp runWorkflow review-all ({name})"));
    }

    // Completion, last: it types into the buffer.
    complete_until_called(&mut lsp, &paths.fake, &ws, true);
    while lsp.try_notification("window/showMessage").is_some() {}
    // The review's findings follow that typing (published again, moved or dropped).
    while lsp
        .try_notification("textDocument/publishDiagnostics")
        .is_some()
    {}
    lsp.finish();
    paths.record("lsp inlineCompletion");

    let mut lsp = server(
        &ws,
        &paths.fake,
        home.path(),
        "lsp-items",
        "\n[completion]\nmode = \"items\"\n",
        json!({"textDocument": {"completion": {"completionItem": {}}}}),
    );
    complete_until_called(&mut lsp, &paths.fake, &ws, false);
    lsp.finish();
    paths.record("lsp completion (items)");

    let (table, leaked) = paths.report();
    eprintln!("{table}");
    assert!(!leaked, "secrets reached the model:\n{table}");
}
