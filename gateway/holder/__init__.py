"""Holder keys: master secret, derived passport/account keys, the wrapped vault, guardian recovery.

Pure library code for the gateway service; nothing here logs, stores or sends anything.

Typical flow::

    from gateway.holder import keys, vault, recovery

    master = keys.new_master_secret()                      # 32 random bytes
    passport = keys.passport_key(master)                   # HolderKeyPair (m/P'/0')
    pid = keys.passport_id(master)                         # hex sha256 of the passport key
    face_key = vault.new_face_key()                        # gateway keeps it, per holder
    blob = vault.wrap(master, password, face_key, pid)     # WrappedSecret -> blob.to_json()
    master = vault.unwrap(blob, password, face_key, pid)   # or UnlockFailed("unlock failed")

    request = passport.sign_request("passport.register", body)       # dict for the contract
    account = keys.account_key(master, "HospitalMSP", 0)  # unlinkable per-institution key
    pseudonym = keys.new_pseudonym()                       # random, never derived

    shares = recovery.split(master, guardian_public_keys, k)   # list[SealedShare]
    mnemonic = recovery.open_share(shares[i], guardian_private) # on the guardian's side
    master = recovery.recover([mnemonic_1, ..., mnemonic_k])

Modules: `keys` (derivation paths and signing, documented there), `vault` (wrapping: Argon2id
+ face factor + HKDF + `face_engine.envelope`), `recovery` (SLIP-39 + sealed boxes), `x25519`
(Ed25519 -> X25519 conversion and key ids), `errors` (every error is a `HolderError`).
"""

from gateway.holder.errors import (
    CorruptShare,
    HolderError,
    InvalidGuardianKey,
    InvalidKeyMaterial,
    MalformedBlob,
    MixedShares,
    RecoveryError,
    ShareOpenFailed,
    TooFewShares,
    UnlockFailed,
    WeakPassword,
)
from gateway.holder.keys import (
    HolderKeyPair,
    account_key,
    new_master_secret,
    new_pseudonym,
    passport_id,
    passport_key,
    profile_key,
    sign_holder_request,
)
from gateway.holder.recovery import SealedShare, open_share, recover, split
from gateway.holder.vault import (
    DEFAULT_KDF,
    INTERACTIVE_KDF,
    KdfParams,
    WrappedSecret,
    new_face_key,
    rewrap,
    unwrap,
    wrap,
)

__all__ = [
    "DEFAULT_KDF",
    "INTERACTIVE_KDF",
    "CorruptShare",
    "HolderError",
    "HolderKeyPair",
    "InvalidGuardianKey",
    "InvalidKeyMaterial",
    "KdfParams",
    "MalformedBlob",
    "MixedShares",
    "RecoveryError",
    "SealedShare",
    "ShareOpenFailed",
    "TooFewShares",
    "UnlockFailed",
    "WeakPassword",
    "WrappedSecret",
    "account_key",
    "new_face_key",
    "new_master_secret",
    "new_pseudonym",
    "open_share",
    "passport_id",
    "passport_key",
    "profile_key",
    "recover",
    "rewrap",
    "sign_holder_request",
    "split",
    "unwrap",
    "wrap",
]
