//! Snapshot tests of context assembly: a fixture (files and a `$0` cursor or `$0…$0` selection)
//! and the pack it gives, rendered one line per item — tier, fidelity, tokens, score, place, kind
//! and name, reason — and, for small cases, the prompt text. Refresh with
//! `UPDATE_EXPECT=1 cargo test --lib context::tests`, then read the diff: a snapshot is a claim
//! about what the model is sent.

use expect_test::{Expect, expect};
use ropey::Rope;

use super::fixture::{Fixture, MemoryWorkspace};
use super::*;

/// What a test asks for besides the place: a question, budgets, a diagnostic over the selection
/// (or the cursor's line).
#[derive(Default)]
struct Ask<'a> {
    query: Option<&'a str>,
    budgets: Option<Budgets>,
    /// Severity and message.
    diagnostic: Option<(&'a str, &'a str)>,
}

fn pack_of(fixture: &str, ask: Ask<'_>) -> ContextPack {
    let f = Fixture::parse(fixture);
    let workspace = MemoryWorkspace::new(&f);
    let text = Rope::from_str(f.text());
    let chunks = workspace.chunks(&f.path);
    let diagnostics: Vec<Diagnostic> = ask
        .diagnostic
        .map(|(severity, message)| {
            let range = if f.selection.is_empty() {
                let line = text.byte_to_line(f.selection.start);
                text.line_to_byte(line)..text.line_to_byte(line + 1)
            } else {
                f.selection.clone()
            };
            Diagnostic {
                range,
                severity: severity.into(),
                message: message.into(),
            }
        })
        .into_iter()
        .collect();
    let request = Request {
        query: ask.query,
        diagnostics: &diagnostics,
        budgets: ask.budgets.unwrap_or_default(),
        ..Request::at(&f.path, &text, &chunks, f.selection.clone())
    };
    let pack = assemble(&request, &workspace, &Tokenizer::new(Encoding::default()));
    // The same state gives the same pack, byte for byte (and a cold token cache changes nothing).
    let again = assemble(
        &request,
        &MemoryWorkspace::new(&f),
        &Tokenizer::new(Encoding::default()),
    );
    assert_eq!(pack, again, "the pack is not deterministic");
    pack
}

/// One line per tier (tokens used of its budget) and per item, then the dropped items, notes and
/// the redaction count. Empty tiers are left out.
fn outline(pack: &ContextPack) -> String {
    let mut out = String::new();
    for tier in &pack.tiers {
        if tier.items.is_empty() && tier.dropped.is_empty() {
            continue;
        }
        let budget = match tier.budget {
            0 => "unbounded".to_string(),
            b => b.to_string(),
        };
        out.push_str(&format!("{} {}/{budget}\n", tier.tier.name(), tier.tokens));
        for item in &tier.items {
            let place = match item.lines {
                Some((a, b)) if a == b => format!("{}:{}", item.source, a + 1),
                Some((a, b)) => format!("{}:{}-{}", item.source, a + 1, b + 1),
                None => item.source.clone(),
            };
            let fidelity = match item.fidelity {
                Fidelity::Full => "full",
                Fidelity::Signature => "signature",
                Fidelity::Name => "name",
            };
            out.push_str(&format!(
                "  {fidelity} {}t {} {place} {} {} — {}\n",
                item.tokens, item.score, item.kind, item.name, item.reason
            ));
        }
        for d in &tier.dropped {
            out.push_str(&format!("  dropped {} {} {}\n", d.score, d.source, d.name));
        }
    }
    for note in &pack.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if pack.redactions > 0 {
        out.push_str(&format!("redactions: {}\n", pack.redactions));
    }
    out
}

fn check(fixture: &str, expect: Expect) {
    check_ask(fixture, Ask::default(), expect);
}

fn check_ask(fixture: &str, ask: Ask<'_>, expect: Expect) {
    expect.assert_eq(&outline(&pack_of(fixture, ask)));
}

fn check_prompt(fixture: &str, ask: Ask<'_>, expect: Expect) {
    let pack = pack_of(fixture, ask);
    expect.assert_eq(&format!("{}---\n{}", outline(&pack), pack.render()));
}

#[test]
fn the_cursor_chunk_and_the_definitions_it_uses_here_and_in_another_file() {
    check_prompt(
        r#"
        //- /src/lib.rs
        mod util;
        use util::Config;

        fn helper(x: u32) -> u32 { x + 1 }

        fn add(a: u32, config: &Config) -> u32 { helper$0(a) + config.depth }

        fn unrelated() -> &'static str { "far away" }
        //- /src/util.rs
        /// How deep to look.
        pub struct Config { pub depth: u32 }

        pub fn other() {}
        "#,
        Ask::default(),
        expect![[r#"
            immediate 23/4096
              full 23t 100 src/lib.rs:6 function add — at the cursor
            working 53/8192
              full 16t 80 src/lib.rs:4 function helper — defines `helper`, used at the cursor
              full 16t 70.991 src/util.rs:1-2 struct Config — defines `Config`, used at the cursor
              full 8t 10 src/lib.rs:1-2 group items — same file
              full 13t 9.091 src/lib.rs:8 function unrelated — same file
            background 20/16384
              full 14t 20 src/util.rs outline src/util.rs — outline of a file whose definitions are used
              full 6t 10 folders folders top-level folders — map of the workspace
            ---
            ## immediate context

            ### src/lib.rs:6-6 (function add)
            fn add(a: u32, config: &Config) -> u32 { helper(a) + config.depth }

            ## working context

            ### src/lib.rs:4-4 (function helper)
            fn helper(x: u32) -> u32 { x + 1 }

            ### src/util.rs:1-2 (struct Config)
            /// How deep to look.
            pub struct Config { pub depth: u32 }

            ### src/lib.rs:1-2 (group items)
            mod util;
            use util::Config;

            ### src/lib.rs:8-8 (function unrelated)
            fn unrelated() -> &'static str { "far away" }

            ## background context

            ### src/util.rs (outline src/util.rs)
            struct Config: pub struct Config
            function other: pub fn other()

            ### folders (folders top-level folders)
            src/ (2 files)

        "#]],
    );
}

#[test]
fn a_selection_spanning_two_functions_puts_both_in_the_immediate_tier() {
    check(
        r#"
        //- /src/lib.rs
        fn parse(text: &str) -> Vec<u32> { text.split(',').map(to_number).collect() }

        $0fn to_number(word: &str) -> u32 { word.trim().parse().unwrap_or(0) }

        fn total(text: &str) -> u32 { parse(text).iter().sum() }$0

        fn report(text: &str) -> String { format!("{}", total(text)) }
        "#,
        expect![[r#"
            immediate 42/4096
              full 23t 100 src/lib.rs:3 function to_number — at the cursor
              full 19t 100 src/lib.rs:5 function total — at the cursor
            working 40/8192
              full 24t 70.994 src/lib.rs:1 function parse — defines `parse`, used at the cursor
              full 16t 10.333 src/lib.rs:7 function report — same file
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}

/// Five helpers the cursor uses and a neighbour it does not: as the working budget shrinks, the
/// lowest-scored items lose their bodies first, then their signatures, and only then go.
const CROWDED: &str = r#"
    //- /src/lib.rs
    /// Adds one, carefully, to a number that may already be at its largest value.
    fn first(x: u32) -> u32 {
        let next = x.checked_add(1);
        next.unwrap_or(x)
    }

    /// Doubles a number, saturating at the largest value rather than wrapping around.
    fn second(x: u32) -> u32 {
        let doubled = x.saturating_mul(2);
        doubled
    }

    /// Squares a number, saturating at the largest value rather than wrapping around.
    fn third(x: u32) -> u32 {
        let squared = x.saturating_mul(x);
        squared
    }

    fn entry(x: u32) -> u32 { third(second(first$0(x))) }

    /// Not used at the cursor: a neighbour ranked by distance alone.
    fn neighbour(y: u64) -> u64 {
        y.rotate_left(3) ^ y
    }
    "#;

fn working(budget: u32) -> Ask<'static> {
    Ask {
        budgets: Some(Budgets {
            working: budget,
            ..Budgets::default()
        }),
        ..Ask::default()
    }
}

#[test]
fn what_the_cursor_uses_keeps_full_text_while_the_rest_goes_to_names() {
    // 168 tokens in full: the neighbour goes to its name before any definition the cursor uses
    // loses its body.
    check_ask(
        CROWDED,
        working(140),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 134/140
              full 46t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              full 42t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              full 44t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              name 2t 9.091 src/lib.rs:21-24 function neighbour — same file
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}

#[test]
fn a_signature_marks_the_body_it_leaves_out() {
    check_prompt(
        CROWDED,
        working(40),
        expect![[r#"
        immediate 17/4096
          full 17t 100 src/lib.rs:19 function entry — at the cursor
        working 37/40
          signature 31t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
          name 2t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
          name 2t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
          name 2t 9.091 src/lib.rs:21-24 function neighbour — same file
        background 6/16384
          full 6t 10 folders folders top-level folders — map of the workspace
        ---
        ## immediate context

        ### src/lib.rs:19-19 (function entry)
        fn entry(x: u32) -> u32 { third(second(first(x))) }

        ## working context

        ### src/lib.rs:1-5 (function first)
        /// Adds one, carefully, to a number that may already be at its largest value.
        fn first(x: u32) -> u32 { … }

        ### src/lib.rs:13-17 (function third)
        function third

        ### src/lib.rs:7-11 (function second)
        function second

        ### src/lib.rs:21-24 (function neighbour)
        function neighbour

        ## background context

        ### folders (folders top-level folders)
        src/ (1 files)

    "#]],
    );
}

#[test]
fn under_a_small_budget_fidelity_degrades_before_items_are_dropped() {
    check_ask(
        CROWDED,
        Ask::default(),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 168/8192
              full 46t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              full 42t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              full 44t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              full 36t 9.091 src/lib.rs:21-24 function neighbour — same file
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
    check_ask(
        CROWDED,
        working(90),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 90/90
              signature 31t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              signature 29t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              signature 30t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              dropped 9.091 src/lib.rs neighbour
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
    check_ask(
        CROWDED,
        working(40),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 37/40
              signature 31t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              name 2t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              name 2t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              name 2t 9.091 src/lib.rs:21-24 function neighbour — same file
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
    check_ask(
        CROWDED,
        working(8),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 8/8
              name 2t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              name 2t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              name 2t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              name 2t 9.091 src/lib.rs:21-24 function neighbour — same file
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
    // Too small even for every name: the lowest-scored goes.
    check_ask(
        CROWDED,
        working(6),
        expect![[r#"
            immediate 17/4096
              full 17t 100 src/lib.rs:19 function entry — at the cursor
            working 6/6
              name 2t 80 src/lib.rs:1-5 function first — defines `first`, used at the cursor
              name 2t 70.983 src/lib.rs:13-17 function third — defines `third`, used at the cursor
              name 2t 70.979 src/lib.rs:7-11 function second — defines `second`, used at the cursor
              dropped 9.091 src/lib.rs neighbour
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}

#[test]
fn a_secret_in_a_neighbour_or_a_definition_is_redacted() {
    // Built from pieces so that no whole key sits in the repository.
    let fixture = r#"
        //- /src/lib.rs
        mod keys;
        use crate::keys::upload_key;

        const AWS_KEY: &str = "{AWS}";

        fn upload(body: &[u8]) -> usize { send$0(upload_key(), body) }

        fn send(key: &str, body: &[u8]) -> usize { key.len() + body.len() }
        //- /src/keys.rs
        pub fn upload_key() -> &'static str { "{OPENAI}" }
        "#
    .replace("{AWS}", concat!("AKIA", "IOSFODNN7EXAMPLE"))
    .replace(
        "{OPENAI}",
        concat!("sk-", "proj-", "FAKEfake0123456789abcdefFAKE"),
    );
    check_prompt(
        &fixture,
        Ask::default(),
        expect![[r#"
            immediate 18/4096
              full 18t 100 src/lib.rs:6 function upload — at the cursor
            working 71/8192
              full 24t 80 src/lib.rs:8 function send — defines `send`, used at the cursor
              full 19t 70.99 src/keys.rs:1 function upload_key — defines `upload_key`, used at the cursor
              full 11t 10 src/lib.rs:1-2 group items — same file
              full 17t 9.091 src/lib.rs:4 group items — same file
            background 19/16384
              full 13t 20 src/keys.rs outline src/keys.rs — outline of a file whose definitions are used
              full 6t 10 folders folders top-level folders — map of the workspace
            redactions: 2
            ---
            ## immediate context

            ### src/lib.rs:6-6 (function upload)
            fn upload(body: &[u8]) -> usize { send(upload_key(), body) }

            ## working context

            ### src/lib.rs:8-8 (function send)
            fn send(key: &str, body: &[u8]) -> usize { key.len() + body.len() }

            ### src/keys.rs:1-1 (function upload_key)
            pub fn upload_key() -> &'static str { "[redacted:openai-key]" }

            ### src/lib.rs:1-2 (group items)
            mod keys;
            use crate::keys::upload_key;

            ### src/lib.rs:4-4 (group items)
            const AWS_KEY: &str = "[redacted:aws-access-key-id]";

            ## background context

            ### src/keys.rs (outline src/keys.rs)
            function upload_key: pub fn upload_key() -> &'static str

            ### folders (folders top-level folders)
            src/ (2 files)

        "#]],
    );
}

#[test]
fn a_typescript_cursor_finds_the_imported_function_and_interface() {
    check(
        r#"
        //- /src/app.ts
        import { formatName, User } from "./names";

        export function greet(user: User): string {
          return "Hello, " + formatName$0(user.first, user.last);
        }

        export class Greeter {
          constructor(private readonly prefix: string) {}
          greetAll(users: User[]): string[] {
            return users.map((u) => this.prefix + greet(u));
          }
        }
        //- /src/names.ts
        export interface User {
          first: string;
          last: string;
        }

        export function formatName(first: string, last: string): string {
          return `${first} ${last}`;
        }
        //- /package.json
        { "name": "greeter", "dependencies": { "lodash": "4" }, "devDependencies": { "vitest": "1" } }
        "#,
        expect![[r#"
            immediate 25/4096
              full 25t 100 src/app.ts:3-5 function greet — at the cursor
            working 89/8192
              full 23t 80 src/names.ts:6-8 function formatName — defines `formatName`, used at the cursor
              full 15t 70.991 src/names.ts:1-4 interface User — defines `User`, used at the cursor
              full 3t 70.991 src/names.ts:2 field User::first — defines `first`, used at the cursor
              full 3t 70.987 src/names.ts:3 field User::last — defines `last`, used at the cursor
              full 11t 13.091 src/app.ts:1 group imports — same file
              full 26t 9.692 src/app.ts:9-11 method Greeter.greetAll — same file
              full 8t 8 src/app.ts:8 method Greeter.constructor — same file
            background 47/16384
              full 24t 20 src/names.ts outline src/names.ts — outline of a file whose definitions are used
              full 12t 15 package.json manifest package.json — project manifest
              full 11t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}

#[test]
fn diagnostics_at_the_cursor_join_the_immediate_tier() {
    check_ask(
        r#"
        //- /src/main.rs
        struct Point { x: i32, y: i32 }

        fn norm(p: &Point) -> i32 {
            p.x * p.x + p.$0z$0 * p.y
        }
        "#,
        Ask {
            diagnostic: Some(("error", "no field `z` on type `&Point`")),
            ..Ask::default()
        },
        expect![[r#"
            immediate 36/4096
              full 25t 100 src/main.rs:3-5 function norm — at the cursor
              full 11t 90 src/main.rs:4 diagnostic error — reported by the editor in the range
            working 13/8192
              full 13t 70.997 src/main.rs:1 struct Point — defines `Point`, used at the cursor
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}

#[test]
fn a_question_brings_search_hits_from_the_workspace() {
    // Every word of the question must match; the three best hits are promoted into the working
    // tier, the rest are listed by name in the archive tier.
    check_ask(
        r#"
        //- /src/main.rs
        fn main() {
            $0
        }
        //- /src/cache.rs
        /// Evicts the least recently used entry when the cache is full.
        pub fn evict_oldest(cache: &mut Cache) { cache.entries.pop_front(); }

        pub struct Cache { entries: std::collections::VecDeque<u32> }

        pub fn cache_size(cache: &Cache) -> usize { cache.entries.len() }
        //- /src/net.rs
        pub fn connect(addr: &str) -> bool { !addr.is_empty() }

        pub fn prefetch(cache: &mut Cache, addr: &str) { if connect(addr) { evict_oldest(cache) } }
        //- /Cargo.toml
        [package]
        name = "lru"

        [dependencies]
        serde = "1"
        "#,
        Ask {
            query: Some("cache"),
            ..Ask::default()
        },
        expect![[r#"
            immediate 6/4096
              full 6t 100 src/main.rs:1-3 function main — at the cursor
            working 66/8192
              full 16t 30 src/cache.rs:4 struct Cache — promoted: search hit 1 for "cache"
              full 17t 29 src/cache.rs:6 function cache_size — promoted: search hit 2 for "cache"
              full 33t 28 src/cache.rs:1-2 function evict_oldest — promoted: search hit 3 for "cache"
            background 20/16384
              full 9t 15 Cargo.toml manifest Cargo.toml — project manifest
              full 11t 10 folders folders top-level folders — map of the workspace
            archive 15/unbounded
              full 15t 27 src/net.rs:3 function prefetch — archive: search hit 4 for "cache"
        "#]],
    );
    check_ask(
        "fn main() {\n    $0\n}\n//- /src/cache.rs\npub fn evict_oldest(cache: &mut Cache) {}\npub fn cache_size(cache: &Cache) -> usize { 0 }\n",
        Ask {
            query: Some("evict cache"),
            ..Ask::default()
        },
        expect![[r#"
            immediate 6/4096
              full 6t 100 src/lib.rs:1-3 function main — at the cursor
            working 13/8192
              full 13t 30 src/cache.rs:1 function evict_oldest — promoted: search hit 1 for "evict cache"
            background 6/16384
              full 6t 10 folders folders top-level folders — map of the workspace
        "#]],
    );
}
