"""Duplicate search ("one person, one passport"): an encrypted, persistent 1:N index in a
secret dedup domain. See docs/face.md."""

from face_engine.dedup.errors import (
    DedupError,
    DuplicatePassportId,
    IndexCorrupt,
    IndexLocked,
    InvalidPassportId,
)
from face_engine.dedup.index import DedupIndex, EnrolmentDecision, RecoveryReport
from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample

__all__ = [
    "DedupError",
    "DedupIndex",
    "DuplicatePassportId",
    "EnrolmentDecision",
    "FaceLikeDistribution",
    "IndexCorrupt",
    "IndexLocked",
    "InvalidPassportId",
    "RecoveryReport",
    "mated_sample",
]
