"""devnet PKI: cryptogen layout, certificate chains, hf.Attrs, connection.json."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.msp import identities_pb2

from network.devnet import pki
from network.devnet.orgs import DEFAULT_PEER_ORGS, ORDERER_ORG, OrgSpec

HOSPITAL = DEFAULT_PEER_ORGS[0]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("pki")
    pki.generate_network(data_dir)
    return data_dir


def _msp_files(msp: Path, domain: str, cert_name: str) -> list[Path]:
    return [
        msp / "cacerts" / f"ca.{domain}-cert.pem",
        msp / "tlscacerts" / f"tlsca.{domain}-cert.pem",
        msp / "config.yaml",
        msp / "keystore" / "priv_sk",
        msp / "signcerts" / f"{cert_name}-cert.pem",
    ]


def _expected_layout(data_dir: Path, org: OrgSpec, *, peer_org: bool) -> list[Path]:
    kind = "peerOrganizations" if peer_org else "ordererOrganizations"
    node = "peer" if peer_org else "orderer"
    base = data_dir / "organizations" / kind / org.domain
    d = org.domain
    files = [
        base / "ca" / f"ca.{d}-cert.pem",
        base / "ca" / "priv_sk",
        base / "tlsca" / f"tlsca.{d}-cert.pem",
        base / "tlsca" / "priv_sk",
        base / "msp" / "cacerts" / f"ca.{d}-cert.pem",
        base / "msp" / "tlscacerts" / f"tlsca.{d}-cert.pem",
        base / "msp" / "config.yaml",
    ]
    host = f"{node}0.{d}"
    node_dir = base / f"{node}s" / host
    files += _msp_files(node_dir / "msp", d, host)
    files += [node_dir / "tls" / n for n in ("ca.crt", "server.crt", "server.key")]
    for user in ("Admin", "User1"):
        user_dir = base / "users" / f"{user}@{d}"
        files += _msp_files(user_dir / "msp", d, f"{user}@{d}")
        files += [user_dir / "tls" / n for n in ("ca.crt", "client.crt", "client.key")]
    return files


def test_layout_matches_ledger_doc(net: Path) -> None:
    for org in DEFAULT_PEER_ORGS:
        for path in _expected_layout(net, org, peer_org=True):
            assert path.is_file(), path
    for path in _expected_layout(net, ORDERER_ORG, peer_org=False):
        assert path.is_file(), path


def test_node_ou_config_maps_every_role_to_the_ca(net: Path) -> None:
    msp = net / "organizations/peerOrganizations/hospital.mip.local/msp"
    config = yaml.safe_load((msp / "config.yaml").read_text())
    assert config["NodeOUs"]["Enable"] is True
    for role in ("client", "peer", "admin", "orderer"):
        entry = config["NodeOUs"][f"{role.capitalize()}OUIdentifier"]
        assert entry["OrganizationalUnitIdentifier"] == role
        assert (msp / entry["Certificate"]).read_bytes() == (
            net
            / "organizations/peerOrganizations/hospital.mip.local/ca"
            / "ca.hospital.mip.local-cert.pem"
        ).read_bytes()


def test_keys_are_owner_only(net: Path) -> None:
    keys = [*net.rglob("priv_sk"), *net.rglob("*.key")]
    assert len(keys) > 20
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def _ca(net: Path, org: OrgSpec = HOSPITAL, tls: bool = False) -> x509.Certificate:
    path = pki.tlsca_cert_path(net, org) if tls else pki.ca_cert_path(net, org)
    return pki.load_certificate(path)


def test_ca_certificates_have_ca_extensions(net: Path) -> None:
    for tls in (False, True):
        ca = _ca(net, tls=tls)
        assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(ca.public_key()).digest
        ca.verify_directly_issued_by(ca)  # self-signed
        ca_key = ca.public_key()
        assert isinstance(ca_key, ec.EllipticCurvePublicKey)
        assert ca_key.curve.name == "secp256r1"
        assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)


@pytest.mark.parametrize(
    ("relative", "ou"),
    [
        ("peers/peer0.hospital.mip.local/msp/signcerts/peer0.hospital.mip.local-cert.pem", "peer"),
        ("users/Admin@hospital.mip.local/msp/signcerts/Admin@hospital.mip.local-cert.pem", "admin"),
        (
            "users/User1@hospital.mip.local/msp/signcerts/User1@hospital.mip.local-cert.pem",
            "client",
        ),
    ],
)
def test_signing_certs_chain_to_the_ca_with_node_ou(net: Path, relative: str, ou: str) -> None:
    ca = _ca(net)
    cert = pki.load_certificate(
        net / "organizations/peerOrganizations/hospital.mip.local" / relative
    )
    cert.verify_directly_issued_by(ca)
    ous = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == [ou]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_tls_certs_chain_to_the_tls_ca_with_sans(net: Path) -> None:
    base = net / "organizations/peerOrganizations/hospital.mip.local"
    tls_ca = _ca(net, tls=True)
    server = pki.load_certificate(base / "peers/peer0.hospital.mip.local/tls/server.crt")
    server.verify_directly_issued_by(tls_ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "peer0.hospital.mip.local" in sans.get_values_for_type(x509.DNSName)
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    client = pki.load_certificate(base / "users/User1@hospital.mip.local/tls/client.crt")
    client.verify_directly_issued_by(tls_ca)
    with pytest.raises(ValueError):  # the TLS CA and the signing CA are different keys
        client.verify_directly_issued_by(_ca(net))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_openssl_verifies_the_chains(net: Path) -> None:
    base = net / "organizations/peerOrganizations/school.mip.local"
    for ca, leaf in [
        (
            base / "ca/ca.school.mip.local-cert.pem",
            base / "users/User1@school.mip.local/msp/signcerts/User1@school.mip.local-cert.pem",
        ),
        (
            base / "tlsca/tlsca.school.mip.local-cert.pem",
            base / "peers/peer0.school.mip.local/tls/server.crt",
        ),
    ]:
        out = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca), str(leaf)], capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr


def test_certificate_signatures_are_low_s(net: Path) -> None:
    # cryptogen and Fabric CA sign through BCCSP, which always emits low-S
    certs = [*net.rglob("*.pem"), *net.rglob("*.crt")]
    assert len(certs) > 40
    for path in certs:
        _, s = decode_dss_signature(pki.load_certificate(path).signature)
        assert s <= pki.curve_order() // 2, path


def test_generate_is_idempotent(tmp_path: Path) -> None:
    pki.generate_org(tmp_path, HOSPITAL)
    ca_before = pki.ca_cert_path(tmp_path, HOSPITAL).read_bytes()
    peer_cert = next(tmp_path.rglob("peer0.hospital.mip.local-cert.pem"))
    peer_before = peer_cert.read_bytes()
    # a missing piece is re-created, everything else is kept
    users = tmp_path / "organizations/peerOrganizations/hospital.mip.local/users"
    (users / "User1@hospital.mip.local/tls/client.crt").unlink()
    pki.generate_org(tmp_path, HOSPITAL)
    assert pki.ca_cert_path(tmp_path, HOSPITAL).read_bytes() == ca_before
    assert peer_cert.read_bytes() == peer_before
    assert next(tmp_path.rglob("User1@hospital.mip.local/tls/client.crt")).is_file()


def _hf_attrs(cert: x509.Certificate) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(pki.HF_ATTRS_OID)


def test_add_identity_embeds_fabric_ca_attributes(net: Path) -> None:
    msp = pki.add_identity(
        net, "HospitalMSP", "doctor7", {"mip.role": "doctor", "mip.ward": "A&E <3>"}
    )
    assert (
        msp
        == net
        / "organizations/peerOrganizations/hospital.mip.local/users/doctor7@hospital.mip.local/msp"
    )
    cert = pki.load_certificate(msp / "signcerts" / "doctor7@hospital.mip.local-cert.pem")
    cert.verify_directly_issued_by(_ca(net))
    ext = _hf_attrs(cert)
    assert ext.critical is False
    assert isinstance(ext.value, x509.UnrecognizedExtension)
    raw = ext.value.value
    assert json.loads(raw) == {
        "attrs": {
            "hf.Affiliation": "",
            "hf.EnrollmentID": "doctor7",
            "hf.Type": "client",
            "mip.role": "doctor",
            "mip.ward": "A&E <3>",
        }
    }
    # Go's json.Marshal: sorted keys, no spaces, HTML characters escaped
    assert raw == (
        b'{"attrs":{"hf.Affiliation":"","hf.EnrollmentID":"doctor7","hf.Type":"client",'
        b'"mip.role":"doctor","mip.ward":"A\\u0026E \\u003c3\\u003e"}}'
    )
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "doctor7"
    key_mode = stat.S_IMODE((msp / "keystore" / "priv_sk").stat().st_mode)
    assert key_mode == 0o600
    assert (msp.parent / "tls" / "client.crt").is_file()


def test_add_identity_refuses_duplicates_and_bad_input(net: Path) -> None:
    pki.add_identity(net, "SchoolMSP", "teacher1", {"mip.role": "teacher"})
    with pytest.raises(pki.IdentityExistsError):
        pki.add_identity(net, "SchoolMSP", "teacher1")
    with pytest.raises(pki.IdentityExistsError):
        pki.add_identity(net, "SchoolMSP", "User1")  # cryptogen's users count too
    for bad in ("hf.Type", "hf.EnrollmentID", "1role", "a b", "", "x" * 80, "a/b"):
        with pytest.raises(pki.AttributeNameError):
            pki.add_identity(net, "SchoolMSP", "fresh", {bad: "v"})
    with pytest.raises(pki.AttributeNameError):
        pki.add_identity(net, "SchoolMSP", "fresh", {"mip.role": 5})  # type: ignore[dict-item]
    with pytest.raises(pki.UnknownOrgError):
        pki.add_identity(net, "NopeMSP", "fresh")
    with pytest.raises(pki.PKIError):
        pki.add_identity(net, "SchoolMSP", "fresh", ou="superuser")
    with pytest.raises(pki.PKIError):
        pki.add_identity(net, "SchoolMSP", "../escape")
    assert not list(
        (net / "organizations/peerOrganizations/school.mip.local/users").glob("*fresh*")
    )
    assert not list((net / "organizations/peerOrganizations/school.mip.local/users").glob(".*"))


def test_add_identity_never_mints_a_new_ca(tmp_path: Path) -> None:
    pki.generate_org(tmp_path, HOSPITAL)
    (pki.org_dir(tmp_path, HOSPITAL) / "ca" / "priv_sk").unlink()
    with pytest.raises(pki.UnknownOrgError):
        pki.add_identity(tmp_path, "HospitalMSP", "nobody")
    assert not (pki.org_dir(tmp_path, HOSPITAL) / "ca" / "priv_sk").exists()
    with pytest.raises(pki.PKIError, match="half of a CA"):
        pki.generate_org(tmp_path, HOSPITAL)
    assert not (pki.org_dir(tmp_path, HOSPITAL) / "ca" / "priv_sk").exists()


def test_add_identity_works_without_the_index(tmp_path: Path) -> None:
    # e.g. material written by Fabric's own cryptogen for MIP's orgs
    pki.generate_org(tmp_path, HOSPITAL)
    (tmp_path / "organizations" / "orgs.json").unlink()
    msp = pki.add_identity(tmp_path, "HospitalMSP", "nurse1", {"mip.role": "nurse"})
    assert msp.parent.name == "nurse1@hospital.mip.local"
    with pytest.raises(pki.UnknownOrgError):
        pki.add_identity(tmp_path, "SchoolMSP", "teacher9")


def test_sign_is_low_s_and_verifies(net: Path) -> None:
    user = pki.msp_signing_identity(
        net
        / "organizations/peerOrganizations/hospital.mip.local/users/User1@hospital.mip.local/msp",
        "HospitalMSP",
    )
    n = pki.curve_order()
    for i in range(64):  # about half of raw ECDSA signatures are high-S
        data = f"message {i}".encode()
        signature = user.sign(data)
        _, s = decode_dss_signature(signature)
        assert s <= n // 2
        public_key = user.certificate.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    sid = identities_pb2.SerializedIdentity.FromString(user.serialized)
    assert sid.mspid == "HospitalMSP"
    assert sid.id_bytes == user.cert_pem
    assert b"BEGIN CERTIFICATE" in sid.id_bytes


def test_msp_signing_identity_refuses_mismatched_key(tmp_path: Path, net: Path) -> None:
    base = net / "organizations/peerOrganizations/hospital.mip.local/users"
    msp = tmp_path / "msp"
    shutil.copytree(base / "User1@hospital.mip.local/msp", msp)
    shutil.copy(base / "Admin@hospital.mip.local/msp/keystore/priv_sk", msp / "keystore/priv_sk")
    with pytest.raises(pki.PKIError):
        pki.msp_signing_identity(msp, "HospitalMSP")


def test_issue_tls_server_cert(net: Path, tmp_path: Path) -> None:
    hosts = ["127.0.0.1", "localhost", "peer0.hospital.mip.local", "peer0.school.mip.local", "::1"]
    cert_path, key_path = pki.issue_tls_server_cert(net, HOSPITAL, hosts, tmp_path / "tls")
    cert = pki.load_certificate(cert_path)
    cert.verify_directly_issued_by(_ca(net, tls=True))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "peer0.hospital.mip.local",
        "peer0.school.mip.local",
    }
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = pki.load_private_key(key_path)
    cert_key = cert.public_key()
    assert isinstance(cert_key, ec.EllipticCurvePublicKey)
    assert key.public_key().public_numbers() == cert_key.public_numbers()
    with pytest.raises(pki.PKIError):
        pki.issue_tls_server_cert(net, HOSPITAL, [], tmp_path / "none")
    with pytest.raises(pki.UnknownOrgError):
        pki.issue_tls_server_cert(tmp_path / "empty", HOSPITAL, ["localhost"], tmp_path / "x")


def test_connection_profile_paths_resolve(tmp_path: Path) -> None:
    pki.generate_network(tmp_path)
    cert, _ = pki.issue_tls_server_cert(
        tmp_path, HOSPITAL, ["127.0.0.1", "localhost"], tmp_path / "gateway-tls"
    )
    tls_root = pki.tlsca_cert_path(tmp_path, HOSPITAL)
    path = pki.write_connection_profile(
        tmp_path,
        endpoint="127.0.0.1:7051",
        channel="mipchannel",
        chaincode="mip",
        tls_root_cert=tls_root,
        server_name="peer0.hospital.mip.local",
    )
    assert path == tmp_path / "connection.json"
    profile = json.loads(path.read_text())
    assert (profile["network"], profile["channel"], profile["chaincode"]) == (
        "devnet",
        "mipchannel",
        "mip",
    )
    assert set(profile["organizations"]) == {"HospitalMSP", "SchoolMSP", "PharmacyMSP"}
    for msp_id, org in profile["organizations"].items():
        assert org["mspId"] == msp_id
        assert org["peerEndpoint"] == "127.0.0.1:7051"
        assert org["serverNameOverride"] == "peer0.hospital.mip.local"
        assert not Path(org["tlsRootCertPath"]).is_absolute()
        assert (tmp_path / org["tlsRootCertPath"]).read_bytes() == tls_root.read_bytes()
        assert list(org["users"]) == ["User1", "Admin"]
        # The org's MSP root (its identities chain to it) and its CRL's place, both relative.
        assert not Path(org["caCertPath"]).is_absolute()
        assert not Path(org["crlPath"]).is_absolute()
        root = pki.load_certificate(tmp_path / org["caCertPath"])
        user1 = pki.load_certificate(tmp_path / org["users"]["User1"]["certPath"])
        user1.verify_directly_issued_by(root)
        assert (tmp_path / org["crlPath"]).parent.name == "crls"
        for user in org["users"].values():
            assert set(user) == {"certPath", "keyPath", "tlsCertPath", "tlsKeyPath"}
            for rel in user.values():
                assert not Path(rel).is_absolute()
                assert (tmp_path / rel).is_file(), rel
    # the Gateway's server certificate validates against the named TLS root
    pki.load_certificate(cert).verify_directly_issued_by(pki.load_certificate(tls_root))

    # identities added later join the profile
    pki.add_identity(tmp_path, "PharmacyMSP", "pharm1", {"mip.role": "pharmacist"})
    profile = json.loads(path.read_text())
    entry = profile["organizations"]["PharmacyMSP"]["users"]["pharm1"]
    cert_file = tmp_path / entry["certPath"]
    assert cert_file.name == "pharm1@pharmacy.mip.local-cert.pem"
    assert all((tmp_path / rel).is_file() for rel in entry.values())
    # and a rewrite of the profile keeps them
    pki.write_connection_profile(
        tmp_path,
        endpoint="127.0.0.1:7051",
        channel="mipchannel",
        chaincode="mip",
        tls_root_cert=tls_root,
        server_name="peer0.hospital.mip.local",
    )
    users = json.loads(path.read_text())["organizations"]["PharmacyMSP"]["users"]
    assert list(users) == ["User1", "Admin", "pharm1"]


def test_concurrent_enrolments_all_reach_the_profile(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    pki.generate_network(tmp_path)
    pki.write_connection_profile(
        tmp_path,
        endpoint="127.0.0.1:7051",
        channel="mipchannel",
        chaincode="mip",
        tls_root_cert=pki.tlsca_cert_path(tmp_path, HOSPITAL),
        server_name="peer0.hospital.mip.local",
    )
    names = [f"patient{i}" for i in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda n: pki.add_identity(tmp_path, "HospitalMSP", n), names))
    users = json.loads((tmp_path / "connection.json").read_text())["organizations"]["HospitalMSP"]
    assert set(names) <= set(users["users"])
