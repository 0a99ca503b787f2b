"""Vault password hardening across two org gateways (docs/gateway.md "Password hardening").

A Hospital gateway (the enrolling org E) and a School gateway (its helper H: the next org in
the ring), each org-scoped with its own data dir and keys, over one devnet, reaching each
other in process (httpx's ASGI transport in place of the network; requests are signed and
checked as over https).

- Enrolment at the Hospital writes vault version 3 wrapped for the School; an unlock at the
  Hospital's desk asks the School and opens it; the School counts nothing after it.
- A version-2 vault still opens and is version 3 afterwards.
- With the Hospital's complete data dir and keys an offline guess cannot be checked: the
  attacker's code path needs the School's OPRF output; with any other output the right and
  the wrong password fail alike (and with the School's real answer the same path opens it).
- The School's route refuses unsigned, replayed and staff-signed requests (401).
- The School's rate limit stops guessing: after `MAX_OPRF_FAILURES` unconfirmed evaluations
  it answers 423, and the Hospital's desk unlock then says 423 `password_helper_locked`.
"""

from __future__ import annotations

import base64
import json
import os
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from enrolment_kit import API, PASSWORDS, enrol, unlock
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import org_gateways, peer_signer

from chaincode.protocol.orgs import HOSPITAL, SCHOOL
from face_engine.engine import FaceEngine
from gateway.holder import oprf, vault, vault_v3
from gateway.holder.errors import UnlockFailed
from gateway.services.holder_sealing import open_sealed
from gateway.services.holders import holder_service
from gateway.services.ledger import SERVICE_USER
from gateway.services.password_hardening import helpers_for, password_hardening
from gateway.services.password_oprf import (
    MAX_OPRF_FAILURES,
    OprfLocked,
    org_key,
    own_output,
    password_oprf_service,
)

ORGS = (HOSPITAL, SCHOOL)
EVALUATIONS = f"{API}/oprf/evaluations"


def two_gateways(network: MipNetwork, engine: FaceEngine, tmp_path: Path
                 ) -> AbstractAsyncContextManager[dict[str, GatewayClient]]:
    return org_gateways(network, engine, tmp_path, ORGS)


def stored_blob(gw: GatewayClient, passport_id: str) -> str:
    row = gw.state.db.query_one("SELECT wrapped_secret FROM holders WHERE passport_id = ?",
                                (passport_id,))
    assert row is not None
    return str(row["wrapped_secret"])


def offline_guess(hospital: GatewayClient, passport_id: str, password: str,
                  helper_output: bytes | None) -> bytes:
    """Everything an attacker holding the Hospital's database and key provider can do with
    one password guess. `helper_output` None: the attacker's best stand-in for the School's
    output (the same derivation under the keys it has)."""
    state = hospital.state
    holders = holder_service(state)
    record = holders.record(passport_id)
    assert record is not None
    face_key = open_sealed(holders._face_factor_key, record.face_key_sealed,
                           passport_id.encode())
    blob = vault_v3.HardenedSecret.from_json(record.wrapped_secret)
    pw = vault.check_password(password)
    data = vault_v3.oprf_input(pw, passport_id)
    own = own_output(state.keys, HOSPITAL, passport_id, blob.salt, data)
    if helper_output is None:
        helper_output = oprf.evaluate_unblinded(
            org_key(state.keys, SCHOOL, passport_id, blob.salt), data)
    pw_key = vault_v3.password_key(pw, blob.salt, blob.kdf_params)
    return vault_v3.unwrap(blob, pw_key, face_key, passport_id, SCHOOL,
                           vault_v3.Shares(own, helper_output))[0]


async def test_vault_hardened_by_the_helper_org(gw_network: MipNetwork,
                                                face_engine: FaceEngine,
                                                tmp_path: Path) -> None:
    assert helpers_for(HOSPITAL) == [SCHOOL]
    async with two_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        password = PASSWORDS["astronaut"]
        pid = (await enrol(hospital, "astronaut"))["passport_id"]
        blob = vault_v3.HardenedSecret.from_json(stored_blob(hospital, pid))
        assert blob.helpers == (SCHOOL,) and blob.enrolling_org == HOSPITAL
        helper = password_oprf_service(school.state)
        assert helper.pending(SCHOOL, pid) == 0  # the enrolment's evaluation is confirmed
        # The School keeps no vault, only the confirm token's hash.
        assert holder_service(school.state).record(pid) is None
        assert len(school.state.db.query("SELECT * FROM oprf_verifiers")) == 1

        # Unlock at the Hospital's desk, across the two gateways.
        r = await unlock(hospital, "astronaut", pid, password=password)
        assert r.status_code == 200, r.text
        assert r.json()["level"] == 2
        session = holder_service(hospital.state).session(r.json()["session_id"])
        assert session is not None
        master = session.master
        assert helper.pending(SCHOOL, pid) == 0
        r = await unlock(hospital, "astronaut", pid, password="wrong-Pa55word-guess")
        assert_error(r, 401, "unlock_failed")
        assert helper.pending(SCHOOL, pid) == 1

        # Migration: a version-2 vault opens and is version 3 after the unlock.
        holders = holder_service(hospital.state)
        record = holders.record(pid)
        assert record is not None
        face_key = open_sealed(holders._face_factor_key, record.face_key_sealed, pid.encode())
        v2 = vault.wrap(master, password, face_key, pid, kdf=vault.INTERACTIVE_KDF)
        with hospital.state.db.transaction() as conn:
            conn.execute("UPDATE holders SET wrapped_secret = ? WHERE passport_id = ?",
                         (v2.to_json(), pid))
        r = await unlock(hospital, "astronaut", pid, password=password)
        assert r.status_code == 200, r.text
        assert r.json()["level"] == 2
        upgraded = stored_blob(hospital, pid)
        assert vault_v3.blob_version(upgraded) == 3
        assert vault_v3.HardenedSecret.from_json(upgraded).salt != blob.salt
        # The new salt's token clears only its own evaluations: the wrong guess still counts.
        assert helper.pending(SCHOOL, pid) == 1
        r = await unlock(hospital, "astronaut", pid, password=password)
        assert r.status_code == 200, r.text

        # Offline, with the Hospital's complete data dir and keys: no answer from the
        # School, no check. Right and wrong password fail alike...
        outcomes = []
        for guess in (password, "another-Pa55word-guess"):
            for stand_in in (None, os.urandom(64)):
                with pytest.raises(UnlockFailed) as caught:
                    offline_guess(hospital, pid, guess, stand_in)
                outcomes.append(str(caught.value))
        assert len(set(outcomes)) == 1
        # ...while the same code path with the School's real (online, counted) answer opens
        # it: the School's output is exactly what the attacker lacks.
        current = vault_v3.HardenedSecret.from_json(stored_blob(hospital, pid))
        data = vault_v3.oprf_input(vault.check_password(password), pid)
        blinded = oprf.blind(data)
        evaluation = helper.evaluate(HOSPITAL, SCHOOL, pid, current.salt, blinded.element)
        real = oprf.finalize(data, blinded, evaluation.element)
        assert offline_guess(hospital, pid, password, real) == master
        assert helper.pending(SCHOOL, pid) == 2

        # The School's route answers only another org's gateway's fresh signature.
        payload = json.dumps({"passport_id": pid, "salt": base64.b64encode(current.salt).decode(),
                              "blinded_element": base64.b64encode(blinded.element).decode()}
                             ).encode()
        plain = {"Content-Type": "application/json"}
        r = await school.http.post(EVALUATIONS, content=payload, headers=plain)
        assert_error(r, 401, "peer_unauthenticated")
        connection = gw_network.connection
        signed = peer_signer(connection, HOSPITAL, SERVICE_USER).headers(
            "POST", EVALUATIONS, payload, SCHOOL)
        r = await school.http.post(EVALUATIONS, content=payload, headers={**plain, **signed})
        assert r.status_code == 201, r.text
        assert r.json()["remaining"] == MAX_OPRF_FAILURES - 3
        r = await school.http.post(EVALUATIONS, content=payload, headers={**plain, **signed})
        assert_error(r, 401, "peer_unauthenticated")  # the same request again: a replay
        staff_signed = peer_signer(connection, HOSPITAL, "registrar").headers(
            "POST", EVALUATIONS, payload, SCHOOL)
        r = await school.http.post(EVALUATIONS, content=payload,
                                   headers={**plain, **staff_signed})
        assert_error(r, 403, "peer_not_gateway")  # a staff identity is not a gateway
        own = peer_signer(connection, SCHOOL, SERVICE_USER).headers(
            "POST", EVALUATIONS, payload, SCHOOL)
        r = await school.http.post(EVALUATIONS, content=payload, headers={**plain, **own})
        assert_error(r, 401, "peer_unauthenticated")  # not from itself
        altered = payload.replace(pid.encode(), b"x" + pid[1:].encode())
        r = await school.http.post(EVALUATIONS, content=altered, headers={
            **plain, **peer_signer(connection, HOSPITAL, SERVICE_USER).headers(
                "POST", EVALUATIONS, payload, SCHOOL)})
        assert_error(r, 401, "peer_unauthenticated")  # body not the one signed
        assert helper.pending(SCHOOL, pid) == 3

        # The rate limit stops guessing: the Hospital (the attacker here) asks for guesses
        # until the School locks the passport.
        hardening = password_hardening(hospital.state)
        asked = 0
        with pytest.raises(OprfLocked):
            for i in range(MAX_OPRF_FAILURES + 1):
                guessed = vault_v3.oprf_input(vault.check_password(f"guess-number-{i:04d}"),
                                              pid)
                await hardening.answer(HOSPITAL, SCHOOL, pid, current.salt, guessed)
                asked += 1
        assert asked == MAX_OPRF_FAILURES - 3
        assert helper.pending(SCHOOL, pid) == MAX_OPRF_FAILURES
        # ...and the holder's own right password is refused too until the window passes
        # (423, not counted as a failure at the Hospital).
        r = await unlock(hospital, "astronaut", pid, password=password)
        assert_error(r, 423, "password_helper_locked")
        # A face-only unlock (level 1) needs no helper.
        r = await unlock(hospital, "astronaut", pid)
        assert r.status_code == 200, r.text
        assert r.json()["level"] == 1
