"""A pharmacy gateway's face-verification attestation: the bytes it signs (ECDSA P-256) and
`Pharmacy:Dispense` verifies (chaincode/mip/dispense.py).

The payload names the prescription, the subject account, the result, when, a nonce, the
counter key, and `pharmacist`: the Fabric identity string (`x509::<subject>::<issuer>`,
chaincode.protocol.fabric_identity) of the staff member at the counter who ran the face
check. The contract takes a fill only when the transaction's own creator is that pharmacist,
so a dispense names who verified the face, and an attestation cannot be spent by another
pharmacist."""

from __future__ import annotations

from typing import Any

from chaincode.protocol.canonical import canonical_json

# V2: the payload names the pharmacist (V1 attestations had no `pharmacist`; none is accepted).
ATTESTATION_DOMAIN = b"MIP-FACE-ATTESTATION-V2\n"
PAYLOAD_FIELDS = frozenset({"credential_id", "subject_account", "result", "issued_at", "nonce",
                            "key_id", "pharmacist"})
MAX_PHARMACIST_ID = 1024  # an x509::<subject>::<issuer> string


def attestation_bytes(payload: dict[str, Any]) -> bytes:
    """The exact bytes a pharmacy gateway signs (used by gateways, the contract and tests)."""
    return ATTESTATION_DOMAIN + canonical_json(payload)
