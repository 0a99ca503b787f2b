"""Enrolment at a registration desk: the whole flow, and every refusal changing nothing."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json

from enrolment_kit import (
    API,
    ensure_enrolled,
    hw,  # noqa: F401 (fixture)
    hw_data_dir,  # noqa: F401 (fixture)
    )
from gateway_testkit import GatewayClient

from gateway.services.holders import holder_service


async def _ledger_passport(gw: GatewayClient, pid: str) -> dict[str, object]:
    raw = await gw.state.ledger.contract("HospitalMSP", "registrar").evaluate(
        "Passport:Get", [pid])
    return dict(json.loads(raw))


async def test_enrolment_registers_a_level_2_passport(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    assert bush.finish["kyc_level"] == 2 and bush.finish["guardian_shares"] == 0
    record = await _ledger_passport(hw, bush.passport_id)
    assert record["enrolling_org"] == "HospitalMSP" and record["kyc_level"] == 2
    assert record["status"] == "active"
    assert holder_service(hw.state).record(bush.passport_id) is not None
    view = await hw.http.get(f"{API}/enrolments/{bush.finish['session_id']}",
                             headers=hw.staff("HospitalMSP", "registrar"))
    assert view.json()["status"] == "finished"
    assert view.json()["passport_id"] == bush.passport_id
