"""The submitting client's identity, as fabric-chaincode-go's `pkg/cid` reads it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from chaincode.shim._protos import DecodeError, identities_pb2
from chaincode.shim.errors import AttributeAssertionError, IdentityError

# Fabric CA's attribute extension (pkg/attrmgr): JSON {"attrs": {"name": "value", ...}}.
ATTRIBUTE_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")
NODE_OU_ROLES = ("client", "peer", "admin", "orderer")

# Go's pkix.Name.ToRDNSequence emits only these attributes, in this order, each type's
# values as one (multi-valued) RDN; getDN then writes the RDNs last-to-first.
_GO_NAME_ORDER: tuple[tuple[ObjectIdentifier, str], ...] = (
    (NameOID.COUNTRY_NAME, "C"),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST"),
    (NameOID.LOCALITY_NAME, "L"),
    (NameOID.STREET_ADDRESS, "STREET"),
    (NameOID.POSTAL_CODE, "POSTALCODE"),
    (NameOID.ORGANIZATION_NAME, "O"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU"),
    (NameOID.COMMON_NAME, "CN"),
    (NameOID.SERIAL_NUMBER, "SERIALNUMBER"),
)
# Go keeps only the last CommonName / SerialNumber of a name (they are single strings).
_SINGLE_VALUED = frozenset({NameOID.COMMON_NAME, NameOID.SERIAL_NUMBER})


def _escape(value: str) -> str:
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if (index == 0 and char in " #") or (index == last and char == " "):
            out.append("\\" + char)
        elif char in ',+"\\<>;':
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def go_distinguished_name(name: x509.Name) -> str:
    """A DN string byte-identical to Go cid's getDN(pkix.Name) for a parsed certificate.

    getDN (fabric-chaincode-go pkg/cid/cid.go) is Go's RDNSequence.String() of
    pkix.Name.ToRDNSequence(), i.e. pkix.Name.String() for the attributes Go parses into Name
    fields; others (e-mail, ...) are dropped. No Python library formats a DN Go's way
    (cryptography's rfc4514_string keeps the certificate's order and every attribute), so it is
    written here, once: devnet's MSP and the gateway import it for the same identity string.
    """
    rdns: list[str] = []
    for oid, label in _GO_NAME_ORDER:
        values = [str(attr.value) for attr in name.get_attributes_for_oid(oid)]
        if not values:
            continue
        if oid in _SINGLE_VALUED:
            values = values[-1:]
        if not any(values) and oid in _SINGLE_VALUED:
            continue
        rdns.append("+".join(f"{label}={_escape(v)}" for v in values))
    return ",".join(reversed(rdns))


class ClientIdentity:
    """MSP id, Fabric ID, certificate, attributes and OUs of a SerializedIdentity."""

    def __init__(self, creator: bytes) -> None:
        try:
            serialized = identities_pb2.SerializedIdentity.FromString(creator)
        except DecodeError:
            raise IdentityError("failed to unmarshal transaction invoker's identity") from None
        self._msp_id: str = serialized.mspid
        try:
            self._cert = x509.load_pem_x509_certificate(serialized.id_bytes)
        except ValueError:
            raise IdentityError(
                "identity bytes are not an X.509 PEM certificate (idemix is not supported)"
            ) from None
        self._attrs: dict[str, str] | None = None

    def get_msp_id(self) -> str:
        return self._msp_id

    def get_id_string(self) -> str:
        """`x509::<subject DN>::<issuer DN>`, the identity string Fabric uses."""
        subject = go_distinguished_name(self._cert.subject)
        issuer = go_distinguished_name(self._cert.issuer)
        return f"x509::{subject}::{issuer}"

    def get_id(self) -> str:
        """Base64 of `get_id_string()`: exactly what Go's `cid.GetID` returns."""
        return base64.b64encode(self.get_id_string().encode("utf-8")).decode("ascii")

    def get_x509_certificate(self) -> x509.Certificate:
        return self._cert

    def _attributes(self) -> dict[str, str]:
        if self._attrs is None:
            try:
                ext = self._cert.extensions.get_extension_for_oid(ATTRIBUTE_OID)
            except x509.ExtensionNotFound:
                self._attrs = {}
                return self._attrs
            raw = ext.value
            data = raw.value if isinstance(raw, x509.UnrecognizedExtension) else b""
            try:
                parsed = json.loads(data)
            except ValueError:
                raise IdentityError("failed to unmarshal attributes from certificate") from None
            attrs = parsed.get("attrs") if isinstance(parsed, dict) else None
            if attrs is None:
                attrs = {}
            if not isinstance(attrs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in attrs.items()
            ):
                raise IdentityError("certificate attributes are not a string map")
            self._attrs = attrs
        return self._attrs

    def get_attributes(self) -> dict[str, str]:
        return dict(self._attributes())

    def get_attribute_value(self, name: str) -> str | None:
        """The value of a Fabric CA attribute (hf.Attrs), or None when absent."""
        return self._attributes().get(name)

    def assert_attribute_value(self, name: str, value: str) -> None:
        actual = self.get_attribute_value(name)
        if actual is None:
            raise AttributeAssertionError(f"attribute '{name}' was not found")
        if actual != value:
            raise AttributeAssertionError(f"attribute '{name}' does not have the expected value")

    def get_ou_values(self) -> list[str]:
        return [
            str(attr.value)
            for attr in self._cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]

    def has_ou_value(self, value: str) -> bool:
        return value in self.get_ou_values()

    def get_node_ou(self, roles: Iterable[str] = NODE_OU_ROLES) -> str | None:
        """The NodeOU role (client/peer/admin/orderer) carried as an OU, if any."""
        ous = self.get_ou_values()
        for role in roles:
            if role in ous:
                return role
        return None
