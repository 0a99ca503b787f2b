"""Secret, renewable orthogonal transforms derived from a key.

A Haar-random orthogonal matrix preserves inner products exactly, so cosine scores (and
therefore the calibrated operating points) survive the transform, while a vector seen
only in the transformed domain is uniformly distributed on the sphere to anyone who does
not know the matrix.

Derivation: HKDF-SHA256 (``cryptography``) over the secret and a length-prefixed context
yields a 256-bit seed; a ChaCha20 keystream under that seed gives the uniform variates,
turned into Gaussians (Box-Muller); QR of the Gaussian matrix with the signs of R's
diagonal folded into Q gives a Haar-distributed orthogonal matrix (Mezzadri 2007).
Using a cryptographic stream rather than numpy's PCG64 means that one leaked matrix says
nothing about the seed or about any other matrix.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_HKDF_SALT = b"mip/face_engine/protect/v1"


def encode_context(*fields: str | bytes | int) -> bytes:
    """Unambiguous encoding: each field typed and length-prefixed, so ("ab","c") and
    ("a","bc") never collide."""
    out = bytearray()
    for field in fields:
        if isinstance(field, bool):
            raise TypeError("bool is not a context field")
        if isinstance(field, int):
            tag, raw = b"i", str(field).encode()
        elif isinstance(field, str):
            tag, raw = b"s", field.encode("utf-8")
        elif isinstance(field, bytes):
            tag, raw = b"b", field
        else:
            raise TypeError(f"unsupported context field type {type(field).__name__}")
        out += tag + len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def derive_key(secret: bytes, label: str, *fields: str | bytes | int, length: int = 32) -> bytes:
    """HKDF-SHA256(secret) with info = label and fields; distinct labels give independent
    keys (key separation)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=_HKDF_SALT,
                info=encode_context(label, *fields))
    return hkdf.derive(secret)


def _keystream(seed: bytes, n_bytes: int) -> bytes:
    # ChaCha20 with a fixed all-zero nonce is safe here: each seed is used for one stream.
    cipher = Cipher(algorithms.ChaCha20(seed, b"\x00" * 16), mode=None)
    return cipher.encryptor().update(b"\x00" * n_bytes)


def haar_orthogonal(seed: bytes, dim: int) -> np.ndarray:
    """dim x dim Haar-random orthogonal matrix (float64) determined by a 32-byte seed."""
    if len(seed) != 32:
        raise ValueError("seed must be 32 bytes")
    if dim < 2:
        raise ValueError("dim must be at least 2")
    count = dim * dim + (dim * dim) % 2
    words = np.frombuffer(_keystream(seed, count * 8), dtype="<u8")
    # 53 high bits -> uniform in [0, 1); 1 - u lies in (0, 1] so the log is finite.
    uniform = (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    u1, u2 = 1.0 - uniform[0::2], uniform[1::2]
    radius = np.sqrt(-2.0 * np.log(u1))
    gauss = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    q, r = np.linalg.qr(gauss[: dim * dim].reshape(dim, dim))
    q *= np.sign(np.diag(r))
    return np.ascontiguousarray(q)
