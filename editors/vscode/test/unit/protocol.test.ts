import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  AGENTS,
  agentChoices,
  configurationAnswer,
  contextDocument,
  contextParams,
  initializationOptions,
  newChatParams,
  runAgentParams,
  serverLogLine,
  servesSymbols,
  statsDocument,
  userConfig,
} from "../../src/protocol";

const at = (line: number, character: number) => ({ line, character });
const URI = "file:///work/src/lib.rs";

describe("strata.runAgent", () => {
  test("agent, document, range and question in one argument", () => {
    assert.deepEqual(runAgentParams("fix", URI, { start: at(3, 4), end: at(9, 0) }, "  why does this panic? "), {
      command: "strata.runAgent",
      arguments: [
        {
          agent: "fix",
          textDocument: { uri: URI },
          range: { start: at(3, 4), end: at(9, 0) },
          query: "why does this panic?",
        },
      ],
    });
  });

  test("no question: no query key", () => {
    for (const query of [undefined, "", "   "]) {
      const params = runAgentParams("explain", URI, { start: at(1, 1), end: at(1, 1) }, query);
      assert.deepEqual(params.arguments, [
        { agent: "explain", textDocument: { uri: URI }, range: { start: at(1, 1), end: at(1, 1) } },
      ]);
    }
  });
});

test("strata.newChat has no arguments", () => {
  assert.deepEqual(newChatParams(), { command: "strata.newChat" });
});

describe("strata/context", () => {
  test("the cursor when nothing is selected", () => {
    assert.deepEqual(contextParams(URI, at(5, 2), { start: at(5, 2), end: at(5, 2) }), {
      textDocument: { uri: URI },
      position: at(5, 2),
    });
    assert.deepEqual(contextParams(URI, at(5, 2)), { textDocument: { uri: URI }, position: at(5, 2) });
  });

  test("the selection when there is one", () => {
    assert.deepEqual(contextParams(URI, at(7, 0), { start: at(5, 2), end: at(7, 0) }), {
      textDocument: { uri: URI },
      range: { start: at(5, 2), end: at(7, 0) },
    });
  });

  test("the document: a summary comment, then the rendered prompt untouched", () => {
    const text = contextDocument(
      {
        version: 4,
        encoding: "o200k_base",
        tiers: [
          { tier: "immediate", budget: 4096, tokens: 812, items: [{}, {}] },
          { tier: "working", budget: 8192, tokens: 100, items: [{}] },
          { tier: "archive", budget: 0, tokens: 0, items: [] },
        ],
        redactions: 1,
        notes: ["a note -- with dashes"],
        rendered: "## src/lib.rs\n```rust\nfn main() {}\n```\n",
      },
      "src/lib.rs:6:3",
    );
    assert.equal(
      text,
      [
        "<!--",
        "Strata context for src/lib.rs:6:3",
        "document version 4, tokens counted with o200k_base",
        "immediate: 812 of 4096 tokens, 2 items; working: 100 of 8192 tokens, 1 item; archive: 0 tokens, 0 items",
        "1 secret redacted",
        "note: a note ‐‐ with dashes",
        "-->",
        "",
        "## src/lib.rs\n```rust\nfn main() {}\n```\n",
      ].join("\n"),
    );
  });

  test("a result without `rendered` is an error", () => {
    for (const result of [null, {}, { rendered: 3 }, "text"]) {
      assert.throws(() => contextDocument(result, "x"), /without a `rendered` prompt/);
    }
  });
});

test("strata/stats is shown as indented JSON", () => {
  assert.equal(statsDocument({ version: "0.1.0", documents: [] }), '{\n  "version": "0.1.0",\n  "documents": []\n}\n');
  assert.equal(statsDocument(undefined), "null\n");
});

describe("agents", () => {
  test("the built-ins, in order", () => {
    assert.deepEqual(
      AGENTS.map((a) => a.name),
      ["explain", "document", "fix", "tests", "refactor", "review", "chat", "summarize"],
    );
  });

  test("the user's own agents follow, completion never", () => {
    const choices = agentChoices({
      agents: { translate: { title: "Translate comments" }, explain: { cache_ttl_secs: 1 }, completion: {}, audit: 3 },
    });
    assert.deepEqual(
      choices.slice(AGENTS.length).map((a) => [a.name, a.description]),
      [
        ["audit", "from strata.config"],
        ["translate", "Translate comments"],
      ],
    );
    assert.equal(agentChoices(undefined).length, AGENTS.length);
    assert.equal(agentChoices({ agents: ["x"] }).length, AGENTS.length);
  });
});

describe("configuration", () => {
  test("only user settings count, as a plain copy", () => {
    const global = { providers: { local: { kind: "ollama" } } };
    const config = userConfig({ globalValue: global, workspaceValue: { providers: { evil: {} } } } as never);
    assert.deepEqual(config, global);
    assert.notEqual(config, global);
    assert.deepEqual(userConfig({ workspaceValue: { a: 1 } } as never), {});
    assert.deepEqual(userConfig({ globalValue: [1] }), {});
    assert.deepEqual(userConfig(undefined), {});
  });

  test("initializationOptions carry it as `config`", () => {
    assert.deepEqual(initializationOptions({ completion: { mode: "inline" } }), {
      config: { completion: { mode: "inline" } },
    });
  });

  test("workspace/configuration: section strata is { config }, others keep the default answer", () => {
    const config = { routes: { default: ["local"] } };
    assert.deepEqual(
      configurationAnswer(
        [{ section: "strata" }, { section: "editor" }, { section: "strata.config" }, {}],
        [{ server: { extraEnv: { SECRET: "x" } }, config: { stale: true } }, { tabSize: 4 }, null],
        config,
      ),
      [{ config }, { tabSize: 4 }, config, null],
    );
  });
});

describe("server log lines", () => {
  const cases: Array<[string, string, string]> = [
    ["2026-11-25T10:00:00.123456Z ERROR strata::lsp: boom", "error", "strata::lsp: boom"],
    ["2026-11-25T10:00:00.123456Z  WARN strata::gateway: slow", "warn", "strata::gateway: slow"],
    ["2026-11-25T10:00:00.123456Z  INFO strata: ready", "info", "strata: ready"],
    ["2026-11-25T10:00:00.123456Z DEBUG strata::index: 3 files", "info", "DEBUG strata::index: 3 files"],
    ["thread 'main' panicked at server/main.rs:3:5:", "error", "thread 'main' panicked at server/main.rs:3:5:"],
    ["  continuation", "warn", "  continuation"],
  ];
  for (const [line, level, text] of cases) {
    test(line, () => assert.deepEqual(serverLogLine(line, "warn"), { level, text }));
  }
});

describe("strata.documentSymbols", () => {
  const none = () => false;
  const rustAnalyzer = (id: string) => id === "rust-lang.rust-analyzer";
  test("auto: no outline twice over the TypeScript server's or rust-analyzer's", () => {
    for (const language of ["typescript", "typescriptreact", "javascript", "javascriptreact"]) {
      assert.equal(servesSymbols("auto", language, none), false, language);
    }
    assert.equal(servesSymbols("auto", "rust", rustAnalyzer), false);
    assert.equal(servesSymbols("auto", "rust", none), true, "Rust without rust-analyzer");
    assert.equal(servesSymbols(undefined, "typescript", none), false, "unset is auto");
  });
  test("always and never are taken as said", () => {
    assert.equal(servesSymbols("always", "typescript", none), true);
    assert.equal(servesSymbols("never", "rust", none), false);
  });
});
