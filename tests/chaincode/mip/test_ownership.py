"""Authorization that follows ownership (issue #13, item 5): the cross-org cases, refused.

- a passport is suspended, reinstated and revoked by its enrolling org's registrars only;
  another org's registrar may only propose a fraudulent revocation, which takes effect at a
  majority of orgs, each proposal's reason on the ledger;
- a dataset's budget is debited only by researchers its owner org admitted;
- closing an account ends its grants, even a read requested before the close, while the
  holder still lists and revokes them and reads the account's log.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from credential_kit import HOSPITAL, PHARMACY, SCHOOL, grant, issue
from identity_kit import admit, client_id
from mip_testkit import (
    ORGS,
    Holder,
    MipClients,
    expect_error,
    open_account,
    register_passport,
    request_arg,
)


async def _passport(mip: MipClients, passport_id: str) -> dict[str, Any]:
    reader = await mip.client(HOSPITAL, None)
    return dict(json.loads(await reader.evaluate("Passport:Get", [passport_id])))


async def test_other_orgs_registrar_cannot_suspend_reinstate_or_revoke(mip: MipClients) -> None:
    _, record = await register_passport(mip, HOSPITAL, level=2)
    pid = record["id"]
    # Endorsed by the enrolling org too: what refuses is the contract, not a missing endorser.
    everyone = list(ORGS)
    for org in (SCHOOL, PHARMACY):
        registrar = await mip.client(org, "registrar")
        async with expect_error("access_denied"):
            await registrar.submit("Passport:Suspend", [pid, "lost card"],
                                   endorsing_orgs=everyone)
        async with expect_error("access_denied"):
            await registrar.submit("Passport:Revoke", [pid, "deceased", "false"],
                                   endorsing_orgs=everyone)
    assert (await _passport(mip, pid))["status"] == "active"
    hospital = await mip.client(HOSPITAL, "registrar")
    await hospital.submit("Passport:Suspend", [pid, "lost card"], endorsing_orgs=everyone)
    async with expect_error("access_denied"):
        await (await mip.client(SCHOOL, "registrar")).submit(
            "Passport:Reinstate", [pid, "card found"], endorsing_orgs=everyone)
    assert (await _passport(mip, pid))["status"] == "suspended"


async def test_fraud_revocation_by_another_org_is_only_a_proposal(mip: MipClients) -> None:
    _, record = await register_passport(mip, HOSPITAL, level=2)
    pid = record["id"]
    everyone = list(ORGS)
    pharmacy = await mip.client(PHARMACY, "registrar")
    proposed = json.loads(await pharmacy.submit(
        "Passport:Revoke", [pid, "forged documents", "true"], endorsing_orgs=everyone))
    assert proposed["fraud_pending"] is True and proposed["status"] == "active"
    got = await _passport(mip, pid)
    assert got["status"] == "active" and "fraudulent" not in got
    assert [(p["org"], p["reason"]) for p in got["fraud_proposals"]] == [
        (PHARMACY, "forged documents")]
    assert got["fraud_proposals"][0]["client_id"] == client_id(mip.network, PHARMACY,
                                                               "registrar")
    # One org counts once, however many of its registrars ask.
    async with expect_error("conflict"):
        await pharmacy.submit("Passport:Revoke", [pid, "forged documents", "true"],
                              endorsing_orgs=everyone)
    async with expect_error("invalid_request"):
        await (await mip.client(SCHOOL, "registrar")).submit(
            "Passport:Revoke", [pid, " ", "true"], endorsing_orgs=everyone)
    assert (await _passport(mip, pid))["status"] == "active"
    # The enrolling org confirming makes two of three: revoked as fraudulent.
    hospital = await mip.client(HOSPITAL, "registrar")
    revoked = json.loads(await hospital.submit(
        "Passport:Revoke", [pid, "confirmed at the desk", "true"], endorsing_orgs=everyone))
    assert revoked["status"] == "revoked" and revoked["fraudulent"] is True
    assert revoked["fraud_pending"] is False
    assert [p["org"] for p in revoked["fraud_proposals"]] == [PHARMACY, HOSPITAL]
    async with expect_error("precondition_failed"):
        await (await mip.client(SCHOOL, "registrar")).submit(
            "Passport:Revoke", [pid, "late", "true"], endorsing_orgs=everyone)


async def test_ordinary_revocation_does_not_shield_from_fraud(mip: MipClients) -> None:
    """The enrolling org cannot keep its fraudster's vouches alive by revoking it first."""
    _, target = await register_passport(mip, SCHOOL, level=2)
    fraud_key, fraud = await register_passport(mip, HOSPITAL, level=2)
    gateway = await mip.client(SCHOOL, "gateway")
    await gateway.submit("Passport:Vouch", [request_arg(fraud_key.sign_request(
        "passport.vouch", {"vouchee": target["id"]}))])
    everyone = list(ORGS)
    hospital = await mip.client(HOSPITAL, "registrar")
    await hospital.submit("Passport:Revoke", [fraud["id"], "moved away", "false"],
                          endorsing_orgs=everyone)
    assert (await _passport(mip, target["id"]))["vouches"] == 1
    for org in (SCHOOL, PHARMACY):
        result = json.loads(await (await mip.client(org, "registrar")).submit(
            "Passport:Revoke", [fraud["id"], "sold vouches", "true"], endorsing_orgs=everyone))
    assert result["fraudulent"] is True and result["flagged_vouches"] == [target["id"]]
    assert (await _passport(mip, target["id"]))["vouches"] == 0


def _digest() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


async def test_only_admitted_researchers_debit_a_dataset(mip: MipClients) -> None:
    dataset_id = f"ds-{secrets.token_hex(6)}"
    hospital_admin = await mip.client(HOSPITAL, "admin")
    await hospital_admin.submit("Research:RegisterDataset", [dataset_id, "100000000"])
    school_researcher = await mip.client(SCHOOL, "researcher")
    hospital_researcher = await mip.client(HOSPITAL, "researcher")
    # The issue's case: another org's researcher (20 debits of 5 epsilon would empty it).
    async with expect_error("access_denied"):
        await school_researcher.submit("Research:Debit", [dataset_id, "5000000", _digest()])
    # The owner org's own researcher is not admitted by default either.
    async with expect_error("access_denied"):
        await hospital_researcher.submit("Research:Debit", [dataset_id, "5000000", _digest()])
    # Another org's admin cannot admit anyone to it, its own researcher included.
    school_id = client_id(mip.network, SCHOOL, "researcher")
    async with expect_error("access_denied"):
        await (await mip.client(SCHOOL, "admin")).submit(
            "Research:AdmitResearcher", [dataset_id, SCHOOL, school_id])
    async with expect_error("invalid_request"):
        await hospital_admin.submit("Research:AdmitResearcher",
                                    [dataset_id, SCHOOL, "CN=researcher"])
    state = json.loads(await hospital_admin.evaluate("Research:Get", [dataset_id]))
    assert state["spent_epsilon_micro"] == 0 and state["debits"] == 0

    admission = await admit(mip, dataset_id, HOSPITAL, SCHOOL)
    assert admission["researcher_id"] == school_id and admission["by_org"] == HOSPITAL
    async with expect_error("conflict"):
        await admit(mip, dataset_id, HOSPITAL, SCHOOL)
    debit = json.loads(await school_researcher.submit(
        "Research:Debit", [dataset_id, "5000000", _digest()]))
    assert debit["debit"]["client_id"] == school_id
    # Admission is per identity: the School's other staff, and the Hospital's researcher,
    # are still refused.
    async with expect_error("access_denied"):
        await hospital_researcher.submit("Research:Debit", [dataset_id, "1", _digest()])
    listed = json.loads(await school_researcher.evaluate("Research:Researchers", [dataset_id]))
    assert [(a["researcher_org"], a["status"]) for a in listed] == [(SCHOOL, "admitted")]
    # Dismissed: refused again.
    await hospital_admin.submit("Research:DismissResearcher", [dataset_id, SCHOOL, school_id])
    async with expect_error("access_denied"):
        await school_researcher.submit("Research:Debit", [dataset_id, "1", _digest()])
    async with expect_error("precondition_failed"):
        await hospital_admin.submit("Research:DismissResearcher",
                                    [dataset_id, SCHOOL, school_id])
    state = json.loads(await hospital_admin.evaluate("Research:Get", [dataset_id]))
    assert state["spent_epsilon_micro"] == 5_000_000 and state["debits"] == 1


async def test_closing_an_account_ends_its_grants(mip: MipClients, holder: Holder) -> None:
    account = await open_account(mip, holder, HOSPITAL)
    record = await issue(mip, account, "record")
    made = await grant(mip, account, SCHOOL, "medical.record",
                       credential_id=record.credential_id, grantee_role="admin")
    school_admin = await mip.client(SCHOOL, "admin")
    ask = [record.credential_id, "medical.record", "employment check"]
    # Before the close the grant works; this request is committed, its read not yet made.
    access_id = (await school_admin.submit("Access:Request", ask)).decode()
    gateway = await mip.client(HOSPITAL, "gateway")
    await gateway.submit("Account:Close", [account.pseudonym, request_arg(
        account.sign("account.close", {"pseudonym": account.pseudonym}))])
    # The diagnosis is no longer released: not under the request made before the close...
    async with expect_error("access_denied") as info:
        await school_admin.evaluate("Access:Read", [access_id], endorsing_orgs=[HOSPITAL])
    assert "closed" in info.message
    # ...nor under a new one.
    async with expect_error("access_denied"):
        await school_admin.submit("Access:Request", ask)
    # The holder still sees the grant (dead now), revokes it, and reads the account's log.
    listed = json.loads(await gateway.evaluate("Grant:List", [request_arg(
        account.sign("grant.list", {"account": account.pseudonym}))]))
    assert [(g["grant_id"], g["status"], g["live"]) for g in listed] == [
        (made["grant_id"], "active", False)]
    revoked = json.loads(await gateway.submit("Grant:Revoke", [request_arg(account.sign(
        "grant.revoke", {"account": account.pseudonym, "grant_id": made["grant_id"]}))]))
    assert revoked["status"] == "revoked"
    log = json.loads(await gateway.evaluate("Access:HolderLog", [request_arg(
        account.sign("access.log", {"account": account.pseudonym}))]))
    reads = [e for e in log if e["action"] == "read"]
    assert [(e["org"], e["access_id"]) for e in reads] == [(SCHOOL, access_id)]
    assert [e["action"] for e in log][-1] == "grant.revoke"
