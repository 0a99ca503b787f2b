"""Ledger.profile and Ledger.client_id keep what they parsed only while the files they read
are byte for byte the same (gateway/services/ledger.py): a verdict asks for both, and a
minted identity or a re-issued certificate must show at once."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.protocol.orgs import PHARMACY
from gateway.core.config import Settings
from gateway.core.errors import LedgerUnavailable, NotFound
from gateway.services.ledger import Ledger


def _cert(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def _profile(path: Path, users: list[str]) -> None:
    path.write_text(json.dumps({"organizations": {PHARMACY: {
        "mspId": PHARMACY, "peerEndpoint": "127.0.0.1:1",
        "users": {u: {"certPath": f"{u}.pem", "keyPath": f"{u}.key"} for u in users}}}}))


def test_profile_is_parsed_again_only_when_the_file_changes(tmp_path: Path) -> None:
    connection = tmp_path / "connection.json"
    _profile(connection, ["phil"])
    ledger = Ledger(Settings(org=PHARMACY, mode="development", connection=connection))
    first = ledger.profile()
    assert ledger.profile() is first  # same bytes: not parsed again
    _profile(connection, ["phil", "pia"])  # an identity minted
    second = ledger.profile()
    assert second is not first and "pia" in second.org(PHARMACY).users
    connection.write_text("not json")
    with pytest.raises(LedgerUnavailable):
        ledger.profile()
    connection.unlink()
    with pytest.raises(LedgerUnavailable):
        ledger.profile()


def test_client_id_follows_the_certificate(tmp_path: Path) -> None:
    connection = tmp_path / "connection.json"
    _profile(connection, ["phil"])
    (tmp_path / "phil.pem").write_bytes(_cert("phil"))
    ledger = Ledger(Settings(org=PHARMACY, mode="development", connection=connection))
    identity = ledger.client_id(PHARMACY, "phil")
    assert identity.startswith("x509::CN=phil::") and ledger.client_id(PHARMACY,
                                                                        "phil") == identity
    (tmp_path / "phil.pem").write_bytes(_cert("phil-reissued"))  # a re-issued certificate
    assert ledger.client_id(PHARMACY, "phil").startswith("x509::CN=phil-reissued::")
    with pytest.raises(NotFound):
        ledger.client_id(PHARMACY, "nobody")
