#!/usr/bin/env bash
# npm_deps.sh DIR MARKER: make sure DIR's npm dependencies are installed, from the npm registry.
#
# MARKER is a file under DIR/node_modules that proves the install (e.g. fabric-shim/cli.js).
# Installs when MARKER is missing or DIR/package-lock.json is newer than the last install
# (npm's node_modules/.package-lock.json): `npm ci` when DIR has a package-lock.json, so every
# machine gets the same pinned versions, else `npm install`. Used by scripts/network.sh
# (MIP_CHAINCODE_RUNTIME=node) and the Node tests, so a fresh clone needs no manual step.
#
# Exit status: 0 installed (or already), 3 node or npm not on PATH (a machine without Node:
# callers may skip), 1 npm failed (printed with npm's output tail: a failure, never a skip),
# 2 usage.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: npm_deps.sh DIR MARKER" >&2; exit 2; }
dir="$1" marker="$2"
[[ -f "$dir/package.json" ]] || { echo "npm_deps: no package.json in $dir" >&2; exit 2; }

lock="$dir/package-lock.json" installed="$dir/node_modules/.package-lock.json"
if [[ -f "$dir/node_modules/$marker" ]] &&
   { [[ ! -f "$lock" ]] || [[ -f "$installed" && ! "$lock" -nt "$installed" ]]; }; then
  exit 0
fi

for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "npm_deps: $tool is not on PATH (needed for $dir)" >&2; exit 3; }
done

if [[ -f "$lock" ]]; then cmd=(npm ci); else cmd=(npm install); fi
echo "npm_deps: ${cmd[*]} in $dir" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! (cd "$dir" && "${cmd[@]}" --no-audit --no-fund) >"$log" 2>&1; then
  echo "npm_deps: '${cmd[*]}' failed in $dir; its output ends:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
if [[ ! -f "$dir/node_modules/$marker" ]]; then
  echo "npm_deps: '${cmd[*]}' in $dir succeeded but node_modules/$marker is missing" >&2
  exit 1
fi
