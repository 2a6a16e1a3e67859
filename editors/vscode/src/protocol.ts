// Strata's side of the wire, as the extension sees it.
//
// Owns the names of Strata's custom methods and server commands, the params the palette commands
// send, the answer to `workspace/configuration`, and the turning of results and server log lines
// into text. Pure: no `vscode` import, no I/O; positions are plain LSP objects (`{line, character}`,
// in the client's encoding) produced by the language client's converter.

export const Method = {
  context: "strata/context",
  stats: "strata/stats",
  status: "strata/status",
  executeCommand: "workspace/executeCommand",
  didChangeConfiguration: "workspace/didChangeConfiguration",
} as const;

/**
 * Commands the server advertises in `executeCommandProvider`. The language client registers these
 * ids itself (so code actions can run them); the extension must never register them again.
 */
export const ServerCommand = {
  runAgent: "strata.runAgent",
  newChat: "strata.newChat",
} as const;

/** The extension's own command ids, all under `strata.client.` so they cannot clash with the server's. */
export const ClientCommand = {
  restartServer: "strata.client.restartServer",
  showContext: "strata.client.showContext",
  showStats: "strata.client.showStats",
  newChat: "strata.client.newChat",
  runAgent: "strata.client.runAgent",
} as const;

/** The VS Code languages Strata has a grammar for. */
export const LANGUAGES = ["rust", "typescript", "javascript", "typescriptreact", "javascriptreact"] as const;

/** Chat files, in any folder. */
export const CHAT_PATTERN = "**/*.strata.md";

/** The documents the server is sent: code in those languages, saved or not, and chat files. */
export const DOCUMENT_SELECTOR: ReadonlyArray<{ scheme: string; language?: string; pattern?: string }> = [
  ...LANGUAGES.flatMap((language) => [
    { scheme: "file", language },
    { scheme: "untitled", language },
  ]),
  { scheme: "file", pattern: CHAT_PATTERN },
];

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

export interface ExecuteCommandParams {
  command: string;
  arguments?: unknown[];
}

export interface Agent {
  name: string;
  /** What the quick pick shows. */
  label: string;
  description: string;
}

/** The built-in agents that act on code, in the order the quick pick lists them. */
export const AGENTS: readonly Agent[] = [
  { name: "explain", label: "Explain", description: "Explain what this code does" },
  { name: "document", label: "Document", description: "Write doc comments" },
  { name: "fix", label: "Fix", description: "Fix the problems here" },
  { name: "tests", label: "Tests", description: "Write tests for this code" },
  { name: "refactor", label: "Refactor", description: "Restructure without changing behaviour" },
  { name: "review", label: "Review", description: "Point out bugs and risks" },
  { name: "chat", label: "Chat", description: "Ask about this code in a chat" },
  { name: "summarize", label: "Summarize", description: "Summarize this file or selection" },
];

/** Agents the quick pick never offers: they are not run on a selection. */
const NOT_RUNNABLE = new Set(["completion"]);

/**
 * The quick pick's agents: the built-ins, then any other agent named in the user's `strata.config`
 * (`agents.<name>`), in name order.
 */
export function agentChoices(config: unknown): Agent[] {
  const choices = [...AGENTS];
  const agents = isObject(config) ? config.agents : undefined;
  if (isObject(agents)) {
    const known = new Set(choices.map((a) => a.name));
    for (const name of Object.keys(agents).sort()) {
      if (known.has(name) || NOT_RUNNABLE.has(name) || name.trim() === "") continue;
      const entry = agents[name];
      const title = isObject(entry) && typeof entry.title === "string" ? entry.title : "from strata.config";
      choices.push({ name, label: name, description: title });
    }
  }
  return choices;
}

/** `strata.runAgent` for an agent over a range (empty for the cursor), with an optional question. */
export function runAgentParams(agent: string, uri: string, range: Range, query?: string): ExecuteCommandParams {
  const args: { agent: string; textDocument: { uri: string }; range: Range; query?: string } = {
    agent,
    textDocument: { uri },
    range,
  };
  const question = query?.trim();
  if (question) args.query = question;
  return { command: ServerCommand.runAgent, arguments: [args] };
}

/** `strata.newChat` takes no arguments. */
export function newChatParams(): ExecuteCommandParams {
  return { command: ServerCommand.newChat };
}

function isEmpty(range: Range): boolean {
  return range.start.line === range.end.line && range.start.character === range.end.character;
}

export interface ContextParams {
  textDocument: { uri: string };
  position?: Position;
  range?: Range;
}

/** `strata/context` for the cursor, or for the selection when there is one. */
export function contextParams(uri: string, cursor: Position, selection?: Range): ContextParams {
  if (selection !== undefined && !isEmpty(selection)) return { textDocument: { uri }, range: selection };
  return { textDocument: { uri }, position: cursor };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The markdown document shown for a `strata/context` result: a comment naming where it was asked
 * and what each tier spent, the server's notes, then the rendered prompt as the server made it.
 */
export function contextDocument(result: unknown, where: string): string {
  if (!isObject(result) || typeof result.rendered !== "string") {
    throw new Error("strata/context answered without a `rendered` prompt");
  }
  const head = [`Strata context for ${where}`];
  const facts: string[] = [];
  if (typeof result.version === "number") facts.push(`document version ${result.version}`);
  if (typeof result.encoding === "string") facts.push(`tokens counted with ${result.encoding}`);
  if (facts.length > 0) head.push(facts.join(", "));
  if (Array.isArray(result.tiers)) {
    const tiers = result.tiers
      .filter(isObject)
      .filter((t) => typeof t.tier === "string" && typeof t.tokens === "number")
      .map((t) => {
        const items = Array.isArray(t.items) ? t.items.length : 0;
        const budget = typeof t.budget === "number" && t.budget > 0 ? ` of ${t.budget}` : "";
        return `${t.tier}: ${t.tokens}${budget} tokens, ${items} item${items === 1 ? "" : "s"}`;
      });
    if (tiers.length > 0) head.push(tiers.join("; "));
  }
  if (typeof result.redactions === "number" && result.redactions > 0) {
    head.push(`${result.redactions} secret${result.redactions === 1 ? "" : "s"} redacted`);
  }
  if (Array.isArray(result.notes)) {
    for (const note of result.notes) if (typeof note === "string") head.push(`note: ${note}`);
  }
  // `--` cannot appear inside an HTML comment.
  const comment = head.map((line) => line.replace(/--/g, "‐‐")).join("\n");
  return `<!--\n${comment}\n-->\n\n${result.rendered}`;
}

/** The JSON document shown for a `strata/stats` result. */
export function statsDocument(result: unknown): string {
  return `${JSON.stringify(result ?? null, null, 2)}\n`;
}

/**
 * The user's `strata.config`: only the value from user settings (`globalValue`), never a
 * workspace's, whatever VS Code's scoping does; an object or nothing. Copied so the result is
 * plain JSON.
 */
export function userConfig(inspected: { globalValue?: unknown } | undefined): Record<string, unknown> {
  const value = inspected?.globalValue;
  if (!isObject(value)) return {};
  return JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
}

/** `initializationOptions`: the gateway layer the server reads as `config`. */
export function initializationOptions(config: Record<string, unknown>): { config: Record<string, unknown> } {
  return { config };
}

/**
 * The answer to `workspace/configuration`: section `strata` is `{ config }` (all the server reads
 * from it; the server's path and environment stay in the editor), `strata.config` the object
 * itself; any other section keeps the language client's default answer.
 */
export function configurationAnswer(
  items: ReadonlyArray<{ section?: string }>,
  defaults: readonly unknown[],
  config: Record<string, unknown>,
): unknown[] {
  return items.map((item, i) => {
    if (item.section === "strata") return { config };
    if (item.section === "strata.config") return config;
    return defaults[i] ?? null;
  });
}

export type LogLevel = "error" | "warn" | "info";

const TRACING_LINE = /^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+(ERROR|WARN|INFO|DEBUG|TRACE)\s+(.*)$/;

/**
 * A line the server wrote to stderr (tracing's format: `<time> <LEVEL> <target>: <message>`), as
 * the level to log it at and the text without the time (the output channel adds its own). Lines
 * without a level (a panic's backtrace, a continuation) keep the previous line's level.
 */
export function serverLogLine(line: string, previous: LogLevel): { level: LogLevel; text: string } {
  const m = TRACING_LINE.exec(line);
  if (m === null) {
    if (/^thread '.*' panicked at/.test(line)) return { level: "error", text: line };
    return { level: previous, text: line };
  }
  const level: LogLevel = m[1] === "ERROR" ? "error" : m[1] === "WARN" ? "warn" : "info";
  const text = m[1] === "ERROR" || m[1] === "WARN" || m[1] === "INFO" ? m[2] : `${m[1]} ${m[2]}`;
  return { level, text };
}

/** `strata.documentSymbols`: whose outline a document gets from Strata. */
export type SymbolsSetting = "auto" | "always" | "never";

/** The languages another symbol provider already serves, when its extension is there:
 * TypeScript and JavaScript by VS Code's own TypeScript server, Rust by rust-analyzer. */
const OTHER_SYMBOLS: Readonly<Record<string, "built-in" | string>> = {
  typescript: "built-in",
  typescriptreact: "built-in",
  javascript: "built-in",
  javascriptreact: "built-in",
  rust: "rust-lang.rust-analyzer",
};

/**
 * Whether Strata answers a document's outline: with `auto`, only where no other provider does
 * (every symbol would be listed twice, as VS Code merges providers); `installed` says whether an
 * extension is there.
 */
export function servesSymbols(setting: unknown, languageId: string, installed: (id: string) => boolean): boolean {
  if (setting === "always") return true;
  if (setting === "never") return false;
  const other = OTHER_SYMBOLS[languageId];
  if (other === undefined) return true;
  return other !== "built-in" && !installed(other);
}
