"""Fabric's client identity string, as the chaincode's cid library and the client both form it.

`x509::<subject>::<issuer>` with each DN written the way Go's pkix.Name.String() writes it
(fabric-chaincode-go pkg/cid). The shim reports it to the contract (GetID), devnet's MSP and the
gateway compute it for the same certificate, so one function forms it for all of them.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

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
