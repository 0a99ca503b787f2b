"""The two keys of template protection as callers may give them: as bytes (tests, the
file key provider) or held elsewhere (a PKCS#11 token, gateway/core/keys), where the key
never enters this process and only its operations (wrap/unwrap, HKDF-Expand) are offered.
Shared by ``face_engine.protect`` and ``face_engine.dedup``."""

from __future__ import annotations

from face_engine import envelope
from face_engine.protect.errors import InvalidKey
from face_engine.protect.keyed_rotation import KeyDeriver, SecretDeriver


def _check_key(name: str, key: bytes, minimum: int, exact: bool) -> None:
    if not isinstance(key, bytes):
        raise InvalidKey(f"{name} must be bytes")
    if (exact and len(key) != minimum) or len(key) < minimum:
        raise InvalidKey(f"{name} must be {'exactly' if exact else 'at least'} {minimum} bytes")


def as_key_wrapper(name: str, kek: bytes | envelope.KeyWrapper) -> envelope.KeyWrapper:
    """A KEK given as 32 bytes becomes an ``envelope.Key``; a held one is taken as it is."""
    if isinstance(kek, bytes):
        _check_key(name, kek, 32, exact=True)
        return envelope.Key(kek)
    if all(hasattr(kek, attr) for attr in ("wrap", "unwrap", "fingerprint")):
        return kek
    raise InvalidKey(f"{name} must be bytes or a key wrapper")


def as_key_deriver(name: str, transform_key: bytes | KeyDeriver) -> KeyDeriver:
    """A transform key given as >= 32 bytes, or one held elsewhere (``KeyDeriver``)."""
    if isinstance(transform_key, bytes):
        _check_key(name, transform_key, 32, exact=False)
        return SecretDeriver(transform_key)
    if hasattr(transform_key, "expand"):
        return transform_key
    raise InvalidKey(f"{name} must be bytes or a key deriver")
