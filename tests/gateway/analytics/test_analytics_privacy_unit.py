"""The unit of privacy is one account, not one holder, and the documented bound says so.

A holder can open two accounts at one institution (the contract cannot tell they are one
person's: accounts are unlinkable by design), both can consent, and both then count: the
holder contributes two records. So a release of epsilon protects that holder at 2 x epsilon,
which is what `Plan.loss_for_accounts(2)` and the analytics README state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from credential_kit import grant
from mip_testkit import MipClients, make_kyc_issuers, new_holder, open_account, request_arg

from gateway.analytics import (
    CountQuery,
    HistogramQuery,
    MeanQuery,
    SumQuery,
    consenting_accounts,
    consenting_records,
    plan,
)
from gateway.analytics.service import one_per_holder

HOSPITAL = "HospitalMSP"
README = Path(__file__).resolve().parents[3] / "gateway" / "analytics" / "README.md"


@pytest.mark.slow  # ~15 s: a KYC issuer's keys and two anoncreds account openings
async def test_two_accounts_of_one_holder_at_one_institution_count_twice(
        mip: MipClients) -> None:
    holder = await new_holder(mip, make_kyc_issuers((HOSPITAL,)))
    first = await open_account(mip, holder, HOSPITAL)
    second = await open_account(mip, holder, HOSPITAL)
    # Both are open at the same institution, under unrelated pseudonyms and keys.
    assert first.record["institution"] == second.record["institution"] == HOSPITAL
    assert first.record["status"] == second.record["status"] == "open"
    assert first.pseudonym != second.pseudonym
    assert first.record["public_key"] != second.record["public_key"]

    gateway = await mip.client(HOSPITAL, "gateway")
    grants = []
    for account in (first, second):
        await grant(mip, account, HOSPITAL, "research.aggregate", credential_type="record")
        listing = account.sign("grant.list", {"account": account.pseudonym})
        grants += json.loads(await gateway.evaluate("Grant:List", [request_arg(listing)]))
    allowed = consenting_accounts(grants, researcher_org=HOSPITAL, now=int(time.time()),
                                  credential_type="record")
    assert allowed == {first.pseudonym, second.pseudonym}

    records = [{"account": a.pseudonym, "age": 40, "dx": "flu"} for a in (first, second)]
    kept = one_per_holder(consenting_records(records, allowed, "account"), "account")
    assert len(kept) == 2  # one person, two records in the measurement

    # What that costs the person: twice the epsilon of the release, by OpenDP's own map.
    count = plan(CountQuery(epsilon=0.5))
    assert count.privacy_loss == pytest.approx(0.5)
    assert count.loss_for_accounts(2) == pytest.approx(1.0)


@pytest.mark.parametrize("query", [
    CountQuery(epsilon=0.4),
    SumQuery(epsilon=0.4, column="age", lower=0, upper=120),
    HistogramQuery(epsilon=0.4, column="dx", categories=("flu", "cold")),
    MeanQuery(epsilon=0.4, column="age", lower=0, upper=120),
])
def test_loss_grows_with_the_holder_s_accounts(query: object) -> None:
    prepared = plan(query)  # type: ignore[arg-type]
    for k in (1, 2, 3):
        loss = prepared.loss_for_accounts(k)
        # k x epsilon (group privacy), and not less: the bound is not loose.
        assert (k - 0.001) * 0.4 <= loss <= k * 0.4 + 1e-9
    with pytest.raises(ValueError):
        prepared.loss_for_accounts(0)


def test_the_readme_states_the_account_unit() -> None:
    text = README.read_text(encoding="utf-8")
    assert "Unit of privacy: one **account**, not one person" in text
    assert "k x epsilon" in text
    assert "Unit of privacy: one holder" not in text
