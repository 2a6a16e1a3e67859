// The shipped bundle (out/extension.js), activated in a fake VS Code with the real
// vscode-languageclient, against a fake server that keeps Strata's contract (fake_server.ts) and,
// when STRATA_BIN names a built `strata`, against the real one.

import "./use_vscode_fake";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as fake from "./vscode_fake";

const root = path.resolve(__dirname, "..", "..", "..");
const bundle = path.join(root, "out", "extension.js");

interface Extension {
  activate(context: unknown): Promise<void>;
  deactivate(): Promise<void>;
}

function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

/** Activates the bundle; `stop` deactivates it and disposes its subscriptions, as VS Code does. */
async function activate(extensionPath: string): Promise<{ stop(): Promise<void> }> {
  const extension = require(bundle) as Extension;
  const context = { subscriptions: [] as Array<{ dispose(): unknown }>, extensionPath };
  await extension.activate(context);
  return {
    async stop() {
      await extension.deactivate();
      for (const d of context.subscriptions.splice(0)) d.dispose();
    },
  };
}

const status = () => fake.state.statusItems.at(-1);

function openEditor(file: string): void {
  fake.window.activeTextEditor = {
    document: { uri: fake.Uri.file(file), languageId: "rust" },
    selection: new fake.Selection(new fake.Position(2, 0), new fake.Position(4, 1)),
  };
}

describe("with the fake server", { skip: process.platform === "win32" ? "shell scripts" : false }, () => {
  let dir = "";
  let logFile = "";
  let extension: { stop(): Promise<void> } | undefined;
  const received = (): any[] =>
    fs.existsSync(logFile)
      ? fs
          .readFileSync(logFile, "utf8")
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).received)
      : [];
  const requests = (method: string) => received().filter((m) => m.method === method);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-activation-"));
    logFile = path.join(dir, "received.jsonl");
    const server = path.join(dir, "strata-fake");
    fs.writeFileSync(
      server,
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(__dirname, "fake_server.js")}" "$@"\n`,
      { mode: 0o755 },
    );
    fake.setWorkspaceFolder(dir);
    fake.state.settings.clear();
    fake.setSettings({
      "strata.server.path": server,
      "strata.server.extraEnv": { FAKE_STRATA_LOG: logFile },
      "strata.config": { completion: { mode: "inline" } },
    });
    extension = await activate(dir);
  });

  after(async () => {
    await extension?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the server starts with strata.config as initializationOptions.config", async () => {
    await until(() => requests("initialize").length === 1, "initialize");
    assert.deepEqual(requests("initialize")[0].params.initializationOptions, {
      config: { completion: { mode: "inline" } },
    });
  });

  test("the client offers inlineCompletion (ghost text) and workspace/configuration", () => {
    const capabilities = requests("initialize")[0].params.capabilities;
    assert.ok(capabilities.textDocument.inlineCompletion);
    assert.equal(capabilities.workspace.configuration, true);
  });

  test("workspace/configuration for section strata is answered with { config } only", async () => {
    await until(() => received().some((m) => m.id === "config-1"), "the configuration answer");
    assert.deepEqual(received().find((m) => m.id === "config-1").result, [
      { config: { completion: { mode: "inline" } } },
    ]);
  });

  test("the server's commands are the client's to register; the palette's are ours", () => {
    for (const id of [
      "strata.runAgent",
      "strata.newChat",
      "strata.client.restartServer",
      "strata.client.showContext",
      "strata.client.showStats",
      "strata.client.newChat",
      "strata.client.runAgent",
    ]) {
      assert.ok(fake.state.commands.has(id), id);
    }
    assert.deepEqual(fake.state.messages, []);
  });

  test("strata/status reaches the status bar; a click shows statistics", async () => {
    await until(() => status()?.text === "$(sync~spin) Strata indexing 40%", "the status item");
    assert.equal(status()?.command, "strata.client.showStats");
  });

  test("the server's stderr lands in the Strata output at its level", async () => {
    await until(
      () => (fake.state.output.get("Strata") ?? []).includes("[warn] strata::fake: hello from stderr"),
      "the log line",
    );
  });

  test("Run Agent goes out as workspace/executeCommand strata.runAgent", async () => {
    openEditor(path.join(dir, "lib.rs"));
    fake.state.pick = (items) => items.find((i: { agent: string }) => i.agent === "tests");
    fake.state.input = () => "cover the overflow";
    await fake.commands.executeCommand("strata.client.runAgent");
    const sent = requests("workspace/executeCommand").at(-1);
    assert.deepEqual(sent.params, {
      command: "strata.runAgent",
      arguments: [
        {
          agent: "tests",
          textDocument: { uri: fake.Uri.file(path.join(dir, "lib.rs")).toString() },
          range: { start: { line: 2, character: 0 }, end: { line: 4, character: 1 } },
          query: "cover the overflow",
        },
      ],
    });
  });

  test("New Chat sends strata.newChat without arguments", async () => {
    await fake.commands.executeCommand("strata.client.newChat");
    assert.deepEqual(requests("workspace/executeCommand").at(-1).params, { command: "strata.newChat" });
  });

  test("Show Statistics and Show Context open read-only documents", async () => {
    await fake.commands.executeCommand("strata.client.showStats");
    assert.equal("params" in requests("strata/stats").at(-1), false);
    assert.deepEqual(fake.state.shownDocuments.at(-1), {
      uri: "strata:///Strata%20statistics.json",
      text: '{\n  "version": "0.1.0",\n  "documents": []\n}\n',
    });
    openEditor(path.join(dir, "lib.rs"));
    await fake.commands.executeCommand("strata.client.showContext");
    assert.deepEqual(requests("strata/context").at(-1).params.range, {
      start: { line: 2, character: 0 },
      end: { line: 4, character: 1 },
    });
    assert.equal(fake.state.shownDocuments.at(-1)?.uri, "strata:///Strata%20context.md");
    assert.match(fake.state.shownDocuments.at(-1)?.text ?? "", /\n\nPROMPT at \{"start":\{"line":2/);
  });

  test("a change to strata.config is pushed, and the server may pull it again", async () => {
    fake.setSettings({ "strata.config": { completion: { mode: "off" } } });
    await until(() => requests("workspace/didChangeConfiguration").length > 0, "didChangeConfiguration");
    assert.deepEqual(requests("workspace/didChangeConfiguration").at(-1).params, {
      settings: { strata: { config: { completion: { mode: "off" } } } },
    });
  });

  test("strata.trace.server turns the Strata Trace output on and off", async () => {
    const trace = () => (fake.state.output.get("Strata Trace") ?? []).filter((l) => l.includes("strata/stats")).length;
    await fake.commands.executeCommand("strata.client.showStats");
    assert.equal(trace(), 0);
    fake.setSettings({ "strata.trace.server": "messages" });
    await fake.commands.executeCommand("strata.client.showStats");
    await until(() => trace() >= 2, "the traced request and response");
    fake.setSettings({ "strata.trace.server": "off" });
    const before = trace();
    await fake.commands.executeCommand("strata.client.showStats");
    assert.equal(trace(), before);
  });

  test("Restart Server starts a new process", async () => {
    await fake.commands.executeCommand("strata.client.restartServer");
    await until(() => requests("initialize").length === 2, "the second initialize");
    assert.ok(requests("shutdown").length >= 1);
    await until(() => status()?.text === "$(sync~spin) Strata indexing 40%", "the status item after restart");
  });
});

describe("with no server to be found", () => {
  let dir = "";
  let extension: { stop(): Promise<void> } | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-activation-"));
    fake.state.messages.length = 0;
    fake.state.settings.clear();
    fake.setSettings({
      "strata.server.path": path.join(dir, "nope"),
      "strata.server.extraEnv": { PATH: dir },
    });
    extension = await activate(dir);
  });

  after(async () => {
    await extension?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("one error naming what was tried; the item offers a restart", () => {
    const errors = fake.state.messages.filter((m) => m.kind === "error").map((m) => m.text);
    assert.deepEqual(errors, [
      `Strata could not find a working \`strata\` binary. Tried strata.server.path (${path.join(dir, "nope")}): no such file; ` +
        `the bundled binary (${path.join(dir, "server", "strata")}): no such file; \`strata\` on PATH: not found on PATH. ` +
        "Install it with `cargo install --path .` in Strata's repository, or set `strata.server.path` " +
        "(a machine setting: in a remote window — Remote-SSH, WSL, a container, code-server — put it in " +
        "the Remote [machine] settings, where User settings do not apply).",
    ]);
    assert.equal(status()?.text, "$(circle-slash) Strata stopped");
    assert.equal(status()?.command, "strata.client.restartServer");
  });

  test("commands say the server is not running", async () => {
    await fake.commands.executeCommand("strata.client.showStats");
    assert.equal(fake.state.messages.at(-1)?.text, "Strata is not running.");
  });
});

describe("with the real server", { skip: process.env.STRATA_BIN ? false : "set STRATA_BIN to a built strata" }, () => {
  let dir = "";
  let extension: { stop(): Promise<void> } | undefined;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-activation-"));
    fake.setWorkspaceFolder(dir);
    fake.state.messages.length = 0;
    fake.state.settings.clear();
    fake.setSettings({
      "strata.server.path": path.resolve(process.env.STRATA_BIN as string),
      "strata.server.extraEnv": {
        STRATA_CACHE_DIR: path.join(dir, "cache"),
        XDG_CONFIG_HOME: path.join(dir, "config"),
      },
      "strata.config": { cache: { memory_mb: 8 } },
    });
    extension = await activate(dir);
  });

  after(async () => {
    await extension?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("starts, and Show Statistics shows the server's own numbers", async () => {
    await until(
      () => status()?.text === "Strata" && status()?.command === "strata.client.showStats",
      "the running item",
    );
    await fake.commands.executeCommand("strata.client.showStats");
    assert.deepEqual(fake.state.messages, []);
    const stats = JSON.parse(fake.state.shownDocuments.at(-1)?.text ?? "null");
    assert.match(stats.version, /^\d+\.\d+\.\d+/);
    assert.deepEqual(stats.config.warnings, []);
    assert.ok(
      stats.config.sources.some((s: string) => s.includes("strata.config")),
      JSON.stringify(stats.config),
    );
    assert.deepEqual(fake.state.messages, []);
  });
});
