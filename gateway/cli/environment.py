"""A throwaway MIP installation in one folder: devnet, staff identities and tokens, and the
gateway server(s) as real HTTP processes. Used by `mip demo`, scripts/bench_gateway.py and
tests.

Two arrangements:

- `running_environment` (all orgs): one gateway without `org`, serving every org
  (development mode). Layout of DIR: `devnet/` (ledger, crypto, connection.json,
  `devnet.log`, `logs/chaincode.log`), `gateway/` (its database and secrets), `gateway.yaml`,
  `gateway.log`.
- `running_org_gateways` (one gateway per org, as deployed): one gateway process per member
  org, each org-scoped (`org:` in its own YAML), on its own port, with its own data dir,
  secrets, staff tokens and log: `DIR/<org>/gateway/`, `DIR/<org>/gateway.yaml`,
  `DIR/<org>/gateway.log`, beside the shared `devnet/`. Each org's staff are minted and their
  tokens issued through that org's own settings, so an identity of another org is refused
  there (`not_this_org`) exactly as `mip identity add` refuses it. Given `network` (the
  connection.json of a network already running on this machine, e.g. real Fabric from
  `scripts/network.sh`), no devnet is started: each org's gateway gets a profile of its own
  (`org_profiles.py`: its own peer only, a copy of its own org's CAs, the other orgs' CA
  certificates and CRLs) in `DIR/<org>/fabric/`, and mints its identities there.

Either way `Environment.org_urls` maps each member org to the base URL of the gateway that
serves it (every org to the one URL in the all-orgs arrangement). Tokens are kept in memory
only (never written to the folder).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.core.config import Settings, load_settings

from .identity import acting_org, issue_token, mint
from .org_profiles import write_org_profiles
from .processes import (
    Managed,
    free_port,
    spawn_gateway,
    start_devnet,
    stop_process,
    wait_for_gateway,
)

# The member orgs in the order the per-org arrangement starts (and the demo names) them.
ORGS = (HOSPITAL, SCHOOL, PHARMACY)
# The setting each org's gateway is given with the other orgs' gateways (org -> base URL),
# for the calls between gateways (the holder's custody moving between orgs). Written into the
# YAML only once `Settings` has the field: until then (`extra="forbid"` refuses unknown keys)
# the map is kept in `Environment.org_urls` only. HOOK: nothing else to change here when the
# field lands.
ORG_GATEWAYS_SETTING = "org_gateways"


@dataclass(frozen=True)
class StaffSpec:
    key: str   # how the story names them, e.g. "pharmacist"
    org: str
    name: str  # their Fabric identity
    role: str


@dataclass
class Environment:
    root: Path
    connection: Path
    # The all-orgs gateway's URL and settings; in the per-org arrangement the first org's
    # (HospitalMSP's): use `url_of(org)` / `org_configs` to reach a given org's gateway.
    base_url: str
    config_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    staff: dict[str, StaffSpec] = field(default_factory=dict)
    processes: list[Managed] = field(default_factory=list)
    org_urls: dict[str, str] = field(default_factory=dict)
    org_configs: dict[str, Path] = field(default_factory=dict)
    # Each org's gateway's own connection profile where it has one (per org on a network
    # given to `running_org_gateways`); otherwise every gateway uses `connection`.
    org_connections: dict[str, Path] = field(default_factory=dict)
    per_org: bool = False
    # The certificates to trust for the gateways' https URLs (their self-signed ones, as a
    # bundle); None: the system's store (and plain http on loopback, as the demo runs).
    ca_file: Path | None = None

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}

    def url_of(self, org: str) -> str:
        """Base URL of the gateway that serves `org`."""
        return self.org_urls.get(org, self.base_url)

    def gateway_name(self, org: str) -> str:
        """How output names the gateway that acts for `org`."""
        return f"{org}'s gateway" if self.per_org else "the all-orgs gateway"

    @property
    def log_files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*.log") if p.is_file())


def gateway_settings(root: Path, connection: Path, port: int,
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
    # Development mode: devnet and the demo keep the gateway's keys in <data_dir>/secrets.json
    # (the file key provider, refused in production; gateway/core/keys).
    return {"data_dir": str(root / "gateway"), "connection": str(connection),
            "host": "127.0.0.1", "port": port, "liveness_poses": ["left", "right"],
            "log_level": "INFO", "mode": "development", **(extra or {})}


def org_gateway_settings(root: Path, org: str, connection: Path, port: int,
                         org_urls: dict[str, str],
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One org's gateway: `org` set, data dir `root/<org>/gateway`, and (once Settings has the
    field) the other orgs' gateways."""
    values = gateway_settings(root / org, connection, port, extra)
    values["org"] = org
    if ORG_GATEWAYS_SETTING in Settings.model_fields:
        values[ORG_GATEWAYS_SETTING] = {o: url for o, url in org_urls.items() if o != org}
    return values


def write_org_config(root: Path, org: str, values: dict[str, Any]) -> Path:
    """`root/<org>/gateway.yaml` holding `values` (`org_gateway_settings`)."""
    (root / org).mkdir(exist_ok=True)
    config = root / org / "gateway.yaml"
    config.write_text(yaml.safe_dump(values), encoding="utf-8")
    return config


def mint_org_staff(env: Environment, connection: Path, config: Path, org: str,
                   staff: Sequence[StaffSpec]) -> None:
    """`org`'s service identity, and those of `staff` in `org` with their tokens (into
    `env`), each made through `org`'s own gateway settings at `config`: as `mip network up`
    and `mip identity add` there, which refuse (not_this_org) any other org before anything
    is minted."""
    from gateway.services.ledger import ensure_service_identities

    org_settings = load_settings(config)
    ensure_service_identities(connection, [org])
    for spec in (s for s in staff if s.org == org):
        acting = acting_org(org_settings, spec.org, "mint identities or issue staff tokens")
        mint(connection, acting, spec.name, spec.role)
        env.tokens[spec.key] = issue_token(org_settings, acting, spec.name, spec.role)
        env.staff[spec.key] = spec


def _fresh(root: Path) -> Path:
    root = root.resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    return root


@contextmanager
def running_environment(root: Path, staff: Sequence[StaffSpec],
                        settings: dict[str, Any] | None = None,
                        progress: Any = None) -> Iterator[Environment]:
    """Devnet and one all-orgs gateway, fresh in `root` (wiped first); stops every process
    on exit."""
    from gateway.services.ledger import ensure_service_identities

    step = progress or _no_progress
    root = _fresh(root)
    processes: list[Managed] = []
    try:
        with step("starting devnet (orderer, 3 peers, MIP chaincode)"):
            devnet, connection = start_devnet(root / "devnet", free_port())
            processes.append(devnet)
        with step("minting staff identities and gateway tokens"):
            ensure_service_identities(connection)
            port = free_port()
            config_path = root / "gateway.yaml"
            values = gateway_settings(root, connection, port, settings)
            config_path.write_text(yaml.safe_dump(values), encoding="utf-8")
            url = f"http://127.0.0.1:{port}"
            env = Environment(root, connection, url, config_path, processes=processes,
                              org_urls=dict.fromkeys(ORGS, url),
                              org_configs=dict.fromkeys(ORGS, config_path))
            gateway_config = load_settings(config_path)
            for spec in staff:
                mint(connection, spec.org, spec.name, spec.role)
                env.tokens[spec.key] = issue_token(gateway_config, spec.org, spec.name,
                                                   spec.role)
                env.staff[spec.key] = spec
        with step(f"starting the gateway server on {env.base_url}"):
            managed, process = spawn_gateway(config_path, root / "gateway.log",
                                             root / "gateway.pid")
            processes.append(managed)
            wait_for_gateway(managed, process, env.base_url)
        yield env
    finally:
        for managed in reversed(processes):
            stop_process(managed)


@contextmanager
def running_org_gateways(root: Path, staff: Sequence[StaffSpec],
                         settings: dict[str, Any] | None = None,
                         progress: Any = None,
                         orgs: Sequence[str] = ORGS,
                         network: Path | None = None) -> Iterator[Environment]:
    """Devnet (or the running network whose connection.json is `network`) and one
    org-scoped gateway per org in `orgs`, fresh in `root` (wiped first); stops every process
    it started on exit (never `network`'s). Every member of `staff` must belong to one of
    `orgs`."""
    step = progress or _no_progress
    root = _fresh(root)
    processes: list[Managed] = []
    try:
        connections: dict[str, Path] = {}
        if network is None:
            with step("starting devnet (orderer, 3 peers, MIP chaincode)"):
                devnet, connection = start_devnet(root / "devnet", free_port())
                processes.append(devnet)
        else:
            connection = Path(network).resolve()
            with step(f"giving each org its own connection profile and CA copy "
                      f"(its own peer only) from {connection}"):
                connections = write_org_profiles(connection, root, orgs)
        ports = {org: free_port() for org in orgs}
        org_urls = {org: f"http://127.0.0.1:{port}" for org, port in ports.items()}
        configs: dict[str, Path] = {}
        env = Environment(root, connection, org_urls[orgs[0]], root / orgs[0] / "gateway.yaml",
                          processes=processes, org_urls=org_urls, org_configs=configs,
                          per_org=True, org_connections=connections)
        with step(f"minting each org's service identity, staff and tokens ({len(orgs)} orgs, "
                  "each through its own gateway's settings)"):
            for org in orgs:
                own = connections.get(org, connection)
                values = org_gateway_settings(root, org, own, ports[org], org_urls, settings)
                configs[org] = write_org_config(root, org, values)
                mint_org_staff(env, own, configs[org], org, staff)
            strays = [s.key for s in staff if s.org not in orgs]
            if strays:
                raise ValueError(f"staff of no started org: {', '.join(strays)}")
        with step("starting one gateway per org: " + ", ".join(
                f"{org} on {url}" for org, url in org_urls.items())):
            # All start at once (each loads its own face engine), then each is waited for.
            started = []
            for org in orgs:
                managed, process = spawn_gateway(configs[org], root / org / "gateway.log",
                                                 root / org / "gateway.pid", name=org)
                processes.append(managed)
                started.append((managed, process, org_urls[org]))
            for managed, process, url in started:
                wait_for_gateway(managed, process, url)
        yield env
    finally:
        for managed in reversed(processes):
            stop_process(managed)


@contextmanager
def _no_progress(label: str) -> Iterator[None]:
    yield
