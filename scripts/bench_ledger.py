#!/usr/bin/env python3
"""Ledger throughput/latency benchmark against devnet, the real Fabric network or a connection.json.

Measures, through the project's Gateway client (gateway.fabric), submits (endorse + submit +
wait for commit) and evaluates, sequentially and with N requests in flight, and prints tx/s and
p50/p95 latency as medians over rounds. `--json` prints one JSON object as the last line, with
the machine, load average, date and commit (scripts/bench_meta.py); `--json PATH` also writes
it there, for scripts/figures.py to render.

Against devnet it also prints the CPU time each process spent per operation (devnet, its
chaincode subprocess, this client; utime+stime from /proc over the measured rounds): unlike
wall-clock throughput that figure hardly moves when other jobs share the machine. The chaincode
endorsement policy is explicit (`--policy`, default Fabric's `MAJORITY Endorsement`: two of the
three orgs endorse; `--policy mip` is the MIP chaincode's policy, 2 of the 3 peers;
`--policy any-one` is the policy MIP had before, one of the three). `--compare-policy P`
measures policy P as well in the same run, on a devnet of its own, the policies taking turns
round by round: a comparison between policies is meant to come from one such run.

`--target fabric` runs the same rounds on the real Fabric 2.5 network (docs/deploy.md): it
brings one up with `scripts/network.sh up` + `deploy` (asset contract, the chosen policy,
`--batch-timeout`) in a temporary state dir on ports shifted by `--port-offset`, and at the end
`down` + `clean`, failing if any process it started is left. With `--connection` it reuses a
running network instead (and reads its processes from the pid files beside the profile). The
CPU figures are then the orderer, the three peers, the three chaincode servers (with MAJORITY,
two of them run each submit) and this client.

    python scripts/bench_ledger.py [--target devnet|fabric] [--policy majority|mip|"<policy>"]
        [--compare-policy any-one] [--n 2000] [--inflight 16] [--json [PATH]]
    python scripts/bench_ledger.py --connection path/to/connection.json
    python scripts/bench_ledger.py --target fabric [--port-offset 500] [--batch-timeout 20ms]
    python scripts/bench_ledger.py --target fabric --connection var/fabric/connection.json
    python scripts/bench_ledger.py --target fabric --compare-node [--compare-rounds 6] [--n 1000]

`--compare-node` measures, in the same run and alternating, the project's Python shim and
Fabric's Node runtime (fabric-shim, CCaaS) serving the same asset contract on one network
(scripts/bench_fabric_compare.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
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

sys.path.insert(0, str(REPO / "scripts"))

from bench_meta import RunMeta, median, percentile, write_json  # noqa: E402

from chaincode.protocol.deployment import CHAINCODE_POLICY  # noqa: E402
from gateway.fabric import Gateway  # noqa: E402
from network.devnet.event_loop import loop_name, run  # noqa: E402

READY = re.compile(r"devnet ready on [\d.]+:(\d+)")
POLICIES = {
    "majority": "MAJORITY Endorsement",  # Fabric's default chaincode endorsement policy
    # The MIP chaincode's definition (chaincode/protocol/deployment.py): 2 of the 3 orgs' peers.
    "mip": CHAINCODE_POLICY,
    # MIP's policy before it became a majority: any one of the three orgs' peers.
    "any-one": "OR('HospitalMSP.peer','SchoolMSP.peer','PharmacyMSP.peer')",
}
# What `--target fabric` deploys: the bench's CreateAsset/ReadAsset live in the asset contract.
ASSET_CONTRACT = "chaincode.contracts.asset:AssetContract"
NETWORK_SH = REPO / "scripts" / "network.sh"
# network.sh's pid files (<state>/pids/NAME.pid: "pid start-time"), grouped as reported.
FABRIC_PROCESSES = {
    "orderer": ("orderer",),
    "peers": ("peer-hospital", "peer-school", "peer-pharmacy"),
    "chaincode": ("cc-hospital", "cc-school", "cc-pharmacy"),
}
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """utime + stime of one process from /proc/<pid>/stat, or of its thread `tid` from
    /proc/<pid>/task/<tid>/stat (0 when it is gone)."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        raw = Path(path).read_text()
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
    """CPU seconds of devnet, its chaincode subprocess(es) and this client between two points;
    on Fabric, of each group of network processes (with their children) and this client.

    With `main_thread`, also `devnet_main_thread`: the part of `devnet` spent in its main
    thread, the event loop where all of devnet's Python runs (the rest is gRPC's poller thread,
    which does the socket I/O, and the SQLite commit thread). That thread holds the GIL: at
    1,000 ms per second it caps devnet's rate whatever the other cores do."""

    def __init__(self, devnet_pid: int | None,
                 groups: dict[str, list[int]] | None = None, *,
                 main_thread: bool = False) -> None:
        self.devnet_pid = devnet_pid
        self.groups = groups or {}
        self.main_thread = main_thread

    def sample(self) -> dict[str, float]:
        out = {"client": time.process_time()}
        if self.devnet_pid is not None:
            out["devnet"] = cpu_seconds(self.devnet_pid)
            if self.main_thread:
                out["devnet_main_thread"] = cpu_seconds(self.devnet_pid, self.devnet_pid)
            out["chaincode"] = sum(cpu_seconds(c) for c in children(self.devnet_pid))
        for name, pids in self.groups.items():
            out[name] = sum(cpu_seconds(p) + sum(cpu_seconds(c) for c in children(p))
                            for p in pids)
        return out


def recorded_pids(state: Path) -> dict[str, tuple[int, str]]:
    """name -> (pid, start time) of the processes network.sh recorded in `state`/pids (every
    pid file: also the orderers of a 3-node network and servers of extra chaincodes)."""
    out: dict[str, tuple[int, str]] = {}
    for file in sorted((state / "pids").glob("*.pid")):
        with contextlib.suppress(OSError, ValueError):
            pid, start = file.read_text().split()
            out[file.stem] = (int(pid), start)
    return out


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat, as network.sh records it (tells a reused pid apart)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2:].split()[19]


def fabric_groups(state: Path) -> dict[str, list[int]]:
    """The live recorded processes of the network in `state`, grouped as FABRIC_PROCESSES."""
    pids = {n: pid for n, (pid, start) in recorded_pids(state).items()
            if start_time(pid) == start}
    return {group: [pids[n] for n in names if n in pids]
            for group, names in FABRIC_PROCESSES.items()}


def batch_timeout_of(state: Path) -> str | None:
    """The BatchTimeout network.sh rendered into the network's configtx.yaml, if readable."""
    with contextlib.suppress(OSError):
        found = re.search(r"^\s*BatchTimeout:\s*(\S+)",
                          (state / "config" / "configtx.yaml").read_text(), re.MULTILINE)
        return found.group(1) if found else None
    return None


def fabric_policy_setting(policy: str) -> str:
    """MIP_CHAINCODE_POLICY for `--policy`: Fabric's MAJORITY is the channel's Endorsement
    policy (an implicit-meta policy, not a signature policy `--signature-policy` accepts)."""
    return "channel" if policy == POLICIES["majority"] else policy


def network_sh(command: str, env: dict[str, str], timeout: float = 300) -> float:
    """Run `scripts/network.sh COMMAND`; its seconds, or SystemExit with its output's tail."""
    t0 = time.monotonic()
    done = subprocess.run([str(NETWORK_SH), command], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"network.sh {command} failed ({done.returncode}):\n{tail}")
    return time.monotonic() - t0


def fabric_env(state: Path, args: argparse.Namespace, policy: str) -> dict[str, str]:
    return {**os.environ, "MIP_FABRIC_DIR": str(state),
            "MIP_FABRIC_PORT_OFFSET": str(args.port_offset),
            "MIP_FABRIC_BATCH_TIMEOUT": args.batch_timeout,
            "MIP_CHAINCODE_CONTRACT": ASSET_CONTRACT,
            "MIP_CHAINCODE_POLICY": fabric_policy_setting(policy)}


def stop_fabric(state: Path, env: dict[str, str]) -> None:
    """`down` + `clean`; SystemExit if a process the network started (or one of its process
    group, as pgrep -g sees it) is still running after `down`."""
    started = recorded_pids(state)
    network_sh("down", env, timeout=120)
    left = [f"{n} (pid {pid})" for n, (pid, start) in started.items()
            if start_time(pid) == start
            or subprocess.run(["pgrep", "-g", str(pid)], capture_output=True,
                              check=False).returncode == 0]
    network_sh("clean", env, timeout=120)
    if left:
        raise SystemExit(f"network.sh down left processes running: {', '.join(left)}")


def start_devnet(data: Path, extra: list[str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "network.devnet", "up", "--data", str(data), "--port", "0",
         "--contract", "asset", *extra], cwd=REPO, stdout=subprocess.PIPE, text=True)
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


class Target:
    """One network the rounds run against: its client's submit/evaluate and its CPU meter."""

    def __init__(self, profile: Path, args: argparse.Namespace, meter: CpuMeter) -> None:
        self.gw = Gateway.from_connection(profile, args.org, args.user)
        self.contract = self.gw.get_network(args.channel).get_contract(args.chaincode)
        self.meter = meter
        self.run_id = uuid.uuid4().hex[:8]

    async def submit(self, i: int) -> None:
        await self.contract.submit("CreateAsset", [
            f"bench-{self.run_id}-{i}-{uuid.uuid4().hex[:6]}", "blue", "5", "bench", "100"])

    async def evaluate(self, _: int) -> None:
        await self.contract.evaluate("ReadAsset", [f"bench-{self.run_id}-read"])

    async def prepare(self, warmup: int) -> None:
        await self.contract.submit("CreateAsset", [f"bench-{self.run_id}-read", "blue", "5",
                                                   "bench", "1"])
        for i in range(warmup):
            await self.submit(-1 - i)


async def bench(targets: list[tuple[Path, CpuMeter]], args: argparse.Namespace
                ) -> list[dict[str, Any]]:
    """Each mode's rounds; with several targets (policies compared in one run) the targets
    take turns round by round, so a drift of the machine's load falls on every side alike.
    One results dict per target, in order."""
    nets = [Target(profile, args, meter) for profile, meter in targets]
    for net in nets:
        await net.prepare(args.warmup)
    modes = {
        "submit_seq": ("submit", args.n_seq, 1),
        f"submit_{args.inflight}": ("submit", args.n, args.inflight),
        "evaluate_seq": ("evaluate", args.n_seq, 1),
        f"evaluate_{args.inflight}": ("evaluate", args.n, args.inflight),
    }
    out: list[dict[str, Any]] = [{} for _ in nets]
    for name, (kind, n, inflight) in modes.items():
        tps: list[list[float]] = [[] for _ in nets]
        p50: list[list[float]] = [[] for _ in nets]
        p95: list[list[float]] = [[] for _ in nets]
        cpu: list[dict[str, float]] = [{} for _ in nets]
        for _ in range(args.rounds):
            for k, net in enumerate(nets):
                before = net.meter.sample()
                rate, lat = await run_mode(getattr(net, kind), n, inflight)
                after = net.meter.sample()
                tps[k].append(rate)
                p50[k].append(percentile(lat, 50) * 1000)
                p95[k].append(percentile(lat, 95) * 1000)
                for proc in after:
                    cpu[k][proc] = cpu[k].get(proc, 0.0) + after[proc] - before[proc]
        for k in range(len(nets)):
            out[k][name] = {
                "tx_per_s": round(median(tps[k]), 1), "p50_ms": round(median(p50[k]), 2),
                "p95_ms": round(median(p95[k]), 2), "n": n, "inflight": inflight,
                "rounds": args.rounds,
                "cpu_ms_per_op": {proc: round(sec * 1000 / (n * args.rounds), 3)
                                  for proc, sec in cpu[k].items()}}
    for net in nets:
        await net.gw.close()
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="devnet", choices=["devnet", "fabric"])
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
                        help="chaincode endorsement policy: majority (Fabric's default), "
                             "mip (the MIP chaincode's: chaincode/protocol/deployment.py, 2 of "
                             "the 3 peers) or a policy string")
    parser.add_argument("--devnet-arg", action="append", default=[],
                        help="extra argument for `network.devnet up` (repeatable)")
    parser.add_argument("--port-offset", type=int, default=500,
                        help="fabric: MIP_FABRIC_PORT_OFFSET of the network it brings up "
                             "(default 500: clear of the default network and the test ones)")
    parser.add_argument("--batch-timeout", default="20ms",
                        help="fabric: the orderer's BatchTimeout of the network it brings up")
    parser.add_argument("--compare-node", action="store_true",
                        help="fabric: Python shim vs Fabric's Node runtime, same run, alternating")
    parser.add_argument("--compare-rounds", type=int, default=6,
                        help="--compare-node: alternating rounds (medians are over these)")
    parser.add_argument("--compare-warmup", type=int, default=300,
                        help="--compare-node: warm-up submits per runtime (and 5x evaluates)")
    parser.add_argument("--python-chaincode", default="mipasset",
                        help="--compare-node: name of the Python-served asset chaincode")
    parser.add_argument("--node-chaincode", default="nodeasset",
                        help="--compare-node: name of the Node-served asset chaincode")
    parser.add_argument("--compare-policy", action="append", default=[], metavar="POLICY",
                        help="devnet: also measure this policy (repeatable; e.g. any-one) in "
                             "the same run, on its own devnet, the policies taking turns "
                             "round by round; the JSON then holds one entry per policy")
    parser.add_argument("--json", nargs="?", const="-", metavar="PATH",
                        help="print the report (with the machine, load, date and commit) "
                             "as the last line; with PATH also write it there "
                             "(docs/figures/, scripts/figures.py renders it)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    meta = RunMeta("ledger", sys.argv if argv is None else [sys.argv[0], *argv])
    if args.compare_node and args.target != "fabric":
        raise SystemExit("--compare-node runs on the real network: add --target fabric")
    if args.target == "fabric":
        return main_fabric(args, meta)
    if args.compare_policy and args.connection is not None:
        raise SystemExit("--compare-policy starts its own devnets: drop --connection")

    procs: list[subprocess.Popen[str]] = []
    tmps: list[tempfile.TemporaryDirectory[str]] = []
    targets: list[tuple[Path, CpuMeter]] = []
    if args.connection is None:
        policies = [POLICIES.get(p, p) for p in [args.policy, *args.compare_policy]]
        for policy in policies:
            tmp = tempfile.TemporaryDirectory(prefix="mip-bench-")
            tmps.append(tmp)
            proc = start_devnet(Path(tmp.name), ["--policy", policy, *args.devnet_arg])
            procs.append(proc)
            targets.append((Path(tmp.name) / "connection.json",
                            CpuMeter(proc.pid, main_thread=True)))
    else:
        policies = ["(as deployed)"]
        targets.append((args.connection, CpuMeter(None)))
    try:
        results = run(bench(targets, args))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=20)
        for tmp in tmps:
            tmp.cleanup()
    report = meta.report({
        "target": "devnet" if args.connection is None else str(args.connection),
        "client": "gateway.fabric",
        "runs": [{"policy": p, "results": r} for p, r in zip(policies, results, strict=True)],
    }, event_loop=loop_name())
    print_report(report)
    emit_json(args, report)
    return 0


def emit_json(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """`--json`: the report as the last line printed; `--json PATH`: also written there."""
    if args.json is None:
        return
    if args.json != "-":
        write_json(Path(args.json), report)
    print(json.dumps(report))


def print_report(report: dict[str, Any]) -> None:
    start, end = report["loadavg_start"], report["loadavg_end"]
    m = report["machine"]
    print(f"machine: {m['cpu_model']}, {m['cores']} cores   event loop: {m['event_loop']}   "
          f"load average: start {' '.join(map(str, start))}, end {' '.join(map(str, end))}")
    for entry in report["runs"]:
        print(f"policy: {entry['policy']}")
        print_results(entry["results"])


# Parts of another entry of cpu_ms_per_op (devnet's main thread is inside `devnet`).
CPU_PARTS = frozenset({"devnet_main_thread"})


def cpu_total_ms(cpu_ms_per_op: dict[str, float]) -> float:
    """CPU ms per operation of every measured process together (parts not counted twice)."""
    return sum(ms for proc, ms in cpu_ms_per_op.items() if proc not in CPU_PARTS)


def cpu_bound_per_s(total_ms: float, cores: int) -> float | None:
    """The rate `cores` fully busy cores would sustain at `total_ms` CPU per operation: an
    upper bound of a quiet machine's rate that, unlike tx/s, other jobs' load hardly moves."""
    return cores * 1000 / total_ms if total_ms > 0 else None


def print_results(results: dict[str, Any]) -> None:
    cores = os.cpu_count() or 1
    for name, r in results.items():
        print(f"{name:>14}: {r['tx_per_s']:8.1f} tx/s   p50 {r['p50_ms']:7.2f} ms   "
              f"p95 {r['p95_ms']:7.2f} ms   (n={r['n']}, in flight {r['inflight']}, "
              f"median of {r['rounds']} rounds)")
        cpu = "  ".join(f"{proc} {ms:.2f}" for proc, ms in r["cpu_ms_per_op"].items())
        total = cpu_total_ms(r["cpu_ms_per_op"])
        bound = cpu_bound_per_s(total, cores)
        bound_text = "" if bound is None else f" ({cores} cores busy: {bound:.0f}/s at most)"
        print(f"{'':>14}  CPU ms per op: {cpu}   all {total:.2f}{bound_text}")


def main_fabric(args: argparse.Namespace, meta: RunMeta) -> int:
    """The rounds on the real Fabric network: a fresh one (up, deploy, down, clean) or, with
    --connection, a running one."""
    if args.compare_node:
        import bench_fabric_compare  # beside this file; imported only for this mode

        return bench_fabric_compare.main_compare(args, meta)
    if args.compare_policy:
        raise SystemExit("--compare-policy is for devnet")
    timings: dict[str, float] = {}
    tmp = None
    env = None
    if args.connection is None:
        tmp = tempfile.TemporaryDirectory(prefix="mip-bench-fabric-")
        state = Path(tmp.name) / "state"
        policy = POLICIES.get(args.policy, args.policy)
        env = fabric_env(state, args, policy)
    else:
        state = args.connection.resolve().parent
        policy = "(as deployed)"
    try:
        if env is not None:
            timings["up_s"] = round(network_sh("up", env), 1)
            timings["deploy_s"] = round(network_sh("deploy", env), 1)
        profile = state / "connection.json" if args.connection is None else args.connection
        batch_timeout = batch_timeout_of(state) or "(unknown)"
        meter = CpuMeter(None, fabric_groups(state))
        [results] = run(bench([(profile, meter)], args))
    finally:
        if env is not None:
            stop_fabric(state, env)
        if tmp is not None:
            tmp.cleanup()
    report = meta.report({
        "target": "fabric", "connection": None if args.connection is None
        else str(args.connection), "client": "gateway.fabric",
        "batch_timeout": batch_timeout, "port_offset": args.port_offset
        if args.connection is None else None, **timings,
        "runs": [{"policy": policy, "results": results}]}, event_loop=loop_name())
    print(f"target: fabric   batch timeout: {batch_timeout}")
    print_report(report)
    emit_json(args, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
