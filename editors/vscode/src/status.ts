// What the status bar item says.
//
// Owns the reading of `strata/status` notifications (whatever the server sends, never trusted to
// have the right shape) and the text, tooltip and colour derived from them and from the client's
// state. Pure: no `vscode` import; extension.ts copies the view onto the item.

/** The params of `strata/status`, checked. */
export interface ServerStatus {
  indexing: { done: number; total: number } | null;
  inFlight: number;
  rateLimited: boolean;
  offline: boolean;
  message?: string;
}

/** Where the client is: before `initialize` has been answered, running, or stopped. */
export type ClientState = "starting" | "running" | "stopped";

export interface StatusView {
  text: string;
  /** Lines of the tooltip, plain text. */
  tooltip: string[];
  /** `warning` when calls are held back by a limit or the models are unreachable, `error` when stopped. */
  background: "warning" | "error" | undefined;
  /** What a click runs: statistics while running, a restart when stopped. */
  command: "showStats" | "restartServer";
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/** The params of a `strata/status` notification, or undefined when they are not an object. */
export function parseStatus(params: unknown): ServerStatus | undefined {
  if (params === null || typeof params !== "object" || Array.isArray(params)) return undefined;
  const p = params as Record<string, unknown>;
  let indexing: ServerStatus["indexing"] = null;
  if (p.indexing !== null && typeof p.indexing === "object") {
    const i = p.indexing as Record<string, unknown>;
    indexing = { done: count(i.done), total: count(i.total) };
  }
  const status: ServerStatus = {
    indexing,
    inFlight: count(p.inFlight),
    rateLimited: p.rateLimited === true,
    offline: p.offline === true,
  };
  if (typeof p.message === "string" && p.message.trim() !== "") status.message = p.message.trim();
  return status;
}

/** Whole percent done, never 100 before the end; undefined when the total is unknown. */
export function indexingPercent(done: number, total: number): number | undefined {
  if (total <= 0) return undefined;
  if (done >= total) return 100;
  return Math.min(99, Math.floor((done / total) * 100));
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * The item for a client state and the latest status. Offline comes first (nothing reaches a model
 * until it is fixed), then indexing, then calls in flight; rate limiting colours whichever shows.
 */
export function statusView(state: ClientState, status: ServerStatus | undefined, serverVersion?: string): StatusView {
  const header = serverVersion ? `Strata ${serverVersion}` : "Strata";
  if (state === "stopped") {
    return {
      text: "$(circle-slash) Strata stopped",
      tooltip: [
        header,
        "The server is not running. Click to restart it; the Strata output channel says why it stopped.",
      ],
      background: "error",
      command: "restartServer",
    };
  }
  if (state === "starting") {
    return {
      text: "$(loading~spin) Strata",
      tooltip: [header, "Starting the server…"],
      background: undefined,
      command: "showStats",
    };
  }
  const tooltip = [header];
  let text = "Strata";
  if (status !== undefined) {
    const { indexing, inFlight, rateLimited, offline } = status;
    if (indexing !== null) {
      const percent = indexingPercent(indexing.done, indexing.total);
      tooltip.push(
        indexing.total > 0 ? `Indexing the workspace: ${indexing.done} of ${indexing.total}` : "Indexing the workspace",
      );
      text = `$(sync~spin) Strata indexing${percent === undefined ? "" : ` ${percent}%`}`;
    }
    if (inFlight > 0) {
      tooltip.push(`${plural(inFlight, "model call", "model calls")} in flight`);
      if (indexing === null) text = `$(loading~spin) Strata: ${plural(inFlight, "call", "calls")}`;
    }
    if (rateLimited) tooltip.push("Rate limited: calls wait for a provider's limits");
    if (offline) {
      tooltip.push("Offline: no model provider answers (check your providers in strata.config or config.toml)");
      text = "$(debug-disconnect) Strata offline";
    }
    if (status.message !== undefined) tooltip.push(status.message);
    if (tooltip.length === 1) tooltip.push("Idle");
  }
  tooltip.push("Click for statistics");
  return {
    text,
    tooltip,
    background: status !== undefined && (status.rateLimited || status.offline) ? "warning" : undefined,
    command: "showStats",
  };
}
