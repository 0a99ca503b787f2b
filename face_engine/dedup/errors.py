"""Typed errors of the duplicate-search index (codes are stable)."""

from __future__ import annotations

from face_engine.errors import FaceError


class DedupError(FaceError):
    code = "dedup_error"


class IndexCorrupt(DedupError):
    """Stored index bytes failed authentication or structure checks somewhere other than a
    torn tail of the append log (which is recovered, not fatal)."""

    code = "dedup_index_corrupt"


class IndexLocked(DedupError):
    """Another process holds the index directory open for writing."""

    code = "dedup_index_locked"


class DuplicatePassportId(DedupError):
    code = "dedup_passport_id_exists"


class InvalidPassportId(DedupError):
    code = "dedup_invalid_passport_id"
