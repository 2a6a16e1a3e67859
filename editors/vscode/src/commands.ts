// The palette commands.
//
// Owns what each `strata.client.*` command asks the user and which request it sends. It never
// registers the server's own command ids (`strata.runAgent`, `strata.newChat`): the language client
// does, from the server's `executeCommandProvider`; the palette commands reach them through
// `workspace/executeCommand`. The client and the rest of the extension come in through
// `CommandHost`, so the tests run these handlers against a fake server.

import * as vscode from "vscode";
import {
  agentChoices,
  ClientCommand,
  contextDocument,
  contextParams,
  Method,
  newChatParams,
  type Position,
  type Range,
  runAgentParams,
  statsDocument,
} from "./protocol";

/** A running server, as the commands need it. */
export interface Connection {
  /** `params` undefined: a request without params. */
  request(method: string, params: unknown, token?: vscode.CancellationToken): Promise<unknown>;
  asUri(uri: vscode.Uri): string;
  asPosition(position: vscode.Position): Position;
  asRange(range: vscode.Range): Range;
}

export interface CommandHost {
  /** The server, or undefined when it is not running. */
  connection(): Connection | undefined;
  restart(): Promise<void>;
  /** The user's `strata.config`. */
  config(): Record<string, unknown>;
  /** Opens a read-only document named `name` holding `text`. */
  show(name: string, text: string): Promise<void>;
}

/** Error codes that mean the user or the editor gave up on the request: nothing to report. */
const QUIET_CODES = new Set([-32800 /* RequestCancelled */, -32801 /* ContentModified */]);

async function report(error: unknown): Promise<void> {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "number" && QUIET_CODES.has(code)) return;
  const message = error instanceof Error ? error.message : String(error);
  await vscode.window.showErrorMessage(`Strata: ${message}`);
}

async function running(host: CommandHost): Promise<Connection | undefined> {
  const connection = host.connection();
  if (connection !== undefined) return connection;
  const choice = await vscode.window.showErrorMessage("Strata is not running.", "Restart Server");
  if (choice === "Restart Server") await host.restart();
  return undefined;
}

function editorOrSay(what: string): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (editor === undefined) void vscode.window.showInformationMessage(`Open a file to ${what}.`);
  return editor;
}

function busy<T>(title: string, work: () => Promise<T>): Thenable<T> {
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title }, work);
}

export async function restartServer(host: CommandHost): Promise<void> {
  await host.restart();
}

export async function showContext(host: CommandHost): Promise<void> {
  const editor = editorOrSay("see the context Strata would send");
  if (editor === undefined) return;
  const connection = await running(host);
  if (connection === undefined) return;
  const { document, selection } = editor;
  const params = contextParams(
    connection.asUri(document.uri),
    connection.asPosition(selection.active),
    connection.asRange(selection),
  );
  const where = `${vscode.workspace.asRelativePath(document.uri)}:${selection.active.line + 1}:${selection.active.character + 1}`;
  try {
    const result = await busy("Strata: assembling context", () => connection.request(Method.context, params));
    await host.show("Strata context.md", contextDocument(result, where));
  } catch (error) {
    await report(error);
  }
}

export async function showStats(host: CommandHost): Promise<void> {
  const connection = await running(host);
  if (connection === undefined) return;
  try {
    const result = await connection.request(Method.stats, undefined);
    await host.show("Strata statistics.json", statsDocument(result));
  } catch (error) {
    await report(error);
  }
}

export async function newChat(host: CommandHost): Promise<void> {
  const connection = await running(host);
  if (connection === undefined) return;
  try {
    await connection.request(Method.executeCommand, newChatParams());
  } catch (error) {
    await report(error);
  }
}

/** What a keybinding may pass: an agent's name, or `{ agent, query }`. */
function agentArgument(arg: unknown): { agent: string; query?: string } | undefined {
  if (typeof arg === "string" && arg.trim() !== "") return { agent: arg.trim() };
  if (arg !== null && typeof arg === "object") {
    const { agent, query } = arg as { agent?: unknown; query?: unknown };
    if (typeof agent === "string" && agent.trim() !== "") {
      return typeof query === "string" ? { agent: agent.trim(), query } : { agent: agent.trim() };
    }
  }
  return undefined;
}

/**
 * Picks an agent (unless a keybinding named one), asks for an optional question, and sends
 * `strata.runAgent` over the selection (empty: the cursor). The server answers at once with the
 * run's token and reports the run with `$/progress` (shown and cancellable by the language
 * client); what the agent produces comes back as edits, documents or diagnostics, and the server
 * says how it ended with one message. Only an immediate error (no such agent) is shown here.
 */
export async function runAgent(host: CommandHost, arg?: unknown): Promise<void> {
  const editor = editorOrSay("run an agent on it");
  if (editor === undefined) return;
  let chosen = agentArgument(arg);
  if (chosen === undefined) {
    const items = agentChoices(host.config()).map((a) => ({
      label: a.label,
      description: a.description,
      agent: a.name,
    }));
    const pick = await vscode.window.showQuickPick(items, {
      title: "Strata: Run Agent",
      placeHolder: "Which agent?",
      matchOnDescription: true,
    });
    if (pick === undefined) return;
    const query = await vscode.window.showInputBox({
      title: `Strata: ${pick.label}`,
      prompt: "A question or instruction for the agent (optional)",
      placeHolder: "Press Enter to run without one",
    });
    if (query === undefined) return;
    chosen = { agent: pick.agent, query };
  }
  const connection = await running(host);
  if (connection === undefined) return;
  const params = runAgentParams(
    chosen.agent,
    connection.asUri(editor.document.uri),
    connection.asRange(editor.selection),
    chosen.query,
  );
  try {
    await connection.request(Method.executeCommand, params);
  } catch (error) {
    await report(error);
  }
}

/** Registers the palette commands; the ids match `contributes.commands` in package.json. */
export function registerCommands(host: CommandHost): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(ClientCommand.restartServer, () => restartServer(host)),
    vscode.commands.registerCommand(ClientCommand.showContext, () => showContext(host)),
    vscode.commands.registerCommand(ClientCommand.showStats, () => showStats(host)),
    vscode.commands.registerCommand(ClientCommand.newChat, () => newChat(host)),
    vscode.commands.registerCommand(ClientCommand.runAgent, (arg?: unknown) => runAgent(host, arg)),
  ];
}
