"""Freed memory goes back to the OS after a burst (gateway/core/memory_release.py; the
full-size check is scripts/bench_memory.py).

- a small burst in a child process (Full-HD frames decoded in four threads, as the face
  workers do): without a trim its memory stays resident (the problem, reproduced), and
  after the gateway's `IdleTrimmer` has run it is back near where it started;
- the trimmer trims once per burst, only after `idle_s` with nothing in flight;
- the app counts its requests for it (the middleware), and settings turn it off.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from hardening_kit import bare_app, client

from gateway.core.memory_release import IdleTrimmer, limit_arenas, trim

REPO = Path(__file__).resolve().parents[3]

# Run in a fresh interpreter: the measured heap is the child's alone.
CHILD = r"""
import asyncio, json, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import cv2, numpy as np
from gateway.core.memory_release import IdleTrimmer

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

image = np.zeros((1080, 1920, 3), np.uint8)
image[:] = np.linspace(0, 255, 1920, dtype=np.uint8)[None, :, None]
jpeg = cv2.imencode(".jpg", image)[1].tobytes()
kept = []

def request(_):
    # one "request": frames decoded and converted, small objects interleaved
    frames = [cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
              .astype(np.float32) / 255.0 for _ in range(4)]
    kept.append([bytearray(1000) for _ in range(40)])
    return float(sum(f[0, 0, 0] for f in frames))

pool = ThreadPoolExecutor(4)
list(pool.map(request, range(4)))  # warm: the threads and their arenas exist
trimmer = IdleTrimmer(idle_s=0.0)
asyncio.run(trimmer.trim_if_due())  # nothing served yet: nothing to do
trimmer.started(); trimmer.ended()
asyncio.run(trimmer.trim_if_due())
before = rss_mib()
trimmer.started()
list(pool.map(request, range(int(sys.argv[1]))))
trimmer.ended()
after_burst = rss_mib()
trimmed = asyncio.run(trimmer.trim_if_due()) if sys.argv[2] == "trim" else False
print(json.dumps({"before": before, "after_burst": after_burst, "after": rss_mib(),
                  "trimmed": trimmed}))
"""


def burst(requests: int, mode: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(requests), mode], cwd=REPO,
                          capture_output=True, text=True, timeout=240, check=False,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_bursts_memory_comes_back_after_the_trim() -> None:
    kept = burst(8, "none")
    # The problem: glibc keeps the freed frames in its threads' arenas (four 24 MiB float
    # frames a request; about 400 MiB stays resident after the burst here).
    assert kept["after"] - kept["before"] > 64, kept
    trimmed = burst(8, "trim")
    assert trimmed["trimmed"] is True
    assert trimmed["after_burst"] - trimmed["before"] > 64, trimmed  # the same burst
    assert trimmed["after"] - trimmed["before"] < 32, trimmed


def test_the_trimmer_trims_once_per_burst_after_idle() -> None:
    now = [100.0]
    calls: list[int] = []
    trimmer = IdleTrimmer(2.0, trimmer=lambda: calls.append(1) is None,
                          clock=lambda: now[0])

    def due_now() -> bool:
        return asyncio.run(trimmer.trim_if_due())

    assert not due_now()  # nothing served: nothing to give back
    trimmer.started()
    now[0] += 10
    assert not due_now()  # a request in flight: never during work
    trimmer.ended()
    now[0] += 1.9
    assert not due_now()  # not idle long enough
    now[0] += 0.2
    assert due_now() and calls == [1]
    now[0] += 60
    assert not due_now() and calls == [1]  # an idle gateway is trimmed once
    trimmer.started()
    trimmer.ended()
    now[0] += 2
    assert due_now() and calls == [1, 1]


def test_the_c_library_calls_answer() -> None:
    # glibc (this project's platforms): both calls reach it.
    assert limit_arenas(0) is False  # 0: leave glibc's default alone
    assert isinstance(trim(), bool)


async def test_the_app_counts_its_requests_for_the_trimmer(tmp_path: Path) -> None:
    app = bare_app(tmp_path, memory_trim_idle_s=0.01)
    trimmer = app.memory_trimmer  # type: ignore[attr-defined]
    assert isinstance(trimmer, IdleTrimmer)
    calls: list[int] = []
    trimmer.trimmer = lambda: calls.append(1) is None
    async with client(app) as http:
        assert (await http.get("/openapi.json")).status_code == 200
    assert trimmer.dirty and trimmer.in_flight == 0
    await asyncio.sleep(0.02)
    assert await trimmer.trim_if_due() and calls == [1]
    off = bare_app(tmp_path, memory_trim_idle_s=0)
    assert off.memory_trimmer is None  # type: ignore[attr-defined]
