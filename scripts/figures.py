#!/usr/bin/env python3
"""Render the figure tables of README.md and docs/*.md from the benchmarks' JSON files.

Every figure table sits between two markers naming its renderer and its source files, which
live in docs/figures/ (one JSON per bench run, written by the bench's `--json PATH`):

    <!-- figures:ledger ledger-devnet-mip.json ledger-devnet-or.json -->
    ...rendered; never edited by hand...
    <!-- /figures:ledger -->

    python scripts/figures.py           # rewrite every block from its files
    python scripts/figures.py --check   # exit 1 and print a diff if a block differs

Each block starts with one line per source naming the run: the file, machine (CPU model,
cores, memory), date, commit and load average. A JSON without that metadata
(scripts/bench_meta.py REQUIRED) is refused. A ratio between two sides is rendered only when
both come from the same file, i.e. were measured in one run; rows from different files are
shown side by side without one.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_meta import missing_metadata

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
BLOCK = re.compile(
    r"(?P<open><!-- figures:(?P<name>[a-z0-9-]+)(?P<args>(?: [A-Za-z0-9._-]+)*) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- /figures:(?P=name) -->)", re.DOTALL)

Report = dict[str, Any]


class FigureError(Exception):
    """A block that cannot be rendered: unknown renderer, missing or incomplete JSON."""


def documents(repo: Path) -> list[Path]:
    """The files whose figure blocks are rendered: the README and the docs (not the
    docs/figures/ README, which explains the scheme)."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def load(name: str, figures: Path) -> Report:
    path = figures / name
    try:
        report = json.loads(path.read_text())
    except OSError as exc:
        raise FigureError(f"{name}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise FigureError(f"{name}: not JSON ({exc})") from None
    if not isinstance(report, dict):
        raise FigureError(f"{name}: not a JSON object")
    missing = missing_metadata(report)
    if missing:
        raise FigureError(f"{name}: no machine metadata ({', '.join(missing)}); "
                          "write it with the bench's --json PATH (scripts/bench_meta.py)")
    return report


# --- pieces ------------------------------------------------------------------------------------


def num(value: float, digits: int = 1) -> str:
    return f"{value:,.{digits}f}"


def load_range(report: Report) -> str:
    """The 1-minute load average at start and end (an older run recorded only one)."""
    start, end = report["loadavg_start"], report["loadavg_end"]
    if start is None or end is None or end[0] is None:
        known, when = (end, "end") if start is None else (start, "start")
        return f"{known[0]:.2f} at the {when}"
    return f"{start[0]:.2f} → {end[0]:.2f}"


def run_line(name: str, report: Report) -> str:
    """The sentence that says where a file's figures come from."""
    m = report["machine"]
    commit = (m["commit"] or "?")[:7] + (" + uncommitted changes" if m["dirty"] else "")
    later = (" (metadata completed after the run: `metadata_added_later` in the file)"
             if report.get("metadata_added_later") else "")
    return (f"Run `{name}`: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
            f"Python {m['python']}{later}; {report['date'][:16].replace('T', ' ')} UTC; "
            f"commit {commit}; load average (1 min) {load_range(report)}.")


def provenance(names: list[str], reports: list[Report]) -> list[str]:
    return [f"*{run_line(n, r)}*" for n, r in zip(names, reports, strict=True)]


def ratio(a: float, b: float) -> str:
    return f"×{a / b:.2f}" if b else "—"


# --- renderers ---------------------------------------------------------------------------------


def ledger_runs(report: Report) -> list[tuple[str, dict[str, Any]]]:
    """(policy, results) of each policy the file measured (older files: one)."""
    if "runs" in report:
        return [(r["policy"], r["results"]) for r in report["runs"]]
    return [(report["policy"], report["results"])]


# Policies the bench measures, by what they mean (anything else is shown as written).
POLICY_NAMES = {
    "OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')":
        "MIP's: 2 of the 3 orgs",
    "OR('HospitalMSP.peer','SchoolMSP.peer','PharmacyMSP.peer')": "any one org (MIP's before)",
    "MAJORITY Endorsement": "Fabric's MAJORITY",
}


def policy_name(policy: str) -> str:
    return POLICY_NAMES.get(policy, f"`{policy}`")


def cpu_text(cpu: dict[str, float]) -> str:
    order = [p for p in ("devnet", "orderer", "peers", "chaincode", "client") if p in cpu]
    return " / ".join(f"{cpu[p]:.2f}" for p in order) + f" ({' / '.join(order)})"


def render_ledger(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_ledger.py: one row per (run, policy); ratios between policies of a run."""
    rows = ["| run | policy | submits/s, sequential (p50 / p95 ms) | submits/s, 16 in flight "
            "(p50 / p95 ms) | evaluates/s, sequential / 16 in flight | CPU ms per submit, "
            "16 in flight |", "|---|---|---|---|---|---|"]
    notes: list[str] = []
    for name, report in zip(names, reports, strict=True):
        runs = ledger_runs(report)
        for policy, r in runs:
            seq, par = r["submit_seq"], r["submit_16"]
            rows.append(
                f"| `{name}` ({report['target']}) | {policy_name(policy)} | {num(seq['tx_per_s'])} "
                f"({seq['p50_ms']:.1f} / {seq['p95_ms']:.1f}) | **{num(par['tx_per_s'])}** "
                f"({par['p50_ms']:.1f} / {par['p95_ms']:.1f}) | "
                f"{num(r['evaluate_seq']['tx_per_s'], 0)} / "
                f"{num(r['evaluate_16']['tx_per_s'], 0)} | {cpu_text(par['cpu_ms_per_op'])} |")
        base_policy, base = runs[0]
        for policy, r in runs[1:]:
            notes.append(
                f"Same run (`{name}`), {policy_name(base_policy)} against "
                f"{policy_name(policy)}: submits/s "
                f"{ratio(base['submit_16']['tx_per_s'], r['submit_16']['tx_per_s'])} with 16 "
                f"in flight, {ratio(base['submit_seq']['tx_per_s'], r['submit_seq']['tx_per_s'])}"
                f" sequential; evaluates/s "
                f"{ratio(base['evaluate_16']['tx_per_s'], r['evaluate_16']['tx_per_s'])}.")
    for name, report in zip(names, reports, strict=True):
        for policy, r in ledger_runs(report):
            if report["target"] == "devnet" and policy.startswith("OutOf(2,"):
                notes.append(ledger_goals(name, r, report))
    return rows + (["", *notes] if notes else [])


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def load_caveat(report: Report) -> str:
    """Said after a goal's verdict when other jobs wanted more than the machine's cores:
    then the run tells more about the load than about the code."""
    loads = [x[0] for x in (report["loadavg_start"], report["loadavg_end"])
             if x is not None and x[0] is not None]
    cores = report["machine"]["cores"]
    if loads and max(loads) > cores:
        return (f" — measured at load {max(loads):.1f} on {cores} cores, an overloaded "
                "machine: rerun on a quiet one before judging the goal")
    return ""


def ledger_goals(name: str, r: dict[str, Any], report: Report) -> str:
    """Issue #13's goals, for a devnet run under MIP's policy."""
    seq, par = r["submit_seq"], r["submit_16"]
    return (f"Goals (`{name}`, the policy MIP deploys): sequential submit p50 ≤ 20 ms: "
            f"{met(seq['p50_ms'] <= 20)} ({seq['p50_ms']:.1f} ms); ≥ 500 submits/s with 16 in "
            f"flight: {met(par['tx_per_s'] >= 500)} ({num(par['tx_per_s'])}/s)"
            f"{load_caveat(report)}.")


def render_mip(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_mip.py: per transaction p50 / p95 and CPU; the dispense race."""
    out: list[str] = []
    for name, report in zip(names, reports, strict=True):
        out += [f"`{name}`: n = {report['n']} sequential rounds after {report['warmup']} "
                f"warm-up, policy {policy_name(report['policy'])}.", "",
                "| transaction | p50 ms | p95 ms | CPU ms, devnet / chaincode / client |",
                "|---|---|---|---|"]
        for tx, r in report["results"].items():
            cpu = r["cpu_ms"]
            out.append(f"| {tx} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                       f"{cpu.get('devnet', 0):.1f} / {cpu.get('chaincode', 0):.1f} / "
                       f"{cpu.get('client', 0):.1f} |")
        out += ["", f"One KYC presentation (`Account:Open`) verified in "
                f"{report['kyc_verify_ms']} ms in the bench's process."]
        race = report.get("race")
        if race:
            failures = ", ".join(f"{count} {code}" for code, count in race["failures"].items())
            out.append(f"Dispense race: {race['concurrent']} concurrent dispenses of a "
                       f"one-fill prescription, {race['successes']} succeeded "
                       f"({failures or 'no failure'}); fills used {race['fills_used']} of "
                       f"{race['fills_allowed']}.")
    return out


def render_gateway(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_gateway.py: pickup wait and enrolment, one row per run."""
    rows = ["| run | mode, counters | pickup wait p50 / p95 ms | create / verdict / dispense "
            "p95 ms | pickups/s | enrolment p50 / p95 s (enrolled, refused) |",
            "|---|---|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        rows.append(
            f"| `{name}` | {r['mode']}, {r['counters']} | **{r['total_p50_ms']:.0f} / "
            f"{r['total_p95_ms']:.0f}** | {r['create_p95_ms']:.0f} / {r['verdict_p95_ms']:.0f}"
            f" / {r['dispense_p95_ms']:.0f} | {r['pickups_per_s']:.2f} | "
            f"{r['enrol_p50_s']:.2f} / {r['enrol_p95_s']:.2f} ({r['enrolments']}, "
            f"{r['enrolments_refused']}; {r['enrolment_faces']}) |")
    goals = [f"Goals (`{name}`): pickup wait p95 ≤ 150 ms with 8 counters: "
             f"{met(r['total_p95_ms'] <= 150)}; enrolment p95 ≤ 1.5 s: "
             f"{met(r['enrol_p95_s'] <= 1.5)}{load_caveat(r)}."
             for name, r in zip(names, reports, strict=True) if r["counters"] == 8]
    return rows + (["", *goals] if goals else [])


def render_shim(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_shim.py (wrapped by bench_meta): the shim against a fake
    peer."""
    rows = ["| run | transaction, in flight | transactions/s | shim CPU ms per transaction |",
            "|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        rows.append(f"| `{name}` | {r['transaction']} × {r['transactions']:,}, "
                    f"{r['concurrency']} | {num(r['tx_per_s'], 0)} | "
                    f"**{r['shim_cpu_ms_per_tx']:.2f}** |")
    return rows


def render_vault(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_vault.py (wrapped by bench_meta): the Argon2id password key."""
    rows = ["| run | Argon2id | wrap p50 / p95 s | unwrap p50 / p95 s | CPU per wrap, p50 s |",
            "|---|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        w, u, c = r["wrap"], r["unwrap"], r["wrap_cpu"]
        rows.append(f"| `{name}` | opslimit {r['opslimit']}, {r['memlimit_mib']} MiB | "
                    f"{w['p50_s']:.2f} / {w['p95_s']:.2f} | {u['p50_s']:.2f} / "
                    f"{u['p95_s']:.2f} | **{c['p50_s']:.2f}** |")
    return rows


def render_face_latency(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_face.py --latency-only (wrapped by bench_meta): a 640x480 frame."""
    rows = ["| run | detect p50 / p95 ms | embed p50 / p95 ms | full verify p50 / p95 ms "
            "| frames (refused by the gate) |", "|---|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        lat = r["latency"]
        d, e, f = lat["detect"], lat["embed"], lat["full_verify"]
        rows.append(f"| `{name}` | {d['p50_ms']:.1f} / {d['p95_ms']:.1f} | {e['p50_ms']:.1f} / "
                    f"{e['p95_ms']:.1f} | **{f['p50_ms']:.1f}** / {f['p95_ms']:.1f} | "
                    f"{f['n']} ({lat['refused_by_gate']}) |")
    goals = [f"Goal (`{name}`): full verify p50 ≤ 50 ms: "
             f"{met(r['latency']['full_verify']['p50_ms'] <= 50)}{load_caveat(r)}."
             for name, r in zip(names, reports, strict=True)]
    return [*rows, "", *goals]


def render_face_dedup(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_face.py's duplicate-search stage (its `dedup` key)."""
    rows = ["| run | references | search p50 / p95 ms | planted found | false candidates "
            "per search |", "|---|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        for size, d in r["dedup"]["sizes"].items():
            s = d["search"]
            rows.append(f"| `{name}` | {int(size):,} | **{s['p50_ms']:.1f}** / "
                        f"{s['p95_ms']:.1f} | {d['planted_duplicates']} | "
                        f"{d['false_candidates_per_search']} |")
    return rows


Renderer = Callable[[list[str], list[Report]], list[str]]
RENDERERS: dict[str, Renderer] = {
    "ledger": render_ledger,
    "mip": render_mip,
    "gateway": render_gateway,
    "shim": render_shim,
    "vault": render_vault,
    "face-latency": render_face_latency,
    "face-dedup": render_face_dedup,
}
# Blocks whose body is kept as written until their bench's JSON exists.
# TODO(faceacc): wire `face-accuracy` to the held-out face accuracy JSON of
# scripts/bench_face.py / calibrate_face.py (being redone under issue #14 item 2): add a
# render_face_accuracy(names, reports) to RENDERERS, name its docs/figures/ file in the
# README's and docs/face.md's `<!-- figures:face-accuracy FILE -->` markers, and drop it here.
KEPT_AS_WRITTEN = frozenset({"face-accuracy"})


def render_block(name: str, files: list[str], body: str, figures: Path) -> str:
    if name in KEPT_AS_WRITTEN:
        return body
    renderer = RENDERERS.get(name)
    if renderer is None:
        raise FigureError(f"unknown figure block {name!r} (known: {', '.join(RENDERERS)})")
    if not files:
        raise FigureError(f"figure block {name!r} names no JSON file of docs/figures/")
    reports = [load(f, figures) for f in files]
    lines = [*provenance(files, reports), "", *renderer(files, reports)]
    return "\n".join(lines) + "\n"


def render_text(text: str, figures: Path, where: str = "") -> str:
    def one(match: re.Match[str]) -> str:
        try:
            body = render_block(match["name"], match["args"].split(), match["body"], figures)
        except FigureError as exc:
            raise FigureError(f"{where}: {exc}") from None
        return match["open"] + body + match["close"]

    return BLOCK.sub(one, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 with a diff if a block is not as rendered")
    parser.add_argument("--repo", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    figures = args.repo / "docs" / "figures"
    stale = 0
    blocks = 0
    for path in documents(args.repo):
        text = path.read_text()
        where = str(path.relative_to(args.repo))
        blocks += len(BLOCK.findall(text))
        try:
            rendered = render_text(text, figures, where)
        except FigureError as exc:
            print(f"figures: {exc}", file=sys.stderr)
            return 2
        if rendered == text:
            continue
        if args.check:
            stale += 1
            sys.stdout.writelines(difflib.unified_diff(
                text.splitlines(keepends=True), rendered.splitlines(keepends=True),
                f"{where} (as written)", f"{where} (rendered from docs/figures)"))
        else:
            path.write_text(rendered)
            print(f"figures: rendered {where}")
    if args.check and stale:
        print(f"figures: {stale} file(s) differ from docs/figures/; run "
              "`python scripts/figures.py`", file=sys.stderr)
        return 1
    print(f"figures: {blocks} block(s) {'checked' if args.check else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
