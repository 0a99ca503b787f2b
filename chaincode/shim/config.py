"""Chaincode server settings from the environment (fabric-samples' external chaincode names)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from chaincode.shim.contract import Contract

DEFAULT_CONTRACT = "chaincode.contracts.asset:AssetContract"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A missing or malformed setting."""


@dataclass(frozen=True)
class TLSConfig:
    key: bytes
    cert: bytes
    # Set: mutual TLS, a client certificate signed by this CA is required.
    client_ca: bytes | None = None


@dataclass(frozen=True)
class ServerConfig:
    address: str
    chaincode_id: str
    contract_spec: str = DEFAULT_CONTRACT
    tls: TLSConfig | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerConfig:
        env = os.environ if env is None else env
        address = env.get("CHAINCODE_SERVER_ADDRESS", "")
        chaincode_id = env.get("CHAINCODE_ID", "")
        if not address:
            raise ConfigError("CHAINCODE_SERVER_ADDRESS must be set (e.g. 0.0.0.0:9999)")
        if not chaincode_id:
            raise ConfigError("CHAINCODE_ID must be set to the chaincode package id")
        disabled = env.get("CHAINCODE_TLS_DISABLED", "true").strip().lower()
        if disabled not in _TRUE | _FALSE:
            raise ConfigError("CHAINCODE_TLS_DISABLED must be true or false")
        tls = None
        if disabled in _FALSE:
            key_path = env.get("CHAINCODE_TLS_KEY", "")
            cert_path = env.get("CHAINCODE_TLS_CERT", "")
            if not key_path or not cert_path:
                raise ConfigError("TLS needs CHAINCODE_TLS_KEY and CHAINCODE_TLS_CERT")
            ca_path = env.get("CHAINCODE_CLIENT_CA_CERT", "")
            tls = TLSConfig(
                key=_read(key_path, "CHAINCODE_TLS_KEY"),
                cert=_read(cert_path, "CHAINCODE_TLS_CERT"),
                client_ca=_read(ca_path, "CHAINCODE_CLIENT_CA_CERT") if ca_path else None,
            )
        return cls(
            address=address,
            chaincode_id=chaincode_id,
            contract_spec=env.get("CHAINCODE_CONTRACT", "") or DEFAULT_CONTRACT,
            tls=tls,
        )


def _read(path: str, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def load_contracts(spec: str) -> list[Contract]:
    """Instantiate `module:Class[,module:Class...]`; the first is the default contract."""
    contracts: list[Contract] = []
    for item in spec.split(","):
        module_name, sep, class_name = item.strip().partition(":")
        if not sep or not module_name or not class_name:
            raise ConfigError(f"CHAINCODE_CONTRACT entry {item!r} is not module:Class")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"cannot import {module_name}: {exc}") from None
        cls = getattr(module, class_name, None)
        if not isinstance(cls, type) or not issubclass(cls, Contract):
            raise ConfigError(f"{item} is not a Contract subclass")
        contracts.append(cls())
    return contracts
