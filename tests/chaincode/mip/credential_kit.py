"""Helpers for the credential, grant, access, dispense and erasure tests.

Builds on mip_testkit: accounts come from `open_account`, staff clients from `MipClients`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from identity_kit import client_id
from mip_testkit import Account, MipClients, new_id, request_arg

from chaincode.protocol.attestation import attestation_bytes
from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.credential_terms import public_terms, salted_hash

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"


def sample_content(cred_type: str, **overrides: Any) -> dict[str, Any]:
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


@dataclass
class Issued:
    credential_id: str
    cred_type: str
    content: dict[str, Any]
    content_bytes: bytes
    salt: bytes
    record: dict[str, Any]

    @property
    def transient(self) -> dict[str, bytes]:
        return {"content": self.content_bytes, "salt": self.salt}


ISSUER = {"prescription": (HOSPITAL, "doctor"), "record": (HOSPITAL, "doctor"),
          "diploma": (SCHOOL, "school_registrar"), "transcript": (SCHOOL, "school_registrar")}


async def issue(
    mip: MipClients, account: Account, cred_type: str, content: dict[str, Any] | None = None,
) -> Issued:
    content = content if content is not None else sample_content(cred_type)
    content_bytes = canonical_json(content)
    salt = secrets.token_bytes(16)
    credential_id = new_id(cred_type[:4])
    org, role = ISSUER[cred_type]
    issuer = await mip.client(org, role)
    record = json.loads(await issuer.submit(
        "Credential:Issue", issue_args(credential_id, cred_type, account.pseudonym, content,
                                       content_bytes, salt)))
    await issuer.submit("Credential:Store", [credential_id],
                        transient={"content": content_bytes, "salt": salt}, endorsing_orgs=[org])
    return Issued(credential_id, cred_type, content, content_bytes, salt, record)


def issue_args(credential_id: str, cred_type: str, pseudonym: str, content: dict[str, Any],
               content_bytes: bytes, salt: bytes) -> list[str]:
    """`Credential:Issue`'s arguments for this content (the public half of an issue)."""
    return [credential_id, cred_type, pseudonym, salted_hash(salt, content_bytes),
            json.dumps(public_terms(cred_type, content))]


def grant_body(account: Account, grantee_org: str, scope: str, *,
               credential_id: str | None = None, credential_type: str | None = None,
               grantee_role: str | None = None, ttl: int = 3600) -> dict[str, Any]:
    body: dict[str, Any] = {"account": account.pseudonym, "grant_id": new_id("g"),
                            "grantee_org": grantee_org, "scope": scope,
                            "expires": int(time.time()) + ttl}
    if credential_id is not None:
        body["credential_id"] = credential_id
    if credential_type is not None:
        body["credential_type"] = credential_type
    if grantee_role is not None:
        body["grantee_role"] = grantee_role
    return body


async def grant(mip: MipClients, account: Account, grantee_org: str, scope: str,
                **kwargs: Any) -> dict[str, Any]:
    body = grant_body(account, grantee_org, scope, **kwargs)
    gateway = await mip.client(account.institution, "gateway")
    request = account.sign("grant.create", body)
    return dict(json.loads(await gateway.submit("Grant:Create", [request_arg(request)])))


async def revoke_grant(mip: MipClients, account: Account, grant_id: str) -> dict[str, Any]:
    gateway = await mip.client(account.institution, "gateway")
    request = account.sign("grant.revoke", {"account": account.pseudonym, "grant_id": grant_id})
    return dict(json.loads(await gateway.submit("Grant:Revoke", [request_arg(request)])))


async def request_and_read(mip: MipClients, org: str, role: str | None, issued: Issued,
                           scope: str, purpose: str = "test") -> dict[str, Any]:
    reader = await mip.client(org, role)
    access_id = (await reader.submit(
        "Access:Request", [issued.credential_id, scope, purpose])).decode()
    issuer_org = ISSUER[issued.cred_type][0]
    return dict(json.loads(await reader.evaluate(
        "Access:Read", [access_id], endorsing_orgs=[issuer_org])))


# --- pharmacy counter gateway --------------------------------------------------------------


# What an unregistered counter's attestations name (refused for their key before the name).
NO_PHARMACIST = "x509::CN=no pharmacist::CN=none"


@dataclass
class CounterGateway:
    """A pharmacy counter's face-verification gateway: its ECDSA key, registered on-ledger.
    Its attestations name the pharmacist `register` found (the test network's PharmacyMSP
    `pharmacist`, the identity `dispense` submits as) unless told another."""

    key_id: str
    private: ec.EllipticCurvePrivateKey
    pharmacist: str = NO_PHARMACIST

    @classmethod
    def generate(cls) -> CounterGateway:
        return cls(new_id("counter"), ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    async def register(self, mip: MipClients) -> dict[str, Any]:
        self.pharmacist = client_id(mip.network, PHARMACY, "pharmacist")
        admin = await mip.client(PHARMACY, "admin")
        return dict(json.loads(await admin.submit(
            "Pharmacy:RegisterGatewayKey", [self.key_id, self.public_pem])))

    def attest(self, credential_id: str, subject_account: str, *, result: str = "match",
               issued_at: int | None = None, nonce: str | None = None,
               pharmacist: str | None = None) -> dict[str, Any]:
        payload = {"credential_id": credential_id, "subject_account": subject_account,
                   "result": result,
                   "issued_at": issued_at if issued_at is not None else int(time.time()),
                   "nonce": nonce or secrets.token_hex(16), "key_id": self.key_id,
                   "pharmacist": pharmacist if pharmacist is not None else self.pharmacist}
        signature = self.private.sign(attestation_bytes(payload), ec.ECDSA(hashes.SHA256()))
        return {"payload": payload, "signature": base64.b64encode(signature).decode()}


async def dispense(mip: MipClients, issued: Issued, attestation: dict[str, Any],
                   role: str | None = "pharmacist") -> dict[str, Any]:
    pharmacist = await mip.client(PHARMACY, role)
    return dict(json.loads(await pharmacist.submit(
        "Pharmacy:Dispense", [issued.credential_id, json.dumps(attestation)],
        endorsing_orgs=[HOSPITAL, PHARMACY])))
