"""The stored form of a protected face reference and its ledger commitment.

A ``ProtectedReference`` holds no embedding in the clear: the transformed template is
sealed (``face_engine.envelope``, AES-256-GCM) under a per-reference data key, and that
data key is itself wrapped under the operator's key-encryption key (KEK), which is never
stored with it. The holder appears only as an institution-scoped pseudonym, so two
institutions' references carry no common identifier.

Format 2 (written now): ``ciphertext`` and ``wrapped_key`` are envelopes. Format 1
(before the envelope module; still read, because stored references' commitments are on
the ledger): ``nonce`` (12 bytes) and ``ciphertext`` are raw AES-256-GCM, ``wrapped_key``
is ``nonce || AES-256-GCM(KEK, data key)``. A format-1 reference keeps its format (and so
its commitment) until it is renewed or re-wrapped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from face_engine.protect.errors import MalformedReference
from face_engine.protect.keyed_rotation import encode_context

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
_COMMITMENT_TAG = "mip/face-reference-commitment/v1"
_BYTES_FIELDS = {FORMAT_VERSION: ("salt", "ciphertext", "wrapped_key"),
                 LEGACY_FORMAT_VERSION: ("salt", "nonce", "ciphertext", "wrapped_key")}


@dataclass(frozen=True)
class ProtectedReference:
    """One enrolled reference of one holder at one institution, at one version."""

    holder_pseudonym: str  # hex, HKDF(transform key, holder account, institution)
    institution: str
    version: int
    kek_id: str  # hex fingerprint of the KEK that wrapped the data key (not the key)
    salt: bytes  # 16 random bytes, makes the commitment hiding
    ciphertext: bytes  # envelope of the transformed template under the data key
    wrapped_key: bytes  # envelope of the data key under the KEK
    format_version: int = FORMAT_VERSION
    nonce: bytes = b""  # format 1 only: the template's AES-GCM nonce (format 2 embeds it)

    def _stored(self) -> tuple[bytes, ...]:
        return tuple(getattr(self, name) for name in _BYTES_FIELDS[self.format_version])

    @property
    def commitment(self) -> str:
        """What the ledger records: SHA-256 over every stored field (hex).

        It binds the ledger entry to these exact bytes (substitution is detected) and,
        being a hash of ciphertext and random salt, says nothing about the face."""
        # format 1: (..., salt, nonce, ciphertext, wrapped_key), as committed on the ledger
        digest = hashlib.sha256(encode_context(
            _COMMITMENT_TAG, self.format_version, self.holder_pseudonym, self.institution,
            self.version, self.kek_id, *self._stored()))
        return digest.hexdigest()

    @property
    def slot(self) -> tuple[str, str]:
        """(holder pseudonym, institution): at most one reference is current per slot."""
        return (self.holder_pseudonym, self.institution)

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format_version": self.format_version,
            "holder_pseudonym": self.holder_pseudonym,
            "institution": self.institution,
            "version": self.version,
            "kek_id": self.kek_id,
        }
        for name in _BYTES_FIELDS[self.format_version]:
            body[name] = base64.b64encode(getattr(self, name)).decode("ascii")
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def to_bytes(self) -> bytes:
        return self.to_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | str) -> ProtectedReference:
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedReference("reference is not valid JSON") from exc
        if not isinstance(body, dict):
            raise MalformedReference("reference must be a JSON object")
        format_version = body.get("format_version")
        if not isinstance(format_version, int) or isinstance(format_version, bool) \
                or format_version not in _BYTES_FIELDS:
            raise MalformedReference(f"unsupported format version {format_version!r}")
        bytes_fields = _BYTES_FIELDS[format_version]
        expected = {"format_version", "holder_pseudonym", "institution", "version", "kek_id",
                    *bytes_fields}
        if set(body) != expected:
            raise MalformedReference("reference fields do not match the format")
        for name in ("holder_pseudonym", "institution", "kek_id"):
            if not isinstance(body[name], str) or not body[name]:
                raise MalformedReference(f"{name} must be a non-empty string")
        version = body["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MalformedReference("version must be a positive integer")
        raw: dict[str, bytes] = {}
        for name in bytes_fields:
            if not isinstance(body[name], str):
                raise MalformedReference(f"{name} must be base64 text")
            try:
                raw[name] = base64.b64decode(body[name], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise MalformedReference(f"{name} is not valid base64") from exc
        if len(raw["salt"]) != 16 or len(raw.get("nonce", bytes(12))) != 12:
            raise MalformedReference("salt or nonce has the wrong length")
        return cls(holder_pseudonym=body["holder_pseudonym"], institution=body["institution"],
                   version=version, kek_id=body["kek_id"], salt=raw["salt"],
                   ciphertext=raw["ciphertext"], wrapped_key=raw["wrapped_key"],
                   format_version=format_version, nonce=raw.get("nonce", b""))
