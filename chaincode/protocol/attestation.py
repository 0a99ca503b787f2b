"""A pharmacy gateway's face-verification attestation: the bytes it signs (ECDSA P-256) and
`Pharmacy:Dispense` verifies (chaincode/mip/dispense.py)."""

from __future__ import annotations

from typing import Any

from chaincode.protocol.canonical import canonical_json

ATTESTATION_DOMAIN = b"MIP-FACE-ATTESTATION-V1\n"


def attestation_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes a pharmacy gateway signs (used by gateways, the contract and tests)."""
    return ATTESTATION_DOMAIN + canonical_json(payload)
