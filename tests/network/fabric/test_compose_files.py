"""Structure of the multi-host compose files and the chaincode image (network/fabric/compose/).

No Docker engine runs in CI, so these files are never started there; this checks what can be
checked without one: they parse, use Fabric's official 2.5 images, mount the project's config,
collections file and the image's ccaas builder, set only settings Fabric actually reads (an
environment override for a key absent from core.yaml / orderer.yaml is silently ignored), and
give the chaincode server settings that `chaincode.shim.config` accepts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaincode.protocol.deployment import CONTRACT_SPEC
from chaincode.shim.config import ServerConfig, load_contracts

REPO = Path(__file__).resolve().parents[3]
FABRIC_DIR = REPO / "network" / "fabric"
COMPOSE_DIR = FABRIC_DIR / "compose"
PEER_COMPOSE = COMPOSE_DIR / "compose.yaml"
ORDERER_COMPOSE = COMPOSE_DIR / "compose-orderer.yaml"
DOCKERFILE = COMPOSE_DIR / "Dockerfile.chaincode"
CCAAS_BUILDER = "/opt/hyperledger/ccaas_builder"  # where the official peer image ships it

# What an operator of the Hospital host would set; the rest takes the files' defaults.
HOSPITAL_ENV = {
    "MIP_ORG_MSP": "HospitalMSP",
    "MIP_ORG_DOMAIN": "hospital.mip.local",
    "MIP_PEER_HOST": "peer0.hospital.example.org",
    "MIP_CRYPTO_DIR": "/srv/mip/organizations",
    "MIP_CHAINCODE_ID": "mip_1:" + "ab" * 32,
    "MIP_ORDERER_HOST": "orderer1.hospital.example.org",
}

# Innermost ${NAME}, ${NAME:-default} or ${NAME:?message} (no braces inside: nesting resolves
# from the inside out).
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^${}]*))?\}")


class UnsetVariableError(KeyError):
    """A ${NAME:?message} whose variable is not set."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution for the forms these files use."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if value:
            return value
        if op == "?":
            raise UnsetVariableError(f"{name}: {arg}")
        return arg if op == "-" else ""

    while True:
        new = _VAR.sub(one, text)
        if new == text:
            return new
        text = new


def load(path: Path, env: dict[str, str]) -> dict[str, Any]:
    doc = yaml.safe_load(interpolate(path.read_text(encoding="utf-8"), env))
    assert isinstance(doc, dict)
    return doc


def env_keys_in(config: Path, prefix: str) -> set[str]:
    """Every PREFIX_A_B_C that Fabric's viper would map onto a key of the config file."""
    keys: set[str] = set()

    def walk(node: object, path: list[str]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key).upper()])
        if path:
            keys.add("_".join([prefix, *path]))

    walk(yaml.safe_load(config.read_text(encoding="utf-8")), [])
    return keys


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative host paths resolved against the compose dir)."""
    out: dict[str, str] = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        if source.startswith("."):
            source = str((COMPOSE_DIR / source).resolve())
        out[target] = source
    return out


@pytest.fixture
def peer_host() -> dict[str, Any]:
    return load(PEER_COMPOSE, HOSPITAL_ENV)


@pytest.fixture
def orderer_host() -> dict[str, Any]:
    return load(ORDERER_COMPOSE, HOSPITAL_ENV)


def test_official_fabric_images_with_25_tag(
    peer_host: dict[str, Any], orderer_host: dict[str, Any]
) -> None:
    services = peer_host["services"]
    assert services["peer"]["image"] == "hyperledger/fabric-peer:2.5"
    assert services["admin"]["image"] == "hyperledger/fabric-tools:2.5"
    assert orderer_host["services"]["orderer"]["image"] == "hyperledger/fabric-orderer:2.5"
    # The chaincode image is built from the project, not pulled.
    build = services["chaincode"]["build"]
    assert (COMPOSE_DIR / build["context"]).resolve() == REPO
    assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE


def test_required_settings_are_enforced() -> None:
    for name in ("MIP_ORG_DOMAIN", "MIP_ORG_MSP", "MIP_PEER_HOST", "MIP_CHAINCODE_ID"):
        env = {k: v for k, v in HOSPITAL_ENV.items() if k != name}
        with pytest.raises(UnsetVariableError, match=name):
            load(PEER_COMPOSE, env)


# Read by the peer with viper.GetString, which honours the environment although core.yaml
# carries them only as comments.
PEER_COMMENTED_KEYS = {
    "CORE_PEER_CHAINCODELISTENADDRESS": "chaincodeListenAddress",
    "CORE_PEER_CHAINCODEADDRESS": "chaincodeAddress",
}


def test_peer_settings_are_keys_of_core_yaml(peer_host: dict[str, Any]) -> None:
    core_text = (FABRIC_DIR / "core.yaml").read_text(encoding="utf-8")
    for key in PEER_COMMENTED_KEYS.values():
        assert f"# {key}:" in core_text
    known = env_keys_in(FABRIC_DIR / "core.yaml", "CORE") | set(PEER_COMMENTED_KEYS)
    for service in ("peer", "admin"):
        env = peer_host["services"][service]["environment"]
        unknown = sorted(k for k in env if k.startswith("CORE_") and k not in known)
        assert not unknown, f"{service}: not in core.yaml, Fabric would ignore: {unknown}"


def test_peer_is_tls_gateway_leveldb_with_external_gossip(peer_host: dict[str, Any]) -> None:
    env = peer_host["services"]["peer"]["environment"]
    assert env["CORE_PEER_TLS_ENABLED"] == "true"
    assert env["CORE_PEER_GATEWAY_ENABLED"] == "true"
    assert env["CORE_LEDGER_STATE_STATEDATABASE"] == "goleveldb"
    assert env["CORE_PEER_GOSSIP_EXTERNALENDPOINT"] == "peer0.hospital.example.org:7051"
    assert env["CORE_PEER_LOCALMSPID"] == "HospitalMSP"
    assert env["CORE_VM_ENDPOINT"] == ""
    assert "couchdb" not in peer_host["services"]


def test_ccaas_builder_is_the_image_one_and_core_yaml_agrees(peer_host: dict[str, Any]) -> None:
    builders = yaml.safe_load(
        peer_host["services"]["peer"]["environment"]["CORE_CHAINCODE_EXTERNALBUILDERS"]
    )
    assert builders == [
        {
            "name": "ccaas_builder",
            "path": CCAAS_BUILDER,
            "propagateEnvironment": ["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"],
        }
    ]
    core = yaml.safe_load((FABRIC_DIR / "core.yaml").read_text(encoding="utf-8"))
    assert core["chaincode"]["externalBuilders"] == builders


def test_peer_mounts_config_crypto_and_ledger(peer_host: dict[str, Any]) -> None:
    peer = mounts(peer_host["services"]["peer"])
    assert peer["/etc/hyperledger/fabric/core.yaml"] == str(FABRIC_DIR / "core.yaml")
    assert peer["/etc/hyperledger/peer"] == (
        "/srv/mip/organizations/peerOrganizations/hospital.mip.local/peers/peer0.hospital.mip.local"
    )
    assert peer["/var/hyperledger/production"] == "peer-data"
    assert "peer-data" in peer_host["volumes"]
    # The builder is the image's own: nothing may be mounted over it.
    assert not any(target.startswith(CCAAS_BUILDER) for target in peer)


def test_admin_mounts_the_collections_file(peer_host: dict[str, Any]) -> None:
    admin = peer_host["services"]["admin"]
    paths = mounts(admin)
    assert paths["/etc/mip/collections_config.json"] == str(FABRIC_DIR / "collections_config.json")
    assert admin["environment"]["MIP_COLLECTIONS"] == "/etc/mip/collections_config.json"
    assert admin["profiles"] == ["admin"]  # not started by a plain `up`


def test_chaincode_server_settings_are_accepted_by_the_shim(
    peer_host: dict[str, Any], tmp_path: Path
) -> None:
    service = peer_host["services"]["chaincode"]
    env = dict(service["environment"])
    assert env["CHAINCODE_CONTRACT"] == CONTRACT_SPEC
    assert env["CHAINCODE_TLS_DISABLED"] == "false"
    assert "ports" not in service  # only the org's own peer reaches it
    assert service["networks"]["org"]["aliases"] == ["mip-chaincode"]
    assert peer_host["networks"]["org"]["name"] == "mip-hospital.mip.local"
    # Every file setting must be under a mount; put stand-in files where the mounts point.
    paths = mounts(service)
    for setting in ("CHAINCODE_TLS_CERT", "CHAINCODE_TLS_KEY", "CHAINCODE_CLIENT_CA_CERT"):
        container_path = env[setting]
        assert any(container_path.startswith(target + "/") for target in paths), setting
        local = tmp_path / container_path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(setting.encode())
        env[setting] = str(local)
    config = ServerConfig.from_env(env)
    assert config.chaincode_id == HOSPITAL_ENV["MIP_CHAINCODE_ID"]
    assert config.address == "0.0.0.0:7059"
    assert config.tls is not None and config.tls.client_ca == b"CHAINCODE_CLIENT_CA_CERT"
    assert len(load_contracts(config.contract_spec)) == len(CONTRACT_SPEC.split(","))
    # The TLS folder defaults to where `python -m network.fabric package` writes the pairs.
    assert (
        paths["/etc/mip/chaincode/tls"]
        == "/srv/mip/organizations/../chaincode/hospital.mip.local/tls"
    )


def test_orderer_settings_are_keys_of_orderer_yaml(orderer_host: dict[str, Any]) -> None:
    known = env_keys_in(FABRIC_DIR / "orderer.yaml", "ORDERER")
    env = orderer_host["services"]["orderer"]["environment"]
    unknown = sorted(k for k in env if k.startswith("ORDERER_") and k not in known)
    assert not unknown, f"not in orderer.yaml, Fabric would ignore: {unknown}"


def test_orderer_participation_api_with_mutual_tls(orderer_host: dict[str, Any]) -> None:
    orderer = orderer_host["services"]["orderer"]
    env = orderer["environment"]
    assert env["ORDERER_GENERAL_BOOTSTRAPMETHOD"] == "none"
    assert env["ORDERER_CHANNELPARTICIPATION_ENABLED"] == "true"
    assert env["ORDERER_GENERAL_TLS_ENABLED"] == "true"
    assert env["ORDERER_ADMIN_TLS_ENABLED"] == "true"
    assert env["ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED"] == "true"
    assert env["ORDERER_ADMIN_LISTENADDRESS"] == "0.0.0.0:7053"
    assert env["ORDERER_GENERAL_LOCALMSPID"] == "OrdererMSP"
    paths = mounts(orderer)
    assert paths["/etc/hyperledger/fabric/orderer.yaml"] == str(FABRIC_DIR / "orderer.yaml")
    assert paths["/var/hyperledger/production/orderer"] == "orderer-data"


def test_mounted_project_files_exist(
    peer_host: dict[str, Any], orderer_host: dict[str, Any]
) -> None:
    services = [*peer_host["services"].values(), *orderer_host["services"].values()]
    # The project's config files (the admin's work folder under compose/ is made on first use).
    project = [
        p
        for s in services
        for p in mounts(s).values()
        if p.startswith(str(FABRIC_DIR)) and not p.startswith(str(COMPOSE_DIR))
    ]
    assert len(project) == 4  # core.yaml twice, collections_config.json, orderer.yaml
    for path in project:
        assert Path(path).is_file(), path


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_runs_python_m_chaincode_as_non_root() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    cmds = [rest for op, rest in steps if op == "CMD"]
    assert len(cmds) == 1 and json.loads(cmds[0]) == ["python", "-m", "chaincode"]
    users = [rest for op, rest in steps if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    runs = " ".join(rest for op, rest in steps if op == "RUN")
    assert "--require-hashes -r requirements/hashes.txt" in runs
    for op, rest in steps:
        if op == "COPY":
            for source in rest.split()[:-1]:
                assert (REPO / source).exists(), source
