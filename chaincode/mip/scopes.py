"""Credential types, their content schemas, and what each grant scope releases.

A scope names one credential type and the fields of it a grantee may read: the pharmacy's
`medical.prescription` scope releases what is needed to dispense (never a diagnosis, which
lives in a separate `record` credential), an employer's `education.diploma` releases the degree
(never the grades, which live in a `transcript`). `research.aggregate` is consent for the
account's data to enter privacy-budgeted aggregates; it releases no fields of any credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaincode.mip.errors import InvalidRequest
from chaincode.mip.staff import HOSPITAL, SCHOOL


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


def credential_type(name: Any) -> CredentialType:
    if not isinstance(name, str) or name not in CREDENTIAL_TYPES:
        raise InvalidRequest(f"unknown credential type; known: {sorted(CREDENTIAL_TYPES)}")
    return CREDENTIAL_TYPES[name]


def scope(name: Any) -> Scope:
    if not isinstance(name, str) or name not in SCOPES:
        raise InvalidRequest(f"unknown scope; known: {sorted(SCOPES)}")
    return SCOPES[name]


def scope_covers_type(scope_: Scope, cred_type: str) -> bool:
    if scope_.cred_type is None:
        return cred_type in AGGREGATE_TYPES
    return scope_.cred_type == cred_type


def validate_content(ctype: CredentialType, content: Any) -> None:
    """Check `content` against the type's schema. Messages name fields, never values."""
    if not isinstance(content, dict):
        raise InvalidRequest("content must be a JSON object")
    missing = ctype.fields.keys() - content.keys()
    extra = content.keys() - ctype.fields.keys()
    if missing or extra:
        raise InvalidRequest(
            f"{ctype.name} content fields wrong (missing {sorted(missing)}, "
            f"unexpected {sorted(extra)})"
        )
    for name, types in ctype.fields.items():
        value = content[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise InvalidRequest(f"{ctype.name}.{name} has the wrong type")
        if isinstance(value, str) and not 0 < len(value) <= MAX_TEXT:
            raise InvalidRequest(f"{ctype.name}.{name} must be 1 to {MAX_TEXT} characters")
    if ctype.name == "prescription":
        if content["quantity"] <= 0:
            raise InvalidRequest("prescription.quantity must be positive")
        if not 0 <= content["refills"] < MAX_FILLS:
            raise InvalidRequest(f"prescription.refills must be 0 to {MAX_FILLS - 1}")
    if ctype.name == "transcript":
        courses = content["courses"]
        if not courses:
            raise InvalidRequest("transcript.courses must not be empty")
        for course in courses:
            if (not isinstance(course, dict) or set(course) != {"course", "grade"}
                    or not all(isinstance(v, str) and v for v in course.values())):
                raise InvalidRequest(
                    "each transcript course must be {\"course\": str, \"grade\": str}"
                )


def project(scope_: Scope, content: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `content` that `scope_` releases."""
    if scope_.fields is None:
        return dict(content)
    return {name: content[name] for name in scope_.fields if name in content}
