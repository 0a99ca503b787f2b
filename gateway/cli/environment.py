"""A throwaway MIP installation in one folder: devnet, staff identities and tokens, and the
gateway server as a real HTTP process. Used by `mip demo` and scripts/bench_gateway.py.

Layout of DIR: `devnet/` (ledger, crypto, connection.json, `devnet.log`, `logs/chaincode.log`),
`gateway/` (its database and secrets), `gateway.yaml` (its settings), `gateway.log`. Tokens are
kept in memory only (never written to the folder).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.core.config import load_settings

from .identity import issue_token, mint
from .processes import Managed, free_port, start_devnet, start_gateway, stop_process


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
    base_url: str
    config_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    staff: dict[str, StaffSpec] = field(default_factory=dict)
    processes: list[Managed] = field(default_factory=list)

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[key]}"}

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


@contextmanager
def running_environment(root: Path, staff: Sequence[StaffSpec],
                        settings: dict[str, Any] | None = None,
                        progress: Any = None) -> Iterator[Environment]:
    """Start everything fresh in `root` (wiped first); stop every process on exit."""
    from gateway.services.ledger import ensure_service_identities

    step = progress or _no_progress
    root = root.resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
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
            env = Environment(root, connection, f"http://127.0.0.1:{port}", config_path,
                              processes=processes)
            gateway_config = load_settings(config_path)
            for spec in staff:
                mint(connection, spec.org, spec.name, spec.role)
                env.tokens[spec.key] = issue_token(gateway_config, spec.org, spec.name,
                                                   spec.role)
                env.staff[spec.key] = spec
        with step(f"starting the gateway server on {env.base_url}"):
            processes.append(start_gateway(config_path, root / "gateway.log",
                                           root / "gateway.pid", env.base_url))
        yield env
    finally:
        for managed in reversed(processes):
            stop_process(managed)


@contextmanager
def _no_progress(label: str) -> Iterator[None]:
    yield
