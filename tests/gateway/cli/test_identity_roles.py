"""`mip identity add` for a name that exists: the same role keeps the identity; another role
is refused, and no token is issued (the chaincode reads the role from the certificate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli.common import CliError
from gateway.cli.identity import mint
from network.devnet import pki


@pytest.fixture(scope="module")
def connection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("identities")
    pki.generate_network(data_dir)
    return data_dir / "connection.json"  # mint reads the material beside it


def test_existing_identity_keeps_its_role(connection: Path) -> None:
    assert mint(connection, "HospitalMSP", "dana", "doctor") is True
    assert mint(connection, "HospitalMSP", "dana", "doctor") is False
    with pytest.raises(CliError, match=r"dana@HospitalMSP already exists with mip.role=doctor"):
        mint(connection, "HospitalMSP", "dana", "admin")
    assert pki.identity_attrs(connection.parent, "HospitalMSP", "dana")["mip.role"] == "doctor"


def test_identity_attrs_of_unknown_and_roleless_identities(connection: Path) -> None:
    with pytest.raises(pki.UnknownIdentityError):
        pki.identity_attrs(connection.parent, "HospitalMSP", "nobody")
    # cryptogen's User1 has no mip.role: asking for one is refused the same way.
    assert "mip.role" not in pki.identity_attrs(connection.parent, "HospitalMSP", "User1")
    with pytest.raises(CliError, match=r"mip\.role=None"):
        mint(connection, "HospitalMSP", "User1", "doctor")
