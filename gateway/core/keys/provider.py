"""The one interface the gateway's keys at rest are reached through (issue #15).

A `KeyProvider` holds the gateway's key-encryption keys and derivation keys and offers only
their operations: a KEK wraps and unwraps data keys (and seals the gateway's small sealed
rows) for a purpose and context, a derivation key runs HKDF-Expand. No caller gets a KEK's
bytes, so under the PKCS#11 provider a KEK never leaves the token. What a caller may keep
beside its data is what these operations return: wrapped data keys and sealed envelopes.

Providers: `Pkcs11Provider` (production: non-extractable keys in a PKCS#11 token) and
`FileProvider` (development: today's `<data_dir>/secrets.json`), chosen by
gateway/core/keys/startup.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from face_engine.envelope import SealingKey
from face_engine.protect.keyed_rotation import KeyDeriver
from gateway.core.config import ConfigError

from .names import DeriverName, KekName


class KeyProviderError(ConfigError):
    """The key provider cannot start: module, token, PIN or keys missing or refused.
    Messages name the setting to fix and never hold a PIN or key material."""


class KeyProvider(ABC):
    kind: Literal["pkcs11", "file"]

    @abstractmethod
    def kek(self, name: KekName) -> SealingKey:
        """The key-encryption key `name` (wrap/unwrap, seal/open; no bytes)."""

    @abstractmethod
    def deriver(self, name: DeriverName) -> KeyDeriver:
        """The derivation key `name` (HKDF-Expand under it; no bytes)."""

    def close(self) -> None:  # noqa: B027 (a provider with nothing to release keeps this)
        """Release the provider's resources (a token session)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<keys withheld>)"
