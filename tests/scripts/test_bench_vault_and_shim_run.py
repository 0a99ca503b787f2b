"""scripts/bench_vault.py and scripts/bench_shim.py run as scripts from any directory (they
moved there from gateway/holder and tests/chaincode/shim) and print their figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _run(tmp_path: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_bench_vault_runs(tmp_path: Path) -> None:
    out = _run(tmp_path, str(SCRIPTS / "bench_vault.py"), "--runs", "1", "--interactive")
    assert re.search(r"^wrap +median \d+\.\d+ s", out, re.MULTILINE), out
    assert re.search(r"^unwrap +median \d+\.\d+ s", out, re.MULTILINE), out


def test_bench_shim_runs(tmp_path: Path) -> None:
    out = _run(tmp_path, str(SCRIPTS / "bench_shim.py"), "50", "2")
    assert re.search(r"50 CreateAsset tx, concurrency 2: \d+ tx/s, shim CPU \d+\.\d+ ms/tx",
                     out), out
