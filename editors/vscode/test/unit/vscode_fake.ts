// A fake VS Code, complete enough for vscode-languageclient to start a real server process: the
// extension bundle (out/extension.js) is activated against it in activation.test.ts. What the
// tests look at (commands, messages, output lines, the status bar item, settings) is real; any
// other API the client touches answers with a no-op that records its name in `touched`.

type Listener<T> = (value: T) => unknown;

export const touched = new Set<string>();

function inert(name: string): any {
  const target = function () {} as unknown as object;
  return new Proxy(target, {
    get(_t, key) {
      if (key === "then") return undefined;
      if (key === "dispose") return () => undefined;
      if (key === Symbol.iterator) return function* () {};
      if (key === Symbol.toPrimitive) return () => `[inert ${name}]`;
      if (key === "length") return 0;
      return inert(`${name}.${String(key)}`);
    },
    apply() {
      touched.add(name);
      return inert(`${name}()`);
    },
    construct(_t, _args, newTarget) {
      touched.add(`new ${name}`);
      return Object.create((newTarget as { prototype: object }).prototype);
    },
  });
}

/** A namespace whose known members are real and whose unknown ones are inert. */
function namespace<T extends object>(name: string, members: T): T {
  return new Proxy(members, {
    get(t, key) {
      if (key in t) return (t as Record<string | symbol, unknown>)[key];
      if (typeof key === "symbol" || key === "then") return undefined;
      return inert(`${name}.${key}`);
    },
  });
}

export class Disposable {
  constructor(private readonly callOnDispose: () => unknown) {}
  static from(...items: Array<{ dispose(): unknown }>): Disposable {
    return new Disposable(() => items.forEach((i) => i.dispose()));
  }
  dispose(): void {
    this.callOnDispose();
  }
}

export class EventEmitter<T> {
  private listeners: Array<Listener<T>> = [];
  readonly event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]) => {
    const bound = thisArg === undefined ? listener : listener.bind(thisArg);
    this.listeners.push(bound);
    const d = new Disposable(() => (this.listeners = this.listeners.filter((l) => l !== bound)));
    disposables?.push(d);
    return d;
  };
  fire(value: T): void {
    for (const l of [...this.listeners]) l(value);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class CancellationError extends Error {}

export class CancellationTokenSource {
  private readonly emitter = new EventEmitter<void>();
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    this.token.isCancellationRequested = true;
    this.emitter.fire();
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}
  static parse(value: string): Uri {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (m === null) throw new Error(`not a URI: ${value}`);
    return new Uri(m[1] ?? "", m[2] ?? "", decodeURIComponent(m[3] ?? ""), m[4] ?? "", m[5] ?? "");
  }
  static file(path: string): Uri {
    return new Uri("file", "", path, "", "");
  }
  static from(c: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(c.scheme, c.authority ?? "", c.path ?? "", c.query ?? "", c.fragment ?? "");
  }
  get fsPath(): string {
    return this.path;
  }
  with(c: Partial<{ scheme: string; authority: string; path: string; query: string; fragment: string }>): Uri {
    return new Uri(
      c.scheme ?? this.scheme,
      c.authority ?? this.authority,
      c.path ?? this.path,
      c.query ?? this.query,
      c.fragment ?? this.fragment,
    );
  }
  toString(): string {
    const path = this.path.split("/").map(encodeURIComponent).join("/");
    return `${this.scheme}://${this.authority}${path}${this.query ? `?${this.query}` : ""}${this.fragment ? `#${this.fragment}` : ""}`;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path };
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === "number") {
      this.start = new Position(a, b as number);
      this.end = new Position(c as number, d as number);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
  get isEmpty(): boolean {
    return this.start.line === this.end.line && this.start.character === this.end.character;
  }
}

export class Selection extends Range {
  constructor(
    readonly anchor: Position,
    readonly active: Position,
  ) {
    const forward = anchor.line < active.line || (anchor.line === active.line && anchor.character <= active.character);
    super(forward ? anchor : active, forward ? active : anchor);
  }
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class TabInputText {}
export class TabInputTextDiff {}
export class TabInputNotebook {}
export class TabInputCustom {}

export const LogLevel = { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 };
export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };
export const ViewColumn = { Active: -1, Beside: -2, One: 1 };
export const version = "1.95.0";

/** What the tests look at. */
export const state = {
  /** `strata.server.path` and friends, by full key. */
  settings: new Map<string, unknown>(),
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  messages: [] as Array<{ kind: string; text: string }>,
  output: new Map<string, string[]>(),
  statusItems: [] as Array<{ text: string; tooltip: unknown; command: unknown; backgroundColor: unknown }>,
  shownDocuments: [] as Array<{ uri: string; text: string }>,
  pick: (_items: any[]): any => undefined,
  input: (): string | undefined => undefined,
};

const configurationChanged = new EventEmitter<{ affectsConfiguration(section: string): boolean }>();

/** Changes settings and tells listeners, as the settings editor would. */
export function setSettings(values: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(values)) state.settings.set(k, v);
  configurationChanged.fire({
    affectsConfiguration: (section) => Object.keys(values).some((k) => k === section || k.startsWith(`${section}.`)),
  });
}

function configuration(section?: string) {
  const full = (key: string) => (section ? `${section}.${key}` : key);
  const read = (key: string): unknown => {
    const prefix = `${full(key)}.`;
    if (state.settings.has(full(key))) return state.settings.get(full(key));
    const nested: Record<string, unknown> = {};
    let any = false;
    for (const [k, v] of state.settings) {
      if (k.startsWith(prefix)) {
        nested[k.slice(prefix.length)] = v;
        any = true;
      }
    }
    return any ? nested : undefined;
  };
  return {
    get: (key: string, fallback?: unknown) => read(key) ?? fallback,
    has: (key: string) => read(key) !== undefined,
    inspect: (key: string) => ({ key: full(key), globalValue: read(key) }),
    update: async () => undefined,
  };
}

function outputChannel(name: string) {
  const lines: string[] = [];
  state.output.set(name, lines);
  const levelChanged = new EventEmitter<number>();
  const log = (tag: string) => (message: unknown) => lines.push(`[${tag}] ${String(message)}`);
  return namespace(`OutputChannel(${name})`, {
    name,
    logLevel: LogLevel.Info,
    onDidChangeLogLevel: levelChanged.event,
    trace: log("trace"),
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    append: (v: string) => lines.push(v),
    appendLine: (v: string) => lines.push(v),
    replace: () => undefined,
    clear: () => undefined,
    show: () => undefined,
    hide: () => undefined,
    dispose: () => undefined,
  });
}

const event = () => new EventEmitter<unknown>().event;
const contentProviders = new Map<string, { provideTextDocumentContent(uri: Uri): string }>();
const workspaceFolder = { uri: Uri.file("/"), name: "ws", index: 0 };

export function setWorkspaceFolder(path: string): void {
  workspaceFolder.uri = Uri.file(path);
}

export const workspace = namespace("workspace", {
  getConfiguration: configuration,
  onDidChangeConfiguration: configurationChanged.event,
  textDocuments: [] as unknown[],
  notebookDocuments: [] as unknown[],
  get workspaceFolders() {
    return [workspaceFolder];
  },
  onDidOpenTextDocument: event(),
  onDidCloseTextDocument: event(),
  onDidChangeTextDocument: event(),
  onDidSaveTextDocument: event(),
  onWillSaveTextDocument: event(),
  onDidChangeWorkspaceFolders: event(),
  onDidCreateFiles: event(),
  onDidDeleteFiles: event(),
  onDidRenameFiles: event(),
  onWillCreateFiles: event(),
  onWillDeleteFiles: event(),
  onWillRenameFiles: event(),
  createFileSystemWatcher: () =>
    namespace("FileSystemWatcher", { onDidCreate: event(), onDidChange: event(), onDidDelete: event(), dispose() {} }),
  registerTextDocumentContentProvider(scheme: string, provider: { provideTextDocumentContent(uri: Uri): string }) {
    contentProviders.set(scheme, provider);
    return new Disposable(() => contentProviders.delete(scheme));
  },
  async openTextDocument(uri: Uri) {
    const text = contentProviders.get(uri.scheme)?.provideTextDocumentContent(uri) ?? "";
    return { uri, getText: () => text };
  },
  asRelativePath: (uri: Uri | string) => (typeof uri === "string" ? uri : uri.path),
  applyEdit: async () => true,
});

export const window = namespace("window", {
  activeTextEditor: undefined as unknown,
  visibleTextEditors: [] as unknown[],
  tabGroups: namespace("tabGroups", { all: [] as unknown[], onDidChangeTabs: event(), onDidChangeTabGroups: event() }),
  onDidChangeActiveTextEditor: event(),
  onDidChangeVisibleTextEditors: event(),
  onDidChangeTextEditorSelection: event(),
  createOutputChannel: outputChannel,
  createStatusBarItem() {
    const item = {
      text: "",
      tooltip: undefined,
      command: undefined,
      backgroundColor: undefined,
      name: "",
      show() {},
      hide() {},
      dispose() {},
    };
    state.statusItems.push(item);
    return item;
  },
  async showErrorMessage(text: string) {
    state.messages.push({ kind: "error", text });
    return undefined;
  },
  async showWarningMessage(text: string) {
    state.messages.push({ kind: "warning", text });
    return undefined;
  },
  async showInformationMessage(text: string) {
    state.messages.push({ kind: "info", text });
    return undefined;
  },
  async showQuickPick(items: any[]) {
    return state.pick(items);
  },
  async showInputBox() {
    return state.input();
  },
  async showTextDocument(document: { uri: Uri; getText(): string }) {
    state.shownDocuments.push({ uri: document.uri.toString(), text: document.getText() });
    return {};
  },
  withProgress(_options: unknown, task: (progress: unknown, token: unknown) => Promise<unknown>) {
    return task({ report() {} }, new CancellationTokenSource().token);
  },
});

function matches(selector: unknown, document: { uri: Uri; languageId: string }): number {
  if (Array.isArray(selector)) return Math.max(0, ...selector.map((s) => matches(s, document)));
  if (typeof selector === "string") return selector === document.languageId ? 10 : 0;
  const s = selector as { language?: string; scheme?: string; pattern?: string };
  if (s.language !== undefined && s.language !== document.languageId) return 0;
  if (s.scheme !== undefined && s.scheme !== document.uri.scheme) return 0;
  if (s.pattern !== undefined && !document.uri.path.endsWith(s.pattern.replace("**/*", ""))) return 0;
  return 10;
}

export const languages = namespace("languages", {
  match: matches,
  createDiagnosticCollection: (name: string) =>
    namespace(`DiagnosticCollection(${name})`, {
      name,
      set() {},
      delete() {},
      clear() {},
      dispose() {},
      forEach() {},
      get: () => undefined,
    }),
});

export const commands = namespace("commands", {
  registerCommand(id: string, handler: (...args: unknown[]) => unknown) {
    if (state.commands.has(id)) throw new Error(`command '${id}' already exists`);
    state.commands.set(id, handler);
    return new Disposable(() => state.commands.delete(id));
  },
  async executeCommand(id: string, ...args: unknown[]) {
    const handler = state.commands.get(id);
    if (handler === undefined) throw new Error(`command '${id}' not found`);
    return handler(...args);
  },
});

export const env = namespace("env", { appName: "Fake Code", language: "en", openExternal: async () => true });

// Names the client reaches for that are not modelled above are inert too.
module.exports = namespace("vscode", module.exports as object);
