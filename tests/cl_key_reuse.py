"""Tests only: one anoncreds CL key pair per issuer id for the whole test session.

Making a CL credential definition draws safe primes: 2-4 s of one core per definition on a
2-core machine, and the suite makes one for every org's KYC issuer of every gateway and
network it starts (well over a hundred). The key pair's values do not depend on the ids a
definition carries (schema, issuer, tag), so after the first definition for an issuer id
(`mip:HospitalMSP`, ...) this hands out the same key pair relabelled with the new ids. Each
org still has its own key pair, so every check between orgs sees distinct keys, as in a
deployment; only definitions of the same org share one. The gateway and the contract run
unchanged; subprocesses (`mip serve`, the demo) are not patched and make their own keys.
The session summary says how many were made and how many reused.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from anoncreds import (
    CredentialDefinition,
    CredentialDefinitionPrivate,
    KeyCorrectnessProof,
    Schema,
)

_lock = threading.Lock()
_pairs: dict[tuple[str, bool, tuple[str, ...]], tuple[dict[str, Any], dict[str, Any],
                                                       dict[str, Any]]] = {}
counts = {"made": 0, "reused": 0}


def _attributes(schema: Any) -> tuple[str, ...]:
    loaded = schema if isinstance(schema, Schema) else Schema.load(schema)
    return tuple(sorted(loaded.to_dict()["attrNames"]))


def patched() -> Iterator[None]:
    """Swap `CredentialDefinition.create` for the reusing one until the generator ends."""
    saved = CredentialDefinition.__dict__["create"]  # the classmethod itself, to put back
    original = CredentialDefinition.create

    def create(schema_id: str, schema: Any, issuer_id: str, tag: str, signature_type: str,
               *, support_revocation: bool = False) -> tuple[Any, Any, Any]:
        key = (issuer_id, support_revocation, _attributes(schema))
        with _lock:
            pair = _pairs.get(key)
        if pair is None:
            made = original(schema_id, schema, issuer_id, tag, signature_type,
                            support_revocation=support_revocation)
            with _lock:
                _pairs.setdefault(key, (made[0].to_dict(), made[1].to_dict(),
                                        made[2].to_dict()))
                counts["made"] += 1
            return made
        public, private, proof = pair
        with _lock:
            counts["reused"] += 1
        return (CredentialDefinition.load({**public, "schemaId": schema_id,
                                           "issuerId": issuer_id, "tag": tag}),
                CredentialDefinitionPrivate.load(private), KeyCorrectnessProof.load(proof))

    CredentialDefinition.create = staticmethod(create)
    try:
        yield
    finally:
        CredentialDefinition.create = saved
