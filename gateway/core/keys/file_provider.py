"""Development keys: today's `<data_dir>/secrets.json` (or `MIP_*` variables) behind the
`KeyProvider` interface, with the very keys and derivations the gateway used before the
interface, so every face reference, sealed row and derived public key stays as it was.

`mip serve` accepts this provider only in development mode (gateway/core/keys/startup.py):
its KEKs are bytes in a file beside the data they protect.
"""

from __future__ import annotations

from typing import Literal

from face_engine.envelope import Key, SealingKey
from face_engine.protect.keyed_rotation import KeyDeriver, SecretDeriver
from gateway.core.secrets import GatewaySecrets

from .names import FACE_FACTOR_LABEL, KYC_ISSUER_LABEL, DeriverName, KekName
from .provider import KeyProvider


class FileProvider(KeyProvider):
    kind: Literal["pkcs11", "file"] = "file"

    def __init__(self, secrets: GatewaySecrets) -> None:
        self.secrets = secrets
        self._keks: dict[str, SealingKey] = {
            "face": Key(secrets.face_kek),
            # HKDF-SHA256(face_factor_kek, no salt, info = label), as holder_sealing did
            "face-factor": Key.derive(secrets.face_factor_kek, FACE_FACTOR_LABEL),
            "kyc-issuer": Key.derive(secrets.face_factor_kek, KYC_ISSUER_LABEL),
        }
        self._derivers: dict[str, KeyDeriver] = {
            # face_engine's own salt, as derive_key(face_transform_key, ...) used it
            "face-transform": SecretDeriver(secrets.face_transform_key),
            # HKDF(seed, salt=None, info=...), as counter_key.py and linkage.py derived them
            "counter": SecretDeriver(secrets.counter_key_seed, salt=None),
            "linkage": SecretDeriver(secrets.linkage_key_seed, salt=None),
            "portrait": SecretDeriver(secrets.portrait_key_seed, salt=None),
            "password-oprf": SecretDeriver(secrets.password_oprf_seed, salt=None),
        }

    def kek(self, name: KekName) -> SealingKey:
        return self._keks[name]

    def deriver(self, name: DeriverName) -> KeyDeriver:
        return self._derivers[name]
