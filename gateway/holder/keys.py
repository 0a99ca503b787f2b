"""A holder's master secret and the keys derived from it (SLIP-0010 Ed25519, hardened only).

Path layout (every step hardened; `P` = `MIP_PURPOSE` = 0x4D4950 = 5065040, "MIP" in ASCII)::

    m / P' / 0'                                passport key (signs passport.* requests)
    m / P' / 1' / institution' / account'      account key at one institution
    m / P' / 2' / 0'                           profile key (its seed gives the X25519 key that
                                               opens the holder's smart-profile records)

`institution` = the first 4 bytes of sha256("MIP-institution-v1\\0" || MSP id), big-endian,
top bit cleared (31 bits); `account` is a small counter chosen by the gateway (0 for the first
account a holder opens at that institution, 1 for a second one, ...).

Why this keeps accounts unlinkable:

* Only public keys ever reach the ledger, one per account; an Ed25519 public key is a point
  derived from a hash of its private seed, so it reveals nothing about the master secret.
* Every step is hardened: a child's private key is HMAC-SHA512(parent chain code,
  0x00 || parent private key || index). The child key (even with its own chain code) gives
  neither the parent's key nor its chain code, so one leaked account key cannot be used to
  compute the passport key or any sibling account key. Non-hardened Ed25519 derivation does
  not exist in SLIP-0010 (bip-utils refuses it), so no public-derivation path links keys
  either.
* Pseudonyms are random (`new_pseudonym`), never derived: after a recovery the gateway finds
  each account again by re-deriving its key and looking the key up on the ledger
  (`mip.accountkey` maps sha256(key) to the pseudonym), trying account indexes 0, 1, ... for
  each institution the holder uses until one is unknown.

Two institutions whose 31-bit indexes collide (about 2**-31 per pair) would share account
keys; the ledger refuses a key that already speaks for an account, so such a clash shows up as
a refused account opening rather than as a silent link.

Key rotation after a compromise means a new master secret (a new passport key, registered by
`Passport:RotateKey`); a lost device is handled by guardian recovery of the same master
secret (`gateway.holder.recovery`), which gives back the same keys.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from bip_utils import (  # type: ignore[import-untyped]
    Bip32KeyIndex,
    Bip32Slip10Ed25519,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.public import PrivateKey

from chaincode.protocol.encoding import b64
from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S, signing_payload
from chaincode.protocol.ids import passport_id_for
from gateway.holder.errors import InvalidKeyMaterial

MASTER_SECRET_BYTES = 32
MIP_PURPOSE = 0x4D4950  # "MIP"
PASSPORT_BRANCH = 0
ACCOUNT_BRANCH = 1
PROFILE_BRANCH = 2
MAX_INDEX = 2**31 - 1  # a hardened child index is index + 2**31, so the index has 31 bits
DEFAULT_CHANNEL = "mipchannel"
_INSTITUTION_DOMAIN = b"MIP-institution-v1\x00"
_MAX_MSP_ID_CHARS = 256


@dataclass(frozen=True, eq=False)
class HolderKeyPair:
    """One derived Ed25519 key: its derivation path, private key and raw public key."""

    path: str
    private: Ed25519PrivateKey
    public_raw: bytes

    @property
    def public_b64(self) -> str:
        """Base64 of the raw public key: how requests and ledger records carry keys."""
        return b64(self.public_raw)

    def sign_request(
        self,
        action: str,
        body: dict[str, Any],
        channel: str = DEFAULT_CHANNEL,
        ttl: int = 300,
        *,
        nonce: str | None = None,
        expires: int | None = None,
    ) -> dict[str, Any]:
        """A signed holder request for the contract; see `sign_holder_request`."""
        return sign_holder_request(
            self.private, action, body, channel, ttl, nonce=nonce, expires=expires
        )

    def __repr__(self) -> str:  # never print the private key object's internals
        return f"HolderKeyPair(path={self.path!r}, public={self.public_b64})"


def new_master_secret() -> bytes:
    """A fresh random 32-byte passport master secret (the SLIP-0010 seed)."""
    return secrets.token_bytes(MASTER_SECRET_BYTES)


def new_pseudonym() -> str:
    """A random account pseudonym: 64 lowercase hex characters, as the contract expects."""
    return secrets.token_hex(32)


def institution_index(msp_id: str) -> int:
    """The (unhardened, 31-bit) derivation index of an institution, from its MSP id."""
    if not isinstance(msp_id, str) or not msp_id or len(msp_id) > _MAX_MSP_ID_CHARS:
        raise InvalidKeyMaterial(f"MSP id must be a string of 1 to {_MAX_MSP_ID_CHARS} characters")
    digest = hashlib.sha256(_INSTITUTION_DOMAIN + msp_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") & MAX_INDEX


def passport_path() -> str:
    return f"m/{MIP_PURPOSE}'/{PASSPORT_BRANCH}'"


def account_path(msp_id: str, account_index: int) -> str:
    _check_index(account_index, "account index")
    return f"m/{MIP_PURPOSE}'/{ACCOUNT_BRANCH}'/{institution_index(msp_id)}'/{account_index}'"


def profile_path() -> str:
    return f"m/{MIP_PURPOSE}'/{PROFILE_BRANCH}'/0'"


def passport_key(master: bytes) -> HolderKeyPair:
    """The passport key (m/P'/0')."""
    return _derive(master, [MIP_PURPOSE, PASSPORT_BRANCH])


def passport_id(master: bytes) -> str:
    """The passport id the contract gives this holder: hex sha256 of the passport public key.

    Stable only until a `RotateKey`; afterwards the ledger keeps the first key's id.
    """
    return passport_id_for(passport_key(master).public_raw)


def account_key(master: bytes, msp_id: str, account_index: int = 0) -> HolderKeyPair:
    """The key of the holder's `account_index`-th account at institution `msp_id`."""
    _check_index(account_index, "account index")
    return _derive(
        master, [MIP_PURPOSE, ACCOUNT_BRANCH, institution_index(msp_id), account_index]
    )


def profile_key(master: bytes) -> PrivateKey:
    """The holder's X25519 smart-profile key.

    A dedicated derived key (m/P'/2'/0'), not the passport key converted: it never signs, the
    passport key never seals, and rotating the passport key would otherwise strand every
    profile record. The 32-byte SLIP-0010 private key of that path is the seed of libsodium's
    `crypto_box_seed_keypair` (`PrivateKey.from_seed`).
    """
    node = _node(master, [MIP_PURPOSE, PROFILE_BRANCH, 0])
    return PrivateKey.from_seed(node.PrivateKey().Raw().ToBytes())


def sign_holder_request(
    private: Ed25519PrivateKey,
    action: str,
    body: dict[str, Any],
    channel: str = DEFAULT_CHANNEL,
    ttl: int = 300,
    *,
    nonce: str | None = None,
    expires: int | None = None,
) -> dict[str, Any]:
    """A holder request signed by `private`, ready to json.dumps into a transaction argument.

    The same dict as the contract's test kit builds (chaincode/protocol/holder_requests.py):
    ``{action, body, nonce, expires, channel, signer, signature}``, signed over
    `signing_payload(...)`. The nonce defaults to 32 random hex characters and `expires` to
    now + `ttl` (at most the contract's 600 s).
    """
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidKeyMaterial("expected an Ed25519PrivateKey")
    if not isinstance(action, str) or not action:
        raise InvalidKeyMaterial("action must be a non-empty string")
    if not isinstance(body, dict):
        raise InvalidKeyMaterial("body must be a dict")
    if expires is None:
        if not 0 < ttl <= MAX_REQUEST_TTL_S:
            raise InvalidKeyMaterial(f"ttl must be 1 to {MAX_REQUEST_TTL_S} seconds")
        expires = int(time.time()) + ttl
    nonce = nonce if nonce is not None else secrets.token_hex(16)
    if not 16 <= len(nonce) <= 128:
        raise InvalidKeyMaterial("nonce must have 16 to 128 characters")
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        payload = signing_payload(action, body, nonce, expires, channel, public_raw)
    except ValueError as exc:  # floats or non-string keys: the contract could not check it
        raise InvalidKeyMaterial(f"body cannot be signed: {exc}") from exc
    return {
        "action": action,
        "body": body,
        "nonce": nonce,
        "expires": expires,
        "channel": channel,
        "signer": b64(public_raw),
        "signature": b64(private.sign(payload)),
    }


def _check_index(index: int, what: str) -> None:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= MAX_INDEX:
        raise InvalidKeyMaterial(f"{what} must be an integer from 0 to {MAX_INDEX}")


def _check_master(master: bytes) -> None:
    if not isinstance(master, bytes) or len(master) != MASTER_SECRET_BYTES:
        raise InvalidKeyMaterial(f"master secret must be {MASTER_SECRET_BYTES} bytes")


def _node(master: bytes, indexes: list[int]) -> Bip32Slip10Ed25519:
    _check_master(master)
    node = Bip32Slip10Ed25519.FromSeed(master)
    for index in indexes:
        node = node.ChildKey(Bip32KeyIndex.HardenIndex(index))
    return node


def _derive(master: bytes, indexes: list[int]) -> HolderKeyPair:
    node = _node(master, indexes)
    private = Ed25519PrivateKey.from_private_bytes(node.PrivateKey().Raw().ToBytes())
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path = "m/" + "/".join(f"{index}'" for index in indexes)
    return HolderKeyPair(path, private, public_raw)
