#!/usr/bin/env python3
"""Private screening past one machine: one gallery's references partitioned over k hosts.

    python scripts/bench_screening_hosts.py [--size 100000] [--hosts 1,2,4,8] [--reps 3] [--json]

G's blocks are independent (face_engine/dedup/private_screening.py: each block's score needs
only the query and that block's plaintexts), so G can give each of k hosts a share of its
references: each host encodes its share once, receives the same query ciphertexts, runs
``score_query`` on its share (its own norm ciphertext, masks, shuffle and decoys) and sends
its message to V; V checks each share's norm before releasing that share's bits (the same
check, once per share); each host reads its bits; G adds the share's offset to the indices.
Every share is a smaller gallery under the unchanged protocol, so the security argument of
docs/face.md 5b holds per share (V learns the shares' sizes, as it learns a gallery's size).

Measured here, for one gallery of ``--size`` references and each k: every host runs in its
own process, one after the other, so that each host's CPU seconds are what it takes on a
machine of its own (this machine has 2 cores; k hosts at once would share them). Per
query: Q's encryption (CPU s), the slowest host's scoring (CPU s), V's checks and
decryptions of all shares (CPU s, one V) and the hosts' reading of the bits. The screening's
time with one core per host is ``q_encrypt + max(host score) + v_decide + max(host read)``
(``critical_cpu_s``), transfers not counted (``query_mib`` to each host, ``to_v_mib`` from
all hosts together). ``correct``: the union of the shares' matches equals the plaintext
reference's on every query. The last line (``--json``) is a JSON object keyed by k.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_meta import RunMeta, percentile

THRESHOLD = 0.418


def _peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM (ru_maxrss of a spawned process also counts the
    parent's pages at the fork before its exec, here the whole gallery's references)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _host(share: np.ndarray, bundle_bytes: bytes, queries: list[bytes],
          conn: Connection) -> None:
    """One of G's hosts: encode its share, score every query, return messages and times."""
    from face_engine.dedup import private_screening as ps

    ctx = ps.Context()
    bundle = ps.load_public_bundle(ctx, bundle_bytes)
    t0 = time.process_time()
    gallery = ps.encode_gallery(ctx, share)
    encode_s = time.process_time() - t0
    scored = []
    for message in queries:
        c0 = time.process_time()
        result = ps.score_query(ctx, bundle, gallery, message, THRESHOLD)
        scored.append((time.process_time() - c0, result.message, result.secret))
    conn.send({"encode_s": encode_s, "scored": scored, "blocks": len(gallery.blocks),
               "peak_rss_mib": _peak_rss_mib()})
    conn.close()


def _run_host(share: np.ndarray, bundle_bytes: bytes, queries: list[bytes]) -> dict[str, Any]:
    spawn = mp.get_context("spawn")
    parent, child = spawn.Pipe(duplex=False)
    proc = spawn.Process(target=_host, args=(share, bundle_bytes, queries, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def measure(size: int, hosts: int, reps: int, seed: int = 1) -> dict[str, Any]:
    from face_engine.dedup import private_screening as ps
    from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample

    rng = np.random.default_rng(seed)
    refs = FaceLikeDistribution.parametric(ps.DIM, rng).sample(size, rng)
    ctx = ps.Context()
    holder = ps.KeyHolder.generate(ctx)  # V
    bundle_bytes = holder.public_bundle()
    bundle = ps.load_public_bundle(ctx, bundle_bytes)  # Q's copy
    targets = [int(rng.integers(size)) for _ in range(reps)]
    plain = [mated_sample(refs[t], 0.7, rng)[0] for t in targets]
    encrypt_s, queries = [], []
    for q in plain:  # Q
        c0 = time.process_time()
        queries.append(ps.encrypt_query(ctx, bundle, q))
        encrypt_s.append(time.process_time() - c0)
    bounds = np.linspace(0, size, hosts + 1).astype(int)
    shares = [_run_host(refs[lo:hi], bundle_bytes, queries)
              for lo, hi in itertools.pairwise(bounds)]
    critical, decide_all, score_max, correct = [], [], [], True
    for k in range(reps):
        decide_s, read_s, hits = 0.0, [], []
        for lo, share in zip(bounds[:-1], shares, strict=True):
            _, message, secret = share["scored"][k]
            c0 = time.process_time()
            answer = ps.decide(ctx, holder, message)  # V, once per share
            c1 = time.process_time()
            hits.append(lo + ps.matches(secret, answer))  # the host, then G's offset
            decide_s += c1 - c0
            read_s.append(time.process_time() - c1)
        slowest = max(share["scored"][k][0] for share in shares)
        got = set(np.concatenate(hits).tolist())
        want = set(ps.plaintext_reference(refs, plain[k], THRESHOLD).tolist())
        correct = correct and got == want and targets[k] in got
        score_max.append(slowest)
        decide_all.append(decide_s)
        critical.append(encrypt_s[k] + slowest + decide_s + max(read_s))
    return {
        "hosts": hosts,
        "references_per_host": int(np.max(np.diff(bounds))),
        "blocks_per_host": max(share["blocks"] for share in shares),
        "critical_cpu_s_p50": round(percentile(critical, 50), 3),
        "q_encrypt_cpu_s_p50": round(percentile(encrypt_s, 50), 3),
        "host_score_cpu_s_p50": round(percentile(score_max, 50), 3),
        "v_decide_cpu_s_p50": round(percentile(decide_all, 50), 3),
        "host_encode_cpu_s": round(max(share["encode_s"] for share in shares), 2),
        "host_peak_rss_mib": round(max(share["peak_rss_mib"] for share in shares), 1),
        "query_mib": round(len(queries[0]) / 2**20, 1),
        "to_v_mib": round(sum(len(share["scored"][0][1]) for share in shares) / 2**20, 1),
        "correct": correct,
        "reps": reps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--hosts", default="1,2,4,8")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--note", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    meta = RunMeta("screening_hosts")
    figures: dict[str, Any] = {}
    for hosts in (int(h) for h in args.hosts.split(",")):
        figures[str(hosts)] = measure(args.size, hosts, args.reps, args.seed)
        print(f"k={hosts}: " + ", ".join(f"{k}={v}" for k, v in figures[str(hosts)].items()),
              file=sys.stderr, flush=True)
    report = meta.report({**figures, "size": args.size, "note": args.note,
                          "threshold": THRESHOLD})
    if args.json:
        print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
