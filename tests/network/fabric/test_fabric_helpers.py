"""network/fabric helpers and scripts/network.sh checks that need no Fabric binaries."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from fabric_network import NETWORK_SH, REPO_ROOT

from gateway.fabric import ConnectionProfile, from_connection
from network.devnet import pki
from network.devnet.orgs import DEFAULT_PEER_ORGS
from network.fabric import crypto, package, profile, render, version

CFG = REPO_ROOT / "network" / "fabric"
OU = x509.NameOID.ORGANIZATIONAL_UNIT_NAME
CONFIGTX_VALUES = {
    "CRYPTO": "/state/organizations",
    "ORDERER_HOST": "127.0.0.1",
    "ORDERER_PORT": "7050",
    "ORDERER1_PORT": "7054",
    "ORDERER2_PORT": "7056",
    "HOSPITAL_HOST": "127.0.0.1",
    "HOSPITAL_PORT": "7051",
    "SCHOOL_HOST": "127.0.0.1",
    "SCHOOL_PORT": "8051",
    "PHARMACY_HOST": "127.0.0.1",
    "PHARMACY_PORT": "9051",
    "BATCH_TIMEOUT": "20ms",
    "BATCH_SIZE": "100",
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fabric-state")
    crypto.generate(root)
    return root


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


# --------------------------------------------------------------------------- configs


def test_configtx_template_renders_mip_channel() -> None:
    text = render.render_text((CFG / "configtx.yaml").read_text(), CONFIGTX_VALUES)
    config = yaml.safe_load(text)
    channel = config["Profiles"]["MIPChannel"]
    app = channel["Application"]
    assert [o["ID"] for o in app["Organizations"]] == ["HospitalMSP", "SchoolMSP", "PharmacyMSP"]
    assert app["Capabilities"] == {"V2_5": True}
    assert channel["Capabilities"] == {"V2_0": True}
    assert channel["Orderer"]["Capabilities"] == {"V2_0": True}
    assert app["Policies"]["LifecycleEndorsement"]["Rule"] == "MAJORITY Endorsement"
    assert app["Policies"]["Endorsement"]["Rule"] == "MAJORITY Endorsement"
    orderer = channel["Orderer"]
    assert orderer["OrdererType"] == "etcdraft"
    assert orderer["BatchTimeout"] == "20ms"
    assert orderer["BatchSize"]["MaxMessageCount"] == 100
    consenter = orderer["EtcdRaft"]["Consenters"][0]
    assert consenter["ClientTLSCert"].startswith("/state/organizations/ordererOrganizations/")
    anchors = {o["ID"]: o["AnchorPeers"][0]["Port"] for o in app["Organizations"]}
    assert anchors == {"HospitalMSP": 7051, "SchoolMSP": 8051, "PharmacyMSP": 9051}


def test_configtx_three_orderer_profile() -> None:
    text = render.render_text((CFG / "configtx.yaml").read_text(), CONFIGTX_VALUES)
    config = yaml.safe_load(text)
    single, raft3 = config["Profiles"]["MIPChannel"], config["Profiles"]["MIPChannelRaft3"]
    consenters = raft3["Orderer"]["EtcdRaft"]["Consenters"]
    assert [c["Port"] for c in consenters] == [7050, 7054, 7056]
    for k, c in enumerate(consenters):
        node = f"orderers/orderer{k}.orderer.mip.local/tls/server.crt"
        assert c["ClientTLSCert"].endswith(node) and c["ServerTLSCert"].endswith(node)
    # Clients learn every orderer of the three-node channel, and only the one of the other.
    (org3,) = raft3["Orderer"]["Organizations"]
    assert org3["OrdererEndpoints"] == ["127.0.0.1:7050", "127.0.0.1:7054", "127.0.0.1:7056"]
    (org1,) = single["Orderer"]["Organizations"]
    assert org1["OrdererEndpoints"] == ["127.0.0.1:7050"]
    assert len(single["Orderer"]["EtcdRaft"]["Consenters"]) == 1
    # Everything else is the same channel.
    assert raft3["Application"] == single["Application"]
    assert {k: v for k, v in raft3["Orderer"].items() if k not in ("EtcdRaft", "Organizations")} \
        == {k: v for k, v in single["Orderer"].items() if k not in ("EtcdRaft", "Organizations")}


def test_orderer_nodes_crypto(tmp_path: Path) -> None:
    crypto.generate(tmp_path, orderers=3)
    base = tmp_path / "organizations/ordererOrganizations/orderer.mip.local"
    tlsca = pki.load_certificate(base / "tlsca/tlsca.orderer.mip.local-cert.pem")
    ca = pki.load_certificate(base / "ca/ca.orderer.mip.local-cert.pem")
    serials = set()
    for k in range(3):
        node = base / f"orderers/orderer{k}.orderer.mip.local"
        tls = x509.load_pem_x509_certificate((node / "tls/server.crt").read_bytes())
        assert tls.issuer == tlsca.subject
        sans = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert f"orderer{k}.orderer.mip.local" in sans.get_values_for_type(x509.DNSName)
        signcert = next((node / "msp/signcerts").iterdir())
        cert = x509.load_pem_x509_certificate(signcert.read_bytes())
        assert cert.issuer == ca.subject
        ous = [a.value for a in cert.subject.get_attributes_for_oid(OU)]
        assert ous == ["orderer"]  # NodeOU: the orderer's MSP classifies it as an orderer
        assert (node / "msp/config.yaml").read_text() == (base / "msp/config.yaml").read_text()
        assert stat.S_IMODE((node / "tls/server.key").stat().st_mode) == 0o600
        serials.add(tls.serial_number)
    assert len(serials) == 3
    # Re-running keeps what is there (the consenter certificates are in the genesis block).
    before = (base / "orderers/orderer1.orderer.mip.local/tls/server.crt").read_bytes()
    crypto.generate(tmp_path, orderers=3)
    assert (base / "orderers/orderer1.orderer.mip.local/tls/server.crt").read_bytes() == before


def test_render_refuses_missing_and_unsafe_values() -> None:
    template = (CFG / "configtx.yaml").read_text()
    values = dict(CONFIGTX_VALUES)
    del values["BATCH_TIMEOUT"]
    with pytest.raises(render.TemplateError, match="BATCH_TIMEOUT"):
        render.render_text(template, values)
    with pytest.raises(render.TemplateError, match="unsafe"):
        render.render_text(template, {**CONFIGTX_VALUES, "CRYPTO": "/x\nOrderer: {}"})


def test_peer_and_orderer_overlays() -> None:
    core = yaml.safe_load((CFG / "core.yaml").read_text())
    assert core["peer"]["tls"]["enabled"] is True
    assert core["peer"]["gateway"]["enabled"] is True
    assert core["peer"]["gossip"]["reconnectInterval"] == "2s"
    assert core["vm"]["endpoint"] == ""
    assert core["chaincode"]["externalBuilders"][0]["name"] == "ccaas_builder"
    orderer = yaml.safe_load((CFG / "orderer.yaml").read_text())
    assert orderer["General"]["TLS"]["Enabled"] is True
    assert orderer["General"]["BootstrapMethod"] == "none"
    assert orderer["Admin"]["TLS"]["Enabled"] is True
    assert orderer["ChannelParticipation"]["Enabled"] is True


# The sections and General keys that both supported orderers accept: Fabric 2.5.x and 3.1.x's
# orderer/common/localconfig TopLevel and General structs. The orderer decodes orderer.yaml
# strictly, so a key only one of them knows stops the other at start-up (Fabric 3 dropped
# Kafka: "'' has invalid keys: Kafka"; General.Backoff and Throttling are 3.x only).
ORDERER_SECTIONS = {
    "General", "FileLedger", "Debug", "Consensus", "Operations", "Metrics",
    "ChannelParticipation", "Admin",
}  # fmt: skip
ORDERER_GENERAL_KEYS = {
    "ListenAddress", "ListenPort", "TLS", "Cluster", "Keepalive", "ConnectionTimeout",
    "GenesisMethod", "GenesisFile", "BootstrapMethod", "BootstrapFile", "Profile",
    "LocalMSPDir", "LocalMSPID", "BCCSP", "Authentication", "MaxRecvMsgSize", "MaxSendMsgSize",
}  # fmt: skip


def test_orderer_yaml_has_only_keys_fabric_2_5_and_3_1_accept() -> None:
    orderer = yaml.safe_load((CFG / "orderer.yaml").read_text())
    assert set(orderer) <= ORDERER_SECTIONS, set(orderer) - ORDERER_SECTIONS
    assert "Kafka" not in orderer
    general = set(orderer["General"])
    assert general <= ORDERER_GENERAL_KEYS, general - ORDERER_GENERAL_KEYS


# --------------------------------------------------------------------------- packages


def test_ccaas_package_is_reproducible_and_carries_pem(state: Path, tmp_path: Path) -> None:
    tls = crypto.chaincode_tls(state, "HospitalMSP", ["127.0.0.1", "localhost"])
    first = package.build_package(tmp_path / "a.tgz", "mip_1", "127.0.0.1:7059", tls=tls)
    second = package.build_package(tmp_path / "b.tgz", "mip_1", "127.0.0.1:7059", tls=tls)
    data = (tmp_path / "a.tgz").read_bytes()
    assert first == second == f"mip_1:{hashlib.sha256(data).hexdigest()}"
    assert stat.S_IMODE((tmp_path / "a.tgz").stat().st_mode) == 0o600  # holds a TLS key
    outer = _members(data)
    assert json.loads(outer["metadata.json"]) == {"type": "ccaas", "label": "mip_1"}
    conn = json.loads(_members(outer["code.tar.gz"])["connection.json"])
    assert conn["address"] == "127.0.0.1:7059"
    assert conn["dial_timeout"] == "10s"
    assert conn["tls_required"] is True and conn["client_auth_required"] is True
    # PEM text, not file paths: the ccaas builder hands these strings to gRPC as they are.
    assert conn["root_cert"] == tls.ca_cert.read_text()
    assert conn["client_cert"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY-----" in conn["client_key"]
    other = package.build_package(tmp_path / "c.tgz", "mip_1", "127.0.0.1:8059", tls=tls)
    assert other != first  # a different server is a different package


def test_ccaas_package_without_tls(tmp_path: Path) -> None:
    package.build_package(tmp_path / "p.tgz", "mip_1", "127.0.0.1:9999", tls=None)
    outer = _members((tmp_path / "p.tgz").read_bytes())
    conn = json.loads(_members(outer["code.tar.gz"])["connection.json"])
    assert conn == {"address": "127.0.0.1:9999", "dial_timeout": "10s", "tls_required": False}


@pytest.mark.parametrize(
    ("label", "address", "timeout"),
    [("mip 1", "127.0.0.1:1", "10s"), ("mip_1", "nohost", "10s"), ("mip_1", "h:1", "ten")],
)
def test_bad_package_input(tmp_path: Path, label: str, address: str, timeout: str) -> None:
    with pytest.raises(package.PackageError):
        package.build_package(
            tmp_path / "x.tgz", label, address, tls=None, dial_timeout=timeout
        )


def test_chaincode_tls_certificates(state: Path) -> None:
    tls = crypto.chaincode_tls(state, "SchoolMSP", ["127.0.0.1", "localhost"])
    server = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    client = x509.load_pem_x509_certificate(tls.client_cert.read_bytes())
    usages = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usages
    again = crypto.chaincode_tls(state, "SchoolMSP", ["127.0.0.1"])
    assert again.server_cert.read_bytes() == tls.server_cert.read_bytes()  # kept, not re-issued
    with pytest.raises(crypto.UnknownOrgError):
        crypto.chaincode_tls(state, "OrdererMSP", ["127.0.0.1"])


# --------------------------------------------------------------------------- connection.json


def test_profile_gives_each_org_its_own_peer(state: Path) -> None:
    endpoints = {"HospitalMSP": "127.0.0.1:7051", "SchoolMSP": "127.0.0.1:8051",
                 "PharmacyMSP": "127.0.0.1:9051"}
    path = profile.write_profile(state, endpoints)
    loaded = ConnectionProfile.load(path)
    assert loaded.network == "fabric"
    for org in DEFAULT_PEER_ORGS:
        entry = loaded.org(org.msp_id)
        assert entry.peer_endpoint == endpoints[org.msp_id]
        assert entry.tls_root_cert_path == pki.tlsca_cert_path(state, org).resolve()
        assert entry.server_name_override == f"peer0.{org.domain}"
        # The org's MSP root: other orgs' gateways check its gateway identity against it.
        assert entry.ca_cert_path == pki.ca_cert_path(state, org).resolve()
        assert entry.ca_cert_path.is_file()
        assert entry.crl_path == pki.crl_path(state, org).resolve()
    # Same keys and relative paths as devnet's file, so clients switch with MIP_CONNECTION only.
    raw = json.loads(path.read_text())
    assert not Path(raw["organizations"]["SchoolMSP"]["tlsRootCertPath"]).is_absolute()
    settings = from_connection(path, "PharmacyMSP", "User1")
    assert settings.endpoint == "127.0.0.1:9051"
    assert settings.identity.msp_id == "PharmacyMSP"
    with pytest.raises(profile.ProfileError):
        profile.write_profile(state, {**endpoints, "SchoolMSP": "8051"})


# --------------------------------------------------------------------------- network.sh


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NETWORK_SH), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_missing_binaries_named_in_one_message(tmp_path: Path) -> None:
    env = {**os.environ, "FABRIC_BIN": str(tmp_path / "empty"), "MIP_FABRIC_DIR": str(tmp_path)}
    result = _run(["up"], env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "peer orderer configtxgen osnadmin" in lines[0]
    assert str(tmp_path / "empty") in lines[0]
    path_env = {k: v for k, v in os.environ.items() if k != "FABRIC_BIN"}
    path_env.update(PATH="/usr/bin:/bin", MIP_FABRIC_DIR=str(tmp_path))
    result = _run(["deploy"], path_env)
    assert result.returncode != 0 and "in PATH: peer" in result.stderr


def test_clean_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    env = {**os.environ, "MIP_FABRIC_DIR": str(precious)}
    result = _run(["clean"], env)
    assert result.returncode != 0 and "not removing" in result.stderr
    assert (precious / "keep.txt").read_text() == "mine"
    status = _run(["status"], env)
    assert status.returncode == 0 and "no processes started" in status.stdout


def test_usage_on_unknown_command() -> None:
    result = _run(["launch"], dict(os.environ))
    assert result.returncode == 2
    assert "network.sh up" in result.stdout


def test_settings_are_checked_before_anything_runs(tmp_path: Path) -> None:
    base = {**os.environ, "MIP_FABRIC_DIR": str(tmp_path / "s"), "FABRIC_BIN": "/nonexistent"}
    result = _run(["up"], {**base, "MIP_ORDERERS": "2"})
    assert result.returncode != 0 and "MIP_ORDERERS must be 1 or 3" in result.stderr
    result = _run(["deploy"], {**base, "MIP_CHAINCODE_RUNTIME": "java"})
    assert result.returncode == 2 and "python or node" in result.stderr
    result = _run(["deploy"], {**base, "MIP_CHAINCODE_NAME": "bad name"})
    assert result.returncode == 2 and "invalid chaincode name" in result.stderr
    assert not (tmp_path / "s").exists()


def test_orderer_count_of_a_state_dir_is_fixed(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / ".mip-fabric-state").touch()
    (state / "orderers").write_text("1\n")
    env = {**os.environ, "MIP_FABRIC_DIR": str(state), "MIP_ORDERERS": "3"}
    result = _run(["up"], env)
    assert result.returncode != 0 and "set up with 1 orderer(s)" in result.stderr
    # Everything but `up` follows the record: status and clean still work.
    status = _run(["status"], env)
    assert status.returncode == 0 and "(1 orderer(s))" in status.stdout
    assert _run(["clean"], env).returncode == 0 and not state.exists()


# --------------------------------------------------------------------------- Fabric releases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("peer:\n Version: 2.5.16\n Commit SHA: f871cf92a\n", (2, 5, 16)),
        ("orderer:\n Version: v3.1.5\n", (3, 1, 5)),
    ],
)
def test_fabric_version_parsed(text: str, expected: tuple[int, int, int]) -> None:
    assert version.parse_version(text) == expected


@pytest.mark.parametrize("text", ["", "peer:\n Version: 2.4.9\n", " Version: 4.0.0\n", "oops"])
def test_unsupported_fabric_version_refused(text: str) -> None:
    with pytest.raises(version.FabricVersionError):
        version.parse_version(text)


def test_peer_config_per_release() -> None:
    text = (CFG / "core.yaml").read_text()
    assert version.peer_core_yaml(text, 2) == text
    filters = yaml.safe_load(text)["peer"]["handlers"]["authFilters"]
    # A 2.5 peer panics on a filter it does not know: the shared file must not list 3.x's.
    assert [f["name"] for f in filters] == ["DefaultAuth", "ExpirationCheck"]
    v3 = yaml.safe_load(version.peer_core_yaml(text, 3))
    names = [f["name"] for f in v3["peer"]["handlers"]["authFilters"]]
    assert names == ["DefaultAuth", "ExpirationCheck", "TimeWindowCheck"]
    # Everything else is the same config.
    v3["peer"]["handlers"]["authFilters"] = filters
    assert v3 == yaml.safe_load(text)
    with pytest.raises(version.FabricVersionError):
        version.peer_core_yaml(text.replace("ExpirationCheck", "Other"), 3)


def _fake_fabric(bin_dir: Path, peer: str, orderer: str) -> dict[str, str]:
    """Stand-in binaries that only answer `version`, and a stand-in ccaas builder."""
    bin_dir.mkdir()
    builders = bin_dir / "builders"
    (builders / "bin").mkdir(parents=True)
    scripts = {"peer": f"peer:\n Version: {peer}", "orderer": f"orderer:\n Version: {orderer}",
               "configtxgen": "", "osnadmin": ""}  # fmt: skip
    for name, out in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\nprintf '{out}\\n'\n")
    for name in ("detect", "build", "release"):
        (builders / "bin" / name).write_text("#!/bin/sh\nexit 1\n")
    for f in [*bin_dir.iterdir(), *(builders / "bin").iterdir()]:
        if f.is_file():
            f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return {"FABRIC_BIN": str(bin_dir), "FABRIC_BUILDERS": str(builders)}


def test_up_refuses_mixed_or_changed_fabric_releases(tmp_path: Path) -> None:
    state = tmp_path / "s"
    env = {**os.environ, "MIP_FABRIC_DIR": str(state), "MIP_PYTHON": sys.executable,
           **_fake_fabric(tmp_path / "mixed", "3.1.5", "2.5.16")}  # fmt: skip
    result = _run(["up"], env)
    assert result.returncode != 0
    assert "peer is Fabric 3.1.5 but orderer is Fabric 2.5.16" in result.stderr
    assert not (state / "organizations").exists()
    # A state dir set up by 2.5 is not handed to 3.x binaries (nor the other way round).
    (state / "fabric-version").write_text("2.5.16\n")
    env.update(_fake_fabric(tmp_path / "v3", "3.1.5", "3.1.5"))
    result = _run(["up"], env)
    assert result.returncode != 0 and "set up with Fabric 2.5.16, not 3.1.5" in result.stderr
    assert not (state / "organizations").exists()
    # The unsupported release is named.
    env.update(_fake_fabric(tmp_path / "v2", "2.2.0", "2.2.0"))
    result = _run(["up"], env)
    assert result.returncode != 0 and "Fabric 2.2.0 is too old" in result.stderr
