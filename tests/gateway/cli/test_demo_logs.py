"""`mip demo` as a user runs it: every step passes, and neither its output nor any log of
the run (devnet, chaincode, gateway) holds a password, credential content, face image data,
a private key or a staff token; the gateway's access lines name routes by template (no id
or session id of a path), and every log file is 0600. (Each session id and token a flow
issues is looked for in its log in tests/gateway/services/test_log_scan.py.)"""

from __future__ import annotations

import base64
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.demo_story import CONTENT_CANARIES, PASSWORDS, STEP_TITLES
from gateway.demo.faces import demo_portrait

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN = re.compile(r"mipst_[A-Za-z0-9_-]{20,}")
# A request line with a concrete id in its path (holder session ids, pickup ids: hex).
CONCRETE_PATH = re.compile(r"(?:GET|POST|PUT|DELETE|PATCH) /\S*[0-9a-f]{16}")


def image_samples() -> list[str]:
    """Substrings of the base64 of each portrait (as sent in frames), at several offsets."""
    samples = []
    for name in ("astronaut", "grace_hopper"):
        encoded = base64.b64encode(demo_portrait(name)).decode()
        samples += [encoded[i:i + 40] for i in (400, len(encoded) // 2, len(encoded) - 400)]
    return samples


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_runs_every_step_and_leaks_nothing(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--dir", str(work)], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=230)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    for number, title in enumerate(STEP_TITLES, 1):
        assert f"[{number:2d}] {title}" in run.stdout
    assert f"{len(STEP_TITLES)} of {len(STEP_TITLES)} steps" in run.stdout
    assert "camera" in run.stdout and "public-domain portraits" in run.stdout
    assert "left/right turns because the camera is simulated" in run.stdout

    logs = sorted(work.rglob("*.log"))
    names = {p.name for p in logs}
    assert {"devnet.log", "chaincode.log", "gateway.log"} <= names, names
    gateway_log = (work / "gateway.log").read_text(errors="replace")
    assert "POST /api/v1/pharmacy/pickups" in gateway_log  # the scan reads real logs
    for template in ("POST /api/v1/holders/sessions/{session_id}/unlock",
                     "PUT /api/v1/pharmacy/pickups/{pickup_id}/frames/{index}"):
        assert template in gateway_log, template
    assert not CONCRETE_PATH.search(gateway_log), CONCRETE_PATH.search(gateway_log)
    for path in logs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    canaries = [*PASSWORDS.values(), *CONTENT_CANARIES, *image_samples(),
                "PRIVATE KEY-----"]
    for source, text in [("output", output)] + [
            (str(p), p.read_text(errors="replace")) for p in logs]:
        for canary in canaries:
            assert canary not in text, f"{source} holds {canary[:24]!r}"
        assert not TOKEN.search(text), f"{source} holds a staff token"
    # Nothing left running: the pid files are gone.
    assert not list(work.rglob("*.pid"))
