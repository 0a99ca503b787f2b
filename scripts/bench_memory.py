#!/usr/bin/env python3
"""Gateway memory after a burst of oversized images: does its RSS come back?

    scripts/bench_memory.py [--json [PATH]] [--requests 100] [--decoded-every 4]
                            [--concurrency 4] [--idle-s 20] [--rounds 3]

Starts devnet and `mip serve` (its own process, as `mip demo` does: gateway/cli/environment.py)
in a fresh folder, warms the face path with a few requests, then per round sends `--requests`
enrolment-frame requests from `--concurrency` clients: most carry twelve 2048x1536 frames
(37.7 MP, over the 25 MP a request may hold: refused from the images' headers, 413
`too_many_pixels`, before anything is decoded) and every `--decoded-every`-th twelve
1920x1080 frames of a face (24.9 MP, just under: decoded and run through detection, quality
and embedding, then refused by the liveness check). The gateway's resident set (VmRSS in
/proc, its process and any children) is read before the burst, sampled every 50 ms during it
(the peak), read right after it and again after `--idle-s` seconds of idle.

Reported (medians over rounds, MiB): `before_mib`, `peak_mib`, `after_burst_mib`,
`after_idle_mib`, and `ratio` = after idle / before (1.0: back to where it started);
`growth_mib` = after idle - before; `overall_ratio` = the last round's after idle / the first
round's before (what a residue per burst adds up to). With --json the last line is the JSON
summary (with the run's machine, load, date and commit: scripts/bench_meta.py), and --json
PATH also writes it there. Goal: ratio <= 1.25 after each round (what the gateway's memory
release is for: docs/gateway.md "Memory after bursts").
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_meta import RunMeta, descendants, median, write_json  # noqa: E402

from gateway.cli.environment import Environment, StaffSpec, running_environment  # noqa: E402

API = "/api/v1"
HOSPITAL = "HospitalMSP"
STAFF = (StaffSpec("registrar", HOSPITAL, "rita", "registrar"),)
SESSION_HEADER = "X-MIP-Enrolment-Session"
FRAMES = 12
OVER = (2048, 1536)   # x12 = 37.7 MP: over MAX_REQUEST_PIXELS (25 MP)
UNDER = (1920, 1080)  # x12 = 24.9 MP: just under, decoded
GOAL_RATIO = 1.25
# The bench's load must not be shaped by the rate limits (they are not what is measured).
SETTINGS = {"rate_limit_face_per_token_rps": 1000.0, "rate_limit_face_per_token_burst": 10000,
            "rate_limit_face_per_source_rps": 1000.0,
            "rate_limit_face_per_source_burst": 10000,
            "rate_limit_per_token_rps": 1000.0, "rate_limit_per_token_burst": 10000,
            "rate_limit_per_source_rps": 1000.0, "rate_limit_per_source_burst": 10000}


# --- resident set size ----------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """VmRSS of `pid` and all its descendants (0 for processes that are gone)."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def mib(n: float) -> float:
    return round(n / 2**20, 1)


class PeakSampler:
    """Samples the RSS of `pid` every `every_s` in a thread; `peak` is the largest seen."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.pid, self.every_s, self.peak = pid, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))


# --- the images -----------------------------------------------------------------------------
def jpeg(size: tuple[int, int], face: bool) -> bytes:
    """A JPEG of `size` (w, h): a demo portrait scaled into it (face) or a plain gradient."""
    import cv2
    import numpy as np

    w, h = size
    if face:
        from gateway.demo.faces import demo_portrait

        portrait = cv2.imdecode(np.frombuffer(demo_portrait("astronaut"), np.uint8),
                                cv2.IMREAD_COLOR)
        if portrait is None:
            raise SystemExit("the demo portrait does not decode")
        canvas = np.full((h, w, 3), 128, np.uint8)
        scale = min(w / portrait.shape[1], h / portrait.shape[0])
        pw, ph = int(portrait.shape[1] * scale), int(portrait.shape[0] * scale)
        x, y = (w - pw) // 2, (h - ph) // 2
        canvas[y:y + ph, x:x + pw] = cv2.resize(portrait, (pw, ph))
    else:
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[:] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    ok, data = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise SystemExit("could not encode a JPEG")
    return data.tobytes()


def frames(image: bytes) -> list[dict[str, str]]:
    encoded = base64.b64encode(image).decode()
    return [{"image": encoded} for _ in range(FRAMES)]


# --- the burst ------------------------------------------------------------------------------
class Burst:
    def __init__(self, env: Environment, http: httpx.AsyncClient) -> None:
        self.env, self.http = env, http
        self.headers = env.headers("registrar")
        self.over = frames(jpeg(OVER, face=False))
        self.under = frames(jpeg(UNDER, face=True))
        self.statuses: Counter[int] = Counter()

    async def session(self) -> str:
        r = await self.http.post(f"{API}/enrolments", headers=self.headers)
        r.raise_for_status()
        return str(r.json()["session_id"])

    async def one(self, session: str, decoded: bool) -> None:
        headers = {**self.headers, SESSION_HEADER: session}
        if decoded:  # a fresh challenge for each answer (a challenge is answered once)
            r = await self.http.post(f"{API}/enrolments/current/challenge", headers=headers)
            r.raise_for_status()
            challenge = r.json()["challenge_id"]
        else:  # refused from the headers: no challenge is reached
            challenge = "0" * 32
        r = await self.http.post(f"{API}/enrolments/current/frames", headers=headers,
                                 json={"challenge_id": challenge,
                                       "frames": self.under if decoded else self.over})
        self.statuses[r.status_code] += 1

    async def run(self, requests: int, decoded_every: int, concurrency: int) -> None:
        queue: asyncio.Queue[bool] = asyncio.Queue()
        for i in range(requests):
            queue.put_nowait(decoded_every > 0 and i % decoded_every == decoded_every - 1)

        async def client() -> None:
            session = await self.session()
            while not queue.empty():
                await self.one(session, queue.get_nowait())

        await asyncio.gather(*(client() for _ in range(concurrency)))


def gateway_pid(env: Environment) -> int:
    for managed in env.processes:
        if managed.name == "gateway":
            pid = managed.pid()
            if pid is not None:
                return pid
    raise SystemExit("the gateway's pid is not known")


async def main_async(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    pid = gateway_pid(env)
    async with httpx.AsyncClient(base_url=env.base_url, timeout=300) as http:
        burst = Burst(env, http)
        # Warm-up: the face models load and one decoded and one refused request run, so
        # `before` is the serving gateway, not the one still loading.
        await burst.run(max(2, args.decoded_every), args.decoded_every, 1)
        await asyncio.sleep(args.idle_s)
        rounds: list[dict[str, Any]] = []
        for r in range(args.rounds):
            burst.statuses.clear()
            before = rss_bytes(pid)
            started = time.perf_counter()
            with PeakSampler(pid) as sampler:
                await burst.run(args.requests, args.decoded_every, args.concurrency)
            wall = time.perf_counter() - started
            after_burst = rss_bytes(pid)
            await asyncio.sleep(args.idle_s)
            after_idle = rss_bytes(pid)
            entry: dict[str, Any] = {"before_mib": mib(before), "peak_mib": mib(sampler.peak),
                     "after_burst_mib": mib(after_burst), "after_idle_mib": mib(after_idle),
                     "ratio": round(after_idle / before, 3),
                     "growth_mib": mib(after_idle - before), "burst_s": round(wall, 2),
                     "statuses": {str(k): v for k, v in sorted(burst.statuses.items())}}
            rounds.append(entry)
            print(f"round {r + 1}: before {entry['before_mib']} MiB, peak "
                  f"{entry['peak_mib']}, after the burst {entry['after_burst_mib']}, after "
                  f"{args.idle_s:g} s idle {entry['after_idle_mib']} (x{entry['ratio']}); "
                  f"answers {entry['statuses']}", file=sys.stderr)
    summary: dict[str, Any] = {
        "requests": args.requests, "decoded_every": args.decoded_every,
        "concurrency": args.concurrency, "idle_s": args.idle_s, "rounds": args.rounds,
        "frames_over": f"{FRAMES}x{OVER[0]}x{OVER[1]}",
        "frames_under": f"{FRAMES}x{UNDER[0]}x{UNDER[1]}",
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        "goal_ratio": GOAL_RATIO, "per_round": rounds}
    for key in ("before_mib", "peak_mib", "after_burst_mib", "after_idle_mib", "ratio",
                "growth_mib", "burst_s"):
        summary[key] = round(median(r[key] for r in rounds), 3)
    summary["max_ratio"] = max(r["ratio"] for r in rounds)
    # Across the rounds: a residue each burst leaves adds up (the first round's `before` to
    # the last round's `after_idle`).
    summary["overall_ratio"] = round(rounds[-1]["after_idle_mib"] / rounds[0]["before_mib"], 3)
    return summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="last line: the JSON summary with the machine, load, date and "
                             "commit (scripts/bench_meta.py); with PATH also written there")
    parser.add_argument("--requests", type=int, default=100, help="requests per burst")
    parser.add_argument("--decoded-every", type=int, default=4,
                        help="every N-th request is just under the pixel limit (decoded)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--idle-s", type=float, default=20.0,
                        help="idle seconds before `before` and before `after_idle`")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="working folder (default: a temp dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    meta = RunMeta("memory")
    with tempfile.TemporaryDirectory(prefix="mip-bench-") as tmp:
        root = args.dir or Path(tmp) / "bench"
        with running_environment(root, STAFF, SETTINGS) as env:
            summary = meta.report(asyncio.run(main_async(args, env)))
    print(f"gateway RSS (median of {args.rounds} rounds of {args.requests} requests): before "
          f"{summary['before_mib']} MiB, peak {summary['peak_mib']} MiB, after the burst "
          f"{summary['after_burst_mib']} MiB, after {args.idle_s:g} s idle "
          f"{summary['after_idle_mib']} MiB: ratio {summary['ratio']} (goal <= {GOAL_RATIO})")
    m = summary["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores; load average "
          f"{summary['loadavg_start'][0]:.1f} at start, {summary['loadavg_end'][0]:.1f} at end")
    if args.json is not None:
        if args.json != "-":
            write_json(Path(args.json), summary)
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
