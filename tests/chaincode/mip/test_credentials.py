"""Credentials: issue (right role, right org, bound to the account at that institution),
public record and salted hash, verify without private reads, get, revoke; GetMetadata."""

from __future__ import annotations

import hashlib
import json
import secrets

import pytest
from credential_kit import HOSPITAL, PHARMACY, SCHOOL, issue, issue_args, sample_content
from mip_testkit import Account, Holder, MipClients, expect_error, new_id, open_account

from chaincode.protocol.canonical import canonical_json

TRANSACTIONS = {
    "Credential": {"Issue": ["credential_id", "cred_type", "subject_account", "content_hash",
                             "terms"],
                   "Store": ["credential_id"], "Get": ["credential_id"],
                   "Verify": ["credential_id"], "Revoke": ["credential_id", "reason"],
                   "Erase": ["request"], "Purge": ["credential_id"]},
    "Grant": {"Create": ["request"], "Revoke": ["request"], "List": ["request"],
              "Get": ["account", "grant_id"]},
    "Access": {"Request": ["credential_id", "scope", "purpose"], "Read": ["access_id"],
               "HolderLog": ["request"], "AuditorLog": ["start", "end"]},
    "Pharmacy": {"RegisterGatewayKey": ["key_id", "public_key_pem"],
                 "RevokeGatewayKey": ["key_id"],
                 "Dispense": ["credential_id", "attestation"]},
    "Research": {"RegisterDataset": ["dataset_id", "total_epsilon_micro"],
                 "Debit": ["dataset_id", "epsilon_micro", "query_digest"],
                 "Get": ["dataset_id"],
                 "AdmitResearcher": ["dataset_id", "researcher_org", "researcher_id"],
                 "DismissResearcher": ["dataset_id", "researcher_org", "researcher_id"],
                 "Researchers": ["dataset_id"]},
}


@pytest.fixture
async def accounts(mip: MipClients, holder: Holder) -> dict[str, Account]:
    return {org: await open_account(mip, holder, org) for org in (HOSPITAL, SCHOOL)}


async def test_metadata_lists_every_transaction_with_arguments(mip: MipClients) -> None:
    contract = await mip.client(SCHOOL, None)
    metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
    for contract_name, txs in TRANSACTIONS.items():
        listed = {t["name"]: t for t in metadata["contracts"][contract_name]["transactions"]}
        assert set(listed) == set(txs), contract_name
        for name, params in txs.items():
            assert [p["name"] for p in listed[name]["parameters"]] == params, name


async def test_issue_prescription_public_record_and_verify(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[HOSPITAL]
    issued = await issue(mip, account, "prescription")
    record = issued.record
    assert record["issuer_org"] == HOSPITAL and record["type"] == "prescription"
    assert record["subject_account"] == account.pseudonym and record["status"] == "active"
    assert record["hash"] == hashlib.sha256(issued.salt + issued.content_bytes).hexdigest()
    assert record["fills"] == {"allowed": 1, "used": 0, "expires": issued.content["expiry"]}
    # Nothing of the content in the public record.
    assert "amoxicillin" not in json.dumps(record)

    # Anyone (here: a role-less school user) can check content + salt against the ledger.
    anyone = await mip.client(SCHOOL, None)
    got = json.loads(await anyone.evaluate("Credential:Get", [issued.credential_id]))
    assert got == record
    ok = json.loads(await anyone.evaluate("Credential:Verify", [issued.credential_id],
                                          transient=issued.transient))
    assert ok == {"credential_id": issued.credential_id, "valid": True, "status": "active"}
    forged = canonical_json({**issued.content, "quantity": 99})
    bad = json.loads(await anyone.evaluate(
        "Credential:Verify", [issued.credential_id],
        transient={"content": forged, "salt": issued.salt}))
    assert bad["valid"] is False
    wrong_salt = json.loads(await anyone.evaluate(
        "Credential:Verify", [issued.credential_id],
        transient={"content": issued.content_bytes, "salt": secrets.token_bytes(16)}))
    assert wrong_salt["valid"] is False


async def test_issue_education_credentials(mip: MipClients, accounts: dict[str, Account]) -> None:
    diploma = await issue(mip, accounts[SCHOOL], "diploma")
    transcript = await issue(mip, accounts[SCHOOL], "transcript")
    assert diploma.record["issuer_org"] == SCHOOL and "fills" not in diploma.record
    assert transcript.record["type"] == "transcript"


@pytest.mark.parametrize(("org", "role", "cred_type"), [
    (HOSPITAL, "registrar", "prescription"),
    (HOSPITAL, "pharmacist", "record"),
    (HOSPITAL, None, "record"),
    (SCHOOL, "doctor", "prescription"),       # right role name, wrong org
    (PHARMACY, "doctor", "prescription"),
    (HOSPITAL, "doctor", "diploma"),          # a doctor cannot issue a diploma
    (HOSPITAL, "school_registrar", "diploma"),  # right role name, wrong org
    (SCHOOL, "registrar", "transcript"),
])
async def test_issue_refused_for_wrong_role_or_org(
    mip: MipClients, accounts: dict[str, Account], org: str, role: str | None, cred_type: str
) -> None:
    target = accounts[SCHOOL if cred_type in ("diploma", "transcript") else HOSPITAL]
    client = await mip.client(org, role)
    content = sample_content(cred_type)
    async with expect_error("access_denied"):
        await client.submit("Credential:Issue", _args(new_id(), cred_type, target.pseudonym,
                                                      content))


def _args(credential_id: str, cred_type: str, pseudonym: str, content: dict[str, object],
          salt: bytes | None = None) -> list[str]:
    return issue_args(credential_id, cred_type, pseudonym, content, canonical_json(content),
                      salt or secrets.token_bytes(16))


async def test_issue_bound_to_account_at_that_institution(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    doctor = await mip.client(HOSPITAL, "doctor")
    content = sample_content("record")
    async with expect_error("access_denied"):  # the holder's school account
        await doctor.submit("Credential:Issue",
                            _args(new_id(), "record", accounts[SCHOOL].pseudonym, content))
    async with expect_error("not_found"):
        await doctor.submit("Credential:Issue",
                            _args(new_id(), "record", secrets.token_hex(32), content))


async def test_issue_input_checks(mip: MipClients, accounts: dict[str, Account]) -> None:
    doctor = await mip.client(HOSPITAL, "doctor")
    account = accounts[HOSPITAL].pseudonym
    content = sample_content("prescription")
    good = _args(new_id(), "prescription", account, content)
    terms = json.loads(good[4])
    cases = [
        [*good[:3], "AB" * 32, good[4]],                                       # not lower hex
        [*good[:3], "ab" * 31, good[4]],                                       # not 32 bytes
        [*good[:4], "{}"],                                                     # no fill terms
        [*good[:4], json.dumps({**terms, "expiry": 1})],                      # already expired
        [*good[:4], json.dumps({**terms, "fills": 0})],                       # no fill at all
        [*good[:4], json.dumps({**terms, "extra": 1})],
        [*_args(new_id(), "record", account, sample_content("record"))[:4], good[4]],
    ]
    for args in cases:
        async with expect_error("invalid_request"):
            await doctor.submit("Credential:Issue", [new_id(), *args[1:]])
    async with expect_error("invalid_request"):
        await doctor.submit("Credential:Issue", [new_id(), "vaccination", *good[2:]])
    issued = await issue(mip, accounts[HOSPITAL], "prescription")
    async with expect_error("conflict"):
        await doctor.submit("Credential:Issue", [issued.credential_id, *good[1:]])
    async with expect_error("not_found"):
        await doctor.evaluate("Credential:Get", [new_id()])


async def test_store_checks_content_against_the_public_hash(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    """`Store` keeps content only where it is what a majority published in `Issue`."""
    doctor = await mip.client(HOSPITAL, "doctor")
    account = accounts[HOSPITAL].pseudonym
    content = sample_content("prescription")
    good, salt = canonical_json(content), secrets.token_bytes(16)
    credential_id = new_id()
    await doctor.submit("Credential:Issue", _args(credential_id, "prescription", account,
                                                  content, salt))
    stray = {**content, "quantity": 99}
    cases: list[tuple[dict[str, bytes], str]] = [
        ({"content": good}, "invalid_request"),                                # no salt
        ({"content": good, "salt": b"short"}, "invalid_request"),              # salt < 16
        ({"content": good, "salt": secrets.token_bytes(16)}, "invalid_request"),  # other salt
        ({"content": canonical_json(stray), "salt": salt}, "invalid_request"),    # other content
        ({"content": json.dumps(content, indent=1).encode(), "salt": salt},
         "invalid_request"),                                                   # not canonical
    ]
    for transient, code in cases:
        async with expect_error(code):
            await doctor.submit("Credential:Store", [credential_id], transient=transient,
                                endorsing_orgs=[HOSPITAL])
    # Content whose hash was published but whose terms differ from the public fill counter.
    other = {**content, "refills": content["refills"] + 1}
    lying_id, lying_salt = new_id(), secrets.token_bytes(16)
    args = _args(lying_id, "prescription", account, other, lying_salt)
    await doctor.submit("Credential:Issue", [*args[:4], json.dumps(
        {"fills": 1 + int(content["refills"]), "expiry": content["expiry"]})])
    async with expect_error("invalid_request"):
        await doctor.submit("Credential:Store", [lying_id], endorsing_orgs=[HOSPITAL],
                            transient={"content": canonical_json(other), "salt": lying_salt})
    # Another org, or another role, cannot store it; nor can anyone after a revocation.
    for org, role in [(SCHOOL, "school_registrar"), (HOSPITAL, "registrar")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Credential:Store", [credential_id], endorsing_orgs=[org],
                transient={"content": good, "salt": salt})
    await doctor.submit("Credential:Revoke", [credential_id, "mistake"])
    async with expect_error("precondition_failed"):
        await doctor.submit("Credential:Store", [credential_id], endorsing_orgs=[HOSPITAL],
                            transient={"content": good, "salt": salt})


async def test_revoke_by_issuing_role_only(mip: MipClients, accounts: dict[str, Account]) -> None:
    issued = await issue(mip, accounts[HOSPITAL], "record")
    for org, role in [(HOSPITAL, "registrar"), (PHARMACY, "pharmacist"), (SCHOOL, "doctor"),
                      (HOSPITAL, "gateway")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Credential:Revoke", [issued.credential_id, "mistake"])
    doctor = await mip.client(HOSPITAL, "doctor")
    revoked = json.loads(await doctor.submit("Credential:Revoke",
                                             [issued.credential_id, "entered in error"]))
    assert revoked["status"] == "revoked"
    async with expect_error("precondition_failed"):
        await doctor.submit("Credential:Revoke", [issued.credential_id, "again"])
    verdict = json.loads(await doctor.evaluate("Credential:Verify", [issued.credential_id],
                                               transient=issued.transient))
    assert verdict == {**verdict, "valid": True, "status": "revoked"}
