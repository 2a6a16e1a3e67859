// Import this first in a test that loads a module which imports `vscode`: from then on,
// `require("vscode")` gives ./vscode_stub.

import Module = require("node:module");

const stubPath = require.resolve("./vscode_stub");
const mod = Module as unknown as {
  _resolveFilename(request: string, parent: unknown, ...rest: unknown[]): string;
};
const original = mod._resolveFilename;
mod._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]): string {
  if (request === "vscode") return stubPath;
  return original.call(this, request, parent, ...rest);
};
