// package.json is code too: its ids, scopes and activation events must agree with the sources.

import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { CHAT_PATTERN, ClientCommand, DOCUMENT_SELECTOR, LANGUAGES, ServerCommand } from "../../src/protocol";

const root = path.resolve(__dirname, "..", "..", "..");
const manifest = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
const settings = manifest.contributes.configuration.properties;

describe("commands", () => {
  const contributed: Array<{ command: string; title: string; category: string }> = manifest.contributes.commands;

  test("every palette command is contributed, in category Strata", () => {
    assert.deepEqual(contributed.map((c) => c.command).sort(), Object.values(ClientCommand).sort());
    for (const c of contributed) assert.equal(c.category, "Strata", c.command);
  });

  test("the server's command ids are left to the language client", () => {
    const ids = JSON.stringify(manifest.contributes);
    for (const id of Object.values(ServerCommand)) assert.ok(!ids.includes(`"${id}"`), id);
  });

  test("menus name only contributed commands", () => {
    for (const entries of Object.values(manifest.contributes.menus) as Array<Array<{ command: string }>>) {
      for (const e of entries) assert.ok(Object.values(ClientCommand).includes(e.command as never), e.command);
    }
  });
});

describe("settings", () => {
  test("strata.config is user-only, so a repository cannot set providers", () => {
    assert.equal(settings["strata.config"].scope, "application");
    assert.equal(settings["strata.config"].type, "object");
    const providerKeys = Object.keys(settings["strata.config"].properties.providers.additionalProperties.properties);
    assert.ok(!providerKeys.includes("api_key_env") && !providerKeys.includes("headers"));
  });

  test("the server's path and environment: per machine, ignored in untrusted workspaces", () => {
    assert.equal(settings["strata.server.path"].scope, "machine-overridable");
    assert.equal(settings["strata.server.extraEnv"].scope, "machine-overridable");
    assert.deepEqual(manifest.capabilities.untrustedWorkspaces.restrictedConfigurations, [
      "strata.server.path",
      "strata.server.extraEnv",
    ]);
  });

  test("strata.documentSymbols: auto by default, per window", () => {
    assert.deepEqual(settings["strata.documentSymbols"].enum, ["auto", "always", "never"]);
    assert.equal(settings["strata.documentSymbols"].default, "auto");
    assert.equal(settings["strata.documentSymbols"].enumDescriptions.length, 3);
  });

  test("strata.trace.server is what the language client reads for client id strata", () => {
    assert.deepEqual(settings["strata.trace.server"].enum, ["off", "messages", "verbose"]);
    assert.equal(settings["strata.trace.server"].default, "off");
  });

  test("no more settings than documented", () => {
    assert.deepEqual(Object.keys(settings).sort(), [
      "strata.config",
      "strata.documentSymbols",
      "strata.server.extraEnv",
      "strata.server.path",
      "strata.trace.server",
    ]);
  });
});

describe("activation", () => {
  test("every language the server is sent, and chat files", () => {
    const events: string[] = manifest.activationEvents;
    for (const language of LANGUAGES) assert.ok(events.includes(`onLanguage:${language}`), language);
    assert.ok(events.includes("onLanguage:markdown"));
    assert.ok(events.includes(`workspaceContains:${CHAT_PATTERN}`));
    const selected = new Set(DOCUMENT_SELECTOR.map((s) => s.language ?? s.pattern));
    assert.deepEqual([...selected].sort(), [...LANGUAGES, CHAT_PATTERN].sort());
  });

  test("engines.vscode is what vscode-languageclient needs, and @types/vscode is not newer", () => {
    const client = JSON.parse(
      fs.readFileSync(path.join(root, "node_modules", "vscode-languageclient", "package.json"), "utf8"),
    );
    assert.equal(manifest.engines.vscode, client.engines.vscode);
    const floor = manifest.engines.vscode.replace(/^\^/, "");
    assert.equal(manifest.devDependencies["@types/vscode"], floor);
  });

  test("the bundle is the entry point", () => {
    assert.equal(manifest.main, "./out/extension.js");
    assert.equal(manifest.publisher, "strata");
    assert.ok(manifest.repository?.url);
  });
});
