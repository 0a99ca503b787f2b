"""Devnet configuration, persisted as DIR/devnet.json so later starts reuse it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

CHANNEL = "mipchannel"
CHAINCODE = "mip"
DEFAULT_CONTRACT = "chaincode.contracts.asset:AssetContract"
DEFAULT_POLICY = "MAJORITY Endorsement"
# Fabric 3.x peers refuse a proposal whose timestamp is further than this from their own clock
# (core.yaml peer.authentication.timewindow, TimeWindowCheck auth filter; 15m by default).
DEFAULT_TIME_WINDOW_S = 900.0
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_COLLECTIONS = REPO_ROOT / "network" / "fabric" / "collections_config.json"
CONFIG_FILE = "devnet.json"
LEDGER_FILE = "ledger.sqlite"


class ConfigError(ValueError):
    """devnet.json is unreadable or holds an invalid value."""


@dataclass
class DevnetConfig:
    """Everything that shapes one devnet: network identity, chaincode definition, orderer knobs."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 7051
    mtls: bool = False
    channel: str = CHANNEL
    chaincode: str = CHAINCODE
    contract: str = DEFAULT_CONTRACT
    chaincode_address: str | None = None
    policy: str = DEFAULT_POLICY
    collections: str | None = None
    batch_timeout_ms: float = 2.0
    batch_size: int = 500
    time_window_s: float = DEFAULT_TIME_WINDOW_S
    orgs: list[str] = field(default_factory=lambda: ["HospitalMSP", "SchoolMSP", "PharmacyMSP"])

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / LEDGER_FILE

    @property
    def collections_path(self) -> Path | None:
        if self.collections is None:
            return DEFAULT_COLLECTIONS if DEFAULT_COLLECTIONS.is_file() else None
        return Path(self.collections)

    def validate(self) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"port out of range: {self.port}")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be >= 1")
        if self.batch_timeout_ms <= 0:
            raise ConfigError("batch_timeout_ms must be > 0")
        if not 0 < self.time_window_s <= 86400:
            raise ConfigError("time_window_s must be > 0 and at most one day")
        if ":" not in self.contract:
            raise ConfigError(f"contract must be module:Class, got {self.contract!r}")

    def save(self) -> Path:
        path = self.data_dir / CONFIG_FILE
        data = asdict(self)
        data["data_dir"] = str(self.data_dir)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, data_dir: Path) -> DevnetConfig | None:
        path = data_dir / CONFIG_FILE
        if not path.is_file():
            return None
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["data_dir"] = data_dir
        config = cls(**values)
        config.validate()
        return config

    def with_overrides(self, **overrides: Any) -> DevnetConfig:
        """A copy with the non-None overrides applied (command-line flags beat devnet.json)."""
        values = asdict(self)
        values["data_dir"] = self.data_dir
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        config = DevnetConfig(**values)
        config.validate()
        return config
