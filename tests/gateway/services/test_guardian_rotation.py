"""Guardian rotation of a moved passport (services/guardian_rotation.py): the holder's new
device key asks, k guardians approve (at a desk with their custodial key, or on their device
when their own key moved), the gateway carries `Passport:RotateKey`; the new key speaks for
the passport and the lost one no more. Each refusal is typed and changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from enrolment_kit import API, PASSWORDS, enrol, serving, session_headers, unlock
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import desk_unlock, holder, org_gateways

from chaincode.protocol.encoding import b64
from chaincode.protocol.orgs import HOSPITAL, SCHOOL
from face_engine.engine import FaceEngine
from gateway.fabric import ChaincodeError
from gateway.holder.keys import sign_holder_request

ROTATIONS = f"{API}/passport-rotations"


def public_b64(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@pytest.fixture
async def gw(gw_network: MipNetwork, tmp_path: Path,
             face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    # A data dir of its own: passports here move to devices, which no other test expects.
    async with serving(tmp_path / "rotation", gw_network, face_engine) as client:
        yield client


async def desk(gw: GatewayClient, who: str, passport_id: str) -> dict[str, str]:
    """Headers of `who`'s level-2 holder session at HospitalMSP's desk."""
    return session_headers(await unlock(gw, who, passport_id, password=PASSWORDS[who]))


async def move_to_device(gw: GatewayClient, who: str, passport_id: str) -> Ed25519PrivateKey:
    """`who` moves their passport key to a new device key at the desk (Passport:MoveKey)."""
    device = Ed25519PrivateKey.generate()
    r = await gw.http.post(
        f"{API}/holders/sessions/current/passport/move", headers=await desk(gw, who, passport_id),
        json={"signed_request": sign_holder_request(device, "passport.move", {
            "passport_id": passport_id, "new_public_key": public_b64(device)})})
    assert r.status_code == 200, r.text
    return device


def ask(passport_id: str, new: Ed25519PrivateKey, signer: Ed25519PrivateKey | None = None
        ) -> dict[str, Any]:
    return {"signed_request": sign_holder_request(
        signer or new, "passport.rotate-request",
        {"passport_id": passport_id, "new_public_key": public_b64(new)})}


def approval(rotation: dict[str, Any], guardian_pid: str, key: Ed25519PrivateKey,
             **changes: Any) -> dict[str, Any]:
    signed = sign_holder_request(key, rotation["action"], rotation["body"],
                                 expires=changes.pop("expires", rotation["expires"]))
    return {"guardian_passport_id": guardian_pid, "signed_request": {**signed, **changes}}


async def passport(gw: GatewayClient, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await gw.state.ledger.carrier("HospitalMSP").evaluate(
        "Passport:Get", [passport_id])))


async def vouch(gw: GatewayClient, key: Ed25519PrivateKey, vouchee: str) -> dict[str, Any]:
    """A passport key's own act: a vouch signed on the device, carried by the gateway."""
    return dict(json.loads(await gw.state.ledger.carrier("HospitalMSP").submit(
        "Passport:Vouch", [json.dumps(sign_holder_request(
            key, "passport.vouch", {"vouchee": vouchee}, gw.state.settings.channel))])))


async def test_guardians_rotate_a_moved_passport_to_the_new_device_key(
        gw: GatewayClient) -> None:
    pids = {who: (await enrol(gw, who))["passport_id"]
            for who in ("bush", "stoiber", "astronaut")}
    grace = (await enrol(gw, "grace_hopper", guardians=list(pids.values()),
                         threshold=3))["passport_id"]
    lost = Ed25519PrivateKey.generate()

    # Not moved yet: the desk's custodial recovery applies, not this one.
    assert_error(await gw.http.post(f"{API}/passports/{grace}/rotations",
                                    json=ask(grace, lost)), 409, "passport_not_moved")
    # The guardian astronaut moves their own passport to a device; so does grace.
    astro_device = await move_to_device(gw, "astronaut", pids["astronaut"])
    grace_device = await move_to_device(gw, "grace_hopper", grace)
    # A moved passport without guardians has nobody to approve.
    assert_error(await gw.http.post(f"{API}/passports/{pids['astronaut']}/rotations",
                                    json=ask(pids["astronaut"], lost)), 409, "no_guardians")

    # Grace lost the device: the wallet makes a new key and asks with it.
    new = Ed25519PrivateKey.generate()
    assert_error(await gw.http.post(f"{API}/passports/{grace}/rotations",
                                    json=ask(grace, new, signer=lost)), 422, "request_mismatch")
    assert_error(await gw.http.post(f"{API}/passports/{'ab' * 32}/rotations",
                                    json=ask("ab" * 32, new)), 404, "passport_not_found")
    r = await gw.http.post(f"{API}/passports/{grace}/rotations", json=ask(grace, new))
    assert r.status_code == 201, r.text
    rotation = r.json()
    rid = rotation["rotation_id"]
    assert rotation["body"] == {"passport_id": grace, "new_public_key": public_b64(new)}
    assert rotation["action"] == "passport.rotate" and rotation["threshold"] == 3
    assert rotation["approved"] == [] and rotation["status"] == "open"
    assert (await gw.http.get(f"{ROTATIONS}/{rid}")).json() == rotation
    assert_error(await gw.http.get(f"{ROTATIONS}/{'0' * 32}"), 404, "rotation_not_found")

    # Refusals, each changing nothing: the holder as their own guardian; a key that is not
    # the named passport's; a passport not named; a guardian whose key moved, at the desk
    # (its custodial key is retired); an approval of another deadline; too few approvals.
    approve_at = f"{API}/holders/sessions/current/passport-rotations/{rid}/approve"
    assert_error(await gw.http.post(approve_at, headers=await desk(gw, "grace_hopper", grace)),
                 403, "not_a_guardian")
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/approvals", json=approval(
        rotation, pids["bush"], Ed25519PrivateKey.generate())), 403, "not_a_guardian")
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/approvals", json=approval(
        rotation, grace, grace_device)), 403, "not_a_guardian")
    assert_error(await gw.http.post(approve_at, headers=await desk(
        gw, "astronaut", pids["astronaut"])), 409, "guardian_key_moved")
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/approvals", json=approval(
        rotation, pids["astronaut"], astro_device, expires=rotation["expires"] - 1)),
        422, "request_mismatch")
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/approvals", json=approval(
        rotation, pids["astronaut"], astro_device, body={**rotation["body"],
                                                         "new_public_key": public_b64(lost)})),
        422, "request_mismatch")
    assert (await gw.http.get(f"{ROTATIONS}/{rid}")).json()["approved"] == []
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/submit"), 409, "too_few_approvals")

    # Bush approves at the desk (custodial key); a second approval of his is refused.
    bush_desk = await desk(gw, "bush", pids["bush"])
    r = await gw.http.post(approve_at, headers=bush_desk)
    assert r.status_code == 200, r.text
    assert r.json()["approved"] == [(await passport(gw, pids["bush"]))["public_key"]]
    assert_error(await gw.http.post(approve_at, headers=bush_desk), 409, "already_approved")
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/submit"), 409, "too_few_approvals")
    assert (await passport(gw, grace))["public_key"] == public_b64(grace_device)

    # Stoiber's custodian signs his approval at its desk for a request another gateway may
    # hold; whoever carries it posts it there (here: the same gateway).
    stoiber_desk = await desk(gw, "stoiber", pids["stoiber"])
    sign_at = f"{API}/holders/sessions/current/passport-rotations/approval"
    assert_error(await gw.http.post(sign_at, headers=stoiber_desk, json={
        **rotation["body"], "expires": rotation["expires"] + 3600}), 422, "request_mismatch")
    r = await gw.http.post(sign_at, headers=stoiber_desk,
                           json={**rotation["body"], "expires": rotation["expires"]})
    assert r.status_code == 200, r.text
    r = await gw.http.post(f"{ROTATIONS}/{rid}/approvals", json={
        "guardian_passport_id": pids["stoiber"], **r.json()})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "open" and len(r.json()["approved"]) == 2
    assert_error(await gw.http.post(f"{ROTATIONS}/{rid}/submit"), 409, "too_few_approvals")

    # The astronaut approves on the device: the k-th approval, and the ledger rotates.
    r = await gw.http.post(f"{ROTATIONS}/{rid}/approvals",
                           json=approval(rotation, pids["astronaut"], astro_device))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rotated" and len(r.json()["approved"]) == 3
    record = await passport(gw, grace)
    assert record["public_key"] == public_b64(new)
    assert record["retired_keys"][-1] == public_b64(grace_device)
    assert_error(await gw.http.post(approve_at, headers=stoiber_desk), 409,
                 "rotation_finished")

    # The new device key speaks for the passport; the lost one no more.
    assert (await vouch(gw, new, pids["bush"]))["vouches"] == 1
    with pytest.raises(ChaincodeError, match="not_found"):
        await vouch(gw, grace_device, pids["stoiber"])

    # A request past its deadline takes no more approvals (the contract would refuse them).
    newer = Ed25519PrivateKey.generate()
    r = await gw.http.post(f"{API}/passports/{grace}/rotations", json=ask(grace, newer))
    assert r.status_code == 201, r.text
    late = r.json()
    with gw.state.db.transaction() as conn:  # test-only: the deadline passed
        conn.execute("UPDATE guardian_rotations SET expires = expires - 7200 WHERE "
                     "rotation_id = ?", (late["rotation_id"],))
    assert_error(await gw.http.post(
        f"{API}/holders/sessions/current/passport-rotations/{late['rotation_id']}/approve",
        headers=bush_desk), 410, "rotation_expired")
    assert (await passport(gw, grace))["public_key"] == public_b64(new)
    # Others' requests do not block the holder's (no per-passport cap a stranger could
    # fill); an unfinished one is deleted an hour after its deadline, when the next comes.
    for _ in range(6):
        r = await gw.http.post(f"{API}/passports/{grace}/rotations",
                               json=ask(grace, Ed25519PrivateKey.generate()))
        assert r.status_code == 201, r.text
    assert_error(await gw.http.get(f"{ROTATIONS}/{late['rotation_id']}"), 404,
                 "rotation_not_found")
    assert (await gw.http.get(f"{ROTATIONS}/{rid}")).json()["status"] == "rotated"


async def test_a_guardian_at_another_orgs_desk_approves_at_their_own(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    """The custody relay signs no approval: at another org's desk, that org would compose
    what the guardian's custodian signs (and could put its own key in it)."""
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        at_school = holder(await desk_unlock(school, SCHOOL, "astronaut", astro,
                                             PASSWORDS["astronaut"]))
        r = await school.http.post(
            f"{API}/holders/sessions/current/passport-rotations/approval", headers=at_school,
            json={"passport_id": "ab" * 32, "expires": int(time.time()) + 300,
                  "new_public_key": public_b64(Ed25519PrivateKey.generate())})
        assert_error(r, 409, "custody_elsewhere")
        # At the Hospital's own desk the same guardian's custodian signs it.
        at_hospital = holder(await desk_unlock(hospital, HOSPITAL, "astronaut", astro,
                                               PASSWORDS["astronaut"]))
        r = await hospital.http.post(
            f"{API}/holders/sessions/current/passport-rotations/approval", headers=at_hospital,
            json={"passport_id": "ab" * 32, "expires": int(time.time()) + 300,
                  "new_public_key": public_b64(Ed25519PrivateKey.generate())})
        assert r.status_code == 200, r.text
        assert r.json()["signed_request"]["action"] == "passport.rotate"
