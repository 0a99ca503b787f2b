#!/usr/bin/env bash
# MIP demo (until `mip demo` exists): set up the environment, then run the devnet smoke
# scenario: start devnet, submit, evaluate, receive an event, show a stale transaction
# refused, stop devnet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec .venv/bin/python scripts/devnet_smoke.py
