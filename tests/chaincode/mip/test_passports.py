"""Passports on devnet: registration, uniqueness, holder signatures, vouching, status, recovery."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from mip_testkit import (
    ORGS,
    Holder,
    HolderKey,
    MipClients,
    expect_error,
    face_commitment,
    open_account,
    register_body,
    register_passport,
    request_arg,
)

from gateway.fabric import CommitError, Contract


async def _get(contract: Contract, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await contract.evaluate("Passport:Get", [passport_id])))


async def _vouch(mip: MipClients, voucher: HolderKey, vouchee: dict[str, Any]) -> dict[str, Any]:
    gateway = await mip.client("HospitalMSP", "gateway")
    request = voucher.sign_request("passport.vouch", {"vouchee": vouchee["id"]})
    result = await gateway.submit("Passport:Vouch", [request_arg(request)])
    return dict(json.loads(result))


async def test_register_and_get(mip: MipClients) -> None:
    key, record = await register_passport(mip, "SchoolMSP", level=1)
    assert record["public_key"] == key.public
    assert record["enrolling_org"] == "SchoolMSP"
    assert record["kyc_level"] == 1 and record["status"] == "active"
    got = await _get(await mip.client("PharmacyMSP", None), record["id"])
    assert got["face_commitment"] == record["face_commitment"] and got["vouches"] == 0
    async with expect_error("not_found"):
        await _get(await mip.client("HospitalMSP", None), "0" * 64)


async def test_register_refusals(mip: MipClients) -> None:
    registrar = await mip.client("HospitalMSP", "registrar")
    body = register_body()
    first = HolderKey.generate()
    await registrar.submit("Passport:Register",
                           [request_arg(first.sign_request("passport.register", body))])
    # Same face commitment, same enrolment nonce, same key: each refused on its own.
    for changed in [{"enrolment_nonce": "n" * 20}, {"face_commitment": "a" * 64}]:
        other = HolderKey.generate()
        async with expect_error("conflict"):
            await registrar.submit("Passport:Register", [request_arg(
                other.sign_request("passport.register", {**body, **changed}))])
    async with expect_error("conflict"):
        await registrar.submit("Passport:Register", [request_arg(
            first.sign_request("passport.register", register_body()))])
    # Only a registrar registers.
    for org, role in [("HospitalMSP", "doctor"), ("SchoolMSP", "gateway"), ("PharmacyMSP", None)]:
        request = HolderKey.generate().sign_request("passport.register", register_body())
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit("Passport:Register",
                                                       [request_arg(request)])
    bad_bodies = [
        {**register_body(), "kyc_level": 3},
        {**register_body(), "face_commitment": "not-a-hash"},
        {**register_body(), "guardians": ["AAAA"], "guardian_threshold": 1},
        {**register_body(guardians=[HolderKey.generate()]), "guardian_threshold": 2},
        {**register_body(), "template": [1, 2, 3]},
    ]
    for bad in bad_bodies:
        request = HolderKey.generate().sign_request("passport.register", bad)
        async with expect_error("invalid_request"):
            await registrar.submit("Passport:Register", [request_arg(request)])


async def test_holder_signature_checks(mip: MipClients) -> None:
    registrar = await mip.client("HospitalMSP", "registrar")
    key = HolderKey.generate()
    expired = key.sign_request("passport.register", register_body(),
                               expires=int(time.time()) - 5)
    async with expect_error("expired"):
        await registrar.submit("Passport:Register", [request_arg(expired)])
    too_long = key.sign_request("passport.register", register_body(), ttl=3600)
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Register", [request_arg(too_long)])
    other_channel = key.sign_request("passport.register", register_body(), channel="other")
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Register", [request_arg(other_channel)])
    wrong_action = key.sign_request("passport.vouch", register_body())
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Register", [request_arg(wrong_action)])
    tampered = key.sign_request("passport.register", register_body(level=1))
    tampered["body"]["kyc_level"] = 2
    async with expect_error("bad_signature"):
        await registrar.submit("Passport:Register", [request_arg(tampered)])
    good = key.sign_request("passport.register", register_body())
    await registrar.submit("Passport:Register", [request_arg(good)])
    async with expect_error("replay"):
        await registrar.submit("Passport:Register", [request_arg(good)])


async def test_vouching_to_level_three(mip: MipClients) -> None:
    _, target = await register_passport(mip, "HospitalMSP", level=2)
    voucher_a, record_a = await register_passport(mip, "SchoolMSP", level=2)
    voucher_b, _ = await register_passport(mip, "PharmacyMSP", level=2)
    level_one, _ = await register_passport(mip, "HospitalMSP", level=1)
    _, level_one_target = await register_passport(mip, "HospitalMSP", level=1)

    result = await _vouch(mip, voucher_a, target)
    assert (result["vouches"], result["kyc_level"]) == (1, 2)
    async with expect_error("conflict"):
        await _vouch(mip, voucher_a, target)
    async with expect_error("invalid_request"):
        await _vouch(mip, voucher_a, record_a)
    async with expect_error("precondition_failed"):
        await _vouch(mip, level_one, target)
    async with expect_error("precondition_failed"):
        await _vouch(mip, voucher_b, level_one_target)
    async with expect_error("not_found"):
        await _vouch(mip, HolderKey.generate(), target)
    doctor = await mip.client("HospitalMSP", "doctor")
    async with expect_error("access_denied"):
        await doctor.submit("Passport:Vouch", [request_arg(
            voucher_b.sign_request("passport.vouch", {"vouchee": target["id"]}))])
    result = await _vouch(mip, voucher_b, target)
    assert (result["vouches"], result["kyc_level"]) == (2, 3)
    got = await _get(doctor, target["id"])
    assert got["kyc_level"] == 3 and got["vouches"] == 2


async def test_status_changes_and_key_level_endorsement(mip: MipClients) -> None:
    key, record = await register_passport(mip, "HospitalMSP", level=2)
    _, other = await register_passport(mip, "HospitalMSP", level=2)
    pid = record["id"]
    async with expect_error("access_denied"):
        await (await mip.client("HospitalMSP", "doctor")).submit("Passport:Suspend",
                                                                 [pid, "lost card"])
    registrar = await mip.client("HospitalMSP", "registrar")
    # One org's endorsement is never enough (the chaincode's majority policy).
    with pytest.raises(CommitError) as info:
        await registrar.submit("Passport:Suspend", [pid, "lost card"],
                               endorsing_orgs=["SchoolMSP"])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Suspend", [pid, " "])
    suspended = json.loads(await registrar.submit(
        "Passport:Suspend", [pid, "lost card"]))
    assert suspended["status"] == "suspended" and suspended["status_reason"] == "lost card"
    async with expect_error("precondition_failed"):
        await _vouch(mip, key, other)
    async with expect_error("precondition_failed"):
        await registrar.submit("Passport:Suspend", [pid, "again"])
    reinstated = json.loads(await registrar.submit("Passport:Reinstate", [pid, "card found"]))
    assert reinstated["status"] == "active"
    revoked = json.loads(await registrar.submit("Passport:Revoke", [pid, "deceased", "false"]))
    assert revoked["status"] == "revoked" and revoked["fraudulent"] is False
    async with expect_error("precondition_failed"):
        await registrar.submit("Passport:Reinstate", [pid, "mistake"])


async def test_fraudulent_revocation_flags_vouches(mip: MipClients) -> None:
    _, target = await register_passport(mip, "SchoolMSP", level=2)
    fraud, fraud_record = await register_passport(mip, "HospitalMSP", level=2)
    honest, _ = await register_passport(mip, "PharmacyMSP", level=2)
    await _vouch(mip, fraud, target)
    assert (await _vouch(mip, honest, target))["kyc_level"] == 3
    registrar = await mip.client("HospitalMSP", "registrar")
    # The enrolling org's proposal alone is one org of three: recorded, not yet effective.
    proposed = json.loads(await registrar.submit(
        "Passport:Revoke", [fraud_record["id"], "identity fraud", "true"],
        endorsing_orgs=list(ORGS)))
    assert proposed["fraud_pending"] is True and proposed["status"] == "active"
    assert proposed["flagged_vouches"] == []
    assert (await _get(registrar, target["id"]))["kyc_level"] == 3
    school = await mip.client("SchoolMSP", "registrar")
    result = json.loads(await school.submit(
        "Passport:Revoke", [fraud_record["id"], "same face under two names", "true"],
        endorsing_orgs=list(ORGS)))
    assert result["status"] == "revoked" and result["fraudulent"] is True
    assert [(p["org"], p["reason"]) for p in result["fraud_proposals"]] == [
        ("HospitalMSP", "identity fraud"), ("SchoolMSP", "same face under two names")]
    assert result["flagged_vouches"] == [target["id"]] and result["demoted"] == [target["id"]]
    got = await _get(registrar, target["id"])
    assert got["kyc_level"] == 2 and got["vouches"] == 1
    async with expect_error("precondition_failed"):
        await _vouch(mip, fraud, target)


async def test_guardian_key_rotation(mip: MipClients) -> None:
    guardians = [HolderKey.generate() for _ in range(3)]
    old_key, record = await register_passport(mip, "HospitalMSP", level=2, guardians=guardians,
                                              threshold=2)
    _, no_guardians = await register_passport(mip, "HospitalMSP", level=2)
    _, vouchee = await register_passport(mip, "HospitalMSP", level=2)
    pid = record["id"]
    new_key = HolderKey.generate()
    body = {"passport_id": pid, "new_public_key": new_key.public}

    def approve(guardian: HolderKey, approval_body: dict[str, Any] = body) -> dict[str, Any]:
        return guardian.sign_request("passport.rotate", approval_body)

    gateway = await mip.client("HospitalMSP", "gateway")

    async def rotate(approvals: list[dict[str, Any]], passport_id: str = pid) -> bytes:
        return await gateway.submit(
            "Passport:RotateKey", [passport_id, new_key.public, json.dumps(approvals)])

    async with expect_error("access_denied"):
        await rotate([approve(guardians[0])])
    async with expect_error("access_denied"):
        await rotate([approve(guardians[0]), approve(HolderKey.generate())])
    async with expect_error("invalid_request"):
        await rotate([approve(guardians[0]), approve(guardians[0])])
    async with expect_error("invalid_request"):
        await rotate([approve(guardians[0]),
                      approve(guardians[1], {**body, "new_public_key": old_key.public})])
    async with expect_error("precondition_failed"):
        await rotate([], no_guardians["id"])
    async with expect_error("access_denied"):
        await (await mip.client("HospitalMSP", "doctor")).submit(
            "Passport:RotateKey",
            [pid, new_key.public, json.dumps([approve(guardians[0]), approve(guardians[1])])])
    approvals = [approve(guardians[1]), approve(guardians[2])]
    rotated = json.loads(await rotate(approvals))
    assert rotated["public_key"] == new_key.public and rotated["key_version"] == 2
    assert rotated["id"] == pid
    async with expect_error("conflict"):
        await rotate(approvals)
    # Replaying the guardians' approvals towards yet another key is refused before anything.
    async with expect_error("replay"):
        await gateway.submit("Passport:RotateKey",
                             [pid, HolderKey.generate().public, json.dumps(approvals)])
    # The old key no longer speaks for the passport; the new one does.
    async with expect_error("not_found"):
        await _vouch(mip, old_key, vouchee)
    assert (await _vouch(mip, new_key, vouchee))["vouches"] == 1


async def test_metadata_lists_identity_transactions_with_arguments(mip: MipClients) -> None:
    expected = {
        "Passport": {"Register": ["request"], "Get": ["passport_id"], "Vouch": ["request"],
                     "Suspend": ["passport_id", "reason"], "Reinstate": ["passport_id", "reason"],
                     "Revoke": ["passport_id", "reason", "fraudulent"],
                     "RotateKey": ["passport_id", "new_public_key", "approvals"],
                     "SetFaceCommitment": ["passport_id", "request"],
                     "MoveKey": ["passport_id", "request", "confirmation"],
                     "Screen": ["passport_id", "decision", "reason"]},
        "Account": {"RegisterKycIssuer": ["schema_json", "cred_def_json"],
                    "ListKycIssuers": [],
                    "PublishKycRevocation": ["rev_reg_def_json", "status_list_json"],
                    "GetKycRevocation": ["rev_reg_id"],
                    "Open": ["request", "presentation"], "Get": ["pseudonym"],
                    "Reprove": ["pseudonym", "request", "presentation"],
                    "Close": ["pseudonym", "request"],
                    "RotateKey": ["pseudonym", "request", "confirmation"],
                    "FindByKey": ["request"]},
        "Config": {"Set": ["name", "value"], "Get": ["name"]},
    }
    contract = await mip.client("PharmacyMSP", None)
    metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
    for name, transactions in expected.items():
        listed = {t["name"]: t for t in metadata["contracts"][name]["transactions"]}
        assert set(listed) == set(transactions), name
        for tx, params in transactions.items():
            assert [p["name"] for p in listed[tx].get("parameters", [])] == params, tx


async def test_set_face_commitment(mip: MipClients, holder: Holder) -> None:
    """A re-enrolled face reference's commitment replaces the passport's, signed by the
    passport key and carried by the enrolling org; every commitment is used once."""
    key, record = await register_passport(mip, "HospitalMSP", level=2)
    pid, old = record["id"], record["face_commitment"]
    gateway = await mip.client("HospitalMSP", "gateway")

    def request(new: str, previous: str = old, signer: HolderKey = key,
                passport_id: str = pid, **extra: Any) -> str:
        body = {"passport_id": passport_id, "face_commitment": new, "previous": previous,
                **extra}
        return request_arg(signer.sign_request("passport.face", body))

    async def set_face(arg: str, passport_id: str = pid, carrier: Contract = gateway) -> Any:
        return json.loads(await carrier.submit("Passport:SetFaceCommitment",
                                               [passport_id, arg]))

    new = face_commitment()
    # Not the passport key (another passport's key, a fresh key): bad_signature.
    other_key, other = await register_passport(mip, "HospitalMSP", level=2)
    for signer in (other_key, HolderKey.generate()):
        async with expect_error("bad_signature"):
            await set_face(request(new, signer=signer))
    # Another org's carrier, or a role that carries nothing: access_denied.
    for org, role in [("SchoolMSP", "gateway"), ("PharmacyMSP", "registrar"),
                      ("HospitalMSP", "doctor")]:
        async with expect_error("access_denied"):
            await set_face(request(new), carrier=await mip.client(org, role))
    # Malformed: not a hash, an extra field, a body for another passport.
    for arg in (request("not-a-hash"), request(new, previous="A" * 64),
                request(new, extra="x"), request(new, passport_id=other["id"])):
        async with expect_error("invalid_request"):
            await set_face(arg)
    # Used commitments: its own current one, another passport's, an account's.
    account = await open_account(mip, holder, "HospitalMSP")
    for used in (old, other["face_commitment"], account.record["face_commitment"]):
        async with expect_error("conflict"):
            await set_face(request(used))
    # A stale `previous` (not the current commitment).
    async with expect_error("conflict"):
        await set_face(request(new, previous=other["face_commitment"]))
    updated = await set_face(request(new))
    assert updated["face_commitment"] == new and updated["id"] == pid
    reader = await mip.client("PharmacyMSP", None)
    assert (await _get(reader, pid))["face_commitment"] == new
    # The replaced commitment stays used: it can be neither set back nor registered again.
    async with expect_error("conflict"):
        await set_face(request(old, previous=new))
    registrar = await mip.client("HospitalMSP", "registrar")
    async with expect_error("conflict"):
        await registrar.submit("Passport:Register", [request_arg(HolderKey.generate()
                               .sign_request("passport.register",
                                             register_body(commitment=old)))])
    # A revoked passport's commitment no longer changes.
    await registrar.submit("Passport:Revoke", [pid, "test", "false"])
    async with expect_error("precondition_failed"):
        await set_face(request(face_commitment(), previous=new))
