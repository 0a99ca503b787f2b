"""Time the vault's `wrap` and `unwrap` with the default Argon2id cost.

    python scripts/bench_vault.py [--runs 30] [--interactive]

Prints median, p95 and max seconds per operation (numpy percentiles; the last line is the same
as JSON), wall-clock and this process's CPU time
(the latter is what the parameters cost, whatever else the machine runs), with fresh random
secrets each run; nothing secret is printed. Enrolment's p95 budget is 1.5 s overall, of
which the KDF should take about 0.2-0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from gateway.holder import keys, vault


def _stats(samples: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(samples, [50, 95])
    return {"p50_s": round(float(p50), 4), "p95_s": round(float(p95), 4),
            "max_s": round(max(samples), 4), "n": len(samples)}


def _summary(name: str, stats: dict[str, float]) -> str:
    return (f"{name:8s} median {stats['p50_s']:.3f} s  p95 {stats['p95_s']:.3f} s  "
            f"max {stats['max_s']:.3f} s  (n={stats['n']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--interactive", action="store_true",
                        help="time INTERACTIVE_KDF (the tests' profile) instead of DEFAULT_KDF")
    args = parser.parse_args()
    kdf = vault.INTERACTIVE_KDF if args.interactive else vault.DEFAULT_KDF
    password = os.urandom(12).hex()
    wraps: list[float] = []
    unwraps: list[float] = []
    cpu: list[float] = []
    for _ in range(args.runs):
        master = keys.new_master_secret()
        face_key = vault.new_face_key()
        pid = keys.passport_id(master)
        start, cpu_start = time.perf_counter(), time.process_time()
        blob = vault.wrap(master, password, face_key, pid, kdf=kdf)
        wraps.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        start = time.perf_counter()
        if vault.unwrap(blob, password, face_key, pid) != master:
            raise SystemExit("round trip failed")
        unwraps.append(time.perf_counter() - start)
    print(f"Argon2id opslimit {kdf.opslimit}, memlimit {kdf.memlimit // (1024 * 1024)} MiB, "
          f"{os.cpu_count()} CPUs")
    stats = {"wrap": _stats(wraps), "unwrap": _stats(unwraps), "wrap_cpu": _stats(cpu)}
    for key, figures in stats.items():
        print(_summary(key.replace("_", " "), figures))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at the end: {load:.2f}")
    # Last line: the figures as JSON, for scripts/bench_meta.py to wrap with the run's machine.
    print(json.dumps({"opslimit": kdf.opslimit, "memlimit_mib": kdf.memlimit // (1024 * 1024),
                      **stats}))


if __name__ == "__main__":
    main()
