#!/usr/bin/env python3
"""What every benchmark's JSON carries besides its figures, and the percentiles they use.

A figure means little without the machine that produced it: `RunMeta` records, when a bench
starts, the UTC date, the command line, the machine (CPU model from /proc/cpuinfo, cores,
memory, OS, Python, git commit and whether the tree had uncommitted changes) and the load
average, and adds the load average at the end when the report is made. `scripts/figures.py`
refuses a JSON without these keys (`REQUIRED`), so every figure in the README names its run.

Percentiles are numpy's (`np.percentile`, linear interpolation), one definition for all the
benches.

As a command it wraps a bench that prints its figures as a JSON last line but cannot record
the machine itself (the face benches):

    python scripts/bench_meta.py --json docs/figures/NAME.json -- python scripts/bench_face.py ...

runs the command, and writes that last line with the metadata of the run around it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
# The keys scripts/figures.py insists on (machine: its sub-keys) before it renders a figure.
REQUIRED = ("bench", "date", "command", "machine", "loadavg_start", "loadavg_end")
REQUIRED_MACHINE = ("cpu_model", "cores", "memory_gib", "os", "python", "commit", "dirty")


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100) of the samples, numpy's linear interpolation."""
    arr = np.fromiter(values, dtype=float)
    if arr.size == 0:
        raise ValueError("no samples")
    return float(np.percentile(arr, q))


def median(values: Iterable[float]) -> float:
    return percentile(values, 50)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    return {"commit": commit or None,
            # The runs' own outputs (docs/figures/) do not make the measured code dirty.
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                              ":(exclude)docs/figures"))
            if commit else None}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    return {"cpu_model": cpu_model(), "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)),
            "memory_gib": memory_gib(), "os": platform.platform(),
            "python": platform.python_version(), **git_state()}


class RunMeta:
    """Started when the bench starts (date, load, command); `report()` wraps its figures."""

    def __init__(self, bench: str, argv: Sequence[str] | None = None) -> None:
        self.bench = bench
        self.started = datetime.datetime.now(datetime.UTC)
        self.loadavg_start = loadavg()
        args = list(sys.argv if argv is None else argv)
        if args and args[0].endswith(".py"):
            args[0] = str(Path(args[0]).resolve().relative_to(REPO)) if Path(
                args[0]).resolve().is_relative_to(REPO) else args[0]
            args.insert(0, "python")
        self.command = shlex.join("python" if a == sys.executable else a for a in args)

    def report(self, figures: dict[str, Any], **extra_machine: Any) -> dict[str, Any]:
        """The figures with the run's metadata first (the load average at the end is read
        now). `extra_machine` adds bench-specific facts, such as the event loop."""
        return {"bench": self.bench, "date": self.started.isoformat(timespec="seconds"),
                "command": self.command, "machine": {**machine(), **extra_machine},
                "loadavg_start": self.loadavg_start, "loadavg_end": loadavg(), **figures}


def missing_metadata(report: dict[str, Any]) -> list[str]:
    """The metadata keys a report lacks (empty: it names its run)."""
    missing = [key for key in REQUIRED if key not in report]
    found = report.get("machine")
    if isinstance(found, dict):
        missing += [f"machine.{key}" for key in REQUIRED_MACHINE if key not in found]
    return missing


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run a bench and write its last JSON line "
                                     "with the run's metadata")
    parser.add_argument("--json", type=Path, required=True, metavar="PATH")
    parser.add_argument("--bench", help="name recorded as `bench` (default: the script's)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the bench's command after --")
    name = args.bench or next((Path(a).stem for a in command if a.endswith(".py")), command[0])
    meta = RunMeta(name, command)
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        return done.returncode
    lines = done.stdout.strip().splitlines()
    try:
        figures = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        figures = None
    if not isinstance(figures, dict):
        print("bench_meta: the command's last line is not a JSON object", file=sys.stderr)
        return 2
    write_json(args.json, meta.report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (one scan of /proc), for benches that add up a process
    tree's memory or CPU."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
