"""The development file provider keeps every key and derivation the gateway used before the
key-provider interface, so data dirs made before it open unchanged: the values below are
computed the way the pre-interface code computed them, from the secrets file's bytes."""

from __future__ import annotations

import hmac
import os
from hashlib import sha256

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from face_engine import envelope
from face_engine.protect.keyed_rotation import derive_key, derive_with
from gateway.core.keys.file_provider import FileProvider
from gateway.core.keys.names import FACE_FACTOR_LABEL, KYC_ISSUER_LABEL
from gateway.core.secrets import GatewaySecrets
from gateway.services.counter_key import HKDF_INFO as COUNTER_INFO
from gateway.services.counter_key import derive_counter_key
from gateway.services.linkage import HKDF_INFO as LINKAGE_INFO
from gateway.services.linkage import derive_verifier_key


def _secrets() -> GatewaySecrets:
    return GatewaySecrets(*(os.urandom(32) for _ in range(7)))


def test_keks_are_the_secrets_files_keys() -> None:
    s = _secrets()
    provider = FileProvider(s)
    # protector and dedup used envelope.Key(face_kek) and this fingerprint (format 1 on)
    face = provider.kek("face")
    assert face == envelope.Key(s.face_kek)
    assert face.fingerprint == hmac.new(s.face_kek, b"mip/kek-id/v1", sha256).hexdigest()[:16]
    # holder_sealing derived its purpose keys from face_factor_kek (HKDF, no salt)
    assert provider.kek("face-factor") == envelope.Key.derive(s.face_factor_kek,
                                                              FACE_FACTOR_LABEL)
    assert provider.kek("kyc-issuer") == envelope.Key.derive(s.face_factor_kek,
                                                             KYC_ISSUER_LABEL)


def test_derivations_are_unchanged() -> None:
    s = _secrets()
    provider = FileProvider(s)
    transform = provider.deriver("face-transform")
    assert derive_with(transform, "rotation", "pseudonym", "HospitalMSP", 3) == \
        derive_key(s.face_transform_key, "rotation", "pseudonym", "HospitalMSP", 3)
    assert derive_with(transform, "holder-pseudonym", "acct", "SchoolMSP", length=16) == \
        derive_key(s.face_transform_key, "holder-pseudonym", "acct", "SchoolMSP", length=16)

    old_counter = HKDF(algorithm=hashes.SHA256(), length=48, salt=None,
                       info=COUNTER_INFO).derive(s.counter_key_seed)
    assert provider.deriver("counter").expand(COUNTER_INFO, 48) == old_counter
    assert derive_counter_key(provider.deriver("counter")).key_id.startswith("counter-")

    old_linkage = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=LINKAGE_INFO + b"PharmacyMSP").derive(s.linkage_key_seed)
    verifier = derive_verifier_key(provider.deriver("linkage"), "PharmacyMSP")
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    expected = X25519PrivateKey.from_private_bytes(old_linkage).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    assert verifier.public_raw == expected
