"""Helpers for `fabric` tests: find the binaries, run scripts/network.sh, check its processes.

See conftest.py for how the session network is chosen.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NETWORK_SH = REPO_ROOT / "scripts" / "network.sh"
FABRIC_BINARIES = ("peer", "orderer", "configtxgen", "osnadmin")
PROCESS_NAMES = (
    "orderer", "peer-hospital", "peer-school", "peer-pharmacy",
    "cc-hospital", "cc-school", "cc-pharmacy",
)


@dataclass
class FabricNetwork:
    connection: Path
    state_dir: Path | None  # None: a network this session did not start
    up_s: float = 0.0
    deploy_s: float = 0.0


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
        return f"Fabric 2.5 binaries not found in {where}: {', '.join(missing)}"
    return None


def fabric_profile_from_env() -> Path | None:
    value = os.environ.get("MIP_CONNECTION")
    if not value:
        return None
    path = Path(value)
    try:
        network = json.loads(path.read_text(encoding="utf-8")).get("network")
    except (OSError, ValueError):
        return None
    return path if network == "fabric" else None


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
    """name -> (pid, start time) of every process network.sh recorded as started."""
    out = {}
    for name in PROCESS_NAMES:
        file = state_dir / "pids" / f"{name}.pid"
        if file.is_file():
            pid, start = file.read_text().split()
            out[name] = (int(pid), start)
    return out


def still_running(processes: dict[str, tuple[int, str]]) -> dict[str, int]:
    """Those of `processes` that are still the very processes started (pid reuse aside)."""
    return {n: pid for n, (pid, start) in processes.items() if _start_time(pid) == start}
