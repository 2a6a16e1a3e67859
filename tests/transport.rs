//! The base protocol as a client sees it, against the real binary: every request is answered
//! (an unknown method with MethodNotFound, one before `initialize` with ServerNotInitialized, any
//! after `shutdown` with InvalidRequest, one whose id is still running with InvalidRequest),
//! and after a frame that cannot be read the server reports it (an error with a null id) and
//! answers the next good frame.

mod support;

use serde_json::{Value, json};
use support::Lsp;

const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_REQUEST: i64 = -32600;
const PARSE_ERROR: i64 = -32700;
const INVALID_PARAMS: i64 = -32602;
const SERVER_NOT_INITIALIZED: i64 = -32002;

/// A request the server must not answer: it sits inside a malformed frame.
const INSIDE: &str = r#"{"jsonrpc":"2.0","id":999,"method":"strata/stats"}"#;

fn started() -> Lsp {
    let mut lsp = Lsp::spawn();
    lsp.initialize(json!({}), json!({}));
    lsp
}

/// Sends `bad`, then a good request: the bad one is reported as a parse error, the good one is
/// answered, and nothing else arrives (not an answer to the request inside the bad frame).
fn recovers_from(bad: &str) {
    let mut lsp = started();
    lsp.send_raw(bad.as_bytes());
    let stats = lsp.request("strata/stats", Value::Null);
    assert!(stats.is_ok(), "{stats:?}\n{}", lsp.log());
    assert_eq!(lsp.error_without_id()["code"], PARSE_ERROR);
    assert!(lsp.request("strata/stats", Value::Null).is_ok());
    lsp.finish();
}

#[test]
fn a_header_without_content_length() {
    recovers_from(&format!(
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n{INSIDE}"
    ));
}

#[test]
fn a_negative_content_length() {
    recovers_from(&format!("Content-Length: -5\r\n\r\n{INSIDE}"));
}

#[test]
fn a_content_length_that_is_not_a_number() {
    recovers_from(&format!("Content-Length: abc\r\n\r\n{INSIDE}"));
}

#[test]
fn a_content_length_that_overflows() {
    recovers_from(&format!(
        "Content-Length: 99999999999999999999999\r\n\r\n{INSIDE}"
    ));
}

#[test]
fn a_content_length_shorter_than_the_body() {
    recovers_from(&format!("Content-Length: 10\r\n\r\n{INSIDE}"));
}

#[test]
fn a_content_length_longer_than_the_body() {
    // The server reads on into the next frame; its header ends the short one.
    recovers_from(&format!(
        "Content-Length: {}\r\n\r\n{INSIDE}",
        INSIDE.len() + 500
    ));
}

#[test]
fn a_content_length_over_the_frame_limit() {
    recovers_from(&format!("Content-Length: 300000000\r\n\r\n{INSIDE}"));
}

#[test]
fn a_header_line_without_a_colon() {
    recovers_from(&format!(
        "Content-Length: {}\r\nnot a header\r\n\r\n{INSIDE}",
        INSIDE.len()
    ));
}

#[test]
fn unknown_requests_get_method_not_found_with_their_ids() {
    let mut lsp = started();
    // Sent together, answered each with its own id.
    let ids: Vec<(i64, &str)> = ["$/unknownThing", "foo/bar", "", "strata/noSuchThing"]
        .into_iter()
        .map(|method| (lsp.send_request(method, json!({})), method))
        .collect();
    for (id, method) in ids {
        let error = lsp.response(id).unwrap_err();
        assert_eq!(error["code"], METHOD_NOT_FOUND, "{method:?}: {error}");
    }
    lsp.finish();
}

#[test]
fn unknown_notifications_get_no_answer() {
    let mut lsp = started();
    lsp.notify("$/unknownThing", json!({"x": 1}));
    lsp.notify("foo/bar", json!({}));
    lsp.send(&json!({"jsonrpc": "2.0", "method": ""}));
    assert!(lsp.request("strata/stats", Value::Null).is_ok());
    // `finish` fails on any message left unread.
    lsp.finish();
}

#[test]
fn requests_after_shutdown_get_invalid_request() {
    let mut lsp = started();
    lsp.open("file:///w/a.rs", "rust", 1, "fn a() {}\n");
    lsp.request("shutdown", Value::Null).expect("shutdown");
    for method in [
        "strata/stats",
        "$/unknownThing",
        "foo/bar",
        "textDocument/documentSymbol",
        "shutdown",
    ] {
        let error = lsp
            .request(method, json!({"textDocument": {"uri": "file:///w/a.rs"}}))
            .unwrap_err();
        assert_eq!(error["code"], INVALID_REQUEST, "{method}: {error}");
    }
    lsp.exit();
}

#[test]
fn before_initialize_requests_are_refused_and_notifications_dropped() {
    let mut lsp = Lsp::spawn();
    let uri = "file:///w/early.rs";
    let error = lsp.request("strata/stats", Value::Null).unwrap_err();
    assert_eq!(error["code"], SERVER_NOT_INITIALIZED, "{error}");
    // Dropped: after `initialize` the document is not open.
    lsp.open(uri, "rust", 1, "fn a() {}\n");
    lsp.initialize(json!({}), json!({}));
    let error = lsp
        .request("strata/debug/text", json!({"textDocument": {"uri": uri}}))
        .unwrap_err();
    assert_eq!(error["code"], INVALID_PARAMS, "{error}");
    // `initialize` is answered once.
    let again = lsp
        .request("initialize", json!({"processId": null, "capabilities": {}}))
        .unwrap_err();
    assert_eq!(again["code"], INVALID_REQUEST, "{again}");
    lsp.finish();
}

#[test]
fn a_reused_request_id_is_refused_while_the_first_runs() {
    let mut lsp = started();
    let uri = "file:///w/big.rs";
    // Large enough that its first parse is still running when the second request arrives.
    let text: String = (0..20_000)
        .map(|i| format!("fn f{i}(x: u32) -> u32 {{\n    x + {i}\n}}\n"))
        .collect();
    lsp.open(uri, "rust", 1, &text);
    let params = json!({"textDocument": {"uri": uri}});
    let request = json!({"jsonrpc": "2.0", "id": "same", "method": "textDocument/documentSymbol", "params": params});
    lsp.send(&request);
    lsp.send(&request);
    // Two answers with that id, and no third (`finish` fails on one): the refusal and the
    // symbols while the parse is still running (the usual case), else the symbols twice.
    let answers: Vec<Value> = (0..2)
        .map(|_| lsp.message_with_id(&json!("same")))
        .collect();
    let refused = answers
        .iter()
        .filter(|a| a["error"]["code"] == INVALID_REQUEST)
        .count();
    let symbols = answers.iter().filter(|a| a["result"].is_array()).count();
    assert!(
        (refused, symbols) == (1, 1) || (refused, symbols) == (0, 2),
        "{answers:?}"
    );
    lsp.finish();
}

/// A whole-file answer is megabytes: the server widens the pipe it writes them into to a
/// megabyte, so that it writes ahead while the client reads (the default pipe holds 64 KB).
#[cfg(target_os = "linux")]
#[test]
fn answers_go_through_a_pipe_of_a_megabyte() {
    let mut lsp = started();
    assert!(lsp.request("strata/stats", Value::Null).is_ok());
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    assert_eq!(lsp.stdout_pipe_bytes(), max.min(1 << 20), "{}", lsp.log());
    lsp.finish();
}
