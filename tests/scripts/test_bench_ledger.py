"""scripts/bench_ledger.py: argument parsing and the helpers `--target fabric` relies on
(no network is started here; the full run is `python scripts/bench_ledger.py --target fabric`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from script_module import load_script

REPO = Path(__file__).resolve().parents[2]


bench = load_script("bench_ledger")


def test_defaults_stay_devnet() -> None:
    args = bench.build_parser().parse_args([])
    assert (args.target, args.policy, args.n, args.n_seq, args.inflight) == (
        "devnet", "majority", 2000, 300, 16)
    assert args.connection is None


def test_fabric_options() -> None:
    args = bench.build_parser().parse_args(
        ["--target", "fabric", "--port-offset", "700", "--batch-timeout", "2s",
         "--connection", "x/connection.json"])
    assert (args.target, args.port_offset, args.batch_timeout) == ("fabric", 700, "2s")
    assert args.connection == Path("x/connection.json")


def test_unknown_target_is_rejected() -> None:
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--target", "besu"])


def test_policy_settings_for_network_sh() -> None:
    # MAJORITY is the channel's implicit-meta policy: network.sh's "channel" keeps it in force.
    assert bench.fabric_policy_setting(bench.POLICIES["majority"]) == "channel"
    assert bench.fabric_policy_setting(bench.POLICIES["mip"]) == bench.POLICIES["mip"]
    args = bench.build_parser().parse_args(["--target", "fabric", "--batch-timeout", "50ms"])
    env = bench.fabric_env(Path("/tmp/s"), args, bench.POLICIES["majority"])
    assert env["MIP_CHAINCODE_CONTRACT"] == bench.ASSET_CONTRACT
    assert env["MIP_CHAINCODE_POLICY"] == "channel"
    assert (env["MIP_FABRIC_PORT_OFFSET"], env["MIP_FABRIC_BATCH_TIMEOUT"]) == ("500", "50ms")


def test_state_readers(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config/configtx.yaml").write_text("Orderer:\n  BatchTimeout: 20ms\n")
    assert bench.batch_timeout_of(tmp_path) == "20ms"
    assert bench.batch_timeout_of(tmp_path / "missing") is None
    (tmp_path / "pids").mkdir()
    me = os.getpid()
    (tmp_path / "pids/cc-school.pid").write_text(f"{me} {bench.start_time(me)}\n")
    (tmp_path / "pids/orderer.pid").write_text("999999999 1\n")  # gone: not measured
    assert bench.recorded_pids(tmp_path)["cc-school"][0] == me
    groups = bench.fabric_groups(tmp_path)
    assert groups == {"orderer": [], "peers": [], "chaincode": [me]}
    meter = bench.CpuMeter(None, groups)
    assert set(meter.sample()) == {"client", "orderer", "peers", "chaincode"}


def test_cpu_meter_reports_devnet_main_thread() -> None:
    # This process stands in for devnet: its main thread's CPU is part of the process's.
    assert set(bench.CpuMeter(os.getpid()).sample()) == {"client", "devnet", "chaincode"}
    meter = bench.CpuMeter(os.getpid(), main_thread=True)
    before = meter.sample()
    deadline = time.monotonic() + 10
    while (after := meter.sample())["devnet_main_thread"] == before["devnet_main_thread"]:
        assert time.monotonic() < deadline, "the main thread's CPU time never advanced"
        sum(i * i for i in range(100_000))  # CPU time is counted in clock ticks
    assert set(after) == {"client", "devnet", "devnet_main_thread", "chaincode"}
    main = after["devnet_main_thread"] - before["devnet_main_thread"]
    # The two are read one after the other: allow the thread one clock tick ahead.
    assert 0 < main <= after["devnet"] - before["devnet"] + 1.0 / bench.TICK + 1e-9
    assert bench.cpu_seconds(os.getpid(), 999_999_999) == 0.0  # no such thread


def test_cpu_total_counts_each_process_once() -> None:
    # devnet's main thread is part of devnet: the total must not add it again.
    cpu = {"client": 1.0, "devnet": 2.5, "devnet_main_thread": 2.0, "chaincode": 0.5}
    assert bench.cpu_total_ms(cpu) == pytest.approx(4.0)
    assert bench.cpu_bound_per_s(4.0, 2) == pytest.approx(500.0)
    assert bench.cpu_bound_per_s(0.0, 2) is None
    fabric = {"orderer": 0.5, "peers": 3.0, "chaincode": 1.0, "client": 1.5}
    assert bench.cpu_total_ms(fabric) == pytest.approx(6.0)
