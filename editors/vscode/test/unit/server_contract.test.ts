// The extension's side of the contract, checked against the real server when STRATA_BIN names a
// built `strata` (CI sets it; skipped otherwise): discovery accepts its `--version`, and what the
// extension sends (initializationOptions, the `workspace/configuration` answer, strata/stats with
// null params, strata/context at a position) is taken without a warning.

import assert from "node:assert/strict";
import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { configurationAnswer, contextDocument, contextParams, initializationOptions, Method } from "../../src/protocol";
import { discover, nodeProbe } from "../../src/server_path";

const bin = process.env.STRATA_BIN;

interface Message {
  id?: number | string;
  method?: string;
  params?: any;
  result?: any;
  error?: { code: number; message: string };
}

/** Just enough of an LSP client: framing, requests by id, and a handler for the server's requests. */
class Wire {
  private buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, (m: Message) => void>();
  readonly notifications: Message[] = [];
  readonly serverRequests: Message[] = [];

  constructor(
    private readonly child: childProcess.ChildProcessWithoutNullStreams,
    private readonly answer: (m: Message) => unknown,
  ) {
    child.stdout.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.drain();
    });
  }

  private drain(): void {
    for (;;) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/Content-Length: (\d+)/i.exec(this.buffer.subarray(0, end).toString())?.[1]);
      if (this.buffer.length < end + 4 + length) return;
      const body = this.buffer.subarray(end + 4, end + 4 + length).toString("utf8");
      this.buffer = this.buffer.subarray(end + 4 + length);
      this.dispatch(JSON.parse(body) as Message);
    }
  }

  private dispatch(m: Message): void {
    if (m.method !== undefined && m.id !== undefined) {
      this.serverRequests.push(m);
      this.write({ jsonrpc: "2.0", id: m.id, result: this.answer(m) ?? null });
    } else if (m.method !== undefined) {
      this.notifications.push(m);
    } else if (typeof m.id === "number") {
      this.pending.get(m.id)?.(m);
      this.pending.delete(m.id);
    }
  }

  private write(message: object): void {
    const body = Buffer.from(JSON.stringify(message), "utf8");
    this.child.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
    this.child.stdin.write(body);
  }

  request(method: string, params: unknown): Promise<Message> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.write({ jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method: string, params: unknown): void {
    this.write({ jsonrpc: "2.0", method, params });
  }
}

function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error("timed out"));
      else setTimeout(tick, 20);
    };
    tick();
  });
}

test(
  "the real server takes what the extension sends",
  { skip: bin ? false : "set STRATA_BIN to a built strata", timeout: 60_000 },
  async (t) => {
    const binary = path.resolve(bin as string);
    assert.ok(fs.existsSync(binary), `STRATA_BIN=${bin} does not exist`);
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "strata-contract-"));
    t.after(() => fs.rmSync(home, { recursive: true, force: true }));
    const workspace = path.join(home, "ws");
    fs.mkdirSync(path.join(workspace, "src"), { recursive: true });
    const source =
      "/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn twice(x: i32) -> i32 {\n    add(x, x)\n}\n";
    fs.writeFileSync(path.join(workspace, "src", "lib.rs"), source);
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, "config"),
      STRATA_CACHE_DIR: path.join(home, "cache"),
    };

    const found = await discover(
      { setting: binary, extensionPath: home, env, platform: process.platform, homeDir: home },
      nodeProbe(10_000),
    );
    assert.ok(found.ok, found.ok ? "" : found.message);
    assert.match(found.version, /^\d+\.\d+\.\d+/);

    const config = { completion: { mode: "inline" }, cache: { memory_mb: 8 } };
    const child = childProcess.spawn(found.candidate.path, ["serve", "--stdio"], { env, cwd: workspace });
    t.after(() => child.kill());
    const wire = new Wire(child, (m) => {
      if (m.method === "workspace/configuration") {
        const items = m.params.items as Array<{ section?: string }>;
        return configurationAnswer(
          items,
          items.map(() => null),
          config,
        );
      }
      return null;
    });

    const uri = pathToFileURL(path.join(workspace, "src", "lib.rs")).href;
    const init = await wire.request("initialize", {
      processId: process.pid,
      rootUri: pathToFileURL(workspace).href,
      workspaceFolders: [{ uri: pathToFileURL(workspace).href, name: "ws" }],
      capabilities: {
        general: { positionEncodings: ["utf-16"] },
        workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } },
        textDocument: { inlineCompletion: { dynamicRegistration: true } },
        window: { workDoneProgress: true },
      },
      initializationOptions: initializationOptions(config),
    });
    assert.equal(init.error, undefined);
    assert.equal(init.result.serverInfo.name, "strata");
    assert.ok(init.result.capabilities.inlineCompletionProvider, "inline completion for a client that has it");
    const commands: string[] = init.result.capabilities.executeCommandProvider?.commands ?? [];
    t.diagnostic(`executeCommandProvider: ${JSON.stringify(commands)}`);
    for (const id of commands)
      assert.ok(!id.startsWith("strata.client."), `${id} would clash with the extension's commands`);
    wire.notify("initialized", {});
    await until(() => wire.serverRequests.some((m) => m.method === "workspace/configuration"), 10_000);
    wire.notify("workspace/didChangeConfiguration", { settings: { strata: { config } } });
    wire.notify("textDocument/didOpen", { textDocument: { uri, languageId: "rust", version: 1, text: source } });

    const stats = await wire.request(Method.stats, undefined); // no params, as the extension sends it
    assert.equal(stats.error, undefined);
    assert.equal(stats.result.version, found.version);
    assert.deepEqual(stats.result.config.warnings, []);
    assert.ok(
      stats.result.config.sources.some((s: string) => s.includes("strata.config")),
      JSON.stringify(stats.result.config),
    );

    const context = await wire.request(Method.context, contextParams(uri, { line: 6, character: 5 }));
    assert.equal(context.error, undefined);
    assert.match(contextDocument(context.result, "src/lib.rs:7:6"), /pub fn twice/);

    const warnings = wire.notifications.filter((m) => m.method === "window/showMessage" && m.params.type <= 2);
    assert.deepEqual(warnings, []);

    await wire.request("shutdown", null);
    wire.notify("exit", null);
  },
);
