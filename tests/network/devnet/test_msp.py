"""devnet MSP: identity validation, roles, attributes, signatures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID
from fabric_protos.msp import identities_pb2, msp_principal_pb2

from chaincode.shim import ClientIdentity
from network.devnet import msp as msp_mod
from network.devnet import pki
from network.devnet.msp import IdentityError, MSPManager, SignatureError
from network.devnet.orgs import DEFAULT_PEER_ORGS, OrgSpec

HOSPITAL, SCHOOL, PHARMACY = DEFAULT_PEER_ORGS
H_BASE = "organizations/peerOrganizations/hospital.mip.local"


@dataclass
class Net:
    data_dir: Path
    manager: MSPManager
    doctor: pki.SigningIdentity
    user1: pki.SigningIdentity
    admin: pki.SigningIdentity
    peer: pki.SigningIdentity


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Net:
    data_dir = tmp_path_factory.mktemp("msp")
    pki.generate_network(data_dir)
    doctor_msp = pki.add_identity(data_dir, "HospitalMSP", "doctor1", {"mip.role": "doctor"})
    base = data_dir / H_BASE

    def sid(path: str) -> pki.SigningIdentity:
        return pki.msp_signing_identity(base / path, "HospitalMSP")

    return Net(
        data_dir=data_dir,
        manager=MSPManager.from_data_dir(data_dir),
        doctor=pki.msp_signing_identity(doctor_msp, "HospitalMSP"),
        user1=sid("users/User1@hospital.mip.local/msp"),
        admin=sid("users/Admin@hospital.mip.local/msp"),
        peer=sid("peers/peer0.hospital.mip.local/msp"),
    )


def _serialize(msp_id: str, pem: bytes) -> bytes:
    return bytes(identities_pb2.SerializedIdentity(mspid=msp_id, id_bytes=pem).SerializeToString())


def _mint(
    data_dir: Path,
    org: OrgSpec,
    *,
    ous: list[str],
    cn: str = "someone",
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    subject: x509.Name | None = None,
) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    """A certificate from the org's CA with chosen OUs / validity (what add_identity won't do)."""
    ca_dir = pki.org_dir(data_dir, org) / "ca"
    ca_cert = pki.load_certificate(ca_dir / f"ca.{org.domain}-cert.pem")
    ca_key = pki.load_private_key(ca_dir / "priv_sk")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = subject or x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous]
        + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    cert = pki.issue_leaf_certificate(
        ca_cert,
        ca_key,
        subject,
        key.public_key(),
        tls=False,
        not_before=not_before,
        not_after=not_after,
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


def test_valid_identity_has_role_attrs_and_id(net: Net) -> None:
    identity = net.manager.validate(net.doctor.serialized)
    assert identity.msp_id == identity.mspid == "HospitalMSP"
    assert identity.role == "client"
    assert identity.ous == frozenset({"client"})
    assert identity.attrs == {
        "hf.EnrollmentID": "doctor1",
        "hf.Type": "client",
        "hf.Affiliation": "",
        "mip.role": "doctor",
    }
    with pytest.raises(TypeError):  # shared through the cache, so read-only
        identity.attrs["mip.role"] = "admin"  # type: ignore[index]
    assert "BEGIN CERTIFICATE" not in repr(identity)
    assert identity.cert_pem == net.doctor.cert_pem
    assert identity.serialized == net.doctor.serialized
    # cid.GetID's DN format: reversed RDNs of Go's pkix.Name field order
    assert identity.id_string == (
        "x509::CN=doctor1,OU=client,L=San Francisco,ST=California,C=US"
        "::CN=ca.hospital.mip.local,O=hospital.mip.local,L=San Francisco,ST=California,C=US"
    )
    assert net.manager.validate(net.user1.serialized).role == "client"
    assert net.manager.validate(net.admin.serialized).role == "admin"
    assert net.manager.validate(net.peer.serialized).role == "peer"
    assert net.manager.validate(net.user1.serialized).attrs == {}


# RFC 5280 wants 1..64 characters and cryptography warns on an empty CN; Go accepts it.
@pytest.mark.filterwarnings("ignore:Attribute's length must be:UserWarning")
def test_id_string_is_the_chaincode_s_even_for_an_empty_common_name(net: Net) -> None:
    # devnet formats DNs with the shim's formatter (cid.GetID's). Its former copy printed an
    # empty CommonName as "CN=", where Go's ToRDNSequence (`if len(n.CommonName) > 0`) and the
    # shim leave it out, so devnet and the chaincode disagreed on such an identity's ID.
    empty_cn = x509.NameAttribute(NameOID.COMMON_NAME, "", _validate=False)
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"), empty_cn]
    )
    pem, _ = _mint(net.data_dir, HOSPITAL, ous=[], subject=subject)
    creator = _serialize("HospitalMSP", pem)
    identity = net.manager.validate(creator)
    assert identity.id_string.startswith("x509::OU=client::CN=ca.hospital.mip.local,")
    assert identity.id_string == ClientIdentity(creator).get_id_string()


def test_unknown_msp_is_refused(net: Net) -> None:
    with pytest.raises(IdentityError, match="unknown MSP"):
        net.manager.validate(_serialize("EvilMSP", net.doctor.cert_pem))


def test_cert_claimed_by_another_msp_is_refused(net: Net) -> None:
    with pytest.raises(IdentityError, match="not issued"):
        net.manager.validate(_serialize("SchoolMSP", net.doctor.cert_pem))


def test_cert_from_a_foreign_ca_is_refused(net: Net, tmp_path: Path) -> None:
    # Same MSP id, same domain, same CA subject DN -- but a different CA key.
    pki.generate_org(tmp_path, HOSPITAL)
    foreign = pki.msp_signing_identity(
        tmp_path / H_BASE / "users/User1@hospital.mip.local/msp", "HospitalMSP"
    )
    with pytest.raises(IdentityError, match="not issued"):
        net.manager.validate(foreign.serialized)
    # and an org the manager does not know at all
    other = OrgSpec("OtherMSP", "other.example")
    pki.generate_org(tmp_path, other)
    with pytest.raises(IdentityError, match="unknown MSP"):
        net.manager.validate(
            pki.msp_signing_identity(
                pki.org_dir(tmp_path, other) / "users/User1@other.example/msp", "OtherMSP"
            ).serialized
        )


def test_expired_and_not_yet_valid_certs_are_refused(net: Net) -> None:
    now = dt.datetime.now(dt.UTC)
    expired, _ = _mint(
        net.data_dir,
        HOSPITAL,
        ous=["client"],
        not_before=now - dt.timedelta(days=30),
        not_after=now - dt.timedelta(days=1),
    )
    with pytest.raises(IdentityError, match="expired"):
        net.manager.validate(_serialize("HospitalMSP", expired))
    future, _ = _mint(
        net.data_dir,
        HOSPITAL,
        ous=["client"],
        not_before=now + dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )
    with pytest.raises(IdentityError, match="not yet valid"):
        net.manager.validate(_serialize("HospitalMSP", future))


def test_cached_identity_still_expires(net: Net) -> None:
    clock = {"now": dt.datetime.now(dt.UTC)}
    manager = MSPManager.from_data_dir(net.data_dir, clock=lambda: clock["now"])
    now = clock["now"]
    pem, _ = _mint(
        net.data_dir,
        HOSPITAL,
        ous=["client"],
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(hours=1),
    )
    raw = _serialize("HospitalMSP", pem)
    first = manager.validate(raw)
    assert manager.validate(raw) is first  # served from the cache
    clock["now"] = now + dt.timedelta(hours=2)
    with pytest.raises(IdentityError, match="expired"):
        manager.validate(raw)


def test_ca_certificate_cannot_be_an_identity(net: Net) -> None:
    ca_pem = pki.ca_cert_path(net.data_dir, HOSPITAL).read_bytes()
    with pytest.raises(IdentityError, match="CA certificate"):
        net.manager.validate(_serialize("HospitalMSP", ca_pem))


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xff\xff\xff",
        b"",
        b"\x0a\x0bHospitalMSP",  # mspid but no certificate
        b"\x0a\x0bHospitalMSP\x12\x05hello",  # certificate bytes that are not PEM
    ],
)
def test_garbage_is_refused(net: Net, raw: bytes) -> None:
    with pytest.raises(IdentityError):
        net.manager.validate(raw)


def test_pem_must_be_well_formed(net: Net) -> None:
    pem = net.doctor.cert_pem
    assert net.manager.validate(_serialize("HospitalMSP", b"\n" + pem)).role == "client"
    assert net.manager.validate(_serialize("HospitalMSP", pem.rstrip(b"\n"))).role == "client"
    # msp.IsWellFormed: nothing may follow the certificate (one serialization per identity)
    for trailing in (b"\n", b"x", pem):
        with pytest.raises(IdentityError, match="trailing"):
            net.manager.validate(_serialize("HospitalMSP", pem + trailing))
    wrong_type = pem.replace(b"CERTIFICATE", b"PUBLIC KEY")
    with pytest.raises(IdentityError, match="not a CERTIFICATE"):
        net.manager.validate(_serialize("HospitalMSP", wrong_type))


@pytest.mark.parametrize("ous", [[], ["nurse"], ["client", "admin"], ["peer", "client"]])
def test_identity_needs_exactly_one_node_ou(net: Net, ous: list[str]) -> None:
    pem, _ = _mint(net.data_dir, HOSPITAL, ous=ous)
    with pytest.raises(IdentityError, match="exactly one"):
        net.manager.validate(_serialize("HospitalMSP", pem))


def test_extra_non_role_ou_is_fine(net: Net) -> None:
    pem, _ = _mint(net.data_dir, HOSPITAL, ous=["client", "department1"])
    identity = net.manager.validate(_serialize("HospitalMSP", pem))
    assert identity.role == "client"
    assert identity.ous == {"client", "department1"}


def test_signatures(net: Net) -> None:
    identity = net.manager.validate(net.doctor.serialized)
    message = b"proposal bytes"
    signature = net.doctor.sign(message)
    msp_mod.verify_signature(identity, message, signature)

    with pytest.raises(SignatureError):
        msp_mod.verify_signature(identity, message + b"!", signature)
    with pytest.raises(SignatureError):  # someone else's signature
        msp_mod.verify_signature(identity, message, net.user1.sign(message))
    with pytest.raises(SignatureError):
        msp_mod.verify_signature(identity, message, b"\x30\x02garbage")
    with pytest.raises(SignatureError):
        msp_mod.verify_signature(identity, message, b"")

    # The high-S twin (r, n - s) is a mathematically valid ECDSA signature that Fabric refuses.
    r, s = decode_dss_signature(signature)
    high = encode_dss_signature(r, pki.curve_order() - s)
    from cryptography.hazmat.primitives import hashes

    identity.public_key.verify(high, message, ec.ECDSA(hashes.SHA256()))  # really valid ECDSA
    with pytest.raises(SignatureError, match="low-S"):
        msp_mod.verify_signature(identity, message, high)


def _role(msp_id: str, role: int) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=role).SerializeToString(),
    )


def test_role_principals(net: Net) -> None:
    roles = msp_principal_pb2.MSPRole
    client = net.manager.validate(net.user1.serialized)
    admin = net.manager.validate(net.admin.serialized)
    peer = net.manager.validate(net.peer.serialized)
    table = {
        # identity: (MEMBER, ADMIN, CLIENT, PEER, ORDERER)
        "client": (client, (True, False, True, False, False)),
        "admin": (admin, (True, True, False, False, False)),
        "peer": (peer, (True, False, False, True, False)),
    }
    for identity, expected in table.values():
        got = tuple(
            msp_mod.satisfies_principal(identity, _role("HospitalMSP", r))
            for r in (roles.MEMBER, roles.ADMIN, roles.CLIENT, roles.PEER, roles.ORDERER)
        )
        assert got == expected, identity.role
        assert not msp_mod.satisfies_principal(identity, _role("SchoolMSP", roles.MEMBER))


def test_orderer_identity(net: Net) -> None:
    orderer = pki.msp_signing_identity(
        net.data_dir
        / "organizations/ordererOrganizations/orderer.mip.local/orderers"
        / "orderer0.orderer.mip.local/msp",
        "OrdererMSP",
    )
    identity = net.manager.validate(orderer.serialized)
    assert identity.role == "orderer"
    assert msp_mod.satisfies_principal(
        identity, _role("OrdererMSP", msp_principal_pb2.MSPRole.ORDERER)
    )


def test_identity_and_ou_principals(net: Net) -> None:
    doctor = net.manager.validate(net.doctor.serialized)
    user1 = net.manager.validate(net.user1.serialized)
    by_identity = msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.IDENTITY,
        principal=net.doctor.serialized,
    )
    assert msp_mod.satisfies_principal(doctor, by_identity)
    assert not msp_mod.satisfies_principal(user1, by_identity)
    by_ou = msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT,
        principal=msp_principal_pb2.OrganizationUnit(
            msp_identifier="HospitalMSP", organizational_unit_identifier="client"
        ).SerializeToString(),
    )
    assert msp_mod.satisfies_principal(doctor, by_ou)
    assert not msp_mod.satisfies_principal(net.manager.validate(net.admin.serialized), by_ou)


def test_manager_reports_missing_org(tmp_path: Path) -> None:
    with pytest.raises(IdentityError):
        MSPManager.from_data_dir(tmp_path, [SCHOOL])
