"""A verified pickup's attestation, sealed at rest in the gateway's database.

Between the face check (`verdict`) and `Pharmacy:Dispense`, the counter key's signed `match`
attestation waits in the pickup's row. In clear, a copy of `gateway.sqlite` would hand anyone
with a PharmacyMSP identity a dispensable attestation for as long as the contract accepts it
(`ATTESTATION_MAX_AGE_S`). It is stored sealed instead: AES-256-GCM through
`face_engine.envelope` (holder_sealing.py) under a key derived from the key provider's
`counter` derivation key (the one the counter's signing key comes from; in production the
HKDF expand step runs in the PKCS#11 token), purpose `MIP-gateway-pickup-attestation-v1`,
and the row as context: the pickup id and the pharmacist (org, name) who ran the face check.
So the database alone does not show it, and a sealed attestation copied into another
pickup's row, or one naming another pharmacist, does not open (the dispense is refused as
`not_verified`, nothing submitted). Rows written before sealing (plain JSON) are read as
they are.

This binds the stored attestation to the pharmacist at this gateway only: the signed payload
itself does not name the pharmacist (the contract, chaincode/mip/dispense.py, accepts exactly
its current fields), so the ledger does not check who carries it.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from .holder_sealing import PurposeKey, SealedBlobError, derive_key, open_sealed, seal

if TYPE_CHECKING:
    from .state import AppState

ATTESTATION_LABEL = b"MIP-gateway-pickup-attestation-v1"
SEALED_PREFIX = "sealed-v1:"


class AttestationUnreadable(Exception):
    """A stored attestation does not open for this pickup and pharmacist."""


def attestation_key(state: AppState) -> PurposeKey:
    return state.service("attestation_key", lambda s: derive_key(
        s.keys.deriver("counter").expand(ATTESTATION_LABEL, 32), ATTESTATION_LABEL))


def _row(pickup_id: str, org: str, staff_name: str) -> bytes:
    return json.dumps([pickup_id, org, staff_name]).encode()


def seal_attestation(state: AppState, attestation: dict[str, Any], pickup_id: str, org: str,
                     staff_name: str) -> str:
    """What the pickup row stores: the attestation sealed for this pickup and pharmacist."""
    blob = seal(attestation_key(state), json.dumps(attestation).encode(),
                _row(pickup_id, org, staff_name))
    return SEALED_PREFIX + base64.b64encode(blob).decode()


def open_attestation(state: AppState, stored: str, pickup_id: str, org: str,
                     staff_name: str) -> str:
    """The attestation JSON `Pharmacy:Dispense` takes, from what the row stores."""
    if not stored.startswith(SEALED_PREFIX):
        return stored  # written before sealing
    try:
        blob = base64.b64decode(stored[len(SEALED_PREFIX):], validate=True)
        return open_sealed(attestation_key(state), blob,
                           _row(pickup_id, org, staff_name)).decode()
    except (ValueError, SealedBlobError):
        raise AttestationUnreadable("the stored attestation does not open for this pickup "
                                    "and pharmacist") from None
