"""Identity, low-S signing, MSP folders and connection.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fabric_protos.msp import identities_pb2
from fabric_testkit import User, issue, make_ca
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.fabric import (
    ConnectionProfileError,
    Identity,
    IdentityError,
    Signer,
    SigningKeyError,
    credentials_from_pem,
    from_connection,
    load_msp_folder,
)
from gateway.fabric.signing import curve_order, is_low_s, to_low_s

_KEY = ec.generate_private_key(ec.SECP256R1())
_SIGNER = Signer(_KEY)
N = curve_order(ec.SECP256R1())


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=256))
def test_signatures_verify_and_are_low_s(message: bytes) -> None:
    signature = _SIGNER.sign(message)
    assert is_low_s(signature, ec.SECP256R1())
    _KEY.public_key().verify(signature, message, ec.ECDSA(hashes.SHA256()))


def test_high_s_is_normalised() -> None:
    der = _KEY.sign(b"m", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    high = encode_dss_signature(r, s if s > N // 2 else N - s)
    assert not is_low_s(high, ec.SECP256R1())
    low = to_low_s(high, ec.SECP256R1())
    assert decode_dss_signature(low) == (r, min(s, N - s))
    _KEY.public_key().verify(low, b"m", ec.ECDSA(hashes.SHA256()))


def test_signer_refuses_bad_keys() -> None:
    with pytest.raises(SigningKeyError):
        Signer.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(SigningKeyError):
        Signer(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(ValueError):
        _SIGNER.sign_digest(b"short")
    assert "PRIVATE" not in repr(_SIGNER)


def test_identity_serializes(user: User) -> None:
    serialized = identities_pb2.SerializedIdentity.FromString(user.identity.serialize())
    assert serialized.mspid == "HospitalMSP" and serialized.id_bytes == user.pair.cert_pem
    with pytest.raises(IdentityError):
        Identity("HospitalMSP", b"not a cert")
    with pytest.raises(IdentityError):
        Identity("", user.pair.cert_pem)


def _write_msp(root: Path, user: User, extra_key: bool) -> None:
    (root / "signcerts").mkdir(parents=True)
    (root / "keystore").mkdir()
    (root / "signcerts" / "User1@hospital.mip.local-cert.pem").write_bytes(user.pair.cert_pem)
    if extra_key:  # Fabric CA style: several <ski>_sk files, one matching
        other = ec.generate_private_key(ec.SECP256R1())
        (root / "keystore" / "aaaa_sk").write_bytes(_pem(other))
        (root / "keystore" / "zzzz_sk").write_bytes(user.pair.key_pem)
    else:
        (root / "keystore" / "priv_sk").write_bytes(user.pair.key_pem)


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize("extra_key", [False, True])
def test_load_msp_folder(tmp_path: Path, user: User, extra_key: bool) -> None:
    _write_msp(tmp_path / "msp", user, extra_key)
    identity, signer = load_msp_folder(tmp_path / "msp", "HospitalMSP")
    assert identity.serialize() == user.identity.serialize()
    user.identity.public_key.verify(signer.sign(b"x"), b"x", ec.ECDSA(hashes.SHA256()))


def test_load_msp_folder_errors(tmp_path: Path, user: User) -> None:
    with pytest.raises(IdentityError):
        load_msp_folder(tmp_path, "HospitalMSP")
    (tmp_path / "signcerts").mkdir()
    (tmp_path / "signcerts" / "c.pem").write_bytes(user.pair.cert_pem)
    (tmp_path / "keystore").mkdir()
    (tmp_path / "keystore" / "priv_sk").write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(IdentityError, match="matches"):
        load_msp_folder(tmp_path, "HospitalMSP")
    with pytest.raises(IdentityError):
        credentials_from_pem(
            "HospitalMSP", user.pair.cert_pem, (tmp_path / "keystore" / "priv_sk").read_bytes()
        )


def test_from_connection(tmp_path: Path, user: User) -> None:
    tlsca = make_ca("tlsca.hospital.mip.local")
    tls_client = issue(tlsca, "User1@hospital.mip.local", client=True)
    org = tmp_path / "organizations" / "peerOrganizations" / "hospital.mip.local"
    msp = org / "users" / "User1@hospital.mip.local" / "msp"
    tls = org / "users" / "User1@hospital.mip.local" / "tls"
    _write_msp(msp, user, extra_key=False)
    tls.mkdir(parents=True)
    (tls / "client.crt").write_bytes(tls_client.cert_pem)
    (tls / "client.key").write_bytes(tls_client.key_pem)
    (org / "tlsca").mkdir()
    (org / "tlsca" / "tlsca.hospital.mip.local-cert.pem").write_bytes(tlsca.cert_pem)
    rel = "organizations/peerOrganizations/hospital.mip.local/"
    user_dir = rel + "users/User1@hospital.mip.local/"
    profile = {
        "network": "devnet",
        "channel": "mipchannel",
        "chaincode": "mip",
        "organizations": {
            "HospitalMSP": {
                "mspId": "HospitalMSP",
                "peerEndpoint": "127.0.0.1:7051",
                "tlsRootCertPath": rel + "tlsca/tlsca.hospital.mip.local-cert.pem",
                "serverNameOverride": "peer0.hospital.mip.local",
                "users": {
                    "User1": {
                        "certPath": user_dir + "msp/signcerts/User1@hospital.mip.local-cert.pem",
                        "keyPath": user_dir + "msp/keystore/priv_sk",
                        "tlsCertPath": user_dir + "tls/client.crt",
                        "tlsKeyPath": user_dir + "tls/client.key",
                    }
                },
            }
        },
    }
    path = tmp_path / "connection.json"
    path.write_text(json.dumps(profile))
    settings_ = from_connection(path, "HospitalMSP", "User1")
    assert settings_.endpoint == "127.0.0.1:7051"
    assert settings_.identity.serialize() == user.identity.serialize()
    assert settings_.tls_root_cert == tlsca.cert_pem
    assert settings_.client_cert == tls_client.cert_pem
    assert settings_.server_name_override == "peer0.hospital.mip.local"
    assert "BEGIN" not in repr(settings_)
    with pytest.raises(ConnectionProfileError, match="no user"):
        from_connection(path, "HospitalMSP", "Nobody")
    with pytest.raises(ConnectionProfileError, match="no organization"):
        from_connection(path, "SchoolMSP", "User1")
    path.write_text("[]")
    with pytest.raises(ConnectionProfileError):
        from_connection(path, "HospitalMSP", "User1")
