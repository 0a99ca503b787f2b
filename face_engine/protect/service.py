"""Image in, decision out: the face engine and the template protector together.

This is the surface the gateway uses. It never returns a score or an embedding: enrolment
gives a ``ProtectedReference`` (store it; put ``reference.commitment`` on the ledger) and
verification gives a bool at a named operating point of ``face_engine/calibration.json``.
Kept out of ``face_engine.protect.__init__`` so that importing the protector does not load
the models.
"""

from __future__ import annotations

from face_engine.engine import FaceEngine
from face_engine.protect.protector import TemplateProtector
from face_engine.protect.reference import ProtectedReference
from face_engine.verify import DEFAULT_OPERATING_POINT, operating_point


class ProtectedFaceVerifier:
    def __init__(self, engine: FaceEngine, protector: TemplateProtector) -> None:
        self._engine = engine
        self._protector = protector

    @property
    def protector(self) -> TemplateProtector:
        return self._protector

    def enrol(self, image_bytes: bytes, holder_account: str,
              institution: str) -> ProtectedReference:
        """Input checks, detection, quality gate, embedding, protection (new version)."""
        return self._protector.enrol(self._engine.embed(image_bytes), holder_account,
                                     institution)

    def renew(self, reference: ProtectedReference, image_bytes: bytes,
              holder_account: str) -> ProtectedReference:
        return self._protector.renew(reference, self._engine.embed(image_bytes),
                                     holder_account)

    def verify(self, reference: ProtectedReference, image_bytes: bytes, *,
               operating_point_name: str = DEFAULT_OPERATING_POINT,
               holder_account: str | None = None) -> bool:
        """True when the face in ``image_bytes`` matches the current ``reference``.
        Engine errors (no face, quality, ...) and protection errors (revoked, tampered,
        wrong key, other holder) propagate as their typed ``FaceError``s."""
        threshold = operating_point(operating_point_name).threshold
        match, _score = self._protector.verify(reference, self._engine.embed(image_bytes),
                                               threshold, holder_account=holder_account)
        return match
