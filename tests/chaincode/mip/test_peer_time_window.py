"""The peers' own proposal time window, on every network MIP supports.

Fabric 3.x peers refuse a proposal dated further than peer.authentication.timewindow (15 min)
from their clock in the TimeWindowCheck auth filter, before any chaincode runs; the Gateway
client reports that as ClockSkew. scripts/network.sh lists that filter for 3.x peers only (a
2.5 peer does not know it: network/fabric/version.py), and devnet models 3.x. On Fabric 2.5
the peer lets such a proposal through and the contract's own, tighter bound refuses it
(test_clock_skew.py), so the outcome differs by release but a far-dated proposal never
reaches the ledger either way.
"""

from __future__ import annotations

import json
import time

import pytest
from mip_testkit import CHANNEL, HolderKey, MipClients, expect_error, register_body, request_arg

from gateway.fabric import ClockSkew, Contract
from gateway.fabric.proposal import TransactionContext, build_proposal
from gateway.fabric.transaction import Proposal

# Past the peers' 15-minute window (and far past the contract's bound).
SKEW_S = 20 * 60


def _dated(contract: Contract, name: str, args: list[str], skew_s: float) -> Proposal:
    session = contract._session
    context = TransactionContext.new(session.identity.serialize())
    built = build_proposal(
        channel=CHANNEL,
        chaincode=contract.chaincode,
        transaction_name=name,
        args=args,
        transient=None,
        context=context,
        timestamp_ns=time.time_ns() + int(skew_s * 1e9),
    )
    return Proposal(session, CHANNEL, context.transaction_id, built)


def peers_check_time_window(mip: MipClients) -> bool:
    """Devnet and Fabric 3.x do; Fabric 2.5 does not (the release network.sh recorded)."""
    net = mip.network
    if net.is_devnet:
        return True
    recorded = net.data_dir / "fabric-version"
    if not recorded.exists():
        # A network that network.sh set up before it recorded releases: that script could
        # only start 2.5 (its orderer.yaml stopped a 3.x orderer).
        return False
    return int(recorded.read_text().strip().split(".")[0]) >= 3


@pytest.mark.parametrize("skew", [SKEW_S, -SKEW_S], ids=["future", "past"])
async def test_far_dated_proposal_refused(mip: MipClients, skew: int) -> None:
    registrar = await mip.client("HospitalMSP", "registrar")
    key = HolderKey.generate()
    request = request_arg(key.sign_request("passport.register", register_body()))
    proposal = _dated(registrar, "Passport:Register", [request], skew)
    if peers_check_time_window(mip):
        with pytest.raises(ClockSkew):
            await proposal.endorse()
    else:
        async with expect_error("clock_skew"):
            await proposal.endorse()
    # Nothing was recorded: the very same request still registers when dated honestly.
    record = json.loads(await registrar.submit("Passport:Register", [request]))
    assert abs(record["created"] - time.time()) < 60
