from __future__ import annotations

from gateway_testkit import GatewayClient, assert_error


async def test_health_answers(gw: GatewayClient) -> None:
    r = await gw.http.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["channel"] == "mipchannel"


async def test_me_needs_a_token(gw: GatewayClient) -> None:
    assert_error(await gw.http.get("/api/v1/me"), 401, "unauthenticated")
    assert_error(await gw.http.get("/api/v1/me", headers={"Authorization": "Bearer nope"}),
                 401, "unauthenticated")


async def test_me_names_the_staff_member(gw: GatewayClient) -> None:
    r = await gw.http.get("/api/v1/me", headers=gw.staff("HospitalMSP", "doctor"))
    assert r.json() == {"org": "HospitalMSP", "name": "doctor", "role": "doctor"}


async def test_revoked_token_is_refused(gw: GatewayClient) -> None:
    token = gw.state.staff.issue("SchoolMSP", "auditor", "auditor")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await gw.http.get("/api/v1/me", headers=headers)).status_code == 200
    gw.state.staff.revoke_member("SchoolMSP", "auditor")
    assert_error(await gw.http.get("/api/v1/me", headers=headers), 401, "unauthenticated")


async def test_unknown_route_is_a_typed_error(gw: GatewayClient) -> None:
    assert_error(await gw.http.get("/api/v1/nowhere"), 404, "not_found")


async def test_openapi_schema_lists_the_error_body(gw: GatewayClient) -> None:
    schema = (await gw.http.get("/openapi.json")).json()
    assert "ErrorResponse" in schema["components"]["schemas"]
