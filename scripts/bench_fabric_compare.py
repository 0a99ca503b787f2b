"""Same-run comparison of chaincode runtimes on real Fabric (bench_ledger --compare-node).

Two chaincodes on one channel, each served as a service by every org and committed with the same
endorsement policy: the project's Python shim running the asset contract
(`chaincode.contracts.asset:AssetContract`, default name `mipasset`) and Fabric's official Node
runtime (npm's fabric-shim 2.5 in CCaaS server mode) running scripts/node_chaincode (`nodeasset`),
which does the same ledger work: CreateAsset = one read + one ~200-byte JSON write, ReadAsset =
one read. Everything else (orderer, peers, Gateway, client) is shared, so the two are measured
under the same conditions.

Rounds alternate, and the order inside a round flips each round (python first, then node first):
each round runs, per runtime, N submits and then N evaluates with `inflight` in flight. The
figures are medians over the rounds: submits/s, evaluates/s, p50 latencies, and the CPU time
the runtime's chaincode servers (all three orgs' servers, with their children) spent per
submit and per evaluate, from /proc/<pid>/stat. With MAJORITY two servers endorse each submit,
so CPU per endorsement is half the per-submit figure.

Run it through `scripts/bench_ledger.py --target fabric --compare-node` (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import bench_ledger as bl
from bench_meta import RunMeta, median, percentile

from gateway.fabric import Gateway
from network.devnet.event_loop import loop_name, run

RUNTIMES = ("python", "node")
# CreateAsset's stored JSON is about this long (the "~200-byte JSON write").
TARGET_JSON_BYTES = 200
_JSON_FRAME = '{"AppraisedValue":100,"Color":"blue","ID":"","Owner":"","Size":5}'


def asset_json(asset_id: str, owner: str) -> bytes:
    """The bytes either contract stores for CreateAsset(asset_id, blue, 5, owner, 100)."""
    return json.dumps({"AppraisedValue": 100, "Color": "blue", "ID": asset_id, "Owner": owner,
                       "Size": 5}, separators=(",", ":")).encode()


Rounds = list[dict[str, dict[str, dict[str, float]]]]  # round -> runtime -> mode -> figure


def owner_for(id_length: int) -> str:
    """An owner string that brings the stored JSON to TARGET_JSON_BYTES for ids this long."""
    return "bench-owner-".ljust(max(1, TARGET_JSON_BYTES - len(_JSON_FRAME) - id_length), "x")


def chaincode_pids(state: Path, name: str) -> list[int]:
    """Live chaincode servers network.sh started for chaincode `name` (cc-NAME-ORG.pid)."""
    out = []
    for file in sorted((state / "pids").glob(f"cc-{name}-*.pid")):
        pid, start = file.read_text().split()
        if bl.start_time(int(pid)) == start:
            out.append(int(pid))
    return out


def deploy_env(env: dict[str, str], runtime: str, name: str) -> dict[str, str]:
    """network.sh deploy settings for one runtime's chaincode (its own ports and package)."""
    if runtime == "python":
        return {**env, "MIP_CHAINCODE_NAME": name, "MIP_CHAINCODE_PORT": "7059",
                "MIP_CHAINCODE_RUNTIME": "python", "MIP_CHAINCODE_CONTRACT": bl.ASSET_CONTRACT}
    return {**env, "MIP_CHAINCODE_NAME": name, "MIP_CHAINCODE_PORT": "7060",
            "MIP_CHAINCODE_RUNTIME": "node"}


def round_order(round_index: int) -> tuple[str, str]:
    """Which runtime goes first in this round: alternating, so neither always runs second."""
    return RUNTIMES if round_index % 2 == 0 else (RUNTIMES[1], RUNTIMES[0])


def summarize(rounds: Rounds, endorsers: int | None) -> dict[str, Any]:
    """Medians per runtime and mode over the rounds, and the python/node ratios."""
    out: dict[str, Any] = {}
    for runtime in RUNTIMES:
        per: dict[str, Any] = {}
        for mode in ("submit", "evaluate"):
            rows = [r[runtime][mode] for r in rounds]
            per[mode] = {key: round(median(row[key] for row in rows), 3)
                         for key in rows[0]}
            per[mode]["tx_per_s_rounds"] = [round(row["tx_per_s"], 1) for row in rows]
        cpu = per["submit"]["cc_cpu_ms"]
        per["cc_cpu_ms_per_submit"] = cpu
        per["cc_cpu_ms_per_endorsement"] = None if not endorsers else round(cpu / endorsers, 3)
        per["cc_cpu_ms_per_evaluate"] = per["evaluate"]["cc_cpu_ms"]
        out[runtime] = per
    py, node = out["python"], out["node"]
    # Ratios within each round (both runtimes measured minutes apart under the same load),
    # then their median: steadier than the ratio of medians when the machine's load drifts.
    out["paired_ratio_median"] = {
        f"{mode}_tx_per_s": round(median(
            r["python"][mode]["tx_per_s"] / r["node"][mode]["tx_per_s"] for r in rounds), 3)
        for mode in ("submit", "evaluate")}
    out["ratio_python_over_node"] = {
        "submit_tx_per_s": round(py["submit"]["tx_per_s"] / node["submit"]["tx_per_s"], 3),
        "evaluate_tx_per_s": round(py["evaluate"]["tx_per_s"] / node["evaluate"]["tx_per_s"], 3),
        "cc_cpu_ms_per_submit": round(py["cc_cpu_ms_per_submit"] / node["cc_cpu_ms_per_submit"],
                                      3) if node["cc_cpu_ms_per_submit"] else None,
    }
    return out


async def _phase(op: Callable[[int], Awaitable[Any]], n: int, inflight: int,
                 pids: list[int], groups: dict[str, list[int]]) -> dict[str, float]:
    meter = bl.CpuMeter(None, {"cc": pids, **groups})
    before = meter.sample()
    rate, latencies = await bl.run_mode(op, n, inflight)
    after = meter.sample()
    row = {"tx_per_s": rate, "p50_ms": percentile(latencies, 50) * 1000,
           "p95_ms": percentile(latencies, 95) * 1000}
    for name in after:
        row[f"{name}_cpu_ms"] = (after[name] - before[name]) * 1000 / n
    return row


async def compare(profile: Path, state: Path, names: dict[str, str],
                  args: argparse.Namespace) -> tuple[Rounds, int]:
    """The alternating rounds; also the length of the JSON CreateAsset stores."""
    gw = Gateway.from_connection(profile, args.org, args.user)
    network = gw.get_network(args.channel)
    contracts = {rt: network.get_contract(names[rt]) for rt in RUNTIMES}
    pids = {rt: chaincode_pids(state, names[rt]) for rt in RUNTIMES}
    for rt in RUNTIMES:
        if len(pids[rt]) != 3:
            raise SystemExit(f"{names[rt]}: expected 3 running chaincode servers, found "
                             f"{len(pids[rt])} (pid files in {state / 'pids'})")
    shared = {k: v for k, v in bl.fabric_groups(state).items() if k != "chaincode"}
    run_id = uuid.uuid4().hex[:8]
    id_length = len(f"cmp-{run_id}-0-00000-{uuid.uuid4().hex[:6]}")
    owner = owner_for(id_length)
    read_id = f"cmp-{run_id}-read"

    def submit_op(rt: str, round_index: int) -> Callable[[int], Awaitable[Any]]:
        async def op(i: int) -> None:
            asset_id = f"cmp-{run_id}-{round_index}-{i:05d}-{uuid.uuid4().hex[:6]}"
            await contracts[rt].submit("CreateAsset", [asset_id, "blue", "5", owner, "100"])
        return op

    def evaluate_op(rt: str) -> Callable[[int], Awaitable[Any]]:
        async def op(_: int) -> None:
            await contracts[rt].evaluate("ReadAsset", [read_id])
        return op

    # Warm both runtimes the same way before anything is measured: V8 optimises the Node
    # runtime's hot paths only after some thousands of calls (a first run with 50 submits and 200
    # evaluates of warm-up had Node's first two rounds of evaluates at a quarter of its later
    # rate), and both need their gRPC streams and caches up.
    for rt in RUNTIMES:
        await contracts[rt].submit("CreateAsset", [read_id, "blue", "5", owner, "100"])
        stored = await contracts[rt].evaluate("ReadAsset", [read_id])
        if stored != asset_json(read_id, owner):
            raise SystemExit(f"{names[rt]} stored {stored!r}, not the asset JSON")
        await bl.run_mode(submit_op(rt, -1), args.compare_warmup, args.inflight)
        await bl.run_mode(evaluate_op(rt), args.compare_warmup * 5, args.inflight)

    rounds: Rounds = []
    for r in range(args.compare_rounds):
        row: dict[str, dict[str, dict[str, float]]] = {rt: {} for rt in RUNTIMES}
        order = round_order(r)
        for rt in order:
            row[rt]["submit"] = await _phase(submit_op(rt, r), args.n, args.inflight,
                                             pids[rt], shared)
        for rt in order:
            row[rt]["evaluate"] = await _phase(evaluate_op(rt), args.n, args.inflight,
                                               pids[rt], shared)
        rounds.append(row)
        print(f"round {r + 1}/{args.compare_rounds} ({order[0]} first): " + "   ".join(
            f"{rt} {row[rt]['submit']['tx_per_s']:.0f} submits/s "
            f"{row[rt]['evaluate']['tx_per_s']:.0f} evaluates/s "
            f"cc {row[rt]['submit']['cc_cpu_ms']:.2f} ms/submit" for rt in RUNTIMES), flush=True)
    await gw.close()
    return rounds, len(asset_json(read_id.replace("read", "0-00000-" + "0" * 6), owner))


def endorsers_of(policy: str) -> int | None:
    """Endorsements per transaction the Gateway collects under `policy`."""
    if policy == bl.POLICIES["majority"]:
        return 2
    if policy == bl.POLICIES["mip"]:
        return 1
    return None


def main_compare(args: argparse.Namespace, meta: RunMeta) -> int:
    """A fresh network (up, both deploys, rounds, down + clean) or, with --connection, a
    running one where both chaincodes are deployed."""
    names = {"python": args.python_chaincode, "node": args.node_chaincode}
    timings: dict[str, float] = {}
    tmp = None
    env = None
    if args.connection is None:
        tmp = tempfile.TemporaryDirectory(prefix="mip-bench-compare-")
        state = Path(tmp.name) / "state"
        policy = bl.POLICIES.get(args.policy, args.policy)
        env = bl.fabric_env(state, args, policy)
    else:
        state = args.connection.resolve().parent
        policy = "(as deployed)"
    try:
        if env is not None:
            timings["up_s"] = round(bl.network_sh("up", env), 1)
            for rt in RUNTIMES:
                timings[f"deploy_{rt}_s"] = round(
                    bl.network_sh("deploy", deploy_env(env, rt, names[rt])), 1)
        profile = args.connection or state / f"connection.{names['python']}.json"
        batch_timeout = bl.batch_timeout_of(state) or "(unknown)"
        t0 = time.monotonic()
        rounds, json_bytes = run(compare(profile, state, names, args))
        took = time.monotonic() - t0
    finally:
        if env is not None:
            bl.stop_fabric(state, env)
        if tmp is not None:
            tmp.cleanup()
    summary = summarize(rounds, endorsers_of(policy))
    report = meta.report({"target": "fabric", "compare": "python-shim vs node fabric-shim",
              "chaincodes": names, "policy": policy, "batch_timeout": batch_timeout,
              "n": args.n, "inflight": args.inflight, "rounds": args.compare_rounds,
              "stored_json_bytes": json_bytes,
              **timings, "measure_s": round(took, 1),
              "summary": summary, "per_round": rounds}, event_loop=loop_name())
    print_summary(report)
    bl.emit_json(args, report)
    return 0


def print_summary(report: dict[str, Any]) -> None:
    s = report["summary"]
    ls, le = report["loadavg_start"], report["loadavg_end"]
    print(f"policy: {report['policy']}   batch timeout: {report['batch_timeout']}   "
          f"{report['inflight']} in flight, n={report['n']} per phase, medians of "
          f"{report['rounds']} alternating rounds   stored JSON {report['stored_json_bytes']} B   "
          f"load {ls[0]:.2f} -> {le[0]:.2f}")
    for rt in RUNTIMES:
        r = s[rt]
        per_end = r["cc_cpu_ms_per_endorsement"]
        print(f"{rt:>7}: {r['submit']['tx_per_s']:7.1f} submits/s (p50 "
              f"{r['submit']['p50_ms']:.1f} ms)  {r['evaluate']['tx_per_s']:7.1f} evaluates/s "
              f"(p50 {r['evaluate']['p50_ms']:.2f} ms)  chaincode CPU "
              f"{r['cc_cpu_ms_per_submit']:.3f} ms/submit"
              + (f" ({per_end:.3f} per endorsement)" if per_end is not None else "")
              + f", {r['cc_cpu_ms_per_evaluate']:.3f} ms/evaluate")
    ratio = s["ratio_python_over_node"]
    print(f"python/node: submits/s x{ratio['submit_tx_per_s']:.2f}   evaluates/s "
          f"x{ratio['evaluate_tx_per_s']:.2f}   chaincode CPU per submit "
          f"x{ratio['cc_cpu_ms_per_submit']:.2f}   (median of per-round ratios: submits/s "
          f"x{s['paired_ratio_median']['submit_tx_per_s']:.2f}, evaluates/s "
          f"x{s['paired_ratio_median']['evaluate_tx_per_s']:.2f})")
