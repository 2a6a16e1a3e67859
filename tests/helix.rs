//! Strata in the real Helix, end to end: Helix 25.07.1 (`../shared/tools/helix-25.07.1/hx` beside
//! the repository) runs in tmux with Strata's package (`editors/helix/languages.toml`), the strata
//! binary built by this crate, and the loopback fake model as its only provider. Each test opens a
//! small Rust crate in a temporary git workspace, types what a user types (`send-keys`) and waits
//! for what the user would see (`capture-pane`), one bounded wait per step; every step's screen is
//! kept under `target/editor-screens/helix/`. rust-analyzer is kept off the PATH, so Helix runs
//! Strata alone, as it does on a machine without it. Without hx or tmux the tests skip and say
//! why — except in CI (`CI=true`), where that is a failure. Nothing here asserts a duration.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::fake_model::{FakeModel, Reply};

/// The longest wait for one step's screen. It bounds a hang; it measures nothing.
const STEP: Duration = Duration::from_secs(30);
/// Between two looks at the screen.
const LOOK: Duration = Duration::from_millis(100);

const LIB_RS: &str = "\
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

pub fn greet(name: &str) -> String {
    format!(\"Hello, {name}!\")
}
";

const CARGO_TOML: &str = "\
[package]
name = \"demo\"
version = \"0.1.0\"
edition = \"2021\"
";

/// Every agent Strata offers as a code action with no diagnostics at the cursor, in Helix's
/// menu order (the server's).
const AGENT_TITLES: &[&str] = &[
    "Strata: Write documentation comments",
    "Strata: Refactor for clarity",
    "Strata: Write tests",
    "Strata: Review all (security, performance, style)",
    "Strata: Explain this code",
    "Strata: Review this code",
];

/// Helix's binary: beside the repository in `../shared/tools/`.
fn hx_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/helix-25.07.1/hx")
}

/// Helix, when it and tmux are here. Otherwise `None` after saying why — or, in CI, a failure.
fn helix_binary() -> Option<PathBuf> {
    let hx = hx_path();
    let tmux = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if !hx.is_file() {
        Some(format!("no Helix at {}", hx.display()))
    } else if !tmux {
        Some("no tmux on the PATH".to_owned())
    } else {
        None
    };
    match missing {
        None => Some(hx.canonicalize().expect("Helix's path")),
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{why}: in CI (CI=true) the Helix end-to-end tests must run, not skip")
        }
        Some(why) => {
            eprintln!("SKIPPED: Strata's Helix end-to-end test did not run: {why}");
            None
        }
    }
}

/// `target/editor-screens/helix` (under `CARGO_TARGET_DIR` when that is set): where each step's
/// screen is written.
fn screens_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_strata"));
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the target directory");
    let dir = target.join("editor-screens").join("helix");
    // Emptied once per run, so every file there is from this run.
    static CLEARED: std::sync::Once = std::sync::Once::new();
    CLEARED.call_once(|| {
        let _ = std::fs::remove_dir_all(&dir);
    });
    std::fs::create_dir_all(&dir).expect("create the screens directory");
    dir
}

/// Helix in a tmux session of its own, on a workspace in a temporary directory, with Strata
/// talking to a fake model. Dropping it ends that tmux server (and with it Helix and Strata).
struct Helix {
    socket: PathBuf,
    dir: tempfile::TempDir,
    model: FakeModel,
    screens: PathBuf,
    /// What `hx --health rust` printed for this setup.
    health: String,
}

impl Helix {
    /// Opens `src/lib.rs` of a fresh workspace in Helix for the test of step `step` (its screens
    /// are named after it); `None` when Helix cannot run here.
    fn start(step: &str) -> Option<Helix> {
        Helix::start_with(step, None)
    }

    /// [`Helix::start`], Helix giving up on a request to strata after `timeout` seconds when
    /// that is set (its default is 20).
    fn start_with(step: &str, timeout: Option<u32>) -> Option<Helix> {
        let hx = helix_binary()?;
        let model = FakeModel::start();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let root = dir.path();
        let ws = root.join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        std::fs::create_dir_all(ws.join(".git")).unwrap();
        std::fs::write(ws.join("Cargo.toml"), CARGO_TOML).unwrap();
        std::fs::write(ws.join("src/lib.rs"), LIB_RS).unwrap();
        // Helix's configuration is Strata's package as shipped.
        let config = root.join("home/.config/helix");
        std::fs::create_dir_all(&config).unwrap();
        let package = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/helix/languages.toml"),
        )
        .expect("read editors/helix/languages.toml");
        let server = "[language-server.strata]\n";
        assert!(package.contains(server), "{package}");
        let package = match timeout {
            Some(secs) => package.replace(server, &format!("{server}timeout = {secs}\n")),
            None => package,
        };
        std::fs::write(config.join("languages.toml"), package).expect("write languages.toml");
        let strata_config = support::fake_model::ollama_config(
            root,
            &model.url(),
            "[completion]\nmode = \"items\"\n",
        );
        // The PATH holds strata and nothing else: no rust-analyzer, whatever this machine has.
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_strata"), bin.join("strata")).unwrap();
        let home = root.join("home");
        let var = |name: &str, path: &Path| format!("{name}={}", path.display());
        let env = [
            var("HOME", &home),
            var("XDG_CONFIG_HOME", &home.join(".config")),
            var("XDG_CACHE_HOME", &home.join(".cache")),
            var("XDG_DATA_HOME", &home.join(".local/share")),
            var("XDG_STATE_HOME", &home.join(".local/state")),
            var("PATH", &bin),
            var("STRATA_CONFIG", &strata_config),
            var("STRATA_CACHE_DIR", &root.join("cache")),
            var("STRATA_DATA_DIR", &root.join("data")),
            "STRATA_LOG=warn".to_owned(),
            "TERM=screen-256color".to_owned(),
            "LANG=C.UTF-8".to_owned(),
        ];
        let mut helix = Helix {
            socket: root.join("tmux.sock"),
            dir,
            model,
            screens: screens_dir(),
            health: String::new(),
        };
        // What `hx --health` says of this setup: strata found, rust-analyzer not.
        let mut health = Command::new(&hx);
        health
            .env_clear()
            .current_dir(&ws)
            .args(["--health", "rust"]);
        for pair in &env {
            let (k, v) = pair.split_once('=').unwrap();
            health.env(k, v);
        }
        let health = health.output().expect("run hx --health");
        helix.health = strip_ansi(&String::from_utf8_lossy(&health.stdout));
        helix.keep(&format!("{step}-health"), &helix.health);
        let mut new_session = vec![
            "new-session".to_owned(),
            "-d".to_owned(),
            "-s".to_owned(),
            "hx".to_owned(),
            "-x".to_owned(),
            "200".to_owned(),
            "-y".to_owned(),
            "50".to_owned(),
            "-c".to_owned(),
            ws.display().to_string(),
            "/usr/bin/env".to_owned(),
            "-i".to_owned(),
        ];
        new_session.extend(env);
        new_session.push(hx.display().to_string());
        // Info level, so the log shows Helix talking to strata, not only what went wrong.
        new_session.push("-v".to_owned());
        new_session.push("src/lib.rs".to_owned());
        helix.tmux(&new_session);
        println!("Helix screens: {}", helix.screens.display());
        Some(helix)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn lib_rs(&self) -> PathBuf {
        self.root().join("ws/src/lib.rs")
    }

    fn tmux<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = Command::new("tmux")
            .arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {:?} failed: {}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Presses keys, in tmux's names (`Escape`, `Enter`, `Down`, `C-x`, `Space`).
    fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "hx"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Presses Escape, then waits until the screen changes (at most 2 s: it may have had nothing
    /// to close). A key sent right behind an Escape would reach Helix as Alt plus that key.
    fn escape(&self) {
        let before = self.screen();
        self.press(&["Escape"]);
        let started = Instant::now();
        while self.screen() == before && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(LOOK);
        }
    }

    /// Presses Escape to close what shows `shown` (a menu, a picker, insert mode's ` INS `) and
    /// waits until it is gone, so the next key is not taken for Alt plus that key.
    #[track_caller]
    fn close(&self, name: &str, shown: &str) {
        self.press(&["Escape"]);
        self.wait(name, &format!("{shown:?} gone"), |s| !s.contains(shown));
    }

    /// Types text as it is.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "hx", "-l", text]);
    }

    /// A Helix command line: `:` `command` Enter.
    fn command(&self, command: &str) {
        self.type_text(&format!(":{command}"));
        self.press(&["Enter"]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "hx"])
    }

    /// The screen with its colours and attributes (as escape sequences).
    fn styled_screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "hx"])
    }

    /// Writes `text` as the screen of step `name`.
    fn keep(&self, name: &str, text: &str) {
        std::fs::write(self.screens.join(format!("{name}.txt")), text)
            .expect("write a screen file");
    }

    /// Helix's own log.
    fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("home/.cache/helix/helix.log")).unwrap_or_default()
    }

    /// Waits until the screen shows what `check` looks for, keeps that screen as step `name`, and
    /// returns it; fails with the last screen and Helix's log after `STEP`.
    #[track_caller]
    fn wait(&self, name: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if check(&screen) {
                self.keep(name, &screen);
                return screen;
            }
            if started.elapsed() > STEP {
                self.keep(name, &screen);
                panic!(
                    "step {name}: gave up waiting for {what}\n--- screen ---\n{screen}\n--- helix.log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(LOOK);
        }
    }

    /// Does `act` until the screen shows what `check` looks for (2 s apart: a server still
    /// starting, or a suggestion not ready yet, gives Helix nothing to show the first time);
    /// keeps that screen as step `name` and returns it. Fails after `STEP`. `act` is told
    /// whether it is trying again.
    #[track_caller]
    fn until(
        &self,
        name: &str,
        what: &str,
        act: impl Fn(&Helix, bool),
        check: impl Fn(&str) -> bool,
    ) -> String {
        let started = Instant::now();
        let mut again = false;
        loop {
            act(self, again);
            again = true;
            let tried = Instant::now();
            while tried.elapsed() < Duration::from_secs(2) {
                let screen = self.screen();
                if check(&screen) {
                    self.keep(name, &screen);
                    return screen;
                }
                std::thread::sleep(LOOK);
            }
            if started.elapsed() > STEP {
                let screen = self.screen();
                self.keep(name, &screen);
                panic!(
                    "step {name}: never saw {what}\n--- screen ---\n{screen}\n--- helix.log ---\n{}",
                    self.log()
                );
            }
        }
    }

    /// Opens a menu or picker with `keys` until it shows `expected`.
    #[track_caller]
    fn open(&self, name: &str, keys: &[&str], expected: &str) -> String {
        self.until(
            name,
            expected,
            |hx, again| {
                if again {
                    hx.escape();
                }
                hx.press(keys);
            },
            |s| s.contains(expected),
        )
    }

    /// In an open menu, moves down to the entry titled `title` (the highlighted one is drawn in
    /// reverse video) and chooses it.
    #[track_caller]
    fn choose(&self, title: &str) {
        for _ in 0..30 {
            let styled = self.styled_screen();
            let selected = styled
                .lines()
                .any(|l| reversed(l) && strip_ansi(l).contains(title));
            if selected {
                self.press(&["Enter"]);
                return;
            }
            self.press(&["Down"]);
            // The menu redraws after the key; wait for the highlight to move.
            let before = styled;
            let started = Instant::now();
            while self.styled_screen() == before && started.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!(
            "no menu entry {title:?} could be highlighted\n{}",
            self.screen()
        );
    }

    /// Waits until the line under the statusline says how the run of the agent titled `title`
    /// ended (`title — …`, Strata's `window/showMessage`); keeps that screen as step `name` and
    /// returns the line and the screen.
    #[track_caller]
    fn run_ended(&self, name: &str, title: &str) -> (String, String) {
        let told = format!("{title} — ");
        let line = |s: &str| {
            s.lines()
                .skip_while(|l| statusline(l).is_none())
                .nth(1)
                .filter(|l| l.starts_with(&told))
                .map(|l| l.trim_end().to_owned())
        };
        let screen = self.wait(name, &format!("the message {told}…"), |s| {
            line(s).is_some()
        });
        (line(&screen).unwrap(), screen)
    }

    /// Runs the code action `title` from the cursor (or selection) as it is.
    #[track_caller]
    fn code_action(&self, name: &str, title: &str) -> String {
        let screen = self.open(name, &["Space", "a"], title);
        self.choose(title);
        screen
    }

    /// `:w` of a modified buffer, then the file as written: once the statusline drops its `[+]`
    /// and the file on disk has changed.
    #[track_caller]
    fn saved(&self, name: &str) -> String {
        let modified = || {
            std::fs::metadata(self.lib_rs())
                .and_then(|m| m.modified())
                .ok()
        };
        let before = modified();
        self.command("w");
        self.wait(name, "the buffer written", |s| {
            statusline(s).is_some_and(|l| !l.contains("[+]")) && modified() != before
        });
        std::fs::read_to_string(self.lib_rs()).unwrap()
    }

    /// Moves the cursor to the start of `line` (1-based) and waits until the statusline says so.
    #[track_caller]
    fn go_to_line(&self, name: &str, line: usize) {
        let position = format!(" {line}:1");
        self.until(
            name,
            &format!("the cursor on line {line}"),
            |hx, again| {
                if again {
                    hx.escape();
                }
                hx.type_text(&format!("{line}gg"));
            },
            |s| statusline(s).is_some_and(|l| l.trim_end().ends_with(&position)),
        );
    }

    /// Step 10 for every test: Helix quits, and its log (info level) shows it talking to strata
    /// and, until it shuts strata down, holds no error or warning. Helix logs a server's stderr at ERROR
    /// (`strata err <- ...`); strata runs with `STRATA_LOG=warn`, so such a line is a warning or
    /// an error of its own, and fails the test too.
    fn finish(self, name: &str) {
        self.command("q!");
        let started = Instant::now();
        while Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["has-session", "-t", "hx"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            if started.elapsed() > STEP {
                let pane = self.tmux(&["display-message", "-p", "-t", "hx", "#{pane_pid}"]);
                let ps = Command::new("ps")
                    .args([
                        "-o",
                        "pid,ppid,stat,etime,wchan:20,args",
                        "--ppid",
                        pane.trim(),
                    ])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                panic!(
                    "Helix did not quit\n{}\n--- Helix (pid {}) and its children ---\n{ps}\n--- helix.log ---\n{}",
                    self.screen(),
                    pane.trim(),
                    self.log()
                );
            }
            std::thread::sleep(LOOK);
        }
        let log = self.log();
        self.keep(name, &log);
        assert!(
            log.contains("Starting lsp \"strata\""),
            "Helix's log does not show strata starting:\n{log}"
        );
        // Up to Helix's `shutdown`: on quitting, Helix sends `exit` right behind it without
        // waiting for the answer, and may then log the closed stream as errors of its own.
        let session = log.split("\"method\":\"shutdown\"").next().unwrap_or(&log);
        let problems: Vec<&str> = session
            .lines()
            .filter(|l| l.contains("[ERROR]") || l.contains("[WARN]") || l.contains("strata err"))
            .collect();
        assert!(
            problems.is_empty(),
            "Helix logged problems:\n{}",
            problems.join("\n")
        );
    }
}

impl Drop for Helix {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The statusline of a normal-mode screen.
fn statusline(screen: &str) -> Option<&str> {
    screen.lines().find(|l| l.starts_with(" NOR "))
}

/// Whether a styled screen line turns on reverse video (SGR 7) anywhere.
fn reversed(line: &str) -> bool {
    line.split("\x1b[").skip(1).any(|sequence| {
        sequence
            .split_once('m')
            .is_some_and(|(params, _)| params.split(';').any(|p| p == "7"))
    })
}

/// `text` without ANSI escape sequences.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `src/lib.rs` with `doc` inserted above the line that begins with `item`.
fn documented(item: &str, doc: &str) -> String {
    let at = LIB_RS.find(item).expect("the item");
    format!("{}{doc}\n{}", &LIB_RS[..at], &LIB_RS[at..])
}

/// The fake model's answer to an edit agent: the function, with a doc comment, in a rust block.
fn rust_block(code: &str) -> Reply {
    Reply::text(&format!(
        "Here is the function with its documentation:\n\n```rust\n{code}\n```\n"
    ))
}

/// Steps 1–4: the server starts without rust-analyzer, and what needs no model works.
#[test]
fn helix_starts_strata_lists_symbols_and_offers_every_agent() {
    let Some(hx) = Helix::start("01") else { return };
    let health = &hx.health;
    assert!(
        health.contains("'rust-analyzer' not found in $PATH"),
        "rust-analyzer must be absent here:\n{health}"
    );
    assert!(
        health.contains(&format!(
            "strata: {}",
            hx.root().join("bin/strata").display()
        )),
        "hx --health must find strata on the PATH:\n{health}"
    );

    // 1. The server is up: Helix lists the commands Strata announced at initialize.
    hx.wait("01-opened", "the file", |s| s.contains("pub fn greet"));
    let screen = hx.until(
        "01-server-started",
        "Strata's commands",
        |hx, again| {
            if again {
                hx.escape();
            }
            hx.command("lsp-workspace-command");
        },
        |s| s.contains("strata.runAgent") && s.contains("strata.newChat"),
    );
    assert!(screen.contains("strata.runWorkflow"), "{screen}");
    hx.close("01-closed", "strata.runAgent");

    // 2. Document symbols: both functions.
    let screen = hx.open("02-document-symbols", &["Space", "s"], "function greet");
    assert!(
        screen.contains("function add") && screen.contains("function greet"),
        "{screen}"
    );
    hx.close("02-closed", "function add");

    // 3. Workspace symbols: a name typed into the picker finds the function and its file.
    hx.open(
        "03-workspace-symbols-open",
        &["Space", "S"],
        "container path",
    );
    hx.type_text("gree");
    let screen = hx.wait("03-workspace-symbols", "greet in src/lib.rs", |s| {
        s.lines()
            .any(|l| l.contains("function greet") && l.contains("src/lib.rs"))
    });
    assert!(!screen.contains("function add"), "{screen}");
    hx.close("03-closed", "container path");

    // 4. The code-action menu on a function: every agent, and no "Fix" without diagnostics.
    let screen = hx.open(
        "04-code-actions",
        &["Space", "a"],
        "Strata: Review this code",
    );
    for title in AGENT_TITLES {
        assert!(screen.contains(title), "no {title:?} in\n{screen}");
    }
    assert!(!screen.contains("Strata: Fix these problems"), "{screen}");
    hx.close("04-closed", "Strata: Review this code");
    assert_eq!(hx.model.call_count(), 0, "nothing here needs a model");
    hx.finish("04-helix-log");
}

/// Step 5: "Write documentation comments" from the cursor in normal mode, where Helix sends its
/// one-character cursor as the range: the whole function is documented; `u` undoes it at once.
#[test]
fn helix_documents_the_function_at_the_cursor_and_undo_restores_it() {
    let Some(hx) = Helix::start("05") else { return };
    hx.wait("05-opened", "the file", |s| s.contains("pub fn greet"));
    let add = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}";
    hx.model
        .set_default(rust_block(&format!("/// Adds `a` and `b`.\n{add}")));
    // The cursor is on the `p` of `pub fn add`: the code action carries that one character.
    hx.code_action(
        "05-document-cursor-menu",
        "Strata: Write documentation comments",
    );
    // The run ends with a line under the statusline: after the edit, which is in place.
    let (told, screen) = hx.run_ended("05-document-cursor", "Strata: Write documentation comments");
    assert_eq!(
        told, "Strata: Write documentation comments — applied to `add`",
        "{screen}"
    );
    assert!(
        screen.contains("/// Adds `a` and `b`."),
        "the function was not documented:\n{screen}"
    );
    let prompt = hx.model.calls()[0].body.clone();
    assert!(
        prompt.contains("a + b"),
        "the model was sent the function, not one character:\n{prompt}"
    );
    assert_eq!(
        hx.saved("05-document-cursor-saved"),
        documented("pub fn add", "/// Adds `a` and `b`."),
        "{screen}"
    );
    hx.press(&["u"]);
    hx.wait("05-document-cursor-undone", "the doc comment gone", |s| {
        !s.contains("/// Adds")
    });
    assert_eq!(hx.saved("05-document-cursor-undone-saved"), LIB_RS);
    hx.finish("05-helix-log");
}

/// Step 6: the same from a selection of whole lines (`x` three times on the first function). The
/// selection ends with the line break after `}`; the blank line after the function must stay.
#[test]
fn helix_documents_a_selected_function() {
    let Some(hx) = Helix::start("06") else { return };
    hx.wait("06-opened", "the file", |s| s.contains("pub fn greet"));
    let add = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}";
    hx.model
        .set_default(rust_block(&format!("/// Adds `a` and `b`.\n{add}")));
    hx.type_text("xxx");
    hx.wait("06-selected", "lines 1 to 3 selected", |s| {
        s.contains("1 sel  3:2")
    });
    hx.code_action(
        "06-document-selection-menu",
        "Strata: Write documentation comments",
    );
    let (told, screen) = hx.run_ended(
        "06-document-selection",
        "Strata: Write documentation comments",
    );
    assert_eq!(
        told, "Strata: Write documentation comments — applied to `add`",
        "{screen}"
    );
    assert!(
        screen.contains("/// Adds `a` and `b`."),
        "the function was not documented:\n{screen}"
    );
    assert_eq!(
        hx.saved("06-document-selection-saved"),
        documented("pub fn add", "/// Adds `a` and `b`.")
    );
    hx.press(&["u"]);
    hx.wait(
        "06-document-selection-undone",
        "the doc comment gone",
        |s| !s.contains("/// Adds"),
    );
    assert_eq!(hx.saved("06-document-selection-undone-saved"), LIB_RS);
    hx.finish("06-helix-log");
}

/// Step 7: "Explain this code". The answer is a Markdown file under Strata's cache; Helix 25.07
/// has `window/showDocument`, so it opens that file in a buffer of its own.
#[test]
fn helix_opens_the_explanation() {
    let Some(hx) = Helix::start("07") else { return };
    hx.wait("07-opened", "the file", |s| s.contains("pub fn greet"));
    let answer = "`add` returns the sum of its two arguments.";
    hx.model.set_default(Reply::text(answer));
    hx.code_action("07-explain-menu", "Strata: Explain this code");
    let screen = hx.wait("07-explain", "the answer opened", |s| {
        s.contains(answer) && s.contains("-explain-src-lib.rs.md")
    });
    // Opened, so the message says no more than that the run is done.
    let (told, _) = hx.run_ended("07-explain-told", "Strata: Explain this code");
    assert_eq!(told, "Strata: Explain this code — answered");
    let answers = hx.root().join("cache");
    let files = find_files(&answers, "-explain-src-lib.rs.md");
    assert_eq!(
        files.len(),
        1,
        "one answer file under {}",
        answers.display()
    );
    assert!(
        screen.contains(&files[0].display().to_string()),
        "Helix shows the answer file:\n{screen}"
    );
    let written = std::fs::read_to_string(&files[0]).unwrap();
    assert!(written.contains(answer), "{written}");
    hx.finish("07-helix-log");
}

/// Step 8: "Review this code" publishes a finding as a diagnostic; its suggested fix is a code
/// action on its line, and applying it changes only that line.
#[test]
fn helix_shows_review_findings_and_their_quick_fix() {
    let Some(hx) = Helix::start("08") else { return };
    hx.wait("08-opened", "the file", |s| s.contains("pub fn greet"));
    hx.model.set_default(Reply::text(
        "{\"line\": 2, \"severity\": \"warning\", \"message\": \"a + b overflows on large inputs\", \"suggestion\": \"    a.wrapping_add(b)\"}",
    ));
    hx.code_action("08-review-menu", "Strata: Review this code");
    // The finding is published: marked in the gutter, written after its line, counted in the
    // statusline.
    hx.wait("08-review", "the finding on line 2", |s| {
        s.lines().any(|l| {
            l.starts_with('●')
                && l.contains("a + b")
                && l.contains("a + b overflows on large inputs")
        }) && s.lines().any(|l| l.contains(" NOR ") && l.contains("● 1"))
    });
    let (told, _) = hx.run_ended("08-review-told", "Strata: Review this code");
    assert_eq!(told, "Strata: Review this code — 1 finding");
    // Helix lists it in its diagnostics picker.
    hx.open("08-review-diagnostics-open", &["Space", "d"], "severity");
    hx.wait("08-review-diagnostics", "the finding in the picker", |s| {
        s.lines()
            .any(|l| l.contains("WARN") && l.contains("strata") && l.contains("a + b overflows"))
    });
    hx.close("08-review-diagnostics-closed", "severity");
    hx.go_to_line("08-review-line-2", 2);
    let fix = "Strata: apply the suggested fix (a + b overflows on large inputs)";
    let screen = hx.code_action("08-review-quick-fix-menu", fix);
    assert!(screen.contains("Strata: Fix these problems"), "{screen}");
    hx.wait("08-review-fixed", "the suggested line", |s| {
        s.contains("a.wrapping_add(b)")
    });
    assert_eq!(
        hx.saved("08-review-fixed-saved"),
        LIB_RS.replace("    a + b\n", "    a.wrapping_add(b)\n")
    );
    hx.finish("08-helix-log");
}

/// Step 9: a completion item from the model, labelled as Strata's, in Helix's completion menu,
/// after the user pauses: Helix asks once typing stops (`completion-timeout`), and the server
/// holds that request until the model, slower than Helix's wait, has answered. No key is pressed
/// to ask again.
#[test]
fn helix_offers_a_model_completion() {
    let Some(hx) = Helix::start("09") else { return };
    hx.wait("09-opened", "the file", |s| s.contains("pub fn greet"));
    hx.model
        .set_default(Reply::text("ble(x: i32) -> i32").first_token(1500));
    // A new last line, and a function name half typed; then the user waits.
    hx.type_text("ge");
    hx.type_text("o");
    hx.type_text("pub fn dou");
    let label = "double(x: i32) -> i32";
    hx.wait(
        "09-completion-menu",
        "Strata's item in the completion menu",
        |s| s.lines().any(|l| l.contains(label) && l.contains("text")),
    );
    // Selected, the item shows its detail beside the menu.
    hx.press(&["C-n"]);
    hx.wait("09-completion", "the item's detail", |s| {
        s.contains("Strata: model suggestion")
    });
    hx.press(&["Enter"]);
    hx.wait("09-completion-accepted", "the menu closed", |s| {
        !s.contains("Strata: model suggestion")
    });
    hx.close("09-normal-mode", " INS ");
    let expected = format!("{LIB_RS}pub fn double(x: i32) -> i32\n");
    assert_eq!(hx.saved("09-completion-saved"), expected);
    hx.finish("09-helix-log");
}

/// Step 10: holding Strata's request holds up no other completion source. Helix shows the first
/// answer that has items (here its own path completion of `./li`, relative to the file: `lib.rs`)
/// while Strata still waits for a slow model, and would add Strata's item to the open menu when
/// it comes.
#[test]
fn helix_shows_other_items_while_strata_holds_its_request() {
    let Some(hx) = Helix::start("10") else { return };
    hx.wait("10-opened", "the file", |s| s.contains("pub fn greet"));
    hx.model
        .set_default(Reply::text("b.rs;").first_token(20_000));
    hx.type_text("ge");
    hx.type_text("o");
    hx.type_text("let p = ./li");
    assert!(
        hx.model.wait_for_calls(1, STEP),
        "no completion call reached the model\n{}",
        hx.screen()
    );
    hx.wait(
        "10-path-items",
        "Helix's path completion in the menu",
        |s| {
            s.lines()
                .any(|l| l.contains("lib.rs") && l.contains("file"))
        },
    );
    assert_eq!(
        hx.model.in_flight(),
        1,
        "Strata's request was no longer held when the menu showed"
    );
    hx.close("10-normal-mode", " INS ");
    hx.finish("10-helix-log");
}

/// Files under `dir` whose name ends with `suffix`.
fn find_files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found
}

/// The chat: a `*.strata.md` file is a `strata-chat` document in Helix (the package's language
/// entry), space-a offers "Strata: send", and the answer is appended under `## Strata` with a new
/// `## You` below it.
#[test]
fn helix_sends_the_chat() {
    let Some(hx) = Helix::start("11") else { return };
    hx.wait("11-opened", "the file", |s| s.contains("pub fn greet"));
    std::fs::write(
        hx.root().join("ws/chat-1.strata.md"),
        "# Strata chat\n\n## You\n\nWhat does add do?\n",
    )
    .unwrap();
    hx.command("open chat-1.strata.md");
    hx.wait("11-chat", "the chat file", |s| {
        s.contains("What does add do?")
    });
    let answer = "It adds its two arguments.";
    hx.model.set_default(Reply::text(answer));
    hx.code_action("11-send-menu", "Strata: send");
    let (told, screen) = hx.run_ended("11-answered", "Strata: Chat");
    assert_eq!(told, "Strata: Chat — answered", "{screen}");
    assert!(screen.contains(answer), "{screen}");
    let after = screen.split("## Strata").nth(1).unwrap_or_default();
    assert!(
        after.contains("## You"),
        "a new `## You` below the answer:\n{screen}"
    );
    let asked = hx.model.calls();
    assert_eq!(asked.len(), 1, "one model call");
    assert!(
        asked[0].body.contains("What does add do?"),
        "{}",
        asked[0].body
    );
    hx.finish("11-helix-log");
}

/// Step 12: a run that takes longer than Helix's request timeout (20 s by default; 3 s here, so
/// the test is short) still edits the buffer and says so: the command is answered at once and
/// the run goes on. The model holds its answer until well past the timeout.
#[test]
fn helix_gets_the_edit_of_a_run_longer_than_its_request_timeout() {
    let Some(hx) = Helix::start_with("12", Some(3)) else {
        return;
    };
    hx.wait("12-opened", "the file", |s| s.contains("pub fn greet"));
    let add = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}";
    hx.model
        .set_default(rust_block(&format!("/// Adds `a` and `b`.\n{add}")).held());
    hx.code_action("12-document-menu", "Strata: Write documentation comments");
    assert!(
        hx.model.wait_for_calls(1, STEP),
        "no call reached the model\n{}",
        hx.screen()
    );
    // Past Helix's timeout, with the model still holding its answer.
    std::thread::sleep(Duration::from_secs(5));
    let screen = hx.screen();
    hx.keep("12-waiting", &screen);
    assert_eq!(hx.model.in_flight(), 1, "the model call ended early");
    assert!(!screen.contains("/// Adds"), "{screen}");
    hx.model.release();
    let (told, screen) = hx.run_ended("12-documented", "Strata: Write documentation comments");
    assert_eq!(
        told, "Strata: Write documentation comments — applied to `add`",
        "{screen}"
    );
    assert!(screen.contains("/// Adds `a` and `b`."), "{screen}");
    assert!(
        !hx.log().to_lowercase().contains("timed out"),
        "Helix timed a request out:\n{}",
        hx.log()
    );
    assert_eq!(
        hx.saved("12-saved"),
        documented("pub fn add", "/// Adds `a` and `b`.")
    );
    hx.finish("12-helix-log");
}
