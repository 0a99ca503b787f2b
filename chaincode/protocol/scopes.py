"""Credential types, their content schemas, and what each grant scope releases: the tables
the contract enforces (chaincode/mip/scopes.py checks against them) and the gateway offers
(its issuer table and API types follow them; tests/gateway/api checks the API's lists).

A scope names one credential type and the fields of it a grantee may read: the pharmacy's
`medical.prescription` scope releases what is needed to dispense (never a diagnosis, which
lives in a separate `record` credential), an employer's `education.diploma` releases the degree
(never the grades, which live in a `transcript`). `research.aggregate` is consent for the
account's data to enter privacy-budgeted aggregates; it releases no fields of any credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chaincode.protocol.orgs import HOSPITAL, SCHOOL


@dataclass(frozen=True)
class CredentialType:
    name: str
    collection: str  # private data collection holding content and salt
    issuer_org: str
    issuer_role: str
    # field -> allowed Python types of its JSON value
    fields: Mapping[str, tuple[type, ...]]


@dataclass(frozen=True)
class Scope:
    name: str
    cred_type: str | None  # None: no credential content is released (research.aggregate)
    fields: tuple[str, ...] | None  # None: the whole content


CREDENTIAL_TYPES: dict[str, CredentialType] = {
    "prescription": CredentialType(
        "prescription", "medical", HOSPITAL, "doctor",
        {"drug": (str,), "strength": (str,), "quantity": (int,), "refills": (int,),
         "prescriber": (str,), "expiry": (int,)},
    ),
    "record": CredentialType(
        "record", "medical", HOSPITAL, "doctor", {"diagnosis": (str,), "notes": (str,)},
    ),
    "diploma": CredentialType(
        "diploma", "education", SCHOOL, "school_registrar",
        {"degree": (str,), "field": (str,), "awarded": (str, int)},
    ),
    "transcript": CredentialType(
        "transcript", "education", SCHOOL, "school_registrar", {"courses": (list,)},
    ),
}

COLLECTION_MEMBERS: dict[str, frozenset[str]] = {
    # Mirrors network/fabric/collections_config.json (members = each collection's policy).
    "medical": frozenset({HOSPITAL}),
    "education": frozenset({SCHOOL}),
}

SCOPES: dict[str, Scope] = {
    "medical.prescription": Scope(
        "medical.prescription", "prescription",
        ("drug", "strength", "quantity", "refills", "expiry"),
    ),
    "medical.record": Scope("medical.record", "record", None),
    "education.diploma": Scope("education.diploma", "diploma", ("degree", "field", "awarded")),
    "education.transcript": Scope("education.transcript", "transcript", None),
    "research.aggregate": Scope("research.aggregate", None, ()),
}

# Credential types whose data a research.aggregate grant may cover.
AGGREGATE_TYPES = frozenset(CREDENTIAL_TYPES)

MAX_FILLS = 100
MAX_TEXT = 4096
