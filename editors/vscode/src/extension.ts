// The extension's entry point: starts `strata serve --stdio` through vscode-languageclient and
// keeps one session of it (find the binary, start, restart, stop).
//
// Owns the client's options (which documents, what `initialize` carries, how `workspace/
// configuration` is answered, where the server's stderr goes), the status bar item and the wiring
// of the palette commands. Finding the binary, the status text and the request params are decided
// in pure modules (server_path.ts, status.ts, protocol.ts); this file only connects them to VS Code.

import * as os from "node:os";
import type * as stream from "node:stream";
import * as readline from "node:readline";
import * as vscode from "vscode";
import { type Executable, LanguageClient, type LanguageClientOptions, State } from "vscode-languageclient/node";
import { type CommandHost, type Connection, registerCommands } from "./commands";
import { VirtualDocuments } from "./documents";
import {
  ClientCommand,
  configurationAnswer,
  DOCUMENT_SELECTOR,
  initializationOptions,
  type LogLevel,
  servesSymbols,
  Method,
  serverLogLine,
  userConfig,
} from "./protocol";
import { type Discovery, discover, nodeProbe, serverEnv, skippedSettingWarning } from "./server_path";
import { type ClientState, parseStatus, type ServerStatus, statusView } from "./status";
import { TraceChannel } from "./trace_channel";

function readUserConfig(): Record<string, unknown> {
  return userConfig(vscode.workspace.getConfiguration("strata").inspect<unknown>("config"));
}

/** Logs each line of the server's stderr at the level tracing gave it. */
function pipeServerLog(input: stream.Readable, channel: vscode.LogOutputChannel): void {
  let previous: LogLevel = "info";
  readline.createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 }).on("line", (line) => {
    const { level, text } = serverLogLine(line, previous);
    previous = level;
    channel[level](text);
  });
}

function pipeStrayStdout(input: stream.Readable, channel: vscode.LogOutputChannel): void {
  readline
    .createInterface({ input, crlfDelay: Infinity, terminal: false, historySize: 0 })
    .on("line", (line) => channel.info(line));
}

class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("strata.status", vscode.StatusBarAlignment.Right, 10);
  private state: ClientState = "starting";
  private status: ServerStatus | undefined;
  private version: string | undefined;

  constructor() {
    this.item.name = "Strata";
    this.render();
    this.item.show();
  }

  setState(state: ClientState, version?: string): void {
    this.state = state;
    if (version !== undefined) this.version = version;
    if (state !== "running") this.status = undefined;
    this.render();
  }

  setStatus(params: unknown): void {
    const status = parseStatus(params);
    if (status === undefined) return;
    this.status = status;
    this.render();
  }

  private render(): void {
    const view = statusView(this.state, this.status, this.version);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip.join("\n");
    this.item.backgroundColor =
      view.background === undefined ? undefined : new vscode.ThemeColor(`statusBarItem.${view.background}Background`);
    this.item.command = view.command === "restartServer" ? ClientCommand.restartServer : ClientCommand.showStats;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** One extension's worth of server: at most one client at a time, replaced on restart. */
class Session implements CommandHost {
  private client: LanguageClient | undefined;
  private clientDisposables: vscode.Disposable[] = [];
  private starting: Promise<void> | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly trace: TraceChannel,
    private readonly statusItem: StatusItem,
    private readonly documents: VirtualDocuments,
  ) {}

  connection(): Connection | undefined {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) return undefined;
    const c2p = client.code2ProtocolConverter;
    return {
      // Every argument given becomes a param on the wire: `null` would go out as `[null]`, an
      // `undefined` token as a second positional param. So pass only what there is.
      request: (method, params, token) => {
        if (params === undefined)
          return token === undefined ? client.sendRequest(method) : client.sendRequest(method, token);
        return token === undefined ? client.sendRequest(method, params) : client.sendRequest(method, params, token);
      },
      asUri: (uri) => c2p.asUri(uri),
      asPosition: (position) => c2p.asPosition(position),
      asRange: (range) => c2p.asRange(range),
    };
  }

  config(): Record<string, unknown> {
    return readUserConfig();
  }

  show(name: string, text: string): Promise<void> {
    return this.documents.show(name, text);
  }

  /** Starts the server unless a start is under way; never throws (failures are shown). */
  start(): Promise<void> {
    this.starting ??= this.startOnce().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async restart(): Promise<void> {
    await this.starting;
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const d of this.clientDisposables.splice(0)) d.dispose();
    if (client !== undefined) {
      try {
        if (client.isRunning()) await client.stop(2000);
      } catch (error) {
        this.log.warn(`Stopping the server: ${String(error)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    this.statusItem.setState("stopped");
  }

  private async findServer(env: NodeJS.ProcessEnv): Promise<Discovery> {
    const settings = vscode.workspace.getConfiguration("strata");
    return discover(
      {
        setting: settings.get<string | null>("server.path") ?? undefined,
        extensionPath: this.context.extensionPath,
        workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
        env,
        platform: process.platform,
        homeDir: os.homedir(),
      },
      nodeProbe(),
    );
  }

  private async startOnce(): Promise<void> {
    this.statusItem.setState("starting");
    const env = serverEnv(process.env, vscode.workspace.getConfiguration("strata").get("server.extraEnv"));
    const found = await this.findServer(env);
    if (!found.ok) {
      this.log.error(found.message);
      this.statusItem.setState("stopped");
      void this.offerHelp(found.message);
      return;
    }
    const passedOver = skippedSettingWarning(found);
    if (passedOver !== undefined) {
      this.log.warn(passedOver);
      void vscode.window.showWarningMessage(passedOver);
    }
    this.log.info(`Starting ${found.candidate.path} (strata ${found.version}, from ${found.candidate.source})`);

    const executable: Executable = {
      command: found.candidate.path,
      args: ["serve", "--stdio"],
      options: { env },
    };
    const options: LanguageClientOptions = {
      documentSelector: [...DOCUMENT_SELECTOR],
      outputChannel: this.log,
      traceOutputChannel: this.trace,
      initializationOptions: () => initializationOptions(readUserConfig()),
      stdioOptions: { stdout: pipeStrayStdout, stderr: pipeServerLog },
      markdown: { isTrusted: false, supportHtml: false },
      middleware: {
        provideDocumentSymbols: (document, token, next) =>
          servesSymbols(
            vscode.workspace.getConfiguration("strata").get<unknown>("documentSymbols"),
            document.languageId,
            (id) => vscode.extensions.getExtension(id) !== undefined,
          )
            ? next(document, token)
            : undefined,
        workspace: {
          configuration: async (params, token, next) => {
            const defaults = await next(params, token);
            if (!Array.isArray(defaults)) return defaults;
            return configurationAnswer(params.items, defaults, readUserConfig());
          },
        },
      },
    };
    const client = new LanguageClient("strata", "Strata", executable, options);
    this.client = client;
    this.clientDisposables.push(
      client.onNotification(Method.status, (params: unknown) => this.statusItem.setStatus(params)),
      client.onDidChangeState((e) => {
        if (this.client !== client) return;
        if (e.newState === State.Running) this.statusItem.setState("running", found.version);
        else if (e.newState === State.Starting) this.statusItem.setState("starting");
        else this.statusItem.setState("stopped");
      }),
    );
    try {
      await client.start();
    } catch (error) {
      if (this.client !== client) return;
      const message = `Strata's server (${found.candidate.path}) did not start: ${error instanceof Error ? error.message : String(error)}`;
      this.log.error(message);
      this.statusItem.setState("stopped");
      void this.offerHelp(message);
    }
  }

  private async offerHelp(message: string): Promise<void> {
    const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Output");
    if (choice === "Open Settings") {
      await vscode.commands.executeCommand("workbench.action.openSettings", "strata.server");
    } else if (choice === "Show Output") {
      this.log.show();
    }
  }

  /** Tells a running server that `strata.config` changed; it asks for the section again. */
  configChanged(): void {
    const client = this.client;
    if (client === undefined || client.state !== State.Running) return;
    client
      .sendNotification(Method.didChangeConfiguration, { settings: { strata: { config: readUserConfig() } } })
      .catch((error: unknown) => this.log.warn(`Sending the new strata.config: ${String(error)}`));
  }
}

let session: Session | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("Strata", { log: true });
  const trace = new TraceChannel("Strata Trace");
  const statusItem = new StatusItem();
  const documents = new VirtualDocuments();
  const current = new Session(context, log, trace, statusItem, documents);
  session = current;
  context.subscriptions.push(
    log,
    trace,
    statusItem,
    documents,
    vscode.workspace.registerTextDocumentContentProvider("strata", documents),
    ...registerCommands(current),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (e.affectsConfiguration("strata.config")) current.configChanged();
      if (e.affectsConfiguration("strata.server")) {
        const choice = await vscode.window.showInformationMessage(
          "Strata's server settings changed. Restart the server to use them?",
          "Restart",
        );
        if (choice === "Restart") await current.restart();
      }
    }),
  );
  await current.start();
}

export async function deactivate(): Promise<void> {
  const current = session;
  session = undefined;
  await current?.stop();
}
