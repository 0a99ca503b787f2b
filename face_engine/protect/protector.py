"""Protected face references: keyed orthogonal transform + envelope encryption.

Enrolment of embedding x for (holder account, institution, version):

1. pseudonym = HKDF(transform key, "holder-pseudonym", account, institution): scoped to
   the institution, so references at two institutions share no identifier;
2. R = Haar orthogonal matrix from HKDF(transform key, "rotation", pseudonym,
   institution, version); t = R x. R is used for exactly this one reference;
3. t (float32) is sealed (``face_engine.envelope``, AES-256-GCM) under a fresh random
   data key, purpose "template", the context binding pseudonym, institution and version;
4. the data key is wrapped under the KEK (envelope key wrapping, purpose "data key", same
   context), and only the wrapped form is kept. The KEK and transform key are supplied by
   the caller and are never written next to references: as bytes, or held elsewhere (an
   ``envelope.KeyWrapper`` and a ``KeyDeriver``, e.g. the gateway's PKCS#11 token, which
   wraps, unwraps and derives without the keys ever entering this process);
5. the ledger receives only ``reference.commitment`` (SHA-256 of the stored fields).

Verification decrypts t in memory, transforms the probe with the same R and returns
``(t . R p >= threshold, score)``; since R is orthogonal the score equals the raw cosine,
so the calibrated thresholds apply unchanged. The score is for the gateway only.
"""

from __future__ import annotations

import hmac
import os
import threading

import numpy as np

from face_engine import envelope, envelope_legacy
from face_engine.protect.errors import (
    InvalidEmbedding,
    InvalidHolder,
    InvalidKey,
    ReferenceMismatch,
    RevokedReference,
    StaleVersion,
    TamperedReference,
    WrongKey,
)
from face_engine.protect.key_inputs import as_key_deriver, as_key_wrapper
from face_engine.protect.keyed_rotation import (
    KeyDeriver,
    KeyedRotation,
    derive_with,
    encode_context,
)
from face_engine.protect.reference import (
    FORMAT_VERSION,
    LEGACY_FORMAT_VERSION,
    ProtectedReference,
)
from face_engine.protect.registry import (
    InMemoryReferenceRegistry,
    ReferenceRegistry,
    RegistryEntry,
)

DEFAULT_DIM = 128
TEMPLATE_PURPOSE = "mip/face-reference/template"
DATA_KEY_PURPOSE = "mip/face-reference/data-key"
# format-1 references (read only): their associated-data tags
_LEGACY_AAD_TAG = "mip/face-reference/v1"
_LEGACY_WRAP_TAG = "mip/face-reference-key-wrap/v1"


def as_unit_vector(embedding: np.ndarray, dim: int) -> np.ndarray:
    """Validate and L2-normalise; raise ``InvalidEmbedding`` on anything else."""
    try:
        vector = np.asarray(embedding, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidEmbedding("embedding is not numeric") from exc
    if vector.shape != (dim,):
        raise InvalidEmbedding(f"embedding must have shape ({dim},), got {vector.shape}")
    if not np.all(np.isfinite(vector)):
        raise InvalidEmbedding("embedding has non-finite values")
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise InvalidEmbedding("embedding has zero norm")
    unit: np.ndarray = vector / norm
    return unit


class TemplateProtector:
    """Enrol, verify, renew and revoke protected references.

    ``kek``: 32-byte AES-256 key-encryption key, or a KEK held elsewhere
    (``envelope.KeyWrapper``). ``transform_key``: >= 32 bytes secret the rotations and
    pseudonyms derive from, or one held elsewhere (``KeyDeriver``). Keep the two in
    different places (e.g. KEK in a KMS/HSM, transform key in the gateway's secret store):
    either alone does not expose a template (see docs/face.md)."""

    def __init__(self, kek: bytes | envelope.KeyWrapper,
                 transform_key: bytes | KeyDeriver, *,
                 registry: ReferenceRegistry | None = None, dim: int = DEFAULT_DIM) -> None:
        if isinstance(kek, bytes) and isinstance(transform_key, bytes) \
                and kek == transform_key[: len(kek)]:
            raise InvalidKey("kek and transform_key must be independent keys")
        self._kek = as_key_wrapper("kek", kek)
        self._kek_id = self._kek.fingerprint
        self._transform = as_key_deriver("transform_key", transform_key)
        self._dim = dim
        self.registry: ReferenceRegistry = registry or InMemoryReferenceRegistry()
        # version choice and registry update are one step for enrolments in this process
        # (a ledger-backed registry adds its own check, e.g. MVCC on the holder's record)
        self._enrol_lock = threading.Lock()

    @property
    def kek_id(self) -> str:
        return self._kek_id

    # --- derivations ---------------------------------------------------------------------
    def holder_pseudonym(self, holder_account: str, institution: str) -> str:
        if not (isinstance(holder_account, str) and holder_account
                and isinstance(institution, str) and institution):
            raise InvalidHolder("holder_account and institution must be non-empty strings")
        return derive_with(self._transform, "holder-pseudonym", holder_account,
                           institution, length=16).hex()

    def _rotation(self, pseudonym: str, institution: str, version: int) -> KeyedRotation:
        seed = derive_with(self._transform, "rotation", pseudonym, institution, version)
        return KeyedRotation(seed, self._dim)

    @staticmethod
    def _context(pseudonym: str, institution: str, version: int) -> bytes:
        return encode_context(FORMAT_VERSION, pseudonym, institution, version)

    @staticmethod
    def _legacy_aad(tag: str, pseudonym: str, institution: str, version: int) -> bytes:
        return encode_context(tag, LEGACY_FORMAT_VERSION, pseudonym, institution, version)

    # --- enrolment -------------------------------------------------------------------------
    def enrol(self, embedding: np.ndarray, holder_account: str, institution: str,
              version: int | None = None) -> ProtectedReference:
        """Protect ``embedding`` and make it the current reference of its slot, replacing
        (revoking) any earlier one. ``version`` defaults to one above the highest ever used
        in the slot; an explicit version must be above it."""
        unit = as_unit_vector(embedding, self._dim)
        pseudonym = self.holder_pseudonym(holder_account, institution)
        with self._enrol_lock:
            return self._enrol_locked(unit, pseudonym, institution, version)

    def _enrol_locked(self, unit: np.ndarray, pseudonym: str, institution: str,
                      version: int | None) -> ProtectedReference:
        slot = (pseudonym, institution)
        highest = self.registry.highest_version(slot)
        if version is None:
            version = highest + 1
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise StaleVersion("version must be a positive integer")
        if version <= highest:
            raise StaleVersion(f"version {version} is not above the current {highest}")
        transformed = self._rotation(pseudonym, institution, version).apply(unit).astype("<f4")
        reference = self._seal(transformed.tobytes(), pseudonym, institution, version,
                               self._kek, self._kek_id)
        self.registry.set_current(slot, RegistryEntry(reference.commitment, version))
        return reference

    def _seal(self, template: bytes, pseudonym: str, institution: str, version: int,
              kek: envelope.KeyWrapper, kek_id: str,
              data_key: envelope.Key | None = None,
              ciphertext: bytes | None = None) -> ProtectedReference:
        """A format-2 reference: ``template`` sealed under a new data key (or the given
        ``ciphertext`` of ``data_key``), the data key wrapped under ``kek``."""
        context = self._context(pseudonym, institution, version)
        if data_key is None or ciphertext is None:
            data_key = envelope.Key.generate()
            ciphertext = data_key.seal(template, purpose=TEMPLATE_PURPOSE, context=context)
        return ProtectedReference(
            holder_pseudonym=pseudonym, institution=institution, version=version,
            kek_id=kek_id, salt=os.urandom(16), ciphertext=ciphertext,
            wrapped_key=kek.wrap(data_key, purpose=DATA_KEY_PURPOSE, context=context))

    def renew(self, reference: ProtectedReference, embedding: np.ndarray,
              holder_account: str) -> ProtectedReference:
        """New enrolment for the same holder and institution at the next version; the old
        reference stops verifying at once."""
        self._check_holder(reference, holder_account)
        return self.enrol(embedding, holder_account, reference.institution,
                          max(reference.version, self.registry.highest_version(reference.slot))
                          + 1)

    def revoke(self, reference: ProtectedReference) -> bool:
        """Revoke ``reference`` if it is current; True when it was."""
        return self.registry.revoke(reference.slot, reference.commitment)

    def rewrap(self, reference: ProtectedReference,
               new_kek: bytes | envelope.KeyWrapper) -> ProtectedReference:
        """KEK rotation: the same template ciphertext with its data key re-wrapped under
        ``new_kek``. If ``reference`` was current, the new one replaces it in the registry
        (its commitment changes, since the wrapped key is part of it). The caller then
        uses a protector built with ``new_kek``. A format-1 reference comes back in
        format 2, its template re-sealed under a new data key."""
        wrapper = as_key_wrapper("new_kek", new_kek)
        context = (reference.holder_pseudonym, reference.institution, reference.version)
        if reference.format_version == LEGACY_FORMAT_VERSION:
            template = self._open_template(reference)
            renewed = self._seal(template, *context, wrapper, wrapper.fingerprint)
        else:
            renewed = self._seal(b"", *context, wrapper, wrapper.fingerprint,
                                 data_key=self._unwrap(reference),
                                 ciphertext=reference.ciphertext)
        current = self.registry.current(reference.slot)
        if current is not None and hmac.compare_digest(current.commitment,
                                                       reference.commitment):
            self.registry.set_current(reference.slot,
                                      RegistryEntry(renewed.commitment, renewed.version))
        return renewed

    @staticmethod
    def commitment(reference: ProtectedReference) -> str:
        return reference.commitment

    # --- verification ----------------------------------------------------------------------
    def _unwrap(self, reference: ProtectedReference) -> envelope.Key:
        if not hmac.compare_digest(reference.kek_id, self._kek_id):
            raise WrongKey("reference was wrapped under a different key-encryption key")
        context = (reference.holder_pseudonym, reference.institution, reference.version)
        try:
            if reference.format_version == LEGACY_FORMAT_VERSION:
                if not isinstance(self._kek, envelope.Key):
                    # format 1 predates held keys: only its KEK's bytes open it
                    raise WrongKey("a format-1 reference opens only with its KEK's bytes")
                return envelope.Key(envelope_legacy.open_aes_gcm_prefixed(
                    self._kek.raw_bytes(), reference.wrapped_key,
                    self._legacy_aad(_LEGACY_WRAP_TAG, *context)))
            return self._kek.unwrap(reference.wrapped_key, purpose=DATA_KEY_PURPOSE,
                                    context=self._context(*context))
        except envelope.EnvelopeError as exc:
            # kek_id matched above, so any failure here (even the envelope's key id) means
            # altered bytes or context
            raise TamperedReference("data key failed authentication") from exc

    def _open_template(self, reference: ProtectedReference) -> bytes:
        context = (reference.holder_pseudonym, reference.institution, reference.version)
        data_key = self._unwrap(reference)
        try:
            if reference.format_version == LEGACY_FORMAT_VERSION:
                plain = envelope_legacy.open_aes_gcm(
                    data_key.raw_bytes(), reference.nonce, reference.ciphertext,
                    self._legacy_aad(_LEGACY_AAD_TAG, *context))
            else:
                plain = data_key.open(reference.ciphertext, purpose=TEMPLATE_PURPOSE,
                                      context=self._context(*context))
        except envelope.EnvelopeError as exc:
            raise TamperedReference("template ciphertext failed authentication") from exc
        if len(plain) != 4 * self._dim:
            raise TamperedReference("template has the wrong dimension")
        return plain

    def decrypt_transformed(self, reference: ProtectedReference) -> np.ndarray:
        """The transformed template t = R x (float64). For in-process matching and
        evaluation (unlinkability measurement) only: never log, store or send it."""
        plain = self._open_template(reference)
        return np.frombuffer(plain, dtype="<f4").astype(np.float64)

    def open_embedding(self, reference: ProtectedReference, holder_account: str) -> np.ndarray:
        """The embedding a current reference of ``holder_account`` was enrolled from
        (unit norm, float64): the template with its rotation undone. Only for the portrait
        the enrolling org signs for one recipient (face_engine/portrait.py); never log,
        store or send it. Refuses like ``verify``."""
        self._check_holder(reference, holder_account)
        current = self.registry.current(reference.slot)
        if current is None or not hmac.compare_digest(current.commitment,
                                                      reference.commitment):
            raise RevokedReference("reference is revoked or replaced by a newer enrolment")
        template = self.decrypt_transformed(reference)
        rotation = self._rotation(reference.holder_pseudonym, reference.institution,
                                  reference.version)
        return as_unit_vector(rotation.apply_inverse(template), self._dim)

    def verify(self, reference: ProtectedReference, probe_embedding: np.ndarray,
               threshold: float, *, holder_account: str | None = None) -> tuple[bool, float]:
        """Match a probe against a current reference: ``(score >= threshold, score)``.

        Refuses (typed errors) references that are revoked or superseded, wrapped under
        another KEK, altered, or - when ``holder_account`` is given - someone else's."""
        if holder_account is not None:
            self._check_holder(reference, holder_account)
        current = self.registry.current(reference.slot)
        if current is None or not hmac.compare_digest(current.commitment,
                                                      reference.commitment):
            raise RevokedReference("reference is revoked or replaced by a newer enrolment")
        probe = as_unit_vector(probe_embedding, self._dim)
        template = self.decrypt_transformed(reference)
        rotated = self._rotation(reference.holder_pseudonym, reference.institution,
                                 reference.version).apply(probe)
        score = float(np.dot(template, rotated))
        return score >= threshold, score

    def _check_holder(self, reference: ProtectedReference, holder_account: str) -> None:
        expected = self.holder_pseudonym(holder_account, reference.institution)
        if not hmac.compare_digest(expected, reference.holder_pseudonym):
            raise ReferenceMismatch("reference does not belong to this holder")
