"""Crypto material for the real network: devnet's cryptogen layout plus chaincode TLS pairs.

`network.devnet.pki` writes exactly what Fabric's cryptogen writes (docs/ledger.md), so peers,
the orderer and clients of both networks read the same folders. The chaincode servers (CCaaS)
get their own TLS server certificate from their org's TLS CA, and each peer a client
certificate for the mutual-TLS link to its org's chaincode server. A three-node ordering
service gets orderer1 and orderer2 beside cryptogen's orderer0, laid out the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from network.devnet import pki
from network.devnet.orgs import DEFAULT_PEER_ORGS, ORDERER_ORG, OrgSpec

ORDERER_COUNTS = (1, 3)  # Raft: one node (no fault tolerance) or three (one may fail)


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


class OrdererCountError(ValueError):
    """An ordering service size other than those the network scripts support."""


def generate(state_dir: Path, orderers: int = 1) -> None:
    """All peer orgs and the orderer org with `orderers` nodes; material present is kept."""
    if orderers not in ORDERER_COUNTS:
        raise OrdererCountError(f"orderers must be one of {ORDERER_COUNTS}, not {orderers}")
    pki.generate_network(Path(state_dir))
    for index in range(1, orderers):
        orderer_node(Path(state_dir), index)


def orderer_node(state_dir: Path, index: int) -> Path:
    """orderers/orderer<index>.<domain>/ of the orderer org, as cryptogen lays out orderer0:
    msp/ (signing identity with NodeOU "orderer" from the org's CA) and tls/ (server pair from
    its TLS CA, also the node's client certificate on Raft links). Kept once made: the
    consenters' TLS certificates are written into the channel's genesis block."""
    domain = ORDERER_ORG.domain
    host = f"orderer{index}.{domain}"
    base = pki.org_dir(state_dir, ORDERER_ORG, peer_org=False)
    folder = base / "orderers" / host
    if (folder / "msp" / "signcerts").is_dir() and (folder / "tls" / "server.crt").is_file():
        return folder
    ca_path = pki.ca_cert_path(state_dir, ORDERER_ORG, peer_org=False)
    tlsca_path = pki.tlsca_cert_path(state_dir, ORDERER_ORG, peer_org=False)
    ca_cert, tlsca_cert = pki.load_certificate(ca_path), pki.load_certificate(tlsca_path)
    ca_key = pki.load_private_key(ca_path.parent / "priv_sk")
    tlsca_key = pki.load_private_key(tlsca_path.parent / "priv_sk")
    # Subjects as cryptogen's: the CA's country/province/locality, the NodeOU, the host as CN.
    place = [a for a in ca_cert.subject if a.oid in (
        NameOID.COUNTRY_NAME, NameOID.STATE_OR_PROVINCE_NAME, NameOID.LOCALITY_NAME)]
    sign_key = ec.generate_private_key(ec.SECP256R1())
    sign_cert = pki.issue_leaf_certificate(
        ca_cert, ca_key,
        x509.Name([*place, x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "orderer"),
                   x509.NameAttribute(NameOID.COMMON_NAME, host)]),
        sign_key.public_key(), tls=False)
    tls_key = ec.generate_private_key(ec.SECP256R1())
    tls_cert = pki.issue_leaf_certificate(
        tlsca_cert, tlsca_key, x509.Name([*place, x509.NameAttribute(NameOID.COMMON_NAME, host)]),
        tls_key.public_key(), tls=True,
        sans=[host, f"orderer{index}", "localhost", "127.0.0.1"])
    org_msp = base / "msp"
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Built aside and renamed into place, so a half-written node folder is never used.
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{host}."))
    try:
        msp = scratch / "msp"
        shutil.copytree(org_msp / "cacerts", msp / "cacerts")
        shutil.copytree(org_msp / "tlscacerts", msp / "tlscacerts")
        shutil.copyfile(org_msp / "config.yaml", msp / "config.yaml")  # the NodeOU rules
        _write(msp / "signcerts" / f"{host}-cert.pem", _cert_pem(sign_cert), 0o644)
        _write(msp / "keystore" / "priv_sk", _key_pem(sign_key), 0o600)
        _write(scratch / "tls" / "ca.crt", _cert_pem(tlsca_cert), 0o644)
        _write(scratch / "tls" / "server.crt", _cert_pem(tls_cert), 0o644)
        _write(scratch / "tls" / "server.key", _key_pem(tls_key), 0o600)
        if folder.exists():
            shutil.rmtree(folder)  # an incomplete earlier attempt
        os.rename(scratch, folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


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
