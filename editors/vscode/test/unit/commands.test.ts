import "./use_vscode_stub";
import assert from "node:assert/strict";
import { beforeEach, describe, test } from "node:test";
import type * as vscode from "vscode";
import {
  type CommandHost,
  type Connection,
  newChat,
  registerCommands,
  runAgent,
  showContext,
  showStats,
} from "../../src/commands";
import { ClientCommand, ServerCommand } from "../../src/protocol";
import * as stub from "./vscode_stub";

interface Sent {
  method: string;
  params: unknown;
}

/** A host whose server answers each method from `answers` and records what was sent. */
function fakeHost(answers: Record<string, (params: unknown) => unknown> = {}, isRunning = true) {
  const sent: Sent[] = [];
  const shown: Array<{ name: string; text: string }> = [];
  let restarts = 0;
  const connection: Connection = {
    async request(method, params) {
      sent.push({ method, params });
      const answer = answers[method];
      return answer === undefined ? null : answer(params);
    },
    asUri: (uri) => uri.toString(),
    asPosition: (p) => ({ line: p.line, character: p.character }),
    asRange: (r) => ({
      start: { line: r.start.line, character: r.start.character },
      end: { line: r.end.line, character: r.end.character },
    }),
  };
  const host: CommandHost = {
    connection: () => (isRunning ? connection : undefined),
    restart: async () => {
      restarts += 1;
    },
    config: () => ({ agents: { translate: { title: "Translate comments" } } }),
    show: async (name, text) => {
      shown.push({ name, text });
    },
  };
  return { host, sent, shown, restarts: () => restarts };
}

/** An editor on /work/src/lib.rs with the selection from (anchor) to (active). */
function openEditor(anchor: [number, number], active: [number, number]): void {
  stub.window.activeTextEditor = {
    document: { uri: stub.Uri.file("/work/src/lib.rs") },
    selection: new stub.Selection(new stub.Position(...anchor), new stub.Position(...active)),
  } as unknown as vscode.TextEditor;
}

const LIB = "file:///work/src/lib.rs";

beforeEach(() => stub.reset());

describe("Strata: Run Agent", () => {
  test("pick an agent, ask a question, send strata.runAgent over the selection", async () => {
    openEditor([2, 0], [4, 7]);
    stub.user.pick = (items) => items.find((i) => i.agent === "fix");
    stub.user.input = () => "why does this panic?";
    const { host, sent } = fakeHost();
    await runAgent(host);
    assert.deepEqual(sent, [
      {
        method: "workspace/executeCommand",
        params: {
          command: "strata.runAgent",
          arguments: [
            {
              agent: "fix",
              textDocument: { uri: LIB },
              range: { start: { line: 2, character: 0 }, end: { line: 4, character: 7 } },
              query: "why does this panic?",
            },
          ],
        },
      },
    ]);
    // The server answers at once and reports the run itself ($/progress, one message).
    assert.deepEqual(stub.recorded.progress, []);
    assert.deepEqual(stub.recorded.messages, []);
  });

  test("the pick lists the built-in agents, then the user's", async () => {
    openEditor([0, 0], [0, 0]);
    await runAgent(fakeHost().host);
    const labels = (stub.recorded.quickPickItems[0] as Array<{ agent: string }>).map((i) => i.agent);
    assert.deepEqual(labels, [
      "explain",
      "document",
      "fix",
      "tests",
      "refactor",
      "review",
      "chat",
      "summarize",
      "translate",
    ]);
  });

  test("a backwards selection is sent start first; an empty question sends no query", async () => {
    openEditor([9, 3], [1, 0]);
    stub.user.pick = (items) => items[0];
    stub.user.input = () => "";
    const { host, sent } = fakeHost();
    await runAgent(host);
    assert.deepEqual((sent[0]?.params as { arguments: unknown[] }).arguments[0], {
      agent: "explain",
      textDocument: { uri: LIB },
      range: { start: { line: 1, character: 0 }, end: { line: 9, character: 3 } },
    });
  });

  test("escape at the pick or at the question sends nothing", async () => {
    openEditor([0, 0], [0, 0]);
    const { host, sent } = fakeHost();
    await runAgent(host);
    stub.user.pick = (items) => items[0];
    stub.user.input = () => undefined;
    await runAgent(host);
    assert.deepEqual(sent, []);
  });

  test("a keybinding may name the agent and question", async () => {
    openEditor([1, 1], [1, 1]);
    const { host, sent } = fakeHost();
    await runAgent(host, "review");
    await runAgent(host, { agent: "chat", query: "and this?" });
    assert.equal(stub.recorded.quickPickItems.length, 0);
    assert.deepEqual(
      sent.map((s) => (s.params as { arguments: Array<{ agent: string; query?: string }> }).arguments[0]),
      [
        {
          agent: "review",
          textDocument: { uri: LIB },
          range: { start: { line: 1, character: 1 }, end: { line: 1, character: 1 } },
        },
        {
          agent: "chat",
          textDocument: { uri: LIB },
          range: { start: { line: 1, character: 1 }, end: { line: 1, character: 1 } },
          query: "and this?",
        },
      ],
    );
  });

  test("without an editor: a hint, no request", async () => {
    const { host, sent } = fakeHost();
    await runAgent(host, "explain");
    assert.deepEqual(sent, []);
    assert.deepEqual(stub.recorded.messages, [
      { kind: "info", text: "Open a file to run an agent on it.", choices: [] },
    ]);
  });

  test("the server's error is shown; a cancelled request is not", async () => {
    openEditor([0, 0], [0, 0]);
    const failing = fakeHost({
      "workspace/executeCommand": () => {
        throw Object.assign(new Error("no model answered at http://127.0.0.1:11434"), { code: -32603 });
      },
    });
    await runAgent(failing.host, "explain");
    const cancelled = fakeHost({
      "workspace/executeCommand": () => {
        throw Object.assign(new Error("cancelled"), { code: -32800 });
      },
    });
    await runAgent(cancelled.host, "explain");
    assert.deepEqual(stub.recorded.messages, [
      { kind: "error", text: "Strata: no model answered at http://127.0.0.1:11434", choices: [] },
    ]);
  });
});

test("Strata: New Chat sends strata.newChat without arguments", async () => {
  const { host, sent } = fakeHost();
  await newChat(host);
  assert.deepEqual(sent, [{ method: "workspace/executeCommand", params: { command: "strata.newChat" } }]);
});

describe("Strata: Show Context", () => {
  test("the cursor's context opens as markdown", async () => {
    openEditor([4, 2], [4, 2]);
    const { host, sent, shown } = fakeHost({ "strata/context": () => ({ version: 1, rendered: "PROMPT" }) });
    await showContext(host);
    assert.deepEqual(sent, [
      { method: "strata/context", params: { textDocument: { uri: LIB }, position: { line: 4, character: 2 } } },
    ]);
    assert.equal(shown.length, 1);
    assert.equal(shown[0]?.name, "Strata context.md");
    assert.match(
      shown[0]?.text ?? "",
      /^<!--\nStrata context for src\/lib\.rs:5:3\ndocument version 1\n-->\n\nPROMPT$/,
    );
  });

  test("a selection sends its range", async () => {
    openEditor([1, 0], [3, 4]);
    const { host, sent } = fakeHost({ "strata/context": () => ({ rendered: "" }) });
    await showContext(host);
    assert.deepEqual(sent[0]?.params, {
      textDocument: { uri: LIB },
      range: { start: { line: 1, character: 0 }, end: { line: 3, character: 4 } },
    });
  });

  test("an answer without `rendered` is reported", async () => {
    openEditor([0, 0], [0, 0]);
    const { host, shown } = fakeHost({ "strata/context": () => ({}) });
    await showContext(host);
    assert.deepEqual(shown, []);
    assert.equal(stub.recorded.messages[0]?.text, "Strata: strata/context answered without a `rendered` prompt");
  });
});

test("Strata: Show Statistics sends strata/stats without params and opens JSON", async () => {
  const { host, sent, shown } = fakeHost({ "strata/stats": () => ({ version: "0.1.0" }) });
  await showStats(host);
  assert.deepEqual(sent, [{ method: "strata/stats", params: undefined }]);
  assert.deepEqual(shown, [{ name: "Strata statistics.json", text: '{\n  "version": "0.1.0"\n}\n' }]);
});

test("a stopped server: say so and offer a restart", async () => {
  const { host, sent, restarts } = fakeHost({}, false);
  stub.user.choose = (_text, choices) => choices[0];
  await showStats(host);
  assert.deepEqual(sent, []);
  assert.deepEqual(stub.recorded.messages, [
    { kind: "error", text: "Strata is not running.", choices: ["Restart Server"] },
  ]);
  assert.equal(restarts(), 1);
});

test("the palette commands are registered under strata.client.*, never the server's ids", () => {
  registerCommands(fakeHost().host);
  assert.deepEqual(stub.recorded.registered, Object.values(ClientCommand));
  const registered: string[] = stub.recorded.registered;
  for (const id of Object.values(ServerCommand)) assert.ok(!registered.includes(id));
});
