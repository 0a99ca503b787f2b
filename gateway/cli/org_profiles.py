"""Each org's own connection profile and CA folder, split from a local network's shared ones.

A network that `scripts/network.sh` (or devnet) brings up on one machine writes one
`connection.json` naming every org's peer and users, beside every org's crypto material. One
gateway per org must hold its own org's only, so for each org this writes `DEST/<org>/fabric/`:

- `organizations/peerOrganizations/<domain>/{ca,tlsca,msp}`: a copy of the org's own enrolment
  CA, TLS CA and org MSP folder (its CRL): what its gateway mints its service identity and
  staff with (`gateway.core.ca.local_ca` finds them beside the profile) and the TLS root its
  peer is checked against. No peer, orderer or admin key, and nothing of another org's.
- `connection.json`: its own org with its own peer endpoint alone (no other org's peer to
  dial) and its users (filled as identities are minted), and every other org with only its CA
  certificate and CRL path (pointing into that org's own folder here: what it publishes),
  which the gateway needs to check the other orgs' gateways' signed calls.

The copies are of the same CAs the channel's MSPs name, so the peers accept what each org's
gateway mints (they validate by CA). A production org enrols with its own Fabric CA instead
(docs/deploy.md) and writes its profile by hand in this same shape.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.fabric import ConnectionProfile, ConnectionProfileError
from gateway.fabric.connection import OrgProfile

# The parts of an org's crypto folder its gateway needs; peers/ and users/ (node and admin
# keys) stay with the network.
ORG_CA_PARTS = ("ca", "tlsca", "msp")


def org_folder(root: Path, org: str) -> Path:
    """Where `org`'s own profile and CA copy live under `root`."""
    return root / org / "fabric"


def _crypto_dir(org: OrgProfile) -> Path:
    """The org's crypto folder (`.../peerOrganizations/<domain>`), from its CA cert's path
    (`<that folder>/ca/ca.<domain>-cert.pem`)."""
    if org.ca_cert_path is None:
        raise ConnectionProfileError(f"{org.name} has no caCertPath: cannot find its CA")
    return org.ca_cert_path.parent.parent


def write_org_profiles(network: Path, root: Path, orgs: Sequence[str]) -> dict[str, Path]:
    """For each of `orgs`, `org_folder(root, org)` with its CA copy and its own
    `connection.json` (module docstring); returns org -> that profile's path."""
    root = Path(root).resolve()
    shared = ConnectionProfile.load(network)
    raw = json.loads(Path(network).read_text(encoding="utf-8"))
    copies: dict[str, Path] = {}
    for org in orgs:
        source = _crypto_dir(shared.org(org))
        base = Path(network).resolve().parent
        if not source.resolve().is_relative_to(base):
            raise ConnectionProfileError(
                f"{org}'s CA is not under {base}: not a local network's profile")
        # The same layout as the network's, so the local CA finds the org by it.
        target = org_folder(root, org) / source.resolve().relative_to(base)
        for part in ORG_CA_PARTS:
            shutil.copytree(source / part, target / part)
        # Minting builds each identity in users/ (then renames it into place).
        (target / "users").mkdir()
        copies[org] = target
    profiles: dict[str, Path] = {}
    for org in orgs:
        here = org_folder(root, org)
        entries: dict[str, Any] = {}
        for name, entry in shared.organizations.items():
            crypto = copies.get(entry.msp_id)
            if crypto is None:
                continue  # an org with no gateway here is no member of this arrangement
            ca = crypto / "ca" / entry.ca_cert_path.name  # type: ignore[union-attr]
            crl = (crypto / entry.crl_path.relative_to(_crypto_dir(entry))
                   if entry.crl_path is not None else None)
            public = {"mspId": entry.msp_id, "caCertPath": os.path.relpath(ca, here)}
            if crl is not None:
                public["crlPath"] = os.path.relpath(crl, here)
            if entry.msp_id != org:
                entries[name] = public
                continue
            tls_root = entry.tls_root_cert_path
            if tls_root is not None and tls_root.is_relative_to(_crypto_dir(entry)):
                tls_root = crypto / tls_root.relative_to(_crypto_dir(entry))
            own: dict[str, Any] = {**public, "peerEndpoint": entry.peer_endpoint,
                                   "users": {}}
            if tls_root is not None:
                own["tlsRootCertPath"] = os.path.relpath(tls_root, here)
            if entry.server_name_override:
                own["serverNameOverride"] = entry.server_name_override
            entries[name] = own
        profile = {"network": raw.get("network", ""), "channel": shared.channel,
                   "chaincode": shared.chaincode, "organizations": entries}
        path = here / "connection.json"
        path.write_text(json.dumps(profile, indent=2) + "\n", encoding="utf-8")
        profiles[org] = path
    return profiles
