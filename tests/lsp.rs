//! End-to-end: the real binary over stdio, driven the way an editor drives it.

mod support;

use serde_json::{Value, json};
use support::{Lsp, Positions, Rng};

const RUST_SOURCE: &str = r#"//! A small crate.

use std::collections::HashMap;

/// A cache of values.
#[derive(Debug, Default)]
pub struct Cache {
    items: HashMap<String, u64>, // ключ → значение
}

impl Cache {
    /// Inserts a value. 😀
    pub fn insert(&mut self, key: &str, value: u64) {
        self.items.insert(key.to_owned(), value);
    }

    pub fn get(&self, key: &str) -> Option<u64> {
        self.items.get(key).copied()
    }
}

pub trait Store {
    fn load(&self) -> Vec<u8>;
}

fn main() {
    let mut cache = Cache::default();
    cache.insert("𝄞", 1);
}
"#;

const TS_SOURCE: &str = "import { readFile } from \"fs\";\r\n\r\n/** A shape. */\r\nexport interface Shape {\r\n  area(): number;\r\n}\r\n\r\nexport class Circle implements Shape {\r\n  constructor(private r: number) {}\r\n  area(): number {\r\n    return Math.PI * this.r ** 2; // π r²\r\n  }\r\n}\r\n\r\nexport const twice = (x: number) => x * 2;\r\n\r\nfunction main(): void {\r\n  console.log(\"👋🏽\", new Circle(1).area());\r\n}\r\n";

fn client_capabilities(encodings: &[&str]) -> Value {
    json!({"general": {"positionEncodings": encodings}})
}

#[test]
fn initialize_negotiates_encoding_and_advertises_only_what_is_implemented() {
    let mut lsp = Lsp::spawn();
    let caps = lsp.initialize(client_capabilities(&["utf-16", "utf-8"]), Value::Null);
    assert_eq!(caps["positionEncoding"], "utf-8");
    assert_eq!(caps["textDocumentSync"]["change"], 2, "incremental sync");
    assert_eq!(caps["textDocumentSync"]["openClose"], true);
    let mut advertised: Vec<&str> = caps
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    advertised.sort_unstable();
    assert_eq!(
        advertised,
        [
            // Agents.
            "codeActionProvider",
            // Model completions as items: this client has no inlineCompletion.
            "completionProvider",
            "documentSymbolProvider",
            "executeCommandProvider",
            "experimental",
            "foldingRangeProvider",
            "positionEncoding",
            "textDocumentSync"
        ]
    );
    lsp.finish();

    let mut lsp = Lsp::spawn();
    let caps = lsp.initialize(
        json!({}),
        json!({"documentSymbols": false, "foldingRanges": false, "config": {"completion": {"mode": "off"}}}),
    );
    assert_eq!(
        caps["positionEncoding"], "utf-16",
        "utf-16 when the client offers nothing"
    );
    assert!(caps.get("completionProvider").is_none());
    assert!(caps.get("inlineCompletionProvider").is_none());
    assert!(caps.get("documentSymbolProvider").is_none());
    assert!(caps.get("foldingRangeProvider").is_none());
    lsp.open("file:///w/a.rs", "rust", 1, "fn a() {}\n");
    let symbols = lsp.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": "file:///w/a.rs"}}),
    );
    assert_eq!(symbols, Ok(Value::Null));
    lsp.finish();

    let mut lsp = Lsp::spawn();
    let caps = lsp.initialize(client_capabilities(&["utf-32"]), Value::Null);
    assert_eq!(caps["positionEncoding"], "utf-32");
    lsp.finish();
}

#[test]
fn chunk_thresholds_come_from_initialization_options() {
    let mut lsp = Lsp::spawn();
    lsp.initialize(
        json!({}),
        json!({"chunks": {"maxChunkBytes": 256, "windowLines": "ten"}}),
    );
    let warning = lsp.notification("window/showMessage");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("windowLines must be a positive integer"),
        "{warning}"
    );
    let body: String = (0..40).map(|i| format!("    let v{i} = {i};\n")).collect();
    lsp.open(
        "file:///w/big.rs",
        "rust",
        1,
        &format!("fn big() {{\n{body}}}\n"),
    );
    let chunks = lsp.chunks("file:///w/big.rs");
    let kinds: Vec<&str> = chunks["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "function");
    assert!(
        kinds.len() > 3 && kinds[1..].iter().all(|k| *k == "part"),
        "{kinds:?}"
    );
    lsp.finish();
}

const FRAGMENTS: &[&str] = &[
    "a",
    "x",
    "_",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\r",
    "{",
    "}",
    "(",
    ")",
    ";",
    "\"",
    "'",
    "//",
    "/*",
    "*/",
    "é",
    "ß",
    "中文",
    "😀",
    "𝄞",
    "👋🏽",
    "🦀",
    "fn f() {}\n",
    "struct S;\n",
    "impl S {\n",
    "class C {}\n",
    "function g() {\n",
    "/// doc\n",
    "let v = 1;",
    "=> ",
    "<T>",
    "#[test]\n",
    "export ",
];

/// Applies one random change to `text`; returns the LSP content change.
fn random_change(rng: &mut Rng, text: &mut String, positions: &Positions) -> Value {
    let boundaries = positions.boundaries(text);
    let start_i = rng.below(boundaries.len());
    let start = boundaries[start_i];
    let delete = if text.len() > 12_000 { 3 } else { rng.below(4) };
    let end = if delete == 0 {
        start
    } else {
        let max = if rng.below(8) == 0 { 200 } else { 12 };
        let span = 1 + rng.below(max);
        boundaries[(start_i + span).min(boundaries.len() - 1)]
    };
    let mut insert = String::new();
    if delete < 2 || rng.below(2) == 0 {
        for _ in 0..1 + rng.below(3) {
            let fragment: &&str = rng.pick(FRAGMENTS);
            insert.push_str(fragment);
        }
    }
    let range =
        json!({"start": positions.position(text, start), "end": positions.position(text, end)});
    text.replace_range(start..end, &insert);
    json!({"range": range, "text": insert})
}

/// Types thousands of random edits and checks the server's copy and chunks against the model.
fn random_edit_session(encoding: &'static str, seed: u64, edits: usize) {
    let mut lsp = Lsp::spawn();
    let caps = lsp.initialize(client_capabilities(&[encoding]), Value::Null);
    assert_eq!(caps["positionEncoding"], encoding);
    let positions = Positions { encoding };
    let mut rng = Rng::new(seed);
    let docs = [
        ("file:///w/src/lib.rs", "rust", RUST_SOURCE),
        ("file:///w/src/app.ts", "typescript", TS_SOURCE),
    ];
    let mut texts: Vec<String> = docs.iter().map(|d| d.2.to_string()).collect();
    let mut versions = vec![1; docs.len()];
    for (uri, language, text) in docs {
        lsp.open(uri, language, 1, text);
    }
    let mut made = 0;
    while made < edits {
        let d = rng.below(docs.len());
        let n = 1 + rng.below(3);
        let changes: Vec<Value> = (0..n)
            .map(|_| random_change(&mut rng, &mut texts[d], &positions))
            .collect();
        made += n;
        versions[d] += 1;
        lsp.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": docs[d].0, "version": versions[d]}, "contentChanges": changes}),
        );
        // Requests interleaved with the typing.
        match rng.below(40) {
            0 => {
                let got = lsp.debug_text(docs[d].0);
                assert_eq!(got["version"], versions[d]);
                assert_eq!(got["text"], texts[d].as_str(), "after {made} edits");
                assert_eq!(got["inSync"], true);
            }
            1 => {
                let chunks = lsp.chunks(docs[d].0);
                assert!(chunks["version"].as_i64().unwrap() >= versions[d] as i64);
            }
            2 => {
                let id = lsp.send_request(
                    "textDocument/documentSymbol",
                    json!({"textDocument": {"uri": docs[d].0}}),
                );
                // Cancel some of them; either answer is fine, but an answer must come.
                if rng.below(2) == 0 {
                    lsp.notify("$/cancelRequest", json!({"id": id}));
                }
                let _ = lsp.response(id);
            }
            3 => {
                lsp.request(
                    "textDocument/foldingRange",
                    json!({"textDocument": {"uri": docs[d].0}}),
                )
                .unwrap();
            }
            _ => {}
        }
    }
    for (d, (uri, language, _)) in docs.iter().enumerate() {
        let got = lsp.debug_text(uri);
        assert_eq!(
            got["text"],
            texts[d].as_str(),
            "{uri} differs after {made} edits"
        );
        assert_eq!(got["version"], versions[d]);
        // Chunks after the edits equal a fresh chunking of the final text.
        let incremental = lsp.chunks(uri);
        let fresh_uri = format!("{uri}.fresh.{}", uri.rsplit('.').next().unwrap());
        lsp.open(&fresh_uri, language, 1, &texts[d]);
        let fresh = lsp.chunks(&fresh_uri);
        assert_eq!(incremental["version"], versions[d]);
        assert_eq!(
            incremental["chunks"], fresh["chunks"],
            "{uri}: incremental chunks differ from a fresh chunking of:\n{}",
            texts[d]
        );
    }
    lsp.finish();
}

#[test]
fn random_edits_in_a_utf16_session_keep_text_and_chunks_exact() {
    random_edit_session("utf-16", 0x5eed_0001, 5_000);
}

#[test]
fn random_edits_in_a_utf8_session_keep_text_and_chunks_exact() {
    random_edit_session("utf-8", 0x5eed_0002, 5_000);
}

#[test]
fn random_edits_in_a_utf32_session_keep_text_and_chunks_exact() {
    random_edit_session("utf-32", 0x5eed_0003, 1_000);
}

fn change(lsp: &mut Lsp, uri: &str, version: i32, changes: Value) {
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes}),
    );
}

fn range(l1: u32, c1: u32, l2: u32, c2: u32) -> Value {
    json!({"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}})
}

#[test]
fn changes_that_do_not_fit_are_refused_and_sync_recovers() {
    let mut lsp = Lsp::spawn();
    lsp.initialize(client_capabilities(&["utf-16"]), Value::Null);
    let uri = "file:///w/bad.rs";

    // A change before didOpen (Helix sends those typed while the server starts, then the didOpen
    // with the whole text): dropped without a word, since there is no copy to be out of sync.
    change(
        &mut lsp,
        uri,
        2,
        json!([{"range": range(0, 0, 0, 0), "text": "x"}]),
    );
    assert_eq!(lsp.try_notification("window/showMessage"), None);

    let original = "fn main() { let s = \"😀\"; }\n";
    lsp.open(uri, "rust", 1, original);
    assert_eq!(lsp.debug_text(uri)["text"], original);

    let cases = [
        (range(5, 0, 5, 1), "past the end of the document"),
        (range(0, 22, 0, 22), "surrogate pair"), // between the two halves of 😀
        (range(0, 4, 0, 2), "ends before it starts"),
    ];
    let mut version = 1;
    let mut good_version = 1;
    for (bad, reason) in cases {
        version += 1;
        change(&mut lsp, uri, version, json!([{"range": bad, "text": "X"}]));
        let warning = lsp.notification("window/showMessage");
        assert!(
            warning["message"].as_str().unwrap().contains(reason),
            "{warning}"
        );
        let text = lsp.debug_text(uri);
        assert_eq!(text["text"], original, "a refused change loses nothing");
        assert_eq!(text["inSync"], false);
        assert_eq!(text["version"], good_version);
        // While out of sync, incremental changes are refused without a new warning...
        version += 1;
        change(
            &mut lsp,
            uri,
            version,
            json!([{"range": range(0, 0, 0, 0), "text": "Y"}]),
        );
        assert_eq!(lsp.debug_text(uri)["text"], original);
        // ...and a full-text change brings the document back.
        version += 1;
        change(&mut lsp, uri, version, json!([{"text": original}]));
        let text = lsp.debug_text(uri);
        assert_eq!(text["inSync"], true);
        assert_eq!(text["version"], version);
        good_version = version;
    }

    // A character past the end of its line means the end of the line (LSP 3.17).
    good_version += 1;
    change(
        &mut lsp,
        uri,
        good_version,
        json!([{"range": range(0, 300, 0, 400), "text": " // end"}]),
    );
    let text = lsp.debug_text(uri);
    assert_eq!(
        (text["text"].clone(), text["inSync"].clone()),
        (json!("fn main() { let s = \"😀\"; } // end\n"), json!(true))
    );

    // A version that goes backwards.
    change(
        &mut lsp,
        uri,
        good_version - 1,
        json!([{"range": range(0, 0, 0, 0), "text": "Z"}]),
    );
    let warning = lsp.notification("window/showMessage");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("does not follow"),
        "{warning}"
    );
    assert_eq!(lsp.debug_text(uri)["inSync"], false);
    // A reopen brings it back too.
    lsp.open(uri, "rust", 1, "fn again() {}\n");
    let text = lsp.debug_text(uri);
    assert_eq!(
        (text["inSync"].clone(), text["text"].clone()),
        (json!(true), json!("fn again() {}\n"))
    );
    assert_eq!(lsp.chunks(uri)["chunks"][0]["name"], "again");

    // A batch that ends in a full text is applied whole even if an earlier change was bad.
    change(
        &mut lsp,
        uri,
        2,
        json!([{"range": range(9, 0, 9, 0), "text": "?"}, {"text": "fn b() {}\n"}]),
    );
    assert_eq!(lsp.debug_text(uri)["text"], "fn b() {}\n");

    // Requests about documents that are not open, and malformed requests, get errors.
    let error = lsp
        .request(
            "strata/chunks",
            json!({"textDocument": {"uri": "file:///nowhere.rs"}}),
        )
        .unwrap_err();
    assert!(
        error["message"].as_str().unwrap().contains("not open"),
        "{error}"
    );
    assert!(lsp.request("strata/chunks", json!({"nope": 1})).is_err());
    assert!(
        lsp.request("textDocument/documentSymbol", json!({}))
            .is_err()
    );
    lsp.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": "file:///never-opened.rs"}}),
    );
    assert_eq!(lsp.chunks(uri)["chunks"][0]["name"], "b", "still serving");
    lsp.finish();
}

#[test]
fn binary_and_very_large_documents_are_answered() {
    let mut lsp = Lsp::spawn();
    lsp.initialize(client_capabilities(&["utf-16"]), Value::Null);
    let binary: String = (0u32..4096)
        .map(|i| char::from_u32(i % 0xD7FF).unwrap_or('\0'))
        .collect();
    lsp.open("file:///w/blob.bin", "plaintext", 1, &binary);
    let chunks = lsp.chunks("file:///w/blob.bin");
    assert!(
        chunks["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "window")
    );

    // 50 MB of Rust: too large to parse, so it gets line windows; edits still apply.
    let line = "fn f() { let x = \"0123456789abcdef0123456789abcdef0123456789\"; }\n";
    let big = line.repeat(50 * 1024 * 1024 / line.len());
    let uri = "file:///w/huge.rs";
    lsp.open(uri, "rust", 1, &big);
    change(
        &mut lsp,
        uri,
        2,
        json!([{"range": range(700_000, 0, 700_000, 0), "text": "// edited\n"}]),
    );
    let symbols = lsp
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    assert_eq!(symbols, json!([]));
    let text = lsp.debug_text(uri);
    assert_eq!(text["version"], 2);
    assert_eq!(
        text["text"].as_str().unwrap().len(),
        big.len() + "// edited\n".len()
    );
    lsp.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": uri}}),
    );
    lsp.finish();
}

#[test]
fn malformed_messages_are_answered_with_errors_and_the_session_goes_on() {
    let mut lsp = Lsp::spawn();
    let uri = "file:///tmp/strata-test/frames.rs";
    let symbols = json!({"textDocument": {"uri": uri}});
    // Before `initialize`, even the answers the transport makes itself are refused.
    let early = lsp
        .request("textDocument/documentSymbol", symbols.clone())
        .unwrap_err();
    assert_eq!(early["code"], -32002, "{early}");
    lsp.initialize(client_capabilities(&["utf-16"]), json!({}));
    let frame = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    // A body that is not JSON; JSON that is neither a request nor an answer.
    lsp.send_raw(frame("not json").as_bytes());
    assert_eq!(lsp.error_without_id()["code"], -32700);
    lsp.send_raw(frame(r#"{"id": 5, "params": []}"#).as_bytes());
    assert_eq!(lsp.error_without_id()["code"], -32600);
    // A line that is not a header; a header without Content-Length; stray line breaks. After
    // each the server skips to the next Content-Length header: the request between ends that.
    lsp.send_raw(b"garbage\r\n\r\n");
    assert_eq!(lsp.error_without_id()["code"], -32700);
    lsp.request("strata/stats", Value::Null)
        .expect("strata/stats");
    lsp.send_raw(b"Content-Type: application/json\r\n\r\n\r\n");
    assert_eq!(lsp.error_without_id()["code"], -32700);
    // The session goes on, with the transport's own answers and the service's.
    lsp.open(uri, "rust", 1, "/// Doc.\nfn main() {}\n");
    lsp.wait_parsed(uri, 1);
    let answer = lsp.request("textDocument/documentSymbol", symbols).unwrap();
    assert_eq!(answer[0]["name"], "main", "{answer}");
    assert_eq!(
        answer[0]["range"]["start"],
        json!({"line": 0, "character": 0})
    );
    let missing = lsp
        .request(
            "textDocument/foldingRange",
            json!({"textDocument": {"uri": "file:///tmp/strata-test/not-open.rs"}}),
        )
        .unwrap_err();
    assert_eq!(missing["code"], -32602, "{missing}");
    assert!(missing["message"].as_str().unwrap().contains("is not open"));
    assert_eq!(lsp.debug_text(uri)["text"], "/// Doc.\nfn main() {}\n");
    lsp.finish();
}

#[test]
fn a_whole_document_request_can_be_cancelled() {
    let mut lsp = Lsp::spawn();
    lsp.initialize(client_capabilities(&["utf-16"]), json!({}));
    let uri = "file:///tmp/strata-test/cancel.rs";
    // Large enough that its first parse is still running when the cancellation arrives.
    let text: String = (0..20_000)
        .map(|i| format!("/// Doc {i}.\nfn f{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n"))
        .collect();
    lsp.open(uri, "rust", 1, &text);
    let id = lsp.send_request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": uri}}),
    );
    lsp.notify("$/cancelRequest", json!({"id": id}));
    let error = lsp.response(id).unwrap_err();
    assert_eq!(error["code"], -32800, "{error}");
    // Answered once: the next request's answer is the next message about this document.
    let symbols = lsp
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    assert_eq!(symbols.as_array().unwrap().len(), 20_000);
    lsp.finish();
}

#[test]
fn symbols_and_folds_come_from_chunks() {
    let mut lsp = Lsp::spawn();
    lsp.initialize(client_capabilities(&["utf-16"]), Value::Null);
    let uri = "file:///w/src/lib.rs";
    lsp.open(uri, "rust", 1, RUST_SOURCE);
    let symbols = lsp
        .request(
            "textDocument/documentSymbol",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    let outline: Vec<String> = symbols
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let kids: Vec<&str> = s["children"].as_array().map_or(vec![], |k| {
                k.iter().map(|c| c["name"].as_str().unwrap()).collect()
            });
            format!("{}:{}{:?}", s["kind"], s["name"].as_str().unwrap(), kids)
        })
        .collect();
    assert_eq!(
        outline,
        [
            "23:Cache[]",
            "19:Cache[\"insert\", \"get\"]",
            "11:Store[\"load\"]",
            "12:main[]"
        ]
    );
    // UTF-16 columns: the selection range of `insert` sits after the doc comment with 😀.
    let insert = &symbols[1]["children"][0];
    assert_eq!(
        insert["range"]["start"],
        json!({"line": 11, "character": 4})
    );
    assert_eq!(
        insert["selectionRange"]["start"],
        json!({"line": 12, "character": 11})
    );
    assert_eq!(
        insert["detail"],
        "pub fn insert(&mut self, key: &str, value: u64)"
    );

    let folds = lsp
        .request(
            "textDocument/foldingRange",
            json!({"textDocument": {"uri": uri}}),
        )
        .unwrap();
    let folds: Vec<(u64, u64, String)> = folds
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["startLine"].as_u64().unwrap(),
                f["endLine"].as_u64().unwrap(),
                f["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert!(folds.contains(&(6, 8, String::new())), "{folds:?}"); // struct Cache
    assert!(folds.contains(&(4, 5, "comment".into())), "{folds:?}"); // its doc and attribute
    assert!(folds.contains(&(10, 19, String::new())), "{folds:?}"); // impl Cache
    lsp.finish();
}
