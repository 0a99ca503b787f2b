"""RFC 9497 OPRF(ristretto255, SHA-512), mode 0 (base): blind, evaluate, finalize.

An oblivious pseudorandom function lets a client learn F(k, x) = H(x, k * HashToGroup(x))
from a server that holds `k`, while the server learns nothing of `x` (it sees only the
blinded element r * HashToGroup(x) for a fresh random scalar r) and the client learns nothing
of `k`. The vault's password hardening (gateway/services/password_hardening.py) uses it so
that checking a password guess needs the server's key, i.e. the server's answer.

Composition, no primitive written here: the group is libsodium's ristretto255 (through
`pysodium` over Debian's libsodium23: `crypto_core_ristretto255_from_hash`,
`crypto_scalarmult_ristretto255`, scalar reduce / invert / random); hashes are hashlib's
SHA-512. What is spelled out here is only the RFC's glue: `expand_message_xmd` (RFC 9380
5.3.1; one 64-byte block, the only length the suite uses) and the byte layouts of
HashToGroup, HashToScalar, DeriveKeyPair and Finalize. The RFC's test vectors (Appendix
A.1.1) pin all of it: tests/gateway/holder/test_oprf_rfc9497.py.

Inputs from the other side are checked: a blinded or evaluated element must be a canonical
encoding of a ristretto255 point other than the identity (`DeserializeElement`), else
`OprfError`; a scalar multiplication that yields the identity (libsodium refuses it) is the
same error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pysodium

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
OUTPUT_BYTES = 64  # Nh: SHA-512
MAX_INPUT_BYTES = 0xFFFF  # I2OSP(len(input), 2) in Finalize
SUITE = b"ristretto255-SHA512"
MODE_OPRF = 0
CONTEXT = b"OPRFV1-" + bytes([MODE_OPRF]) + b"-" + SUITE
_HASH_TO_GROUP_DST = b"HashToGroup-" + CONTEXT
_HASH_TO_SCALAR_DST = b"HashToScalar-" + CONTEXT
_DERIVE_KEY_PAIR_DST = b"DeriveKeyPair" + CONTEXT
_IDENTITY = bytes(ELEMENT_BYTES)
_UNIFORM_BYTES = 64  # what ristretto255's one-way map and wide scalar reduction take
_SHA512_BLOCK = 128  # s_in_bytes of SHA-512 (expand_message_xmd's Z_pad)


class OprfError(ValueError):
    """An element or scalar that is not acceptable (not canonical, the identity, zero)."""


@dataclass(frozen=True)
class Blinded:
    """The client's state between `blind` and `finalize`: keep `blind` private, send
    `element`."""

    blind: bytes
    element: bytes

    def __repr__(self) -> str:
        return f"Blinded(element={self.element.hex()}, blind=<withheld>)"


def expand_message_xmd(msg: bytes, dst: bytes, length: int = _UNIFORM_BYTES) -> bytes:
    """RFC 9380 5.3.1 with SHA-512, for `length` <= 64 (one output block, ell = 1)."""
    if not 0 < length <= hashlib.sha512().digest_size:
        raise ValueError("this expand_message_xmd serves one SHA-512 block (1..64 bytes)")
    if len(dst) > 255:
        raise ValueError("domain separation tag over 255 bytes")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(_SHA512_BLOCK) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime
    b_0 = hashlib.sha512(msg_prime).digest()
    b_1 = hashlib.sha512(b_0 + b"\x01" + dst_prime).digest()
    return b_1[:length]


def hash_to_group(data: bytes) -> bytes:
    """RFC 9380 hash_to_ristretto255 with the suite's HashToGroup DST."""
    return bytes(pysodium.crypto_core_ristretto255_from_hash(
        expand_message_xmd(data, _HASH_TO_GROUP_DST)))


def hash_to_scalar(data: bytes, dst: bytes = _HASH_TO_SCALAR_DST) -> bytes:
    """64 uniform bytes reduced modulo the group order (little-endian, RFC 9497 4.1)."""
    return bytes(pysodium.crypto_core_ristretto255_scalar_reduce(
        expand_message_xmd(data, dst)))


def derive_key_pair(seed: bytes, info: bytes) -> tuple[bytes, bytes]:
    """RFC 9497 3.2.1 DeriveKeyPair: (skS, pkS) from a 32-byte seed and a public info."""
    if len(seed) != 32:
        raise ValueError("DeriveKeyPair takes a 32-byte seed")
    if len(info) > 0xFFFF:
        raise ValueError("DeriveKeyPair info over 65535 bytes")
    derive_input = seed + len(info).to_bytes(2, "big") + info
    for counter in range(256):
        sk = hash_to_scalar(derive_input + bytes([counter]), _DERIVE_KEY_PAIR_DST)
        if sk != bytes(SCALAR_BYTES):
            return sk, bytes(pysodium.crypto_scalarmult_ristretto255_base(sk))
    raise OprfError("DeriveKeyPair found no non-zero scalar")  # probability ~2^-2000


def blind(data: bytes, *, blind_scalar: bytes | None = None) -> Blinded:
    """Client, step 1. `blind_scalar` only for the RFC's test vectors; else a fresh random
    non-zero scalar (libsodium's scalar_random)."""
    _check_input(data)
    r = blind_scalar if blind_scalar is not None else bytes(
        pysodium.crypto_core_ristretto255_scalar_random())
    _check_scalar(r)
    point = hash_to_group(data)
    if point == _IDENTITY:  # RFC 9497: InvalidInputError (negligible probability)
        raise OprfError("input hashes to the identity element")
    return Blinded(r, _mult(r, point))


def evaluate(sk: bytes, blinded_element: bytes) -> bytes:
    """Server: BlindEvaluate, skS * blindedElement, for a checked element."""
    _check_scalar(sk)
    return _mult(sk, _deserialize(blinded_element))


def finalize(data: bytes, blinded: Blinded, evaluated_element: bytes) -> bytes:
    """Client, step 2: unblind the server's answer and hash it with the input (64 bytes)."""
    _check_input(data)
    inverse = bytes(pysodium.crypto_core_ristretto255_scalar_invert(blinded.blind))
    unblinded = _mult(inverse, _deserialize(evaluated_element))
    return hashlib.sha512(
        len(data).to_bytes(2, "big") + data
        + len(unblinded).to_bytes(2, "big") + unblinded + b"Finalize").digest()


def evaluate_unblinded(sk: bytes, data: bytes) -> bytes:
    """F(skS, input) computed by the key holder directly (RFC 9497 3.3.1 Evaluate). Used
    where the key holder is also the client (the enrolling org's own share)."""
    _check_input(data)
    _check_scalar(sk)
    point = hash_to_group(data)
    if point == _IDENTITY:
        raise OprfError("input hashes to the identity element")
    element = _mult(sk, point)
    return hashlib.sha512(
        len(data).to_bytes(2, "big") + data
        + len(element).to_bytes(2, "big") + element + b"Finalize").digest()


def _check_input(data: bytes) -> None:
    if not isinstance(data, bytes) or len(data) > MAX_INPUT_BYTES:
        raise OprfError(f"OPRF input must be bytes of at most {MAX_INPUT_BYTES}")


def _check_scalar(s: bytes) -> None:
    if not isinstance(s, bytes) or len(s) != SCALAR_BYTES or s == bytes(SCALAR_BYTES):
        raise OprfError("scalar must be 32 bytes and not zero")
    # canonical (< group order): reducing the 64-byte zero-extension changes nothing
    if bytes(pysodium.crypto_core_ristretto255_scalar_reduce(s + bytes(32))) != s:
        raise OprfError("scalar is not reduced modulo the group order")


def _deserialize(element: bytes) -> bytes:
    """RFC 9497 DeserializeElement: canonical ristretto255 encoding, not the identity."""
    if not isinstance(element, bytes) or len(element) != ELEMENT_BYTES:
        raise OprfError(f"element must be {ELEMENT_BYTES} bytes")
    if element == _IDENTITY or not pysodium.crypto_core_ristretto255_is_valid_point(element):
        raise OprfError("element is not a valid ristretto255 point")
    return element


def _mult(scalar: bytes, element: bytes) -> bytes:
    try:
        return bytes(pysodium.crypto_scalarmult_ristretto255(scalar, element))
    except ValueError:  # libsodium refuses a product that is the identity
        raise OprfError("scalar multiplication gave the identity element") from None
