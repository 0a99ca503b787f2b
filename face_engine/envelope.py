"""Envelope encryption: the one module every MIP component uses to seal data at rest.

Callers: face references (``face_engine.protect``), the dedup index files
(``face_engine.dedup``), the gateway's per-holder and per-issuer secrets
(``gateway.services.holder_sealing``), the holder vault (``gateway.holder.vault``) and the
smart profile records (``gateway.profile.sealing``). Formats older than this module are
read (never written) by ``face_engine.envelope_legacy``.

Sealed format, version 2 (self-describing; every field but the ciphertext is in clear)::

    version   1 byte   0x02
    purpose   4 bytes  SHA-256("mip/envelope/purpose\\0" || purpose)[:4]
    key id    4 bytes  HMAC-SHA256(key, "mip/envelope/key-id/v2")[:4]
    nonce    12 bytes  random (os.urandom)
    body      n + 16   AES-256-GCM ciphertext and tag

The associated data is the 9-byte prefix (version, purpose id, key id), the length-prefixed
purpose label and the caller's context, so a blob opens only with the key, the purpose and
the context (row, holder, file position...) it was sealed for. The version byte is 2
because 1 is taken: the gateway's sealed blobs before this module started with 0x01.

``open`` errors are typed: ``MalformedEnvelope`` (not an envelope, unknown version,
truncated), ``WrongPurpose`` (sealed for another purpose: the purpose id is in the
header), ``WrongKey`` (the key id differs), ``Tampered`` (authentication failed: bytes
altered, or a different context; the context is never stored, so those two are one
error by design). A key id mismatch can also be a 1-in-2^32 false match, which then fails
as ``Tampered``: the ids only make errors precise, security comes from the tag. The ids say
nothing of the key beyond what a successful decryption would confirm (HMAC is a PRF).

Key wrapping: ``Key.wrap(data_key, ...)`` seals the 32 raw bytes of a data key under a
key-encryption key with the same format, ``Key.unwrap`` gives the ``Key`` back. Data keys
come from ``Key.generate()`` (``AESGCM.generate_key``), derived keys from ``Key.derive``
(HKDF-SHA256), so callers never handle nonces, tags or key sizes themselves.

Held keys: a key-encryption key that must never be in this process (a PKCS#11 token's
non-extractable AES key, gateway/core/keys) is a ``HeldKey``: the same format, with the
AES-256-GCM done by whatever ``Aead`` holds the key (the token) and a key id the holder
assigns. ``KeyWrapper`` and ``SealingKey`` are the interfaces ``Key`` and ``HeldKey`` share:
what face_engine.protect and face_engine.dedup need of a KEK (wrap, unwrap and the
fingerprint stored beside what it wrapped), and what the gateway's sealing needs besides.

Why a thin module over pyca/cryptography's ``AESGCM`` and not Tink (PyPI ``tink`` 1.16.1
installs on Python 3.11 here): Tink's AEAD keys live in Tink keysets it generates, and
it deliberately offers no supported way to use key bytes the caller derived, while most
of MIP's keys are derived (the vault's from Argon2id + HKDF of password and face factor,
the gateway's per-purpose keys by HKDF from one root, the holder-state key from the
master secret). Wrapping each of those into a cleartext keyset would be more code around
the library than this module, and would add a 4 MB native wheel plus absl-py and
bazel-runfiles to both face_engine and the gateway. This format follows Tink's design
(versioned prefix with a key id, random 96-bit nonce, ciphertext with tag) on the
primitive MIP already uses. AES-256-GCM with random nonces is safe to about 2^32
messages per key (NIST SP 800-38D); MIP's busiest key, a dedup index data key, seals one
unit per enrolment batch and snapshot chunk, orders of magnitude below that.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 2
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_PREFIX = struct.Struct(">B4s4s")  # version, purpose id, key id
HEADER_BYTES = _PREFIX.size + NONCE_BYTES
OVERHEAD = HEADER_BYTES + TAG_BYTES
_KEY_ID_LABEL = b"mip/envelope/key-id/v2"
# The KEK fingerprint face references and dedup manifests store (hex, 16 digits).
_FINGERPRINT_LABEL = b"mip/kek-id/v1"
_PURPOSE_DOMAIN = b"mip/envelope/purpose\x00"
_MAX_PURPOSE_BYTES = 255


class EnvelopeError(Exception):
    """Base of every error this module raises; messages never hold key material."""


class InvalidKey(EnvelopeError, ValueError):
    """Key bytes of the wrong type or length, or an unusable purpose label."""


class MalformedEnvelope(EnvelopeError):
    """Not a sealed envelope: too short or an unknown version byte."""


class WrongPurpose(EnvelopeError):
    """The envelope was sealed for another purpose."""


class WrongKey(EnvelopeError):
    """The envelope was sealed under another key."""


class Tampered(EnvelopeError):
    """Authentication failed: the bytes were altered, or the context differs."""


def purpose_id(purpose: str) -> bytes:
    """The 4-byte purpose id written into the header."""
    return hashlib.sha256(_PURPOSE_DOMAIN + _purpose_bytes(purpose)).digest()[:4]


def _purpose_bytes(purpose: str) -> bytes:
    if not isinstance(purpose, str) or not purpose:
        raise InvalidKey("purpose must be a non-empty string")
    raw = purpose.encode("utf-8")
    if len(raw) > _MAX_PURPOSE_BYTES:
        raise InvalidKey(f"purpose must be at most {_MAX_PURPOSE_BYTES} bytes")
    return raw


def _associated_data(prefix: bytes, purpose: str, context: bytes) -> bytes:
    if not isinstance(context, bytes):
        raise InvalidKey("context must be bytes")
    label = _purpose_bytes(purpose)
    # prefix has a fixed size and the label is length-prefixed, so the context (last) is
    # unambiguous without a length of its own
    return prefix + bytes([len(label)]) + label + context


class Aead(Protocol):
    """AES-256-GCM under a key held by the implementer (``AESGCM``'s interface): encrypt
    returns ciphertext || tag, decrypt raises ``cryptography.exceptions.InvalidTag``."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


class KeyWrapper(Protocol):
    """A key-encryption key as face_engine uses it: wraps data keys, never shows itself."""

    @property
    def fingerprint(self) -> str:
        """Hex id stored beside what it wrapped (says nothing of the key)."""
        ...

    def wrap(self, data_key: Key, *, purpose: str, context: bytes = b"") -> bytes: ...

    def unwrap(self, wrapped: bytes, *, purpose: str, context: bytes = b"") -> Key: ...


class SealingKey(KeyWrapper, Protocol):
    """A KEK that also seals small secrets itself (the gateway's sealed rows)."""

    def seal(self, plaintext: bytes, *, purpose: str, context: bytes = b"") -> bytes: ...

    def open(self, blob: bytes, *, purpose: str, context: bytes = b"") -> bytes: ...


def _seal(aead: Aead, key_id: bytes, plaintext: bytes, purpose: str, context: bytes) -> bytes:
    prefix = _PREFIX.pack(VERSION, purpose_id(purpose), key_id)
    nonce = os.urandom(NONCE_BYTES)
    body = aead.encrypt(nonce, plaintext, _associated_data(prefix, purpose, context))
    return prefix + nonce + body


def _open(aead: Aead, key_id: bytes, blob: bytes, purpose: str, context: bytes) -> bytes:
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise MalformedEnvelope("envelope must be bytes")
    blob = bytes(blob)
    if len(blob) < OVERHEAD:
        raise MalformedEnvelope("envelope is truncated")
    version, pid, kid = _PREFIX.unpack_from(blob)
    if version != VERSION:
        raise MalformedEnvelope(f"unknown envelope version {version}")
    if not hmac.compare_digest(pid, purpose_id(purpose)):
        raise WrongPurpose("envelope was sealed for another purpose")
    if not hmac.compare_digest(kid, key_id):
        raise WrongKey("envelope was sealed under another key")
    nonce = blob[_PREFIX.size:HEADER_BYTES]
    try:
        plaintext: bytes = aead.decrypt(
            nonce, blob[HEADER_BYTES:], _associated_data(blob[:_PREFIX.size], purpose, context))
    except InvalidTag:
        raise Tampered("envelope failed authentication (altered, or another context)") \
            from None
    return plaintext


def _unwrapped(raw: bytes) -> Key:
    if len(raw) != KEY_BYTES:  # only reachable with the KEK itself
        raise Tampered("wrapped data key has the wrong length")
    return Key(raw)


class Key:
    """A 256-bit AES-GCM key with its key id. ``repr`` shows the id, never the key."""

    __slots__ = ("_aead", "_raw", "key_id")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != KEY_BYTES:
            raise InvalidKey(f"key must be exactly {KEY_BYTES} bytes")
        self._raw = raw
        self._aead = AESGCM(raw)
        self.key_id = hmac.new(raw, _KEY_ID_LABEL, hashlib.sha256).digest()[:4]

    @classmethod
    def generate(cls) -> Key:
        """A fresh random data key."""
        return cls(AESGCM.generate_key(bit_length=8 * KEY_BYTES))

    @classmethod
    def derive(cls, root: bytes, label: bytes, *, salt: bytes | None = None) -> Key:
        """HKDF-SHA256(root, salt, info=label): one independent key per label."""
        if not isinstance(root, bytes) or len(root) < KEY_BYTES:
            raise InvalidKey(f"root must be at least {KEY_BYTES} bytes")
        return cls(HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt,
                        info=label).derive(root))

    def raw_bytes(self) -> bytes:
        """The key itself, for a caller that must hand it to another cipher (avoid)."""
        return self._raw

    @property
    def fingerprint(self) -> str:
        """The KEK id face references and dedup manifests store: HMAC-SHA256(key, label),
        16 hex digits (unchanged since format 1, so stored ids still match)."""
        return hmac.new(self._raw, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"envelope.Key(id={self.key_id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and hmac.compare_digest(self._raw, other._raw)

    def __hash__(self) -> int:
        return hash(self.key_id)

    # --- sealing ------------------------------------------------------------------------
    def seal(self, plaintext: bytes, *, purpose: str, context: bytes = b"") -> bytes:
        """Encrypt and authenticate ``plaintext`` for ``purpose`` bound to ``context``."""
        return _seal(self._aead, self.key_id, plaintext, purpose, context)

    def open(self, blob: bytes, *, purpose: str, context: bytes = b"") -> bytes:
        """The plaintext of ``blob``; typed ``EnvelopeError`` subclasses otherwise."""
        return _open(self._aead, self.key_id, blob, purpose, context)

    # --- key wrapping -------------------------------------------------------------------
    def wrap(self, data_key: Key, *, purpose: str, context: bytes = b"") -> bytes:
        """``data_key`` sealed under this key-encryption key."""
        return self.seal(data_key._raw, purpose=purpose, context=context)

    def unwrap(self, wrapped: bytes, *, purpose: str, context: bytes = b"") -> Key:
        return _unwrapped(self.open(wrapped, purpose=purpose, context=context))


class HeldKey:
    """A key-encryption key this process never sees: ``aead`` (e.g. a PKCS#11 token
    session's AES-GCM) does the cipher, and the envelopes are the same format as ``Key``'s.
    ``key_id`` (4 bytes) and ``fingerprint`` (hex) are the holder's stable, non-secret
    names of the key; they only need to differ between keys."""

    __slots__ = ("_aead", "_fingerprint", "key_id")

    def __init__(self, aead: Aead, key_id: bytes, fingerprint: str) -> None:
        if not isinstance(key_id, bytes) or len(key_id) != 4:
            raise InvalidKey("a held key's id must be 4 bytes")
        if not fingerprint:
            raise InvalidKey("a held key needs a fingerprint")
        self._aead = aead
        self.key_id = key_id
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def __repr__(self) -> str:
        return f"envelope.HeldKey(id={self.key_id.hex()})"

    def seal(self, plaintext: bytes, *, purpose: str, context: bytes = b"") -> bytes:
        return _seal(self._aead, self.key_id, plaintext, purpose, context)

    def open(self, blob: bytes, *, purpose: str, context: bytes = b"") -> bytes:
        return _open(self._aead, self.key_id, blob, purpose, context)

    def wrap(self, data_key: Key, *, purpose: str, context: bytes = b"") -> bytes:
        return self.seal(data_key.raw_bytes(), purpose=purpose, context=context)

    def unwrap(self, wrapped: bytes, *, purpose: str, context: bytes = b"") -> Key:
        return _unwrapped(self.open(wrapped, purpose=purpose, context=context))


def is_envelope(blob: bytes) -> bool:
    """True when ``blob`` starts like a version-2 envelope (a format dispatch, no check)."""
    return len(blob) >= OVERHEAD and blob[0] == VERSION
