// Import this first in a test that activates the extension: from then on, `require("vscode")`
// gives ./vscode_fake.

import Module = require("node:module");

const fakePath = require.resolve("./vscode_fake");
const mod = Module as unknown as {
  _resolveFilename(request: string, parent: unknown, ...rest: unknown[]): string;
};
const original = mod._resolveFilename;
mod._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]): string {
  if (request === "vscode") return fakePath;
  return original.call(this, request, parent, ...rest);
};
