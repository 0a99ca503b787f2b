"""scripts/bench_mip.py: a tiny run against its own devnet (JSON shape, the dispense race) and
its pure helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from script_module import load_script

from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC
from gateway.fabric import ChaincodeError, CommitError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench_mip.py"


bench = load_script("bench_mip")


def test_defaults() -> None:
    args = bench.build_parser().parse_args([])
    assert (args.n, args.warmup, args.race, args.json) == (20, 1, 50, None)


def test_outcomes_and_race_verdict() -> None:
    conflict = CommitError("tx", 11, 7)  # MVCC_READ_CONFLICT
    refused = ChaincodeError("endorse failed")
    refused.chaincode_message = "precondition_failed: no fills left"
    assert [bench.outcome(r) for r in (b"{}", conflict, refused, TimeoutError())] == [
        "ok", "MVCC_READ_CONFLICT", "precondition_failed", "TimeoutError"]
    race = {"successes": 1, "fills_allowed": 1, "fills_used": 1}
    assert bench.race_ok(race)
    assert not bench.race_ok({**race, "successes": 2})
    assert not bench.race_ok({**race, "fills_used": 2})
    assert not bench.race_ok({**race, "successes": 0, "fills_used": 0})


def test_tiny_run_on_devnet(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--n", "2", "--warmup", "0", "--json", str(out)],
            cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench_mip.py did not finish: {exc}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if k != "samples_ms"} == summary

    assert (summary["target"], summary["policy"], summary["contracts"]) == (
        "devnet", CHAINCODE_POLICY, CONTRACT_SPEC)
    assert (summary["n"], summary["warmup"]) == (2, 0)
    machine = summary["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"] and machine["python"]
    assert len(machine["commit"]) == 40 and isinstance(machine["dirty"], bool)
    assert len(summary["loadavg_start"]) == len(summary["loadavg_end"]) == 3
    assert summary["date"] and summary["kyc_verify_ms"] > 0

    assert list(summary["results"]) == list(bench.TRANSACTIONS)
    for name, figures in summary["results"].items():
        assert figures["n"] == 2, name
        assert 0 < figures["p50_ms"] <= figures["p95_ms"], name
        assert set(figures["cpu_ms"]) == {"devnet", "chaincode", "client"}, name
        assert len(written["samples_ms"][name]) == 2
    both = summary["results"]["Credential:Issue+Store"]["p50_ms"]
    assert both >= summary["results"]["Credential:Issue"]["p50_ms"]

    race = summary["race"]
    assert race["concurrent"] == 50
    assert race["successes"] == 1, race
    assert race["fills_allowed"] == race["fills_used"] == 1
    assert sum(race["failures"].values()) == 49
    # Losers lose on the fill counter: a read conflict at commit, or (endorsed after the
    # winner committed) the contract's own refusal.
    assert set(race["failures"]) <= {"MVCC_READ_CONFLICT", "precondition_failed"}, race
    assert "dispense race: 50 concurrent" in done.stdout
