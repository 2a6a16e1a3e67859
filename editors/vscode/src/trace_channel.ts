// The "Strata Trace" output channel, switched by `strata.trace.server`.
//
// The language client traces LSP messages only while its trace channel's log level is Trace, and a
// channel's level is the user's to set, not an extension's. This channel reports the level the
// setting implies (Trace unless `off`), and tells the client when the setting changes, so the
// setting alone turns tracing on and off. It writes to a plain output channel.

import * as vscode from "vscode";

export const TRACE_SETTING = "strata.trace.server";

function levelFromSetting(): vscode.LogLevel {
  const value = vscode.workspace.getConfiguration().get<string>(TRACE_SETTING, "off");
  return value === "messages" || value === "verbose" ? vscode.LogLevel.Trace : vscode.LogLevel.Off;
}

export class TraceChannel implements vscode.LogOutputChannel {
  private readonly channel: vscode.OutputChannel;
  private readonly levelChanged = new vscode.EventEmitter<vscode.LogLevel>();
  private readonly listener: vscode.Disposable;
  private level = levelFromSetting();
  readonly onDidChangeLogLevel = this.levelChanged.event;

  constructor(readonly name: string) {
    this.channel = vscode.window.createOutputChannel(name);
    this.listener = vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(TRACE_SETTING)) return;
      const level = levelFromSetting();
      if (level === this.level) return;
      this.level = level;
      this.levelChanged.fire(level);
    });
  }

  get logLevel(): vscode.LogLevel {
    return this.level;
  }

  private write(tag: string, message: string | Error, args: unknown[]): void {
    const text = message instanceof Error ? (message.stack ?? message.message) : message;
    const extra =
      args.length > 0 ? ` ${args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" ")}` : "";
    this.channel.appendLine(`${new Date().toISOString()} [${tag}] ${text}${extra}`);
  }

  trace(message: string, ...args: unknown[]): void {
    if (this.level !== vscode.LogLevel.Off) this.write("trace", message, args);
  }
  debug(message: string, ...args: unknown[]): void {
    this.write("debug", message, args);
  }
  info(message: string, ...args: unknown[]): void {
    this.write("info", message, args);
  }
  warn(message: string, ...args: unknown[]): void {
    this.write("warn", message, args);
  }
  error(error: string | Error, ...args: unknown[]): void {
    this.write("error", error, args);
  }
  append(value: string): void {
    this.channel.append(value);
  }
  appendLine(value: string): void {
    this.channel.appendLine(value);
  }
  replace(value: string): void {
    this.channel.replace(value);
  }
  clear(): void {
    this.channel.clear();
  }
  show(columnOrPreserveFocus?: vscode.ViewColumn | boolean, preserveFocus?: boolean): void {
    if (typeof columnOrPreserveFocus === "boolean") this.channel.show(columnOrPreserveFocus);
    else this.channel.show(columnOrPreserveFocus, preserveFocus);
  }
  hide(): void {
    this.channel.hide();
  }
  dispose(): void {
    this.listener.dispose();
    this.levelChanged.dispose();
    this.channel.dispose();
  }
}
