"""The second wrap (`vault_helpers: 2`) on a gateway serving every org (helpers in process):
the vault is wrapped for the next two orgs; when the first has locked the passport the
second answers and the holder unlocks; a confirmation with a wrong token is refused and
clears nothing; when both are locked the desk says 423 `password_helper_locked`."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from enrolment_kit import PASSWORDS, enrol, unlock
from gateway_testkit import GatewayClient, assert_error, make_settings
from mip_testkit import MipNetwork

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.holder import oprf, vault_v3
from gateway.main import create_app
from gateway.services.password_oprf import (
    MAX_OPRF_FAILURES,
    ConfirmationRefused,
    OprfLocked,
    password_oprf_service,
)
from gateway.services.state import build_state


def lock(gw: GatewayClient, helper: str, passport_id: str, salt: bytes) -> None:
    service = password_oprf_service(gw.state)
    element = oprf.blind(b"a guess").element
    with pytest.raises(OprfLocked):
        for _ in range(MAX_OPRF_FAILURES + 1):
            service.evaluate(HOSPITAL, helper, passport_id, salt, element)


async def test_the_second_helper_answers_when_the_first_has_locked(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "gateway", gw_network.connection, vault_helpers=2)
    state = build_state(settings)
    state._face = face_engine
    app = create_app(state=state)
    app.state.mip = state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(
            app=app, raise_app_exceptions=False), base_url="http://gateway",
            timeout=120) as http:
        try:
            gw = GatewayClient(state, http)
            pid = (await enrol(gw, "grace_hopper"))["passport_id"]
            row = state.db.query_one("SELECT wrapped_secret FROM holders WHERE passport_id = ?",
                                     (pid,))
            assert row is not None
            blob = vault_v3.HardenedSecret.from_json(row["wrapped_secret"])
            assert blob.helpers == (SCHOOL, PHARMACY)
            service = password_oprf_service(state)
            assert service.pending(SCHOOL, pid) == service.pending(PHARMACY, pid) == 0

            # A wrong token is refused and clears nothing.
            evaluation = service.evaluate(HOSPITAL, SCHOOL, pid, blob.salt,
                                          oprf.blind(b"x").element)
            with pytest.raises(ConfirmationRefused):
                service.confirm(HOSPITAL, SCHOOL, evaluation.evaluation_id, os.urandom(32))
            assert service.pending(SCHOOL, pid) == 1

            lock(gw, SCHOOL, pid, blob.salt)
            r = await unlock(gw, "grace_hopper", pid, password=PASSWORDS["grace_hopper"])
            assert r.status_code == 200, r.text
            assert r.json()["level"] == 2
            assert service.pending(PHARMACY, pid) == 0  # confirmed at the second helper
            assert service.pending(SCHOOL, pid) == MAX_OPRF_FAILURES  # still locked there

            lock(gw, PHARMACY, pid, blob.salt)
            r = await unlock(gw, "grace_hopper", pid, password=PASSWORDS["grace_hopper"])
            assert_error(r, 423, "password_helper_locked")
        finally:
            await state.close()
