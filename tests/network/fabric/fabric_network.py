"""Helpers for `fabric` tests: find the binaries, run scripts/network.sh, check its processes.

See conftest.py for how the session network is chosen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from node_deps import install_npm_deps

REPO_ROOT = Path(__file__).resolve().parents[3]
NETWORK_SH = REPO_ROOT / "scripts" / "network.sh"
FABRIC_BINARIES = ("peer", "orderer", "configtxgen", "osnadmin")
NODE_CHAINCODE_DIR = REPO_ROOT / "scripts" / "node_chaincode"


@dataclass
class FabricNetwork:
    connection: Path
    state_dir: Path | None  # None: a network this session did not start
    up_s: float = 0.0
    deploy_s: float = 0.0
    env: dict[str, str] | None = None  # network.sh's environment for this network (if ours)


def install_node_chaincode() -> None:
    """Install scripts/node_chaincode's npm packages (fabric-shim) as network.sh does; skips
    only when node or npm is not on PATH, fails when npm is there and the install fails."""
    install_npm_deps(NODE_CHAINCODE_DIR, "fabric-shim/cli.js")


def missing_fabric_binaries() -> str | None:
    """Why the network cannot be started here, or None. Looks only at $FABRIC_BIN and PATH."""
    bin_dir = os.environ.get("FABRIC_BIN")
    if bin_dir:
        missing = [n for n in FABRIC_BINARIES if not os.access(Path(bin_dir) / n, os.X_OK)]
        where = f"$FABRIC_BIN ({bin_dir})"
    else:
        missing = [n for n in FABRIC_BINARIES if shutil.which(n) is None]
        where = "PATH ($FABRIC_BIN unset)"
    if missing:
        return f"Fabric binaries (2.5 or 3.1) not found in {where}: {', '.join(missing)}"
    return None


ASSET_CONTRACT = "chaincode.contracts.asset:AssetContract"


def deployed_contract(connection: Path) -> str | None:
    """The contract spec `network.sh deploy` recorded beside `connection`, if any."""
    try:
        return (connection.parent / "chaincode" / "contract").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def fabric_profile_from_env(contract: str | None = None) -> Path | None:
    """MIP_CONNECTION if it names a real-network profile (and, with `contract`, one whose
    chaincode servers run that contract spec)."""
    value = os.environ.get("MIP_CONNECTION")
    if not value:
        return None
    path = Path(value)
    try:
        network = json.loads(path.read_text(encoding="utf-8")).get("network")
    except (OSError, ValueError):
        return None
    if network != "fabric":
        return None
    if contract is not None and deployed_contract(path) != contract:
        return None
    return path


@contextmanager
def session_network(
    state: Path, port_offset: str, settings: dict[str, str]
) -> Iterator[FabricNetwork]:
    """`network.sh up` + `deploy` with `settings` (MIP_CHAINCODE_* ...) into `state`; at the end
    `down` + `clean`, asserting that no process this network started is left."""
    env = {**os.environ, **settings, "MIP_FABRIC_DIR": str(state),
           "MIP_FABRIC_PORT_OFFSET": port_offset}
    try:
        up_s = run_network_sh("up", env)
        deploy_s = run_network_sh("deploy", env)
        yield FabricNetwork(state / "connection.json", state, up_s, deploy_s, env)
    finally:
        started = recorded_processes(state)
        run_network_sh("down", env, timeout=60)
        left = still_running(started)
        run_network_sh("clean", env, timeout=60)
        assert not left, f"network.sh down left processes running: {left}"
        assert not state.exists(), "network.sh clean left the state dir"


def run_network_sh(command: str, env: dict[str, str], timeout: float = 240) -> float:
    start = time.monotonic()
    result = subprocess.run(
        [str(NETWORK_SH), command], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"network.sh {command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return time.monotonic() - start


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(") ", 1)[1].split()[19]  # field 22: start time, as network.sh records


def recorded_processes(state_dir: Path) -> dict[str, tuple[int, str]]:
    """name -> (pid, start time) of every process network.sh recorded as started (orderers,
    peers and the servers of every chaincode deployed)."""
    out = {}
    for file in sorted((state_dir / "pids").glob("*.pid")):
        pid, start = file.read_text().split()
        out[file.stem] = (int(pid), start)
    return out


def still_running(processes: dict[str, tuple[int, str]]) -> dict[str, int]:
    """Those of `processes` that are still the very processes started (pid reuse aside)."""
    return {n: pid for n, (pid, start) in processes.items() if _start_time(pid) == start}
