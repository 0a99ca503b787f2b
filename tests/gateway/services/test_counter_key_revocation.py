"""Revoking a pharmacy counter key through the gateway: `POST /admin/counter-key/{id}/revoke`
and `mip counter-key revoke ID` (admin@PharmacyMSP; the ledger decides)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml
from credential_kit import CounterGateway
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, PHARMACY, mip
from mip_testkit import MipClients, MipNetwork
from typer.testing import CliRunner

from gateway.cli.app import app

__all__ = ["mip"]


def url(key_id: str) -> str:
    return f"/api/v1/admin/counter-key/{key_id}/revoke"


def cli(gw_data_dir: Path, network: MipNetwork, tmp_path: Path, *args: str) -> tuple[int, str]:
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(gw_data_dir), "mode": "development",
                                      "connection": str(network.connection)}))
    result = CliRunner().invoke(app, [*args, "--config", str(config)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.stdout + result.stderr


async def test_revoke_route_needs_a_pharmacy_admin(gw: GatewayClient, mip: MipClients) -> None:
    counter = CounterGateway.generate()
    await counter.register(mip)
    assert_error(await gw.http.post(url(counter.key_id)), 401, "unauthenticated")
    assert_error(await gw.http.post(url(counter.key_id), headers=gw.staff(HOSPITAL, "admin")),
                 403, "wrong_org")
    assert_error(await gw.http.post(url(counter.key_id),
                                    headers=gw.staff(PHARMACY, "pharmacist")), 403, "wrong_role")
    r = await gw.http.post(url(counter.key_id), headers=gw.staff(PHARMACY, "admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["key_id"] == counter.key_id and body["status"] == "revoked"
    assert body["org"] == PHARMACY and body["revoked"] >= body["registered"]
    assert_error(await gw.http.post(url(counter.key_id), headers=gw.staff(PHARMACY, "admin")),
                 409, "conflict")
    assert_error(await gw.http.post(url("counter-unknown"), headers=gw.staff(PHARMACY, "admin")),
                 404, "not_found")


async def test_mip_counter_key_revoke(
    gw: GatewayClient, mip: MipClients, gw_network: MipNetwork, gw_data_dir: Path, tmp_path: Path
) -> None:
    counter = CounterGateway.generate()
    await counter.register(mip)
    # The CLI claims the admin role for the gateway's early check; the contract reads the
    # certificate, so a pharmacist's identity is still refused.
    code, said = await asyncio.to_thread(  # the CLI runs its own event loop
        cli, gw_data_dir, gw_network, tmp_path, "counter-key", "revoke", counter.key_id,
                     "--org", PHARMACY, "--as", "pharmacist")
    assert code == 1 and "access_denied" in said
    code, said = await asyncio.to_thread(  # the CLI runs its own event loop
        cli, gw_data_dir, gw_network, tmp_path, "counter-key", "revoke", counter.key_id,
                     "--org", PHARMACY, "--as", "admin")
    assert code == 0, said
    assert f"counter key {counter.key_id} revoked" in said and '"status": "revoked"' in said
    code, said = await asyncio.to_thread(  # the CLI runs its own event loop
        cli, gw_data_dir, gw_network, tmp_path, "counter-key", "revoke", counter.key_id,
                     "--org", PHARMACY, "--as", "admin")
    assert code == 1 and "already revoked" in said
