"""A verified pickup's attestation is sealed in the gateway's database (issue #16): the
database file alone does not show it, and it opens only for its own pickup and pharmacist
(gateway/services/attestation_sealing.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, mip
from mip_testkit import MipClients
from test_pickup import URL, answer, ready_prescription, start

from gateway.services.attestation_sealing import (
    SEALED_PREFIX,
    AttestationUnreadable,
    open_attestation,
)

__all__ = ["mip"]


def database_bytes(gw: GatewayClient) -> bytes:
    """The gateway's SQLite files as a copy of the data dir would hold them."""
    path: Path = gw.state.settings.db_path
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"))
                    if p.exists())


def stored(gw: GatewayClient, pickup_id: str) -> str:
    row = gw.state.db.query_one("SELECT attestation FROM pickups WHERE pickup_id = ?",
                                (pickup_id,))
    assert row is not None and row["attestation"] is not None
    return str(row["attestation"])


async def test_the_attestation_is_sealed_for_its_pickup_and_pharmacist(
        gw: GatewayClient, mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip, refills=1)
    mine, other = [await start(gw, rx["credential_id"]) for _ in range(2)]
    for pickup in (mine, other):
        assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"
    sealed = stored(gw, mine["pickup_id"])
    assert sealed.startswith(SEALED_PREFIX)
    attestation = json.loads(open_attestation(gw.state, sealed, mine["pickup_id"], PHARMACY,
                                              "pharmacist"))
    assert attestation["payload"]["credential_id"] == rx["credential_id"]
    # Neither its nonce nor its signature is in the database files.
    on_disk = database_bytes(gw)
    assert on_disk
    for secret in (attestation["payload"]["nonce"], attestation["signature"]):
        assert secret.encode() not in on_disk
    # It does not open for another pickup or another pharmacist.
    for pickup_id, name in ((other["pickup_id"], "pharmacist"),
                            (mine["pickup_id"], "another-pharmacist")):
        with pytest.raises(AttestationUnreadable):
            open_attestation(gw.state, sealed, pickup_id, PHARMACY, name)

    # Copied into the other pickup's row: that dispense is refused, nothing is submitted.
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE pickups SET attestation = ? WHERE pickup_id = ?",
                     (sealed, other["pickup_id"]))
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    assert_error(await gw.http.post(f"{URL}/{other['pickup_id']}/dispense",
                                    headers=pharmacist), 409, "not_verified")
    record = (await gw.http.get(f"/api/v1/credentials/{rx['credential_id']}")).json()
    assert record["fills"]["used"] == 0
    # Its own pickup dispenses with it.
    r = await gw.http.post(f"{URL}/{mine['pickup_id']}/dispense", headers=pharmacist)
    assert r.status_code == 200, r.text
    assert r.json()["fills_used"] == 1
