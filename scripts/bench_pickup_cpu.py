#!/usr/bin/env python3
"""CPU seconds per pickup at the Pharmacy's own gateway (issue #15 item 7), robust to load.

    scripts/bench_pickup_cpu.py [--counters 8] [--pickups 24] [--rounds 2] [--seed 7]
                                [--steps] [--profile DIR]

Wall-clock waits on a machine other jobs share say more about the other jobs than about the
pickup. This bench runs the same pickups as scripts/bench_org_gateways.py (devnet and one
gateway per org, `running_org_gateways`; portrait pickups, the counter page's streamed capture
schedule from bench_gateway.py) and reports what each process spent on them: user + system
CPU seconds of devnet and of each org's gateway (each with its child processes, from
/proc/PID/stat), read before and after each round of `--pickups` pickups, divided by the
pickups verified. The setup (enrolment, prescriptions, grants) is outside the rounds. With
`--profile DIR`, py-spy (from $PY_SPY or PATH) records the Pharmacy's gateway and devnet
during the rounds (`DIR/<name>.txt`, collapsed stacks; py-spy's sampling also counts
threads waiting for a core, so on a loaded machine use it for where, not how much). With
`--steps --counters 1`, the CPU of each request kind (start, one frame with its analysis,
verdict, dispense) is read around each request from each thread's /proc schedstat (exact,
where /proc/PID/stat counts 10 ms ticks), one request in flight at a time.

The gateways draw their challenges from a fixed `--seed` (`liveness_seed`): a challenge of 3
poses has 8 frames, one of 2 has 6, so runs compare only on the same draws; the face thread's
CPU per frame is given too. The wait's percentiles are printed too, but on a loaded machine
they are not results. The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "scripts"))

from bench_meta import descendants, percentile  # noqa: E402
from bench_org_gateways import STAFF, OrgBench  # noqa: E402

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL  # noqa: E402
from gateway.cli.demo_camera import SimulatedCamera  # noqa: E402
from gateway.cli.environment import Environment, running_org_gateways  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of `pid` and its live descendants (and reaped children)."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 (1-based) = 11..14 after the comm
        total += sum(int(x) for x in fields[11:15]) / TICKS
    return total


def thread_seconds(pid: int) -> dict[str, float]:
    """CPU seconds of `pid`'s threads, by kind: the main thread (the event loop), threads
    running at a lower priority (the streamed frames' face thread, state.BACKGROUND_NICE),
    and every other thread (face workers, onnxruntime pools, gRPC)."""
    out = {"main": 0.0, "niced": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        kind = ("main" if int(task.name) == pid else
                "niced" if int(fields[16]) > 0 else "other")
        out[kind] += (int(fields[11]) + int(fields[12])) / TICKS
    return out


def task_nanoseconds(pid: int) -> dict[int, int]:
    """Nanoseconds on a CPU of each thread of `pid` and its descendants (/proc schedstat:
    exact, where /proc/PID/stat counts 10 ms ticks; a request's few milliseconds need it)."""
    out: dict[int, int] = {}
    for p in [pid, *descendants(pid)]:
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return out


def thread_kinds(pid: int) -> dict[int, str]:
    """`thread_seconds`' kind of each thread of `pid`."""
    kinds: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            nice = int((task / "stat").read_text().rpartition(")")[2].split()[16])
        except (OSError, ValueError, IndexError):
            continue
        tid = int(task.name)
        kinds[tid] = "main" if tid == pid else "niced" if nice > 0 else "other"
    return kinds


def spent_ms(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU milliseconds between two `task_nanoseconds` readings (a thread that ended in
    between is left out; one that started counts from zero)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e6


def process_ids(env: Environment) -> dict[str, int]:
    pids: dict[str, int] = {}
    for managed in env.processes:
        pid = managed.pid()
        if pid is not None:
            pids[managed.name] = pid
    return pids


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def start_profilers(pids: dict[str, int], out: Path, names: list[str]
                    ) -> list[subprocess.Popen[bytes]]:
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (PY_SPY=/path/to/py-spy or on PATH)")
    out.mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen(
        [spy, "record", "--pid", str(pids[name]), "--format", "raw", "--rate", "200",
         "--threads", "--output", str(out / f"{name}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name in names]


def step_of(method: str, path: str) -> str | None:
    """Which request of a pickup `method path` is (None: not one)."""
    if not path.startswith("/pharmacy/pickups"):
        return None
    if (method, path) == ("POST", "/pharmacy/pickups"):
        return "create"
    if method == "PUT" and "/frames/" in path:
        return "frame"
    if method == "POST" and path.endswith(("/verdict", "/dispense")):
        return path.rpartition("/")[2]
    return None


class StepBench(OrgBench):
    """With one counter (`--steps`): the CPU each pickup request costs devnet and the
    Pharmacy's gateway, read around the request (nothing else is in flight then; a frame's
    analysis is inside its upload's request)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pids: dict[str, int] = {}
        self.steps: dict[str, list[dict[str, float]]] = {}
        self.frames = 0  # frames uploaded (the analysis work scales with them)

    async def call(self, method: str, path: str, staff: str, expect: int = 200,
                   session: str | None = None, enrolment: str | None = None,
                   **kwargs: Any) -> Any:
        step = step_of(method, path)
        if step == "frame":
            self.frames += 1
        if step is None or not self.pids:
            return await super().call(method, path, staff, expect, session, enrolment,
                                      **kwargs)
        names = (PHARMACY, "devnet")
        before = {name: task_nanoseconds(self.pids[name]) for name in names}
        out = await super().call(method, path, staff, expect, session, enrolment, **kwargs)
        after = {name: task_nanoseconds(self.pids[name]) for name in names}
        figures = {name: spent_ms(before[name], after[name]) for name in names}
        kinds = thread_kinds(self.pids[PHARMACY])
        for kind in ("main", "niced", "other"):
            tids = [tid for tid, k in kinds.items() if k == kind]
            figures[f"{PHARMACY} {kind}"] = spent_ms(
                {t: before[PHARMACY].get(t, 0) for t in tids},
                {t: after[PHARMACY][t] for t in tids if t in after[PHARMACY]})
        self.steps.setdefault(step, []).append(figures)
        return out


async def run(args: argparse.Namespace, env: Environment, camera: SimulatedCamera
              ) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=64)
    clients = {org: httpx.AsyncClient(base_url=env.url_of(org), timeout=120, limits=limits)
               for org in (HOSPITAL, SCHOOL, PHARMACY)}
    bench = StepBench(env, clients, camera)
    try:
        await bench.call("POST", "/admin/counter-key", "pharmacy_admin")
        for admin in ("hospital_admin", "pharmacy_admin"):
            await bench.call("POST", "/admin/portrait-keys", admin)
        await bench.enrol("grace_hopper")
        sid, _ = await bench.unlock("grace_hopper", "doctor")
        account, _ = await bench.open_account(sid, "doctor", HOSPITAL)
        await bench.end(sid, "doctor")
        pids = process_ids(env)
        rounds: list[dict[str, Any]] = []
        warm: dict[str, Any] = {}
        for r in range(args.rounds):
            items = await bench.prescriptions("grace_hopper", account,
                                              args.pickups + (1 if r == 0 else 0))
            if r == 0:
                rx, portrait = items.pop()
                warm = await bench.pickup(rx, portrait, "grace_hopper")
                if "refused" in warm:
                    raise RuntimeError(f"warm-up pickup refused: {warm['refused']}")
            bench.pids = pids if args.steps else {}
            spies = (start_profilers(pids, Path(args.profile) / f"round{r + 1}",
                                     [PHARMACY, "devnet"]) if args.profile else [])
            frames_before = bench.frames
            before = snapshot(pids)
            threads_before = thread_seconds(pids[PHARMACY])
            wall, timings = await bench.pickup_round(items, args.counters, "grace_hopper",
                                                     warm["elapsed"])
            after = snapshot(pids)
            threads_after = thread_seconds(pids[PHARMACY])
            for spy in spies:
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(timeout=60)
            done = [t for t in timings if "refused" not in t]
            n = max(1, len(done))
            frames = bench.frames - frames_before
            cpu = {name: (after[name] - before[name]) * 1000 / n for name in pids}
            entry: dict[str, Any] = {
                "verified": len(done), "refused": len(timings) - len(done), "wall_s": wall,
                "frames": frames,
                "niced_ms_per_frame": (threads_after["niced"] - threads_before["niced"])
                * 1000 / max(1, frames),
                "cpu_ms_per_pickup": {**cpu, "all": sum(cpu.values())},
                "pharmacy_threads_ms_per_pickup": {
                    k: (threads_after[k] - threads_before[k]) * 1000 / n
                    for k in threads_after},
                "loadavg": os.getloadavg()[0]}
            for step in ("total", "create", "verdict", "dispense"):
                values = [t[step] * 1000 for t in done]
                entry[f"{step}_p50_ms"] = percentile(values, 50) if values else None
                entry[f"{step}_p95_ms"] = percentile(values, 95) if values else None
            rounds.append(entry)
            print(f"round {r + 1}: cpu ms/pickup " + ", ".join(
                f"{k} {v:.1f}" for k, v in entry["cpu_ms_per_pickup"].items())
                + " (Pharmacy threads: " + ", ".join(
                    f"{k} {v:.1f}" for k, v in entry["pharmacy_threads_ms_per_pickup"].items())
                + f"; {frames} frames, niced {entry['niced_ms_per_frame']:.1f} ms/frame)"
                + f"; wait p50 {entry['total_p50_ms']:.0f} p95 {entry['total_p95_ms']:.0f} "
                f"(load {entry['loadavg']:.1f})", file=sys.stderr)
        report: dict[str, Any] = {"counters": args.counters,
                                  "pickups_per_round": args.pickups, "rounds": rounds}
        if args.steps:
            report["steps_cpu_ms_mean"] = {
                step: {name: sum(t[name] for t in values) / len(values)
                       for name in values[0]} | {"n": len(values)}
                for step, values in bench.steps.items()}
            for step, figures in report["steps_cpu_ms_mean"].items():
                print(f"  {step}: Pharmacy {figures[PHARMACY]:.1f} ms (main "
                      f"{figures[PHARMACY + ' main']:.1f}, niced "
                      f"{figures[PHARMACY + ' niced']:.1f}, other "
                      f"{figures[PHARMACY + ' other']:.1f}), devnet "
                      f"{figures['devnet']:.1f} ms CPU per request (n={figures['n']})",
                      file=sys.stderr)
        return report
    finally:
        for http in clients.values():
            await http.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counters", type=int, default=8)
    parser.add_argument("--pickups", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", metavar="DIR", help="py-spy the Pharmacy and devnet")
    parser.add_argument("--seed", type=int, default=7,
                        help="the gateways' liveness_seed: every run draws the same "
                             "challenges (2 or 3 poses; the frames, hence the face work, "
                             "per pickup follow)")
    parser.add_argument("--steps", action="store_true",
                        help="also CPU per request kind (use with --counters 1: requests "
                             "read one at a time)")
    args = parser.parse_args()
    from face_engine.engine import load_default_engine

    camera = SimulatedCamera(load_default_engine())
    camera.prepare("grace_hopper")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mip-bench-cpu-") as tmp:
        with running_org_gateways(Path(tmp) / "bench", STAFF,
                                  {"pickup_max_failures": 1000,
                                   "liveness_seed": args.seed}) as env:
            report = asyncio.run(run(args, env, camera))
    print(f"({time.perf_counter() - started:.0f} s in all)", file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
