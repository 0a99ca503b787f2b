"""The KYC anonymous-credential terms the contract and the gateway share (anoncreds CL).

Identifiers of an org's schema, credential definition and revocation registry, the nonce a
presentation for an account must use, and the presentation request the contract checks; the
holder's wallet (gateway/kyc/wallet.py) builds its presentation for exactly this request and
the contract (chaincode/mip/kyc_credentials.py) verifies against it.
"""

from __future__ import annotations

import hashlib
from typing import Any

SCHEMA_NAME = "mip-kyc"
SCHEMA_VERSION = "1.0"
ATTRIBUTES = ("kyc_level", "passport_epoch")
PREDICATE_REFERENT = "kyc"
_NONCE_DOMAIN = b"MIP-ACCOUNT-OPEN-NONCE-V1\x00"


def issuer_id(org: str) -> str:
    return f"mip:{org}"


def schema_id(org: str) -> str:
    return f"{issuer_id(org)}:schema:{SCHEMA_NAME}:{SCHEMA_VERSION}"


def cred_def_id(org: str, tag: str) -> str:
    return f"{issuer_id(org)}:creddef:{SCHEMA_NAME}:{tag}"


def rev_reg_id(org: str, cred_tag: str, tag: str) -> str:
    return f"{issuer_id(org)}:revreg:{SCHEMA_NAME}:{cred_tag}:{tag}"


def account_nonce(account_public_key: bytes, pseudonym: str) -> str:
    """The presentation nonce for an account: 80 bits (anoncreds' size) of a domain hash."""
    digest = hashlib.sha256(_NONCE_DOMAIN + account_public_key + pseudonym.encode()).digest()
    return str(int.from_bytes(digest[:10], "big"))


def reprove_nonce(account_public_key: bytes, pseudonym: str, revocation_time: int) -> str:
    """Nonce of a re-proof: bound to the account and to the revocation list it answers."""
    digest = hashlib.sha256(_NONCE_DOMAIN + b"reprove\x00" + account_public_key
                            + pseudonym.encode() + str(revocation_time).encode()).digest()
    return str(int.from_bytes(digest[:10], "big"))


def presentation_request(
    nonce: str, min_level: int, revocation_time: int | None = None
) -> dict[str, Any]:
    """What the chaincode asks: one predicate kyc_level >= min_level, nothing revealed, and
    for revocable credentials non-revocation at the latest published list."""
    request = _base_request(nonce, min_level)
    if revocation_time is not None:
        request["non_revoked"] = {"from": revocation_time, "to": revocation_time}
    return request


def _base_request(nonce: str, min_level: int) -> dict[str, Any]:
    return {
        "name": "mip-account-open",
        "version": "1.0",
        "nonce": nonce,
        "requested_attributes": {},
        "requested_predicates": {
            PREDICATE_REFERENT: {"name": "kyc_level", "p_type": ">=", "p_value": min_level}
        },
    }
