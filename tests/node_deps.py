"""Installs a Node folder's npm dependencies for a test, through scripts/npm_deps.sh (the same
step scripts/network.sh runs), so a fresh clone needs no manual `npm install`.

Only a machine without node or npm skips; a failed install with npm present fails the test
with npm's output tail, so a broken lockfile or install step cannot hide behind a skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
NPM_DEPS = REPO_ROOT / "scripts" / "npm_deps.sh"
NO_NODE = 3  # npm_deps.sh: node or npm is not on PATH


def install_npm_deps(folder: Path, marker: str, timeout: float = 300) -> None:
    """`npm ci` (or `npm install` without a lockfile) in `folder` unless node_modules/`marker`
    is there and up to date; skips only when node/npm are absent."""
    result = subprocess.run([str(NPM_DEPS), str(folder), marker], capture_output=True,
                            text=True, timeout=timeout, check=False)
    if result.returncode == NO_NODE:
        pytest.skip(result.stderr.strip())
    if result.returncode != 0:
        pytest.fail(f"installing {folder}'s npm dependencies failed "
                    f"(rc {result.returncode}):\n{result.stderr[-3000:]}", pytrace=False)
