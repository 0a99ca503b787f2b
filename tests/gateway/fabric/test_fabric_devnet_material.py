"""The client's identity loading and signatures against devnet's crypto material and MSP checks.

Uses devnet's PKI (cryptogen layout) and its MSP validator directly, without starting devnet,
so a mismatch in the shared formats of docs/ledger.md shows up even before devnet runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.fabric import from_connection, load_msp_folder
from network.devnet import msp, orgs, pki


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("devnet-material")
    pki.generate_network(data)
    hospital = orgs.DEFAULT_PEER_ORGS[0]
    pki.write_connection_profile(
        data,
        endpoint="127.0.0.1:7051",
        channel="mipchannel",
        chaincode="mip",
        tls_root_cert=pki.tlsca_cert_path(data, hospital),
        server_name="peer0.hospital.mip.local",
    )
    return data


@pytest.mark.parametrize("msp_id", ["HospitalMSP", "SchoolMSP", "PharmacyMSP"])
@pytest.mark.parametrize("user", ["User1", "Admin"])
def test_connection_profile_identities_pass_devnet_msp(
    material: Path, msp_id: str, user: str
) -> None:
    settings = from_connection(material / "connection.json", msp_id, user)
    manager = msp.MSPManager.from_data_dir(material)
    validated = manager.validate(settings.identity.serialize())
    assert validated.mspid == msp_id
    for message in (b"", b"proposal bytes", bytes(range(256)) * 8):
        msp.verify_signature(validated, message, settings.signer.sign(message))
    assert settings.tls_root_cert and settings.client_cert and settings.client_key


def test_load_msp_folder_on_cryptogen_layout(material: Path) -> None:
    folder = (
        material
        / "organizations/peerOrganizations/school.mip.local/users/User1@school.mip.local/msp"
    )
    identity, signer = load_msp_folder(folder, "SchoolMSP")
    validated = msp.MSPManager.from_data_dir(material).validate(identity.serialize())
    msp.verify_signature(validated, b"x", signer.sign(b"x"))
