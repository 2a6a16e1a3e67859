//! AI completion end to end: the real binary over stdio, a fake model answering in 300 ms, and an
//! editor that types at 20 characters per second and asks for a completion after every keystroke.
//! Every request gets a response; the model sees at most 0.2 calls per keystroke; typing into a
//! suggestion is served without a call; moving away cancels the call in flight and closes its
//! connection. An inline request (and an items request from Helix) is held until the suggestion
//! for its text is ready — a newer request, `$/cancelRequest` or the bound answer it empty — and
//! the next suggestion is fetched when one is accepted or the user pauses in an empty body. No
//! test asserts a duration.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::Lsp;
use support::fake_model::{FakeModel, Fault, Reply};

const URI: &str = "file:///tmp/strata-completion-test/src/lib.rs";
const HANG: Duration = Duration::from_secs(60);

struct Editor {
    lsp: Lsp,
    text: String,
    version: i32,
    inline: bool,
}

/// (line, character) of the end of `text`, in UTF-16 (the test types ASCII only).
fn end_of(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count();
    let column = text.rsplit('\n').next().unwrap().len();
    (line, column)
}

impl Editor {
    fn start(fake: &FakeModel, inline: bool, extra: &str) -> (Editor, tempfile::TempDir) {
        Editor::start_as(fake, inline, extra, None)
    }

    /// `start`, with `clientInfo` when `client` names one.
    fn start_as(
        fake: &FakeModel,
        inline: bool,
        extra: &str,
        client: Option<(&str, &str)>,
    ) -> (Editor, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut lsp = Lsp::spawn_with_model(dir.path(), &fake.url(), extra, &[]);
        let capabilities = if inline {
            json!({"textDocument": {"inlineCompletion": {}}})
        } else {
            json!({"textDocument": {"completion": {"completionItem": {}}}})
        };
        let caps = match client {
            None => lsp.initialize(capabilities, json!({})),
            Some((name, version)) => {
                let params = json!({
                    "processId": null, "rootUri": null, "capabilities": capabilities,
                    "initializationOptions": {}, "clientInfo": {"name": name, "version": version},
                });
                let caps = lsp.request("initialize", params).unwrap()["capabilities"].clone();
                lsp.notify("initialized", json!({}));
                caps
            }
        };
        if inline {
            assert_eq!(caps["inlineCompletionProvider"], true);
            assert!(caps.get("completionProvider").is_none());
        } else {
            assert!(caps["completionProvider"].is_object());
            assert!(caps.get("inlineCompletionProvider").is_none());
        }
        let text = "fn helper(x: u32) -> u32 {\n    x + 1\n}\n\nfn main() {\n    ".to_owned();
        lsp.open(URI, "rust", 1, &text);
        (
            Editor {
                lsp,
                text,
                version: 1,
                inline,
            },
            dir,
        )
    }

    /// Types one character at the end of the text.
    fn type_char(&mut self, c: char) {
        let (line, character) = end_of(&self.text);
        self.version += 1;
        self.lsp.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": URI, "version": self.version},
                "contentChanges": [{
                    "range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}},
                    "text": c.to_string()
                }]
            }),
        );
        self.text.push(c);
    }

    /// Asks for a completion at the end of the text without waiting; returns the request id.
    fn ask(&mut self) -> i64 {
        let (line, character) = end_of(&self.text);
        self.ask_at(line, character)
    }

    fn ask_at(&mut self, line: usize, character: usize) -> i64 {
        let position = json!({"line": line, "character": character});
        if self.inline {
            self.lsp.send_request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": URI}, "position": position, "context": {"triggerKind": 2}}),
            )
        } else {
            self.lsp.send_request(
                "textDocument/completion",
                json!({"textDocument": {"uri": URI}, "position": position}),
            )
        }
    }

    /// The suggested text in a response, if any.
    fn suggestion(&self, response: &Value) -> Option<String> {
        if self.inline {
            response["items"][0]["insertText"]
                .as_str()
                .map(str::to_owned)
        } else {
            assert_eq!(response["isIncomplete"], true);
            let item = &response["items"][0];
            let new_text = item["textEdit"]["newText"].as_str()?;
            // The item replaces the word before the cursor; the suggestion is what follows it.
            let start = item["textEdit"]["range"]["start"]["character"]
                .as_u64()
                .unwrap() as usize;
            let (_, column) = end_of(&self.text);
            let word = &self.text[self.text.len() - (column - start)..];
            Some(new_text.strip_prefix(word).unwrap().to_owned())
        }
    }

    /// The request held at the pause is answered with `suggestion`, and the call `earlier`
    /// (made for text before the pause, still running) is cancelled.
    fn the_pause_brings(
        &mut self,
        at_pause: i64,
        suggestion: &str,
        fake: &FakeModel,
        earlier: usize,
    ) {
        let answer = self.lsp.response(at_pause).unwrap();
        assert_eq!(
            self.suggestion(&answer).as_deref(),
            Some(suggestion),
            "{answer}"
        );
        assert!(
            fake.wait_for_closed(earlier, HANG),
            "the call for the earlier text stayed open"
        );
    }

    fn stats(&mut self) -> Value {
        self.lsp.request("strata/stats", Value::Null).unwrap()
    }
}

/// Types `text` at 20 characters per second, asking after every keystroke; returns every
/// response (each request must have one).
fn type_at_20_per_second(editor: &mut Editor, text: &str) -> Vec<Value> {
    let mut ids = Vec::new();
    for c in text.chars() {
        editor.type_char(c);
        ids.push(editor.ask());
        std::thread::sleep(Duration::from_millis(50));
    }
    ids.into_iter()
        .map(|id| editor.lsp.response(id).expect("a completion response"))
        .collect()
}

fn typing_run(inline: bool) {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("let total = helper(41);").first_token(300));
    let (mut editor, _dir) = Editor::start(&fake, inline, "");
    let typed = "let value = helper(1) + helper(2);\n    let other = value * 3;\n    println!(\"{other}\");\n    "
        .repeat(3);
    let typed: String = typed.chars().take(200).collect();
    let responses = type_at_20_per_second(&mut editor, &typed);
    assert_eq!(responses.len(), 200);
    let calls = fake.call_count();
    assert!(calls >= 1, "the model was never asked");
    assert!(
        calls as f64 <= 0.2 * 200.0,
        "{calls} model calls for 200 keystrokes"
    );
    // After a pause the suggestion for the cursor arrives on a later request.
    let suggestion = editor.lsp.poll("a suggestion", |lsp| {
        let (line, character) = end_of(&editor.text);
        let id = if inline {
            lsp.send_request(
                "textDocument/inlineCompletion",
                json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}, "context": {"triggerKind": 2}}),
            )
        } else {
            lsp.send_request(
                "textDocument/completion",
                json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}}),
            )
        };
        let response = lsp.response(id).unwrap();
        if inline {
            response["items"][0]["insertText"].as_str().map(str::to_owned)
        } else {
            response["items"][0]["textEdit"]["newText"].as_str().map(str::to_owned)
        }
    });
    assert!(
        suggestion.contains("let total = helper(41)"),
        "{suggestion}"
    );
    let stats = editor.stats();
    let c = &stats["completion"];
    let answered = [
        "fromSuggestion",
        "fromInFlight",
        "fromHeld",
        "empty",
        "superseded",
        "timedOut",
    ]
    .iter()
    .map(|k| c[k].as_u64().unwrap())
    .sum::<u64>();
    assert!(c["requests"].as_u64().unwrap() > 200, "{c}");
    assert_eq!(answered, c["requests"].as_u64().unwrap(), "{c}");
    // The prompt was fill-in-the-middle on Ollama's generate endpoint, with the cursor's text.
    let call = fake.calls().last().cloned().unwrap();
    assert_eq!(call.path, "/api/generate");
    let body = call.json.unwrap();
    assert!(
        body["prompt"]
            .as_str()
            .unwrap()
            .ends_with(&typed[typed.len() - 10..])
    );
    assert_eq!(body["suffix"], "");
    editor.lsp.finish();
}

#[test]
fn typing_with_inline_completion() {
    typing_run(true);
}

#[test]
fn typing_with_completion_items() {
    typing_run(false);
}

#[test]
fn forward_typing_is_served_from_the_suggestion() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("helper(41) + helper(42);"));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    for c in "let n = ".chars() {
        editor.type_char(c);
    }
    let first = editor.lsp.poll("the first suggestion", |lsp| {
        let (line, character) = end_of("fn helper(x: u32) -> u32 {\n    x + 1\n}\n\nfn main() {\n    let n = ");
        let id = lsp.send_request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": URI}, "position": {"line": line, "character": character}, "context": {"triggerKind": 1}}),
        );
        lsp.response(id).unwrap()["items"][0]["insertText"]
            .as_str()
            .map(str::to_owned)
    });
    assert_eq!(first, "helper(41) + helper(42);");
    let calls = fake.call_count();
    // The user types what the suggestion says: each keystroke is served the rest of it.
    for (i, c) in "helper(4".chars().enumerate() {
        editor.type_char(c);
        let id = editor.ask();
        let response = editor.lsp.response(id).unwrap();
        assert_eq!(
            editor.suggestion(&response).as_deref(),
            Some(&first[i + 1..]),
            "after typing {:?}",
            &first[..=i]
        );
    }
    assert_eq!(fake.call_count(), calls, "forward typing made a model call");
    let stats = editor.stats();
    assert!(stats["completion"]["fromSuggestion"].as_u64().unwrap() >= 8);
    editor.lsp.finish();
}

#[test]
fn moving_away_cancels_the_call_in_flight() {
    let fake = FakeModel::start();
    fake.script(Reply::text("never").fault(Fault::Hang));
    let (mut editor, _dir) = Editor::start(&fake, false, "[completion]\ndebounce_max_ms = 60\n");
    editor.type_char('l');
    let id = editor.ask();
    let first = editor.lsp.response(id).unwrap();
    assert_eq!(first["items"], json!([]));
    assert!(
        fake.wait_for_calls(1, HANG),
        "no call started after the pause"
    );
    // The cursor goes to another line: the hanging call is stale.
    let id = editor.ask_at(1, 4);
    editor.lsp.response(id).unwrap();
    assert!(
        fake.wait_for_closed(0, HANG),
        "the stale call's connection stayed open"
    );
    let stats = editor.stats();
    assert_eq!(stats["completion"]["callsCancelled"], 1);
    editor.lsp.finish();
}

#[test]
fn positions_that_do_not_fit_still_get_an_answer() {
    let fake = FakeModel::start();
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    let id = editor.ask_at(999, 0);
    assert_eq!(editor.lsp.response(id).unwrap()["items"], json!([]));
    let id = editor.lsp.send_request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": "file:///not/open.rs"}, "position": {"line": 0, "character": 0}, "context": {"triggerKind": 1}}),
    );
    assert_eq!(editor.lsp.response(id).unwrap()["items"], json!([]));
    editor.lsp.finish();
}

/// The text of `editor` with `insert` typed in one change at the end (as accepting a suggestion
/// does).
fn insert_at_end(editor: &mut Editor, insert: &str) {
    let (line, character) = end_of(&editor.text);
    editor.version += 1;
    editor.lsp.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": URI, "version": editor.version},
            "contentChanges": [{
                "range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}},
                "text": insert
            }]
        }),
    );
    editor.text.push_str(insert);
}

#[test]
fn after_a_pause_the_same_request_brings_the_suggestion() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("helper(41) + 1;").first_token(300));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    // Typing at 20 per second with a request per keystroke, then nothing: no further keystroke,
    // no further request.
    let mut ids = Vec::new();
    for c in "let n = ".chars() {
        editor.type_char(c);
        ids.push(editor.ask());
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = ids.pop().unwrap();
    for id in ids {
        let response = editor.lsp.response(id).unwrap();
        assert!(response["items"].is_array(), "{response}");
    }
    let response = editor.lsp.response(last).unwrap();
    assert_eq!(
        editor.suggestion(&response).as_deref(),
        Some("helper(41) + 1;"),
        "{response}"
    );
    let stats = editor.stats();
    let c = &stats["completion"];
    assert_eq!(c["fromHeld"], 1, "{c}");
    assert!(c["superseded"].as_u64().unwrap() >= 1, "{c}");
    assert_eq!(c["timedOut"], 0, "{c}");
    editor.lsp.finish();
}

#[test]
fn a_keystroke_answers_the_held_request_and_keeps_or_cancels_its_call() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("never").fault(Fault::Hang));
    // No bound within the test's reach: what answers each request here is an edit, a newer
    // request or a cancel.
    let (mut editor, _dir) = Editor::start(&fake, true, "[completion]\nhold_ms = 120000\n");
    editor.type_char('l');
    let held = editor.ask();
    assert!(fake.wait_for_calls(1, HANG), "no call started");
    // Typing on: the held request is answered empty while its call still hangs; the call
    // stays, since the newer request's text extends its text.
    editor.type_char('e');
    let newer = editor.ask();
    let answer = editor.lsp.response(held).unwrap();
    assert_eq!(answer["items"], json!([]), "{answer}");
    assert_eq!(
        fake.in_flight(),
        1,
        "the call for the extended text was dropped"
    );
    // Another line: the newer request is answered empty by the one after it, and the call,
    // which nobody can use now, is cancelled and its connection closed.
    let elsewhere = editor.ask_at(1, 4);
    assert_eq!(editor.lsp.response(newer).unwrap()["items"], json!([]));
    assert!(
        fake.wait_for_closed(0, HANG),
        "the call for a place the user left stayed open"
    );
    let stats = editor.stats();
    assert_eq!(stats["completion"]["superseded"], 2, "{stats}");
    assert_eq!(stats["completion"]["callsCancelled"], 1, "{stats}");
    // The last request is still held, on its own call (hanging too): cancelling it answers it
    // and ends its call.
    let deadline = std::time::Instant::now() + HANG;
    while fake.in_flight() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fake.in_flight(), 1, "no call for the last request");
    editor
        .lsp
        .notify("$/cancelRequest", json!({"id": elsewhere}));
    let cancelled = editor.lsp.response(elsewhere).unwrap_err();
    assert_eq!(cancelled["code"], -32800, "{cancelled}");
    editor.lsp.finish();
}

#[test]
fn a_pause_while_a_call_for_earlier_text_runs_starts_the_call_for_the_text_at_the_pause() {
    let fake = FakeModel::start();
    // The call for the first keystroke hangs; the one for the text at the pause answers.
    fake.script(Reply::text("never").held());
    fake.set_default(Reply::text("ngth = 2;"));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    editor.type_char('l');
    let first = editor.ask();
    assert!(fake.wait_for_calls(1, HANG), "no call started");
    editor.type_char('e');
    let at_pause = editor.ask();
    assert_eq!(editor.lsp.response(first).unwrap()["items"], json!([]));
    // The user pauses: the held request gets the suggestion for its text while the call for
    // "l" still hangs, and that call, which nobody needs now, is cancelled.
    editor.the_pause_brings(at_pause, "ngth = 2;", &fake, 0);
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let stats = editor.stats();
    assert_eq!(stats["completion"]["callsStarted"], 2, "{stats}");
    assert_eq!(stats["completion"]["callsCancelled"], 1, "{stats}");
    editor.lsp.finish();
}

#[test]
fn a_call_that_overruns_its_usual_time_does_not_hold_up_the_call_for_the_text_at_the_pause() {
    let fake = FakeModel::start();
    // A quick first call sets the usual time; the next one hangs.
    fake.script(Reply::text("ab();"));
    fake.script(Reply::text("never").held());
    fake.set_default(Reply::text("ngth = 2;"));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    editor.type_char('q');
    let first = editor.ask();
    let answer = editor.lsp.response(first).unwrap();
    assert_eq!(
        editor.suggestion(&answer).as_deref(),
        Some("ab();"),
        "{answer}"
    );
    // After a pause, a keystroke the suggestion does not serve starts a call at once: it hangs.
    std::thread::sleep(Duration::from_millis(400));
    editor.type_char('z');
    let hanging = editor.ask();
    assert!(fake.wait_for_calls(2, HANG), "no second call started");
    editor.type_char('y');
    let at_pause = editor.ask();
    assert_eq!(editor.lsp.response(hanging).unwrap()["items"], json!([]));
    // The hanging call is long past the usual time: the call for the text at the pause starts
    // beside it and brings the suggestion; the hanging one is cancelled.
    editor.the_pause_brings(at_pause, "ngth = 2;", &fake, 1);
    editor.lsp.finish();
}

#[test]
fn cancel_request_answers_the_held_request_and_cancels_its_call() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("never").fault(Fault::Hang));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    editor.type_char('l');
    let held = editor.ask();
    assert!(fake.wait_for_calls(1, HANG), "no call started");
    editor.lsp.notify("$/cancelRequest", json!({"id": held}));
    let cancelled = editor.lsp.response(held).unwrap_err();
    assert_eq!(cancelled["code"], -32800, "{cancelled}");
    assert!(
        fake.wait_for_closed(0, HANG),
        "the call nobody wants any more stayed open"
    );
    let stats = editor.lsp.poll("the cancelled call counted", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["completion"]["callsCancelled"] == 1).then_some(stats)
    });
    assert_eq!(stats["completion"]["callsStarted"], 1, "{stats}");
    editor.lsp.finish();
}

#[test]
fn a_held_request_is_answered_empty_at_the_bound() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("never").fault(Fault::Hang));
    let (mut editor, _dir) = Editor::start(&fake, true, "[completion]\nhold_ms = 1000\n");
    editor.type_char('l');
    let held = editor.ask();
    assert_eq!(editor.lsp.response(held).unwrap()["items"], json!([]));
    // Nobody waits for the call any more: it is cancelled (on a loaded machine it may not have
    // reached the model yet; if it has, its connection is closed).
    let stats = editor.lsp.poll("the call cancelled", |lsp| {
        let stats = lsp.request("strata/stats", Value::Null).unwrap();
        (stats["completion"]["callsCancelled"] == 1).then_some(stats)
    });
    assert_eq!(stats["completion"]["timedOut"], 1, "{stats}");
    assert_eq!(stats["completion"]["callsStarted"], 1, "{stats}");
    if fake.call_count() > 0 {
        assert!(
            fake.wait_for_closed(0, HANG),
            "the call outlived the request"
        );
    }
    editor.lsp.finish();
}

#[test]
fn completion_items_are_held_for_helix_and_not_for_other_clients() {
    for (client, held) in [
        ("helix", true),
        ("Neovim", true),
        ("Zed", false),
        ("unknown", false),
    ] {
        let fake = FakeModel::start();
        fake.set_default(Reply::text("helper(41);").first_token(300));
        let version = if client == "Neovim" { "0.7.2" } else { "1.0.0" };
        let (mut editor, _dir) = Editor::start_as(&fake, false, "", Some((client, version)));
        for c in "let n = ".chars() {
            editor.type_char(c);
        }
        let id = editor.ask();
        let response = editor.lsp.response(id).unwrap();
        if held {
            assert_eq!(
                editor.suggestion(&response).as_deref(),
                Some("helper(41);"),
                "{client}: {response}"
            );
        } else {
            assert_eq!(response["items"], json!([]), "{client}: {response}");
            assert_eq!(response["isIncomplete"], true, "{client}: {response}");
        }
        editor.lsp.finish();
    }
}

#[test]
fn accepting_a_suggestion_fetches_the_next_one_before_it_is_asked_for() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("helper(41);").first_token(300));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    for c in "let n = ".chars() {
        editor.type_char(c);
    }
    let id = editor.ask();
    let first = editor.lsp.response(id).unwrap();
    assert_eq!(editor.suggestion(&first).as_deref(), Some("helper(41);"));
    assert_eq!(fake.call_count(), 1);
    // The editor inserts the suggestion (Tab): the next call starts with no request.
    insert_at_end(&mut editor, "helper(41);");
    assert!(
        fake.wait_for_calls(2, HANG),
        "accepting a suggestion started no call"
    );
    let id = editor.ask();
    let next = editor.lsp.response(id).unwrap();
    assert_eq!(editor.suggestion(&next).as_deref(), Some("helper(41);"));
    let stats = editor.stats();
    let c = &stats["completion"];
    assert_eq!(c["prefetches"], 1, "{c}");
    assert_eq!(c["fromPrefetch"], 1, "{c}");
    assert_eq!(c["callsStarted"], 2, "{c}");
    editor.lsp.finish();
}

#[test]
fn a_pause_in_an_empty_body_fetches_a_suggestion_before_it_is_asked_for() {
    let fake = FakeModel::start();
    fake.set_default(Reply::text("helper(41);").first_token(100));
    let (mut editor, _dir) = Editor::start(&fake, true, "");
    // `fn main() {` was open at the end; the editor closes the brace, then Enter opens the body
    // as one change between the two braces.
    insert_at_end(&mut editor, "}");
    let (line, character) = end_of(&editor.text);
    editor.version += 1;
    editor.lsp.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": URI, "version": editor.version},
            "contentChanges": [{
                "range": {"start": {"line": line, "character": character - 1}, "end": {"line": line, "character": character - 1}},
                "text": "\n    \n"
            }]
        }),
    );
    editor.text.insert_str(editor.text.len() - 1, "\n    \n");
    assert!(
        fake.wait_for_calls(1, HANG),
        "a pause in an empty body started no call"
    );
    let id = editor.ask_at(line + 1, 4);
    let response = editor.lsp.response(id).unwrap();
    assert_eq!(
        response["items"][0]["insertText"], "helper(41);",
        "{response}"
    );
    let stats = editor.stats();
    assert_eq!(stats["completion"]["prefetches"], 1, "{stats}");
    assert_eq!(stats["completion"]["fromPrefetch"], 1, "{stats}");
    editor.lsp.finish();
}
