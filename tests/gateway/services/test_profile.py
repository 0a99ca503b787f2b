"""Smart-profile routes: add, list, open, share; refusals for others and level 1."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import base64

from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    session_headers,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error


async def test_add_list_open_share(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    mine = await holder_headers(hw, bush)
    theirs = await holder_headers(hw, stoiber)
    data = b'{"steps": 1234}'
    r = await hw.http.post(f"{API}/profile/records", headers=mine, json={
        "kind": "fitness.daily", "source": "fitapp", "data": base64.b64encode(data).decode(),
        "metadata": {"day": "2024-05-01"}})
    assert r.status_code == 201, r.text
    rid = r.json()["record_id"]
    listed = (await hw.http.get(f"{API}/profile/records", headers=mine)).json()["records"]
    assert [x["record_id"] for x in listed] == [rid] and listed[0]["owned"]
    opened = await hw.http.get(f"{API}/profile/records/{rid}", headers=mine)
    assert base64.b64decode(opened.json()["data"]) == data
    # Not shared yet: the other holder does not see it.
    assert_error(await hw.http.get(f"{API}/profile/records/{rid}", headers=theirs), 404,
                 "record_not_found")
    key = (await hw.http.get(f"{API}/profile/key", headers=theirs)).json()["public_key"]
    r = await hw.http.post(f"{API}/profile/records/{rid}/shares", headers=mine,
                           json={"grantee_public_key": key})
    assert r.status_code == 204, r.text
    opened = await hw.http.get(f"{API}/profile/records/{rid}", headers=theirs)
    assert base64.b64decode(opened.json()["data"]) == data
    # The grantee cannot re-share.
    assert_error(await hw.http.post(f"{API}/profile/records/{rid}/shares", headers=theirs,
                                    json={"grantee_public_key": key}), 403, "not_owner")


async def test_profile_refusals(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    level1 = await unlock(hw, "bush", bush.passport_id)
    h1 = session_headers(level1)
    assert_error(await hw.http.get(f"{API}/profile/records", headers=h1), 403,
                 "holder_level_too_low")
    assert_error(await hw.http.get(f"{API}/profile/records"), 401, "holder_session_required")
    mine = await holder_headers(hw, bush)
    assert_error(await hw.http.post(f"{API}/profile/records", headers=mine,
                                    json={"kind": "x", "source": "y", "data": "***"}), 422,
                 "invalid_request")
    assert_error(await hw.http.get(f"{API}/profile/records/{'0' * 32}", headers=mine), 404,
                 "record_not_found")
