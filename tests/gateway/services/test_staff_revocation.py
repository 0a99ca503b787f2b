"""`mip identity revoke NAME --org ORG`: a leaving staff member's certificate goes on the org
CA's CRL, which the running devnet honours (neither evaluate nor submit), and the member's
gateway tokens get 401."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import yaml
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, mip
from mip_testkit import MipClients, MipNetwork, register_passport
from typer.testing import CliRunner

from gateway.cli.app import app
from gateway.cli.identity import mint
from gateway.fabric import AccessDenied, ChaincodeError, Gateway, GatewayError, SubmitError

__all__ = ["mip"]


def _said(exc: GatewayError) -> str:
    return " ".join([str(exc), *(d.message for d in exc.details)])


def _cli(gw_data_dir: Path, network: MipNetwork, tmp_path: Path, *args: str) -> str:
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(gw_data_dir), "mode": "development",
                                      "connection": str(network.connection)}))
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exit_code == 0, result.output
    return result.output


async def test_revoked_doctor_cannot_read_or_write_and_token_is_refused(
    gw: GatewayClient, gw_network: MipNetwork, gw_data_dir: Path, mip: MipClients,
    tmp_path: Path,
) -> None:
    name = f"leaver{secrets.token_hex(4)}"
    assert mint(gw_network.connection, HOSPITAL, name, "doctor")
    token = gw.state.staff.issue(HOSPITAL, name, "doctor")
    headers = {"Authorization": f"Bearer {token}"}
    _, passport = await register_passport(mip, HOSPITAL)

    before = Gateway.from_connection(gw_network.connection, HOSPITAL, name)
    try:
        doctor = before.get_network("mipchannel").get_contract("mip")
        record = json.loads(await doctor.evaluate("Passport:Get", [passport["id"]]))
        assert record["id"] == passport["id"]
        # Endorsed while the certificate was good, sent to the orderer after the revocation.
        endorsed = await doctor.new_proposal("Passport:Get", [passport["id"]]).endorse()
        assert (await gw.http.get("/api/v1/me", headers=headers)).status_code == 200

        said = _cli(gw_data_dir, gw_network, tmp_path, "identity", "revoke", name,
                    "--org", HOSPITAL)
        assert "added to the CRL" in said and "devnet refuses" in said
        with pytest.raises(SubmitError) as late:
            await endorsed.submit()
        assert "The certificate has been revoked" in _said(late.value)
    finally:
        await before.close()

    assert_error(await gw.http.get("/api/v1/me", headers=headers), 401, "unauthenticated")
    async with Gateway.from_connection(gw_network.connection, HOSPITAL, name) as after:
        doctor = after.get_network("mipchannel").get_contract("mip")
        with pytest.raises(AccessDenied) as read:
            await doctor.evaluate("Passport:Get", [passport["id"]])
        assert "The certificate has been revoked" in _said(read.value)
        with pytest.raises(GatewayError) as write:
            await doctor.submit("Credential:Revoke", ["no-such-credential", "test"])
        assert not isinstance(write.value, ChaincodeError)  # refused before the chaincode ran
        assert "The certificate has been revoked" in _said(write.value)
    # Everyone else in the org is untouched.
    other = await mip.client(HOSPITAL, "doctor")
    await other.evaluate("Passport:Get", [passport["id"]])

    again = _cli(gw_data_dir, gw_network, tmp_path, "identity", "revoke", name, "--org", HOSPITAL)
    assert "already on the CRL" in again


def test_revoking_an_unknown_member_is_an_error(
    gw_network: MipNetwork, gw_data_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(gw_data_dir), "mode": "development",
                                      "connection": str(gw_network.connection)}))
    result = CliRunner().invoke(app, ["identity", "revoke", "nobody-here", "--org", HOSPITAL,
                                      "--config", str(config)])
    assert result.exit_code == 1
    assert "Fabric identity not revoked: no identity 'nobody-here'" in result.output
