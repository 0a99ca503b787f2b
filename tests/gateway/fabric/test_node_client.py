"""The official @hyperledger/fabric-gateway Node client against devnet (node_client_check)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from devnet_process import REPO_ROOT, running_devnet

CHECK_DIR = REPO_ROOT / "scripts" / "node_client_check"

pytestmark = [pytest.mark.node, pytest.mark.timeout(300)]


def _node_modules() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node client check (not on PATH)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        pytest.skip(f"@hyperledger/fabric-gateway 1.11 needs Node >= 20.9, found {version.stdout}")
    if (CHECK_DIR / "node_modules" / "@hyperledger" / "fabric-gateway").is_dir():
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=CHECK_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    if result.returncode != 0:
        pytest.skip(f"npm ci failed (registry unreachable?): {result.stderr[-500:]}")


def test_node_client_against_devnet(tmp_path: Path) -> None:
    _node_modules()
    with running_devnet(tmp_path) as devnet:
        result = subprocess.run(
            ["node", "check.mjs", "--connection", str(devnet.connection)],
            cwd=CHECK_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and output.strip().endswith("PASS"), output
