#!/usr/bin/env bash
# The README's test command: install what is needed, then lint, type-check and
# run the test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
. .venv/bin/activate
echo "[test] ruff"
ruff check .
echo "[test] mypy"
mypy
echo "[test] pytest"
python -m pytest "$@"
