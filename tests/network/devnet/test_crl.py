"""devnet honours CRLs as Fabric's MSP does: a certificate listed on a CRL that its own CA
signed (AKI = the CA's SKI) is refused with Fabric's text; the CRL comes from the org's
`msp/crls/` and a running MSP manager picks up a new one without restart."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from network.devnet import pki
from network.devnet._protos import common_pb2, configtx_pb2, msp_config_pb2
from network.devnet.genesis import genesis_envelope
from network.devnet.msp import CRL_RECHECK_S, REVOKED, IdentityError, MSPManager
from network.devnet.orgs import DEFAULT_PEER_ORGS, ORDERER_ORG

HOSPITAL, SCHOOL, PHARMACY = DEFAULT_PEER_ORGS


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    pki.generate_network(tmp_path)
    return tmp_path


def identity(data_dir: Path, org: str, name: str) -> pki.SigningIdentity:
    folder = pki.add_identity(data_dir, org, name, {"mip.role": "doctor"})
    return pki.msp_signing_identity(folder, org)


def hospital_crl(data_dir: Path) -> Path:
    return pki.crl_path(data_dir, HOSPITAL)


def test_revoked_identity_is_refused_with_fabrics_text(data_dir: Path) -> None:
    doctor = identity(data_dir, "HospitalMSP", "doctor1")
    other = identity(data_dir, "HospitalMSP", "doctor2")
    done = pki.revoke_identity(data_dir, "HospitalMSP", "doctor1")
    assert done.newly_revoked and done.crl == hospital_crl(data_dir)
    assert done.serial_number == doctor.certificate.serial_number

    manager = MSPManager.from_data_dir(data_dir)
    with pytest.raises(IdentityError) as info:
        manager.validate(doctor.serialized)
    assert info.value.reason == REVOKED
    assert "The certificate has been revoked" in REVOKED
    manager.validate(other.serialized)  # same CA, not listed
    # The CRL is what Fabric CA's gencrl writes: signed by the CA, AKI = the CA's SKI.
    crl = x509.load_pem_x509_crl(done.crl.read_bytes())
    ca = pki.load_certificate(pki.ca_cert_path(data_dir, HOSPITAL))
    ca_key = ca.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey) and crl.is_signature_valid(ca_key)
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_revocations_accumulate_and_repeat_is_a_no_op(data_dir: Path) -> None:
    first = identity(data_dir, "HospitalMSP", "a1")
    second = identity(data_dir, "HospitalMSP", "a2")
    pki.revoke_identity(data_dir, "HospitalMSP", "a1")
    again = pki.revoke_identity(data_dir, "HospitalMSP", "a1")
    assert not again.newly_revoked
    pki.revoke_identity(data_dir, "HospitalMSP", "a2")
    crl = x509.load_pem_x509_crl(hospital_crl(data_dir).read_bytes())
    assert {e.serial_number for e in crl} == {first.certificate.serial_number,
                                              second.certificate.serial_number}
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    manager = MSPManager.from_data_dir(data_dir)
    for ident in (first, second):
        with pytest.raises(IdentityError, match="has been revoked"):
            manager.validate(ident.serialized)


def test_running_manager_picks_up_a_new_crl(data_dir: Path) -> None:
    doctor = identity(data_dir, "HospitalMSP", "doctor1")
    manager = MSPManager.from_data_dir(data_dir)
    assert manager.validate(doctor.serialized) is manager.validate(doctor.serialized)  # cached
    pki.revoke_identity(data_dir, "HospitalMSP", "doctor1")
    # Re-read at the first validation after the re-check interval, cache emptied.
    time.sleep(CRL_RECHECK_S * 1.5)
    with pytest.raises(IdentityError, match="has been revoked"):
        manager.validate(doctor.serialized)
    assert not manager.refresh_crls()  # nothing changed since


def test_transaction_creators_and_endorsers_share_the_check(data_dir: Path) -> None:
    """Peers and admins are revoked the same way (by certificate), e.g. a peer's identity."""
    peer_msp = pki.org_dir(data_dir, HOSPITAL) / "peers" / "peer0.hospital.mip.local" / "msp"
    peer = pki.msp_signing_identity(peer_msp, "HospitalMSP")
    manager = MSPManager.from_data_dir(data_dir, crl_recheck_s=0)
    manager.validate(peer.serialized)
    pki.revoke_certificate(data_dir, "HospitalMSP", peer.certificate)
    with pytest.raises(IdentityError, match="has been revoked"):
        manager.validate(peer.serialized)


def _foreign_crl(data_dir: Path, serial: int, *, with_aki: bool, signer: ec.EllipticCurvePrivateKey
                 ) -> bytes:
    ca = pki.load_certificate(pki.ca_cert_path(data_dir, HOSPITAL))
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
               .last_update(now).next_update(now + dt.timedelta(days=1))
               .add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                        .revocation_date(now).build()))
    if with_aki:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    return builder.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_crl_not_signed_by_the_ca_is_ignored(data_dir: Path) -> None:
    doctor = identity(data_dir, "HospitalMSP", "doctor1")
    forged = _foreign_crl(data_dir, doctor.certificate.serial_number, with_aki=True,
                          signer=ec.generate_private_key(ec.SECP256R1()))
    hospital_crl(data_dir).parent.mkdir(parents=True, exist_ok=True)
    hospital_crl(data_dir).write_bytes(forged)
    MSPManager.from_data_dir(data_dir).validate(doctor.serialized)
    # Another org's CA's CRL listing the serial does not name the hospital's CA either.
    school_crl = pki.crl_path(data_dir, SCHOOL)
    school_doc = identity(data_dir, "SchoolMSP", "t1")
    pki.revoke_identity(data_dir, "SchoolMSP", "t1")
    hospital_crl(data_dir).write_bytes(school_crl.read_bytes())
    MSPManager.from_data_dir(data_dir).validate(doctor.serialized)
    with pytest.raises(IdentityError, match="has been revoked"):
        MSPManager.from_data_dir(data_dir).validate(school_doc.serialized)


def test_crl_without_aki_fails_every_identity_of_that_msp(data_dir: Path) -> None:
    doctor = identity(data_dir, "HospitalMSP", "doctor1")
    school = identity(data_dir, "SchoolMSP", "t1")
    ca_key = pki.load_private_key(pki.ca_cert_path(data_dir, HOSPITAL).parent / "priv_sk")
    hospital_crl(data_dir).parent.mkdir(parents=True, exist_ok=True)
    hospital_crl(data_dir).write_bytes(_foreign_crl(data_dir, 12345, with_aki=False,
                                                    signer=ca_key))
    manager = MSPManager.from_data_dir(data_dir)
    with pytest.raises(IdentityError, match="could not obtain Authority Key Identifier"):
        manager.validate(doctor.serialized)
    manager.validate(school.serialized)


def test_unparsable_crl(data_dir: Path) -> None:
    doctor = identity(data_dir, "HospitalMSP", "doctor1")
    manager = MSPManager.from_data_dir(data_dir, crl_recheck_s=0)
    pki.revoke_identity(data_dir, "HospitalMSP", "doctor1")
    with pytest.raises(IdentityError, match="has been revoked"):
        manager.validate(doctor.serialized)
    bad = hospital_crl(data_dir).with_name("broken.pem")
    bad.write_text("-----BEGIN X509 CRL-----\nbm90IGEgY3Js\n-----END X509 CRL-----\n")
    # At start: refused like Fabric's setupCRLs; while running: the previous CRLs stay.
    with pytest.raises(IdentityError, match="could not parse RevocationList"):
        MSPManager.from_data_dir(data_dir)
    with pytest.raises(IdentityError, match="has been revoked"):
        manager.validate(doctor.serialized)


def test_revoke_refusals(data_dir: Path) -> None:
    with pytest.raises(pki.UnknownIdentityError):
        pki.revoke_identity(data_dir, "HospitalMSP", "nobody")
    with pytest.raises(pki.UnknownOrgError):
        pki.revoke_identity(data_dir, "NoSuchMSP", "User1")
    with pytest.raises(pki.PKIError, match="invalid identity name"):
        pki.revoke_identity(data_dir, "HospitalMSP", "../x")
    school = identity(data_dir, "SchoolMSP", "t1")
    with pytest.raises(pki.PKIError, match="not issued by the CA of HospitalMSP"):
        pki.revoke_certificate(data_dir, "HospitalMSP", school.certificate)
    assert not hospital_crl(data_dir).exists()


def test_genesis_carries_the_crls(data_dir: Path) -> None:
    pki.revoke_identity(data_dir, "HospitalMSP", "User1")
    signer = pki.msp_signing_identity(
        pki.org_dir(data_dir, ORDERER_ORG, peer_org=False) / "orderers"
        / f"orderer0.{ORDERER_ORG.domain}" / "msp", ORDERER_ORG.msp_id)
    raw = genesis_envelope(
        "mipchannel", [(o, pki.org_dir(data_dir, o) / "msp") for o in DEFAULT_PEER_ORGS],
        (ORDERER_ORG, pki.org_dir(data_dir, ORDERER_ORG, peer_org=False) / "msp"), signer)
    payload = common_pb2.Payload.FromString(common_pb2.Envelope.FromString(raw).payload)
    config = configtx_pb2.ConfigEnvelope.FromString(payload.data).config
    groups = config.channel_group.groups["Application"].groups

    def revocation_list(msp_id: str) -> list[bytes]:
        value = msp_config_pb2.MSPConfig.FromString(groups[msp_id].values["MSP"].value)
        return list(msp_config_pb2.FabricMSPConfig.FromString(value.config).revocation_list)

    assert revocation_list("HospitalMSP") == [hospital_crl(data_dir).read_bytes()]
    assert revocation_list("SchoolMSP") == []
