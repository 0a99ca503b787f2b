"""connection.json for the real network, in exactly the layout devnet writes (docs/ledger.md).

`pki.write_connection_profile` writes the file (users, relative paths) as devnet does; on real
Fabric every org then gets its own peer endpoint, its own TLS CA and its own peer host name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from network.devnet import pki
from network.devnet.orgs import DEFAULT_PEER_ORGS
from network.fabric.crypto import peer_org


class ProfileError(ValueError):
    """An endpoint is missing or malformed."""


def write_profile(
    state_dir: Path,
    endpoints: Mapping[str, str],
    *,
    channel: str = "mipchannel",
    chaincode: str = "mip",
    filename: str = "connection.json",
) -> Path:
    """Write <state>/`filename`; `endpoints` maps every MSP id to its peer's host:port.

    A second chaincode's profile (e.g. connection.nodeasset.json) lies beside connection.json,
    since the key and certificate paths in it are relative to the state dir, and leaves
    connection.json (the `mip` chaincode's) as it was.
    """
    state_dir = Path(state_dir)
    if not filename.endswith(".json") or Path(filename).name != filename:
        raise ProfileError(f"profile file name must be a plain *.json name, not {filename!r}")
    for org in DEFAULT_PEER_ORGS:
        endpoint = endpoints.get(org.msp_id, "")
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ProfileError(f"{org.msp_id}: peer endpoint must be host:port, not {endpoint!r}")
    unknown = set(endpoints) - {o.msp_id for o in DEFAULT_PEER_ORGS}
    if unknown:
        raise ProfileError(f"unknown orgs {sorted(unknown)}")
    first = DEFAULT_PEER_ORGS[0]
    default = state_dir / "connection.json"
    kept = default.read_bytes() if filename != default.name and default.exists() else None
    path = pki.write_connection_profile(
        state_dir,
        endpoint=endpoints[first.msp_id],
        channel=channel,
        chaincode=chaincode,
        network="fabric",
        tls_root_cert=pki.tlsca_cert_path(state_dir, first),
        server_name=f"peer0.{first.domain}",
    )
    profile = json.loads(path.read_text(encoding="utf-8"))
    for msp_id, entry in profile["organizations"].items():
        org = peer_org(msp_id)
        entry["peerEndpoint"] = endpoints[msp_id]
        entry["tlsRootCertPath"] = os.path.relpath(
            pki.tlsca_cert_path(state_dir, org).resolve(), state_dir.resolve()
        )
        entry["serverNameOverride"] = f"peer0.{org.domain}"
    target = state_dir / filename
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    if target != path:
        # pki writes connection.json only: give it back what it held, or nothing.
        if kept is None:
            path.unlink()
        else:
            path.write_bytes(kept)
    return target
