"""Wait until every org's Gateway can endorse a proposal of the deployed chaincode.

Endorsing (not just evaluating) is the real test: the Gateway must have discovered enough other
orgs' peers through gossip to satisfy the endorsement policy, and each of those peers must have
reached its chaincode server. `org.hyperledger.fabric:GetMetadata` writes nothing and the
endorsed transaction is never submitted, so the check leaves no trace on the ledger.
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


async def _endorse_once(profile: Path, org: str, channel: str, chaincode: str) -> None:
    deadlines = Deadlines(evaluate=10, endorse=10, submit=10, commit_status=10)
    async with Gateway.from_connection(profile, org, "User1", deadlines=deadlines) as gateway:
        contract = gateway.get_network(channel).get_contract(chaincode)
        await contract.new_proposal(_PROBE).endorse()


async def wait_endorsable(
    profile: Path, orgs: Sequence[str] | None = None, *, timeout: float = 120.0
) -> float:
    """Seconds it took until every org in `orgs` (default: all in the profile) could endorse."""
    loaded = ConnectionProfile.load(profile)
    names = list(orgs) if orgs else list(loaded.organizations)
    start = time.monotonic()
    deadline = start + timeout
    last_error = ""
    for org in names:
        while True:
            try:
                await _endorse_once(profile, org, loaded.channel, loaded.chaincode)
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
