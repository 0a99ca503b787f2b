"""Production keys: non-extractable secret keys in a PKCS#11 token (python-pkcs11).

Each of the gateway's keys (names.py) is one secret key object in the token, labelled
`<key_label_prefix>/kek/<name>` or `<key_label_prefix>/derive/<name>` (one prefix per org's
gateway), made at first start with CKA_SENSITIVE true and CKA_EXTRACTABLE false: its value
never leaves the token, not even wrapped. The gateway asks the token for operations only:

- KEKs (AES-256, CKA_ENCRYPT/CKA_DECRYPT only): AES-GCM (CKM_AES_GCM) inside the token,
  producing face_engine.envelope version-2 envelopes (`HeldKey`): the purpose and context
  are the associated data exactly as for in-process keys, the envelope's key id is the first
  4 bytes of the object's random CKA_ID and the fingerprint stored beside wrapped keys is the
  whole CKA_ID in hex. AES-GCM rather than CKM_AES_KEY_WRAP_PAD because the same KEK also
  seals the gateway's small secrets (an issuer's CL private key is JSON, not a key object)
  and binds purpose and context, which RFC 5649 wrapping cannot.
- derivation keys (CKK_GENERIC_SECRET, 32 bytes, CKA_SIGN only): HMAC-SHA256
  (CKM_SHA256_HMAC) inside the token, composed into HKDF-Expand (hkdf.py). A random
  32-byte key is a valid HKDF pseudorandom key, so the extract step is not needed.

Only what these operations return (wrapped data keys, envelopes, derived values) is ever in
this process. SoftHSM2 (Debian `softhsm2`, /usr/lib/softhsm/libsofthsm2.so) is what tests
run against; any PKCS#11 2.40 token with AES-GCM and SHA256-HMAC serves.

Each provider has its own session and each call holds its lock: a PKCS#11 session runs one
operation at a time, and the gateway calls from several worker threads. Logging in is per
token and process in PKCS#11 (a logout ends every session's login), so the login is one
anchor session per token, shared by the providers open in this process (`_TokenLogins`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

import pkcs11
from cryptography.exceptions import InvalidTag
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    GeneralError,
    NoSuchKey,
    NoSuchToken,
    PinIncorrect,
    PKCS11Error,
    UserAlreadyLoggedIn,
)
from pkcs11.mechanisms import GCMParams
from pkcs11.types import DecryptMixin, EncryptMixin, SignMixin

from face_engine.envelope import HeldKey, SealingKey
from face_engine.protect.keyed_rotation import KeyDeriver
from gateway.core.secrets import DataDirMismatch

from .hkdf import hkdf_expand
from .names import DERIVER_NAMES, KEK_NAMES, STRANDING, DeriverName, KekName
from .provider import KeyProvider, KeyProviderError

ID_BYTES = 8
SOFTHSM2_INSTALL = "apt-get install softhsm2"

# Every key the gateway makes: in the token only, usable only for its one operation.
_COMMON: dict[Attribute, Any] = {
    Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False, Attribute.MODIFIABLE: False, Attribute.WRAP: False,
    Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.VERIFY: False,
}
KEK_TEMPLATE = {**_COMMON, Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                 Attribute.SIGN: False}
DERIVER_TEMPLATE = {**_COMMON, Attribute.ENCRYPT: False, Attribute.DECRYPT: False,
                     Attribute.SIGN: True}


def kek_label(prefix: str, name: str) -> str:
    return f"{prefix}/kek/{name}"


def deriver_label(prefix: str, name: str) -> str:
    return f"{prefix}/derive/{name}"


class _TokenAead:
    """AES-256-GCM under one token key, with cryptography's `AESGCM` interface."""

    def __init__(self, key: pkcs11.SecretKey, lock: threading.Lock) -> None:
        # python-pkcs11 mixes the operations in at run time, by the key's attributes
        self._encrypting = cast(EncryptMixin, key)
        self._decrypting = cast(DecryptMixin, key)
        self._lock = lock

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        with self._lock:
            out = self._encrypting.encrypt(data, mechanism=Mechanism.AES_GCM,
                                    mechanism_param=GCMParams(nonce, associated_data, 128))
        assert isinstance(out, bytes)
        return out

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        try:
            with self._lock:
                out = self._decrypting.decrypt(data, mechanism=Mechanism.AES_GCM,
                                        mechanism_param=GCMParams(nonce, associated_data, 128))
        # SoftHSM2 answers a failed tag with CKR_GENERAL_ERROR, others with
        # CKR_ENCRYPTED_DATA_INVALID: both mean "does not authenticate" here
        except (EncryptedDataInvalid, EncryptedDataLenRange, GeneralError):
            raise InvalidTag from None
        assert isinstance(out, bytes)
        return out


class _TokenDeriver:
    """HKDF-Expand under a token HMAC key."""

    def __init__(self, key: pkcs11.SecretKey, lock: threading.Lock) -> None:
        self._signing = cast(SignMixin, key)
        self._lock = lock

    def _hmac(self, message: bytes) -> bytes:
        with self._lock:
            return self._signing.sign(message, mechanism=Mechanism.SHA256_HMAC)

    def expand(self, info: bytes, length: int) -> bytes:
        return hkdf_expand(self._hmac, info, length)

    def __repr__(self) -> str:
        return "TokenDeriver(<in the token>)"


def read_pin(pin_file: Path | None, env: str) -> str:
    """The user PIN from `pin_file` (first line) or the variable `env`; never echoed."""
    if pin_file is not None:
        try:
            pin = pin_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyProviderError(f"cannot read pkcs11_pin_file {pin_file}: "
                                   f"{exc.strerror}") from None
        if not pin:
            raise KeyProviderError(f"pkcs11_pin_file {pin_file} is empty")
        return pin
    pin = os.environ.get(env, "")
    if not pin:
        raise KeyProviderError(f"no PKCS#11 PIN: set pkcs11_pin_file or ${env}")
    return pin


class _TokenLogins:
    """One logged-in anchor session per (module, token), counted by the providers using it:
    the user is logged out when the last of them closes, never under another's feet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (module, token label) -> (anchor session, SHA-256 of its PIN, providers using it)
        self._held: dict[tuple[str, str], tuple[pkcs11.Session, bytes, int]] = {}

    def acquire(self, token: pkcs11.Token, where: tuple[str, str], pin: str) -> None:
        digest = hashlib.sha256(pin.encode()).digest()
        with self._lock:
            held = self._held.get(where)
            if held is not None:
                anchor, known, count = held
                if not hmac.compare_digest(known, digest):
                    raise KeyProviderError(f"the PIN of PKCS#11 token {where[1]!r} is wrong")
                self._held[where] = (anchor, known, count + 1)
                return
            try:
                anchor = token.open(user_pin=pin, rw=True)
            except PinIncorrect:
                raise KeyProviderError(f"the PIN of PKCS#11 token {where[1]!r} is wrong") \
                    from None
            except UserAlreadyLoggedIn:
                raise KeyProviderError(
                    f"PKCS#11 token {where[1]!r} is logged in by other code in this process") \
                    from None
            self._held[where] = (anchor, digest, 1)

    def release(self, where: tuple[str, str]) -> None:
        with self._lock:
            anchor, digest, count = self._held[where]
            if count > 1:
                self._held[where] = (anchor, digest, count - 1)
                return
            del self._held[where]
            anchor.close()  # logs the user out: no provider of this token is left


_LOGINS = _TokenLogins()


class Pkcs11Provider(KeyProvider):
    kind: Literal["pkcs11", "file"] = "pkcs11"

    def __init__(self, session: pkcs11.Session, prefix: str,
                 login: tuple[str, str]) -> None:
        self._session = session
        self._prefix = prefix
        self._login: tuple[str, str] | None = login
        self._lock = threading.Lock()
        self._keks: dict[str, SealingKey] = {}
        self._derivers: dict[str, KeyDeriver] = {}
        for name in KEK_NAMES:
            key = self._held(kek_label(prefix, name))
            ident = bytes(key[Attribute.ID])
            self._keks[name] = HeldKey(_TokenAead(key, self._lock), ident[:4], ident.hex())
        for dname in DERIVER_NAMES:
            self._derivers[dname] = _TokenDeriver(self._held(deriver_label(prefix, dname)),
                                                  self._lock)

    def _held(self, label: str) -> pkcs11.SecretKey:
        """The key `label`, refused unless the token keeps its value to itself (a key
        someone imported extractable would let its value out, wrapped, to anyone logged in)."""
        key = self._find(label)
        if key is None:  # open() made every missing key; another process removed it
            raise KeyProviderError(f"the token lost the key {label} while starting")
        if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
            raise KeyProviderError(f"the token's key {label} is extractable or not sensitive: "
                                   "replace it with a sensitive, non-extractable key")
        if len(bytes(key[Attribute.ID])) < 4:
            raise KeyProviderError(f"the token's key {label} has no CKA_ID of 4+ bytes")
        return key

    @classmethod
    def open(cls, module: Path, token_label: str, pin: Callable[[], str], prefix: str, *,
             database_exists: bool) -> Pkcs11Provider:
        """Log in to the token (`pin()` is asked once module and token are found) and take
        this gateway's keys, making the missing ones; a key whose loss strands stored data
        is not made afresh beside an existing database."""
        if not module.is_file():
            raise KeyProviderError(
                f"PKCS#11 module {module} does not exist: set pkcs11_module (for SoftHSM2: "
                f"{SOFTHSM2_INSTALL}, module /usr/lib/softhsm/libsofthsm2.so)")
        try:
            token = pkcs11.lib(str(module)).get_token(token_label=token_label)
        except NoSuchToken:
            raise KeyProviderError(
                f"no PKCS#11 token labelled {token_label!r} in {module}: initialise one "
                f"(SoftHSM2: softhsm2-util --init-token --free --label {token_label}) or "
                "set pkcs11_token_label") from None
        except PKCS11Error as exc:
            raise KeyProviderError(f"PKCS#11 module {module} failed to load: "
                                   f"{type(exc).__name__}") from None
        where = (str(module), token_label)
        _LOGINS.acquire(token, where, pin())
        try:
            # no PIN here: the session shares the anchor's login, and closing it logs no one out
            session = token.open(rw=True)
        except BaseException:
            _LOGINS.release(where)
            raise
        try:
            cls._make_missing(session, prefix, database_exists)
            return cls(session, prefix, where)
        except BaseException:
            session.close()
            _LOGINS.release(where)
            raise

    @staticmethod
    def _make_missing(session: pkcs11.Session, prefix: str, database_exists: bool) -> None:
        missing: list[tuple[str, str, bool]] = [
            (name, kek_label(prefix, name), True) for name in KEK_NAMES
            if _find(session, kek_label(prefix, name)) is None]
        missing += [(name, deriver_label(prefix, name), False) for name in DERIVER_NAMES
                    if _find(session, deriver_label(prefix, name)) is None]
        stranding = [label for name, label, _ in missing if name in STRANDING]
        if database_exists and stranding:
            raise DataDirMismatch(
                f"the gateway's database exists but the token lacks {', '.join(stranding)}: "
                "refusing to make fresh keys beside data sealed under lost ones. Check "
                "pkcs11_token_label and key_label_prefix, or restore the token")
        for _, label, is_kek in missing:
            ident = os.urandom(ID_BYTES)
            if is_kek:
                session.generate_key(KeyType.AES, 256, id=ident, label=label, store=True,
                                     template=KEK_TEMPLATE)
            else:
                session.generate_key(KeyType.GENERIC_SECRET, 256, id=ident, label=label,
                                     store=True, template=DERIVER_TEMPLATE)

    def _find(self, label: str) -> pkcs11.SecretKey | None:
        return _find(self._session, label)

    def kek(self, name: KekName) -> SealingKey:
        return self._keks[name]

    def deriver(self, name: DeriverName) -> KeyDeriver:
        return self._derivers[name]

    def close(self) -> None:
        with self._lock:
            if self._login is None:
                return
            login, self._login = self._login, None
            self._session.close()
        _LOGINS.release(login)


def _find(session: pkcs11.Session, label: str) -> pkcs11.SecretKey | None:
    try:
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
    except NoSuchKey:
        return None
    assert isinstance(key, pkcs11.SecretKey)
    return key
