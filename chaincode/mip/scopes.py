"""The contract's checks of credential types, content and scopes, against the tables in
chaincode/protocol/scopes.py (which the gateway shares)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaincode.mip.errors import InvalidRequest
from chaincode.protocol.scopes import (
    AGGREGATE_TYPES,
    COLLECTION_MEMBERS,
    CREDENTIAL_TYPES,
    MAX_FILLS,
    MAX_TEXT,
    SCOPES,
    CredentialType,
    Scope,
)

__all__ = [  # re-exported for the contract's modules
    "AGGREGATE_TYPES", "COLLECTION_MEMBERS", "CREDENTIAL_TYPES", "MAX_FILLS", "MAX_TEXT",
    "SCOPES", "CredentialType", "Scope", "credential_type", "project", "scope",
    "scope_covers_type", "validate_content",
]


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
