"""Datasets (POST /admin/datasets, .../records, .../researchers), GET
/analytics/datasets/{id}, POST /analytics/queries: DP answers over consenting holders only,
budget on the ledger, spent only by researchers the owner org admitted."""

from __future__ import annotations

import secrets

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, PHARMACY, SCHOOL, grant, mip, new_account
from mip_testkit import MipClients, new_id

__all__ = ["mip"]

COLUMNS = {"age": "numeric", "dx": "categorical"}


async def register(gw: GatewayClient, total: float = 6.0, *,
                   admit: tuple[str, ...] = (HOSPITAL,)) -> str:
    """A HospitalMSP dataset; the researcher identities of the `admit` orgs admitted."""
    dataset_id = new_id("ds")
    admin = gw.staff(HOSPITAL, "admin")
    r = await gw.http.post("/api/v1/admin/datasets", headers=admin,
                           json={"dataset_id": dataset_id, "total_epsilon": total,
                                 "columns": COLUMNS})
    assert r.status_code == 201, r.text
    for org in admit:
        r = await gw.http.post(f"/api/v1/admin/datasets/{dataset_id}/researchers",
                               headers=admin, json={"org": org, "user": "researcher"})
        assert r.status_code == 201, r.text
    return dataset_id


async def test_queries_use_consenting_rows_and_spend_budget(gw: GatewayClient,
                                                            mip: MipClients) -> None:
    dataset_id = await register(gw)
    consenting = [await new_account(mip) for _ in range(2)]
    for account in consenting:
        await grant(gw, account, HOSPITAL, "research.aggregate", credential_type="record",
                    grantee_role="researcher")
    # Twenty holders who never consented, all in category "b".
    rows = [{"account": a.pseudonym, "age": 40, "dx": "a"} for a in consenting]
    rows += [{"account": secrets.token_hex(32), "age": 90, "dx": "b"} for _ in range(20)]
    admin = gw.staff(HOSPITAL, "admin")
    r = await gw.http.post(f"/api/v1/admin/datasets/{dataset_id}/records", headers=admin,
                           json={"records": rows})
    assert r.json() == {"added": 22}

    researcher = gw.staff(HOSPITAL, "researcher")
    r = await gw.http.post("/api/v1/analytics/queries", headers=researcher, json={
        "dataset_id": dataset_id, "epsilon": 5.0,
        "query": {"kind": "histogram", "column": "dx", "categories": ["a", "b"]}})
    assert r.status_code == 200, r.text
    release = r.json()
    # Noise at epsilon 5 is a fraction of a count: 20 non-consenting rows would show.
    assert release["counts"]["b"] < 8 and release["counts"]["a"] < 8
    assert release["remaining_epsilon_micro"] == 1_000_000

    r = await gw.http.get(f"/api/v1/analytics/datasets/{dataset_id}", headers=researcher)
    assert r.json()["remaining_epsilon"] == 1.0 and r.json()["columns"] == COLUMNS
    # Over the remaining budget: refused, nothing spent.
    assert_error(await gw.http.post("/api/v1/analytics/queries", headers=researcher, json={
        "dataset_id": dataset_id, "query": {"kind": "count", "epsilon": 2.0}}),
        409, "budget_exhausted")
    r = await gw.http.get(f"/api/v1/analytics/datasets/{dataset_id}", headers=researcher)
    assert r.json()["remaining_epsilon_micro"] == 1_000_000


async def test_analytics_refusals(gw: GatewayClient, mip: MipClients) -> None:
    dataset_id = await register(gw, total=1.0)
    researcher = gw.staff(HOSPITAL, "researcher")
    url = "/api/v1/analytics/queries"
    count = {"dataset_id": dataset_id, "query": {"kind": "count", "epsilon": 0.5}}
    assert_error(await gw.http.post(url, json=count, headers=gw.staff(HOSPITAL, "doctor")),
                 403, "wrong_role")
    assert_error(await gw.http.post(url, json=count), 401, "unauthenticated")
    assert_error(await gw.http.post(url, json={**count, "dataset_id": "none"},
                                    headers=researcher), 404, "unknown_dataset")
    for bad in ({"kind": "median", "epsilon": 0.5},
                {"kind": "sum", "column": "age", "lower": 5, "upper": 1, "epsilon": 0.5},
                {"kind": "sum", "column": "dx", "lower": 0, "upper": 1, "epsilon": 0.5},
                {"kind": "count", "epsilon": 50}):
        r = await gw.http.post(url, json={**count, "query": bad}, headers=researcher)
        assert r.status_code == 422, r.text
    r = await gw.http.get(f"/api/v1/analytics/datasets/{dataset_id}", headers=researcher)
    assert r.json()["remaining_epsilon_micro"] == 1_000_000

    admin = gw.staff(HOSPITAL, "admin")
    assert_error(await gw.http.post("/api/v1/admin/datasets", headers=researcher, json={
        "dataset_id": new_id("ds"), "total_epsilon": 1, "columns": COLUMNS}), 403,
        "wrong_role")
    assert_error(await gw.http.post("/api/v1/admin/datasets", headers=admin, json={
        "dataset_id": dataset_id, "total_epsilon": 1, "columns": COLUMNS}), 409, "conflict")
    assert_error(await gw.http.post("/api/v1/admin/datasets", headers=admin, json={
        "dataset_id": new_id("ds"), "total_epsilon": 0, "columns": COLUMNS}), 422,
        "invalid_request")
    records = f"/api/v1/admin/datasets/{dataset_id}/records"
    assert_error(await gw.http.post(records, headers=gw.staff(SCHOOL, "admin"), json={
        "records": [{"account": "a" * 64, "age": 3}]}), 403, "wrong_org")
    assert_error(await gw.http.post(records, headers=admin, json={
        "records": [{"account": "a" * 64, "name": "Ada"}]}), 422, "invalid_request")
    assert_error(await gw.http.post(records, headers=admin, json={
        "records": [{"age": 3}]}), 422, "invalid_request")
    assert_error(await gw.http.get("/api/v1/analytics/datasets/none", headers=researcher),
                 404, "unknown_dataset")


async def test_only_admitted_researchers_spend_the_budget(gw: GatewayClient) -> None:
    """The issue's case: a SchoolMSP researcher with no consenting accounts emptied a
    HospitalMSP dataset's budget (20 queries at epsilon 5)."""
    dataset_id = await register(gw, total=100.0, admit=())
    url = "/api/v1/analytics/queries"
    count = {"dataset_id": dataset_id, "query": {"kind": "count", "epsilon": 5.0}}
    hospital_researcher = gw.staff(HOSPITAL, "researcher")
    school_researcher = gw.staff(SCHOOL, "researcher")
    for researcher in (school_researcher, hospital_researcher):
        assert_error(await gw.http.post(url, json=count, headers=researcher), 403,
                     "budget_denied")

    async def remaining() -> int:
        r = await gw.http.get(f"/api/v1/analytics/datasets/{dataset_id}",
                              headers=hospital_researcher)
        return int(r.json()["remaining_epsilon_micro"])

    assert await remaining() == 100_000_000
    researchers = f"/api/v1/admin/datasets/{dataset_id}/researchers"
    school = {"org": SCHOOL, "user": "researcher"}
    # Only the owner org's admin admits: not another org's admin, not a researcher.
    assert_error(await gw.http.post(researchers, headers=gw.staff(SCHOOL, "admin"),
                                    json=school), 403, "access_denied")
    assert_error(await gw.http.post(researchers, headers=school_researcher, json=school),
                 403, "wrong_role")
    assert_error(await gw.http.post(researchers, headers=gw.staff(HOSPITAL, "admin"),
                                    json={"org": PHARMACY, "user": "nobody"}), 404,
                 "identity_unknown")
    r = await gw.http.post(researchers, headers=gw.staff(HOSPITAL, "admin"), json=school)
    assert r.status_code == 201, r.text
    assert r.json()["researcher_org"] == SCHOOL and r.json()["status"] == "admitted"
    r = await gw.http.post(url, json=count, headers=school_researcher)
    assert r.status_code == 200, r.text
    assert await remaining() == 95_000_000
    # The Hospital's own researcher was not admitted; dismissal ends the School's too.
    assert_error(await gw.http.post(url, json=count, headers=hospital_researcher), 403,
                 "budget_denied")
    r = await gw.http.post(f"{researchers}/dismiss", headers=gw.staff(HOSPITAL, "admin"),
                           json=school)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert_error(await gw.http.post(url, json=count, headers=school_researcher), 403,
                 "budget_denied")
    assert await remaining() == 95_000_000
