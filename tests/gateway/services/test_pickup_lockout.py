"""Pickup lockout (issue #16): concurrent wrong answers get no more face matches than the
lockout allows. Same faces as test_pickup.py (Grace Hopper enrolled, the astronaut someone
else)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway_testkit import GatewayClient
from ledger_kit import mip
from mip_testkit import MipClients
from test_pickup import answer, ready_prescription, start

from gateway.services.faces import face_service
from gateway.services.pickup import PickupService

__all__ = ["mip"]


def _in_flight(gw: GatewayClient) -> int:
    row = gw.state.db.query_one("SELECT COUNT(*) AS n FROM face_attempts")
    assert row is not None
    return int(row["n"])


async def test_concurrent_wrong_answers_get_at_most_the_limit_of_matches(
        gw: GatewayClient, mip: MipClients) -> None:
    limit = gw.state.settings.pickup_max_failures
    _, rx = await ready_prescription(gw, mip, refills=2)
    pickups = [await start(gw, rx["credential_id"]) for _ in range(limit + 3)]
    faces = face_service(gw.state)
    evaluated: list[bool] = []
    real_matches = faces.matches

    def counting_matches(*args: Any) -> bool:
        evaluated.append(True)
        return real_matches(*args)

    faces.matches = counting_matches  # type: ignore[method-assign]
    try:
        replies = await asyncio.gather(*[answer(gw, p, "astronaut") for p in pickups])
    finally:
        del faces.matches
    assert len(evaluated) <= limit
    refused = [r for r in replies if r.status_code == 200]
    assert all(r.json() == {"result": "refused", "reason": "face_mismatch"} for r in refused)
    assert len(refused) == len(evaluated) == limit
    assert all(r.status_code == 423 and r.json()["error"]["code"] == "locked"
               for r in replies if r.status_code != 200)
    assert PickupService(gw.state).locked_until(rx["credential_id"]) is not None
    assert _in_flight(gw) == 0  # every reservation settled
