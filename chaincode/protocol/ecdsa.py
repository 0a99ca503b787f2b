"""Fabric's ECDSA rule: signatures are DER with a low S.

Fabric's MSP refuses a signature whose S lies in the upper half of the curve order (the
malleable twin of a valid signature), so every signer normalises to low-S and every verifier
checks it. pyca/cryptography signs and (de)serialises DER but has no low-S option, so the rule
(S -> n - S when S > n/2, Fabric's bccsp/utils ToLowS) is composed here from its
decode/encode_dss_signature, once for the project: the Gateway client signs with it and devnet,
which mints and verifies Fabric signatures as a peer would, uses the same functions.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)


class UnsupportedCurve(ValueError):
    """A curve Fabric's software BCCSP does not accept."""


# Group orders of the curves Fabric's software BCCSP accepts (FIPS 186-4, D.1.2).
_CURVE_ORDERS: dict[str, int] = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "C7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}



def curve_order(curve: ec.EllipticCurve) -> int:
    """The group order n of a curve Fabric accepts (P-256, P-384); UnsupportedCurve otherwise."""
    try:
        return _CURVE_ORDERS[curve.name]
    except KeyError:
        raise UnsupportedCurve(f"unsupported curve {curve.name}; use P-256 or P-384") from None


def to_low_s(der_signature: bytes, curve: ec.EllipticCurve) -> bytes:
    """Return the DER signature with S replaced by n - S when S > n/2."""
    r, s = decode_dss_signature(der_signature)
    order = curve_order(curve)
    if s <= order // 2:
        return der_signature  # already low-S (half the time): no re-encoding
    return encode_dss_signature(r, order - s)


def is_low_s(der_signature: bytes, curve: ec.EllipticCurve) -> bool:
    """Whether a DER signature's S is <= n/2 (ValueError when it is not DER)."""
    _, s = decode_dss_signature(der_signature)
    return s <= curve_order(curve) // 2
