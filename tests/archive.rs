//! The archive end to end: the CLI and the server over stdio, on real temp directories and real
//! SQLite files.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use support::Lsp;

/// A workspace of `n` source files (Rust and TypeScript in nested folders), plus files the
/// index must leave out: ignored by .gitignore and .strataignore, hidden, binary.
fn workspace(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for i in 0..n {
        let sub = root.join(format!("src/m{}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        if i % 2 == 0 {
            std::fs::write(
                sub.join(format!("f{i}.rs")),
                format!(
                    "/// Computes alpha {i}.\npub fn compute_alpha_{i}(x: u64) -> u64 {{\n    x * {i}\n}}\n\npub struct Holder{i} {{\n    value: u64,\n}}\n"
                ),
            )
            .unwrap();
        } else {
            std::fs::write(
                sub.join(format!("f{i}.ts")),
                format!("/** Beta {i}. */\nexport function computeBeta{i}(x: number): number {{\n  return x * {i};\n}}\n\nexport class Box{i} {{\n  open(): void {{}}\n}}\n"),
            )
            .unwrap();
        }
    }
    std::fs::write(root.join(".gitignore"), "ignored/\n").unwrap();
    std::fs::create_dir_all(root.join("ignored")).unwrap();
    std::fs::write(root.join("ignored/skip.rs"), "fn ignored_by_git() {}\n").unwrap();
    std::fs::write(root.join(".strataignore"), "private.rs\n").unwrap();
    std::fs::write(root.join("private.rs"), "fn ignored_by_strata() {}\n").unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    std::fs::write(root.join(".hidden/h.rs"), "fn hidden_file() {}\n").unwrap();
    std::fs::write(root.join("blob.bin"), [0u8, 1, 2, 3, 0, 159, 146, 150]).unwrap();
    dir
}

fn strata(cache: &Path, cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .current_dir(cwd)
        .env_remove("STRATA_CACHE_DIR")
        .output()
        .expect("run strata")
}

fn index_json(cache: &Path, root: &Path) -> Value {
    let out = strata(cache, root, &["index", "--json"]);
    assert!(
        out.status.success(),
        "strata index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn search_json(cache: &Path, root: &Path, query: &str) -> Vec<Value> {
    let out = strata(cache, root, &["search", query, "--json"]);
    assert!(
        out.status.success(),
        "strata search failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn archive_file(summary: &Value) -> PathBuf {
    PathBuf::from(summary["archive"].as_str().unwrap())
}

#[test]
fn index_then_reindex_only_what_changed_and_search() {
    let ws = workspace(2000);
    let cache = tempfile::tempdir().unwrap();
    let root = ws.path();

    let cold = index_json(cache.path(), root);
    assert_eq!(
        (
            cold["files"].clone(),
            cold["indexed"].clone(),
            cold["skipped"].clone()
        ),
        (json!(2001), json!(2000), json!(1)),
        "2000 sources and one binary file; ignored and hidden files are not walked: {cold}"
    );
    assert_eq!(cold["archiveFiles"], 2000);
    // Each file: a function and a struct, or a function, a class and its method.
    assert_eq!(cold["archiveChunks"], 1000 * 2 + 1000 * 3);

    let warm = index_json(cache.path(), root);
    assert_eq!(
        (warm["indexed"].clone(), warm["unchanged"].clone()),
        (json!(0), json!(2000)),
        "{warm}"
    );

    // One file changed, one deleted, one renamed.
    let changed = root.join("src/m0/f4.rs");
    std::fs::write(
        &changed,
        "pub fn compute_alpha_4(x: u64) -> u64 { x }\npub fn freshly_added_helper() {}\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("src/m0/f6.rs")).unwrap();
    std::fs::rename(root.join("src/m1/f100.rs"), root.join("src/m1/renamed.rs")).unwrap();
    let after = index_json(cache.path(), root);
    assert_eq!(
        (
            after["indexed"].clone(),
            after["removed"].clone(),
            after["unchanged"].clone()
        ),
        (json!(2), json!(2), json!(1997)),
        "{after}"
    );

    let hits = search_json(cache.path(), root, "freshly_added_helper");
    assert_eq!(hits[0]["path"], "src/m0/f4.rs");
    assert_eq!(hits[0]["name"], "freshly_added_helper");
    assert!(
        search_json(cache.path(), root, "compute_alpha_6")
            .iter()
            .all(|h| h["name"] != "compute_alpha_6")
    );
    let renamed = search_json(cache.path(), root, "compute_alpha_100");
    assert_eq!(
        (renamed[0]["path"].clone(), renamed[0]["line"].clone()),
        (json!("src/m1/renamed.rs"), json!(1))
    );
    // Names split on case: "compute beta" finds computeBeta…; prefix matching finds Holder12…
    let beta = search_json(cache.path(), root, "computeBeta1");
    assert_eq!(
        beta[0]["name"], "computeBeta1",
        "the exact name comes first: {beta:?}"
    );
    assert!(
        search_json(cache.path(), root, "holder12")
            .iter()
            .any(|h| h["name"] == "Holder12")
    );
    // Ignored, hidden and binary files never enter the archive.
    for name in ["ignored_by_git", "ignored_by_strata", "hidden_file"] {
        assert!(
            search_json(cache.path(), root, name).is_empty(),
            "{name} was indexed"
        );
    }
}

#[test]
fn kill_during_indexing_leaves_a_database_the_next_run_completes() {
    let ws = workspace(3000);
    let cache = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["index"])
        .current_dir(ws.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the database exists (wherever indexing has got to).
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60 {
        let exists = walk_files(cache.path())
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "sqlite-wal"));
        if exists {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let summary = index_json(cache.path(), ws.path());
    assert_eq!(summary["archiveFiles"], 3000, "{summary}");
    assert_eq!(summary["archiveChunks"], 1500 * 2 + 1500 * 3);
    let conn = rusqlite::Connection::open(archive_file(&summary)).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn corrupt_or_outdated_databases_are_moved_aside_and_rebuilt() {
    let ws = workspace(20);
    let cache = tempfile::tempdir().unwrap();
    let summary = index_json(cache.path(), ws.path());
    let db = archive_file(&summary);

    // A database the running Strata did not make: rebuilt with a warning that says why, every
    // file indexed again.
    let rebuilt_after = |change: &str, why: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(change)
            .unwrap();
        let out = strata(cache.path(), ws.path(), &["index", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains(why), "{stderr}");
        let rebuilt: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (rebuilt["indexed"].clone(), rebuilt["archiveFiles"].clone()),
            (json!(20), json!(20))
        );
    };
    // Another schema version.
    rebuilt_after(
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
        "schema version 999",
    );
    // Chunks cut by other chunk queries (an older Strata's): unchanged files would keep them.
    rebuilt_after(
        "UPDATE meta SET value = 'chunk queries 0000000000000000' WHERE key = 'stamp'",
        "was built with chunk queries 0000000000000000, not chunk queries ",
    );
    // Symbol tables from another version of their extraction: likewise.
    rebuilt_after(
        "UPDATE meta SET value = replace(value, 'symbol tables', 'symbol tables 0, was') WHERE key = 'stamp'",
        "symbol tables 0, was",
    );

    // A file that is not a database at all.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(
        &db,
        b"this is not a database, just bytes that look nothing like one",
    )
    .unwrap();
    let out = strata(cache.path(), ws.path(), &["index", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("moved it to") && stderr.contains("rebuilding"),
        "{stderr}"
    );
    let rebuilt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rebuilt["archiveFiles"], 20);
    let aside = walk_files(db.parent().unwrap())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("broken"))
        .count();
    assert_eq!(aside, 1, "the latest bad file is kept aside, older ones go");
    assert_eq!(
        search_json(cache.path(), ws.path(), "compute_alpha_2")[0]["name"],
        "compute_alpha_2"
    );
}

#[test]
fn an_unusable_cache_dir_is_a_clear_error_and_the_server_keeps_working() {
    let ws = workspace(4);
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let cache = blocker.path().join("cannot-be-a-dir");
    let out = strata(&cache, ws.path(), &["index"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot use the cache directory"),
        "{stderr}"
    );

    let mut lsp = Lsp::spawn();
    let root_uri = format!("file://{}", ws.path().display());
    lsp.request(
        "initialize",
        json!({"processId": null, "rootUri": root_uri, "capabilities": {}, "initializationOptions": {"cacheDir": cache}}),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    // One warning from the archive, one from the gateway's database, in either order.
    let mut warnings: Vec<String> = (0..2)
        .map(|_| {
            lsp.notification("window/showMessage")["message"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    warnings.sort_by_key(|w| !w.contains("search is off"));
    assert!(warnings[0].contains("search is off"), "{warnings:?}");
    assert!(warnings[1].contains("not cached on disk"), "{warnings:?}");
    let uri = format!("{root_uri}/src/m0/f0.rs");
    lsp.open(&uri, "rust", 1, "fn still_chunked() {}\n");
    assert_eq!(lsp.chunks(&uri)["chunks"][0]["name"], "still_chunked");
    let error = lsp
        .request("strata/search", json!({"query": "x"}))
        .unwrap_err();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("archive is not open"),
        "{error}"
    );
    lsp.finish();
}

/// A server on `root`, with progress and file watching, waiting until indexing is done.
fn serve(root: &Path, cache: &Path) -> Lsp {
    let mut lsp = Lsp::spawn();
    lsp.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": format!("file://{}", root.display()),
            "capabilities": {
                "window": {"workDoneProgress": true},
                "workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}
            },
            "initializationOptions": {"cacheDir": cache}
        }),
    )
    .unwrap();
    lsp.notify("initialized", json!({}));
    let registration = lsp.answer("client/registerCapability", Value::Null);
    assert_eq!(
        registration["registrations"][0]["method"],
        "workspace/didChangeWatchedFiles"
    );
    let create = lsp.answer("window/workDoneProgress/create", Value::Null);
    assert_eq!(create["token"], "strata/index");
    let begin = lsp.notification("$/progress");
    assert_eq!(begin["value"]["kind"], "begin");
    loop {
        let progress = lsp.notification("$/progress");
        if progress["value"]["kind"] == "end" {
            assert!(
                progress["value"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("files"),
                "{progress}"
            );
            break;
        }
    }
    lsp
}

fn search(lsp: &mut Lsp, query: &str) -> Vec<Value> {
    let result = lsp
        .request("strata/search", json!({"query": query, "limit": 5}))
        .unwrap();
    result["hits"].as_array().unwrap().clone()
}

#[test]
fn the_server_indexes_searches_unsaved_buffers_and_follows_file_changes() {
    let ws = workspace(200);
    let cache = tempfile::tempdir().unwrap();
    let root = ws.path();
    let mut lsp = serve(root, cache.path());
    let stats = lsp.request("strata/stats", Value::Null).unwrap();
    assert_eq!(stats["archive"]["files"], 200, "{stats}");

    let hits = search(&mut lsp, "compute_alpha_42");
    assert_eq!(hits[0]["name"], "compute_alpha_42");
    assert_eq!(
        hits[0]["uri"],
        format!("file://{}/src/m0/f42.rs", root.display())
    );
    assert_eq!(
        hits[0]["range"]["start"],
        json!({"line": 0, "character": 0})
    );
    let symbols = lsp
        .request("workspace/symbol", json!({"query": "Box17"}))
        .unwrap();
    assert_eq!(symbols[0]["name"], "Box17");
    assert_eq!(symbols[0]["kind"], 5, "a class");

    // Typed into an open buffer, not saved: found once typing pauses.
    let uri = format!("file://{}/src/m0/f0.rs", root.display());
    let text = std::fs::read_to_string(root.join("src/m0/f0.rs")).unwrap();
    lsp.open(&uri, "rust", 1, &text);
    let end = text.lines().count();
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
            {"range": {"start": {"line": end, "character": 0}, "end": {"line": end, "character": 0}},
             "text": "\npub fn zebra_quasar_unsaved() {}\n"}
        ]}),
    );
    let hit = lsp.poll("the unsaved function in search", |lsp| {
        search(lsp, "zebra_quasar_unsaved").into_iter().next()
    });
    assert_eq!(hit["uri"], uri);
    assert_eq!(hit["range"]["start"]["line"], end + 1);

    // A file deleted on disk leaves the results once the client reports it.
    std::fs::remove_file(root.join("src/m0/f42.rs")).unwrap();
    lsp.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": format!("file://{}/src/m0/f42.rs", root.display()), "type": 3}]}),
    );
    lsp.poll("the deleted file to leave the archive", |lsp| {
        search(lsp, "compute_alpha_42")
            .iter()
            .all(|h| h["name"] != "compute_alpha_42")
            .then_some(())
    });

    // A folder renamed: one event for the old name, one for the new.
    std::fs::rename(root.join("src/m1"), root.join("src/moved")).unwrap();
    lsp.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [
            {"uri": format!("file://{}/src/m1", root.display()), "type": 3},
            {"uri": format!("file://{}/src/moved", root.display()), "type": 1}
        ]}),
    );
    let moved = lsp.poll("the renamed folder in search", |lsp| {
        let hits = search(lsp, "compute_alpha_100");
        hits.first()
            .filter(|h| h["uri"].as_str().unwrap().contains("/src/moved/"))
            .cloned()
    });
    assert_eq!(moved["name"], "compute_alpha_100");
    assert!(
        search(&mut lsp, "compute_alpha_100")
            .iter()
            .all(|h| !h["uri"].as_str().unwrap().contains("/src/m1/"))
    );

    // Events for ignored files index nothing; identifiers with digits are found by their words.
    std::fs::write(root.join("ignored/new.rs"), "fn should_stay_out() {}\n").unwrap();
    std::fs::write(
        root.join("src/m0/hash.rs"),
        "fn digest(data: &[u8]) -> Sha256 {\n    sha256_of(data)\n}\n",
    )
    .unwrap();
    lsp.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [
            {"uri": format!("file://{}/ignored/new.rs", root.display()), "type": 1},
            {"uri": format!("file://{}/src/m0/hash.rs", root.display()), "type": 1}
        ]}),
    );
    let digest = lsp.poll("the new file in search", |lsp| {
        search(lsp, "sha256").into_iter().next()
    });
    assert_eq!(digest["name"], "digest");
    assert!(
        search(&mut lsp, "should_stay_out").is_empty(),
        "an ignored file was indexed"
    );

    // A second server on the same workspace and cache works beside the first.
    let mut second = serve(root, cache.path());
    assert_eq!(
        search(&mut second, "computeBeta43")[0]["name"],
        "computeBeta43"
    );
    assert_eq!(
        search(&mut lsp, "computeBeta45")[0]["name"],
        "computeBeta45"
    );
    second.finish();
    lsp.finish();
}
