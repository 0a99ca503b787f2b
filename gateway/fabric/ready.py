"""Wait until every org's Gateway can endorse a proposal of the deployed chaincode.

Endorsing (not just evaluating) is the real test, and it is asked of every org's peer at once:
each Gateway must have learnt through gossip every other org's peer *and* that the chaincode is
installed there (peers publish that every few seconds), and each peer must reach its chaincode
server. Checking only that a MAJORITY can endorse is not enough: a Gateway that knows two orgs
passes it, yet fails a key whose own policy names the third ("no combination of peers can be
derived"). `org.hyperledger.fabric:GetMetadata` writes nothing and the
endorsed transaction is never submitted, so the check leaves no trace on the ledger.

It is a client of the network, so it lives with the client; `python -m network.fabric
wait-ready` (scripts/network.sh) runs it, the one import of `network/` into `gateway/`
(tests/test_import_direction.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from gateway.fabric import ConnectionProfile, Deadlines, Gateway, GatewayError

_log = logging.getLogger(__name__)
_PROBE = "org.hyperledger.fabric:GetMetadata"


class NotReadyError(RuntimeError):
    """The Gateway still could not endorse when the timeout ran out."""


async def _endorse_once(
    profile: Path, org: str, channel: str, chaincode: str, all_orgs: Sequence[str]
) -> None:
    deadlines = Deadlines(evaluate=10, endorse=10, submit=10, commit_status=10)
    async with Gateway.from_connection(profile, org, "User1", deadlines=deadlines) as gateway:
        contract = gateway.get_network(channel).get_contract(chaincode)
        await contract.new_proposal(_PROBE, endorsing_orgs=all_orgs).endorse()


async def wait_endorsable(
    profile: Path, orgs: Sequence[str] | None = None, *, timeout: float = 120.0
) -> float:
    """Seconds until the Gateway of every org in `orgs` (default: all in the profile) could
    collect an endorsement from every org's peer."""
    loaded = ConnectionProfile.load(profile)
    names = list(orgs) if orgs else list(loaded.organizations)
    all_orgs = [loaded.organizations[n].msp_id for n in loaded.organizations]
    start = time.monotonic()
    deadline = start + timeout
    last_error = ""
    for org in names:
        while True:
            try:
                await _endorse_once(profile, org, loaded.channel, loaded.chaincode, all_orgs)
                break
            except GatewayError as exc:
                last_error = str(exc)
                if time.monotonic() >= deadline:
                    raise NotReadyError(
                        f"{org}: Gateway cannot endorse after {timeout:.0f}s: {last_error}"
                    ) from None
                _log.debug("%s not ready yet: %s", org, last_error)
                await asyncio.sleep(1.0)
    return time.monotonic() - start
