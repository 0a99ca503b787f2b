"""ClientIdentity: MSP id, Go-identical ID strings, hf.Attrs attributes and OUs."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from shim_testkit import ATTR_OID, FakePeer, User, issue, make_ca, make_name, make_user

from chaincode.shim import AttributeAssertionError, ClientIdentity, IdentityError
from chaincode.shim._protos import identities_pb2
from chaincode.shim.identity import go_distinguished_name

USER_DN = "CN=User1@hospital.mip.local,OU=client,L=San Francisco,ST=California,C=US"
CA_DN = "CN=ca.hospital.mip.local,O=hospital.mip.local,L=San Francisco,ST=California,C=US"


def test_identity_of_a_cryptogen_style_user() -> None:
    user = make_user(attrs={"mip.role": "doctor", "hf.EnrollmentID": "user1"})
    identity = ClientIdentity(user.creator)
    assert identity.get_msp_id() == "HospitalMSP"
    # The same shape as fabric-samples' "x509::CN=User1@org1.example.com,OU=client,...".
    assert identity.get_id_string() == f"x509::{USER_DN}::{CA_DN}"
    assert base64.b64decode(identity.get_id()).decode() == identity.get_id_string()
    assert identity.get_attribute_value("mip.role") == "doctor"
    assert identity.get_attribute_value("absent") is None
    assert identity.get_attributes() == {"mip.role": "doctor", "hf.EnrollmentID": "user1"}
    identity.assert_attribute_value("mip.role", "doctor")
    with pytest.raises(AttributeAssertionError, match="not have the expected value"):
        identity.assert_attribute_value("mip.role", "nurse")
    with pytest.raises(AttributeAssertionError, match="was not found"):
        identity.assert_attribute_value("absent", "x")
    assert identity.get_x509_certificate() == user.pair.cert
    assert identity.get_node_ou() == "client"
    assert identity.has_ou_value("client") and not identity.has_ou_value("peer")


def test_go_dn_order_multivalue_and_escaping() -> None:
    # Written CN-first with two OUs, an e-mail attribute Go does not keep, and characters
    # that RFC 2253 escapes: Go re-orders to its fixed field order and joins the OUs with '+'.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Doe, John+1"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "#dept "),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "john@example.com"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'A<b>;"c"\\'),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "42"),
            x509.NameAttribute(NameOID.POSTAL_CODE, "12345"),
            x509.NameAttribute(NameOID.STREET_ADDRESS, "1 Main St"),
        ]
    )
    assert go_distinguished_name(name) == (
        'SERIALNUMBER=42,CN=Doe\\, John\\+1,OU=client+OU=\\#dept\\ ,O=A\\<b\\>\\;\\"c\\"\\\\,'
        "POSTALCODE=12345,STREET=1 Main St,C=US"
    )


def test_go_dn_keeps_the_last_common_name_and_drops_an_empty_one() -> None:
    two = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "first"),
            x509.NameAttribute(NameOID.COMMON_NAME, "second"),
        ]
    )
    assert go_distinguished_name(two) == "CN=second"
    # Go skips an empty CommonName (`if len(n.CommonName) > 0`) but keeps an empty OU.
    with pytest.warns(UserWarning, match="length"):
        empty_cn = x509.NameAttribute(NameOID.COMMON_NAME, "", _validate=False)
    empty = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ""),
            empty_cn,
        ]
    )
    assert go_distinguished_name(empty) == "OU=,O=o"


_N = NameOID


# Names and the strings Go prints for them, from Go's own tests (golang/go,
# src/crypto/x509/x509_test.go, TestPKIXNameString: pkix.Name.String(), which for these
# standard attributes is what cid.getDN prints). Attribute order here is deliberately not Go's.
GO_VERIFIED = [
    (
        [(_N.COUNTRY_NAME, "GB"), (_N.COMMON_NAME, "Steve Kille"), (_N.SERIAL_NUMBER, "RFC 2253"),
         (_N.ORGANIZATION_NAME, "Isode Limited"), (_N.ORGANIZATIONAL_UNIT_NAME, "RFCs"),
         (_N.LOCALITY_NAME, "Richmond"), (_N.STATE_OR_PROVINCE_NAME, "Surrey"),
         (_N.STREET_ADDRESS, "The Square"), (_N.POSTAL_CODE, "TW9 1DT")],
        "SERIALNUMBER=RFC 2253,CN=Steve Kille,OU=RFCs,O=Isode Limited,POSTALCODE=TW9 1DT,"
        "STREET=The Square,L=Richmond,ST=Surrey,C=GB",
    ),
    (
        [(_N.COUNTRY_NAME, "US"), (_N.STATE_OR_PROVINCE_NAME, "California"),
         (_N.LOCALITY_NAME, "Mountain View"), (_N.ORGANIZATION_NAME, "Google LLC"),
         (_N.COMMON_NAME, "mail.google.com")],
        "CN=mail.google.com,O=Google LLC,L=Mountain View,ST=California,C=US",
    ),
    (
        [(_N.ORGANIZATION_NAME, "#Google, Inc. \n-> 'Alphabet\" "), (_N.COUNTRY_NAME, "US")],
        "O=\\#Google\\, Inc. \n-\\> 'Alphabet\\\"\\ ,C=US",
    ),
]


@pytest.mark.parametrize(("attributes", "expected"), GO_VERIFIED)
def test_go_dn_matches_strings_go_prints(
    attributes: list[tuple[x509.ObjectIdentifier, str]], expected: str
) -> None:
    # Through a real certificate: what the shim sees is the parsed DER, as Go parses it.
    subject = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    cert = x509.load_der_x509_certificate(
        issue(make_ca(), subject).cert.public_bytes(serialization.Encoding.DER)
    )
    assert go_distinguished_name(cert.subject) == expected


def test_go_dn_flattens_multi_valued_rdns_into_go_field_order() -> None:
    # One RDN holding CN+O and one holding two OUs: Go's FillFromRDNSequence flattens every RDN
    # into Name fields, and ToRDNSequence rebuilds one RDN per field (values in parsed order).
    subject = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "org"),
                ]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "client")]
            ),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "hospital")]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]),
        ]
    )
    cert = x509.load_der_x509_certificate(
        issue(make_ca(), subject).cert.public_bytes(serialization.Encoding.DER)
    )
    assert go_distinguished_name(cert.subject) == "CN=alice,OU=client+OU=hospital,O=org,C=US"


def test_fabric_ca_style_identity() -> None:
    ca = make_ca("ca.school.mip.local")
    pair = issue(ca, make_name(OU=["client", "school", "department1"], CN="alice"), attrs={})
    creator = identities_pb2.SerializedIdentity(
        mspid="SchoolMSP", id_bytes=pair.cert_pem
    ).SerializeToString()
    identity = ClientIdentity(creator)
    assert identity.get_id_string().startswith(
        "x509::CN=alice,OU=client+OU=school+OU=department1::"
    )
    assert identity.get_ou_values() == ["client", "school", "department1"]
    assert identity.get_attributes() == {}


def test_certificate_without_attribute_extension() -> None:
    ca = make_ca()
    pair = issue(ca, make_name(OU=["peer"], CN="peer0"))
    creator = identities_pb2.SerializedIdentity(mspid="M", id_bytes=pair.cert_pem)
    identity = ClientIdentity(creator.SerializeToString())
    assert identity.get_attribute_value("mip.role") is None
    assert identity.get_node_ou() == "peer"


def test_bad_identities_raise_identity_error() -> None:
    with pytest.raises(IdentityError, match="unmarshal"):
        ClientIdentity(b"\xff\xff\xff")
    not_pem = identities_pb2.SerializedIdentity(mspid="M", id_bytes=b"idemix-bytes")
    with pytest.raises(IdentityError, match=r"not an X\.509"):
        ClientIdentity(not_pem.SerializeToString())


def test_malformed_attribute_json_raises() -> None:
    ca = make_ca()
    pair = issue(ca, make_name(CN="u"))
    # Re-issue with a broken hf.Attrs payload.
    from cryptography.hazmat.primitives import hashes

    broken = (
        x509.CertificateBuilder()
        .subject_name(pair.cert.subject)
        .issuer_name(ca.cert.subject)
        .public_key(pair.key.public_key())
        .serial_number(1)
        .not_valid_before(pair.cert.not_valid_before_utc)
        .not_valid_after(pair.cert.not_valid_after_utc)
        .add_extension(x509.UnrecognizedExtension(ATTR_OID, b"{not json"), False)
        .sign(ca.key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    creator = identities_pb2.SerializedIdentity(
        mspid="M", id_bytes=broken.public_bytes(serialization.Encoding.PEM)
    )
    identity = ClientIdentity(creator.SerializeToString())
    assert identity.get_msp_id() == "M"
    with pytest.raises(IdentityError, match="attributes"):
        identity.get_attribute_value("x")


async def test_identity_inside_a_transaction(peer: FakePeer) -> None:
    user: User = make_user(msp_id="PharmacyMSP", cn="bob", attrs={"mip.role": "pharmacist"})
    out = await peer.invoke(["Probe:Who"], user=user)
    who = out.json()
    assert who["msp"] == "PharmacyMSP"
    assert who["id_string"].startswith(
        "x509::CN=bob,OU=client,L=San Francisco,ST=California,C=US::"
    )
    assert base64.b64decode(who["id"]).decode() == who["id_string"]
    assert (who["role"], who["missing"], who["node_ou"]) == ("pharmacist", None, "client")
    assert json.loads(json.dumps(who)) == who
