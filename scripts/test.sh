#!/usr/bin/env bash
# The README's test command: install what is needed, then lint, type-check and
# run the test suite. Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
# The counter page's browser test drives Debian's Chromium (no browser download from
# anywhere else); install it when missing and we may (root with apt).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
    echo "[test] installing Debian chromium for the browser test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } ||
        echo "[test] chromium could not be installed: the browser test will be skipped"
fi
# The PKCS#11 key provider's tests run against Debian's SoftHSM2 (tests/gateway/core/
# softhsm_kit.py makes its own token in a temporary folder); they fail when it is missing
# on a machine that could have installed it.
if ! command -v softhsm2-util >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
        && [ "$(id -u)" = 0 ]; then
    echo "[test] installing Debian softhsm2 for the PKCS#11 key provider tests"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 >/dev/null 2>&1 || {
        apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q softhsm2 >/dev/null 2>&1; } ||
        echo "[test] softhsm2 could not be installed: the PKCS#11 tests will fail"
fi
. .venv/bin/activate
echo "[test] ruff"
ruff check .
echo "[test] mypy"
mypy
echo "[test] figures (README and docs tables against docs/figures/*.json)"
python scripts/figures.py --check
# Two workers (pytest-xdist; every machine of this project has 2 cores): much of the suite
# waits on the processes it starts (devnet, gateways, the browser), so one worker leaves a
# core idle. tests/xdist_plan.py says how they share it: each file whole on one worker (its
# module fixtures, a devnet say, start once), the `fabric` tests together on one (they share
# Fabric networks on fixed ports), the longest files first. Extra arguments come after
# these: `-n 0` runs it all in this process.
echo "[test] pytest (2 workers)"
python -m pytest -n 2 --dist loadfile --no-loadscope-reorder "$@"
