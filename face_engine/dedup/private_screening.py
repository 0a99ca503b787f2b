"""Private 1:N screening of one query against another org's gallery (three parties, CKKS).

The protocol core only: pure functions over bytes and arrays. Who plays which role and how
the messages travel between the orgs' gateways is gateway/services/private_screening.py;
the security argument is docs/face.md, section 5b.

Parties, for one query from the enrolling org Q against org G's gallery:

* V (the third org) holds the CKKS secret key, in memory only: ``KeyHolder.generate()``;
  it publishes ``KeyHolder.public_bundle()`` (public key, relinearisation keys, the
  conjugation key).
* Q encrypts its unit query under V's public key: ``encrypt_query`` (64 ciphertexts, the
  m-th holds q_2m + i q_2m+1 in every slot; each an encryption of zero made ahead,
  ``QueryZeros``, plus the plaintext).
* G, with its gallery encoded once as plaintexts (``encode_gallery``; its references never
  leave G), computes ``score_query``: the query's 128 components, each real by
  construction (c + conj(c) = Enc(2 Re c); c - conj(c) = Enc(2i Im c) meets gallery
  columns encoded times -i), Enc(||q||^2) = Enc(sum_m c_m conj(c_m)) (ciphertext
  products, one relinearisation), and per block of 2 * slots references
  Enc(r_i * 2 (s_i - t)) with fresh random positive masks r_i (two per slot: one for the
  real, one for the imaginary half), the blocks shuffled, a few decoy slots of known sign
  planted, and each output re-randomised with a fresh encryption of small noise (the
  masks and that encryption are a block's ``BlockPad``, made ahead: ``Rerandomisers``;
  the query's path is the products and what needs the query). It keeps a
  ``ScoringSecret`` (the shuffle, the decoys) and sends V the bytes.
* V runs ``decide``: it decrypts the norm first and releases nothing unless every slot holds
  ||q||^2 within ``norm_eps`` of 1; then it decrypts the masked scores and returns their
  signs as bits, in G's shuffled order, to G only.
* G runs ``matches``: it checks the decoys' bits (a V that flips or withholds bits is caught
  with high probability), undoes the shuffle and gets the indices of its references at or
  above the threshold.

Packing: "complex" CKKS packing puts two references in one slot (real and imaginary
parts), so a block of N/2 slots holds N references and the score of a block is
sum_j q_j * P_{b,j} with plaintext-ciphertext products only (no rotations).
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import secrets
import struct
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from face_engine.dedup.errors import DedupError

try:  # TenSEAL's bundled Microsoft SEAL bindings
    import tenseal.sealapi as seal
except ImportError:  # pragma: no cover - a dependency of the project (pyproject.toml)
    seal = None

FORMAT = b"mipps2"
DIM = 128
# Q's ciphertexts: two query components per ciphertext (real and imaginary part), which
# halves Q's encryptions, the upload and G's conjugations against one component each.
QUERY_CTS = DIM // 2


class ScreeningError(DedupError):
    code = "screening_error"


class QueryRefused(ScreeningError):
    """V found the query is not a unit vector: nothing is released."""

    code = "screening_query_refused"


class MalformedMessage(ScreeningError):
    """Bytes from another party are not a well-formed protocol message (garbage, wrong
    parameters, wrong counts): the party that sent them deviated."""

    code = "screening_malformed_message"


class DecoyMismatch(ScreeningError):
    """V's bits contradict decoys whose sign G planted: V deviated (or its answer was
    corrupted on the way)."""

    code = "screening_decoy_mismatch"


@dataclass(frozen=True)
class Params:
    """CKKS parameters. N = 8192 with primes of 60, 40 | 60 (special) bits: 160 bits, under
    the 218 bits HE-standard allows at 128-bit security for N = 8192. The query (scale
    2^40: the conjugation's key switch adds noise of about 2^19, 2^-21 relative) times the
    gallery (2^30) lands at 2^70, rescaled by the 40-bit prime to about 2^30 at the last
    level (the rescale's rounding costs about 2e-3 / 2^(scale - 20) in a score: 2e-6 here),
    where the masks (scale 2^15) bring it to 2^45: the largest masked value (2^11 * 4)
    stays under 2^58, inside the 60-bit prime's signed range. A mask encoded at 2^15 is
    off by about 1e-3, and its imaginary error mixes the slot's other reference in:
    decisions can differ from the plaintext's only where |s - t| < 1e-4."""

    poly_degree: int = 8192
    coeff_bits: tuple[int, ...] = (60, 40, 60)
    query_scale_bits: int = 40
    gallery_scale_bits: int = 30
    mask_scale_bits: int = 15
    # masks r are log-uniform in [2^lo, 2^hi): V sees r * |s - t| and so |s - t| only
    # within a factor of 2^(hi - lo).
    mask_log2: tuple[float, float] = (4.0, 11.0)
    # the re-randomising noise added to each masked output (slot units); it can flip a
    # decision only where |s - t| < smudge / (2 * 2^lo) (1.2e-4 with these defaults).
    smudge: float = 2.0 ** -8
    norm_eps: float = 1e-3
    decoys: int = 16  # decoy slots per query (half of them positive)

    @property
    def slots(self) -> int:
        return self.poly_degree // 2

    @property
    def block_refs(self) -> int:
        return self.poly_degree  # two references per slot


def _require_seal() -> Any:
    if seal is None:
        raise ScreeningError("tenseal is not installed (pip install tenseal==0.3.16)")
    return seal


class Context:
    """SEAL objects shared by all roles for one ``Params``."""

    def __init__(self, params: Params | None = None) -> None:
        s = _require_seal()
        self.params = params or Params()
        parms = s.EncryptionParameters(s.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(self.params.poly_degree)
        parms.set_coeff_modulus(
            s.CoeffModulus.Create(self.params.poly_degree, list(self.params.coeff_bits)))
        self.seal_context = s.SEALContext(parms, True, s.SEC_LEVEL_TYPE.TC128)
        if not self.seal_context.parameters_set():
            raise ScreeningError("invalid CKKS parameters: "
                                 + self.seal_context.parameters_error_message())
        self.encoder = s.CKKSEncoder(self.seal_context)
        self.evaluator = s.Evaluator(self.seal_context)
        self.top = self.seal_context.first_parms_id()
        self.last = self.seal_context.last_parms_id()
        # The scales score_query's ciphertexts have, fixed by the parameters (the query's
        # scale is checked on arrival): the products at 2^q * 2^g, the scores after the
        # rescale by the last data prime (SEAL divides the scale by it, in double), the
        # masked scores times the masks' 2^m. What is made ahead of a query is made at them.
        top_primes = self.seal_context.first_context_data().parms().coeff_modulus()
        self.product_scale = 2.0 ** self.params.query_scale_bits \
            * 2.0 ** self.params.gallery_scale_bits
        self.score_scale = self.product_scale / float(top_primes[-1].value())
        self.masked_scale = self.score_scale * 2.0 ** self.params.mask_scale_bits

    @property
    def conj_galois_elt(self) -> int:
        return 2 * self.params.poly_degree - 1


# --- serialisation: SEAL's bindings save to a path only; messages are length-prefixed ------

_T = TypeVar("_T")


def _tmpdir() -> str | None:
    return "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - private temp dir


class _Scratch:
    """A private temporary folder for SEAL's save/load-by-path."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="mip-ps-", dir=_tmpdir())
        self.path = Path(self._dir.name) / "obj"

    def dump(self, obj: Any) -> bytes:
        obj.save(str(self.path))
        data = self.path.read_bytes()
        return data

    def load(self, ctx: Context, factory: Callable[[], _T], data: bytes) -> _T:
        self.path.write_bytes(data)
        obj = factory()
        try:
            obj.load(ctx.seal_context, str(self.path))  # type: ignore[attr-defined]
        except (RuntimeError, ValueError, TypeError, IndexError, OSError) as exc:
            raise MalformedMessage(f"not a valid SEAL object: {type(exc).__name__}") from None
        return obj

    def close(self) -> None:
        self._dir.cleanup()

    def __enter__(self) -> _Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pack(parts: Sequence[bytes]) -> bytes:
    out = [FORMAT, struct.pack(">I", len(parts))]
    for part in parts:
        out.append(struct.pack(">Q", len(part)))
        out.append(part)
    return b"".join(out)


def _unpack(data: bytes, *, max_parts: int) -> list[bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage("message is not bytes")
    view = memoryview(data)
    if bytes(view[:len(FORMAT)]) != FORMAT or len(view) < len(FORMAT) + 4:
        raise MalformedMessage("not a private-screening message")
    (count,) = struct.unpack(">I", view[len(FORMAT):len(FORMAT) + 4])
    if count > max_parts:
        raise MalformedMessage("too many parts")
    pos = len(FORMAT) + 4
    parts: list[bytes] = []
    for _ in range(count):
        if pos + 8 > len(view):
            raise MalformedMessage("truncated message")
        (size,) = struct.unpack(">Q", view[pos:pos + 8])
        pos += 8
        if pos + size > len(view):
            raise MalformedMessage("truncated message")
        parts.append(bytes(view[pos:pos + size]))
        pos += size
    if pos != len(view):
        raise MalformedMessage("trailing bytes")
    return parts


# --- V: the key holder ------------------------------------------------------------------

@dataclass(frozen=True)
class PublicBundle:
    """What V publishes: enough to encrypt (Q, G) and to evaluate (G), not to decrypt.
    ``key_id``: SHA-256 of the public key's bytes, which names the key that encryptions
    made ahead (``QueryZeros``, ``Rerandomisers``) were made under."""

    public_key: Any
    relin_keys: Any
    galois_keys: Any
    key_id: bytes = b""


def load_public_bundle(ctx: Context, data: bytes) -> PublicBundle:
    s = _require_seal()
    parts = _unpack(data, max_parts=3)
    if len(parts) != 3:
        raise MalformedMessage("a public bundle has 3 parts")
    with _Scratch() as scratch:
        pk = scratch.load(ctx, s.PublicKey, parts[0])
        rk = scratch.load(ctx, s.RelinKeys, parts[1])
        gk = scratch.load(ctx, s.GaloisKeys, parts[2])
    if not gk.has_key(ctx.conj_galois_elt):
        raise MalformedMessage("the Galois keys lack the conjugation key")
    return PublicBundle(pk, rk, gk, hashlib.sha256(parts[0]).digest())


class KeyHolder:
    """V's CKKS key pair. The secret key exists only in this object, in memory: there is no
    way to export or import it (no serialisation of it, so it is never written to a file,
    not even the scratch files SEAL's bindings save through). V makes a new pair when its
    process starts (``generate``) and publishes the public part (``public_bundle``); a
    restart is a key rotation: what Q and G made ahead under the old key is keyed by
    ``PublicBundle.key_id`` and made anew (docs/face.md, 5b)."""

    def __init__(self, ctx: Context, secret_key: Any) -> None:
        s = _require_seal()
        self._ctx = ctx
        self._secret = secret_key
        keygen = s.KeyGenerator(ctx.seal_context, secret_key)
        self._public = s.PublicKey()
        keygen.create_public_key(self._public)
        self._relin = s.RelinKeys()
        keygen.create_relin_keys(self._relin)
        self._galois = s.GaloisKeys()
        keygen.create_galois_keys([ctx.conj_galois_elt], self._galois)
        self._decryptor = s.Decryptor(ctx.seal_context, secret_key)

    @classmethod
    def generate(cls, ctx: Context) -> KeyHolder:
        s = _require_seal()
        return cls(ctx, s.KeyGenerator(ctx.seal_context).secret_key())

    def public_bundle(self) -> bytes:
        with _Scratch() as scratch:
            return _pack([scratch.dump(self._public), scratch.dump(self._relin),
                          scratch.dump(self._galois)])

    def bundle(self) -> PublicBundle:
        with _Scratch() as scratch:
            key_id = hashlib.sha256(scratch.dump(self._public)).digest()
        return PublicBundle(self._public, self._relin, self._galois, key_id)

    def _decode(self, ct: Any) -> np.ndarray:
        s = _require_seal()
        pt = s.Plaintext()
        self._decryptor.decrypt(ct, pt)
        return np.asarray(self._ctx.encoder.decode_complex(pt), dtype=np.complex128)


# --- made ahead of a query: single-use encryptions under one V's key ----------------------

_Item = TypeVar("_Item")


class _MadeAhead(Generic[_Item]):
    """A queue of single-use items made before the queries that use them (``fill``, in the
    party's idle time), each taken once; ``take`` makes one on the spot when the queue is
    empty. Safe to ``fill`` from one thread while another takes (deque operations are
    atomic)."""

    def __init__(self, ctx: Context, bundle: PublicBundle) -> None:
        s = _require_seal()
        self._ctx = ctx
        self.bundle = bundle
        self.key_id = bundle.key_id
        self._encryptor = s.Encryptor(ctx.seal_context, bundle.public_key)
        self._ready: collections.deque[_Item] = collections.deque()

    def _make(self) -> _Item:
        raise NotImplementedError

    def _encrypt_zero(self, parms_id: Any) -> Any:
        ct = _require_seal().Ciphertext()
        self._encryptor.encrypt_zero(parms_id, ct)
        return ct

    def fill(self, count: int) -> None:
        """Top the queue up to ``count``."""
        while len(self._ready) < count:
            self._ready.append(self._make())

    def take(self) -> _Item:
        try:
            return self._ready.popleft()
        except IndexError:
            return self._make()

    def __len__(self) -> int:
        return len(self._ready)


class QueryZeros(_MadeAhead[Any]):
    """Q's public-key encryptions of zero at the query's level under one V's key, made
    before the query (between screenings: ``fill(QUERY_CTS)``), each used once:
    ``encrypt_query`` adds a query ciphertext's plaintext to one. SEAL's CKKS ``encrypt``
    is exactly ``encrypt_zero`` plus the plaintext (added to c0, the plaintext's scale
    taken), so the query is distributed as before; the queue only moves the public-key
    encryptions off the query's path."""

    def _make(self) -> Any:
        return self._encrypt_zero(self._ctx.top)


# --- Q: the querier ---------------------------------------------------------------------

def encrypt_query(ctx: Context, bundle: PublicBundle, query: np.ndarray,
                  zeros: QueryZeros | None = None) -> bytes:
    """64 ciphertexts under V's key, the m-th holding q_2m + i q_2m+1 in every slot (q
    normalised). ``zeros``: Q's encryptions of zero made ahead under this ``bundle``'s key
    (one per ciphertext is taken); without it, each ciphertext is encrypted here."""
    q = np.asarray(query, dtype=np.float64).reshape(-1)
    if q.shape[0] != DIM or not np.all(np.isfinite(q)) or not np.any(q):
        raise ScreeningError(f"query must be {DIM} finite numbers, not all zero")
    return encrypt_values(ctx, bundle, list(q / np.linalg.norm(q)), zeros=zeros)


def encrypt_values(ctx: Context, bundle: PublicBundle, values: Sequence[float] | np.ndarray,
                   zeros: QueryZeros | None = None) -> bytes:
    """Encrypt any 128 real values as a query, unchecked: what a dishonest querier can send
    (the tests play one with it). Honest callers use ``encrypt_query``."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] != DIM:
        raise ScreeningError(f"a query has {DIM} components")
    return encrypt_slot_values(ctx, bundle, list(v[0::2] + 1j * v[1::2]), zeros=zeros)


def encrypt_slot_values(ctx: Context, bundle: PublicBundle,
                        values: Sequence[complex], zeros: QueryZeros | None = None) -> bytes:
    """Encrypt any 64 complex values, the m-th in every slot of ciphertext m, unchecked:
    the most a dishonest querier controls short of differing slots."""
    s = _require_seal()
    q = list(values)
    if zeros is not None and zeros.key_id != bundle.key_id:
        raise ScreeningError("encryptions of zero made under another key holder's key")
    encryptor: Any = s.Encryptor(ctx.seal_context, bundle.public_key) if zeros is None \
        else None
    scale = 2.0 ** ctx.params.query_scale_bits
    parts = []
    with _Scratch() as scratch:
        for value in q:
            pt = s.Plaintext()
            ctx.encoder.encode(value if isinstance(value, complex) else float(value),
                               scale, pt)
            if zeros is None:
                ct = s.Ciphertext()
                encryptor.encrypt(pt, ct)
            else:  # what encrypt computes: a fresh encryption of zero plus the plaintext
                ct = zeros.take()
                ct.scale = scale  # an encryption of zero has no scale of its own
                ctx.evaluator.add_plain_inplace(ct, pt)
            parts.append(scratch.dump(ct))
    return _pack(parts)


# --- G: the gallery holder --------------------------------------------------------------

@dataclass
class EncodedGallery:
    """G's references as CKKS plaintexts: blocks[b][j] holds column j of references
    b*N .. b*N + N/2 - 1 (real parts) and b*N + N/2 .. (b+1)*N - 1 (imaginary parts),
    times -i for odd j (they meet Enc(2i q_j): ``score_query``), or None where that column
    is zero in the whole block (SEAL refuses a product with an all-zero plaintext; a spare
    block of padding rows is all None).
    ``count`` real references; the rest of the last block (and a spare block if the last
    one has fewer than ``2 * decoys`` free places) are zero rows that decoys use."""

    count: int
    blocks: list[list[Any]]
    free: np.ndarray  # positions (global index) of zero padding rows


def encode_gallery(ctx: Context, references: np.ndarray) -> EncodedGallery:
    """Encode G's references once (unit rows, float). Seconds per 100k; kept in memory."""
    s = _require_seal()
    refs = np.asarray(references)  # converted block by block: no float64 copy of 1M rows
    if refs.ndim != 2 or refs.shape[1] != DIM:
        raise ScreeningError(f"references must be an (n, {DIM}) array")
    per_block = ctx.params.block_refs
    half = ctx.params.slots
    total = refs.shape[0] + 2 * ctx.params.decoys
    n_blocks = max(1, math.ceil(total / per_block))
    scale = 2.0 ** ctx.params.gallery_scale_bits
    blocks: list[list[Any]] = []
    for b in range(n_blocks):
        chunk = np.zeros((per_block, DIM))
        rows = np.asarray(refs[b * per_block:(b + 1) * per_block], dtype=np.float64)
        chunk[:rows.shape[0]] = rows
        packed = chunk[:half] + 1j * chunk[half:]
        packed[:, 1::2] *= -1j  # odd components arrive as Enc(2i q_j)
        nonzero = np.any(packed != 0, axis=0)
        column_pts: list[Any] = []
        for j in range(DIM):
            if not nonzero[j]:
                column_pts.append(None)
                continue
            pt = s.Plaintext()
            ctx.encoder.encode(packed[:, j].tolist(), ctx.top, scale, pt)
            column_pts.append(pt)
        blocks.append(column_pts)
    free = np.arange(refs.shape[0], n_blocks * per_block)
    return EncodedGallery(count=refs.shape[0], blocks=blocks, free=free)


@dataclass(frozen=True)
class BlockPad:
    """What one score block needs that does not depend on the query, made before it: the
    block's fresh masks (``alpha``, ``beta``: ``score_query`` computes alpha z + beta conj(z)
    = r_a Re z + i r_b Im z) and its re-randomiser, a fresh public-key encryption of its
    smudging noise at the masked scores' level and scale. Used for one block of one query."""

    alpha: Any = field(repr=False)
    beta: Any = field(repr=False)
    noise: Any = field(repr=False)


class Rerandomisers(_MadeAhead[BlockPad]):
    """G's ``BlockPad``s under one V's key, made before the queries that use them (G's idle
    time: ``fill(len(gallery.blocks))``), one taken per block. A pad is what
    ``score_query`` drew and encoded per block before: masks log-uniform in
    [2^lo, 2^hi) per reference, noise uniform in [-smudge, smudge] per slot (real and
    imaginary parts), encrypted as SEAL's ``encrypt`` does (an encryption of zero plus the
    noise's plaintext); the queue only moves that work off the query's path. ``rng``: for
    tests; by default a generator seeded from the OS's randomness."""

    def __init__(self, ctx: Context, bundle: PublicBundle,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(ctx, bundle)
        self._rng = rng or np.random.default_rng(secrets.randbits(128))
        self._rng_lock = threading.Lock()  # a Generator is not safe across threads

    def _make(self) -> BlockPad:
        s = _require_seal()
        ctx, p = self._ctx, self._ctx.params
        half = p.slots
        lo, hi = p.mask_log2
        with self._rng_lock:
            r = 2.0 ** self._rng.uniform(lo, hi, size=p.block_refs)
            noise = self._rng.uniform(-p.smudge, p.smudge, size=half) \
                + 1j * self._rng.uniform(-p.smudge, p.smudge, size=half)
        r_a, r_b = _slot_split(r, half)
        mask_scale = 2.0 ** p.mask_scale_bits
        alpha = s.Plaintext()
        beta = s.Plaintext()
        ctx.encoder.encode(((r_a + r_b) / 2).tolist(), ctx.last, mask_scale, alpha)
        ctx.encoder.encode(((r_a - r_b) / 2).tolist(), ctx.last, mask_scale, beta)
        npt = s.Plaintext()
        ctx.encoder.encode(noise.tolist(), ctx.last, ctx.masked_scale, npt)
        ct = self._encrypt_zero(ctx.last)
        ct.scale = ctx.masked_scale  # an encryption of zero has no scale of its own
        ctx.evaluator.add_plain_inplace(ct, npt)
        return BlockPad(alpha=alpha, beta=beta, noise=ct)


@dataclass(frozen=True)
class ScoringSecret:
    """What G keeps from one query to read V's answer: the shuffle and the decoys."""

    order: np.ndarray  # order[k] = the gallery block sent at position k
    positive: np.ndarray  # global positions of decoys planted positive
    negative: np.ndarray  # global positions of decoys left negative (zero rows)
    count: int
    block_refs: int


@dataclass
class ScoredQuery:
    message: bytes  # for V
    secret: ScoringSecret = field(repr=False)  # G keeps


def _slot_split(values: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    return values[:half], values[half:]


def _load_query(ctx: Context, data: bytes, scratch: _Scratch) -> list[Any]:
    s = _require_seal()
    parts = _unpack(data, max_parts=QUERY_CTS)
    if len(parts) != QUERY_CTS:
        raise MalformedMessage(f"a query has {QUERY_CTS} ciphertexts")
    cts = []
    expected_scale = 2.0 ** ctx.params.query_scale_bits
    for part in parts:
        ct = scratch.load(ctx, s.Ciphertext, part)
        # The scale is metadata the querier sets: fix it, or a ciphertext claiming a
        # smaller scale would carry a larger value. The norm check below covers whatever
        # the ciphertext holds at this scale.
        if ct.size() != 2 or ct.parms_id() != ctx.top or ct.scale != expected_scale:
            raise MalformedMessage("query ciphertext with wrong size, level or scale")
        cts.append(ct)
    return cts


def score_query(ctx: Context, bundle: PublicBundle, gallery: EncodedGallery,
                query_message: bytes, threshold: float,
                rng: np.random.Generator | None = None,
                zeros: Rerandomisers | None = None) -> ScoredQuery:
    """G's online work for one query: the norm ciphertext, then the masked, shuffled,
    decoy-bearing, re-randomised score blocks (message for V) and G's ``ScoringSecret``.
    ``zeros``: G's block pads (masks and re-randomiser) made ahead under this ``bundle``
    (one per block is taken); without it, each block's pad is made here."""
    s = _require_seal()
    p = ctx.params
    if not 0.0 < threshold < 1.0:
        raise ScreeningError("threshold must be in (0, 1)")
    rng = rng or np.random.default_rng(secrets.randbits(128))
    ev = ctx.evaluator
    half = p.slots
    if zeros is None:
        zeros = Rerandomisers(ctx, bundle)
    elif zeros.key_id != bundle.key_id:
        raise ScreeningError("re-randomisers made under another key holder's key")
    with _Scratch() as scratch:
        query = _load_query(ctx, query_message, scratch)
        # 1. The 128 components, real whatever Q sent: from c = Enc(x + iy), c + conj(c) =
        # Enc(2x), and c - conj(c) = Enc(2iy), which meets gallery columns encoded times -i
        # (``encode_gallery``): 2iy * (-i) P = 2y P. A complex component would mix the two
        # references of a slot and could pass a sum-of-squares check with large parts
        # (x^2 - y^2 = 1).
        real_q: list[Any] = []
        norm = s.Ciphertext()
        for m, ct in enumerate(query):
            conj = s.Ciphertext()
            ev.complex_conjugate(ct, bundle.galois_keys, conj)
            # 2. Enc(||q||^2) = Enc(sum_m c_m conj(c_m)): with the conjugate as computed
            # (key-switching noise e included), 4 c (conj(c) + e) is exactly the sum of the
            # squares of the two components below, so V checks the vector G scores with.
            if m == 0:
                ev.multiply(ct, conj, norm)
            else:
                prod = s.Ciphertext()
                ev.multiply(ct, conj, prod)
                ev.add_inplace(norm, prod)
            im = s.Ciphertext()
            ev.sub(ct, conj, im)
            ev.add_inplace(conj, ct)
            real_q += [conj, im]
        ev.relinearize_inplace(norm, bundle.relin_keys)
        ev.rescale_to_next_inplace(norm)
        parts = [scratch.dump(norm)]
        # 3. Decoys: among the zero padding rows, half planted positive (offset so the
        # masked value is r * delta > 0), half left as zero rows (value r * (0 - t) < 0).
        chosen = rng.choice(gallery.free, size=min(2 * p.decoys, gallery.free.size),
                            replace=False)
        positive = np.sort(chosen[: chosen.size // 2])
        negative = np.sort(chosen[chosen.size // 2:])
        order = rng.permutation(len(gallery.blocks))
        common_offset: Any = None  # 2t in every slot: encoded once per query
        padding_encryptor: Any = None
        tmp = s.Ciphertext()
        for b in order:
            # sum_j q_j P_{b,j}: the plaintext products, G's main cost (docs/face.md, 5b)
            acc: Any = None
            for qj, column in zip(real_q, gallery.blocks[b], strict=True):
                if column is None:  # zero in the whole block: adds nothing
                    continue
                if acc is None:
                    acc = s.Ciphertext()
                    ev.multiply_plain(qj, column, acc)
                else:
                    ev.multiply_plain(qj, column, tmp)
                    ev.add_inplace(acc, tmp)
            if acc is None:  # padding rows only: their scores are 0, an encryption of zero
                if padding_encryptor is None:
                    padding_encryptor = s.Encryptor(ctx.seal_context, bundle.public_key)
                acc = s.Ciphertext()
                padding_encryptor.encrypt_zero(ctx.top, acc)
                acc.scale = ctx.product_scale
            ev.rescale_to_next_inplace(acc)  # Enc(2 s), scale ~2^30, last level
            # subtract 2t per reference; a positive decoy gets 2t - 2 delta instead
            base = int(b) * p.block_refs
            local = positive[(positive >= base) & (positive < base + p.block_refs)] - base
            if local.size:
                offset = np.full(p.block_refs, 2.0 * threshold)
                offset[local] = -2.0 * rng.uniform(0.02, 0.3, size=local.size)
                re_off, im_off = _slot_split(offset, half)
                pt = s.Plaintext()
                ctx.encoder.encode((re_off + 1j * im_off).tolist(), acc.parms_id(),
                                   acc.scale, pt)
            else:
                if common_offset is None:
                    common_offset = s.Plaintext()
                    ctx.encoder.encode([complex(2.0 * threshold, 2.0 * threshold)] * half,
                                       acc.parms_id(), acc.scale, common_offset)
                pt = common_offset
            ev.sub_plain_inplace(acc, pt)
            # masks: alpha z + beta conj(z) = r_a Re z + i r_b Im z for real alpha, beta,
            # fresh per block and query (the block's pad, made ahead: ``Rerandomisers``)
            pad = zeros.take()
            conj_acc = s.Ciphertext()
            ev.complex_conjugate(acc, bundle.galois_keys, conj_acc)
            out = s.Ciphertext()
            ev.multiply_plain(acc, pad.alpha, out)
            ev.multiply_plain_inplace(conj_acc, pad.beta)
            ev.add_inplace(out, conj_acc)
            # re-randomise: add the pad's fresh public-key encryption of small uniform noise,
            # which also smudges the low-order bits that carry the circuit's noise
            if out.scale != pad.noise.scale:
                raise ScreeningError("masked scores at an unexpected scale")
            ev.add_inplace(out, pad.noise)
            parts.append(scratch.dump(out))
    secret = ScoringSecret(order=order, positive=positive, negative=negative,
                           count=gallery.count, block_refs=p.block_refs)
    return ScoredQuery(message=_pack(parts), secret=secret)


# --- V: the check and the decisions ----------------------------------------------------

def decide(ctx: Context, holder: KeyHolder, scored_message: bytes, *,
           max_blocks: int = 1 << 16) -> bytes:
    """V: refuse (``QueryRefused``) unless every slot of the norm ciphertext decrypts to
    ||q||^2 = 1 within norm_eps; only then decrypt the masked scores and return their
    signs, packed bits in the order received (G's shuffled order)."""
    s = _require_seal()
    p = ctx.params
    parts = _unpack(scored_message, max_parts=max_blocks + 1)
    if len(parts) < 2:
        raise MalformedMessage("a scored query has a norm and at least one block")
    with _Scratch() as scratch:
        norm_ct = scratch.load(ctx, s.Ciphertext, parts[0])
        if norm_ct.size() != 2 or norm_ct.parms_id() != ctx.last:
            raise MalformedMessage("norm ciphertext of wrong size or level")
        norm = holder._decode(norm_ct)
        if not (np.all(np.abs(norm.real - 1.0) < p.norm_eps)
                and np.all(np.abs(norm.imag) < p.norm_eps)):
            raise QueryRefused("the query is not a unit vector")
        # a masked score is at most 2^hi * 2 * (1 + |t|) plus noise: anything far beyond
        # is not an honest G's output
        bound = 2.0 ** p.mask_log2[1] * 8.0
        bits = []
        for part in parts[1:]:
            ct = scratch.load(ctx, s.Ciphertext, part)
            if ct.size() != 2 or ct.parms_id() != ctx.last:
                raise MalformedMessage("score ciphertext of wrong size or level")
            values = holder._decode(ct)
            if not np.all(np.isfinite(values)) or np.max(np.abs(values)) > bound:
                raise MalformedMessage("score values out of range")
            bits.append(np.concatenate([values.real > 0, values.imag > 0]))
    return np.packbits(np.concatenate(bits)).tobytes()


# --- G: reading V's answer --------------------------------------------------------------

def matches(secret: ScoringSecret, answer: bytes) -> np.ndarray:
    """G: indices (into its gallery) of the references V found at or above the threshold,
    after checking V's answer has the right length and the decoys' planted signs."""
    n_blocks = secret.order.size
    expected = n_blocks * secret.block_refs
    if not isinstance(answer, bytes) or len(answer) != (expected + 7) // 8:
        raise MalformedMessage("answer of wrong length")
    bits = np.unpackbits(np.frombuffer(answer, dtype=np.uint8))[:expected].astype(bool)
    in_order = np.empty((n_blocks, secret.block_refs), dtype=bool)
    in_order[secret.order] = bits.reshape(n_blocks, secret.block_refs)
    flat = in_order.reshape(-1)
    if not (np.all(flat[secret.positive]) and not np.any(flat[secret.negative])):
        raise DecoyMismatch("the key holder's answer contradicts the planted decoys")
    hits = np.flatnonzero(flat[: secret.count])
    return hits


def plaintext_reference(references: np.ndarray, query: np.ndarray,
                        threshold: float) -> np.ndarray:
    """The answer the protocol must give: indices with cosine >= threshold."""
    q = np.asarray(query, dtype=np.float64)
    q = q / np.linalg.norm(q)
    refs = np.asarray(references)
    hits = [start + np.flatnonzero(
        np.asarray(refs[start:start + 65_536], dtype=np.float64) @ q >= threshold)
        for start in range(0, refs.shape[0], 65_536)]  # float64 without a copy of them all
    return np.concatenate(hits) if hits else np.zeros(0, dtype=np.int64)
