"""Crypto material for the real network: devnet's cryptogen layout plus chaincode TLS pairs.

`network.devnet.pki` writes exactly what Fabric's cryptogen writes (docs/ledger.md), so peers,
the orderer and clients of both networks read the same folders. The chaincode servers (CCaaS)
get their own TLS server certificate from their org's TLS CA, and each peer a client
certificate for the mutual-TLS link to its org's chaincode server.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from network.devnet import pki
from network.devnet.orgs import DEFAULT_PEER_ORGS, OrgSpec


class UnknownOrgError(ValueError):
    """The MSP id is not one of MIP's peer organisations."""


@dataclass(frozen=True)
class ChaincodeTLS:
    """Where one org's chaincode-link TLS files live (all PEM)."""

    server_cert: Path
    server_key: Path
    client_cert: Path  # presented by the peer when it dials the chaincode server
    client_key: Path
    ca_cert: Path  # the org's TLS CA: roots both directions


def peer_org(msp_id: str) -> OrgSpec:
    for org in DEFAULT_PEER_ORGS:
        if org.msp_id == msp_id:
            return org
    known = ", ".join(o.msp_id for o in DEFAULT_PEER_ORGS)
    raise UnknownOrgError(f"unknown peer org {msp_id!r} (known: {known})")


def generate(state_dir: Path) -> None:
    """All peer orgs and the orderer org; material already present is kept."""
    pki.generate_network(Path(state_dir))


def chaincode_tls(state_dir: Path, msp_id: str, hosts: list[str]) -> ChaincodeTLS:
    """The org's chaincode TLS pairs under <state>/chaincode/<domain>/tls (kept once made)."""
    state_dir = Path(state_dir)
    org = peer_org(msp_id)
    base = state_dir / "chaincode" / org.domain / "tls"
    server_dir, client_dir = base / "server", base / "client"
    if not (server_dir / "server.crt").is_file() or not (server_dir / "server.key").is_file():
        pki.issue_tls_server_cert(state_dir, org, hosts, server_dir)
    if not (client_dir / "server.crt").is_file() or not (client_dir / "server.key").is_file():
        # The devnet CA issues TLS leaves with both serverAuth and clientAuth usages.
        pki.issue_tls_server_cert(state_dir, org, [f"peer0.{org.domain}"], client_dir)
    return ChaincodeTLS(
        server_cert=server_dir / "server.crt",
        server_key=server_dir / "server.key",
        client_cert=client_dir / "server.crt",
        client_key=client_dir / "server.key",
        ca_cert=pki.tlsca_cert_path(state_dir, org),
    )
