"""Each org's own connection profile and CA copy (gateway/cli/org_profiles.py), split from a
real-network-shaped profile (each org its own peer): its own peer alone, its own CAs alone,
the other orgs' CA certificates and CRL paths only; identities minted there are its own org's,
issued by the same CA the channel names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.cli.org_profiles import org_folder, write_org_profiles
from gateway.core.ca import CAError, local_ca
from gateway.fabric import ConnectionProfile, ConnectionProfileError, from_connection
from network.devnet import pki
from network.fabric.profile import write_profile

ORGS = (HOSPITAL, SCHOOL, PHARMACY)
ENDPOINTS = {HOSPITAL: "127.0.0.1:7451", SCHOOL: "127.0.0.1:8451", PHARMACY: "127.0.0.1:9451"}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Path]]:
    state = tmp_path_factory.mktemp("state")
    pki.generate_network(state)
    network = write_profile(state, ENDPOINTS)
    root = tmp_path_factory.mktemp("orgs")
    return network, root, write_org_profiles(network, root, ORGS)


@pytest.mark.parametrize("org", ORGS)
def test_each_profile_names_its_own_peer_only(split: tuple[Path, Path, dict[str, Path]],
                                              org: str) -> None:
    network, _, profiles = split
    raw = json.loads(profiles[org].read_text())["organizations"]
    assert raw[org]["peerEndpoint"] == ENDPOINTS[org]
    for other in ORGS:
        if other != org:
            assert set(raw[other]) == {"mspId", "caCertPath", "crlPath"}
    profile = ConnectionProfile.load(profiles[org])
    shared = ConnectionProfile.load(network)
    # The other orgs' CA certificates are theirs (what the channel names), readable here.
    for other in ORGS:
        mine, theirs = profile.org(other).ca_cert_path, shared.org(other).ca_cert_path
        assert mine is not None and theirs is not None
        assert mine.read_bytes() == theirs.read_bytes()
    own = profile.org(org)
    assert own.tls_root_cert_path is not None and own.tls_root_cert_path.is_file()
    assert own.server_name_override == shared.org(org).server_name_override


@pytest.mark.parametrize("org", ORGS)
def test_each_folder_holds_its_own_orgs_ca_keys_only(
        split: tuple[Path, Path, dict[str, Path]], org: str) -> None:
    _, root, _ = split
    keys = sorted(p for p in org_folder(root, org).rglob("priv_sk"))
    assert keys, "the org's CA keys were not copied"
    domain = {HOSPITAL: "hospital", SCHOOL: "school", PHARMACY: "pharmacy"}[org]
    for key in keys:
        assert f"/{domain}." in str(key) and key.parent.name in ("ca", "tlsca"), key
    assert not list(org_folder(root, org).rglob("peers")), "a peer's keys were copied"


def test_minting_through_an_orgs_profile_stays_in_that_org(
        split: tuple[Path, Path, dict[str, Path]]) -> None:
    network, _, profiles = split
    ca = local_ca(profiles[PHARMACY])
    ca.add_identity(PHARMACY, "phil", {"mip.role": "pharmacist"})
    profile = ConnectionProfile.load(profiles[PHARMACY])
    assert "phil" in profile.org(PHARMACY).users
    cert = x509.load_pem_x509_certificate(
        profile.org(PHARMACY).users["phil"].cert_path.read_bytes())
    network_ca = ConnectionProfile.load(network).org(PHARMACY).ca_cert_path
    assert network_ca is not None
    # Issued by the Pharmacy's CA as the channel knows it (the peers validate by CA).
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(network_ca.read_bytes()))
    assert from_connection(profiles[PHARMACY], PHARMACY, "phil").endpoint == ENDPOINTS[PHARMACY]
    # The Pharmacy's folder has no other org's CA: nothing is minted there for another org,
    # and the shared profile and the other orgs' profiles did not gain the identity.
    with pytest.raises(CAError):
        ca.add_identity(HOSPITAL, "mallory", {"mip.role": "doctor"})
    assert "phil" not in ConnectionProfile.load(network).org(PHARMACY).users
    assert "phil" not in ConnectionProfile.load(profiles[HOSPITAL]).org(PHARMACY).users


def test_no_connection_as_another_org(split: tuple[Path, Path, dict[str, Path]]) -> None:
    _, _, profiles = split
    with pytest.raises(ConnectionProfileError):
        from_connection(profiles[HOSPITAL], SCHOOL, "User1")


def test_an_org_with_users_but_no_peer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({"organizations": {HOSPITAL: {
        "mspId": HOSPITAL, "users": {"u": {"certPath": "c", "keyPath": "k"}}}}}))
    with pytest.raises(ConnectionProfileError, match="peerEndpoint"):
        ConnectionProfile.load(path)
