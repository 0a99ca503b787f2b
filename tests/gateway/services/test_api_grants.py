"""POST /grants, GET /grants, POST /grants/{id}/revoke (holder-signed requests)."""

from __future__ import annotations

import time

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, PHARMACY, grant, holder_log, issue, mip, new_account, signed_header
from mip_testkit import MipClients, new_id

__all__ = ["mip"]


async def test_create_list_revoke(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    rx = await issue(gw, account, "prescription")
    made = await grant(gw, account, PHARMACY, "medical.prescription",
                       credential_id=rx["credential_id"])
    assert made["status"] == "active" and made["grantee_org"] == PHARMACY

    r = await gw.http.get("/api/v1/grants", params={"account": account.pseudonym},
                          headers=signed_header(account, "grant.list"))
    assert r.status_code == 200
    assert [(g["grant_id"], g["live"]) for g in r.json()] == [(made["grant_id"], True)]

    revoke = account.sign("grant.revoke", {"account": account.pseudonym,
                                           "grant_id": made["grant_id"]})
    r = await gw.http.post(f"/api/v1/grants/{made['grant_id']}/revoke",
                           json={"signed_request": revoke})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    # The same signed request again is a replay; a new one finds the grant revoked.
    assert_error(await gw.http.post(f"/api/v1/grants/{made['grant_id']}/revoke",
                                    json={"signed_request": revoke}), 409, "replay")
    again = account.sign("grant.revoke", {"account": account.pseudonym,
                                          "grant_id": made["grant_id"]})
    assert_error(await gw.http.post(f"/api/v1/grants/{made['grant_id']}/revoke",
                                    json={"signed_request": again}), 409,
                 "precondition_failed")
    r = await gw.http.get("/api/v1/grants", params={"account": account.pseudonym},
                          headers=signed_header(account, "grant.list"))
    assert [g["live"] for g in r.json()] == [False]


async def test_grant_refusals_change_nothing(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    other = await new_account(mip)
    before = await holder_log(gw, account)
    body = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
            "scope": "medical.prescription", "credential_type": "prescription",
            "expires": int(time.time()) + 600}
    url = "/api/v1/grants"
    # Signed by another account's key: the contract refuses the signature.
    assert_error(await gw.http.post(url, json={"signed_request": other.sign(
        "grant.create", body)}), 401, "bad_signature")
    # A request for another action.
    assert_error(await gw.http.post(url, json={"signed_request": account.sign(
        "grant.revoke", body)}), 422, "wrong_action")
    # Expired terms, out-of-range expiry, malformed bodies.
    assert_error(await gw.http.post(url, json={"signed_request": account.sign(
        "grant.create", {**body, "expires": int(time.time()) - 5})}), 422, "invalid_request")
    assert_error(await gw.http.post(url, json={"signed_request": account.sign(
        "grant.create", body, expires=int(time.time()) - 1)}), 410, "expired")
    assert_error(await gw.http.post(url, json={}), 422, "invalid_request")
    assert_error(await gw.http.post(url, json={"account": account.pseudonym}), 422,
                 "invalid_request")
    # Terms without a signed request need a holder session.
    terms = {k: v for k, v in body.items() if k not in ("grant_id",)}
    assert_error(await gw.http.post(url, json=terms), 401, "holder_session_required")
    # Unknown account.
    assert_error(await gw.http.post(url, json={"signed_request": account.sign(
        "grant.create", {**body, "account": "cd" * 32})}), 404, "not_found")
    assert await holder_log(gw, account) == before

    # A replayed create commits once.
    signed = account.sign("grant.create", body)
    assert (await gw.http.post(url, json={"signed_request": signed})).status_code == 201
    assert_error(await gw.http.post(url, json={"signed_request": signed}), 409, "replay")


async def test_list_needs_the_holders_signature(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    other = await new_account(mip)
    url = "/api/v1/grants"
    assert_error(await gw.http.get(url, params={"account": account.pseudonym}), 401,
                 "holder_session_required")
    # Another account's list request does not open this account's list.
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers=signed_header(other, "grant.list")), 422,
                 "request_mismatch")
    forged = other.sign("grant.list", {"account": account.pseudonym})
    from gateway.services.holder_requests import encode_header
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers={"X-MIP-Signed-Request": encode_header(forged)}),
                 401, "bad_signature")
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers={"X-MIP-Signed-Request": "%%%"}),
                 422, "invalid_request")
    assert_error(await gw.http.get(url, params={"account": "x"}), 422, "invalid_request")
    assert HOSPITAL  # accounts above are Hospital accounts
