"""Three etcdraft orderers (MIP_ORDERERS=3): the channel keeps ordering with one of them dead.

Raft needs a majority of its consenters: with 2 of 3 alive it elects a leader among them and
goes on, and the Gateway and the peers fail over to the orderers still listening (all three are
the channel's OrdererEndpoints). The test kills the current leader (the harder case: a new
election must happen) with SIGKILL, as a crash would, then submits again; the session fixture's
`down` must still leave no process behind.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import time
import urllib.request

import pytest
from fabric_network import FabricNetwork

from gateway.fabric import Gateway, GatewayError

pytestmark = [pytest.mark.fabric, pytest.mark.timeout(300)]

ORDERERS = ("orderer", "orderer1", "orderer2")
OPS_PORTS = (9443, 9447, 9448)  # network.sh's orderer operations ports, before the offset
LEADER = re.compile(r'^consensus_etcdraft_is_leader\{channel="mipchannel"\} 1$', re.MULTILINE)


def _leaders(offset: int, alive: tuple[str, ...] = ORDERERS) -> list[str]:
    """The orderers whose Prometheus metrics say they lead mipchannel's Raft."""
    found = []
    for name, port in zip(ORDERERS, OPS_PORTS, strict=True):
        if name not in alive:
            continue
        url = f"http://127.0.0.1:{port + offset}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            if LEADER.search(reply.read().decode()):
                found.append(name)
    return found


async def _wait_leader(offset: int, alive: tuple[str, ...], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        leaders = _leaders(offset, alive)
        if len(leaders) == 1:
            return leaders[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"no single Raft leader among {alive}: {leaders}")
        await asyncio.sleep(0.2)


async def _create(gateway: Gateway, asset_id: str) -> None:
    contract = gateway.get_network("mipchannel").get_contract("mip")
    await contract.submit("CreateAsset", [asset_id, "blue", "5", "raft", "7"])


def test_up_started_three_orderers(raft3_network: FabricNetwork) -> None:
    assert raft3_network.state_dir is not None
    assert (raft3_network.state_dir / "orderers").read_text().strip() == "3"
    for name in ORDERERS:
        assert (raft3_network.state_dir / "pids" / f"{name}.pid").is_file()


async def test_submits_commit_with_one_orderer_killed(raft3_network: FabricNetwork) -> None:
    assert raft3_network.state_dir is not None and raft3_network.env is not None
    offset = int(raft3_network.env["MIP_FABRIC_PORT_OFFSET"])
    async with Gateway.from_connection(raft3_network.connection, "HospitalMSP", "User1") as gw:
        contract = gw.get_network("mipchannel").get_contract("mip")
        before = f"before-{secrets.token_hex(4)}"
        await _create(gw, before)
        leader = await _wait_leader(offset, ORDERERS)

        pid, _start = (raft3_network.state_dir / "pids" / f"{leader}.pid").read_text().split()
        os.killpg(int(pid), signal.SIGKILL)  # its own session: network.sh starts it with setsid
        alive = tuple(n for n in ORDERERS if n != leader)
        new_leader = await _wait_leader(offset, alive)
        assert new_leader in alive

        # Every submit below is ordered by the two survivors and committed on the peers. The
        # Gateway may still pick the dead orderer's endpoint first; it then tries the next one.
        after = [f"after-{secrets.token_hex(4)}" for _ in range(5)]
        for asset_id in after:
            await _create(gw, asset_id)
        for asset_id in (before, *after):
            assert asset_id.encode() in await contract.evaluate("ReadAsset", [asset_id])
        with pytest.raises(GatewayError, match="already exists"):
            await _create(gw, after[0])
