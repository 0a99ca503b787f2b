"""Provisional passports (Config `screening_required`) and `Passport:Screen`."""

from __future__ import annotations

import json

from mip_testkit import (
    MipClients,
    expect_error,
    register_passport,
    register_provisional_passport,
)

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"


async def _get(mip: MipClients, passport_id: str) -> dict[str, object]:
    reader = await mip.client(SCHOOL, None)
    return dict(json.loads(await reader.evaluate("Passport:Get", [passport_id])))


async def test_without_the_setting_a_passport_is_not_provisional(mip: MipClients) -> None:
    _, record = await register_passport(mip, HOSPITAL, level=2)
    assert record["kyc_level"] == 2 and "screening" not in record
    registrar = await mip.client(SCHOOL, "registrar")
    async with expect_error("precondition_failed"):
        await registrar.submit("Passport:Screen", [record["id"], "clear", "nothing pending"])


async def test_a_majority_finding_a_duplicate_revokes_the_passport(mip: MipClients) -> None:
    _, record = await register_provisional_passport(mip, SCHOOL, level=2)
    assert record["kyc_level"] == 1
    assert record["screening"] == {"status": "pending", "level_on_clear": 2, "decisions": []}
    hospital = await mip.client(HOSPITAL, "registrar")
    pharmacy = await mip.client(PHARMACY, "registrar")
    school = await mip.client(SCHOOL, "registrar")
    # split decisions: no majority for either
    await school.submit("Passport:Screen", [record["id"], "clear", "desk review"])
    result = json.loads(await hospital.submit(
        "Passport:Screen", [record["id"], "duplicate", "same person as one of ours"]))
    assert result["screening_pending"] and result["status"] == "active"
    result = json.loads(await pharmacy.submit(
        "Passport:Screen", [record["id"], "duplicate", "confirmed from our reference"]))
    assert not result["screening_pending"]
    got = await _get(mip, record["id"])
    assert got["status"] == "revoked" and got["kyc_level"] == 1
    assert got["screening"]["status"] == "duplicate"  # type: ignore[index]
    async with expect_error("precondition_failed"):
        await school.submit("Passport:Screen", [record["id"], "clear", "too late"])


async def test_bad_decisions_are_refused(mip: MipClients) -> None:
    _, record = await register_provisional_passport(mip, HOSPITAL, level=1)
    registrar = await mip.client(HOSPITAL, "registrar")
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Screen", [record["id"], "maybe", "unsure"])
    async with expect_error("invalid_request"):
        await registrar.submit("Passport:Screen", [record["id"], "clear", ""])
    doctor = await mip.client(HOSPITAL, "doctor")
    async with expect_error("access_denied"):
        await doctor.submit("Passport:Screen", [record["id"], "clear", "not a registrar"])
    assert (await _get(mip, record["id"]))["screening"] == record["screening"]
