#!/usr/bin/env bash
# Installs everything MIP needs into .venv at the repository root and obtains
# the face models (verified by SHA-256). Safe to run again: it only adds what
# is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PY --version)"
    "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

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
