"""The portrait: a face reference one org signs for another org to match against, with no key
of the signing org (in the spirit of ISO/IEC 18013-5's portrait in a mobile driving licence).

The org that enrolled the holder's account face (the account's institution) builds a
*statement* for one grant: the holder's embedding for this purpose, bound to the account, the
grant, the recipient org and its registered sealing key, the account's ledger face commitment
it was taken from, the embedding model, an expiry and a random salt. It signs the statement
with its registered portrait signing key (Ed25519), and seals statement and signature to the
recipient: the body under a fresh data key (``face_engine.envelope``, AES-256-GCM, bound to the
clear header), the data key in a libsodium sealed box (PyNaCl, X25519) to the recipient's
registered key. The statement's commitment goes into the holder-signed grant on the ledger, so
neither org can swap the portrait after the holder consented.

The recipient opens it with its own private key, checks the signature against the issuing
org's key record on the ledger, the binding against what it expects (account, grant, itself,
expiry, the account's face commitment), the commitment against the grant's, and then matches
live embeddings against it at the calibrated 1:1 operating point. Why the embedding and not a
protected template: whatever template the recipient can match with keys of its own is, to the
recipient, the embedding itself (an orthogonal transform whose key it holds is undone by the
transpose); a template it could match without learning the embedding would need a key of the
issuing org. So the portrait carries the embedding, readable by the one recipient only, and
the recipient keeps it no longer than the grant's pickup (docs/gateway.md, "Pharmacy face
check: the portrait").

Every check raises a typed ``PortraitError`` (a ``FaceError``); messages never hold the
embedding, a key or a score. Nothing here touches a database or the ledger: callers pass the
ledger's records in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, fields
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import numpy as np
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from face_engine import envelope
from face_engine.embed import EMBEDDING_DIM
from face_engine.errors import FaceError
from face_engine.models import MODEL_SHA256, RECOGNIZER_FILE
from face_engine.protect.errors import InvalidEmbedding
from face_engine.protect.protector import as_unit_vector
from face_engine.verify import operating_point

FORMAT_VERSION = 1
STATEMENT_TYPE = "mip.portrait"
# The embedding a portrait carries: SFace's mirrored-pair embedding (``FaceEngine.embed``), the
# one the 1:1 operating points are calibrated for. Another model's vectors would score on
# another scale, so the recipient refuses a portrait naming a model it does not run.
MODEL_ID = f"sface-2021dec/{MODEL_SHA256[RECOGNIZER_FILE][:16]}/mirrored"
VERIFY_POINT = "far_1e-3"  # as the counter's 1:1 check against a protected reference
SALT_BYTES = 16
# A portrait lives at most as long as a grant may (chaincode/mip/grants.py MAX_GRANT_S).
MAX_PORTRAIT_TTL_S = 366 * 24 * 3600
MAX_SEALED_BYTES = 16 * 1024
SEALED_KEY_BYTES = envelope.KEY_BYTES + nacl.bindings.crypto_box_SEALBYTES
ENVELOPE_PURPOSE = "mip/portrait/body"
_SIGNATURE_DOMAIN = b"mip/portrait/signature/v1\x00"
_COMMITMENT_DOMAIN = b"mip/portrait/commitment/v1\x00"
_HEX = frozenset("0123456789abcdef")
# Statement fields that are not short text: base64 and integers.
_NOT_TEXT = frozenset({"embedding", "salt", "issued_at", "expires"})


class PortraitError(FaceError):
    code = "portrait_error"


class MalformedPortrait(PortraitError):
    """Not a portrait: bad JSON, fields, sizes or encodings."""

    code = "portrait_malformed"


class PortraitWrongRecipient(PortraitError):
    """Sealed to another org, or to a sealing key other than the recipient's current one."""

    code = "portrait_wrong_recipient"


class PortraitTampered(PortraitError):
    """The sealed body failed authentication, or the signed statement disagrees with the
    clear header it travelled under."""

    code = "portrait_tampered"


class PortraitWrongIssuer(PortraitError):
    """Signed by another org than the account's enrolling org, or under another key than the
    org's current portrait key on the ledger."""

    code = "portrait_wrong_issuer"


class PortraitBadSignature(PortraitError):
    """The signature does not verify under the issuing org's registered key."""

    code = "portrait_bad_signature"


class PortraitBindingMismatch(PortraitError):
    """Bound to another account, grant or account face commitment than the one at hand."""

    code = "portrait_binding_mismatch"


class PortraitExpired(PortraitError):
    code = "portrait_expired"


class PortraitCommitmentMismatch(PortraitError):
    """The statement's commitment is not the one the holder signed into the grant."""

    code = "portrait_commitment_mismatch"


class PortraitModelMismatch(PortraitError):
    """The embedding is of another model than this engine's."""

    code = "portrait_model_mismatch"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(value: Any, name: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise MalformedPortrait(f"{name} must be base64 text")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedPortrait(f"{name} is not valid base64") from None
    if size is not None and len(raw) != size:
        raise MalformedPortrait(f"{name} must be {size} bytes")
    return raw


def is_commitment(value: Any) -> bool:
    """64 lowercase hex digits: the form of a portrait (and a face reference) commitment."""
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise MalformedPortrait(f"{name} must be a non-empty string of at most 256 characters")
    return value


def _str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise MalformedPortrait(f"{name} must be a string")
    return value


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedPortrait(f"{name} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class PortraitStatement:
    """What the enrolling org signs. ``embedding`` is base64 of float32 little-endian."""

    issuer_org: str
    signing_key_id: str
    account: str
    grant_id: str
    recipient_org: str
    recipient_key_id: str
    reference_commitment: str  # the account's face_commitment on the ledger it came from
    model: str
    embedding: str
    salt: str
    issued_at: int
    expires: int

    def as_dict(self) -> dict[str, Any]:
        return {"v": FORMAT_VERSION, "type": STATEMENT_TYPE,
                **{f.name: getattr(self, f.name) for f in fields(self)}}

    def canonical_bytes(self) -> bytes:
        """RFC 8785 bytes (strings and integers only): what is signed and committed."""
        return bytes(rfc8785.dumps(self.as_dict()))

    @property
    def commitment(self) -> str:
        """What the holder signs into the grant: SHA-256 of the canonical statement (hex).
        Hiding: the statement holds a random 128-bit salt, so the hash says nothing of the
        face; binding: any other statement has another hash."""
        return hashlib.sha256(_COMMITMENT_DOMAIN + self.canonical_bytes()).hexdigest()

    def vector(self) -> np.ndarray:
        raw = _unb64(self.embedding, "embedding", 4 * EMBEDDING_DIM)
        try:
            return as_unit_vector(np.frombuffer(raw, dtype="<f4"), EMBEDDING_DIM)
        except InvalidEmbedding:
            raise MalformedPortrait("the embedding is not a usable vector") from None

    @classmethod
    def from_dict(cls, body: Any) -> PortraitStatement:
        names = {f.name for f in fields(cls)}
        if not isinstance(body, dict) or set(body) != names | {"v", "type"}:
            raise MalformedPortrait("statement fields do not match the format")
        if body["v"] != FORMAT_VERSION or body["type"] != STATEMENT_TYPE:
            raise MalformedPortrait("unknown statement version or type")
        statement = cls(**{name: _text(body[name], name) for name in names - _NOT_TEXT},
                        embedding=_str(body["embedding"], "embedding"),
                        salt=_str(body["salt"], "salt"),
                        issued_at=_int(body["issued_at"], "issued_at"),
                        expires=_int(body["expires"], "expires"))
        if not is_commitment(statement.reference_commitment):
            raise MalformedPortrait("reference_commitment must be 64 lowercase hex digits")
        _unb64(statement.salt, "salt", SALT_BYTES)
        statement.vector()
        return statement


@dataclass(frozen=True)
class SignedPortrait:
    statement: PortraitStatement
    signature: bytes

    def to_bytes(self) -> bytes:
        return bytes(rfc8785.dumps({"statement": self.statement.as_dict(),
                                    "signature": _b64(self.signature)}))

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignedPortrait:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise MalformedPortrait("signed portrait is not JSON") from None
        if not isinstance(body, dict) or set(body) != {"statement", "signature"}:
            raise MalformedPortrait("signed portrait fields do not match the format")
        return cls(PortraitStatement.from_dict(body["statement"]),
                   _unb64(body["signature"], "signature", 64))


@dataclass(frozen=True)
class PortraitHeader:
    """The clear part of a sealed portrait: where it goes and what it is for (so a carrier
    can route it), bound to the body as the envelope's context."""

    recipient_org: str
    recipient_key_id: str
    account: str
    grant_id: str

    def context(self) -> bytes:
        return bytes(rfc8785.dumps({"v": FORMAT_VERSION, **self.__dict__}))

    def matches(self, statement: PortraitStatement) -> bool:
        return all(getattr(statement, name) == value for name, value in self.__dict__.items())


@dataclass(frozen=True)
class PortraitIssuer:
    """The enrolling org's side: its portrait signing key and the key id its ledger record
    gives that key (chaincode.protocol.ids.portrait_key_id)."""

    org: str
    signing_key: Ed25519PrivateKey
    signing_key_id: str

    def build(self, embedding: np.ndarray, *, account: str, grant_id: str,
              recipient_org: str, recipient_key_id: str, reference_commitment: str,
              issued_at: int, expires: int) -> PortraitStatement:
        """A statement for one grant; fresh salt each time (so two portraits of one face
        have unrelated commitments)."""
        unit = as_unit_vector(embedding, EMBEDDING_DIM)
        if not is_commitment(reference_commitment):
            raise MalformedPortrait("reference_commitment must be 64 lowercase hex digits")
        if not issued_at < expires <= issued_at + MAX_PORTRAIT_TTL_S:
            raise MalformedPortrait(f"a portrait expires after it is issued, within "
                                    f"{MAX_PORTRAIT_TTL_S} s")
        statement = PortraitStatement(
            issuer_org=_text(self.org, "issuer_org"),
            signing_key_id=_text(self.signing_key_id, "signing_key_id"),
            account=_text(account, "account"), grant_id=_text(grant_id, "grant_id"),
            recipient_org=_text(recipient_org, "recipient_org"),
            recipient_key_id=_text(recipient_key_id, "recipient_key_id"),
            reference_commitment=reference_commitment, model=MODEL_ID,
            embedding=_b64(unit.astype("<f4").tobytes()), salt=_b64(os.urandom(SALT_BYTES)),
            issued_at=_int(issued_at, "issued_at"), expires=_int(expires, "expires"))
        return statement

    def sign(self, statement: PortraitStatement) -> SignedPortrait:
        if (statement.issuer_org, statement.signing_key_id) != (self.org, self.signing_key_id):
            raise PortraitWrongIssuer("the statement names another issuer or key")
        return SignedPortrait(statement, self.signing_key.sign(
            _SIGNATURE_DOMAIN + statement.canonical_bytes()))


def seal(signed: SignedPortrait, recipient_public_key: bytes) -> bytes:
    """``signed`` for the one holder of the X25519 private key behind
    ``recipient_public_key`` (32 raw bytes, the recipient's registered sealing key)."""
    statement = signed.statement
    header = PortraitHeader(statement.recipient_org, statement.recipient_key_id,
                            statement.account, statement.grant_id)
    try:
        box = nacl.public.SealedBox(nacl.public.PublicKey(recipient_public_key))
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        raise MalformedPortrait("the recipient key is not 32 raw X25519 bytes") from None
    data_key = envelope.Key.generate()
    body = data_key.seal(signed.to_bytes(), purpose=ENVELOPE_PURPOSE, context=header.context())
    return bytes(rfc8785.dumps({"v": FORMAT_VERSION, **header.__dict__,
                                "sealed_key": _b64(box.encrypt(data_key.raw_bytes())),
                                "body": _b64(body)}))


def read_header(sealed: bytes) -> PortraitHeader:
    """The clear header of a sealed portrait (nothing is checked but its form)."""
    return _parse_sealed(sealed)[0]


def _parse_sealed(sealed: bytes) -> tuple[PortraitHeader, bytes, bytes]:
    if not isinstance(sealed, bytes) or len(sealed) > MAX_SEALED_BYTES:
        raise MalformedPortrait(f"a sealed portrait is bytes of at most {MAX_SEALED_BYTES}")
    try:
        body = json.loads(sealed)
    except (ValueError, UnicodeDecodeError):
        raise MalformedPortrait("sealed portrait is not JSON") from None
    names = {f.name for f in fields(PortraitHeader)}
    if not isinstance(body, dict) or set(body) != names | {"v", "sealed_key", "body"}:
        raise MalformedPortrait("sealed portrait fields do not match the format")
    if body["v"] != FORMAT_VERSION:
        raise MalformedPortrait("unknown sealed portrait version")
    header = PortraitHeader(**{name: _text(body[name], name) for name in sorted(names)})
    return (header, _unb64(body["sealed_key"], "sealed_key", SEALED_KEY_BYTES),
            _unb64(body["body"], "body"))


@dataclass(frozen=True)
class PortraitRecipient:
    """The recipient's side: its org, its X25519 sealing key and that key's id on the ledger."""

    org: str
    sealing_key: nacl.public.PrivateKey
    key_id: str

    def open(self, sealed: bytes) -> SignedPortrait:
        """The signed portrait inside ``sealed``, if it is sealed to this recipient.
        Nothing is trusted yet: call ``verify`` (or use ``accept``)."""
        header, sealed_key, body = _parse_sealed(sealed)
        if (header.recipient_org, header.recipient_key_id) != (self.org, self.key_id):
            raise PortraitWrongRecipient("the portrait is sealed to another recipient")
        try:
            data_key = envelope.Key(nacl.public.SealedBox(self.sealing_key).decrypt(sealed_key))
        except (nacl.exceptions.CryptoError, envelope.InvalidKey):
            # Header relabelled, or sealed to another key under our name.
            raise PortraitWrongRecipient("the portrait does not open with this recipient's "
                                         "key") from None
        try:
            plain = data_key.open(body, purpose=ENVELOPE_PURPOSE, context=header.context())
        except envelope.EnvelopeError:
            raise PortraitTampered("the portrait's body failed authentication") from None
        signed = SignedPortrait.from_bytes(plain)
        if not header.matches(signed.statement):
            raise PortraitTampered("the signed statement differs from its header")
        return signed


@dataclass(frozen=True)
class PortraitExpectation:
    """What the recipient knows from the ledger and its own flow, not from the portrait.

    ``issuer_org`` is the account's institution (its enrolling org), ``issuer_key`` and
    ``issuer_key_id`` that org's portrait key record, ``grant_commitment`` the
    ``portrait_commitment`` of the holder-signed grant, ``reference_commitment`` the
    account's ``face_commitment``."""

    account: str
    grant_id: str
    issuer_org: str
    issuer_key: bytes
    issuer_key_id: str
    grant_commitment: str
    reference_commitment: str


def verify_signature(signed: SignedPortrait, issuer_org: str, issuer_key: bytes,
                     issuer_key_id: str) -> None:
    statement = signed.statement
    if statement.issuer_org != issuer_org or not hmac.compare_digest(
            statement.signing_key_id.encode(), issuer_key_id.encode()):
        raise PortraitWrongIssuer("the portrait is not signed by the account's enrolling "
                                  "org under its registered key")
    try:
        Ed25519PublicKey.from_public_bytes(issuer_key).verify(
            signed.signature, _SIGNATURE_DOMAIN + statement.canonical_bytes())
    except (InvalidSignature, ValueError):
        raise PortraitBadSignature("the portrait's signature does not verify") from None


def check_binding(statement: PortraitStatement, expected: PortraitExpectation,
                  now: int) -> None:
    if (statement.account, statement.grant_id) != (expected.account, expected.grant_id):
        raise PortraitBindingMismatch("the portrait is for another account or grant")
    if not hmac.compare_digest(statement.reference_commitment.encode(),
                               expected.reference_commitment.encode()):
        raise PortraitBindingMismatch("the portrait was taken from another face reference "
                                      "than the account's on the ledger")
    if statement.model != MODEL_ID:
        raise PortraitModelMismatch("the portrait's embedding is of another model")
    if now >= statement.expires:
        raise PortraitExpired("the portrait has expired")


def check_commitment(statement: PortraitStatement, grant_commitment: object) -> None:
    if not isinstance(grant_commitment, str) or not hmac.compare_digest(
            statement.commitment.encode(), grant_commitment.encode()):
        raise PortraitCommitmentMismatch("the portrait is not the one the holder's grant "
                                         "commits to")


@dataclass(frozen=True)
class VerifiedPortrait:
    """A portrait every check passed; holds the embedding (never log, store or send it)."""

    statement: PortraitStatement
    _vector: np.ndarray

    @property
    def expires(self) -> int:
        return self.statement.expires

    def matches(self, live_embedding: np.ndarray, point: str = VERIFY_POINT) -> bool:
        """1:1 decision at the calibrated operating point; the score stays here."""
        probe = as_unit_vector(live_embedding, EMBEDDING_DIM)
        return float(np.dot(self._vector, probe)) >= operating_point(point).threshold


def accept(recipient: PortraitRecipient, sealed: bytes, expected: PortraitExpectation,
           now: int) -> VerifiedPortrait:
    """Open, then check signature, binding, expiry and the grant's commitment, in that order;
    the first failure raises its typed error."""
    signed = recipient.open(sealed)
    verify_signature(signed, expected.issuer_org, expected.issuer_key, expected.issuer_key_id)
    check_binding(signed.statement, expected, now)
    check_commitment(signed.statement, expected.grant_commitment)
    return VerifiedPortrait(signed.statement, signed.statement.vector())
