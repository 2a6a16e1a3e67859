import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { indexingPercent, parseStatus, statusView } from "../../src/status";

const idle = { indexing: null, inFlight: 0, rateLimited: false, offline: false };

describe("status text", () => {
  // [what the server sent, the item's text, its background]
  const cases: Array<[string, unknown, string, string | undefined]> = [
    ["nothing yet", undefined, "Strata", undefined],
    ["idle", idle, "Strata", undefined],
    ["indexing", { ...idle, indexing: { done: 40, total: 100 } }, "$(sync~spin) Strata indexing 40%", undefined],
    [
      "indexing rounds down",
      { ...idle, indexing: { done: 999, total: 1000 } },
      "$(sync~spin) Strata indexing 99%",
      undefined,
    ],
    [
      "indexing, total unknown",
      { ...idle, indexing: { done: 5, total: 0 } },
      "$(sync~spin) Strata indexing",
      undefined,
    ],
    [
      "indexing wins over calls",
      { ...idle, indexing: { done: 1, total: 4 }, inFlight: 2 },
      "$(sync~spin) Strata indexing 25%",
      undefined,
    ],
    ["one call", { ...idle, inFlight: 1 }, "$(loading~spin) Strata: 1 call", undefined],
    ["calls", { ...idle, inFlight: 3 }, "$(loading~spin) Strata: 3 calls", undefined],
    ["rate limited", { ...idle, inFlight: 2, rateLimited: true }, "$(loading~spin) Strata: 2 calls", "warning"],
    ["offline", { ...idle, offline: true }, "$(debug-disconnect) Strata offline", "warning"],
    [
      "offline wins",
      { ...idle, offline: true, inFlight: 1, indexing: { done: 1, total: 2 } },
      "$(debug-disconnect) Strata offline",
      "warning",
    ],
  ];
  for (const [name, params, text, background] of cases) {
    test(name, () => {
      const view = statusView("running", parseStatus(params));
      assert.equal(view.text, text);
      assert.equal(view.background, background);
      assert.equal(view.command, "showStats");
    });
  }
});

describe("status tooltip", () => {
  test("says every fact and how to get more", () => {
    const view = statusView(
      "running",
      parseStatus({
        indexing: { done: 40, total: 100 },
        inFlight: 2,
        rateLimited: true,
        offline: false,
        message: " waiting 12 s for cloud ",
      }),
      "0.1.0",
    );
    assert.deepEqual(view.tooltip, [
      "Strata 0.1.0",
      "Indexing the workspace: 40 of 100",
      "2 model calls in flight",
      "Rate limited: calls wait for a provider's limits",
      "waiting 12 s for cloud",
      "Click for statistics",
    ]);
  });

  test("idle", () => {
    assert.deepEqual(statusView("running", parseStatus(idle)).tooltip, ["Strata", "Idle", "Click for statistics"]);
  });
});

describe("client state", () => {
  test("stopped: a click restarts, status from before is not shown", () => {
    const view = statusView("stopped", parseStatus({ ...idle, inFlight: 4 }));
    assert.equal(view.text, "$(circle-slash) Strata stopped");
    assert.equal(view.background, "error");
    assert.equal(view.command, "restartServer");
  });

  test("starting", () => {
    const view = statusView("starting", undefined);
    assert.equal(view.text, "$(loading~spin) Strata");
    assert.equal(view.command, "showStats");
  });
});

describe("parseStatus", () => {
  test("not an object: ignored", () => {
    for (const params of [null, undefined, 3, "x", []]) assert.equal(parseStatus(params), undefined);
  });

  test("wrong types fall back to idle values", () => {
    assert.deepEqual(
      parseStatus({
        indexing: { done: -3, total: "7" },
        inFlight: Number.NaN,
        rateLimited: "yes",
        offline: 1,
        message: "  ",
      }),
      { indexing: { done: 0, total: 0 }, inFlight: 0, rateLimited: false, offline: false },
    );
  });

  test("fractions are cut to whole numbers", () => {
    assert.deepEqual(parseStatus({ ...idle, inFlight: 2.7 })?.inFlight, 2);
  });
});

test("indexingPercent", () => {
  assert.equal(indexingPercent(0, 10), 0);
  assert.equal(indexingPercent(10, 10), 100);
  assert.equal(indexingPercent(12, 10), 100);
  assert.equal(indexingPercent(1, 3), 33);
  assert.equal(indexingPercent(1, 0), undefined);
});
