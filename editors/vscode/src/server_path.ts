// Finding the `strata` binary.
//
// Owns the order in which candidates are tried (the `strata.server.path` setting, the binary bundled
// in the extension, `strata` on PATH), the check that a candidate really is Strata (`--version`
// prints `strata X.Y.Z`), and the message shown when none is. Never imports `vscode` and never
// touches the file system or spawns a process itself: everything it needs comes in through `Probe`,
// so the tests drive it with fakes. `nodeProbe` is the real one.

import * as childProcess from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

/** Where a candidate came from, in the order they are tried. */
export type Source = "setting" | "bundled" | "PATH";

export interface Candidate {
  source: Source;
  path: string;
  /** Known before running anything: why this candidate cannot work (e.g. not on PATH). */
  missing?: string;
}

/** The outcome of running a program. `error` is set when it could not be started or timed out. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  error?: string;
}

/** The world as discovery sees it. */
export interface Probe {
  isFile(file: string): boolean;
  run(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult>;
}

export interface DiscoveryInput {
  /** `strata.server.path`; empty or absent means unset. */
  setting?: string | null;
  /** The extension's own folder, where `server/strata[.exe]` may be bundled. */
  extensionPath: string;
  /** The first workspace folder, for a relative setting. */
  workspaceFolder?: string;
  /** The environment the server will run with (extraEnv applied). */
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  homeDir: string;
}

export interface Attempt {
  candidate: Candidate;
  /** Why it was not used. */
  reason: string;
}

export type Discovery =
  | { ok: true; candidate: Candidate; version: string; skipped: Attempt[] }
  | { ok: false; tried: Attempt[]; message: string };

const VERSION_LINE = /^strata (\d+\.\d+\.\d+\S*)\s*$/m;

/** The version from `strata --version` output, or undefined when it is not Strata's. */
export function parseVersion(stdout: string): string | undefined {
  return VERSION_LINE.exec(stdout)?.[1];
}

function executableName(platform: NodeJS.Platform): string {
  return platform === "win32" ? "strata.exe" : "strata";
}

function pathModule(platform: NodeJS.Platform): path.PlatformPath {
  return platform === "win32" ? path.win32 : path.posix;
}

/** The PATH variable; on Windows its name may be spelled in any case. */
function pathVariable(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string {
  if (platform !== "win32") return env.PATH ?? "";
  const key = Object.keys(env).find((k) => k.toUpperCase() === "PATH");
  return key === undefined ? "" : (env[key] ?? "");
}

/**
 * Every file named `name` along PATH, in PATH order, that exists. Relative entries (`.`, empty) are
 * skipped: the server is never taken from whatever folder the editor happens to run in.
 */
export function searchPath(
  name: string,
  env: NodeJS.ProcessEnv,
  platform: NodeJS.Platform,
  isFile: (file: string) => boolean,
): string[] {
  const p = pathModule(platform);
  const separator = platform === "win32" ? ";" : ":";
  const names = platform === "win32" && p.extname(name) === "" ? [`${name}.exe`, name] : [name];
  const found: string[] = [];
  for (const dir of pathVariable(env, platform).split(separator)) {
    const folder = dir.replace(/^"(.*)"$/, "$1");
    if (!p.isAbsolute(folder)) continue;
    for (const n of names) {
      const file = p.join(folder, n);
      if (isFile(file) && !found.includes(file)) found.push(file);
    }
  }
  return found;
}

/** A name without a folder, such as `strata-dev`, which is looked up on PATH. */
function isBareName(value: string, platform: NodeJS.Platform): boolean {
  return !value.includes("/") && !(platform === "win32" && value.includes("\\"));
}

/**
 * What the setting names: `~` expanded, a relative path taken from the workspace folder. A bare
 * name (no separator) is looked up on PATH; when it is on none, it is returned as is so the
 * failure names it.
 */
export function resolveSetting(setting: string, input: DiscoveryInput, isFile: (f: string) => boolean): string {
  const p = pathModule(input.platform);
  let value = setting.trim();
  if (value === "~" || value.startsWith("~/") || value.startsWith("~\\")) {
    value = p.join(input.homeDir, value.slice(1));
  }
  if (isBareName(value, input.platform)) {
    return searchPath(value, input.env, input.platform, isFile)[0] ?? value;
  }
  if (!p.isAbsolute(value) && input.workspaceFolder !== undefined) {
    return p.join(input.workspaceFolder, value);
  }
  return value;
}

/** The candidates in the order they are tried. Pure apart from `isFile` (used for PATH lookup). */
export function candidates(input: DiscoveryInput, isFile: (f: string) => boolean): Candidate[] {
  const p = pathModule(input.platform);
  const list: Candidate[] = [];
  const setting = input.setting?.trim();
  if (setting) {
    const resolved = resolveSetting(setting, input, isFile);
    list.push(
      isBareName(resolved, input.platform)
        ? { source: "setting", path: resolved, missing: "not found on PATH" }
        : { source: "setting", path: resolved },
    );
  }
  list.push({ source: "bundled", path: p.join(input.extensionPath, "server", executableName(input.platform)) });
  const name = executableName(input.platform);
  const onPath = searchPath(name, input.env, input.platform, isFile)[0];
  list.push(
    onPath === undefined
      ? { source: "PATH", path: name, missing: "not found on PATH" }
      : { source: "PATH", path: onPath },
  );
  return list;
}

function describe(c: Candidate): string {
  switch (c.source) {
    case "setting":
      return `strata.server.path (${c.path})`;
    case "bundled":
      return `the bundled binary (${c.path})`;
    case "PATH":
      return c.missing !== undefined ? `\`${c.path}\` on PATH` : `\`strata\` on PATH (${c.path})`;
  }
}

function firstLine(text: string): string {
  const line = text.trim().split(/\r?\n/)[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Runs `--version` on one candidate: the version, or why it is not usable. */
export async function check(
  c: Candidate,
  input: DiscoveryInput,
  probe: Probe,
): Promise<{ version: string } | { reason: string }> {
  if (c.missing !== undefined) return { reason: c.missing };
  if (!probe.isFile(c.path)) return { reason: "no such file" };
  const result = await probe.run(c.path, ["--version"], input.env);
  if (result.error !== undefined) return { reason: result.error };
  const version = parseVersion(result.stdout);
  if (result.code === 0 && version !== undefined) return { version };
  if (result.code !== 0) {
    const said = firstLine(result.stderr) || firstLine(result.stdout);
    return { reason: `\`--version\` exited with ${result.code}${said ? `: ${said}` : ""}` };
  }
  const said = firstLine(result.stdout);
  return { reason: `\`--version\` printed ${said ? `"${said}"` : "nothing"}, not "strata X.Y.Z"` };
}

/** Tries the candidates in order; the first that answers `--version` as Strata wins. */
export async function discover(input: DiscoveryInput, probe: Probe): Promise<Discovery> {
  const tried: Attempt[] = [];
  for (const candidate of candidates(input, (f) => probe.isFile(f))) {
    const outcome = await check(candidate, input, probe);
    if ("version" in outcome) return { ok: true, candidate, version: outcome.version, skipped: tried };
    tried.push({ candidate, reason: outcome.reason });
  }
  return { ok: false, tried, message: failureMessage(tried) };
}

/** One sentence per attempt, then what to do. */
export function failureMessage(tried: Attempt[]): string {
  const lines = tried.map((a) => `${describe(a.candidate)}: ${a.reason}`);
  return (
    `Strata could not find a working \`strata\` binary. Tried ${lines.join("; ")}. ` +
    "Install it with `cargo install --path .` in Strata's repository, or set `strata.server.path` " +
    "(a machine setting: in a remote window — Remote-SSH, WSL, a container, code-server — put it in " +
    "the Remote [machine] settings, where User settings do not apply)."
  );
}

/** A warning for a setting that was passed over in favour of another binary, if any. */
export function skippedSettingWarning(d: Discovery): string | undefined {
  if (!d.ok) return undefined;
  const setting = d.skipped.find((a) => a.candidate.source === "setting");
  if (setting === undefined) return undefined;
  return `strata.server.path (${setting.candidate.path}) does not work (${setting.reason}); using ${describe(d.candidate)} instead.`;
}

/** The server's environment: the editor's, with `extraEnv` on top (`null` removes a variable). */
export function serverEnv(base: NodeJS.ProcessEnv, extraEnv: unknown): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  if (extraEnv === null || typeof extraEnv !== "object" || Array.isArray(extraEnv)) return env;
  for (const [key, value] of Object.entries(extraEnv as Record<string, unknown>)) {
    if (value === null) delete env[key];
    else if (typeof value === "string") env[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") env[key] = String(value);
  }
  return env;
}

/** The real world: the file system and child processes, `--version` given five seconds. */
export function nodeProbe(timeoutMs = 5000): Probe {
  return {
    isFile(file) {
      try {
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    },
    run(program, args, env) {
      return new Promise((resolve) => {
        childProcess.execFile(
          program,
          args,
          { env, timeout: timeoutMs, windowsHide: true, maxBuffer: 1 << 20 },
          (error, stdout, stderr) => {
            if (error === null) {
              resolve({ code: 0, stdout, stderr });
              return;
            }
            const e = error as childProcess.ExecFileException;
            if (e.killed || e.signal === "SIGTERM") {
              resolve({
                code: null,
                stdout,
                stderr,
                error: `\`--version\` gave no answer within ${timeoutMs / 1000} s`,
              });
            } else if (typeof e.code === "number") {
              resolve({ code: e.code, stdout, stderr });
            } else if (e.code === "EACCES") {
              resolve({ code: null, stdout, stderr, error: "not executable (EACCES)" });
            } else {
              resolve({ code: null, stdout, stderr, error: `could not run it: ${e.code ?? e.message}` });
            }
          },
        );
      });
    },
  };
}
