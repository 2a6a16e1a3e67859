// A stand-in for the `vscode` module: just what the commands touch, with the user's answers
// scripted by the test and every message and registration recorded.

export interface Recorded {
  messages: Array<{ kind: "error" | "info" | "warning"; text: string; choices: string[] }>;
  progress: string[];
  registered: string[];
  quickPickItems: unknown[][];
}

export const recorded: Recorded = { messages: [], progress: [], registered: [], quickPickItems: [] };

/** What the "user" answers; reset by `reset()`. */
export const user = {
  pick: (_items: any[]): any => undefined,
  input: (): string | undefined => undefined,
  choose: (_message: string, _choices: string[]): string | undefined => undefined,
};

export function reset(): void {
  recorded.messages.length = 0;
  recorded.progress.length = 0;
  recorded.registered.length = 0;
  recorded.quickPickItems.length = 0;
  user.pick = () => undefined;
  user.input = () => undefined;
  user.choose = () => undefined;
  window.activeTextEditor = undefined;
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  constructor(
    readonly start: Position,
    readonly end: Position,
  ) {}
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

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly path: string,
  ) {}
  static file(path: string): Uri {
    return new Uri("file", path);
  }
  static from(parts: { scheme: string; path: string }): Uri {
    return new Uri(parts.scheme, parts.path);
  }
  get fsPath(): string {
    return this.path;
  }
  toString(): string {
    return `${this.scheme}://${this.path}`;
  }
}

export class EventEmitter<T> {
  private listeners: Array<(value: T) => void> = [];
  readonly event = (listener: (value: T) => void) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(value: T): void {
    for (const l of this.listeners) l(value);
  }
  dispose(): void {
    this.listeners = [];
  }
}

export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };
export const ViewColumn = { Active: -1, Beside: -2 };

function message(kind: "error" | "info" | "warning") {
  return async (text: string, ...choices: unknown[]) => {
    const labels = choices.filter((c): c is string => typeof c === "string");
    recorded.messages.push({ kind, text, choices: labels });
    return user.choose(text, labels);
  };
}

export const window: {
  activeTextEditor: unknown;
  [name: string]: unknown;
} = {
  activeTextEditor: undefined,
  showErrorMessage: message("error"),
  showWarningMessage: message("warning"),
  showInformationMessage: message("info"),
  async showQuickPick(items: any[]) {
    recorded.quickPickItems.push(items);
    return user.pick(items);
  },
  async showInputBox() {
    return user.input();
  },
  withProgress(options: { title?: string }, task: (progress: unknown, token: unknown) => Promise<unknown>) {
    recorded.progress.push(options.title ?? "");
    return task({ report() {} }, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) });
  },
};

export const workspace = {
  asRelativePath(uri: Uri | string): string {
    const path = typeof uri === "string" ? uri : uri.path;
    return path.replace(/^\/work\//, "");
  },
};

export const commands = {
  registerCommand(id: string, _handler: (...args: unknown[]) => unknown) {
    recorded.registered.push(id);
    return { dispose() {} };
  },
};
