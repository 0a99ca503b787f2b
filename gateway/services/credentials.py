"""Credential issue, public read, revoke and check (the `Credential` contract).

The gateway makes the salt and the canonical content, publishes their salted hash
(`Credential:Issue`, endorsed by a majority of orgs), hands content and salt to the issuer
org's own peers as transient data (`Credential:Store`: never an argument, so never in a block)
and returns them once to the caller, who gives them to the holder. It keeps neither: no table
here holds content.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.credential_terms import public_terms, salted_hash
from chaincode.protocol.scopes import CREDENTIAL_TYPES
from gateway.core.errors import InvalidRequest
from gateway.core.security import StaffMember, require_role

from .ledger_reads import credential_record, json_object, public_reader

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.credentials")

# Credential type -> (issuer org, issuing role), as the contract checks it.
ISSUERS: dict[str, tuple[str, str]] = {
    name: (ctype.issuer_org, ctype.issuer_role) for name, ctype in CREDENTIAL_TYPES.items()
}
SALT_BYTES = 32


@dataclass(frozen=True)
class IssuedCredential:
    credential_id: str
    record: dict[str, Any]
    content: str  # the canonical JSON, exactly the bytes hashed on the ledger
    salt: str  # base64

    def to_json(self) -> dict[str, Any]:
        return {"credential_id": self.credential_id, "record": self.record,
                "content": self.content, "salt": self.salt}


def new_credential_id(cred_type: str) -> str:
    return f"{cred_type[:4]}-{secrets.token_hex(12)}"


def require_issuer(member: StaffMember, cred_type: str) -> str:
    """The issuer org for `cred_type` if `member` may issue it (else Forbidden)."""
    org, role = ISSUERS[cred_type]
    require_role(member, (role,), (org,))
    return org


def canonical_content(content: dict[str, Any]) -> bytes:
    try:
        return canonical_json(content)
    except (TypeError, ValueError):
        raise InvalidRequest("content must be JSON without floats") from None


async def issue(state: AppState, member: StaffMember, cred_type: str, subject_account: str,
                content: dict[str, Any]) -> IssuedCredential:
    org = require_issuer(member, cred_type)
    content_bytes = canonical_content(content)
    salt = secrets.token_bytes(SALT_BYTES)
    credential_id = new_credential_id(cred_type)
    contract = state.ledger.for_staff(member)
    # Two transactions (chaincode/mip/credentials.py): the public record under the majority,
    # then the content to the collection, endorsed by this org alone so it reaches no other.
    record = json_object(await contract.submit(
        "Credential:Issue", [credential_id, cred_type, subject_account,
                             salted_hash(salt, content_bytes),
                             json.dumps(public_terms(cred_type, content))]))
    await contract.submit("Credential:Store", [credential_id],
                          transient={"content": content_bytes, "salt": salt},
                          endorsing_orgs=[org])
    log.info("issued credential %s (%s) by %s@%s", credential_id, cred_type, member.name,
             member.org)
    return IssuedCredential(credential_id, record, content_bytes.decode(),
                            base64.b64encode(salt).decode())


async def get(state: AppState, credential_id: str) -> dict[str, Any]:
    return await credential_record(state, credential_id)


async def revoke(state: AppState, member: StaffMember, credential_id: str,
                 reason: str) -> dict[str, Any]:
    record = await credential_record(state, credential_id)
    cred_type = str(record.get("type"))
    if cred_type not in ISSUERS:
        raise InvalidRequest("unknown credential type on the ledger")
    require_issuer(member, cred_type)
    revoked = json_object(await state.ledger.for_staff(member).submit(
        "Credential:Revoke", [credential_id, reason]))
    log.info("revoked credential %s by %s@%s", credential_id, member.name, member.org)
    return revoked


async def check(state: AppState, credential_id: str, content: bytes,
                salt: bytes) -> dict[str, Any]:
    """`Credential:Verify` with the presented content and salt, plus the public facts.

    Anyone may check: the answer says only whether what they hold is what was issued, and
    the type, issuer and status are public on the ledger anyway."""
    reader = public_reader(state)
    verdict = json_object(await reader.evaluate(
        "Credential:Verify", [credential_id], transient={"content": content, "salt": salt}))
    record = await credential_record(state, credential_id)
    valid = verdict.get("valid") is True
    status = str(verdict.get("status"))
    log.info("credential check %s: valid=%s status=%s", credential_id, valid, status)
    return {"credential_id": credential_id, "valid": valid, "status": status,
            "type": record.get("type"), "issuer_org": record.get("issuer_org")}
