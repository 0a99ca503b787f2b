"""What an issuer puts on the ledger for a credential: its public terms and its salted hash.

The issuer's gateway computes both from the content it keeps private; the contract recomputes
them from the content stored in the issuer's collection and refuses any that differ."""

from __future__ import annotations

import hashlib
from typing import Any


def salted_hash(salt: bytes, content: bytes) -> str:
    """Lowercase hex sha256(salt || canonical content)."""
    return hashlib.sha256(salt + content).hexdigest()


def public_terms(cred_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """The `terms` argument of `Credential:Issue` for this content."""
    if cred_type == "prescription":
        return {"fills": 1 + content["refills"], "expiry": content["expiry"]}
    return {}
