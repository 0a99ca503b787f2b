"""Time the vault's `wrap` and `unwrap` with the default Argon2id cost.

    python scripts/bench_vault.py [--runs 30] [--interactive]

Prints median, p95 and max seconds per operation, wall-clock and this process's CPU time
(the latter is what the parameters cost, whatever else the machine runs), with fresh random
secrets each run; nothing secret is printed. Enrolment's p95 budget is 1.5 s overall, of
which the KDF should take about 0.2-0.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.holder import keys, vault


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"{name:8s} median {statistics.median(ordered):.3f} s  p95 {p95:.3f} s  "
            f"max {ordered[-1]:.3f} s  (n={len(ordered)})")


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
    print(_summary("wrap", wraps))
    print(_summary("unwrap", unwraps))
    print(_summary("wrap cpu", cpu))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at the end: {load:.2f}")


if __name__ == "__main__":
    main()
