"""research.aggregate consent: which accounts' records may enter a researcher's aggregates."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.analytics import consenting_accounts, consenting_records, grant_consents

NOW = 1_700_000_000
ORG = "HospitalMSP"


def grant(account: str = "acc-1", **overrides: Any) -> dict[str, Any]:
    """A record as Grant:List returns it (chaincode/mip/grants.py)."""
    record: dict[str, Any] = {
        "account": account, "grant_id": f"g-{account}", "grantee_org": ORG,
        "grantee_role": None, "scope": "research.aggregate", "credential_id": None,
        "credential_type": "record", "expires": NOW + 3600, "status": "active",
        "created": NOW - 10, "updated": NOW - 10, "request": {}, "live": True,
    }
    record.update(overrides)
    return record


def accounts(grants: list[dict[str, Any]], **kwargs: Any) -> frozenset[str]:
    return consenting_accounts(grants, researcher_org=ORG, now=NOW, **kwargs)


def test_live_research_grant_counts() -> None:
    assert accounts([grant("a"), grant("b", grantee_role="researcher")]) == {"a", "b"}
    # Without the contract's `live` flag (e.g. a grant record read another way) too.
    record = grant("c")
    del record["live"]
    assert accounts([record]) == {"c"}


@pytest.mark.parametrize("overrides", [
    {"scope": "medical.record"},
    {"status": "revoked", "revoked": NOW - 1},
    {"live": False},
    {"expires": NOW},  # expiry is exclusive, as the contract's grant_is_live
    {"expires": NOW - 1},
    {"grantee_org": "SchoolMSP"},
    {"grantee_role": "doctor"},
    {"expires": str(NOW + 10)},
    {"expires": True},
    {"status": None},
])
def test_grants_that_do_not_count(overrides: dict[str, Any]) -> None:
    assert accounts([grant("a", **overrides)]) == frozenset()


def test_one_good_grant_among_bad_ones() -> None:
    grants = [grant("a", status="revoked"), grant("a", grant_id="g2"), grant("b", live=False)]
    assert accounts(grants) == {"a"}


def test_malformed_records_skipped() -> None:
    grants: list[Any] = [grant("a"), "junk", {"account": 7, **{k: v for k, v in grant().items()
                                                               if k != "account"}},
                         grant(""), {}, grant("b")]
    assert accounts(grants) == {"a", "b"}


def test_role_other_than_researcher() -> None:
    assert accounts([grant("a", grantee_role="auditor")], role="auditor") == {"a"}
    assert accounts([grant("a", grantee_role="auditor")]) == frozenset()


def test_credential_type_filter() -> None:
    by_type = grant("a", credential_type="record")
    by_id = grant("b", credential_type=None, credential_id="cred-9")
    other = grant("c", credential_type="diploma")
    grants = [by_type, by_id, other]
    assert accounts(grants) == {"a", "b", "c"}
    assert accounts(grants, credential_type="record") == {"a"}
    assert accounts(grants, credential_type="record", credential_ids={"cred-9"}) == {"a", "b"}
    assert grant_consents(other, researcher_org=ORG, now=NOW, credential_type="diploma")


def test_consenting_records() -> None:
    records: list[dict[str, Any]] = [{"account": "a", "x": 1}, {"account": "b", "x": 2},
                                     {"x": 3}, {"account": ["a"], "x": 4}]
    assert consenting_records(records, {"a"}, "account") == [{"account": "a", "x": 1}]
