"""Identifiers the contract derives and its clients must derive the same way."""

from __future__ import annotations

import hashlib


def passport_id_for(public_key: bytes) -> str:
    """A passport's id: hex sha256 of the public key it was registered with (stable on rotation)."""
    return hashlib.sha256(public_key).hexdigest()


def verifier_id_for(org: str, public_key: bytes) -> str:
    """The id a linkage proof designated to this X25519 key names: the org and the key's
    fingerprint, so a proof made for one org's key (or an old key of it) names someone else."""
    return f"{org}:{hashlib.sha256(public_key).hexdigest()[:32]}"
