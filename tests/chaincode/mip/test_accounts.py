"""Isolated accounts on devnet: anonymous KYC proof, binding to the account, key isolation."""

from __future__ import annotations

import json
import secrets

import pytest
from mip_testkit import (
    Account,
    Holder,
    HolderKey,
    MipClients,
    expect_error,
    face_commitment,
    new_holder,
    open_account,
    open_body,
    open_request,
    request_arg,
)

from chaincode.mip.errors import BadSignature
from chaincode.mip.kyc_credentials import (
    IssuerDocuments,
    check_issuer_documents,
    verify_account_presentation,
)
from chaincode.protocol.kyc import account_nonce
from gateway.kyc.issuer import KycIssuer


async def test_kyc_issuer_registration_rules(
    mip: MipClients, kyc_issuers: dict[str, KycIssuer], holder: Holder
) -> None:
    issuer = kyc_issuers["HospitalMSP"]
    schema_json, cred_def_json = issuer.public_documents()
    async with expect_error("conflict"):  # registered by the `holder` fixture already
        await (await mip.client("HospitalMSP", "admin")).submit(
            "Account:RegisterKycIssuer", [schema_json, cred_def_json])
    async with expect_error("access_denied"):
        await (await mip.client("HospitalMSP", "registrar")).submit(
            "Account:RegisterKycIssuer", [schema_json, cred_def_json])
    # Another org's admin cannot publish documents in HospitalMSP's name.
    async with expect_error("invalid_request"):
        await (await mip.client("PharmacyMSP", "admin")).submit(
            "Account:RegisterKycIssuer", [schema_json, cred_def_json])
    private_json = issuer._cred_def_private.to_json()
    async with expect_error("invalid_request"):
        await (await mip.client("HospitalMSP", "admin")).submit(
            "Account:RegisterKycIssuer", [schema_json, private_json])
    listed = json.loads(await (await mip.client("SchoolMSP", None)).evaluate(
        "Account:ListKycIssuers"))
    assert {i["cred_def_id"] for i in listed} >= {i.cred_def_id for i in kyc_issuers.values()}
    assert all("primary" in i["cred_def"]["value"] for i in listed)


async def test_open_account_record_links_nothing(mip: MipClients, holder: Holder) -> None:
    account = await open_account(mip, holder, "PharmacyMSP")
    record = account.record
    assert set(record) == {"pseudonym", "public_key", "institution", "kyc_level", "status",
                           "opened", "proof_digest", "revocation", "face_commitment"}
    assert record["public_key"] == account.key.public and record["kyc_level"] == 2
    text = json.dumps(record)
    for secret in (holder.passport["id"], holder.passport["public_key"],
                   holder.passport["face_commitment"]):
        assert secret not in text
    got = json.loads(await (await mip.client("SchoolMSP", "auditor")).evaluate(
        "Account:Get", [account.pseudonym]))
    assert got == record
    # Two accounts of one holder: different keys, pseudonyms and unlinkable presentations.
    second = await open_account(mip, holder, "SchoolMSP")
    assert second.record["public_key"] != record["public_key"]
    assert second.record["proof_digest"] != record["proof_digest"]


async def test_presentation_is_bound_to_its_account(mip: MipClients, holder: Holder) -> None:
    gateway = await mip.client("SchoolMSP", "gateway")
    _, _, request_a, presentation_a = open_request(holder, "SchoolMSP")
    _, _, request_b, _ = open_request(holder, "SchoolMSP")
    async with expect_error("bad_signature"):
        await gateway.submit("Account:Open", [request_b, presentation_a])
    await gateway.submit("Account:Open", [request_a, presentation_a])
    async with expect_error("replay"):
        await gateway.submit("Account:Open", [request_a, presentation_a])


async def test_level_predicate_enforced(
    mip: MipClients, kyc_issuers: dict[str, KycIssuer], holder: Holder
) -> None:
    gateway = await mip.client("HospitalMSP", "gateway")
    # A level-2 credential cannot even produce a >= 3 proof...
    with pytest.raises(Exception, match="Predicate is not satisfied"):
        open_request(holder, "HospitalMSP", min_level=3)
    # ...and a >= 2 proof offered for a >= 3 request is refused by the chaincode (anoncreds
    # itself would accept it: it verifies the predicate inside the proof).
    key, pseudonym = HolderKey.generate(), secrets.token_hex(32)
    request = key.sign_request("account.open", open_body(pseudonym, "HospitalMSP", 3))
    presentation = holder.wallet.present(key.public_raw, pseudonym, 2)
    async with expect_error("bad_signature"):
        await gateway.submit("Account:Open", [request_arg(request), json.dumps(presentation)])
    level3 = await new_holder(mip, kyc_issuers, org="SchoolMSP", level=3)
    account = await open_account(mip, level3, "HospitalMSP", min_level=3)
    assert account.record["kyc_level"] == 3


async def test_open_refusals(mip: MipClients, holder: Holder) -> None:
    gateway = await mip.client("PharmacyMSP", "gateway")
    account = await open_account(mip, holder, "PharmacyMSP")
    # Pseudonym taken; account key reused; passport key used as an account key.
    _, _, request, presentation = open_request(holder, "PharmacyMSP",
                                               pseudonym=account.pseudonym)
    async with expect_error("conflict"):
        await gateway.submit("Account:Open", [request, presentation])
    for key in (account.key, holder.passport_key):
        _, _, request, presentation = open_request(holder, "PharmacyMSP", key=key)
        async with expect_error("conflict"):
            await gateway.submit("Account:Open", [request, presentation])
    # A credential definition nobody registered.
    _, _, request, presentation = open_request(holder, "PharmacyMSP")
    forged = json.loads(presentation)
    forged["identifiers"][0]["cred_def_id"] = "mip:PharmacyMSP:creddef:mip-kyc:other"
    async with expect_error("bad_signature"):
        await gateway.submit("Account:Open", [request, json.dumps(forged)])
    _, _, request, presentation = open_request(holder, "NotAnOrg")
    async with expect_error("invalid_request"):
        await gateway.submit("Account:Open", [request, presentation])
    _, _, request, presentation = open_request(holder, "PharmacyMSP")
    async with expect_error("access_denied"):
        await (await mip.client("PharmacyMSP", "pharmacist")).submit(
            "Account:Open", [request, presentation])
    # The face commitment: required, a hex sha256, and never one already used (the holder's
    # passport's, another account's).
    for commitment in (holder.passport["face_commitment"], account.record["face_commitment"]):
        _, _, request, presentation = open_request(holder, "PharmacyMSP", commitment=commitment)
        async with expect_error("conflict"):
            await gateway.submit("Account:Open", [request, presentation])
    key, pseudonym = HolderKey.generate(), secrets.token_hex(32)
    presentation = json.dumps(holder.wallet.present(key.public_raw, pseudonym, 2))
    good = open_body(pseudonym, "PharmacyMSP")
    missing = {k: v for k, v in good.items() if k != "face_commitment"}
    for body in (missing, {**good, "face_commitment": "F" * 64},
                 {**good, "face_commitment": face_commitment()[:40]}):
        async with expect_error("invalid_request"):
            await gateway.submit("Account:Open", [
                request_arg(key.sign_request("account.open", body)), presentation])
    # The same key and pseudonym with a well-formed body open the account.
    opened = json.loads(await gateway.submit("Account:Open", [
        request_arg(key.sign_request("account.open", good)), presentation]))
    assert opened["face_commitment"] == good["face_commitment"]


async def test_leaked_account_key_acts_for_that_account_alone(
    mip: MipClients, holder: Holder
) -> None:
    gateway = await mip.client("HospitalMSP", "gateway")
    leaked = await open_account(mip, holder, "HospitalMSP")
    other = await open_account(mip, holder, "SchoolMSP")
    _, vouchee = holder.passport_key, holder.passport
    # Not for another account...
    async with expect_error("bad_signature"):
        await gateway.submit("Account:Close", [other.pseudonym, request_arg(
            leaked.sign("account.close", {"pseudonym": other.pseudonym}))])
    # ...nor for the passport (it is no passport's key)...
    async with expect_error("not_found"):
        await gateway.submit("Passport:Vouch", [request_arg(
            leaked.sign("passport.vouch", {"vouchee": vouchee["id"]}))])
    # ...nor to open more accounts in the holder's name.
    _, _, request, presentation = open_request(holder, "SchoolMSP", key=leaked.key)
    async with expect_error("conflict"):
        await gateway.submit("Account:Open", [request, presentation])
    # For its own account it works (and only once).
    closed = json.loads(await gateway.submit("Account:Close", [leaked.pseudonym, request_arg(
        leaked.sign("account.close", {"pseudonym": leaked.pseudonym}))]))
    assert closed["status"] == "closed"
    async with expect_error("precondition_failed"):
        await gateway.submit("Account:Close", [leaked.pseudonym, request_arg(
            leaked.sign("account.close", {"pseudonym": leaked.pseudonym}))])
    got = json.loads(await gateway.evaluate("Account:Get", [other.pseudonym]))
    assert got["status"] == "open"


def test_presentation_verification_time(kyc_issuers: dict[str, KycIssuer]) -> None:
    """In-process figure for docs: one CL predicate + non-revocation verification."""
    from chaincode.mip.kyc_credentials import check_revocation_documents
    from gateway.kyc.wallet import KycHolder

    issuer = kyc_issuers["HospitalMSP"]
    wallet = KycHolder()
    wallet.obtain(issuer, kyc_level=2)
    key, pseudonym = HolderKey.generate(), secrets.token_hex(32)
    presentation = wallet.present(key.public_raw, pseudonym, 2)
    schema_json, cred_def_json = issuer.public_documents()
    documents = check_issuer_documents("HospitalMSP", schema_json, cred_def_json)
    issuers: dict[str, IssuerDocuments] = {issuer.cred_def_id: documents}
    registry = check_revocation_documents(documents, *issuer.revocation_documents())
    revocation = {registry.rev_reg_id: registry}
    nonce = account_nonce(key.public_raw, pseudonym)
    verify_account_presentation(presentation, nonce, 2, issuers, revocation)
    with pytest.raises(BadSignature):
        verify_account_presentation(presentation, account_nonce(key.public_raw, "0" * 64), 2,
                                    issuers, revocation)
    with pytest.raises(BadSignature):  # without the registry it cannot be checked
        verify_account_presentation(presentation, nonce, 2, issuers, {})


async def test_open_latency_on_devnet(mip: MipClients, holder: Holder) -> None:
    """End-to-end figure for docs: Account:Open submitted and committed through a gateway."""
    import time

    gateway = await mip.client("HospitalMSP", "gateway")
    times = []
    for _ in range(5):
        _, _, request, presentation = open_request(holder, "HospitalMSP")
        start = time.perf_counter()
        await gateway.submit("Account:Open", [request, presentation])
        times.append(time.perf_counter() - start)
    median = sorted(times)[2]
    print(f"Account:Open submit+commit on devnet: {median * 1000:.0f} ms (median of 5)")
    assert median < 5.0


def test_issuer_document_checks(kyc_issuers: dict[str, KycIssuer]) -> None:
    """Pure checks of what Account:RegisterKycIssuer accepts (no ledger needed)."""
    from chaincode.mip.errors import InvalidRequest

    issuer = kyc_issuers["SchoolMSP"]
    schema_json, cred_def_json = issuer.public_documents()
    documents = check_issuer_documents("SchoolMSP", schema_json, cred_def_json)
    assert documents.cred_def_id == issuer.cred_def_id
    schema, cred_def = json.loads(schema_json), json.loads(cred_def_json)
    bad_cases = [
        ("HospitalMSP", schema_json, cred_def_json),  # documents name another org
        ("SchoolMSP", json.dumps({**schema, "name": "other"}), cred_def_json),
        ("SchoolMSP", json.dumps({**schema, "attrNames": ["kyc_level", "name"]}), cred_def_json),
        ("SchoolMSP", schema_json, json.dumps({**cred_def, "tag": "bad tag!"})),
        ("SchoolMSP", schema_json, json.dumps({**cred_def, "schemaId": "mip:x:schema:y:1"})),
        ("SchoolMSP", "not json", cred_def_json),
        ("SchoolMSP", schema_json, json.dumps([cred_def])),
        ("SchoolMSP", schema_json, json.dumps({**cred_def, "pad": "x" * 70000})),
    ]
    for org, schema_text, cred_def_text in bad_cases:
        with pytest.raises(InvalidRequest):
            check_issuer_documents(org, schema_text, cred_def_text)


async def test_passport_revocation_reaches_its_accounts(mip: MipClients) -> None:
    """Revoking a passport's KYC credential stops its accounts; other holders re-prove."""
    from mip_testkit import publish_revocation

    # A registry of its own (PharmacyMSP), so other tests' accounts are not made stale.
    # A fresh tag: a reused network (MIP_CONNECTION) may hold an earlier session's registry.
    issuer = KycIssuer("PharmacyMSP", tag=f"revtest{secrets.token_hex(4)}")
    issuers = {"PharmacyMSP": issuer}
    revoked_holder = await new_holder(mip, issuers, org="PharmacyMSP")
    honest_holder = await new_holder(mip, issuers, org="PharmacyMSP")
    revoked_account = await open_account(mip, revoked_holder, "HospitalMSP")
    honest_account = await open_account(mip, honest_holder, "SchoolMSP")
    assert revoked_account.record["revocation"]["rev_reg_id"] == issuer.rev_reg_id
    old_list = issuer.status_list.to_dict()
    gateway = await mip.client("PharmacyMSP", "gateway")

    # The enrolling org revokes the passport and, off-chain, the credential it issued for it.
    registrar = await mip.client("PharmacyMSP", "registrar")
    await registrar.submit("Passport:Revoke",
                           [revoked_holder.passport["id"], "fraud", "false"])
    assert revoked_holder.kyc_index is not None
    issuer.revoke(revoked_holder.kyc_index)
    published = await publish_revocation(mip, issuer)
    assert published["timestamp"] > old_list["timestamp"]
    async with expect_error("invalid_request"):  # a list no newer than the published one
        await publish_revocation(mip, issuer)
    async with expect_error("invalid_request"):  # another org cannot publish for Pharmacy
        await (await mip.client("SchoolMSP", "admin")).submit(
            "Account:PublishKycRevocation", list(issuer.revocation_documents()))

    # No new account for the revoked credential, with the new list or the old one.
    _, _, request, presentation = open_request(revoked_holder, "SchoolMSP")
    async with expect_error("bad_signature"):
        await gateway.submit("Account:Open", [request, presentation])
    key, pseudonym = HolderKey.generate(), secrets.token_hex(32)
    stale = revoked_holder.wallet.present(key.public_raw, pseudonym, 2, status_list=old_list)
    request = request_arg(key.sign_request("account.open", open_body(pseudonym, "SchoolMSP")))
    async with expect_error("precondition_failed"):
        await gateway.submit("Account:Open", [request, json.dumps(stale)])

    async def close(account: Account) -> bytes:
        return await gateway.submit("Account:Close", [account.pseudonym, request_arg(
            account.sign("account.close", {"pseudonym": account.pseudonym}))])

    async def reprove(holder: Holder, account: Account) -> bytes:
        presentation = holder.wallet.present(account.key.public_raw, account.pseudonym, 2,
                                             reprove=True)
        request = account.sign("account.reprove", {"pseudonym": account.pseudonym})
        return await gateway.submit("Account:Reprove", [
            account.pseudonym, request_arg(request), json.dumps(presentation)])

    # Every account of the registry must re-prove before acting; the revoked one cannot.
    for account in (revoked_account, honest_account):
        async with expect_error("precondition_failed"):
            await close(account)
    async with expect_error("bad_signature"):
        await reprove(revoked_holder, revoked_account)
    reproved = json.loads(await reprove(honest_holder, honest_account))
    assert reproved["revocation"]["timestamp"] == published["timestamp"]
    assert json.loads(await close(honest_account))["status"] == "closed"
    # The limit of unlinkable credentials (docs/chaincode.md): a valid holder who lends the
    # revoked holder a proof keeps that account alive; nothing ties an account to one
    # credential without linking accounts to each other.
    await reprove(honest_holder, revoked_account)


async def test_find_by_key_answers_the_keys_holder_only(mip: MipClients, holder: Holder) -> None:
    """`Account:FindByKey`: the account a key speaks for, for a request signed by that key
    (any member org's carrier); nothing for an unknown or moved-away key, or a request
    signed by another key under this key's name."""
    account = await open_account(mip, holder, "SchoolMSP")
    carrier = await mip.client("PharmacyMSP", "gateway")  # an org that is not the account's

    async def find(request: dict[str, object]) -> dict[str, object]:
        return dict(json.loads(await carrier.evaluate("Account:FindByKey",
                                                      [request_arg(request)])))

    found = await find(account.sign("account.find", {}))
    assert (found["pseudonym"], found["institution"]) == (account.pseudonym, "SchoolMSP")
    async with expect_error("not_found"):
        await find(HolderKey.generate().sign_request("account.find", {}))
    async with expect_error("invalid_request"):
        await find(account.sign("account.find", {"account": account.pseudonym}))
    async with expect_error("invalid_request"):
        await find(account.sign("account.view", {}))
    forged = HolderKey.generate().sign_request("account.find", {})
    forged["signer"] = account.key.public
    async with expect_error("bad_signature"):
        await find(forged)
    async with expect_error("expired"):
        await find(account.sign("account.find", {}, ttl=-5))

    # After a move to a new key the old key finds nothing and the new one the same account.
    device = HolderKey.generate()
    body = {"pseudonym": account.pseudonym, "new_public_key": device.public}
    await carrier.submit("Account:RotateKey", [
        account.pseudonym, request_arg(account.sign("account.rotate", body)),
        request_arg(device.sign_request("account.rotate", body))])
    async with expect_error("not_found"):
        await find(account.sign("account.find", {}))
    assert (await find(device.sign_request("account.find", {})))["pseudonym"] == \
        account.pseudonym
