"""Vault version 3: the master secret wrapped under a password hardened by two orgs' OPRFs.

Version 2 (vault.py) makes the KEK from Argon2id(password) and the face-factor key, both of
which the enrolling org E's gateway holds the means to: whoever has E's database and keys can
test password guesses offline at Argon2id's cost. Version 3 adds two oblivious PRF outputs
(RFC 9497, gateway/holder/oprf.py) under keys of two different orgs, so a guess can only be
tested with an answer from the helper org H, which counts them::

    x          = "MIP-VAULT-OPRF-INPUT-V1\\0" || passport_id || "\\0" || NFC(password)
    pw_key     = Argon2id(NFC(password), salt, opslimit, memlimit)           32 bytes
    f_E, f_H   = OPRF(k_E, x), OPRF(k_H, x)                                  64 bytes each
    ikm        = pw_key || face_key || f_E || f_H
    kek        = HKDF-SHA256(ikm, salt, info = "MIP-VAULT-KEK-V3\\0" || canonical JSON of
                             {passport_id, enrolling_org, helper})
    confirm    = HKDF-SHA256(ikm, salt, info = "MIP-VAULT-CONFIRM-V3\\0" || same JSON)
    wrap       = face_engine.envelope seal of the master under kek, purpose
                 "mip/vault/master-secret", context = "MIP-VAULT-V3\\n" || canonical JSON of
                 the header (version, passport_id, enrolling_org, helper, kdf, salt, aead)

`k_E`, `k_H` are per (org, passport, salt) keys (gateway/services/password_oprf.py). E
computes f_E itself and gets f_H obliviously: it sends H only the blinded element. `confirm`
is what E shows H after a successful unwrap so that H stops counting that evaluation as a
failed guess; H keeps only SHA-256(confirm) per (passport, salt). The blob may hold a second
wrap of the same master under (E, H2) for availability (docs/gateway.md "Password
hardening"); each wrap stands alone.

JSON form::

    {"version": 3, "kdf": "argon2id13", "opslimit": 3, "memlimit": 134217728, "salt": "...",
     "aead": "mip-envelope-v2", "enrolling_org": "HospitalMSP",
     "wraps": [{"helper": "SchoolMSP", "ciphertext": "..."}, ...]}

Any wrong input (password, face key, f_E, f_H, passport id, an altered blob) is the one
`UnlockFailed`: with a wrong f_H the right and the wrong password fail alike, which is the
point (tests/gateway/holder/test_vault_v3.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.pwhash.argon2id as argon2id
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.encoding import b64, unb64
from chaincode.protocol.orgs import MEMBER_ORGS
from face_engine import envelope
from gateway.holder.errors import InvalidKeyMaterial, MalformedBlob, UnlockFailed
from gateway.holder.keys import MASTER_SECRET_BYTES
from gateway.holder.oprf import OUTPUT_BYTES
from gateway.holder.vault import (
    AEAD_NAME,
    DEFAULT_KDF,
    FACE_KEY_BYTES,
    KDF_NAME,
    MASTER_PURPOSE,
    MAX_KDF,
    MIN_KDF,
    KdfParams,
)

VERSION = 3
MAX_WRAPS = 2
SALT_BYTES = argon2id.SALTBYTES
PASSWORD_KEY_BYTES = 32
CONFIRM_BYTES = 32
_INPUT_DOMAIN = b"MIP-VAULT-OPRF-INPUT-V1\x00"
_KEK_INFO = b"MIP-VAULT-KEK-V3\x00"
_CONFIRM_INFO = b"MIP-VAULT-CONFIRM-V3\x00"
_AAD_DOMAIN = b"MIP-VAULT-V3\n"
_FIELDS = frozenset({"version", "kdf", "opslimit", "memlimit", "salt", "aead", "enrolling_org",
                     "wraps"})


@dataclass(frozen=True)
class HelperWrap:
    helper: str
    ciphertext: bytes


@dataclass(frozen=True)
class HardenedSecret:
    """A version-3 wrapped master secret (everything but the factors and OPRF outputs)."""

    opslimit: int
    memlimit: int
    salt: bytes
    enrolling_org: str
    wraps: tuple[HelperWrap, ...]

    @property
    def kdf_params(self) -> KdfParams:
        return KdfParams(self.opslimit, self.memlimit)

    @property
    def helpers(self) -> tuple[str, ...]:
        return tuple(w.helper for w in self.wraps)

    def to_dict(self) -> dict[str, Any]:
        return {"version": VERSION, "kdf": KDF_NAME, "opslimit": self.opslimit,
                "memlimit": self.memlimit, "salt": b64(self.salt), "aead": AEAD_NAME,
                "enrolling_org": self.enrolling_org,
                "wraps": [{"helper": w.helper, "ciphertext": b64(w.ciphertext)}
                          for w in self.wraps]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HardenedSecret:
        if not isinstance(raw, Mapping) or raw.get("version") != VERSION \
                or isinstance(raw.get("version"), bool):
            raise MalformedBlob("not a version-3 wrapped secret")
        if set(raw) != _FIELDS:
            raise MalformedBlob("wrapped secret has missing or unexpected fields")
        if raw["kdf"] != KDF_NAME or raw["aead"] != AEAD_NAME:
            raise MalformedBlob("unsupported KDF or cipher")
        opslimit, memlimit = raw["opslimit"], raw["memlimit"]
        for value in (opslimit, memlimit):
            if not isinstance(value, int) or isinstance(value, bool):
                raise MalformedBlob("KDF limits must be integers")
        if not (MIN_KDF.opslimit <= opslimit <= MAX_KDF.opslimit
                and MIN_KDF.memlimit <= memlimit <= MAX_KDF.memlimit):
            raise MalformedBlob("KDF limits out of the accepted range")
        salt = unb64(raw["salt"], "salt", MalformedBlob)
        if len(salt) != SALT_BYTES:
            raise MalformedBlob("salt has the wrong length")
        enrolling = raw["enrolling_org"]
        if enrolling not in MEMBER_ORGS:
            raise MalformedBlob("unknown enrolling org")
        wraps_raw = raw["wraps"]
        if not isinstance(wraps_raw, list) or not 0 < len(wraps_raw) <= MAX_WRAPS:
            raise MalformedBlob(f"a version-3 blob has 1 to {MAX_WRAPS} wraps")
        wraps = []
        for item in wraps_raw:
            if not isinstance(item, Mapping) or set(item) != {"helper", "ciphertext"}:
                raise MalformedBlob("a wrap has missing or unexpected fields")
            helper = item["helper"]
            if helper not in MEMBER_ORGS or helper == enrolling:
                raise MalformedBlob("a wrap's helper must be another member org")
            ciphertext = unb64(item["ciphertext"], "ciphertext", MalformedBlob)
            if len(ciphertext) != MASTER_SECRET_BYTES + envelope.OVERHEAD:
                raise MalformedBlob("ciphertext has the wrong length")
            wraps.append(HelperWrap(helper, ciphertext))
        if len({w.helper for w in wraps}) != len(wraps):
            raise MalformedBlob("two wraps name the same helper")
        return cls(opslimit, memlimit, salt, enrolling, tuple(wraps))

    @classmethod
    def from_json(cls, text: str | bytes) -> HardenedSecret:
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise MalformedBlob("wrapped secret is not valid JSON") from exc
        return cls.from_dict(raw)

    def __repr__(self) -> str:
        return f"HardenedSecret(helpers={self.helpers}, opslimit={self.opslimit}, " \
               f"memlimit={self.memlimit})"


def blob_version(text: str | bytes) -> int:
    """The `version` of a stored wrapped secret (0 if it has none: vault.py refuses it)."""
    try:
        raw = json.loads(text)
    except (ValueError, TypeError):
        return 0
    version = raw.get("version") if isinstance(raw, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def oprf_input(password: bytes, passport_id: str) -> bytes:
    """What both OPRFs evaluate: the (checked, NFC) password bound to the passport."""
    return _INPUT_DOMAIN + passport_id.encode() + b"\x00" + password


def password_key(password: bytes, salt: bytes, kdf: KdfParams = DEFAULT_KDF) -> bytes:
    """Argon2id of the checked password (`vault.check_password`'s bytes). Slow by design."""
    if not (MIN_KDF.opslimit <= kdf.opslimit <= MAX_KDF.opslimit
            and MIN_KDF.memlimit <= kdf.memlimit <= MAX_KDF.memlimit):
        raise InvalidKeyMaterial("KDF parameters outside the accepted range")
    return bytes(argon2id.kdf(PASSWORD_KEY_BYTES, password, salt, opslimit=kdf.opslimit,
                              memlimit=kdf.memlimit))


@dataclass(frozen=True)
class Shares:
    """The two OPRF outputs for one helper: the enrolling org's own and the helper's."""

    own: bytes
    helper: bytes

    def __repr__(self) -> str:
        return "Shares(<withheld>)"


def wrap(master: bytes, pw_key: bytes, face_key: bytes, passport_id: str, *,
         enrolling_org: str, salt: bytes, kdf: KdfParams,
         shares: Mapping[str, Shares]) -> tuple[HardenedSecret, dict[str, bytes]]:
    """The blob, one wrap per helper in `shares` (in its order), and each helper's confirm
    token."""
    if not isinstance(master, bytes) or len(master) != MASTER_SECRET_BYTES:
        raise InvalidKeyMaterial(f"master secret must be {MASTER_SECRET_BYTES} bytes")
    _check_inputs(pw_key, face_key, passport_id)
    if not 0 < len(shares) <= MAX_WRAPS:
        raise InvalidKeyMaterial(f"1 to {MAX_WRAPS} helpers")
    header = HardenedSecret(kdf.opslimit, kdf.memlimit, salt, enrolling_org, ())
    wraps, tokens = [], {}
    for helper, pair in shares.items():
        kek, tokens[helper] = _keys(pw_key, face_key, pair, passport_id, header, helper)
        sealed = envelope.Key(kek).seal(master, purpose=MASTER_PURPOSE,
                                        context=_aad(header, passport_id, helper))
        wraps.append(HelperWrap(helper, sealed))
    blob = HardenedSecret(kdf.opslimit, kdf.memlimit, salt, enrolling_org, tuple(wraps))
    HardenedSecret.from_dict(blob.to_dict())  # the same checks a reader makes
    return blob, tokens


def unwrap(blob: HardenedSecret, pw_key: bytes, face_key: bytes, passport_id: str,
           helper: str, shares: Shares) -> tuple[bytes, bytes]:
    """(master secret, the helper's confirm token), or `UnlockFailed` for any wrong input."""
    _check_inputs(pw_key, face_key, passport_id)
    found = [w for w in blob.wraps if w.helper == helper]
    if not found:
        raise InvalidKeyMaterial("this blob has no wrap for that helper")
    kek, token = _keys(pw_key, face_key, shares, passport_id, blob, helper)
    try:
        master = envelope.Key(kek).open(found[0].ciphertext, purpose=MASTER_PURPOSE,
                                        context=_aad(blob, passport_id, helper))
    except envelope.EnvelopeError:
        raise UnlockFailed() from None
    if len(master) != MASTER_SECRET_BYTES:
        raise MalformedBlob("wrapped secret holds a value of the wrong length")
    return master, token


def _binding(header: HardenedSecret, passport_id: str, helper: str) -> bytes:
    return canonical_json({"passport_id": passport_id, "enrolling_org": header.enrolling_org,
                           "helper": helper})


def _keys(pw_key: bytes, face_key: bytes, shares: Shares, passport_id: str,
          header: HardenedSecret, helper: str) -> tuple[bytes, bytes]:
    if len(shares.own) != OUTPUT_BYTES or len(shares.helper) != OUTPUT_BYTES:
        raise InvalidKeyMaterial(f"OPRF outputs must be {OUTPUT_BYTES} bytes")
    ikm = pw_key + face_key + shares.own + shares.helper
    binding = _binding(header, passport_id, helper)
    kek = HKDF(hashes.SHA256(), 32, header.salt, _KEK_INFO + binding).derive(ikm)
    token = HKDF(hashes.SHA256(), CONFIRM_BYTES, header.salt,
                 _CONFIRM_INFO + binding).derive(ikm)
    return kek, token


def _aad(header: HardenedSecret, passport_id: str, helper: str) -> bytes:
    return _AAD_DOMAIN + canonical_json({
        "version": VERSION, "passport_id": passport_id, "enrolling_org": header.enrolling_org,
        "helper": helper, "kdf": KDF_NAME, "opslimit": header.opslimit,
        "memlimit": header.memlimit, "salt": b64(header.salt), "aead": AEAD_NAME})


def _check_inputs(pw_key: bytes, face_key: bytes, passport_id: str) -> None:
    if not isinstance(pw_key, bytes) or len(pw_key) != PASSWORD_KEY_BYTES:
        raise InvalidKeyMaterial(f"password key must be {PASSWORD_KEY_BYTES} bytes")
    if not isinstance(face_key, bytes) or len(face_key) != FACE_KEY_BYTES:
        raise InvalidKeyMaterial(f"face-factor key must be {FACE_KEY_BYTES} bytes")
    if not isinstance(passport_id, str) or not 0 < len(passport_id) <= 128:
        raise InvalidKeyMaterial("passport id must be a string of 1 to 128 characters")
