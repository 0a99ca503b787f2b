"""Inter-gateway request signatures (gateway/core/peer_auth.py), without a network: each org a
root CA of its own, identities carrying Fabric CA's hf.Attrs `mip.role`."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.core.peer_auth import (
    CLOCK_WINDOW_S,
    HF_ATTRS_OID,
    NONCE_HEADER,
    ORG_HEADER,
    SIGNATURE_HEADER,
    PeerNotGateway,
    PeerSigner,
    PeerUnauthenticated,
    verify_peer,
)

PATH = "/api/v1/custody/unlocks"
BODY = b'{"passport_id":"p"}'


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _root(org: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(f"ca.{org}"))
            .issuer_name(_name(f"ca.{org}")).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _identity(tmp: Path, name: str, root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
              role: str | None, *, expired: bool = False) -> tuple[Path, Path]:
    ca_cert, ca_key = root
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    start, end = ((now - dt.timedelta(days=10), now - dt.timedelta(days=1)) if expired
                  else (now - dt.timedelta(days=1), now + dt.timedelta(days=30)))
    builder = (x509.CertificateBuilder().subject_name(_name(name))
               .issuer_name(ca_cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end))
    if role is not None:
        attrs = json.dumps({"attrs": {"mip.role": role}}).encode()
        builder = builder.add_extension(x509.UnrecognizedExtension(HF_ATTRS_OID, attrs),
                                        critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("peer-auth")
    roots = {org: _root(org) for org in (HOSPITAL, SCHOOL, PHARMACY)}
    return {
        "roots": {org: cert for org, (cert, _) in roots.items()},
        "school": PeerSigner(SCHOOL, *_identity(tmp, "gw.school", roots[SCHOOL], "gateway")),
        "school_staff": PeerSigner(SCHOOL, *_identity(tmp, "staff.school", roots[SCHOOL],
                                                      "school_registrar")),
        "school_bare": PeerSigner(SCHOOL, *_identity(tmp, "bare.school", roots[SCHOOL], None)),
        "school_expired": PeerSigner(SCHOOL, *_identity(tmp, "old.school", roots[SCHOOL],
                                                        "gateway", expired=True)),
        # The Pharmacy's own gateway certificate, presented as the School's.
        "posing": PeerSigner(SCHOOL, *_identity(tmp, "gw.pharmacy", roots[PHARMACY],
                                                "gateway")),
    }


def _verify(world: dict[str, object], headers: dict[str, str], *, body: bytes = BODY,
            path: str = PATH, now: float | None = None) -> str:
    roots = world["roots"]
    assert isinstance(roots, dict)
    return verify_peer(headers, "POST", path, body, own_org=HOSPITAL, ca_roots=roots,
                       now=now).org


def _signer(world: dict[str, object], name: str) -> PeerSigner:
    signer = world[name]
    assert isinstance(signer, PeerSigner)
    return signer


def test_a_gateway_signed_request_passes(world: dict[str, object]) -> None:
    headers = _signer(world, "school").headers("POST", PATH, BODY, HOSPITAL)
    assert _verify(world, headers) == SCHOOL


@pytest.mark.parametrize("change", ["body", "path", "target", "org", "signature", "nonce",
                                    "unsigned"])
def test_anything_changed_or_missing_is_unauthenticated(world: dict[str, object],
                                                        change: str) -> None:
    school = _signer(world, "school")
    headers = school.headers("POST", PATH, BODY, PHARMACY if change == "target" else HOSPITAL)
    body, path = BODY, PATH
    if change == "body":
        body = b'{"passport_id":"q"}'
    elif change == "path":
        path = "/api/v1/custody/sessions/end"
    elif change == "org":
        headers[ORG_HEADER] = PHARMACY
    elif change == "signature":
        headers[SIGNATURE_HEADER] = school.headers("POST", PATH, b"{}", HOSPITAL)[
            SIGNATURE_HEADER]
    elif change == "nonce":
        headers[NONCE_HEADER] = "f" * 32
    elif change == "unsigned":
        headers = {}
    with pytest.raises(PeerUnauthenticated):
        _verify(world, headers, body=body, path=path)


def test_the_receivers_clock_decides_the_window(world: dict[str, object]) -> None:
    school = _signer(world, "school")
    now = time.time()
    stamp = int(now)
    headers = school.headers("POST", PATH, BODY, HOSPITAL, timestamp=stamp)
    # The same request is good at the receiver's "now" within the window, stale outside it
    # (whatever the caller's clock said).
    assert _verify(world, headers, now=stamp + CLOCK_WINDOW_S - 1) == SCHOOL
    for late in (stamp + CLOCK_WINDOW_S + 1, stamp - CLOCK_WINDOW_S - 1):
        with pytest.raises(PeerUnauthenticated, match="window"):
            _verify(world, headers, now=late)


def test_certificates_of_the_wrong_org_or_time_are_unauthenticated(
        world: dict[str, object]) -> None:
    for name in ("posing", "school_expired"):
        headers = _signer(world, name).headers("POST", PATH, BODY, HOSPITAL)
        with pytest.raises(PeerUnauthenticated):
            _verify(world, headers)
    # A gateway never calls itself.
    headers = _signer(world, "school").headers("POST", PATH, BODY, HOSPITAL)
    roots = world["roots"]
    assert isinstance(roots, dict)
    with pytest.raises(PeerUnauthenticated, match="itself"):
        verify_peer(headers, "POST", PATH, BODY, own_org=SCHOOL, ca_roots=roots)


def test_an_orgs_other_identities_are_not_its_gateway(world: dict[str, object]) -> None:
    for name in ("school_staff", "school_bare"):
        headers = _signer(world, name).headers("POST", PATH, BODY, HOSPITAL)
        with pytest.raises(PeerNotGateway) as refused:
            _verify(world, headers)
        assert (refused.value.status, refused.value.code) == (403, "peer_not_gateway")


def _crl(root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
         serials: list[int]) -> x509.CertificateRevocationList:
    ca_cert, ca_key = root
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca_cert.subject)
               .last_update(now).next_update(now + dt.timedelta(days=1)))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build())
    return builder.sign(ca_key, hashes.SHA256())


def test_a_revoked_gateway_identity_is_refused(tmp_path: Path) -> None:
    school_root, other_root = _root(SCHOOL), _root(PHARMACY)
    cert_path, key_path = _identity(tmp_path, "gw.school", school_root, "gateway")
    serial = x509.load_pem_x509_certificate(cert_path.read_bytes()).serial_number
    headers = PeerSigner(SCHOOL, cert_path, key_path).headers("POST", PATH, BODY, HOSPITAL)
    roots = {SCHOOL: school_root[0]}

    def check(crl: x509.CertificateRevocationList | None) -> str:
        return verify_peer(headers, "POST", PATH, BODY, own_org=HOSPITAL, ca_roots=roots,
                           crl_of=lambda org: crl if org == SCHOOL else None).org

    assert check(None) == SCHOOL
    assert check(_crl(school_root, [serial + 1])) == SCHOOL  # someone else revoked
    with pytest.raises(PeerUnauthenticated, match="revoked"):
        check(_crl(school_root, [serial]))
    # A CRL the org's CA did not sign (even an empty one) refuses the org outright.
    with pytest.raises(PeerUnauthenticated, match="not signed"):
        check(_crl(other_root, []))
