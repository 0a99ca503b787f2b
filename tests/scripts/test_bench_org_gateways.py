"""scripts/bench_org_gateways.py: a tiny run against its own devnet and three org gateways
writes strict JSON that names its run and that scripts/figures.py renders; the renderer's
load label and goals; the load summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_org_gateways.py"

bench = load_script("bench_org_gateways")
figures = load_script("figures")
bench_meta = load_script("bench_meta")


def test_defaults_are_the_goals_sizes() -> None:
    args = bench.build_parser().parse_args([])
    assert (args.counters, args.pickups, args.rounds, args.enrolments) == (8, 40, 3, 40)
    assert args.typing_s == 3.0
    assert not args.shared_machine


def test_load_summary() -> None:
    assert bench.summarise_load([], 5.0) == {"every_s": 5.0, "samples": 0}
    out = bench.summarise_load([1.0, 3.0, 2.0], 5.0)
    assert (out["samples"], out["min"], out["median"], out["max"]) == (3, 1.0, 2.0, 3.0)


def test_ms_has_no_nan_without_samples() -> None:
    assert bench.ms([]) == {"n": 0, "p50_ms": None, "p95_ms": None}
    assert bench.ms([0.1, 0.2])["n"] == 2


def _strict(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_tiny_run_writes_json_that_renders(tmp_path: Path) -> None:
    out = tmp_path / "orgs.json"
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--counters", "2", "--pickups", "2", "--rounds", "1",
             "--enrolments", "1", "--typing-s", "1", "--cross-org", "1", "--oprf", "2",
             "--grants", "1", "--shared-machine", "--json", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=500, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench_org_gateways.py did not finish: {exc}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = _strict(done.stdout.strip().splitlines()[-1])
    assert _strict(out.read_text()) == summary
    assert bench_meta.missing_metadata(summary) == []
    assert summary["bench"] == "gateway-orgs" and summary["shared_machine"] is True
    assert summary["loadavg_during"]["samples"] >= 1

    p = summary["pickup"]
    assert (p["gateway"], p["reference"], p["counters"]) == ("PharmacyMSP", "portrait", 2)
    assert p["verified"] + sum(p["refused"].values()) == 2
    assert 0 < p["total_p95_ms"] < 60_000
    e = summary["enrolment"]
    assert (e["gateway"], e["password_helper"]) == ("HospitalMSP", "SchoolMSP")
    assert e["hospital_version2_fallbacks"] == 0
    # each timed enrolment's background screening either settled in the typing pause or not
    assert e["typing_s"] == 1.0
    assert e["screening"]["n"] + e["screening_unsettled"] == e["enrolled"]
    c = summary["cross_org"]
    # grace_hopper (enrolled as the warm-up) is unlocked at the School's desk at least
    assert c["school_desk"]["holders"] >= 1 and not c["school_desk"]["failed"]
    assert c["school_desk"]["steps"]["unlock"]["p50_ms"] > 0
    assert c["oprf_helper"]["evaluate"]["n"] == 2 and c["oprf_helper"]["confirm"]["n"] == 2
    assert c["grant"]["with_portrait"]["n"] == 1 and c["grant"]["without_portrait"]["n"] == 1

    lines = figures.render_gateway_orgs(["orgs.json"], [summary])
    text = "\n".join(lines)
    assert text.startswith("**Measured under load** (`orgs.json`)")
    assert "not measured (2 counters)" in text and "(provisional: measured under load)" in text


def _report(**over: Any) -> dict[str, Any]:
    x = {"n": 3, "p50_ms": 10.0, "p95_ms": 20.0}
    report: dict[str, Any] = {
        "machine": {"cores": 2}, "loadavg_start": [0.5, 0.5, 0.5], "loadavg_end": [2.0, 1, 1],
        "loadavg_during": {"every_s": 5.0, "samples": 3, "min": 0.5, "median": 1.0,
                           "max": 2.0},
        "shared_machine": False,
        "pickup": {"gateway": "PharmacyMSP", "counters": 8, "pickups_per_round": 40,
                   "rounds": 3, "pickups_per_s": 1.0, "verified": 120,
                   "refused": {"challenge_expired": 2}, **{
                       f"{s}_{q}_ms": 100.0 for s in ("total", "create", "verdict",
                                                      "dispense") for q in ("p50", "p95")}},
        "enrolment": {"gateway": "HospitalMSP", "password_helper": "SchoolMSP", "enrolled": 3,
                      "refused": 0, "faces": "demo portrait", "helper_evaluations_logged": 3,
                      "hospital_version2_fallbacks": 0,
                      "steps": {s: x for s in ("challenge", "frames", "password", "finish")}
                      | {"total": {"n": 3, "p50_ms": 900.0, "p95_ms": 1600.0}}},
        "cross_org": {
            "school_desk": {"desk": "SchoolMSP", "custodian": "HospitalMSP", "holders": 3,
                            "steps": {"unlock": x, "account_open": x}},
            "hospital_desk_contrast": {"desk": "HospitalMSP", "holders": 3,
                                       "steps": {"unlock": x}},
            "oprf_helper": {"caller": "HospitalMSP", "helper": "SchoolMSP", "evaluate": x,
                            "confirm": {"n": 0, "p50_ms": None, "p95_ms": None}},
            "grant": {"desk": "HospitalMSP", "with_portrait": x, "without_portrait": x}}}
    report.update(over)
    return report


def test_goals_are_computed_and_the_quiet_run_is_not_labelled_under_load() -> None:
    text = "\n".join(figures.render_gateway_orgs(["q.json"], [_report()]))
    assert "Measured under load" not in text and "provisional" not in text
    assert "Load during the run (`q.json`): 1-minute load average 0.50–2.00" in text
    assert ("pickup wait p95 ≤ 150 ms with 8 counters at the Pharmacy's own gateway: "
            "**met** (100 ms)") in text
    assert "enrolment p95 ≤ 1.5 s at the Hospital's gateway: **not met** (1.60 s)" in text
    assert "| OPRF confirmation | HospitalMSP → SchoolMSP | — / — | 0 |" in text
    assert "Verified and dispensed: 120; refused: 2 `challenge_expired`" in text


def test_a_shared_machine_run_is_labelled_under_load() -> None:
    text = "\n".join(figures.render_gateway_orgs(["s.json"], [_report(shared_machine=True)]))
    assert text.startswith("**Measured under load** (`s.json`)")
    assert "a rerun on a quiet machine decides them" in text
    assert "Goals (`s.json`) (provisional: measured under load)" in text


def test_a_typing_pause_is_out_of_the_desk_wait_and_the_screening_is_shown() -> None:
    report = _report()
    report["enrolment"] |= {"typing_s": 3.0, "screening_unsettled": 1,
                            "screening": {"n": 2, "p50_ms": 700.0, "p95_ms": 900.0}}
    text = "\n".join(figures.render_gateway_orgs(["t.json"], [report]))
    assert "| **desk's wait** (the four steps) | **900 / 1,600** |" in text
    assert "types the password (3 s in this run)" in text
    assert "it settled in 700 / 900 ms (p50 / p95)" in text
    assert "1 had not by the end of the pause, and finish waited for them" in text
    assert ("enrolment p95 ≤ 1.5 s at the Hospital's gateway (the desk's wait): **not met** "
            "(1.60 s)") in text


def test_enrol_keeps_the_typing_pause_out_of_the_total() -> None:
    """A fake gateway: the pause (0.3 s) is in no step and not in the total; the
    screening that settled during it is timed."""
    import asyncio

    class Fake(bench.OrgBench):
        def __init__(self) -> None:
            self.passports: dict[str, str] = {}
            self.camera = type("Cam", (), {"answer": staticmethod(lambda c, w: {})})()
            self.polls = 0

        async def call(self, method: str, path: str, staff: str, expect: int = 200,
                       session: str | None = None, enrolment: str | None = None,
                       **kwargs: Any) -> Any:
            if method == "GET":
                self.polls += 1
                return {"screening": "pending" if self.polls < 2 else "clear"}
            if path == "/enrolments":
                return {"session_id": "s", "challenge": {}}
            if path.endswith("/finish"):
                return {"passport_id": "p"}
            return None

    fake = Fake()
    t = asyncio.run(fake.enrol("w", 0.3))
    assert t["total"] < 0.2
    assert t["total"] == pytest.approx(
        t["challenge"] + t["frames"] + t["password"] + t["finish"], abs=1e-3)
    assert 0.05 < t["screening"] < 0.3
    assert "screening" not in asyncio.run(Fake().enrol("w", 0.0))
