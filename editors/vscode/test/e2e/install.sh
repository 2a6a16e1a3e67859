#!/usr/bin/env bash
# Installs what test/e2e/run.mjs drives into DIR: code-server (VS Code in the browser) and
# playwright-core, both from the npm registry, outside the extension's own dependencies.
#
#   editors/vscode/test/e2e/install.sh DIR
#
# code-server's own postinstall cannot run offline (it asks for --unsafe-perm as root, and
# @vscode/ripgrep downloads rg from GitHub), so this does its steps by hand: the packages with
# --ignore-scripts, VS Code's own dependencies, a rebuild of the native modules it loads, Debian's
# rg where @vscode/ripgrep expects it, and the links postinstall.sh makes. kerberos (proxy
# authentication only) is left unbuilt: it needs the GSSAPI headers. Needs node 20, npm, a C++
# toolchain and rg (apt: ripgrep). A second run with the same versions does nothing.
set -euo pipefail

CODE_SERVER=4.100.3 # VS Code 1.100.3; later releases need node 24
PLAYWRIGHT=1.65.2

dir="${1:?usage: install.sh DIR}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
stamp="$dir/.installed-code-server-$CODE_SERVER-playwright-core-$PLAYWRIGHT"
[ -e "$stamp" ] && exit 0
rg="$(command -v rg)" || {
  echo "install.sh: rg (apt: ripgrep) is needed for code-server's file search" >&2
  exit 1
}

npm_quiet=(--no-audit --no-fund --prefer-offline --loglevel=error)
cd "$dir"
[ -e package.json ] || echo '{ "private": true }' >package.json
npm install "${npm_quiet[@]}" --ignore-scripts "code-server@$CODE_SERVER" "playwright-core@$PLAYWRIGHT"
npm rebuild "${npm_quiet[@]}" argon2

vscode="$dir/node_modules/code-server/lib/vscode"
cd "$vscode"
npm install "${npm_quiet[@]}" --ignore-scripts --omit=dev
# One at a time: node-pty's rebuild reports a failed step of its own after building pty.node.
for module in native-watchdog node-pty @vscode/deviceid @vscode/spdlog; do
  npm rebuild "${npm_quiet[@]}" "$module" >/dev/null 2>&1 || true
done
for built in "$vscode"/node_modules/{native-watchdog/build/Release/watchdog.node,node-pty/build/Release/pty.node,@vscode/spdlog/build/Release/spdlog.node} \
  "$dir/node_modules/argon2/lib/binding/napi-v3/argon2.node"; do
  [ -e "$built" ] || {
    echo "install.sh: building $built failed (is a C++ toolchain installed?)" >&2
    exit 1
  }
done
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$rg" node_modules/@vscode/ripgrep/bin/rg
# What code-server's postinstall.sh links.
ln -sfn node_modules node_modules.asar
ln -sfn code-linux.sh bin/remote-cli/code-server
ln -sfn browser-linux.sh bin/helpers/browser.sh
touch "$stamp"
