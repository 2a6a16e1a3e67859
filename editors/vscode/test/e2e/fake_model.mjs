// A fake model server on loopback for the end-to-end test: Ollama's wire format (`POST /api/chat`
// and `POST /api/generate`, NDJSON streams), with nothing but node:http.
//
// Owns the answers and the record of what was asked. A chat request is answered by the first rule
// whose `match` strings all occur in its last user message (`text`, streamed line by line after
// `delayMs`); a generate request (fill in the middle) continues the prompt's last line towards
// `line`, as a code model would, after `generateDelayMs`. It never decides what a test expects: the test sets the rules.

import * as http from "node:http";

/**
 * @typedef {{ match: string[], text: string, delayMs?: number }} ChatRule
 * @typedef {{ path: string, body: any, at: number, answered: boolean, dropped: boolean }} Call
 */

export class FakeModel {
  constructor() {
    /** @type {ChatRule[]} */
    this.rules = [];
    /** What a fill-in-the-middle request completes its last line towards. */
    this.line = "";
    /** How long a fill-in-the-middle answer takes, as a real model's would. */
    this.generateDelayMs = 0;
    /** @type {Call[]} */
    this.calls = [];
    this.server = http.createServer((req, res) => this.serve(req, res));
    /** @type {Set<import("node:net").Socket>} */
    this.sockets = new Set();
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** Listens on 127.0.0.1 at a free port; resolves to the base URL. */
  async start() {
    await new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", () => resolve(undefined));
    });
    const address = /** @type {import("node:net").AddressInfo} */ (this.server.address());
    return `http://127.0.0.1:${address.port}`;
  }

  async stop() {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(() => resolve(undefined)));
  }

  /** The calls to `path` so far. */
  callsTo(path) {
    return this.calls.filter((c) => c.path === path);
  }

  /** The last user message of a chat request (or the prompt of a generate request). */
  static question(body) {
    if (typeof body?.prompt === "string") return body.prompt;
    const messages = Array.isArray(body?.messages) ? body.messages : [];
    const users = messages.filter((m) => m?.role === "user");
    const last = users[users.length - 1];
    return typeof last?.content === "string" ? last.content : "";
  }

  /** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
  serve(req, res) {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":"bad json"}');
        return;
      }
      /** @type {Call} */
      const call = { path: req.url ?? "", body, at: Date.now(), answered: false, dropped: false };
      this.calls.push(call);
      res.on("close", () => {
        if (!call.answered) call.dropped = true;
      });
      if (req.method !== "POST" || (call.path !== "/api/chat" && call.path !== "/api/generate")) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
        return;
      }
      const question = FakeModel.question(body);
      let pieces;
      let delayMs = 0;
      let wrap;
      if (call.path === "/api/chat") {
        const rule = this.rules.find((r) => r.match.every((m) => question.includes(m)));
        const text = rule ? rule.text : "I have no answer for that.";
        delayMs = rule?.delayMs ?? 0;
        pieces = text.match(/[^\n]*\n?/g).filter((p) => p !== "");
        wrap = (piece) => ({ message: { role: "assistant", content: piece } });
      } else {
        const last = question.slice(question.lastIndexOf("\n") + 1);
        const rest = last.length > 0 && this.line.startsWith(last) ? this.line.slice(last.length) : "";
        pieces = [rest];
        delayMs = this.generateDelayMs;
        wrap = (piece) => ({ response: piece });
      }
      const stamp = { model: body.model ?? "coder", created_at: "2026-01-01T00:00:00Z" };
      const usage = { done: true, done_reason: "stop", prompt_eval_count: 10, eval_count: pieces.length };
      const send = () => {
        if (res.destroyed) return;
        if (body.stream === false) {
          const whole = { ...stamp, ...wrap(pieces.join("")), ...usage };
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify(whole));
        } else {
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          for (const piece of pieces) res.write(JSON.stringify({ ...stamp, ...wrap(piece), done: false }) + "\n");
          res.end(JSON.stringify({ ...stamp, ...wrap(""), ...usage }) + "\n");
        }
        call.answered = true;
      };
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  }
}
