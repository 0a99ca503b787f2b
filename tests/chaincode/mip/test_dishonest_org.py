"""One dishonest member org, attacking with its own peer's key (docs/chaincode.md, threat model).

Each forgery below is a read-write set written by hand, endorsed by ONE org's peer (the org
runs its own peer and chaincode server, so the contract's code is no defence) and submitted
through that org's Gateway: the committing peers must invalidate it with
ENDORSEMENT_POLICY_FAILURE, and the ledger must read as before. The same writes signed by a
majority commit where the threat-model table says a majority may write (the model assumes
a majority of honest orgs), and do not where a stricter key-level policy holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import pytest
from credential_kit import (
    HOSPITAL,
    PHARMACY,
    SCHOOL,
    CounterGateway,
    grant,
    issue,
    request_and_read,
    revoke_grant,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from forgery_kit import POLICY_FAILURE, Forger, PrivateWrites
from identity_kit import admit, client_id
from mip_testkit import (
    Account,
    Holder,
    HolderKey,
    MipClients,
    expect_error,
    new_id,
    open_account,
    register_passport,
    register_provisional_passport,
    request_arg,
)

from chaincode.mip.accounts import KYC_REVOCATION_OBJECT, account_key
from chaincode.mip.audit import access_key
from chaincode.mip.config import config_key
from chaincode.mip.credentials import credential_key, fills_key, private_key
from chaincode.mip.dispense import ATTESTATION_NONCE_OBJECT, gateway_key_key
from chaincode.mip.grants import grant_key
from chaincode.mip.holder_auth import NONCE_OBJECT
from chaincode.mip.key_index import passport_key_index
from chaincode.mip.passports import (
    VOUCH_GIVEN_OBJECT,
    VOUCH_OBJECT,
    face_commitment_key,
    passport_key,
)
from chaincode.mip.portraits import portrait_key_key
from chaincode.mip.research import admission_key, dataset_key
from chaincode.mip.screening import DAY_S, quota_key, request_key
from chaincode.mip.verifier_keys import verifier_key_key
from chaincode.protocol.ids import portrait_key_id
from chaincode.shim import create_composite_key
from gateway.fabric import ChaincodeError
from gateway.kyc.issuer import KycIssuer

ORGS = (HOSPITAL, SCHOOL, PHARMACY)


def dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True).encode()


async def forge_alone(mip: MipClients, org: str, writes: dict[str, bytes | None],
                      **kwargs: Any) -> None:
    """`org` alone endorses `writes`: the committing peers must invalidate it."""
    status = await Forger(mip, (org,)).submit(writes, **kwargs)
    assert status.code_name == POLICY_FAILURE, (org, status.code_name)


async def get(mip: MipClients, name: str, *args: str) -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(SCHOOL, None)).evaluate(name, list(args))))


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


async def test_no_org_alone_rewrites_an_account_key(mip: MipClients, account: Account) -> None:
    before = await get(mip, "Account:Get", account.pseudonym)
    attacker = HolderKey.generate()
    forged = {**before, "public_key": base64.b64encode(attacker.public_raw).decode()}
    swapped_face = {**before, "face_commitment": "cd" * 32}
    for org in ORGS:
        await forge_alone(mip, org, {account_key(account.pseudonym): dumps(forged)})
        await forge_alone(mip, org, {account_key(account.pseudonym): dumps(swapped_face)})
    assert await get(mip, "Account:Get", account.pseudonym) == before


async def test_no_org_alone_forges_rewrites_or_reactivates_a_grant(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "prescription")
    live = await grant(mip, account, PHARMACY, "medical.prescription",
                       credential_id=issued.credential_id)
    revoked = await grant(mip, account, PHARMACY, "medical.prescription",
                          credential_id=issued.credential_id)
    await revoke_grant(mip, account, revoked["grant_id"])
    year = int(time.time()) + 365 * 24 * 3600
    rewritten = {**live, "grantee_org": SCHOOL, "grantee_role": None, "expires": year}
    reactivated = {**revoked, "status": "active"}
    attacker = HolderKey.generate()
    body = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": SCHOOL,
            "scope": "medical.prescription", "credential_id": issued.credential_id,
            "expires": year}
    created = {**body, "grantee_role": None, "credential_type": None, "status": "active",
               "created": int(time.time()), "updated": int(time.time()),
               "request": attacker.sign_request("grant.create", body)}
    for org in (SCHOOL, HOSPITAL, PHARMACY):
        await forge_alone(mip, org, {
            grant_key(account.pseudonym, live["grant_id"]): dumps(rewritten)})
        await forge_alone(mip, org, {
            grant_key(account.pseudonym, revoked["grant_id"]): dumps(reactivated)})
        await forge_alone(mip, org, {
            grant_key(account.pseudonym, body["grant_id"]): dumps(created)})
    # What the holder sees is unchanged, and the honest hospital peer releases nothing to
    # the school: its request finds no grant.
    gateway = await mip.client(HOSPITAL, "gateway")
    listed = json.loads(await gateway.evaluate("Grant:List", [request_arg(account.sign(
        "grant.list", {"account": account.pseudonym}))]))
    assert {(g["grant_id"], g["grantee_org"], g["status"], g["expires"]) for g in listed} == {
        (live["grant_id"], PHARMACY, "active", live["expires"]),
        (revoked["grant_id"], PHARMACY, "revoked", revoked["expires"])}
    async with expect_error("access_denied"):
        await request_and_read(mip, SCHOOL, None, issued, "medical.prescription")


async def test_no_org_alone_rewrites_a_passport_key_guardians_or_key_index(
    mip: MipClients, holder: Holder
) -> None:
    passport_id = holder.passport["id"]
    before = await get(mip, "Passport:Get", passport_id)
    attacker = HolderKey.generate()
    raw_key = base64.b64encode(attacker.public_raw).decode()
    stored = {k: v for k, v in before.items() if k != "vouches"}
    for org in ORGS:  # the enrolling org (HospitalMSP) included
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "public_key": raw_key, "key_version": stored["key_version"] + 1})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "guardians": [raw_key], "guardian_threshold": 1})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "kyc_level": 3})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "face_commitment": "ab" * 32})})
        await forge_alone(mip, org, {
            passport_key_index(attacker.public_raw): passport_id.encode()})
    assert await get(mip, "Passport:Get", passport_id) == before
    # The attacker's key does not speak for the passport: its vouch is refused.
    _, other = await register_passport(mip, HOSPITAL)
    gateway = await mip.client(HOSPITAL, "gateway")
    async with expect_error("not_found"):
        await gateway.submit("Passport:Vouch", [request_arg(attacker.sign_request(
            "passport.vouch", {"vouchee": other["id"]}))])


async def test_no_org_alone_clears_a_provisional_passport_or_raises_its_level(
    mip: MipClients,
) -> None:
    """A passport whose duplicate screening is pending stays at level 1: no org alone (the
    enrolling one included) writes it cleared, at a higher level, or with a forged majority
    of decisions; through the contract, one org's decision counts once."""
    _, record = await register_provisional_passport(mip, HOSPITAL, level=2)
    passport_id = record["id"]
    before = await get(mip, "Passport:Get", passport_id)
    assert before["kyc_level"] == 1 and before["screening"]["status"] == "pending"
    stored = {k: v for k, v in before.items() if k != "vouches"}
    forged_votes = [{"org": org, "client_id": "x", "decision": "clear", "reason": "forged",
                     "time": int(time.time()), "tx_id": "0" * 64} for org in ORGS]
    for org in ORGS:
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "kyc_level": 2,
             "screening": {**stored["screening"], "status": "cleared"}})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "kyc_level": 3})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {**stored, "kyc_level": 2, "screening": {
                **stored["screening"], "status": "cleared", "decisions": forged_votes}})})
        await forge_alone(mip, org, {passport_key(passport_id): dumps(
            {k: v for k, v in stored.items() if k != "screening"} | {"kyc_level": 2})})
    assert await get(mip, "Passport:Get", passport_id) == before

    # The contract itself: the enrolling org's registrar clears; still provisional.
    hospital = await mip.client(HOSPITAL, "registrar")
    result = json.loads(await hospital.submit("Passport:Screen",
                                              [passport_id, "clear", "no candidates"]))
    assert result["screening_pending"] and result["kyc_level"] == 1
    async with expect_error("conflict"):
        await hospital.submit("Passport:Screen", [passport_id, "clear", "again"])
    # ... and cannot be vouched up meanwhile.
    voucher, _ = await register_passport(mip, SCHOOL)
    gateway = await mip.client(HOSPITAL, "gateway")
    async with expect_error("precondition_failed"):
        await gateway.submit("Passport:Vouch", [request_arg(voucher.sign_request(
            "passport.vouch", {"vouchee": passport_id}))])
    after = await get(mip, "Passport:Get", passport_id)
    assert after["kyc_level"] == 1 and after["screening"]["status"] == "pending"
    # A second org's decision makes the majority: cleared at the attested level.
    school = await mip.client(SCHOOL, "registrar")
    result = json.loads(await school.submit("Passport:Screen",
                                            [passport_id, "clear", "no candidates"]))
    assert not result["screening_pending"] and result["kyc_level"] == 2
    assert result["screening"]["status"] == "cleared"


async def test_no_org_alone_forges_a_vouch(mip: MipClients, holder: Holder) -> None:
    _, voucher = await register_passport(mip, SCHOOL)
    vouchee = holder.passport["id"]
    before = await get(mip, "Passport:Get", vouchee)
    vouch = {"vouchee": vouchee, "voucher": voucher["id"], "time": int(time.time()),
             "flagged": False}
    stored = {k: v for k, v in before.items() if k != "vouches"}
    for org in ORGS:
        await forge_alone(mip, org, {
            create_composite_key(VOUCH_OBJECT, [vouchee, voucher["id"]]): dumps(vouch),
            create_composite_key(VOUCH_GIVEN_OBJECT, [voucher["id"], vouchee]): b"\x00",
            passport_key(vouchee): dumps({**stored, "kyc_level": 3})})
    assert await get(mip, "Passport:Get", vouchee) == before


async def test_fill_counter_needs_the_issuer_and_the_pharmacy(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "prescription")
    before = await get(mip, "Credential:Get", issued.credential_id)
    more = dumps({**before["fills"], "allowed": 100})
    for org in ORGS:
        await forge_alone(mip, org, {fills_key(issued.credential_id): more})
        # Nor can one org drop the counter's key-level policy (a metadata write is checked
        # against the policy in force).
        await forge_alone(mip, org, {}, metadata={
            fills_key(issued.credential_id): {"VALIDATION_PARAMETER": b""}})
    # A majority without the issuer is not enough here: AND(issuer org, PharmacyMSP).
    status = await Forger(mip, (SCHOOL, PHARMACY)).submit({fills_key(issued.credential_id): more})
    assert status.code_name == POLICY_FAILURE
    assert await get(mip, "Credential:Get", issued.credential_id) == before


async def test_no_org_alone_writes_a_dispense_naming_another_pharmacist(
    mip: MipClients, account: Account
) -> None:
    """A dispense (the fill, its attestation's burnt nonce and the access record naming the
    pharmacist who verified the face) written by one org alone, with no attestation, or one
    naming another pharmacist, or no pharmacist at all: invalidated at commit. The honest
    contract refuses the same through its own checks (test_dispense.py)."""
    issued = await issue(mip, account, "prescription")
    await grant(mip, account, PHARMACY, "medical.prescription",
                credential_id=issued.credential_id)
    counter = CounterGateway.generate()
    await counter.register(mip)
    before = await get(mip, "Credential:Get", issued.credential_id)
    fills = dumps({**before["fills"], "used": before["fills"]["used"] + 1})
    elsewhere = client_id(mip.network, PHARMACY, "admin")  # not the pharmacist at the counter
    now = int(time.time())
    for org in ORGS:  # PharmacyMSP included: it runs the counter and the dispensing peer
        access_id = new_id("forged")
        record = {"access_id": access_id, "account": account.pseudonym, "action": "dispense",
                  "credential_id": issued.credential_id, "scope": "medical.prescription",
                  "purpose": "dispense", "grant_id": None, "org": PHARMACY,
                  "role": "pharmacist", "client_id": client_id(mip.network, PHARMACY,
                                                               "pharmacist"),
                  "time": now, "time_us": now * 1_000_000, "tx_id": access_id}
        nonce = create_composite_key(ATTESTATION_NONCE_OBJECT, [hashlib.sha256(
            counter.key_id.encode() + b"\x00" + new_id("n").encode()).hexdigest()])
        for details in ({"pharmacist": elsewhere, "counter_key": counter.key_id}, None):
            written = record if details is None else {**record, "details": details}
            # The whole dispense, and the access record alone (no fill taken).
            await forge_alone(mip, org, {
                fills_key(issued.credential_id): fills, nonce: str(now).encode(),
                access_key(account.pseudonym, access_id): dumps(written)})
            await forge_alone(mip, org, {access_key(account.pseudonym, access_id):
                                         dumps(written)})
    assert await get(mip, "Credential:Get", issued.credential_id) == before


async def test_no_org_alone_registers_or_reactivates_a_counter_key(mip: MipClients) -> None:
    counter = CounterGateway.generate()
    record = await counter.register(mip)
    forged = CounterGateway.generate()
    for org in ORGS:  # PharmacyMSP included
        await forge_alone(mip, org, {gateway_key_key(forged.key_id): dumps(
            {**record, "key_id": forged.key_id, "public_key_pem": forged.public_pem})})
        await forge_alone(mip, org, {gateway_key_key(counter.key_id): dumps(
            {**record, "public_key_pem": forged.public_pem})})


async def test_no_org_alone_swaps_a_kyc_issuer(mip: MipClients, holder: Holder) -> None:
    issuers = json.loads(await (await mip.client(SCHOOL, None)).evaluate(
        "Account:ListKycIssuers"))
    mine = next(i for i in issuers if i["org"] == HOSPITAL)
    key = create_composite_key("mip.kycissuer", [mine["cred_def_id"]])
    for org in ORGS:  # HospitalMSP, the issuer's own org, included
        await forge_alone(mip, org, {key: dumps({**mine, "cred_def": {"forged": True}})})
    assert json.loads(await (await mip.client(SCHOOL, None)).evaluate(
        "Account:ListKycIssuers")) == issuers


async def test_no_org_alone_rewrites_a_kyc_revocation_list(
    mip: MipClients, holder: Holder, kyc_issuers: dict[str, KycIssuer]
) -> None:
    """A published revocation registry (one per registry since they roll over): rewriting its
    status list alone would un-revoke a holder's KYC credential, or revoke someone else's."""
    rev_reg_id = kyc_issuers[HOSPITAL].rev_reg_id
    assert rev_reg_id is not None
    before = await get(mip, "Account:GetKycRevocation", rev_reg_id)
    record = {"rev_reg_id": rev_reg_id, "cred_def_id": before["cred_def_id"],
              "rev_reg_def": before["rev_reg_def"], "status_list": "forged"}
    key = create_composite_key(KYC_REVOCATION_OBJECT, [rev_reg_id])
    for org in ORGS:  # HospitalMSP, the registry's own org, included
        await forge_alone(mip, org, {key: dumps(record)})
        await forge_alone(mip, org, {key: None})
    assert await get(mip, "Account:GetKycRevocation", rev_reg_id) == before


async def test_no_org_alone_undoes_a_revocation_or_an_erasure(
    mip: MipClients, account: Account
) -> None:
    revoked = await issue(mip, account, "record")
    doctor = await mip.client(HOSPITAL, "doctor")
    await doctor.submit("Credential:Revoke", [revoked.credential_id, "issued in error"])
    erased = await issue(mip, account, "record")
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Credential:Erase", [request_arg(account.sign(
        "credential.erase", {"credential_id": erased.credential_id}))])
    for issued in (revoked, erased):
        before = await get(mip, "Credential:Get", issued.credential_id)
        for org in ORGS:  # the issuer org included
            await forge_alone(mip, org, {credential_key(issued.credential_id): dumps(
                {**before, "status": "active"})})
        assert await get(mip, "Credential:Get", issued.credential_id) == before


async def test_no_org_alone_deletes_a_nonce_or_an_access_record(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "prescription")
    request = account.sign("grant.create", {
        "account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
        "scope": "medical.prescription", "credential_id": issued.credential_id,
        "expires": int(time.time()) + 3600})
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Grant:Create", [request_arg(request)])
    signer = base64.b64decode(request["signer"])
    nonce = hashlib.sha256(signer + b"\x00" + request["nonce"].encode()).hexdigest()
    reader = await mip.client(PHARMACY, "pharmacist")
    access_id = (await reader.submit(
        "Access:Request", [issued.credential_id, "medical.prescription", "audit test"])).decode()
    for org in ORGS:
        await forge_alone(mip, org, {create_composite_key(NONCE_OBJECT, [nonce]): None})
        await forge_alone(mip, org, {access_key(account.pseudonym, access_id): None})
    # The holder request still cannot be replayed.
    async with expect_error("replay"):
        await gateway.submit("Grant:Create", [request_arg(request)])


async def test_no_org_alone_resets_a_privacy_budget(mip: MipClients) -> None:
    dataset_id = new_id("ds")
    admin = await mip.client(HOSPITAL, "admin")
    await admin.submit("Research:RegisterDataset", [dataset_id, "1000000"])
    await admit(mip, dataset_id, HOSPITAL, HOSPITAL)
    researcher = await mip.client(HOSPITAL, "researcher")
    await researcher.submit("Research:Debit", [dataset_id, "900000", "ab" * 32])
    before = await get(mip, "Research:Get", dataset_id)
    for org in ORGS:  # the owner org included
        await forge_alone(mip, org, {dataset_key(dataset_id): dumps(
            {k: v for k, v in before.items() if k != "remaining_epsilon_micro"}
            | {"spent_epsilon_micro": 0})})
    assert await get(mip, "Research:Get", dataset_id) == before


async def test_no_org_alone_records_a_screening_request_or_resets_its_quota(
        mip: MipClients) -> None:
    """A screening request (what lets an org's query be answered) and the daily counter
    bounding them are public writes under the 2-of-3 policy: no org alone records a request
    for itself or anyone, nor resets or lowers its counter to pass its quota."""
    registrar = await mip.client(SCHOOL, "registrar")
    recorded = json.loads(await registrar.submit("Screening:Request", []))
    day = int(time.time()) // DAY_S
    usage_before = await get(mip, "Screening:Usage", SCHOOL, str(day))
    assert usage_before["used"] >= 1
    forged_id = "f" * 32
    for org in ORGS:
        await forge_alone(mip, org, {request_key(forged_id): dumps(
            {"request_id": forged_id, "org": org, "client_id": "x509::forged", "time": day
             * DAY_S, "day": day, "tx_id": "forged"})})
        # ... nor re-attributes an honest request to itself
        await forge_alone(mip, org, {request_key(recorded["request_id"]): dumps(
            {**{k: recorded[k] for k in ("request_id", "client_id", "time", "day", "tx_id")},
             "org": org})})
        # ... nor resets (or lowers) an org's counter for today
        await forge_alone(mip, org, {quota_key(SCHOOL, day): dumps(
            {"org": SCHOOL, "day": day, "count": 0})})
        await forge_alone(mip, org, {quota_key(SCHOOL, day): None})
    async with expect_error("not_found"):
        await get(mip, "Screening:Get", forged_id)
    assert (await get(mip, "Screening:Get", recorded["request_id"]))["org"] == SCHOOL
    assert await get(mip, "Screening:Usage", SCHOOL, str(day)) == usage_before


async def test_no_org_alone_admits_a_researcher_swaps_a_verifier_key_or_frees_a_face(
    mip: MipClients, holder: Holder
) -> None:
    """The records this issue's other changes added: researcher admissions, linkage verifier
    keys and the used-once face commitment index."""
    dataset_id = new_id("ds")
    await (await mip.client(HOSPITAL, "admin")).submit(
        "Research:RegisterDataset", [dataset_id, "1000000"])
    admission = {"dataset_id": dataset_id, "researcher_org": SCHOOL,
                 "researcher_id": "x509::CN=rogue::CN=ca", "status": "admitted",
                 "by_org": HOSPITAL, "by_client_id": "x509::CN=admin::CN=ca",
                 "time": int(time.time()), "tx_id": "f" * 64}
    attacker = HolderKey.generate()
    verifier = {"org": HOSPITAL, "public_key": base64.b64encode(attacker.public_raw).decode(),
                "verifier_id": "ab" * 32, "registered": int(time.time())}
    commitment = holder.passport["face_commitment"]
    for org in ORGS:
        await forge_alone(mip, org, {admission_key(dataset_id, SCHOOL,
                                                   admission["researcher_id"]):
                                     dumps(admission)})
        await forge_alone(mip, org, {verifier_key_key(HOSPITAL): dumps(verifier)})
        # Deleting the used-once record would let the same reference be registered again.
        await forge_alone(mip, org, {face_commitment_key(commitment): None})
    researchers = json.loads(await (await mip.client(SCHOOL, None)).evaluate(
        "Research:Researchers", [dataset_id]))
    assert researchers == []


async def test_no_org_alone_swaps_portrait_keys_or_a_grants_portrait_commitment(
    mip: MipClients, account: Account
) -> None:
    """The pharmacy face check's records (chaincode/mip/portraits.py): an org's portrait keys,
    and the portrait commitment the holder signed into a grant. Swapping either would let one
    org pass its own face off as the holder's at the counter."""
    def x25519() -> bytes:
        return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                     PublicFormat.Raw)

    admin = await mip.client(HOSPITAL, "admin")
    await admin.submit("Portrait:RegisterKeys", [
        base64.b64encode(HolderKey.generate().public_raw).decode(),
        base64.b64encode(x25519()).decode()])
    keys_before = await get(mip, "Portrait:GetKeys", HOSPITAL)

    async def pharmacy_keys() -> dict[str, Any] | None:
        # None when PharmacyMSP has registered none (a session-wide devnet may have some
        # from another test: then the forgery below is a swap instead of a plant).
        try:
            return await get(mip, "Portrait:GetKeys", PHARMACY)
        except ChaincodeError as exc:
            assert exc.chaincode_message.startswith("not_found: "), exc.chaincode_message
            return None

    pharmacy_before = await pharmacy_keys()
    attacker = HolderKey.generate().public_raw
    swapped_keys = {**keys_before, "signing_key": base64.b64encode(attacker).decode(),
                    "signing_key_id": portrait_key_id(HOSPITAL, "sign", attacker)}
    sealing = x25519()
    planted_keys = {"org": PHARMACY, "signing_key": base64.b64encode(attacker).decode(),
                    "signing_key_id": portrait_key_id(PHARMACY, "sign", attacker),
                    "sealing_key": base64.b64encode(sealing).decode(),
                    "sealing_key_id": portrait_key_id(PHARMACY, "seal", sealing),
                    "registered": int(time.time())}
    issued = await issue(mip, account, "prescription")
    body = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
            "scope": "medical.prescription", "credential_id": issued.credential_id,
            "expires": int(time.time()) + 3600, "portrait_commitment": "5e" * 32}
    gateway = await mip.client(HOSPITAL, "gateway")
    created = json.loads(await gateway.submit("Grant:Create", [request_arg(
        account.sign("grant.create", body))]))
    key = grant_key(account.pseudonym, body["grant_id"])
    pharmacist = await mip.client(PHARMACY, "pharmacist")
    seen_before = json.loads(await pharmacist.evaluate("Grant:Get",
                                                       [account.pseudonym, body["grant_id"]]))
    rewritten = dumps({**created, "portrait_commitment": "e5" * 32})
    for org in ORGS:  # the enrolling org (HospitalMSP) and the grantee included
        await forge_alone(mip, org, {portrait_key_key(HOSPITAL): dumps(swapped_keys)})
        await forge_alone(mip, org, {portrait_key_key(PHARMACY): dumps(planted_keys)})
        await forge_alone(mip, org, {key: rewritten})
    assert await get(mip, "Portrait:GetKeys", HOSPITAL) == keys_before
    assert await pharmacy_keys() == pharmacy_before
    assert json.loads(await pharmacist.evaluate(
        "Grant:Get", [account.pseudonym, body["grant_id"]])) == seen_before
    # Beyond the model, a majority's rewrite commits, yet carries no holder signature over
    # the new commitment: the grantee's read refuses the grant.
    status = await Forger(mip, (SCHOOL, PHARMACY)).submit({key: rewritten})
    assert status.successful
    async with expect_error("bad_signature"):
        await pharmacist.evaluate("Grant:Get", [account.pseudonym, body["grant_id"]])


async def test_private_content_is_written_by_its_collection_only(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "record")
    for org in (SCHOOL, PHARMACY):
        await forge_alone(mip, org, {}, private=[PrivateWrites(
            "medical", {private_key(issued.credential_id): b'{"forged": true}'})])
        # Nor may a lone non-member create a credential record to go with it.
        await forge_alone(mip, org, {credential_key(new_id()): dumps(issued.record)})
    # Nor does the forgery stall honest members: a collection member's peer must not wait for
    # the private data of a transaction already invalidated (Fabric pulls it for 60 s unless
    # skipPullingInvalidTransactionsDuringCommit, network/fabric/core.yaml). On the real
    # network the next issue returns only once every org's peer has committed it.
    started = time.monotonic()
    await issue(mip, account, "record")
    assert time.monotonic() - started < 15


async def test_a_majority_writes_public_records_but_not_settings(
    mip: MipClients, account: Account
) -> None:
    """The boundary of the model: two orgs together (both dishonest: outside the model) can
    write any public record without a stricter key-level policy; settings need every org."""
    before = await get(mip, "Account:Get", account.pseudonym)
    changed = {**before, "status": "closed"}
    status = await Forger(mip, (SCHOOL, PHARMACY)).submit(
        {account_key(account.pseudonym): dumps(changed)})
    assert status.successful
    assert (await get(mip, "Account:Get", account.pseudonym))["status"] == "closed"

    admins = [await mip.client(org, "admin") for org in ORGS]
    await admins[0].submit("Config:Set", ["vouch_k", "2"], endorsing_orgs=list(ORGS))
    status = await Forger(mip, (SCHOOL, PHARMACY)).submit({config_key("vouch_k"): dumps(
        {"name": "vouch_k", "value": 1, "set_by": SCHOOL, "updated": int(time.time())})})
    assert status.code_name == POLICY_FAILURE
    assert (await get(mip, "Config:Get", "vouch_k"))["value"] == 2
