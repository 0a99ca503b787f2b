"""`mip identity add` on a production gateway (keys in a SoftHSM2 token) mints nothing and acts
for its own org only (docs/deploy.md, issue #15 item 1).

There is no Fabric CA binary (`fabric-ca-server`/`fabric-ca-client`) under /opt/fabric/bin, so
the org's CA is the devnet layout's (network/devnet/pki.py via gateway/core/ca.py) with its
CA keys beside connection.json, the worst case: a production gateway that COULD mint with
them must not. Another org (`--org SchoolMSP` at the Hospital's gateway) is refused before
anything is made: no identity of it appears, no data dir is made. The gateway's own org gets
no identity minted either: a person not enrolled with the org's CA is refused, one enrolled
(out of band, as the org's Fabric CA would) with another role is refused, and one enrolled with
the role gets a token in the Hospital's database, under the token's keys.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from softhsm_kit import SoftHsmToken, fresh_prefix
from typer.testing import CliRunner

from chaincode.protocol.orgs import HOSPITAL, SCHOOL
from gateway.cli.app import app
from gateway.core.config import Settings
from gateway.core.security import StaffRegistry
from gateway.services.state import open_data_dir
from network.devnet import pki


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MIP_HOME", str(tmp_path / "home"))


def _known(connection: Path, org: str, name: str) -> bool:
    try:
        pki.identity_attrs(connection.parent, org, name)
    except pki.PKIError:
        return False
    return True


def test_production_identity_add_mints_nothing_and_only_for_its_own_org(
        softhsm: SoftHsmToken, tmp_path: Path) -> None:
    network = tmp_path / "net"
    pki.generate_network(network)
    connection = pki.write_connection_profile(
        network, endpoint="127.0.0.1:7051", channel="mipchannel", chaincode="mip",
        tls_root_cert=pki.tlsca_cert_path(network, pki.DEFAULT_PEER_ORGS[0]),
        server_name="peer0.hospital.mip.local")
    data_dir = tmp_path / "gw"
    settings = softhsm.settings(data_dir, fresh_prefix(), connection=str(connection),
                                mode="production")
    config = tmp_path / "mip.yaml"
    config.write_text(yaml.safe_dump({k: str(v) for k, v in settings.items()}))
    add = ["identity", "add", "--role", "doctor", "--config", str(config)]

    # Another org: refused before anything is made.
    result = CliRunner().invoke(app, [*add, "--name", "nurse", "--org", SCHOOL])
    assert result.exit_code == 1, result.output
    assert f"this is {HOSPITAL}'s gateway" in result.output and SCHOOL in result.output
    assert not _known(connection, SCHOOL, "nurse")
    assert not data_dir.exists()

    # Its own org, a person the org's CA never enrolled: refused, and not minted, though
    # the CA keys sit beside connection.json.
    result = CliRunner().invoke(app, [*add, "--name", "nurse"])
    assert result.exit_code == 1, result.output
    assert "enrol it with the org's Fabric CA" in result.output
    assert not _known(connection, HOSPITAL, "nurse")

    # Enrolled by the org's CA (out of band) with another role: refused; with the role: a
    # token, issued in the Hospital's own database.
    pki.add_identity(network, HOSPITAL, "nurse", {"mip.role": "pharmacist"})
    result = CliRunner().invoke(app, [*add, "--name", "nurse"])
    assert result.exit_code == 1 and "mip.role=pharmacist, not doctor" in result.output
    pki.add_identity(network, HOSPITAL, "dana", {"mip.role": "doctor"})
    token_file = tmp_path / "dana.token"
    result = CliRunner().invoke(app, [*add, "--name", "dana", "--token-file", str(token_file)])
    assert result.exit_code == 0, result.output
    assert f"found Fabric CA identity dana@{HOSPITAL}" in result.output
    assert "minted" not in result.output
    db, keys = open_data_dir(Settings(**settings))  # type: ignore[arg-type]
    try:
        member = StaffRegistry(db, HOSPITAL).authenticate(token_file.read_text().strip())
    finally:
        db.close()
        keys.close()
    assert (member.org, member.name, member.role) == (HOSPITAL, "dana", "doctor")
    # The School's side of the CA holds no identity this gateway made.
    assert not _known(connection, SCHOOL, "dana") and not _known(connection, SCHOOL, "nurse")
