"""Typed errors of template protection; all derive from the engine's ``FaceError``.

Messages never contain key material, embeddings or scores.
"""

from __future__ import annotations

from face_engine.errors import FaceError


class TemplateProtectionError(FaceError):
    code = "template_protection_error"


class InvalidEmbedding(TemplateProtectionError):
    """The vector handed in is not a usable embedding (shape, non-finite, zero norm)."""

    code = "invalid_embedding"


class InvalidHolder(TemplateProtectionError):
    """Holder account or institution is empty or not a string."""

    code = "invalid_holder"


class InvalidKey(TemplateProtectionError):
    """A key handed to the protector has the wrong type or length."""

    code = "invalid_key"


class WrongKey(TemplateProtectionError):
    """The reference was wrapped under a different key-encryption key."""

    code = "wrong_key"


class TamperedReference(TemplateProtectionError):
    """Authenticated decryption failed: bytes or bound context (holder, institution,
    version) were altered."""

    code = "reference_tampered"


class MalformedReference(TemplateProtectionError):
    """The serialised reference cannot be parsed."""

    code = "reference_malformed"


class RevokedReference(TemplateProtectionError):
    """The reference is not the current one for its holder and institution (revoked or
    replaced by a renewal)."""

    code = "reference_revoked"


class ReferenceMismatch(TemplateProtectionError):
    """The reference belongs to another holder than the one named by the caller."""

    code = "reference_holder_mismatch"


class StaleVersion(TemplateProtectionError):
    """An enrolment must use a version above the current one (renewal is monotonic)."""

    code = "reference_stale_version"
