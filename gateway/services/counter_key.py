"""The pharmacy counter gateway's ECDSA P-256 key, which signs face-verification attestations.

Derived deterministically from the key provider's `counter` derivation key (HKDF-SHA256,
the expand step in the PKCS#11 token in production; then `ec.derive_private_key`), so a
restart or a second process of the same gateway signs with the same key and the key never
needs its own file. (The derived signing key is in this process while it signs; keeping the
ECDSA key itself in the token would change the key id every counter has registered.)
A PharmacyMSP admin registers the public half on the ledger once
(`Pharmacy:RegisterGatewayKey`, `POST /admin/counter-key`); the contract then accepts
attestations this key signed, and no pharmacist can sign one. A PharmacyMSP admin revokes
any counter's key by id (`Pharmacy:RevokeGatewayKey`, `POST /admin/counter-key/{key_id}/revoke`,
`mip counter-key revoke ID`): a lost or retired counter's attestations are refused from then
on. Revocation is final for that key id; a gateway whose own key was revoked needs a new
`counter` key (a new seed or token key) registered again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.protocol.attestation import attestation_bytes
from face_engine.protect.keyed_rotation import KeyDeriver
from gateway.core.security import StaffMember, require_role
from gateway.fabric import ChaincodeError, curve_order

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.pharmacy")

PHARMACY = "PharmacyMSP"
HKDF_INFO = b"mip counter gateway key v1"
# Order of the P-256 group: the derived scalar must lie in [1, n-1].
P256_ORDER = curve_order(ec.SECP256R1())


@dataclass(frozen=True)
class CounterKey:
    key_id: str
    private: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"CounterKey({self.key_id!r}, <private key withheld>)"

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def attest(self, credential_id: str, subject_account: str, pharmacist: str
               ) -> dict[str, Any]:
        """A signed `match` attestation for this prescription and account, dated now, naming
        `pharmacist` (the Fabric identity string of the staff member whose counter ran the
        check): only that pharmacist's own Dispense can spend it."""
        payload = {"credential_id": credential_id, "subject_account": subject_account,
                   "result": "match", "issued_at": int(time.time()),
                   "nonce": secrets.token_hex(16), "key_id": self.key_id,
                   "pharmacist": pharmacist}
        signature = self.private.sign(attestation_bytes(payload), ec.ECDSA(hashes.SHA256()))
        return {"payload": payload, "signature": base64.b64encode(signature).decode()}


def derive_counter_key(deriver: KeyDeriver) -> CounterKey:
    # 48 bytes reduced mod n: the bias of the reduction is below 2^-128.
    material = deriver.expand(HKDF_INFO, 48)
    scalar = int.from_bytes(material, "big") % (P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return CounterKey("counter-" + hashlib.sha256(der).hexdigest()[:24], private)


def counter_key(state: AppState) -> CounterKey:
    return state.service("counter_key", lambda s: derive_counter_key(s.keys.deriver("counter")))


async def register(state: AppState, member: StaffMember) -> dict[str, Any]:
    """Register this gateway's counter key (admin@PharmacyMSP); idempotent."""
    require_role(member, ("admin",), (PHARMACY,))
    key = counter_key(state)
    try:
        await state.ledger.for_staff(member).submit(
            "Pharmacy:RegisterGatewayKey", [key.key_id, key.public_pem])
        registered = True
    except ChaincodeError as exc:
        if not exc.chaincode_message.startswith("conflict: "):
            raise
        registered = False  # this very key id is on the ledger already
    log.info("counter key %s %s", key.key_id, "registered" if registered else "was registered")
    return {"key_id": key.key_id, "public_key_pem": key.public_pem,
            "newly_registered": registered}


async def revoke(state: AppState, member: StaffMember, key_id: str) -> dict[str, Any]:
    """Revoke the counter key `key_id` on the ledger (admin@PharmacyMSP); the updated record."""
    require_role(member, ("admin",), (PHARMACY,))
    record = json.loads(await state.ledger.for_staff(member).submit(
        "Pharmacy:RevokeGatewayKey", [key_id]))
    log.warning("counter key %s revoked by %s@%s", key_id, member.name, member.org)
    return dict(record)
