"""Holders, accounts and credentials straight on the ledger for the gateway's API tests.

Holders and accounts are made with tests/chaincode/mip's kit (no HTTP enrolment needed);
credentials through the gateway's own `POST /credentials`.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gateway_testkit import GatewayClient
from mip_testkit import Account, MipClients, MipNetwork, make_kyc_issuers, new_holder, open_account

from gateway.demo.faces import demo_portrait
from gateway.kyc.issuer import KycIssuer
from gateway.services.faces import LiveFace, face_service
from gateway.services.holder_requests import encode_header

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
ISSUER = {"prescription": (HOSPITAL, "doctor"), "record": (HOSPITAL, "doctor"),
          "diploma": (SCHOOL, "school_registrar"), "transcript": (SCHOOL, "school_registrar")}


@functools.cache
def kyc_issuers() -> dict[str, KycIssuer]:
    """One pair of KYC issuers per test process (CL key generation takes seconds)."""
    return make_kyc_issuers()


@pytest.fixture
async def mip(gw_network: MipNetwork) -> AsyncIterator[MipClients]:
    clients = MipClients(gw_network)
    try:
        yield clients
    finally:
        await clients.close()


async def new_account(mip: MipClients, institution: str = HOSPITAL, *,
                      face: tuple[GatewayClient, str] | None = None) -> Account:
    """A fresh level-2 holder enrolled at `institution` with one account there.

    With `face` = (gateway, portrait name), that gateway enrols the demo portrait as the
    account's protected reference first and the account is opened with its commitment (as
    the gateway's own account opening does); otherwise the ledger gets a fake commitment and
    the gateway holds no reference."""
    holder = await new_holder(mip, kyc_issuers(), institution)
    pseudonym = commitment = None
    if face is not None:
        gw, who = face
        pseudonym = secrets.token_hex(32)
        live = LiveFace(gw.state.face_engine().embed(demo_portrait(who)))
        commitment = face_service(gw.state).enrol_reference(live, pseudonym,
                                                            institution).commitment
    return await open_account(mip, holder, institution, carrier=(institution, "gateway"),
                              pseudonym=pseudonym, commitment=commitment)


def content_of(cred_type: str, **overrides: Any) -> dict[str, Any]:
    import time

    base: dict[str, dict[str, Any]] = {
        "prescription": {"drug": "amoxicillin", "strength": "500 mg", "quantity": 21,
                         "refills": 0, "prescriber": "Dr Who",
                         "expiry": int(time.time()) + 30 * 24 * 3600},
        "record": {"diagnosis": "acute otitis media", "notes": "review in 2 weeks"},
        "diploma": {"degree": "BSc", "field": "Physics", "awarded": "2024-06-30"},
        "transcript": {"courses": [{"course": "Mechanics", "grade": "A"},
                                   {"course": "Optics", "grade": "B+"}]},
    }
    return {**base[cred_type], **overrides}


async def issue(gw: GatewayClient, account: Account, cred_type: str,
                **overrides: Any) -> dict[str, Any]:
    """Issue through the gateway; returns the response body (credential_id, content, salt)."""
    org, role = ISSUER[cred_type]
    r = await gw.http.post("/api/v1/credentials", headers=gw.staff(org, role), json={
        "type": cred_type, "subject_account": account.pseudonym,
        "content": content_of(cred_type, **overrides)})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def grant(gw: GatewayClient, account: Account, grantee_org: str, scope: str,
                ttl: int = 3600, **terms: Any) -> dict[str, Any]:
    """A grant through the gateway with a request the holder signed."""
    import time

    from mip_testkit import new_id

    body = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": grantee_org,
            "scope": scope, "expires": int(time.time()) + ttl, **terms}
    r = await gw.http.post("/api/v1/grants",
                           json={"signed_request": account.sign("grant.create", body)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def signed_header(account: Account, action: str, **kwargs: Any) -> dict[str, str]:
    return {"X-MIP-Signed-Request": encode_header(
        account.sign(action, {"account": account.pseudonym}, **kwargs))}


async def holder_log(gw: GatewayClient, account: Account) -> list[dict[str, Any]]:
    r = await gw.http.get("/api/v1/audit/holder", params={"account": account.pseudonym},
                          headers=signed_header(account, "access.log"))
    assert r.status_code == 200, r.text
    return list(r.json())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def dumps(value: Any) -> str:
    return json.dumps(value)
