"""HKDF-Expand (RFC 5869, SHA-256) over an HMAC that a key holder computes.

A PKCS#11 token computes HMAC-SHA256 under a key it never releases (CKM_SHA256_HMAC), but
PKCS#11 2.40 has no HKDF mechanism, and SoftHSM2 2.6 implements none (CKM_HKDF_DERIVE is
PKCS#11 3.0). The expand step is a fixed composition of HMAC calls, done here with the
token's HMAC; tests check it byte for byte against pyca/cryptography's `HKDFExpand`.
"""

from __future__ import annotations

from collections.abc import Callable

HASH_BYTES = 32
MAX_LENGTH = 255 * HASH_BYTES


def hkdf_expand(hmac_sha256: Callable[[bytes], bytes], info: bytes, length: int) -> bytes:
    """T(i) = HMAC(PRK, T(i-1) || info || i), concatenated and cut to `length` bytes;
    `hmac_sha256(message)` computes HMAC-SHA256 under the PRK."""
    if not 0 < length <= MAX_LENGTH:
        raise ValueError(f"HKDF-Expand length must be 1..{MAX_LENGTH}")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_sha256(block + info + bytes([counter]))
        out += block
        counter += 1
    return out[:length]
