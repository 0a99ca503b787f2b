"""The submitting client's identity, as fabric-chaincode-go's `pkg/cid` reads it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from chaincode.protocol.fabric_identity import go_distinguished_name
from chaincode.shim._protos import DecodeError, identities_pb2
from chaincode.shim.errors import AttributeAssertionError, IdentityError

# Fabric CA's attribute extension (pkg/attrmgr): JSON {"attrs": {"name": "value", ...}}.
ATTRIBUTE_OID = ObjectIdentifier("1.2.3.4.5.6.7.8.1")
NODE_OU_ROLES = ("client", "peer", "admin", "orderer")

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
