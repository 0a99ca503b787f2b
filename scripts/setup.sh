#!/usr/bin/env bash
# Installs everything MIP needs into .venv at the repository root and obtains
# the face models (verified by SHA-256). Safe to run again: it only adds what
# is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# MIP is built and pinned for Python 3.11 (pyproject.toml, the hash-pinned wheels): take
# $PYTHON, else python3.11, else python3 only if it is 3.11, and stop otherwise rather than
# building a .venv on another version that fails later in a less clear way.
is_311() { [ "$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.11" ]; }
need_311() {
    echo "[setup] MIP needs Python 3.11: $1. Install python3.11 (e.g. apt-get install" \
         "python3.11 python3.11-venv, or pyenv install 3.11), or point \$PYTHON at one." >&2
    exit 1
}
if [ -n "${PYTHON:-}" ]; then
    PY="$PYTHON"
    command -v "$PY" >/dev/null 2>&1 || need_311 "\$PYTHON=$PY is not an executable"
    is_311 "$PY" || need_311 "\$PYTHON=$PY is $("$PY" --version 2>&1 || echo 'not Python')"
elif command -v python3.11 >/dev/null 2>&1; then
    PY=python3.11
    is_311 "$PY" || need_311 "python3.11 on PATH is $("$PY" --version 2>&1 || echo 'not Python')"
elif command -v python3 >/dev/null 2>&1; then
    PY=python3
    is_311 "$PY" || need_311 "there is no python3.11 on PATH and python3 is $("$PY" --version 2>&1 || echo 'not Python')"
else
    need_311 "there is neither python3.11 nor python3 on PATH"
fi

if [ -x .venv/bin/python ] && ! is_311 .venv/bin/python; then
    need_311 "the existing .venv is $(.venv/bin/python --version 2>&1); remove .venv and run this again"
fi
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $("$PY" --version)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

# The vault's password hardening (gateway/holder/oprf.py) runs on libsodium's ristretto255
# through pysodium, which loads Debian's libsodium23 (no copy of its own). Install it when
# missing and we may (root with apt); otherwise say what is missing.
if ! ldconfig -p 2>/dev/null | grep -q 'libsodium\.so\.23'; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "[setup] installing Debian libsodium23 for the password-hardening OPRF"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsodium23 >/dev/null 2>&1 || {
            apt-get update -q >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsodium23 >/dev/null 2>&1; } ||
            echo "[setup] libsodium23 could not be installed: gateway/holder/oprf.py will not import" >&2
    else
        echo "[setup] libsodium (libsodium.so.23) is missing: install libsodium23 (Debian)" \
             "or your system's libsodium 1.0.18+ for the password-hardening OPRF" >&2
    fi
fi

echo "[setup] installing hash-pinned artifacts"
"$VPY" -m pip install -q --no-deps --require-hashes -r requirements/hashes.txt
echo "[setup] installing mip and its dependencies"
"$VPY" -m pip install -q -e ".[dev]"
"$VPY" -m pip install -q --no-deps --require-hashes -r requirements/insightface.txt
# If anything ever brings in the GUI OpenCV build, it shadows the headless one's cv2
# package: drop it and reinstall the headless build so a fresh machine imports cv2.
if "$VPY" -m pip show -q opencv-python >/dev/null 2>&1; then
    "$VPY" -m pip uninstall -q -y opencv-python
    "$VPY" -m pip install -q --force-reinstall --no-deps opencv-python-headless
fi
"$VPY" -c "import cv2" || { echo "[setup] cv2 does not import" >&2; exit 1; }

if [ -f face_engine/models.py ]; then
    echo "[setup] obtaining face models"
    "$VPY" -m face_engine.models fetch
fi
echo "[setup] done"
