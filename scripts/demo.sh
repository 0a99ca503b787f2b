#!/usr/bin/env bash
# The README's demo command: set up the environment, then run `mip demo`, the whole MIP
# story on a fresh devnet (enrol two holders, vouch, issue, grant, pickups that pass and are
# refused, a diploma check, the access log, a private statistic). Extra arguments go to
# `mip demo` (e.g. --dir DIR). The ledger-only smoke scenario stays in scripts/devnet_smoke.py.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
exec .venv/bin/mip demo "$@"
