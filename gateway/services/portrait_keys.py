"""Each org's two portrait keys: Ed25519 to sign the portraits it issues for accounts it
enrolled, X25519 to open the portraits other orgs seal to it (docs/gateway.md, "Pharmacy face
check: the portrait"; face_engine/portrait.py).

Both are derived from the key provider's `portrait` derivation key (gateway/core/keys;
HKDF-Expand, one pair per MSP id, in the PKCS#11 token in production), so a restart signs and
opens with the same keys and no key file exists. The public halves are registered on the
ledger by the org's admin (`Portrait:RegisterKeys`, `register`; majority policy, so no one org
registers or swaps any org's keys); every other org takes them from there
(`Portrait:GetKeys`), never from a client or a carrier. The derived private keys are in this
process while it signs and opens (as the counter and linkage keys are).
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import nacl.public
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chaincode.protocol.ids import portrait_key_id
from face_engine.portrait import PortraitIssuer, PortraitRecipient
from face_engine.protect.keyed_rotation import KeyDeriver
from gateway.core.errors import ApiError, NotFound
from gateway.core.org_scope import require_own_org
from gateway.core.security import StaffMember, require_role
from gateway.fabric import ChaincodeError, Contract

from .ledger_reads import json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.portrait")

SIGNING_INFO = b"mip portrait signing key v1\x00"
SEALING_INFO = b"mip portrait sealing key v1\x00"


@dataclass(frozen=True)
class PortraitKeys:
    """One org's portrait keys as this gateway holds them."""

    org: str
    signing: Ed25519PrivateKey
    sealing: nacl.public.PrivateKey

    @property
    def signing_public(self) -> bytes:
        return self.signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def sealing_public(self) -> bytes:
        return bytes(self.sealing.public_key)

    @property
    def signing_key_id(self) -> str:
        return portrait_key_id(self.org, "sign", self.signing_public)

    @property
    def sealing_key_id(self) -> str:
        return portrait_key_id(self.org, "seal", self.sealing_public)

    def issuer(self) -> PortraitIssuer:
        return PortraitIssuer(self.org, self.signing, self.signing_key_id)

    def recipient(self) -> PortraitRecipient:
        return PortraitRecipient(self.org, self.sealing, self.sealing_key_id)

    def public_record(self) -> dict[str, str]:
        return {"signing_key": base64.b64encode(self.signing_public).decode(),
                "sealing_key": base64.b64encode(self.sealing_public).decode()}

    def __repr__(self) -> str:
        return f"PortraitKeys({self.org!r}, <private keys withheld>)"


def derive_portrait_keys(deriver: KeyDeriver, org: str) -> PortraitKeys:
    """The org's signing and sealing keys from the gateway's `portrait` key: stable across
    restarts, one pair per org, the two independent (distinct HKDF info)."""
    signing = Ed25519PrivateKey.from_private_bytes(deriver.expand(SIGNING_INFO + org.encode(), 32))
    # libsodium's X25519 clamps any 32 bytes
    sealing = nacl.public.PrivateKey(deriver.expand(SEALING_INFO + org.encode(), 32))
    return PortraitKeys(org, signing, sealing)


def portrait_keys(state: AppState, org: str) -> PortraitKeys:
    """This gateway's portrait keys of `org`; on another org's gateway, NotThisOrg (it neither
    signs portraits as another org nor opens portraits sealed to one)."""
    require_own_org(state.settings, org, "sign or open portraits")
    return state.service(f"portrait_keys:{org}",
                         lambda s: derive_portrait_keys(s.keys.deriver("portrait"), org))


async def keys_record(reader: Contract, org: str) -> dict[str, Any]:
    """`Portrait:GetKeys`: the org's registered keys, or 404 portrait_keys_not_registered."""
    try:
        record = json_object(await reader.evaluate("Portrait:GetKeys", [org]))
    except ChaincodeError as exc:
        if exc.chaincode_message.startswith("not_found: "):
            raise NotFound(f"{org} has registered no portrait keys",
                           code="portrait_keys_not_registered") from None
        raise
    for name in ("signing_key", "signing_key_id", "sealing_key", "sealing_key_id"):
        if not isinstance(record.get(name), str):
            raise ApiError("unexpected answer from the ledger", code="ledger_answer",
                           status=502)
    return record


def record_key(record: dict[str, Any], name: str) -> bytes:
    """A raw 32-byte key of a `Portrait:GetKeys` record."""
    try:
        raw = base64.b64decode(str(record[name]), validate=True)
    except (KeyError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ApiError("unexpected answer from the ledger", code="ledger_answer", status=502)
    return raw


async def register(state: AppState, member: StaffMember) -> dict[str, Any]:
    """Register this gateway's portrait keys of the admin's org on the ledger; idempotent
    (a second call with the same keys writes nothing)."""
    require_role(member, ("admin",))
    keys = portrait_keys(state, member.org)
    try:
        current: dict[str, Any] | None = await keys_record(
            state.ledger.carrier(member.org), member.org)
    except NotFound:
        current = None
    wanted = keys.public_record()
    newly = current is None or any(current.get(k) != v for k, v in wanted.items())
    if newly:
        await state.ledger.for_staff(member).submit(
            "Portrait:RegisterKeys", [wanted["signing_key"], wanted["sealing_key"]])
    log.info("portrait keys of %s %s", member.org, "registered" if newly else "were registered")
    return {"org": member.org, **wanted, "signing_key_id": keys.signing_key_id,
            "sealing_key_id": keys.sealing_key_id, "newly_registered": newly}
