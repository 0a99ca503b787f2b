"""`mip network up|status|down --fabric`: the admin CLI driving scripts/network.sh, as a user
runs it, on a network of its own (ports shifted by MIP_FABRIC_CLI_TEST_PORT_OFFSET, default
900). Skipped, saying why, where Fabric's binaries are absent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fabric_network import missing_fabric_binaries, recorded_processes, still_running

pytestmark = [pytest.mark.fabric, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[3]


def mip(*args: str, env: dict[str, str], timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_network_up_status_down_with_the_fabric_flag(tmp_path: Path) -> None:
    reason = missing_fabric_binaries()
    if reason:
        pytest.skip(reason)
    state = tmp_path / "fabric"
    env = {**os.environ, "MIP_FABRIC_DIR": str(state),
           "MIP_FABRIC_PORT_OFFSET": os.environ.get("MIP_FABRIC_CLI_TEST_PORT_OFFSET", "900")}
    try:
        up = mip("network", "up", "--fabric", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        connection = state / "connection.json"
        assert f"connection profile: {connection.resolve()}" in up.stdout
        profile = json.loads(connection.read_text())
        assert profile["network"] == "fabric"
        # The gateway's service identity was minted in every org (as on devnet).
        assert "gateway service identity minted" in up.stdout
        status = mip("network", "status", "--fabric", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "running" in status.stdout.lower()
        started = recorded_processes(state)
        assert started and not set(started) - set(still_running(started))
    finally:
        started = recorded_processes(state) if state.exists() else {}
        down = mip("network", "down", "--fabric", env=env, timeout=120)
        left = still_running(started)
        subprocess.run(["bash", str(REPO_ROOT / "scripts" / "network.sh"), "clean"], env=env,
                       capture_output=True, timeout=120, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not left, f"mip network down --fabric left processes running: {left}"
