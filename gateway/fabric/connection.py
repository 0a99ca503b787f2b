"""Read connection.json (written by devnet and scripts/network.sh; format in docs/ledger.md).

Every path in the file is relative to the folder holding it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .identity import Identity, credentials_from_pem
from .signing import Signer


class ConnectionProfileError(ValueError):
    """connection.json is missing, malformed, or lacks the requested org or user."""


@dataclass(frozen=True)
class UserProfile:
    name: str
    cert_path: Path
    key_path: Path
    tls_cert_path: Path | None
    tls_key_path: Path | None


@dataclass(frozen=True)
class OrgProfile:
    name: str
    msp_id: str
    # The org's peer (host:port); "" in an org's own profile for the other orgs, which it
    # lists for their CA and CRL only (one gateway per org dials its own org's peer alone).
    peer_endpoint: str
    tls_root_cert_path: Path | None
    server_name_override: str | None
    users: dict[str, UserProfile]
    # The org's MSP root CA certificate (`caCertPath`): what another org's gateway checks
    # this org's service identity against (inter-gateway custody requests). Optional.
    ca_cert_path: Path | None = None
    # The org's CRL (`crlPath`, signed by that CA; the file may not exist yet): a gateway
    # identity listed there is refused too. Optional.
    crl_path: Path | None = None


@dataclass(frozen=True)
class ConnectionProfile:
    path: Path
    network: str
    channel: str
    chaincode: str
    organizations: dict[str, OrgProfile]

    @classmethod
    def load(cls, path: str | Path) -> ConnectionProfile:
        file = Path(path)
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConnectionProfileError(f"cannot read {file}: {exc}") from None
        if not isinstance(raw, dict):
            raise ConnectionProfileError(f"{file}: top level must be a JSON object")
        base = file.resolve().parent
        orgs_raw = _get(raw, "organizations", dict, file)
        orgs = {
            name: _org(name, _expect(value, dict, f"organizations.{name}", file), base, file)
            for name, value in orgs_raw.items()
        }
        return cls(
            path=file,
            network=str(raw.get("network", "")),
            channel=str(raw.get("channel", "")),
            chaincode=str(raw.get("chaincode", "")),
            organizations=orgs,
        )

    def org(self, name_or_msp_id: str) -> OrgProfile:
        if name_or_msp_id in self.organizations:
            return self.organizations[name_or_msp_id]
        for org in self.organizations.values():
            if org.msp_id == name_or_msp_id:
                return org
        raise ConnectionProfileError(
            f"{self.path}: no organization {name_or_msp_id!r} (have {sorted(self.organizations)})"
        )


def _expect(value: Any, kind: type, where: str, file: Path) -> Any:
    if not isinstance(value, kind):
        raise ConnectionProfileError(f"{file}: {where} must be a {kind.__name__}")
    return value


def _get(obj: dict[str, Any], key: str, kind: type, file: Path, where: str = "") -> Any:
    if key not in obj:
        raise ConnectionProfileError(f"{file}: missing {where}{key}")
    return _expect(obj[key], kind, where + key, file)


def _path(base: Path, value: Any) -> Path | None:
    if value in (None, ""):
        return None
    return base / str(value)


def _peer_endpoint(raw: dict[str, Any], users: dict[str, UserProfile], file: Path,
                   where: str) -> str:
    """The org's `peerEndpoint`; an org listed without one (another org, in a per-org
    profile) must list no users either: nothing could connect as them."""
    if "peerEndpoint" in raw or users:
        return str(_get(raw, "peerEndpoint", str, file, where))
    return ""


def _org(name: str, raw: dict[str, Any], base: Path, file: Path) -> OrgProfile:
    where = f"organizations.{name}."
    users_raw = raw.get("users", {})
    _expect(users_raw, dict, where + "users", file)
    users: dict[str, UserProfile] = {}
    for user_name, user in users_raw.items():
        uwhere = f"{where}users.{user_name}."
        _expect(user, dict, uwhere.rstrip("."), file)
        users[user_name] = UserProfile(
            name=user_name,
            cert_path=base / _get(user, "certPath", str, file, uwhere),
            key_path=base / _get(user, "keyPath", str, file, uwhere),
            tls_cert_path=_path(base, user.get("tlsCertPath")),
            tls_key_path=_path(base, user.get("tlsKeyPath")),
        )
    return OrgProfile(
        name=name,
        msp_id=str(raw.get("mspId") or name),
        peer_endpoint=_peer_endpoint(raw, users, file, where),
        tls_root_cert_path=_path(base, raw.get("tlsRootCertPath")),
        server_name_override=raw.get("serverNameOverride") or None,
        users=users,
        ca_cert_path=_path(base, raw.get("caCertPath")),
        crl_path=_path(base, raw.get("crlPath")),
    )


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything Gateway.connect needs for one user of one org."""

    endpoint: str
    identity: Identity
    signer: Signer
    tls_root_cert: bytes | None
    server_name_override: str | None
    client_cert: bytes | None
    client_key: bytes | None = None

    def __repr__(self) -> str:  # never print key material
        return (
            f"ConnectionSettings(endpoint={self.endpoint!r}, msp_id={self.identity.msp_id!r}, "
            f"server_name_override={self.server_name_override!r})"
        )


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConnectionProfileError(f"cannot read {path}: {exc}") from None


def from_connection(
    profile: str | Path | ConnectionProfile, org: str, user: str
) -> ConnectionSettings:
    """Identity, signer, endpoint and TLS material of `user` in `org` (name or MSP id)."""
    loaded = profile if isinstance(profile, ConnectionProfile) else ConnectionProfile.load(profile)
    org_profile = loaded.org(org)
    if user not in org_profile.users:
        raise ConnectionProfileError(
            f"{loaded.path}: no user {user!r} in {org_profile.name} "
            f"(have {sorted(org_profile.users)})"
        )
    user_profile = org_profile.users[user]
    if not org_profile.peer_endpoint:
        raise ConnectionProfileError(
            f"{loaded.path}: no peer of {org_profile.name} in this profile")
    cert = _read(user_profile.cert_path)
    key = _read(user_profile.key_path)
    assert cert is not None and key is not None
    identity, signer = credentials_from_pem(org_profile.msp_id, cert, key)
    return ConnectionSettings(
        endpoint=org_profile.peer_endpoint,
        identity=identity,
        signer=signer,
        tls_root_cert=_read(org_profile.tls_root_cert_path),
        server_name_override=org_profile.server_name_override,
        client_cert=_read(user_profile.tls_cert_path),
        client_key=_read(user_profile.tls_key_path),
    )
