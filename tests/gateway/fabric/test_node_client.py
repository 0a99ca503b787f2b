"""The official @hyperledger/fabric-gateway Node client against devnet (node_client_check)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from devnet_process import REPO_ROOT, running_devnet
from node_deps import install_npm_deps

CHECK_DIR = REPO_ROOT / "scripts" / "node_client_check"

pytestmark = [pytest.mark.node, pytest.mark.timeout(300)]


def _node_modules() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the Node client check (not on PATH)")
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    if major < 20:
        # A machine's old Node, not a project defect: the package's engines field says so.
        pytest.skip(f"@hyperledger/fabric-gateway 1.11 needs Node >= 20.9, found {version.stdout}")
    # With node present, a failed `npm ci` fails this test (with npm's output), never skips.
    install_npm_deps(CHECK_DIR, "@hyperledger/fabric-gateway/package.json")


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
