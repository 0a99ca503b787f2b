#!/usr/bin/env python3
"""Ledger throughput/latency benchmark against devnet (or any Gateway in a connection.json).

Measures, through the project's Gateway client (gateway.fabric), submits (endorse + submit +
wait for commit) and evaluates, sequentially and with N requests in flight, and prints tx/s and
p50/p95 latency as medians over rounds. `--json` prints one JSON object as the last line.

Against devnet it also prints the CPU time each process spent per operation (devnet, its
chaincode subprocess, this client; utime+stime from /proc over the measured rounds): unlike
wall-clock throughput that figure hardly moves when other jobs share the machine. The chaincode
endorsement policy is explicit (`--policy`, default Fabric's `MAJORITY Endorsement`: two of the
three orgs endorse; `--policy mip` is the MIP chaincode's one-of-three OR policy).

    python scripts/bench_ledger.py [--target devnet] [--policy majority|mip|"<policy>"]
        [--n 2000] [--inflight 16] [--json]
    python scripts/bench_ledger.py --connection path/to/connection.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.fabric import Gateway  # noqa: E402
from network.devnet.event_loop import loop_name, run  # noqa: E402

READY = re.compile(r"devnet ready on [\d.]+:(\d+)")
POLICIES = {
    "majority": "MAJORITY Endorsement",  # Fabric's default chaincode endorsement policy
    # The MIP chaincode's definition (network/fabric): any one of the three peers endorses.
    "mip": "OR('HospitalMSP.peer','SchoolMSP.peer','PharmacyMSP.peer')",
}
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process from /proc/<pid>/stat (0 when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of proc(5)


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


class CpuMeter:
    """CPU seconds of devnet, its chaincode subprocess(es) and this client between two points."""

    def __init__(self, devnet_pid: int | None) -> None:
        self.devnet_pid = devnet_pid

    def sample(self) -> dict[str, float]:
        out = {"client": time.process_time()}
        if self.devnet_pid is not None:
            out["devnet"] = cpu_seconds(self.devnet_pid)
            out["chaincode"] = sum(cpu_seconds(c) for c in children(self.devnet_pid))
        return out


def start_devnet(data: Path, extra: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "network.devnet", "up", "--data", str(data), "--port", "0",
         *extra], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if READY.search(line):
            return proc
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("devnet did not become ready")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_mode(op: Callable[[int], Awaitable[Any]], n: int, inflight: int
                   ) -> tuple[float, list[float]]:
    latencies: list[float] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return n / (time.perf_counter() - start), latencies


async def bench(profile: Path, args: argparse.Namespace, meter: CpuMeter) -> dict[str, Any]:
    gw = Gateway.from_connection(profile, args.org, args.user)
    contract = gw.get_network(args.channel).get_contract(args.chaincode)
    run_id = uuid.uuid4().hex[:8]

    async def submit(i: int) -> None:
        await contract.submit("CreateAsset", [f"bench-{run_id}-{i}-{uuid.uuid4().hex[:6]}",
                                              "blue", "5", "bench", "100"])

    await contract.submit("CreateAsset", [f"bench-{run_id}-read", "blue", "5", "bench", "1"])

    async def evaluate(_: int) -> None:
        await contract.evaluate("ReadAsset", [f"bench-{run_id}-read"])

    for i in range(args.warmup):
        await submit(-1 - i)
    modes = {
        "submit_seq": (submit, args.n_seq, 1),
        f"submit_{args.inflight}": (submit, args.n, args.inflight),
        "evaluate_seq": (evaluate, args.n_seq, 1),
        f"evaluate_{args.inflight}": (evaluate, args.n, args.inflight),
    }
    results: dict[str, Any] = {}
    for name, (op, n, inflight) in modes.items():
        tps, p50, p95 = [], [], []
        before = meter.sample()
        for _ in range(args.rounds):
            rate, lat = await run_mode(op, n, inflight)
            tps.append(rate)
            p50.append(pct(lat, 0.50) * 1000)
            p95.append(pct(lat, 0.95) * 1000)
        results[name] = {"tx_per_s": round(statistics.median(tps), 1),
                         "p50_ms": round(statistics.median(p50), 2),
                         "p95_ms": round(statistics.median(p95), 2),
                         "n": n, "inflight": inflight, "rounds": args.rounds}
        after = meter.sample()
        results[name]["cpu_ms_per_op"] = {
            proc: round((after[proc] - before[proc]) * 1000 / (n * args.rounds), 3)
            for proc in after}
    await gw.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="devnet", choices=["devnet"])
    parser.add_argument("--connection", type=Path, help="use this connection.json instead")
    parser.add_argument("--n", type=int, default=2000, help="operations per concurrent round")
    parser.add_argument("--n-seq", type=int, default=300, help="operations per sequential round")
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--org", default="HospitalMSP")
    parser.add_argument("--user", default="User1")
    parser.add_argument("--channel", default="mipchannel")
    parser.add_argument("--chaincode", default="mip")
    parser.add_argument("--policy", default="majority",
                        help="devnet chaincode endorsement policy: majority (Fabric's default), "
                             "mip (OR of the three peers) or a policy string")
    parser.add_argument("--devnet-arg", action="append", default=[],
                        help="extra argument for `network.devnet up` (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    proc = None
    tmp = None
    if args.connection is None:
        tmp = tempfile.TemporaryDirectory(prefix="mip-bench-")
        policy = POLICIES.get(args.policy, args.policy)
        proc = start_devnet(Path(tmp.name), ["--policy", policy, *args.devnet_arg])
        profile = Path(tmp.name) / "connection.json"
    else:
        policy = "(as deployed)"
        profile = args.connection
    meter = CpuMeter(proc.pid if proc is not None else None)
    load = os.getloadavg()
    try:
        results = run(bench(profile, args, meter))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        if tmp is not None:
            tmp.cleanup()
    report = {"target": "devnet" if args.connection is None else str(args.connection),
              "client": "gateway.fabric", "policy": policy, "event_loop": loop_name(),
              "loadavg": [round(x, 2) for x in load], "results": results}
    print(f"policy: {policy}   event loop: {loop_name()}   "
          f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for name, r in results.items():
        print(f"{name:>14}: {r['tx_per_s']:8.1f} tx/s   p50 {r['p50_ms']:7.2f} ms   "
              f"p95 {r['p95_ms']:7.2f} ms   (n={r['n']}, in flight {r['inflight']}, "
              f"median of {r['rounds']} rounds)")
        cpu = "  ".join(f"{proc} {ms:.2f}" for proc, ms in r["cpu_ms_per_op"].items())
        print(f"{'':>14}  CPU ms per op: {cpu}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
