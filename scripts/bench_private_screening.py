#!/usr/bin/env python3
"""Latency and memory of one consortium-wide private screening (face_engine/dedup/
private_screening.py), all parties on this machine.

    python scripts/bench_private_screening.py [--sizes 10000,100000] [--reps 5] [--json]

One enrolment at the querier's org Q is screened against the two other orgs' galleries of N
references each. Each pair (Q -> G, key holder V = the third org) runs in its own process
(the two pairs are independent and run at the same time, as two gateways would; SEAL's
bindings hold the GIL, so threads would serialise them): Q encrypts, G scores, V checks the
norm and decrypts the signs, G reads them. A screening's time is the slower pair's
(encrypt + score + decide + read), from a common start; transfers between gateways are not
counted (message sizes are reported). Q's screening of its own gallery is the plaintext
index (23 ms at 1M, docs/face.md) and is not included. What does not depend on the query
is made ahead, as the gateways do between queries, and its cost per query is reported apart
(not in the screening's time): G's block pads, the masks and re-randomising encryptions
(``ps.Rerandomisers``, made once V has answered: ``rerandomise_s``), and Q's encryptions of
zero (``ps.QueryZeros``, made once G has answered: ``query_zeros_s``).

The last line (``--json``) is a JSON object with, under a key named by each N, the
screening's ``screen_s_p50`` and ``peak_rss_mib`` (the sum of both pairs' processes' peaks:
all parties of both pairs, each holding its encoded gallery), plus the stage breakdown and
``screen_cpu_s_p50``: the CPU seconds of the slower pair, i.e. the screening's time when
each pair has a core to itself (the wall time on a machine shared with other jobs says more
about their load than about the protocol).
``merge_into(report, figures)`` adds these keys to another bench's per-N objects
(scripts/bench_dedup.py's ``fpir`` / ``fnir``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_meta import RunMeta, percentile

THRESHOLD = 0.418


def _pair(index: int, n: int, reps: int, seed: int, barrier: Barrier,
          conn: Connection) -> None:
    from face_engine.dedup import private_screening as ps
    from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample

    rng = np.random.default_rng(seed * 100 + index)
    ctx = ps.Context()
    holder = ps.KeyHolder.generate(ctx)  # V
    bundle = ps.load_public_bundle(ctx, holder.public_bundle())  # what Q and G hold
    refs = FaceLikeDistribution.parametric(ps.DIM, rng).sample(n, rng)
    started = time.perf_counter()
    gallery = ps.encode_gallery(ctx, refs)
    encode_s = time.perf_counter() - started
    # G's pads and Q's encryptions of zero for the first query, and the cost of making one
    # query's (off its path)
    zeros = ps.Rerandomisers(ctx, bundle)
    t0 = time.perf_counter()
    zeros.fill(len(gallery.blocks))
    rerandomise_s = time.perf_counter() - t0
    query_zeros = ps.QueryZeros(ctx, bundle)
    t0 = time.perf_counter()
    query_zeros.fill(ps.QUERY_CTS)
    query_zeros_s = time.perf_counter() - t0
    runs = []
    for _ in range(reps):
        target = int(rng.integers(n))
        query = mated_sample(refs[target], 0.7, rng)[0]
        barrier.wait()
        c0 = time.process_time()
        t0 = time.perf_counter()
        message = ps.encrypt_query(ctx, bundle, query, zeros=query_zeros)
        t1 = time.perf_counter()
        scored = ps.score_query(ctx, bundle, gallery, message, THRESHOLD, zeros=zeros)
        t2 = time.perf_counter()
        answer = ps.decide(ctx, holder, scored.message)
        t3 = time.perf_counter()
        hits = ps.matches(scored.secret, answer)
        t4 = time.perf_counter()
        cpu = time.process_time() - c0
        zeros.fill(len(gallery.blocks))  # the gateway does this once V has answered
        query_zeros.fill(ps.QUERY_CTS)  # and Q once G has answered
        want = ps.plaintext_reference(refs, query, THRESHOLD)
        runs.append({"start": t0, "end": t4, "cpu_s": cpu, "encrypt_s": t1 - t0, "score_s": t2 - t1,
                     "decide_s": t3 - t2, "read_s": t4 - t3,
                     "correct": bool(target in set(hits.tolist())
                                     and set(hits.tolist()) == set(want.tolist())),
                     "up_mib": len(message) / 2**20, "to_v_mib": len(scored.message) / 2**20,
                     "to_g_kib": len(answer) / 1024})
    conn.send({"encode_s": encode_s, "rerandomise_s": rerandomise_s,
               "query_zeros_s": query_zeros_s, "runs": runs,
               "blocks": len(gallery.blocks),
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})
    conn.close()


def measure(n: int, reps: int, seed: int = 1) -> dict[str, Any]:
    spawn = mp.get_context("spawn")
    barrier = spawn.Barrier(2)
    pipes, procs = [], []
    for index in range(2):
        parent, child = spawn.Pipe(duplex=False)
        proc = spawn.Process(target=_pair, args=(index, n, reps, seed, barrier, child))
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    results = [p.recv() for p in pipes]
    for proc in procs:
        proc.join()
    screens = [max(r["runs"][k]["end"] for r in results)
               - min(r["runs"][k]["start"] for r in results) for k in range(reps)]
    # CPU seconds of the slower pair: what the screening takes with a free core per pair
    cpu = [max(r["runs"][k]["cpu_s"] for r in results) for k in range(reps)]

    def p50(key: str) -> float:
        return round(percentile([run[key] for r in results for run in r["runs"]], 50), 3)

    return {
        "screen_s_p50": round(percentile(screens, 50), 3),
        "screen_s_max": round(max(screens), 3),
        "screen_cpu_s_p50": round(percentile(cpu, 50), 3),
        "peak_rss_mib": round(sum(r["peak_rss_mib"] for r in results), 1),
        "peak_rss_mib_per_pair": round(max(r["peak_rss_mib"] for r in results), 1),
        "encrypt_s_p50": p50("encrypt_s"), "score_s_p50": p50("score_s"),
        "decide_s_p50": p50("decide_s"), "read_s_p50": p50("read_s"),
        "rerandomise_s": round(max(r["rerandomise_s"] for r in results), 3),
        "query_zeros_s": round(max(r["query_zeros_s"] for r in results), 3),
        "encode_gallery_s": round(max(r["encode_s"] for r in results), 2),
        "blocks_per_gallery": results[0]["blocks"],
        "query_mib": round(results[0]["runs"][0]["up_mib"], 1),
        "scores_to_key_holder_mib": round(results[0]["runs"][0]["to_v_mib"], 1),
        "bits_to_gallery_kib": round(results[0]["runs"][0]["to_g_kib"], 1),
        "all_answers_equal_plaintext": all(run["correct"] for r in results
                                           for run in r["runs"]),
        "reps": reps,
    }


def merge_into(report: dict[str, Any], figures: dict[str, dict[str, Any]]) -> None:
    """Add the screening's keys to ``report``'s per-N objects (keys named by N)."""
    for size, values in figures.items():
        report.setdefault(size, {}).update(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--note", default="", help="e.g. 'machine shared with other jobs'")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    meta = RunMeta("private_screening")
    figures: dict[str, Any] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        figures[str(size)] = measure(size, args.reps, args.seed)
        print(f"N={size:>9,}: " + ", ".join(f"{k}={v}" for k, v in figures[str(size)].items()),
              file=sys.stderr, flush=True)
    report = meta.report({**figures, "note": args.note, "threshold": THRESHOLD})
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
