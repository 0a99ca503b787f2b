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
    then the run tells more about the load than about the code.

    Judged by the load when the run started (other jobs): the end's 1-minute average also
    counts the bench's own processes, which keep both cores busy by design. A run that
    recorded only its end (older files) is judged by that, as the only figure there is."""
    start, end = report["loadavg_start"], report["loadavg_end"]
    before = start if start is not None and start[0] is not None else end
    if before is None or before[0] is None:
        return ""
    cores = report["machine"]["cores"]
    if before[0] > cores:
        return (f" — started at load {before[0]:.1f} on {cores} cores, an overloaded "
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


def ms_or_dash(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def p50_p95(x: dict[str, Any], digits: int = 0) -> str:
    return f"{ms_or_dash(x['p50_ms'], digits)} / {ms_or_dash(x['p95_ms'], digits)}"


def under_load(name: str, r: Report) -> str:
    """How loaded the machine was while `r` ran; a run on a shared machine says the figures
    were measured under load and that its goals are provisional."""
    during = r["loadavg_during"]
    cores = r["machine"]["cores"]
    load = (f"1-minute load average {during['min']:.2f}–{during['max']:.2f} (median "
            f"{during['median']:.2f}) on {cores} cores, sampled every {during['every_s']:.0f} "
            "s" if during.get("samples") else "no load sampled during the run")
    if r["shared_machine"]:
        return (f"**Measured under load** (`{name}`): other jobs shared the machine during "
                f"the run (`--shared-machine`); {load}. The goals below are read on this run; "
                "a rerun on a quiet machine decides them.")
    return f"Load during the run (`{name}`): {load}."


def render_gateway_orgs(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_org_gateways.py: one gateway per org; the pickup at the Pharmacy's,
    the enrolment at the Hospital's, and the steps between orgs' gateways."""
    out: list[str] = []
    for name, r in zip(names, reports, strict=True):
        p, e, c = r["pickup"], r["enrolment"], r["cross_org"]
        school, local = c["school_desk"], c["hospital_desk_contrast"]
        o, g = c["oprf_helper"], c["grant"]
        total = e["steps"]["total"]
        out += [under_load(name, r), "",
                f"Pickup at {p['gateway']}'s own gateway, by the portrait the Hospital's "
                f"gateway sealed to it ({p['counters']} counters, {p['pickups_per_round']} "
                f"pickups per round, rounds: {p['rounds']}, medians of rounds; ms):", "",
                "| run | wait p50 / p95 | create p50 / p95 | verdict p50 / p95 | "
                "dispense p50 / p95 | pickups/s |", "|---|---|---|---|---|---|",
                f"| `{name}` | **{p['total_p50_ms']:.0f} / {p['total_p95_ms']:.0f}** | "
                f"{p['create_p50_ms']:.0f} / {p['create_p95_ms']:.0f} | "
                f"{p['verdict_p50_ms']:.0f} / {p['verdict_p95_ms']:.0f} | "
                f"{p['dispense_p50_ms']:.0f} / {p['dispense_p95_ms']:.0f} | "
                f"{p['pickups_per_s']:.2f} |", "",
                f"Verified and dispensed: {p['verified']}; refused: "
                + (", ".join(f"{n} `{why}`" for why, n in sorted(p["refused"].items()))
                   or "none")
                + (" (a refused pickup's wait is not in the percentiles, which flatters "
                   "them: `challenge_expired` means the frames arrived after the challenge's "
                   "window, i.e. the slowest pickups)." if p["refused"] else "."), "",
                f"Enrolment at {e['gateway']}'s desk, {e['password_helper']}'s OPRF helper in "
                f"each ({e['enrolled']} enrolled, {e['refused']} refused; {e['faces']}; ms):",
                "", "| step | p50 / p95 |", "|---|---|"]
        for step in ("challenge", "frames", "password", "finish"):
            out.append(f"| {step} | {p50_p95(e['steps'][step])} |")
        typing = e.get("typing_s", 0)
        if typing:
            screening = e["screening"]
            out += [f"| **desk's wait** (the four steps) | **{p50_p95(total)}** |", "",
                    f"Between the frames and the password the holder types the password "
                    f"({typing:g} s in this run); the consortium screening runs meanwhile and "
                    f"is not the desk waiting (docs/face.md 5.4): it settled in "
                    f"{p50_p95(screening)} ms (p50 / p95) after the frames' answer"
                    + (f"; {e['screening_unsettled']} had not by the end of the pause, and "
                       "finish waited for them inside the desk's wait"
                       if e["screening_unsettled"] else "") + ".", ""]
        else:
            out += [f"| **whole enrolment** | **{p50_p95(total)}** |", ""]
        out += [
                f"Helper evaluations logged by {e['password_helper']}'s gateway during these "
                f"enrolments: {e['helper_evaluations_logged']}; version-2 vaults written for "
                f"want of a helper: {e['hospital_version2_fallbacks']}.", "",
                "Steps between orgs' gateways (ms):", "",
                "| step | gateways | p50 / p95 | n |", "|---|---|---|---|",
                f"| desk unlock of a Hospital holder at the School's desk (face + password; "
                f"custody relay, the vault's OPRF helper inside) | {school['desk']} → "
                f"{school['custodian']} → {o['helper']} | "
                f"**{p50_p95(school['steps']['unlock'])}** | {school['holders']} |",
                f"| the same holders' unlock at the Hospital's own desk (contrast) | "
                f"{local['desk']} → {o['helper']} | {p50_p95(local['steps']['unlock'])} | "
                f"{local['holders']} |",
                f"| School account opening for that holder (School's reference, Hospital "
                f"signs, `Account:Open`) | {school['desk']} → {school['custodian']} | "
                f"**{p50_p95(school['steps']['account_open'])}** | {school['holders']} |",
                f"| OPRF helper round trip (blind, signed evaluation, finalize) | "
                f"{o['caller']} → {o['helper']} | **{p50_p95(o['evaluate'], 1)}** | "
                f"{o['evaluate']['n']} |",
                f"| OPRF confirmation | {o['caller']} → {o['helper']} | "
                f"{p50_p95(o['confirm'], 1)} | {o['confirm']['n']} |",
                f"| grant to the Pharmacy with the portrait issued and sealed | {g['desk']} | "
                f"**{p50_p95(g['with_portrait'])}** | {g['with_portrait']['n']} |",
                f"| grant without a portrait (research consent, contrast) | {g['desk']} | "
                f"{p50_p95(g['without_portrait'])} | {g['without_portrait']['n']} |", ""]
        provisional = " (provisional: measured under load)" if r["shared_machine"] else ""
        enrol = ("no enrolment passed" if total["p95_ms"] is None else
                 f"{met(total['p95_ms'] <= 1500)} ({total['p95_ms'] / 1000:.2f} s)")
        out.append(f"Goals (`{name}`){provisional}: pickup wait p95 ≤ 150 ms with 8 counters "
                   f"at the Pharmacy's own gateway: "
                   + (f"{met(p['total_p95_ms'] <= 150)} ({p['total_p95_ms']:.0f} ms)"
                      if p["counters"] == 8 else f"not measured ({p['counters']} counters)")
                   + "; enrolment p95 ≤ 1.5 s at the Hospital's gateway"
                   + (" (the desk's wait)" if e.get("typing_s") else "") + f": {enrol}"
                   + f"{load_caveat(r)}.")
    return out


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


def render_memory(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_memory.py: the gateway's resident set around bursts of oversized
    images (medians over rounds; the goal is on the worst round)."""
    rows = ["| run | burst (requests, decoded, clients) | before MiB | peak MiB | "
            "after the burst MiB | after idle MiB | after idle / before |",
            "|---|---|---|---|---|---|---|"]
    for name, r in zip(names, reports, strict=True):
        rows.append(f"| `{name}` | {r['requests']}, 1 in {r['decoded_every']}, "
                    f"{r['concurrency']} | {num(r['before_mib'], 0)} | "
                    f"{num(r['peak_mib'], 0)} | {num(r['after_burst_mib'], 0)} | "
                    f"{num(r['after_idle_mib'], 0)} (after {num(r['idle_s'], 0)} s) | "
                    f"**×{r['ratio']:.2f}** |")
    rows.append("")
    for name, r in zip(names, reports, strict=True):
        rows.append(f"Goal (`{name}`): memory back after each burst, after idle / before "
                    f"≤ {r['goal_ratio']:.2f} in every one of {r['rounds']} rounds: "
                    f"{met(r['max_ratio'] <= r['goal_ratio'])} (worst ×{r['max_ratio']:.2f}; "
                    f"first before to last after idle ×{r['overall_ratio']:.2f}).")
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
            "per search (searches with one) | snapshot write / open s, size | load (1 min) |",
            "|---|---|---|---|---|---|---|"]
    goals: list[str] = []
    for name, r in zip(names, reports, strict=True):
        sizes = r["dedup"]["sizes"]
        for size, d in sizes.items():
            s = d["search"]
            rows.append(f"| `{name}` | {int(size):,} | **{s['p50_ms']:.1f}** / "
                        f"{s['p95_ms']:.1f} | {d['planted_found']} of "
                        f"{d['planted_duplicates']} | {d['false_candidates_per_search_mean']} "
                        f"({d['searches_with_false_candidates'] * 100:.0f} %) | "
                        f"{d['snapshot_write_s']:.2f} / {d['open_s']:.2f}, "
                        f"{d['bytes_on_disk'] / 2**20:,.0f} MiB | "
                        f"{d['load_average_1min']:.2f} |")
        largest = max(sizes, key=int)
        p50 = sizes[largest]["search"]["p50_ms"]
        goals.append(
            f"Goal (`{name}`): search p50 ≤ 50 ms at 1,000,000 references: "
            + (f"{met(p50 <= 50)} ({p50:.1f} ms){load_caveat(r)}." if int(largest) >= 10**6
               else f"not measured (largest size {int(largest):,}).")
            + f" Peak memory of the run {num(r['peak_rss_mib'] / 1024, 1)} GiB.")
    return [*rows, "", *goals]


def render_face_identification(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_dedup.py: FPIR / FNIR of duplicate screening at each gallery size."""
    rows = ["| run | references N | FPIR (synthetic / real-LFW probes) | FPIR at the 1:1 "
            "FAR 1e-4 threshold | threshold for FPIR 1 % at this N | FNIR in the wild |",
            "|---|---|---|---|---|---|"]
    notes: list[str] = []
    for name, r in zip(names, reports, strict=True):
        ident = r["identification"]
        sizes = sorted((k for k in r if k.isdigit()), key=int)
        for size in sizes:
            d = r[size]
            rows.append(f"| `{name}` | {int(size):,} | **{pct(d['fpir'])}** "
                        f"({pct(d['fpir_synthetic'])} / {pct(d['fpir_lfw_real_probes'])}) | "
                        f"{pct(d['fpir_at_far_1e-4_threshold'])} | "
                        f"{d['threshold_for_fpir_target_at_this_n']} | {pct(d['fnir'])} |")
        wild = r["fnir_in_the_wild"]
        gain = r["multi_frame_gain"]
        ks = sorted((k for k in gain if k.startswith("k") and k[1:].isdigit()),
                    key=lambda k: int(k[1:]))
        largest = gain["gallery_size"]
        notes.append(
            f"Identification threshold (`{name}`): **{ident['threshold']}** "
            f"({ident['source']}; FPIR target {pct(ident['fpir_target'])} at N = "
            f"{int(ident['at_gallery_size']):,}; searches: "
            f"{r['probes']['synthetic']:,} synthetic people and {r['probes']['lfw_real']:,} real "
            f"LFW images). FNIR at it, one image each side: {pct(wild['fnir'])} of "
            f"{wild['same_person_pairs']:,} LFW same-person pairs "
            f"({pct(wild['fnir_official_pairs'])} of the {wild['official_genuine_pairs']} "
            f"official genuine pairs).")
        notes.append("")
        notes.append(f"Multi-frame templates (`{name}`), FNIR at FPIR "
                     f"{pct(gain['fpir_target'])} with a gallery of {int(largest):,} "
                     "templates of the same kind (each k its own threshold):")
        notes.append("")
        notes.append("| frames per template k | people | threshold | FNIR | "
                     "non-mated template cosine mean / std |")
        notes.append("|---|---|---|---|---|")
        for k in ks:
            g = gain[k]
            nm = g["non_mated_templates"]
            notes.append(f"| {k[1:]} | {g['people']} | {g['threshold']} | "
                         f"**{pct(g['fnir'])}** | {nm['mean']} / {nm['std']} |")
    return [*rows, "", *notes]


def render_private_screening(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_private_screening.py: one consortium-wide private screening (its per-N
    keys)."""
    rows = ["| run | references per org | screening p50 / max s | CPU s of the slower pair "
            "(p50) | Q encrypts / G scores / "
            "V decides p50 s | made ahead s (Q / G) | peak RSS (both pairs) | query up, scores "
            "to V | answers = plaintext |",
            "|---|---|---|---|---|---|---|---|---|"]
    goals: list[str] = []
    for name, r in zip(names, reports, strict=True):
        sizes = {k: v for k, v in r.items() if k.isdigit()}
        for size, d in sorted(sizes.items(), key=lambda kv: int(kv[0])):
            rows.append(
                f"| `{name}` | {int(size):,} | **{d['screen_s_p50']:.2f}** / "
                f"{d['screen_s_max']:.2f} | "
                + (f"{d['screen_cpu_s_p50']:.2f}" if "screen_cpu_s_p50" in d else "—")
                + f" | {d['encrypt_s_p50']:.2f} / {d['score_s_p50']:.2f}"
                f" / {d['decide_s_p50']:.2f} | "
                + (f"{d['query_zeros_s']:.2f} / " if "query_zeros_s" in d else "")
                + f"{d['rerandomise_s']:.2f} | "
                f"{num(d['peak_rss_mib'] / 1024, 2)} GiB | {d['query_mib']:.0f} MiB, "
                f"{d['scores_to_key_holder_mib']:.1f} MiB | "
                f"{'yes' if d['all_answers_equal_plaintext'] else '**no**'} "
                f"({d['reps']} runs) |")
        largest = max(sizes, key=int)
        p50 = sizes[largest]["screen_s_p50"]
        cpu = sizes[largest].get("screen_cpu_s_p50")
        cpu_text = (f"; {cpu:.1f} CPU s for the slower pair, the time with a core per pair"
                    if cpu is not None else "")
        goals.append(
            f"Goal (`{name}`): one screening ≤ 5 s at 1,000,000 references per org: "
            + (f"{met(p50 <= 5)} ({p50:.1f} s wall{cpu_text}){load_caveat(r)}."
               if int(largest) >= 10**6
               else f"not measured here (largest size {int(largest):,}).")
            + (f" Note: {r['note']}." if r.get("note") else ""))
    return [*rows, "", *goals]


# --- face accuracy (scripts/bench_face_accuracy.py) ---------------------------------------

PIPELINE_NAMES = {"flip_average": "flip average", "single_crop": "single crop"}
GOAL_TAR = 0.99  # TAR at FAR 1e-3, held out (issue #14)
FAR_POINTS = ("far_1e-3", "far_1e-4")


def pct(x: float) -> str:
    return f"{x * 100:.2f} %"


def sci(x: float, digits: int = 2) -> str:
    """1.03e-3, not 1.03e-03."""
    mantissa, exponent = f"{x:.{digits}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def counts(r: dict[str, Any], kind: str = "genuine") -> str:
    return f"{r[f'{kind}_accepted']}/{r[f'{kind}_pairs']}"


def folds_text(folds: list[int]) -> str:
    return ", ".join(str(f) for f in folds)


def pooled_far_all_pairs(per_fold: list[dict[str, Any]], point: str) -> float:
    """Different-person pairs of the held-out folds accepted, over all of them."""
    return (sum(r[point]["different_person_accepted"] for r in per_fold)
            / sum(r["test_different_person_pairs"] for r in per_fold))


def accuracy_headline(name: str, r: Report) -> list[str]:
    """The held-out table: one row per held-out fold, then all folds in bold."""
    ho = r["held_out"]
    rows = ["| held-out fold (calibrated on) | pipeline chosen | `far_1e-3`: t / TAR / FAR "
            "official / FAR all pairs / accuracy | `far_1e-4`: t / TAR / FAR official / FAR "
            "all pairs | LFW accuracy | EER |", "|---|---|---|---|---|---|"]
    for f in ho["per_fold"]:
        a, b = f["far_1e-3"], f["far_1e-4"]
        rows.append(
            f"| {f['test_fold']} ({folds_text(f['calibration_folds'])}) | "
            f"{PIPELINE_NAMES.get(f['pipeline'], f['pipeline'])} | {a['threshold']:.4f} / "
            f"{pct(a['tar'])} ({counts(a)}) / {counts(a, 'impostor')} / "
            f"{sci(a['far_different_person_pairs'])} / {pct(a['accuracy'])} | "
            f"{b['threshold']:.4f} / {pct(b['tar'])} ({counts(b)}) / {counts(b, 'impostor')} / "
            f"{sci(b['far_different_person_pairs'])} | {pct(f['lfw_accuracy']['accuracy'])} | "
            f"{pct(f['eer'])} |")
    m, p = ho["mean"], ho["pooled"]
    a, b = p["far_1e-3"], p["far_1e-4"]
    rows.append(
        f"| **all {len(ho['per_fold'])} folds** (counts pooled; FAR all pairs pooled; "
        f"accuracy, EER: mean of folds) | | **{pct(a['tar'])}** ({counts(a)}) / "
        f"{counts(a, 'impostor')} / **{sci(pooled_far_all_pairs(ho['per_fold'], 'far_1e-3'))}**"
        f" / {pct(m['far_1e-3']['accuracy'])} | **{pct(b['tar'])}** ({counts(b)}) / "
        f"{counts(b, 'impostor')} / {sci(pooled_far_all_pairs(ho['per_fold'], 'far_1e-4'))} | "
        f"**{pct(p['lfw_accuracy']['accuracy'])}** | {pct(m['eer'])} |")
    return rows


def accuracy_goal(name: str, r: Report) -> str:
    ho = r["held_out"]
    a = ho["pooled"]["far_1e-3"]
    rejected = a["genuine_pairs"] - a["genuine_accepted"]
    return (f"Goal (`{name}`): TAR ≥ {GOAL_TAR * 100:.0f} % at FAR 1e-3, held out: "
            f"{met(a['tar'] >= GOAL_TAR)} — {pct(a['tar'])} ({rejected} of "
            f"{a['genuine_pairs']} genuine pairs rejected), with FAR "
            f"{sci(pooled_far_all_pairs(ho['per_fold'], 'far_1e-3'))} on the held-out folds' "
            f"different-person pairs (target 1e-3) and {counts(a, 'impostor')} official "
            "impostor pairs accepted.")


def accuracy_details(r: Report) -> list[str]:
    """What the folds, the pipeline choice and the protected path say, from the same JSON."""
    ho, product = r["held_out"], r["extraction"]["pipeline_in_product"]
    per_fold = ho["per_fold"]
    tars = [f["far_1e-3"]["tar"] for f in per_fold]
    fars = [f["far_1e-3"]["far_different_person_pairs"] for f in per_fold]
    genuine = per_fold[0]["far_1e-3"]["genuine_pairs"]
    out = [f"Between folds the held-out TAR at `far_1e-3` spans "
           f"{(max(tars) - min(tars)) * 100:.2f} points ({genuine} genuine pairs per fold: "
           f"one pair is {100 / genuine:.2f} points) and the FAR on all different-person "
           f"pairs a factor {max(fars) / min(fars):.1f}."]
    for f in per_fold:
        if f["pipeline"] == product:
            continue
        choice = f["pipeline_choice"]
        out.append(
            f"On fold {f['test_fold']} the choice rule, on folds "
            f"{folds_text(f['calibration_folds'])}, preferred the "
            f"{PIPELINE_NAMES.get(f['pipeline'], f['pipeline'])}: TAR at `far_1e-3` over their "
            f"{choice[f['pipeline']]['same_person_pairs']:,} same-person pairs "
            f"{pct(choice[f['pipeline']]['far_1e-3'])} against "
            f"{pct(choice[product]['far_1e-3'])} for the "
            f"{PIPELINE_NAMES.get(product, product)}, which the product runs.")
    protected = [(f, point) for f in per_fold for point in FAR_POINTS
                 if "protected" in f[point]]
    same = all(f[point]["protected"]["genuine_accepted"] == f[point]["genuine_accepted"]
               and f[point]["protected"]["impostor_accepted"] == f[point]["impostor_accepted"]
               for f, point in protected)
    on = sorted({f["test_fold"] for f, _ in protected})
    out.append(
        f"Protected path (keyed rotation + AES-GCM) on the folds where the "
        f"{PIPELINE_NAMES.get(product, product)} was chosen ({folds_text(on)}): "
        f"{'the same' if same else '**different**'} accept decisions as the raw scores; "
        f"largest score change protected vs raw over all official pairs: "
        f"{sci(r['protected_max_abs_score_change'], 1)}.")
    return [" ".join(out)]



def accuracy_labelled_rows(r: Report) -> list[str]:
    """Rows that are not fully held out, each saying what is not."""
    product = r["extraction"]["pipeline_in_product"]
    rows = ["| | `far_1e-3` TAR | `far_1e-4` TAR | what is not held out |",
            "|---|---|---|---|"]
    for pipeline, block in r["held_out_thresholds_pipeline_fixed"].items():
        p = block["pooled"]
        per = " / ".join(f"{f['far_1e-3']['tar'] * 100:.2f}" for f in block["per_fold"])
        why = ("the pipeline: the product's, chosen earlier with all folds in view"
               if pipeline == product else "the pipeline")
        rows.append(f"| thresholds held out, {PIPELINE_NAMES.get(pipeline, pipeline)} imposed "
                    f"on every fold | {pct(p['far_1e-3']['tar'])} ({counts(p['far_1e-3'])}; "
                    f"per fold {per} %) | {pct(p['far_1e-4']['tar'])} "
                    f"({counts(p['far_1e-4'])}) | {why} |")
    stored = r["stored_operating_points"]
    for pipeline, block in r["in_sample"].items():
        a, b = block["far_1e-3"], block["far_1e-4"]
        source = stored.get(pipeline, {})
        # the stored points are named only where this run recomputed them to the digit
        current = bool(source) and all(
            source[pt]["stored_threshold"] == source[pt]["recomputed_threshold"]
            for pt in FAR_POINTS)
        where = (f"the stored points of `{source['file']}`" if current
                 else "thresholds from all folds")
        rows.append(f"| **in-sample**, {PIPELINE_NAMES.get(pipeline, pipeline)}: {where} "
                    f"(t = {a['threshold']} / {b['threshold']}) on the same folds' "
                    f"{a['genuine_pairs']} genuine pairs | {pct(a['tar'])} ({counts(a)}) | "
                    f"{pct(b['tar'])} ({counts(b)}) | thresholds and pipeline |")
    block = r["in_sample"][product]
    a = block["far_1e-3"]
    rows.append(f"| **in-sample**, {PIPELINE_NAMES.get(product, product)}: threshold from "
                f"the {a['impostor_pairs']} official impostor pairs (t = "
                f"{a['threshold_from_official_impostors']:.4f}, above the highest; FAR "
                f"0/{a['impostor_pairs']} can show neither 1e-3 nor 1e-4) | "
                f"{pct(a['tar_threshold_from_official_impostors'])} | "
                f"{pct(block['far_1e-4']['tar_threshold_from_official_impostors'])} | "
                "threshold set on the test impostors |")
    rows.append(f"| **in-sample**, {PIPELINE_NAMES.get(product, product)}: best accuracy / "
                f"EER over the {a['genuine_pairs'] + a['impostor_pairs']:,} official pairs | "
                f"{pct(block['best_accuracy'])} / {pct(block['eer'])} | | threshold set on "
                "the test pairs |")
    return rows


def render_face_accuracy(names: list[str], reports: list[Report]) -> list[str]:
    """scripts/bench_face_accuracy.py: the held-out table, the goal, the labelled rows."""
    out: list[str] = []
    for name, r in zip(names, reports, strict=True):
        d, x = r["dataset"], r["extraction"]
        out += [f"`{name}`: {d['name']}, {d['genuine_pairs_per_fold']} genuine + "
                f"{d['impostor_pairs_per_fold']} impostor official pairs per fold; "
                f"{x['images']:,} images, a face found in {x['face_found']:,}, "
                f"{x['quality_pass']:,} pass the quality gate; people shared between folds: "
                f"{len(d['people_shared_between_folds']) or 'none'}.", "",
                "Held out:", "", *accuracy_headline(name, r),
                "", accuracy_goal(name, r), "", *accuracy_details(r), "",
                f"Labelled rows beside the headline (`{name}`):", "",
                *accuracy_labelled_rows(r)]
    return out


def render_face_accuracy_summary(names: list[str], reports: list[Report]) -> list[str]:
    """The README's: the held-out headline against the in-sample figures, and the goal."""
    rows = ["| run, LFW View 2 | TAR at FAR 1e-3 | TAR at FAR 1e-4 | FAR on different-person "
            "pairs at 1e-3 / 1e-4 | LFW accuracy | EER |", "|---|---|---|---|---|---|"]
    goals: list[str] = []
    for name, r in zip(names, reports, strict=True):
        ho, product = r["held_out"], r["extraction"]["pipeline_in_product"]
        p, m, per = ho["pooled"], ho["mean"], ho["per_fold"]
        a, b = p["far_1e-3"], p["far_1e-4"]
        rows.append(
            f"| `{name}`: **held out** (leave one fold out, {r['dataset']['folds']} folds "
            f"pooled) | **{pct(a['tar'])}** ({counts(a)}) | {pct(b['tar'])} ({counts(b)}) | "
            f"{sci(pooled_far_all_pairs(per, 'far_1e-3'))} / "
            f"{sci(pooled_far_all_pairs(per, 'far_1e-4'))} | "
            f"{pct(p['lfw_accuracy']['accuracy'])} | {pct(m['eer'])} (mean of folds) |")
        rows.append(
            "| held out, per fold " + " / ".join(str(f["test_fold"]) for f in per) + " | "
            + " / ".join(f"{f['far_1e-3']['tar'] * 100:.2f}" for f in per) + " % | "
            + " / ".join(f"{f['far_1e-4']['tar'] * 100:.2f}" for f in per) + " % | | "
            + " / ".join(f"{f['lfw_accuracy']['accuracy'] * 100:.2f}" for f in per) + " % | "
            + " / ".join(f"{f['eer'] * 100:.2f}" for f in per) + " % |")
        s = r["in_sample"][product]
        sa, sb = s["far_1e-3"], s["far_1e-4"]
        rows.append(
            f"| **in-sample**, not held out (thresholds read off the same pairs; "
            f"{PIPELINE_NAMES.get(product, product)}, the stored points) | {pct(sa['tar'])} "
            f"({counts(sa)}) | {pct(sb['tar'])} ({counts(sb)}) | "
            f"{sci(sa['far_different_person_pairs'])} / {sci(sb['far_different_person_pairs'])}"
            f" | {pct(s['best_accuracy'])} (best) | {pct(s['eer'])} |")
        goals.append(accuracy_goal(name, r))
    return [*rows, "", *goals]


# --- unlinkability (scripts/bench_face.py --stages unlinkability) -----------------------


def render_face_unlinkability(names: list[str], reports: list[Report]) -> list[str]:
    """The same person's protected references at two institutions against different
    people's: cosines and D_sys, read against the floor of the sample size."""
    out: list[str] = []
    for name, r in zip(names, reports, strict=True):
        u = r["unlinkability"]
        out += [f"`{name}`: {u['people']} LFW people, one image each, enrolled as one holder "
                "at HospitalMSP and at SchoolMSP; cosine of the two decrypted transformed "
                "templates (an attacker with the KEK but not the transform key).", "",
                "| cosine | mean | std | max |", "|---|---|---|---|"]
        for label, key in (("same person, two institutions", "cross_institution_same_person"),
                           ("different people, two institutions",
                            "cross_institution_different_people"),
                           ("different people, raw embeddings (for contrast)",
                            "raw_domain_different_people")):
            x = u[key]
            out.append(f"| {label} | {x['mean']:.3f} | {x['std']:.3f} | {x['max']:.3f} |")
        keys, floor = u["d_sys_key_draws"], u["d_sys_same_distribution"]
        within = floor["p5"] <= keys["median"] <= floor["p95"]
        out += ["", f"D_sys (global linkability, 0 = unlinkable, 1 = fully linkable), "
                f"{u['d_sys_bins']} bins: **{keys['median']:.3f}** for the protected "
                f"references, median over {keys['draws']} fresh key pairs "
                f"({keys['min']:.3f}–{keys['max']:.3f}); two samples of {u['people']} drawn "
                f"from one distribution give {floor['p5']:.3f}–{floor['p95']:.3f} (5th–95th "
                f"percentile of {floor['draws']} draws), so the median is "
                f"{'within' if within else '**outside**'} the noise floor of this sample "
                f"size; raw embeddings {u['d_sys_raw_domain']:.1f} (the same image gives "
                "cosine 1)."]
    return out


# --- one org's operator (scripts/bench_face.py --stages operator) -----------------------

OPERATOR_LEVELS = {
    "operator": "**one org's operator** (the measurement)",
    "plus_b_database": "plus the other org's database",
    "plus_b_database_and_kek": "plus the other org's database and KEK",
    "one_key_set": "one key set for both (contrast)",
    "shared_rotation_contrast": "one rotation per institution (contrast)",
}


def operator_floor(level: dict[str, Any]) -> str:
    """The same-distribution floor of the level's best score, where it has one."""
    score = level["scores"].get(level["best_score"])
    if not isinstance(score, dict):
        return "—"
    floor = score["d_sys_same_distribution"]
    return f"{floor['p5']:.3f}–{floor['p95']:.3f}"


def operator_d_sys(level: dict[str, Any], headline: bool) -> str:
    score = level["scores"].get(level["best_score"])
    value = f"**{level['d_sys']:.3f}**" if headline else f"{level['d_sys']:.3f}"
    if not isinstance(score, dict):
        return value
    draws = score["d_sys_key_draws"]
    return f"{value} ({draws['min']:.3f}–{draws['max']:.3f})"


def operator_verdict(population: str, level: dict[str, Any], goal: float) -> str:
    """The goal read on one population: met, not met, or, when the figure is within a
    floor that itself reaches above the goal, not resolved by a sample of this size."""
    score = level["scores"][level["best_score"]]
    floor = score["d_sys_same_distribution"]
    where = "within" if level["within_floor"] else "**outside**"
    figure = f"{level['d_sys']:.3f}, {where} its floor {operator_floor(level)}"
    if level["d_sys"] <= goal:
        return f"{population}: **met** ({figure})"
    if level["within_floor"] and floor["p95"] > goal:
        return (f"{population}: **not resolved** by a sample of this size ({figure}, whose "
                f"upper end is above {goal})")
    return f"{population}: **not met** ({figure})"


def render_face_operator_linkability(names: list[str], reports: list[Report]) -> list[str]:
    """D<->sys of one person's references at two institutions for an attacker holding, level
    by level, exactly one org's operator's keys and more; each read against its floor."""
    out: list[str] = []
    for name, r in zip(names, reports, strict=True):
        o = r["operator"]
        pops = o["populations"]
        head = o["headline_level"]
        sizes = "; ".join(f"{pop}: {p['people']:,} people, {p['mated_pairs']:,} mated and "
                          f"{p['non_mated_pairs']:,} non-mated pairs, {p['bins']} bins"
                          for pop, p in pops.items())
        sizes += "".join(f"; {pop} not measured: {why}" for pop, why in o["skipped"].items())
        error = max(p["recovered_embedding_max_error"] for p in pops.values())
        sizes += (f". A's operator recovers the embeddings from A's references to within "
                  f"{error:.1e} (largest coordinate error)")
        out += [f"`{name}`: attacker {o['attacker']}. {sizes}. D<->sys: median over "
                f"{o['key_draws']} fresh draws of both orgs' keys (min–max), of the level's "
                "best score; floor: 5th–95th percentile of D<->sys between two samples of the "
                "same sizes drawn from one distribution (different people's scores).", "",
                "| attacker holds | population | best score | D<->sys (min–max) | floor |",
                "|---|---|---|---|---|"]
        for level, label in OPERATOR_LEVELS.items():
            for pop, p in pops.items():
                x = p["levels"][level]
                out.append(f"| {label} | {pop} | {x['best_score']} | "
                           f"{operator_d_sys(x, level == head)} | {operator_floor(x)} |")
        verdicts = [operator_verdict(pop, p["levels"][head], o["goal"])
                    for pop, p in pops.items()]
        shared = [f"{pop} {p['levels']['one_key_set']['d_sys']:.3f}"
                  for pop, p in pops.items()]
        out += ["", f"Goal (`{name}`): D<->sys ≤ {o['goal']} for one org's operator — "
                f"{'; '.join(verdicts)}. The same measurement under one key set for both "
                f"institutions gives {', '.join(shared)}."]
    return out


Renderer = Callable[[list[str], list[Report]], list[str]]
RENDERERS: dict[str, Renderer] = {
    "ledger": render_ledger,
    "mip": render_mip,
    "gateway": render_gateway,
    "gateway-orgs": render_gateway_orgs,
    "shim": render_shim,
    "vault": render_vault,
    "memory": render_memory,
    "face-latency": render_face_latency,
    "face-dedup": render_face_dedup,
    "face-identification": render_face_identification,
    "private-screening": render_private_screening,
    "face-accuracy": render_face_accuracy,
    "face-accuracy-summary": render_face_accuracy_summary,
    "face-unlinkability": render_face_unlinkability,
    "face-operator-linkability": render_face_operator_linkability,
}


def render_block(name: str, files: list[str], figures: Path) -> str:
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
            body = render_block(match["name"], match["args"].split(), figures)
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
