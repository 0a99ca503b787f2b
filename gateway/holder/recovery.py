"""Guardian recovery: the master secret split k-of-n (SLIP-39), each share sealed to a guardian.

`split(master, guardians, k)` makes SLIP-39 mnemonic shares of the 32-byte master secret with
`shamir-mnemonic` and seals each to one guardian with a libsodium sealed box, addressed to the
X25519 form of the guardian's Ed25519 passport key (the key the ledger lists as a guardian;
see `gateway.holder.x25519` for why the conversion is sound). The result is a list of
`SealedShare`, JSON-serialisable, which the gateway may store or hand to the guardians: only
the named guardian can open its share (`open_share`), and only k opened shares together give
the master secret back (`recover`).

SLIP-39 parameters: one group, group threshold 1, member threshold k of n guardians. SLIP-39
forbids a 1-of-n group with n > 1, so k = 1 is encoded as n one-member groups with group
threshold 1 (any single share recovers; each share then holds the secret, as 1-of-n implies).
The SLIP-39 passphrase is empty: the shares are already confidential (sealed to each guardian)
and a recovering holder has, by assumption, forgotten or lost what protects the vault; the
threshold and the sealing are the protection. Iteration exponent 1 (SLIP-39's default).

Errors: `InvalidGuardianKey` (a key that is not a usable Ed25519 point), `ShareOpenFailed`
(not sealed to this guardian, or altered), `CorruptShare` (a mnemonic failing its checksum, or
shares that do not combine), `MixedShares` (shares of different splits), `TooFewShares`.
Messages never quote mnemonics: shamir-mnemonic's own messages do, so they are not passed on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import shamir_mnemonic  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.public import SealedBox
from shamir_mnemonic.share import Share  # type: ignore[import-untyped]

from chaincode.protocol.encoding import b64, unb64
from gateway.holder.errors import (
    CorruptShare,
    InvalidGuardianKey,
    InvalidKeyMaterial,
    MixedShares,
    ShareOpenFailed,
    TooFewShares,
)
from gateway.holder.keys import MASTER_SECRET_BYTES
from gateway.holder.x25519 import x25519_private_from_ed25519, x25519_public_from_ed25519

SHARE_FORMAT_VERSION = 1
SHARE_SCHEME = "slip39+sealedbox-x25519"
MAX_GUARDIANS = 16  # SLIP-39's limit on shares per group (the contract allows 10)
_ITERATION_EXPONENT = 1


@dataclass(frozen=True)
class SealedShare:
    """One guardian's share, sealed to it. JSON form (`to_json`)::

        {"version": 1, "scheme": "slip39+sealedbox-x25519", "guardian": "<base64 Ed25519 key>",
         "threshold": k, "count": n, "sealed": "<base64 sealed box of the mnemonic>"}
    """

    guardian: bytes  # raw 32-byte Ed25519 public key of the guardian it is sealed to
    threshold: int
    count: int
    sealed: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SHARE_FORMAT_VERSION,
            "scheme": SHARE_SCHEME,
            "guardian": b64(self.guardian),
            "threshold": self.threshold,
            "count": self.count,
            "sealed": b64(self.sealed),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def guardian_b64(self) -> str:
        return b64(self.guardian)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SealedShare:
        if not isinstance(raw, Mapping):
            raise CorruptShare("sealed share must be a JSON object")
        if set(raw.keys()) != {"version", "scheme", "guardian", "threshold", "count", "sealed"}:
            raise CorruptShare("sealed share has missing or unexpected fields")
        if raw["version"] != SHARE_FORMAT_VERSION or raw["scheme"] != SHARE_SCHEME:
            raise CorruptShare("unsupported sealed share version or scheme")
        threshold, count = raw["threshold"], raw["count"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (threshold, count)):
            raise CorruptShare("threshold and count must be integers")
        if not 1 <= threshold <= count <= MAX_GUARDIANS:
            raise CorruptShare("threshold and count out of range")
        guardian = unb64(raw["guardian"], "guardian", CorruptShare)
        if len(guardian) != 32:
            raise CorruptShare("guardian must be a 32-byte Ed25519 public key")
        return cls(guardian, threshold, count, unb64(raw["sealed"], "sealed", CorruptShare))

    @classmethod
    def from_json(cls, text: str | bytes) -> SealedShare:
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise CorruptShare("sealed share is not valid JSON") from exc
        return cls.from_dict(raw)


def split(master: bytes, guardians: list[bytes], k: int) -> list[SealedShare]:
    """Split `master` k-of-n among `guardians` (raw Ed25519 public keys), one sealed share each.

    The shares come back in the order of `guardians`.
    """
    if not isinstance(master, bytes) or len(master) != MASTER_SECRET_BYTES:
        raise InvalidKeyMaterial(f"master secret must be {MASTER_SECRET_BYTES} bytes")
    if not isinstance(guardians, list) or not 1 <= len(guardians) <= MAX_GUARDIANS:
        raise InvalidGuardianKey(f"name 1 to {MAX_GUARDIANS} guardians")
    n = len(guardians)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= n:
        raise InvalidKeyMaterial("threshold must be between 1 and the number of guardians")
    if len(set(guardians)) != n:
        raise InvalidGuardianKey("guardians must be distinct")
    recipients = []
    for guardian in guardians:
        try:
            recipients.append(x25519_public_from_ed25519(guardian))
        except InvalidKeyMaterial as exc:
            raise InvalidGuardianKey("a guardian key is not a usable Ed25519 public key") from exc
    if k == 1:
        groups = shamir_mnemonic.generate_mnemonics(
            1, [(1, 1)] * n, master, b"", iteration_exponent=_ITERATION_EXPONENT
        )
        mnemonics = [group[0] for group in groups]
    else:
        (mnemonics,) = shamir_mnemonic.generate_mnemonics(
            1, [(k, n)], master, b"", iteration_exponent=_ITERATION_EXPONENT
        )
    return [
        SealedShare(guardian, k, n, SealedBox(recipient).encrypt(mnemonic.encode()))
        for guardian, recipient, mnemonic in zip(guardians, recipients, mnemonics, strict=True)
    ]


def open_share(
    sealed: SealedShare | str | bytes | Mapping[str, Any], guardian_private: Ed25519PrivateKey
) -> str:
    """The guardian's mnemonic, opened with its Ed25519 passport private key."""
    share = _coerce(sealed)
    if not isinstance(guardian_private, Ed25519PrivateKey):
        raise InvalidKeyMaterial("expected the guardian's Ed25519PrivateKey")
    public_raw = guardian_private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if public_raw != share.guardian:
        raise ShareOpenFailed("this share is not sealed to this guardian")
    try:
        plain = SealedBox(x25519_private_from_ed25519(guardian_private)).decrypt(share.sealed)
    except nacl.exceptions.CryptoError:
        raise ShareOpenFailed("the sealed share does not open with this guardian's key") from None
    try:
        mnemonic = plain.decode("ascii")
    except UnicodeDecodeError:
        raise CorruptShare("sealed share does not hold a mnemonic") from None
    _decode(mnemonic)  # a sealed box anyone could have made: check it holds a real share
    return mnemonic


def recover(mnemonics: Iterable[str]) -> bytes:
    """The master secret from at least k distinct shares of one split."""
    shares = [_decode(m) for m in mnemonics]
    if not shares:
        raise TooFewShares("no shares given")
    first = shares[0]
    if any(s.common_parameters() != first.common_parameters() for s in shares):
        raise MixedShares("the shares come from different splits")
    by_member: dict[tuple[int, int], Share] = {}
    for share in shares:
        slot = (share.group_index, share.index)
        known = by_member.get(slot)
        if known is not None and known.value != share.value:
            raise MixedShares("two different shares claim the same member position")
        by_member[slot] = share
    groups: dict[int, list[Share]] = {}
    for (group_index, _), share in sorted(by_member.items()):
        groups.setdefault(group_index, []).append(share)
    for members in groups.values():
        if any(m.group_parameters() != members[0].group_parameters() for m in members):
            raise MixedShares("the shares of one group disagree on its parameters")
    complete = [members for members in groups.values()
                if len(members) >= members[0].member_threshold]
    if len(complete) < first.group_threshold:
        needed = first.group_threshold * max(
            (members[0].member_threshold for members in groups.values()), default=1
        )
        raise TooFewShares(f"{len(by_member)} distinct share(s) given, {needed} needed")
    chosen = [m.mnemonic() for members in complete[: first.group_threshold]
              for m in members[: members[0].member_threshold]]
    try:
        master: bytes = shamir_mnemonic.combine_mnemonics(chosen, b"")
    except (shamir_mnemonic.MnemonicError, ValueError):
        raise CorruptShare("the shares do not combine (one is corrupt or forged)") from None
    if len(master) != MASTER_SECRET_BYTES:
        raise CorruptShare("the shares combine to a secret of the wrong length")
    return master


def check_share(mnemonic: str) -> None:
    """`CorruptShare` unless `mnemonic` is a well-formed SLIP-39 share (one that came over
    the wire from a guardian's custodian: recovery_relay.py)."""
    _decode(mnemonic)


def _decode(mnemonic: str) -> Share:
    if not isinstance(mnemonic, str):
        raise CorruptShare("a share must be a mnemonic string")
    try:
        return Share.from_mnemonic(" ".join(mnemonic.lower().split()))
    except (shamir_mnemonic.MnemonicError, ValueError, KeyError):
        raise CorruptShare("a share is not a valid SLIP-39 mnemonic") from None


def _coerce(sealed: SealedShare | str | bytes | Mapping[str, Any]) -> SealedShare:
    if isinstance(sealed, SealedShare):
        return sealed
    if isinstance(sealed, str | bytes):
        return SealedShare.from_json(sealed)
    return SealedShare.from_dict(sealed)
