import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import {
  candidates,
  type DiscoveryInput,
  discover,
  nodeProbe,
  parseVersion,
  type Probe,
  type RunResult,
  serverEnv,
  skippedSettingWarning,
} from "../../src/server_path";

/** A world of files, each answering `--version` the way the test says. */
function world(files: Record<string, RunResult>): Probe & { runs: string[] } {
  const runs: string[] = [];
  return {
    runs,
    isFile: (file) => file in files,
    run: async (program, args) => {
      runs.push(`${program} ${args.join(" ")}`);
      return files[program] ?? { code: null, stdout: "", stderr: "", error: "could not run it: ENOENT" };
    },
  };
}

const strata = (version = "0.1.0"): RunResult => ({ code: 0, stdout: `strata ${version}\n`, stderr: "" });

function input(overrides: Partial<DiscoveryInput> = {}): DiscoveryInput {
  return {
    extensionPath: "/ext",
    env: { PATH: "/usr/local/bin:/usr/bin" },
    platform: "linux",
    homeDir: "/home/u",
    ...overrides,
  };
}

describe("parseVersion", () => {
  const cases: Array<[string, string | undefined]> = [
    ["strata 0.1.0\n", "0.1.0"],
    ["strata 0.2.0-dev\n", "0.2.0-dev"],
    ["strata 1.12.3", "1.12.3"],
    ["rust-analyzer 1.0.0\n", undefined],
    ["strata\n", undefined],
    ["", undefined],
  ];
  for (const [stdout, expected] of cases) {
    test(JSON.stringify(stdout), () => assert.equal(parseVersion(stdout), expected));
  }
});

describe("candidates", () => {
  test("setting, then bundled, then PATH", () => {
    const files = new Set(["/opt/strata/bin/strata", "/usr/bin/strata"]);
    const list = candidates(input({ setting: "/opt/strata/bin/strata" }), (f) => files.has(f));
    assert.deepEqual(list, [
      { source: "setting", path: "/opt/strata/bin/strata" },
      { source: "bundled", path: "/ext/server/strata" },
      { source: "PATH", path: "/usr/bin/strata" },
    ]);
  });

  test("no setting: bundled and PATH only; missing from PATH is known up front", () => {
    const list = candidates(input({ setting: "  " }), () => false);
    assert.deepEqual(list, [
      { source: "bundled", path: "/ext/server/strata" },
      { source: "PATH", path: "strata", missing: "not found on PATH" },
    ]);
  });

  test("~ is the home folder, a relative path is taken from the workspace", () => {
    assert.equal(candidates(input({ setting: "~/bin/strata" }), () => false)[0]?.path, "/home/u/bin/strata");
    assert.equal(
      candidates(input({ setting: "target/debug/strata", workspaceFolder: "/repo" }), () => false)[0]?.path,
      "/repo/target/debug/strata",
    );
  });

  test("a bare name in the setting is looked up on PATH", () => {
    const found = candidates(input({ setting: "strata-dev" }), (f) => f === "/usr/bin/strata-dev");
    assert.deepEqual(found[0], { source: "setting", path: "/usr/bin/strata-dev" });
    const missing = candidates(input({ setting: "strata-dev" }), () => false);
    assert.deepEqual(missing[0], { source: "setting", path: "strata-dev", missing: "not found on PATH" });
  });

  test("PATH order wins and relative PATH entries are never searched", () => {
    const files = new Set(["strata", "./strata", "/b/strata", "/c/strata"]);
    const list = candidates(input({ env: { PATH: ".::/b:/c" } }), (f) => files.has(f));
    assert.deepEqual(list.at(-1), { source: "PATH", path: "/b/strata" });
  });

  test("Windows: strata.exe, `;` separators, Path in any case", () => {
    const files = new Set(["C:\\tools\\strata.exe"]);
    const list = candidates(
      input({ platform: "win32", extensionPath: "C:\\ext", env: { Path: "C:\\bin;C:\\tools" } }),
      (f) => files.has(f),
    );
    assert.deepEqual(list, [
      { source: "bundled", path: "C:\\ext\\server\\strata.exe" },
      { source: "PATH", path: "C:\\tools\\strata.exe" },
    ]);
  });
});

describe("discover", () => {
  test("the setting wins when it works", async () => {
    const probe = world({ "/s/strata": strata("0.3.0"), "/ext/server/strata": strata(), "/usr/bin/strata": strata() });
    const d = await discover(input({ setting: "/s/strata" }), probe);
    assert.ok(d.ok);
    assert.deepEqual(d.candidate, { source: "setting", path: "/s/strata" });
    assert.equal(d.version, "0.3.0");
    assert.deepEqual(probe.runs, ["/s/strata --version"]);
    assert.equal(skippedSettingWarning(d), undefined);
  });

  test("the bundled binary comes before PATH", async () => {
    const d = await discover(input(), world({ "/ext/server/strata": strata(), "/usr/bin/strata": strata() }));
    assert.ok(d.ok);
    assert.equal(d.candidate.source, "bundled");
  });

  test("a broken setting is passed over, and said so", async () => {
    const probe = world({
      "/s/strata": { code: 0, stdout: "hello 1.0\n", stderr: "" },
      "/usr/bin/strata": strata(),
    });
    const d = await discover(input({ setting: "/s/strata" }), probe);
    assert.ok(d.ok);
    assert.deepEqual(d.candidate, { source: "PATH", path: "/usr/bin/strata" });
    assert.equal(
      skippedSettingWarning(d),
      'strata.server.path (/s/strata) does not work (`--version` printed "hello 1.0", not "strata X.Y.Z"); ' +
        "using `strata` on PATH (/usr/bin/strata) instead.",
    );
  });

  test("nothing works: every attempt and its reason, then what to do", async () => {
    const probe = world({ "/ext/server/strata": { code: 2, stdout: "", stderr: "error: bad flag\nmore" } });
    const d = await discover(input({ setting: "/nope/strata" }), probe);
    assert.ok(!d.ok);
    assert.deepEqual(
      d.tried.map((a) => a.reason),
      ["no such file", "`--version` exited with 2: error: bad flag", "not found on PATH"],
    );
    assert.equal(
      d.message,
      "Strata could not find a working `strata` binary. Tried strata.server.path (/nope/strata): no such file; " +
        "the bundled binary (/ext/server/strata): `--version` exited with 2: error: bad flag; " +
        "`strata` on PATH: not found on PATH. " +
        "Install it with `cargo install --path .` in Strata's repository, or set `strata.server.path` " +
        "(a machine setting: in a remote window — Remote-SSH, WSL, a container, code-server — put it in " +
        "the Remote [machine] settings, where User settings do not apply).",
    );
  });

  test("a program that cannot be started says why", async () => {
    const probe = world({
      "/usr/bin/strata": { code: null, stdout: "", stderr: "", error: "not executable (EACCES)" },
    });
    const d = await discover(input(), probe);
    assert.ok(!d.ok);
    assert.equal(d.tried[1]?.reason, "not executable (EACCES)");
  });
});

describe("serverEnv", () => {
  test("extraEnv goes on top; null removes; numbers and booleans become strings", () => {
    const env = serverEnv(
      { PATH: "/bin", HOME: "/h", DROP: "x" },
      {
        STRATA_LOG: "debug",
        DROP: null,
        N: 3,
        B: true,
        O: { nested: 1 },
      },
    );
    assert.deepEqual(env, { PATH: "/bin", HOME: "/h", STRATA_LOG: "debug", N: "3", B: "true" });
  });

  test("anything but an object leaves the environment as it is", () => {
    for (const extra of [null, undefined, "A=b", ["A"], 5]) {
      assert.deepEqual(serverEnv({ A: "1" }, extra), { A: "1" });
    }
  });
});

describe("nodeProbe", { skip: process.platform === "win32" ? "shell scripts" : false }, () => {
  function script(dir: string, name: string, body: string, mode = 0o755): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode });
    return file;
  }

  test("finds a real program on PATH and reads its version", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-path-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    script(dir, "strata", 'echo "strata 0.1.0"');
    const d = await discover(input({ extensionPath: dir, env: { PATH: dir } }), nodeProbe());
    assert.ok(d.ok);
    assert.deepEqual(d.candidate, { source: "PATH", path: path.join(dir, "strata") });
    assert.equal(d.version, "0.1.0");
  });

  test("exit codes, non-executable files and hangs are told apart", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-path-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const probe = nodeProbe(300);
    const failing = script(dir, "failing", 'echo "no such flag" >&2; exit 3');
    assert.deepEqual(await probe.run(failing, ["--version"], {}), { code: 3, stdout: "", stderr: "no such flag\n" });
    const plain = script(dir, "plain", 'echo "strata 0.1.0"', 0o644);
    assert.equal((await probe.run(plain, ["--version"], {})).error, "not executable (EACCES)");
    const slow = script(dir, "slow", "exec sleep 5");
    assert.equal((await probe.run(slow, ["--version"], {})).error, "`--version` gave no answer within 0.3 s");
    assert.equal(probe.isFile(dir), false);
    assert.equal(probe.isFile(failing), true);
  });

  test("the server sees extraEnv", async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "strata-path-"));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const echo = script(dir, "strata", 'echo "strata $STRATA_TEST_VERSION"');
    const env = serverEnv({ PATH: "/usr/bin:/bin" }, { STRATA_TEST_VERSION: "9.9.9" });
    const d = await discover(input({ setting: echo, env }), nodeProbe());
    assert.ok(d.ok);
    assert.equal(d.version, "9.9.9");
  });
});
