"""scripts/bench_fabric_compare.py (bench_ledger --compare-node) without a network: the parts
that decide what is measured and how the figures are summarised."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from script_module import load_script

_load = load_script


compare = _load("bench_fabric_compare")
ledger = compare.bl


def test_parser_compare_options() -> None:
    args = ledger.build_parser().parse_args(["--target", "fabric", "--compare-node"])
    assert args.compare_node and args.compare_rounds == 6 and args.inflight == 16
    assert args.compare_warmup == 300
    assert (args.python_chaincode, args.node_chaincode) == ("mipasset", "nodeasset")
    assert not ledger.build_parser().parse_args([]).compare_node
    with pytest.raises(SystemExit, match="--target fabric"):
        ledger.main(["--compare-node"])


@pytest.mark.parametrize("id_length", [20, 26, 40])
def test_stored_json_is_about_200_bytes(id_length: int) -> None:
    asset_id = "a" * id_length
    data = compare.asset_json(asset_id, compare.owner_for(id_length))
    assert len(data) == compare.TARGET_JSON_BYTES
    # Key order and separators as both contracts store it.
    assert data.startswith(b'{"AppraisedValue":100,"Color":"blue","ID":"' + asset_id.encode())
    assert json.loads(data)["Size"] == 5


def test_rounds_alternate_which_runtime_goes_first() -> None:
    assert [compare.round_order(r)[0] for r in range(4)] == ["python", "node", "python", "node"]
    assert sorted(compare.round_order(1)) == ["node", "python"]


def test_deploy_env_gives_each_runtime_its_own_chaincode() -> None:
    py = compare.deploy_env({"X": "1"}, "python", "mipasset")
    node = compare.deploy_env({"X": "1"}, "node", "nodeasset")
    assert py["MIP_CHAINCODE_CONTRACT"] == ledger.ASSET_CONTRACT and py["X"] == "1"
    assert (py["MIP_CHAINCODE_NAME"], node["MIP_CHAINCODE_NAME"]) == ("mipasset", "nodeasset")
    assert py["MIP_CHAINCODE_PORT"] != node["MIP_CHAINCODE_PORT"]
    assert node["MIP_CHAINCODE_RUNTIME"] == "node"


def _row(tps: float, cpu: float) -> dict[str, float]:
    return {"tx_per_s": tps, "p50_ms": 10.0, "p95_ms": 20.0, "cc_cpu_ms": cpu}


def test_summary_medians_and_ratios() -> None:
    rounds = [
        {"python": {"submit": _row(150, 1.0), "evaluate": _row(900, 0.3)},
         "node": {"submit": _row(100, 2.0), "evaluate": _row(600, 0.6)}},
        {"python": {"submit": _row(160, 1.2), "evaluate": _row(1000, 0.4)},
         "node": {"submit": _row(120, 2.4), "evaluate": _row(800, 0.8)}},
        {"python": {"submit": _row(10, 9.0), "evaluate": _row(950, 0.5)},  # an outlier round
         "node": {"submit": _row(110, 2.2), "evaluate": _row(700, 0.7)}},
    ]
    s = compare.summarize(rounds, endorsers=2)
    assert s["python"]["submit"]["tx_per_s"] == 150 and s["node"]["submit"]["tx_per_s"] == 110
    assert s["python"]["cc_cpu_ms_per_submit"] == 1.2
    assert s["python"]["cc_cpu_ms_per_endorsement"] == 0.6
    assert s["python"]["submit"]["tx_per_s_rounds"] == [150, 160, 10]
    ratio = s["ratio_python_over_node"]
    assert ratio["submit_tx_per_s"] == round(150 / 110, 3)
    assert ratio["evaluate_tx_per_s"] == round(950 / 700, 3)
    assert ratio["cc_cpu_ms_per_submit"] == round(1.2 / 2.2, 3)
    # Per-round ratios 150/100, 160/120, 10/110 -> median 4/3.
    assert s["paired_ratio_median"]["submit_tx_per_s"] == round(160 / 120, 3)
    assert compare.summarize(rounds, endorsers=None)["node"]["cc_cpu_ms_per_endorsement"] is None


def test_endorsers_per_policy() -> None:
    assert compare.endorsers_of(ledger.POLICIES["majority"]) == 2
    assert compare.endorsers_of(ledger.POLICIES["mip"]) == 1
    assert compare.endorsers_of("AND('A.peer','B.peer')") is None


def test_chaincode_pids_are_live_recorded_servers(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    me = os.getpid()
    (pids / "cc-nodeasset-school.pid").write_text(f"{me} {ledger.start_time(me)}\n")
    (pids / "cc-nodeasset-hospital.pid").write_text("999999999 1\n")  # gone
    (pids / "cc-mipasset-school.pid").write_text(f"{me} {ledger.start_time(me)}\n")
    assert compare.chaincode_pids(tmp_path, "nodeasset") == [me]
    assert set(ledger.recorded_pids(tmp_path)) == {
        "cc-nodeasset-school", "cc-nodeasset-hospital", "cc-mipasset-school"}
