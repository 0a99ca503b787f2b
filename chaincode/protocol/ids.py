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


def portrait_key_id(org: str, kind: str, public_key: bytes) -> str:
    """The id a portrait names for the enrolling org's signing key (`kind` "sign") or the
    recipient's sealing key ("seal"): org, kind and the key's fingerprint, so a portrait made
    under another org's key, or an old key of the same org, names another id."""
    if kind not in ("sign", "seal"):
        raise ValueError("kind is 'sign' or 'seal'")
    return f"{org}:{kind}:{hashlib.sha256(public_key).hexdigest()[:32]}"
