"""Secret, renewable orthogonal transforms derived from a key.

A Haar-random orthogonal matrix preserves inner products exactly, so cosine scores (and
therefore the calibrated operating points) survive the transform, while a vector seen
only in the transformed domain is uniformly distributed on the sphere to anyone who does
not know the matrix.

Derivation: HKDF-SHA256 (``cryptography``) over the secret and a length-prefixed context
yields a 256-bit seed; a ChaCha20 keystream under that seed gives the uniform variates,
turned into Gaussians (Box-Muller), from which ``KeyedRotation`` builds a Haar-distributed
orthogonal matrix as a product of Householder reflections.
Using a cryptographic stream rather than numpy's PCG64 means that one leaked matrix says
nothing about the seed or about any other matrix.
Written here rather than with scipy.stats.ortho_group, which draws only from numpy's
(non-cryptographic) bit generators and runs a LAPACK QR (see KeyedRotation on why not).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

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


class KeyDeriver(Protocol):
    """A transform key held somewhere (this process, or a PKCS#11 token): HKDF-Expand
    (RFC 5869) of ``info`` under its pseudorandom key, ``length`` bytes."""

    def expand(self, info: bytes, length: int) -> bytes: ...


class SecretDeriver:
    """``derive_key``'s secret held in this process, as a ``KeyDeriver``: the extract step
    is done once here, so ``derive_with(SecretDeriver(s), ...) == derive_key(s, ...)``."""

    __slots__ = ("_prk",)

    def __init__(self, secret: bytes, *, salt: bytes | None = _HKDF_SALT) -> None:
        self._prk = HKDF.extract(hashes.SHA256(), salt, secret)

    def expand(self, info: bytes, length: int) -> bytes:
        return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(self._prk)

    def __repr__(self) -> str:
        return "SecretDeriver(<withheld>)"


def derive_with(deriver: KeyDeriver, label: str, *fields: str | bytes | int,
                length: int = 32) -> bytes:
    """``derive_key`` under a held transform key: the same info encoding."""
    return deriver.expand(encode_context(label, *fields), length)


def _keystream(seed: bytes, n_bytes: int) -> bytes:
    # ChaCha20 with a fixed all-zero nonce is safe here: each seed is used for one stream.
    cipher = Cipher(algorithms.ChaCha20(seed, b"\x00" * 16), mode=None)
    return cipher.encryptor().update(b"\x00" * n_bytes)


class KeyedRotation:
    """Haar-random orthogonal matrix Q determined by a 32-byte seed, kept in Householder
    form: Q = H_1 H_2 ... H_{n-1} D (Stewart 1980). H_k reflects coordinates k..n along a
    unit vector built from an independent Gaussian vector of length n-k+1, D holds the
    signs that make the distribution exactly Haar (the same law as the sign-corrected Q of
    a QR decomposition of a Gaussian matrix, Mezzadri 2007).

    Applying Q to a vector costs O(n^2) elementwise work and no LAPACK/BLAS-3 call. That
    matters here: a threaded BLAS call (e.g. ``numpy.linalg.qr``) leaves OpenBLAS worker
    threads spinning for up to ~0.1 s, which on a 2-core machine steals the core that the
    next face-embedding inference needs."""

    def __init__(self, seed: bytes, dim: int) -> None:
        if len(seed) != 32:
            raise ValueError("seed must be 32 bytes")
        if dim < 2:
            raise ValueError("dim must be at least 2")
        self.dim = dim
        count = dim * (dim + 1) // 2
        gauss = _gaussians(seed, count)
        self._reflectors: list[np.ndarray] = []
        signs = np.empty(dim)
        offset = 0
        for k in range(dim):
            x = gauss[offset: offset + dim - k]
            offset += dim - k
            first_sign = 1.0 if x[0] >= 0 else -1.0
            if k == dim - 1:
                signs[k] = first_sign  # the last 1x1 block: R's entry is x itself
                break
            v = x.copy()
            v[0] += first_sign * float(np.sqrt(np.dot(x, x)))
            self._reflectors.append(v / np.sqrt(np.dot(v, v)))
            signs[k] = -first_sign  # H_k maps x to -sign(x_0)|x| e_0
        self._signs = signs

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Q @ v for a vector, or Q @ each column of a (dim, m) array (float64)."""
        out = np.array(vectors, dtype=np.float64, copy=True)
        if out.shape[0] != self.dim:
            raise ValueError(f"expected leading dimension {self.dim}")
        out = (self._signs * out.T).T
        for k in range(len(self._reflectors) - 1, -1, -1):
            u = self._reflectors[k]
            tail = out[k:]
            tail -= 2.0 * np.multiply.outer(u, u @ tail)
        return out

    def apply_inverse(self, vectors: np.ndarray) -> np.ndarray:
        """Q^T @ v (= Q^-1 @ v): the reflectors in the opposite order, then the signs
        (each H_k is its own inverse, D too)."""
        out = np.array(vectors, dtype=np.float64, copy=True)
        if out.shape[0] != self.dim:
            raise ValueError(f"expected leading dimension {self.dim}")
        for k, u in enumerate(self._reflectors):
            tail = out[k:]
            tail -= 2.0 * np.multiply.outer(u, u @ tail)
        return (self._signs * out.T).T

    def matrix(self) -> np.ndarray:
        return np.ascontiguousarray(self.apply(np.eye(self.dim)))


def _gaussians(seed: bytes, count: int) -> np.ndarray:
    """``count`` standard normal variates from the ChaCha20 stream of ``seed``."""
    pairs = (count + 1) // 2
    words = np.frombuffer(_keystream(seed, pairs * 2 * 8), dtype="<u8")
    # 53 high bits -> uniform in [0, 1); 1 - u lies in (0, 1] so the log is finite.
    uniform = (words >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    u1, u2 = 1.0 - uniform[0::2], uniform[1::2]
    radius = np.sqrt(-2.0 * np.log(u1))
    gauss = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
    return gauss[:count]


def haar_orthogonal(seed: bytes, dim: int) -> np.ndarray:
    """dim x dim Haar-random orthogonal matrix (float64) determined by a 32-byte seed."""
    return KeyedRotation(seed, dim).matrix()
