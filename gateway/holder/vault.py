"""The master secret at rest: wrapped under a password factor and a face factor, never in clear.

Key-encryption key (KEK)::

    password_key = Argon2id(NFC(password), salt, opslimit, memlimit)        32 bytes
    kek          = HKDF-SHA256(ikm = password_key || face_key, salt = salt,
                               info = "MIP-VAULT-KEK-V1\\0" || passport_id)  32 bytes
    blob         = face_engine.envelope seal under kek of master, purpose
                   "mip/vault/master-secret", context = "MIP-VAULT-V1\\n" || canonical
                   JSON of {version, passport_id, kdf, opslimit, memlimit, salt, aead}

Version 3 (gateway/holder/vault_v3.py, written now wherever a helper org answers) adds two
orgs' OPRF outputs of the password to the KEK's input. Version 2 stores that envelope as
`ciphertext` (its nonce inside); it is still written by a development gateway that reaches no
helper, and opened and upgraded to version 3 at the next unlock
(gateway/services/password_hardening.py). Version 1,
written before the envelope module, sealed the master with XChaCha20-Poly1305 (libsodium,
random 24-byte `nonce` field) under the same KEK and associated data; `unwrap` still opens
it (`face_engine.envelope_legacy`) and `rewrap` (password or face-key change, recovery)
writes version 2. The envelope's key id is a 32-bit HMAC of the KEK: it lets a guesser
check a (password, face key) guess exactly as the tag already does, after the same
Argon2id work, so it adds nothing to an offline attack.

`face_key` is a 32-byte random secret the gateway keeps per holder and releases only after a
live face match; this module only takes the bytes. Neither factor alone opens the blob, and a
wrong password, a wrong face key, a different passport id and an altered blob are all the same
`UnlockFailed("unlock failed")`, so one factor's holder learns nothing about guesses of the
other. The KDF parameters travel with the blob (and are authenticated by the AAD); unwrap
accepts only parameters within [`MIN_KDF`, `MAX_KDF`], so a crafted blob cannot force a
trivial or memory-exhausting derivation.

Default cost (`DEFAULT_KDF`): Argon2id with opslimit 3 (passes) and memlimit 128 MiB, the
RFC 9106 second recommended option (t=3, 64 MiB) with twice the memory; measured at about
0.2 s per derivation on a 2-core CI machine, inside the ~0.2-0.5 s budget that keeps enrolment
under 1.5 s. libsodium's MODERATE (256 MiB) took 0.5-0.7 s there, over budget.
`INTERACTIVE_KDF` (2 passes, 64 MiB, ~0.1 s) is the floor, used by the tests.
"""

from __future__ import annotations

import json
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.pwhash.argon2id as argon2id
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.encoding import b64, unb64
from face_engine import envelope, envelope_legacy
from gateway.holder.errors import InvalidKeyMaterial, MalformedBlob, UnlockFailed, WeakPassword
from gateway.holder.keys import MASTER_SECRET_BYTES

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
KDF_NAME = "argon2id13"
AEAD_NAME = "mip-envelope-v2"  # face_engine.envelope, AES-256-GCM
LEGACY_AEAD_NAME = "xchacha20poly1305-ietf"
MASTER_PURPOSE = "mip/vault/master-secret"
FACE_KEY_BYTES = 32
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 1024  # Argon2 takes any length; a bound keeps requests cheap to refuse
_SALT_BYTES = argon2id.SALTBYTES
_LEGACY_NONCE_BYTES = envelope_legacy.XCHACHA_NONCE_BYTES
_TAG_BYTES = 16
# per version: the AEAD name, the JSON fields, the ciphertext length
_FORMATS: dict[int, tuple[str, frozenset[str], int]] = {
    FORMAT_VERSION: (AEAD_NAME, frozenset({"version", "kdf", "opslimit", "memlimit", "salt",
                                           "aead", "ciphertext"}),
                     MASTER_SECRET_BYTES + envelope.OVERHEAD),
    LEGACY_FORMAT_VERSION: (LEGACY_AEAD_NAME,
                            frozenset({"version", "kdf", "opslimit", "memlimit", "salt",
                                       "aead", "nonce", "ciphertext"}),
                            MASTER_SECRET_BYTES + _TAG_BYTES),
}
_KEK_INFO = b"MIP-VAULT-KEK-V1\x00"
_AAD_DOMAIN = b"MIP-VAULT-V1\n"
_MAX_PASSPORT_ID_CHARS = 128


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost: libsodium's opslimit (passes) and memlimit (bytes)."""

    opslimit: int
    memlimit: int


DEFAULT_KDF = KdfParams(opslimit=3, memlimit=128 * 1024 * 1024)
INTERACTIVE_KDF = KdfParams(argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE)
MIN_KDF = INTERACTIVE_KDF
MAX_KDF = KdfParams(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)


@dataclass(frozen=True)
class WrappedSecret:
    """A wrapped master secret: everything needed to unwrap it except the two factors.

    JSON form (`to_json` / `from_json`; bytes as standard base64)::

        {"version": 2, "kdf": "argon2id13", "opslimit": 3, "memlimit": 134217728,
         "salt": "...", "aead": "mip-envelope-v2", "ciphertext": "..."}

    Version 1 has `"aead": "xchacha20poly1305-ietf"` and a `"nonce"` field.
    """

    version: int
    kdf: str
    opslimit: int
    memlimit: int
    salt: bytes
    aead: str
    ciphertext: bytes  # version 2: the envelope; version 1: XChaCha20-Poly1305 output
    nonce: bytes = b""  # version 1 only

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "kdf": self.kdf,
            "opslimit": self.opslimit,
            "memlimit": self.memlimit,
            "salt": b64(self.salt),
            "aead": self.aead,
            "ciphertext": b64(self.ciphertext),
        }
        if self.version == LEGACY_FORMAT_VERSION:
            out["nonce"] = b64(self.nonce)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> WrappedSecret:
        """Parse and validate; raises `MalformedBlob` for anything but a valid v2 or v1 blob."""
        if not isinstance(raw, Mapping):
            raise MalformedBlob("wrapped secret must be a JSON object")
        version = raw.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version not in _FORMATS:
            raise MalformedBlob("unsupported wrapped secret version")
        aead_name, fields, ciphertext_bytes = _FORMATS[version]
        if set(raw.keys()) != fields:
            raise MalformedBlob("wrapped secret has missing or unexpected fields")
        if raw["kdf"] != KDF_NAME or raw["aead"] != aead_name:
            raise MalformedBlob("unsupported KDF or cipher")
        opslimit, memlimit = raw["opslimit"], raw["memlimit"]
        for value in (opslimit, memlimit):
            if not isinstance(value, int) or isinstance(value, bool):
                raise MalformedBlob("KDF limits must be integers")
        if not (MIN_KDF.opslimit <= opslimit <= MAX_KDF.opslimit
                and MIN_KDF.memlimit <= memlimit <= MAX_KDF.memlimit):
            raise MalformedBlob("KDF limits out of the accepted range")
        salt = unb64(raw["salt"], "salt", MalformedBlob)
        ciphertext = unb64(raw["ciphertext"], "ciphertext", MalformedBlob)
        nonce = b""
        if version == LEGACY_FORMAT_VERSION:
            nonce = unb64(raw["nonce"], "nonce", MalformedBlob)
            if len(nonce) != _LEGACY_NONCE_BYTES:
                raise MalformedBlob("salt or nonce has the wrong length")
        if len(salt) != _SALT_BYTES:
            raise MalformedBlob("salt or nonce has the wrong length")
        if len(ciphertext) != ciphertext_bytes:
            raise MalformedBlob("ciphertext has the wrong length")
        return cls(version, KDF_NAME, opslimit, memlimit, salt, aead_name, ciphertext, nonce)

    @classmethod
    def from_json(cls, text: str | bytes) -> WrappedSecret:
        try:
            raw = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise MalformedBlob("wrapped secret is not valid JSON") from exc
        return cls.from_dict(raw)

    @property
    def kdf_params(self) -> KdfParams:
        return KdfParams(self.opslimit, self.memlimit)

    def __repr__(self) -> str:
        return f"WrappedSecret(version={self.version}, kdf={self.kdf}, opslimit={self.opslimit}, " \
               f"memlimit={self.memlimit})"


def new_face_key() -> bytes:
    """A fresh face-factor key (the gateway stores it per holder, released after a face match)."""
    return secrets.token_bytes(FACE_KEY_BYTES)


def check_password(password: str) -> bytes:
    """The password's bytes (NFC-normalised UTF-8), or `WeakPassword` if it is too short/long.

    NFC so that the same password typed on two keyboards (composed vs. decomposed accents)
    gives the same key. Length counts characters after normalisation.
    """
    if not isinstance(password, str):
        raise WeakPassword("password must be a string")
    normalised = unicodedata.normalize("NFC", password)
    if len(normalised) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_CHARS} characters")
    encoded = normalised.encode()
    if len(encoded) > MAX_PASSWORD_BYTES:
        raise WeakPassword(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    return encoded


def wrap(
    master: bytes,
    password: str,
    face_key: bytes,
    passport_id: str,
    *,
    kdf: KdfParams = DEFAULT_KDF,
) -> WrappedSecret:
    """Wrap `master` under (password, face_key), bound to `passport_id`."""
    if not isinstance(master, bytes) or len(master) != MASTER_SECRET_BYTES:
        raise InvalidKeyMaterial(f"master secret must be {MASTER_SECRET_BYTES} bytes")
    if not (MIN_KDF.opslimit <= kdf.opslimit <= MAX_KDF.opslimit
            and MIN_KDF.memlimit <= kdf.memlimit <= MAX_KDF.memlimit):
        raise InvalidKeyMaterial("KDF parameters outside the accepted range")
    password_bytes = check_password(password)
    _check_face_key(face_key)
    _check_passport_id(passport_id)
    salt = secrets.token_bytes(_SALT_BYTES)
    header = WrappedSecret(FORMAT_VERSION, KDF_NAME, kdf.opslimit, kdf.memlimit, salt,
                           AEAD_NAME, b"")
    kek = envelope.Key(_kek(password_bytes, face_key, passport_id, header))
    sealed = kek.seal(master, purpose=MASTER_PURPOSE, context=_aad(header, passport_id))
    return WrappedSecret(FORMAT_VERSION, KDF_NAME, kdf.opslimit, kdf.memlimit, salt, AEAD_NAME,
                         sealed)


def unwrap(
    blob: WrappedSecret | str | bytes | Mapping[str, Any],
    password: str,
    face_key: bytes,
    passport_id: str,
) -> bytes:
    """The master secret, or `UnlockFailed` (any wrong factor or alteration), `MalformedBlob`.

    A password that could never have been set (too short) is also `UnlockFailed`, not
    `WeakPassword`: unlocking says nothing about which input was wrong.
    """
    parsed = _coerce(blob)
    _check_face_key(face_key)
    _check_passport_id(passport_id)
    try:
        password_bytes = check_password(password)
    except WeakPassword:
        raise UnlockFailed() from None
    kek = _kek(password_bytes, face_key, passport_id, parsed)
    try:
        # any failure (wrong key id, wrong tag) is the one UnlockFailed: no hint which factor
        if parsed.version == LEGACY_FORMAT_VERSION:
            master = envelope_legacy.open_xchacha20poly1305(
                kek, parsed.nonce, parsed.ciphertext, _aad(parsed, passport_id))
        else:
            master = envelope.Key(kek).open(parsed.ciphertext, purpose=MASTER_PURPOSE,
                                            context=_aad(parsed, passport_id))
    except envelope.EnvelopeError:
        raise UnlockFailed() from None
    if len(master) != MASTER_SECRET_BYTES:  # only reachable by someone who had both factors
        raise MalformedBlob("wrapped secret holds a value of the wrong length")
    return master


def rewrap(
    blob: WrappedSecret | str | bytes | Mapping[str, Any],
    password: str,
    face_key: bytes,
    passport_id: str,
    *,
    new_password: str | None = None,
    new_face_key: bytes | None = None,
    kdf: KdfParams | None = None,
) -> WrappedSecret:
    """Unwrap with the current factors and wrap again (password change, new face key, new cost).

    Always a fresh salt and nonce, and always the current version (a version-1 blob comes
    back as version 2). The new password is checked before the (slow) unwrap.
    `kdf` None keeps the blob's own parameters.
    """
    parsed = _coerce(blob)
    target_password = new_password if new_password is not None else password
    check_password(target_password)
    target_face_key = new_face_key if new_face_key is not None else face_key
    _check_face_key(target_face_key)
    master = unwrap(parsed, password, face_key, passport_id)
    return wrap(master, target_password, target_face_key, passport_id,
                kdf=kdf if kdf is not None else parsed.kdf_params)


def _coerce(blob: WrappedSecret | str | bytes | Mapping[str, Any]) -> WrappedSecret:
    if isinstance(blob, WrappedSecret):
        return WrappedSecret.from_dict(blob.to_dict())  # re-validate a hand-built instance
    if isinstance(blob, str | bytes):
        return WrappedSecret.from_json(blob)
    return WrappedSecret.from_dict(blob)


def _kek(password: bytes, face_key: bytes, passport_id: str, header: WrappedSecret) -> bytes:
    password_key = argon2id.kdf(
        32, password, header.salt, opslimit=header.opslimit, memlimit=header.memlimit
    )
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=header.salt,
        info=_KEK_INFO + passport_id.encode(),
    )
    return hkdf.derive(password_key + face_key)


def _aad(header: WrappedSecret, passport_id: str) -> bytes:
    return _AAD_DOMAIN + canonical_json({
        "version": header.version,
        "passport_id": passport_id,
        "kdf": header.kdf,
        "opslimit": header.opslimit,
        "memlimit": header.memlimit,
        "salt": b64(header.salt),
        "aead": header.aead,
    })


def _check_face_key(face_key: bytes) -> None:
    if not isinstance(face_key, bytes) or len(face_key) != FACE_KEY_BYTES:
        raise InvalidKeyMaterial(f"face-factor key must be {FACE_KEY_BYTES} bytes")


def _check_passport_id(passport_id: str) -> None:
    if not isinstance(passport_id, str) or not 0 < len(passport_id) <= _MAX_PASSPORT_ID_CHARS:
        raise InvalidKeyMaterial(
            f"passport id must be a string of 1 to {_MAX_PASSPORT_ID_CHARS} characters"
        )
