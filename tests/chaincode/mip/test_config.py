"""Config: channel-wide settings, admin only; once set, changes need every member org."""

from __future__ import annotations

import json

import pytest
from mip_testkit import ORGS, MipClients, expect_error

from gateway.fabric import CommitError


async def test_default_and_metadata(mip: MipClients) -> None:
    contract = await mip.client("SchoolMSP", None)
    got = json.loads(await contract.evaluate("Config:Get", ["vouch_k"]))
    assert got["value"] >= 1
    metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
    txs = {t["name"]: t for t in metadata["contracts"]["Config"]["transactions"]}
    assert [p["name"] for p in txs["Set"]["parameters"]] == ["name", "value"]


async def test_only_admin_sets_and_values_are_checked(mip: MipClients) -> None:
    for org, role in [("HospitalMSP", "registrar"), ("SchoolMSP", None),
                      ("PharmacyMSP", "auditor")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit("Config:Set", ["vouch_k", "3"])
    admin = await mip.client("HospitalMSP", "admin")
    async with expect_error("invalid_request"):
        await admin.submit("Config:Set", ["vouch_k", "0"])
    async with expect_error("invalid_request"):
        await admin.submit("Config:Set", ["no_such_setting", "1"])


async def test_change_after_first_needs_every_org(mip: MipClients) -> None:
    admin = await mip.client("HospitalMSP", "admin")
    current = json.loads(await admin.evaluate("Config:Get", ["vouch_k"]))["value"]
    # Writing the current value changes nothing for other tests but installs the key policy.
    await admin.submit("Config:Set", ["vouch_k", str(current)], endorsing_orgs=list(ORGS))
    with pytest.raises(CommitError) as info:
        await admin.submit("Config:Set", ["vouch_k", str(current)],
                           endorsing_orgs=["HospitalMSP"])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    record = await admin.submit("Config:Set", ["vouch_k", str(current)],
                                endorsing_orgs=list(ORGS))
    assert json.loads(record)["value"] == current
    got = json.loads(await admin.evaluate("Config:Get", ["vouch_k"]))
    assert got == {**got, "value": current, "default": False}


async def test_vouch_k_sets_the_level_three_threshold(mip: MipClients) -> None:
    from mip_testkit import register_passport, request_arg

    admin = await mip.client("SchoolMSP", "admin")
    gateway = await mip.client("HospitalMSP", "gateway")
    original = json.loads(await admin.evaluate("Config:Get", ["vouch_k"]))["value"]
    await admin.submit("Config:Set", ["vouch_k", "3"], endorsing_orgs=list(ORGS))
    try:
        _, vouchee = await register_passport(mip, "HospitalMSP", level=2)
        levels = []
        for _ in range(3):
            voucher, _ = await register_passport(mip, "SchoolMSP", level=2)
            request = voucher.sign_request("passport.vouch", {"vouchee": vouchee["id"]})
            result = json.loads(await gateway.submit(
                "Passport:Vouch", [request_arg(request)]))
            levels.append((result["vouches"], result["vouch_k"], result["kyc_level"]))
        assert levels == [(1, 3, 2), (2, 3, 2), (3, 3, 3)]
    finally:
        await admin.submit("Config:Set", ["vouch_k", str(original)], endorsing_orgs=list(ORGS))
