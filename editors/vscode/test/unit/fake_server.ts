// A stand-in for `strata serve --stdio` that keeps to the contract the extension codes against:
// `--version`, initialize with `strata.runAgent` and `strata.newChat` as executeCommand ids,
// `workspace/configuration` pulled after `initialized`, one `strata/status` notification,
// `strata/stats` and `strata/context`. Every message it receives, and every answer the client
// gives it, is appended as a JSON line to $FAKE_STRATA_LOG.

import * as fs from "node:fs";

if (process.argv.includes("--version")) {
  process.stdout.write("strata 0.1.0\n");
  process.exit(0);
}

const logFile = process.env.FAKE_STRATA_LOG ?? "";
const log = (entry: unknown) => {
  if (logFile) fs.appendFileSync(logFile, `${JSON.stringify(entry)}\n`);
};

function send(message: object): void {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...message }), "utf8");
  process.stdout.write(`Content-Length: ${body.length}\r\n\r\n`);
  process.stdout.write(body);
}

const RESULTS: Record<string, (params: any) => unknown> = {
  initialize: () => ({
    capabilities: {
      textDocumentSync: { openClose: true, change: 2 },
      executeCommandProvider: { commands: ["strata.runAgent", "strata.newChat"] },
      experimental: { strata: { context: true, stats: true } },
    },
    serverInfo: { name: "strata", version: "0.1.0" },
  }),
  shutdown: () => null,
  "strata/stats": () => ({ version: "0.1.0", documents: [] }),
  "strata/context": (params) => ({
    version: 1,
    rendered: `PROMPT at ${JSON.stringify(params.position ?? params.range)}`,
  }),
  "workspace/executeCommand": () => null,
};

function handle(message: any): void {
  log({ received: message });
  if (message.method === undefined) return; // an answer to one of ours, logged above
  if (message.method === "exit") process.exit(0);
  if (message.method === "initialized") {
    process.stderr.write("2026-11-25T10:00:00.000000Z  WARN strata::fake: hello from stderr\n");
    send({ id: "config-1", method: "workspace/configuration", params: { items: [{ section: "strata" }] } });
    send({
      method: "strata/status",
      params: { indexing: { done: 40, total: 100 }, inFlight: 0, rateLimited: false, offline: false },
    });
    return;
  }
  if (message.id === undefined) return;
  const result = RESULTS[message.method];
  if (message.method === "strata/stats" && message.params != null) {
    send({ id: message.id, error: { code: -32602, message: `Unexpected params: ${JSON.stringify(message.params)}` } });
  } else if (result === undefined) send({ id: message.id, error: { code: -32601, message: `no ${message.method}` } });
  else send({ id: message.id, result: result(message.params) });
}

let buffer = Buffer.alloc(0);
process.stdin.on("data", (chunk: Buffer) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/Content-Length: (\d+)/i.exec(buffer.subarray(0, end).toString())?.[1]);
    if (buffer.length < end + 4 + length) return;
    const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8");
    buffer = buffer.subarray(end + 4 + length);
    handle(JSON.parse(body));
  }
});
process.stdin.on("end", () => process.exit(0));
