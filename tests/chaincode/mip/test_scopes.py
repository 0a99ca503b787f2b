"""Pure unit tests of credential schemas and scope projection (no devnet)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincode.mip.errors import InvalidRequest
from chaincode.mip.scopes import (
    CREDENTIAL_TYPES,
    SCOPES,
    credential_type,
    project,
    scope,
    scope_covers_type,
    validate_content,
)

PRESCRIPTION = {"drug": "d", "strength": "s", "quantity": 1, "refills": 0, "prescriber": "p",
                "expiry": 2_000_000_000}


def test_prescription_scope_never_releases_prescriber_or_unknown_fields() -> None:
    fields = project(SCOPES["medical.prescription"], {**PRESCRIPTION, "diagnosis": "x"})
    assert fields == {k: PRESCRIPTION[k]
                      for k in ("drug", "strength", "quantity", "refills", "expiry")}


def test_diploma_scope_releases_degree_not_grades() -> None:
    content = {"degree": "BSc", "field": "Physics", "awarded": "2024", "courses": ["A"]}
    assert project(SCOPES["education.diploma"], content) == {
        "degree": "BSc", "field": "Physics", "awarded": "2024"}
    assert project(SCOPES["research.aggregate"], content) == {}


@given(st.dictionaries(st.text(min_size=1, max_size=12), st.integers(), max_size=12))
def test_projection_only_ever_returns_scope_fields(content: dict[str, Any]) -> None:
    for item in SCOPES.values():
        released = project(item, content)
        if item.fields is not None:
            assert set(released) <= set(item.fields)
        assert all(content[k] == v for k, v in released.items())


@pytest.mark.parametrize("bad", [
    {**PRESCRIPTION, "quantity": 0},
    {**PRESCRIPTION, "refills": -1},
    {**PRESCRIPTION, "refills": 100},
    {**PRESCRIPTION, "quantity": True},
    {**PRESCRIPTION, "drug": ""},
    {**PRESCRIPTION, "drug": "x" * 5000},
    {k: v for k, v in PRESCRIPTION.items() if k != "drug"},
    [PRESCRIPTION],
])
def test_prescription_schema_refusals(bad: Any) -> None:
    with pytest.raises(InvalidRequest):
        validate_content(CREDENTIAL_TYPES["prescription"], bad)


def test_transcript_schema() -> None:
    ctype = credential_type("transcript")
    validate_content(ctype, {"courses": [{"course": "Optics", "grade": "B"}]})
    bads: list[dict[str, Any]] = [
        {"courses": []}, {"courses": [{"course": "Optics"}]},
        {"courses": [{"course": "Optics", "grade": 3}]}, {"courses": "Optics"}]
    for bad in bads:
        with pytest.raises(InvalidRequest):
            validate_content(ctype, bad)


def test_names_and_coverage() -> None:
    with pytest.raises(InvalidRequest):
        credential_type("vaccination")
    with pytest.raises(InvalidRequest):
        scope("medical.everything")
    assert scope_covers_type(SCOPES["medical.prescription"], "prescription")
    assert not scope_covers_type(SCOPES["medical.prescription"], "record")
    assert all(scope_covers_type(SCOPES["research.aggregate"], t) for t in CREDENTIAL_TYPES)
