"""Linkage proofs end to end: a holder's desk session proves two accounts are theirs to ONE
member org, whose staff check it on their own gateway; every other party, and every refusal,
learns or changes nothing.

HospitalMSP never registers a verifier key on this session's devnet (only these tests
register any), so it stands for "an org without a key".
"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit and ledger_kit)

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    session_headers,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, SCHOOL, mip, new_account  # noqa: F401
from mip_testkit import MipClients

from gateway.core.errors import Conflict
from gateway.holder.linkage_proof import LinkedAccount, forge_linkage, prove_linkage
from gateway.services import linkage
from gateway.services.holders import HolderSession, holder_service

HOSPITAL = "HospitalMSP"


async def register_keys(hw: GatewayClient, *orgs: str) -> dict[str, str]:
    """Each org's admin registers this gateway's key of it; returns org -> verifier id."""
    ids = {}
    for org in orgs:
        r = await hw.http.post(f"{API}/admin/linkage-key", headers=hw.staff(org, "admin"))
        assert r.status_code == 200, r.text
        ids[org] = r.json()["verifier_id"]
    return ids


async def two_accounts(hw: GatewayClient, headers: dict[str, str]) -> tuple[str, str]:
    pseudonyms = []
    for institution in (HOSPITAL, SCHOOL):
        r = await hw.http.post(f"{API}/accounts", headers=headers,
                               json={"institution": institution})
        assert r.status_code == 201, r.text
        pseudonyms.append(r.json()["pseudonym"])
    return pseudonyms[0], pseudonyms[1]


def session_of(hw: GatewayClient, headers: dict[str, str]) -> HolderSession:
    session = holder_service(hw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    return session


async def ledger_account(hw: GatewayClient, pseudonym: str) -> dict[str, Any]:
    return dict(json.loads(await hw.state.ledger.carrier(SCHOOL).evaluate(
        "Account:Get", [pseudonym])))


async def linked(hw: GatewayClient, pseudonym: str) -> LinkedAccount:
    record = await ledger_account(hw, pseudonym)
    return LinkedAccount(pseudonym, base64.b64decode(record["public_key"]))


async def verify(hw: GatewayClient, org: str, role: str, proof: dict[str, Any],
                 **extra: Any) -> Any:
    return await hw.http.post(f"{API}/linkage/verifications", headers=hw.staff(org, role),
                              json={"proof": proof, **extra})


async def test_proof_verifies_for_its_verifier_only(hw: GatewayClient,
                                                    mip: MipClients) -> None:
    ids = await register_keys(hw, PHARMACY, SCHOOL)
    again = await hw.http.post(f"{API}/admin/linkage-key", headers=hw.staff(PHARMACY, "admin"))
    assert again.json()["newly_registered"] is False  # idempotent
    published = (await hw.http.get(f"{API}/linkage/verifiers/{PHARMACY}")).json()
    assert published["verifier_id"] == ids[PHARMACY] and published["org"] == PHARMACY

    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    a, b = await two_accounts(hw, headers)
    challenge = secrets.token_hex(16)  # the verifier's nonce, given to the holder
    # `expires` is not the client's to pick: the gateway's clock plus a bounded TTL.
    r = await hw.http.post(f"{API}/linkage/proofs", headers=headers, json={
        "account_a": a, "account_b": b, "verifier_org": PHARMACY, "ttl_s": 600,
        "nonce": challenge, "expires": 2**40})
    assert r.status_code == 201, r.text
    proof = r.json()["proof"]
    assert proof["verifier_id"] == ids[PHARMACY] and proof["nonce"] == challenge
    assert abs(proof["expires"] - (time.time() + 600)) < 30
    assert r.json()["verifier_public_key"] == published["public_key"]

    # The designated org's staff (any role) check it on their gateway.
    r = await verify(hw, PHARMACY, "pharmacist", proof, nonce=challenge)
    assert r.status_code == 200, r.text
    assert r.json()["linked"] is True
    assert [(x["pseudonym"], x["institution"]) for x in r.json()["accounts"]] == [
        (a, HOSPITAL), (b, SCHOOL)]
    assert_error(await verify(hw, PHARMACY, "pharmacist", proof,
                              nonce=secrets.token_hex(16)), 422, "nonce_mismatch")

    # Another org cannot check it: not under its own id, nor re-targeted to it.
    assert_error(await verify(hw, SCHOOL, "school_registrar", proof), 403, "wrong_verifier")
    retargeted = {**proof, "verifier_id": ids[SCHOOL]}
    assert_error(await verify(hw, SCHOOL, "school_registrar", retargeted), 422,
                 "linkage_not_proven")
    # Any field changed breaks it.
    flipped = ("0" if proof["tag"][0] != "0" else "1") + proof["tag"][1:]
    for altered in ({**proof, "tag": flipped}, {**proof, "nonce": secrets.token_hex(16)},
                    {**proof, "pseudonym_a": b, "pseudonym_b": a},
                    {**proof, "expires": proof["expires"] - 1}):
        assert_error(await verify(hw, PHARMACY, "pharmacist", altered), 422,
                     "linkage_not_proven")

    # Another holder's account: the session cannot name it, a proof cannot be bent onto it,
    # and a holder's own key cannot stand in for it.
    stranger = await new_account(mip, SCHOOL)
    assert_error(await hw.http.post(f"{API}/linkage/proofs", headers=headers, json={
        "account_a": a, "account_b": stranger.pseudonym, "verifier_org": PHARMACY}),
        404, "account_not_found")
    assert_error(await verify(hw, PHARMACY, "pharmacist",
                              {**proof, "pseudonym_b": stranger.pseudonym}),
                 422, "linkage_not_proven")
    session = session_of(hw, headers)
    try:
        await linkage.prove(hw.state, HOSPITAL, (a, session.account_key(a).private),
                            (stranger.pseudonym, session.account_key(b).private), PHARMACY)
        raise AssertionError("a proof over another holder's account was made")
    except Conflict as exc:
        assert exc.code == "key_mismatch"

    # The verifier can forge a "proof" over accounts of two different holders that its own
    # check accepts: so a proof shown to a third party proves nothing (non-transferable).
    verifier = linkage.verifier_key(hw.state, PHARMACY)
    forged = forge_linkage(verifier.private, verifier.verifier_id, await linked(hw, a),
                           await linked(hw, stranger.pseudonym), secrets.token_hex(16),
                           int(time.time()) + 600)
    r = await verify(hw, PHARMACY, "auditor", forged.to_dict())
    assert r.status_code == 200 and r.json()["linked"] is True, r.text


async def test_expiry_is_the_verifiers_clock(hw: GatewayClient) -> None:
    await register_keys(hw, PHARMACY)
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    a, b = await two_accounts(hw, headers)
    session = session_of(hw, headers)
    verifier = linkage.verifier_key(hw.state, PHARMACY)

    def made(expires: int) -> dict[str, Any]:
        # The holder's own device could make any expiry: only the verifier's clock decides.
        return prove_linkage(session.account_key(a).private, a, session.account_key(b).private,
                             b, verifier.verifier_id, verifier.public_raw,
                             secrets.token_hex(16), expires).to_dict()

    now = int(time.time())
    assert (await verify(hw, PHARMACY, "pharmacist", made(now + 120))).status_code == 200
    assert_error(await verify(hw, PHARMACY, "pharmacist", made(now - 5)), 410,
                 "proof_expired")
    assert_error(await verify(hw, PHARMACY, "pharmacist", made(now + 25 * 3600)), 422,
                 "invalid_proof")
    for ttl in (0, 59, linkage.MAX_PROOF_TTL_S + 1):
        assert_error(await hw.http.post(f"{API}/linkage/proofs", headers=headers, json={
            "account_a": a, "account_b": b, "verifier_org": PHARMACY, "ttl_s": ttl}),
            422, "invalid_request")


async def test_refusals_change_nothing(hw: GatewayClient) -> None:
    ids = await register_keys(hw, PHARMACY)
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    a, b = await two_accounts(hw, headers)
    r = await hw.http.post(f"{API}/linkage/proofs", headers=headers, json={
        "account_a": a, "account_b": b, "verifier_org": PHARMACY})
    assert r.status_code == 201, r.text
    proof = r.json()["proof"]

    async def snapshot() -> Any:
        directory = (await hw.http.get(f"{API}/accounts", headers=headers)).json()
        keys = [(await hw.http.get(f"{API}/linkage/verifiers/{org}")).json()
                for org in (PHARMACY, SCHOOL)]
        return directory, [await ledger_account(hw, p) for p in (a, b)], keys

    before = await snapshot()

    def prove(**body: Any) -> Any:
        return hw.http.post(f"{API}/linkage/proofs", headers=headers, json={
            "account_a": a, "account_b": b, "verifier_org": PHARMACY, **body})

    level1 = await unlock(hw, "bush", bush.passport_id)
    assert_error(await hw.http.post(f"{API}/linkage/proofs", json={
        "account_a": a, "account_b": b, "verifier_org": PHARMACY},
        headers=session_headers(level1)),
        403, "holder_level_too_low")
    assert_error(await hw.http.post(f"{API}/linkage/proofs", json={
        "account_a": a, "account_b": b, "verifier_org": PHARMACY}), 401,
        "holder_session_required")
    assert_error(await prove(account_b=a), 422, "same_account")
    assert_error(await prove(verifier_org="NowhereMSP"), 422, "unknown_verifier")
    assert_error(await prove(verifier_org=HOSPITAL), 404, "verifier_key_not_registered")
    assert_error(await prove(nonce="short"), 422, "invalid_request")
    assert_error(await prove(account_b="zz"), 422, "invalid_request")

    # The verifier's side: malformed, same account twice, wrong caller.
    assert_error(await verify(hw, PHARMACY, "pharmacist", {"tag": proof["tag"]}), 422,
                 "invalid_proof")
    assert_error(await verify(hw, PHARMACY, "pharmacist", {**proof, "expires": "soon"}), 422,
                 "invalid_proof")
    assert_error(await verify(hw, PHARMACY, "pharmacist", {**proof, "pseudonym_b": a}), 422,
                 "same_account")
    assert_error(await verify(hw, PHARMACY, "pharmacist",
                              {**proof, "pseudonym_b": "ab" * 32}), 404, "account_not_found")
    assert_error(await hw.http.post(f"{API}/linkage/verifications", json={"proof": proof}),
                 401, "unauthenticated")
    # Only an admin registers its org's key.
    assert_error(await hw.http.post(f"{API}/admin/linkage-key",
                                    headers=hw.staff(SCHOOL, "school_registrar")),
                 403, "wrong_role")
    assert await snapshot() == before
    assert (await verify(hw, PHARMACY, "pharmacist", proof)).status_code == 200
    assert ids[PHARMACY] == proof["verifier_id"]

    # A closed account: no new proof over it, and an earlier one no longer verifies.
    r = await hw.http.delete(f"{API}/accounts/{b}", headers=headers)
    assert r.status_code == 204, r.text
    assert_error(await prove(), 409, "account_closed")
    assert_error(await verify(hw, PHARMACY, "pharmacist", proof), 409, "account_closed")
