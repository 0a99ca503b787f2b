"""The private-screening protocol core (face_engine/dedup/private_screening.py): its answer
equals the plaintext computation, a crafted query is refused before anything is released,
garbage from either side is detected."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from face_engine.dedup import private_screening as ps
from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample

THRESHOLD = 0.418  # the 1:1 FAR 1e-4 threshold of docs/face.md
# CKKS is approximate: decisions may differ from plaintext only this close to t
# (Params docstring: mask encoding and smudging noise, about 1e-4 at most).
TOLERANCE = 1.5e-4


@pytest.fixture(scope="module")
def ctx() -> ps.Context:
    return ps.Context()


@pytest.fixture(scope="module")
def holder(ctx: ps.Context) -> ps.KeyHolder:
    return ps.KeyHolder.generate(ctx)


@pytest.fixture(scope="module")
def bundle(ctx: ps.Context, holder: ps.KeyHolder) -> ps.PublicBundle:
    # what G and Q get: V's published bytes, never the key holder object
    return ps.load_public_bundle(ctx, holder.public_bundle())


def _gallery(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A face-like gallery with references planted just above and below the threshold
    against the query (a mated sample of reference 7)."""
    rng = np.random.default_rng(seed)
    refs = FaceLikeDistribution.parametric(ps.DIM, rng).sample(n, rng).astype(np.float64)
    query = mated_sample(refs[7], 0.7, rng)[0].astype(np.float64)
    query /= np.linalg.norm(query)
    near = [THRESHOLD + d for d in (2e-3, 1e-3, 5e-4, -5e-4, -1e-3, -2e-3, 0.2, -0.2)]
    planted = rng.choice(np.arange(10, n), size=len(near), replace=False)
    for idx, cosine in zip(planted, near, strict=True):
        refs[idx] = mated_sample(query, cosine, rng)[0]
    refs /= np.linalg.norm(refs, axis=1, keepdims=True)
    return refs, query, planted


def _run(ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle,
         gallery: ps.EncodedGallery, query_message: bytes,
         threshold: float = THRESHOLD) -> np.ndarray:
    scored = ps.score_query(ctx, bundle, gallery, query_message, threshold)
    answer = ps.decide(ctx, holder, scored.message)
    return ps.matches(scored.secret, answer)


@pytest.mark.parametrize("seed,n", [(1, 3_000), (2, 9_000), (3, 17_000)])
def test_answer_equals_the_plaintext_reference(ctx: ps.Context, holder: ps.KeyHolder,
                                               bundle: ps.PublicBundle, seed: int,
                                               n: int) -> None:
    refs, query, planted = _gallery(seed, n)
    gallery = ps.encode_gallery(ctx, refs)
    got = _run(ctx, holder, bundle, gallery, ps.encrypt_query(ctx, bundle, query))
    want = ps.plaintext_reference(refs, query, THRESHOLD)
    scores = refs @ query
    clear = np.abs(scores - THRESHOLD) >= TOLERANCE
    assert set(got[clear[got]]) == set(want[clear[want]])
    # the planted near-threshold references (|s - t| >= 5e-4) are all decided exactly
    for idx in planted:
        assert (idx in set(got)) == (scores[idx] >= THRESHOLD), (idx, scores[idx])
    assert 7 in set(got) and len(want) >= 4


def test_blocks_are_shuffled_per_query(ctx: ps.Context, bundle: ps.PublicBundle) -> None:
    refs, query, _ = _gallery(4, 40_000)  # 5 blocks
    gallery = ps.encode_gallery(ctx, refs)
    message = ps.encrypt_query(ctx, bundle, query)
    orders = {tuple(ps.score_query(ctx, bundle, gallery, message, THRESHOLD).secret.order)
              for _ in range(3)}
    assert len(orders) > 1


def test_a_crafted_non_unit_query_is_refused_and_releases_nothing(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    refs, query, _ = _gallery(5, 2_000)
    gallery = ps.encode_gallery(ctx, refs)
    crafted = query.copy()
    crafted[3] *= 40.0  # the attack: one coordinate scaled up to read it by bisection
    scored = ps.score_query(ctx, bundle, gallery, ps.encrypt_values(ctx, bundle, crafted),
                            THRESHOLD)
    with pytest.raises(ps.QueryRefused):
        ps.decide(ctx, holder, scored.message)
    # slightly off the sphere is refused too (norm_eps = 1e-3)
    scored = ps.score_query(ctx, bundle, gallery,
                            ps.encrypt_values(ctx, bundle, query * 1.01), THRESHOLD)
    with pytest.raises(ps.QueryRefused):
        ps.decide(ctx, holder, scored.message)


def test_a_complex_query_cannot_pass_the_norm_check(ctx: ps.Context, holder: ps.KeyHolder,
                                                    bundle: ps.PublicBundle) -> None:
    """x^2 - y^2 = 1 with large x, y would pass a plain sum-of-squares check (sum_m c_m^2);
    G derives real components from each ciphertext (its real and imaginary parts), so the
    norm V sees is sum_m |c_m|^2 = 25 + 24."""
    refs, _, _ = _gallery(6, 2_000)
    gallery = ps.encode_gallery(ctx, refs)
    values: list[complex] = [0j] * ps.QUERY_CTS
    values[0] = complex(5.0, 0.0)
    values[1] = complex(0.0, np.sqrt(24.0))  # 25 - 24 = 1
    scored = ps.score_query(ctx, bundle, gallery,
                            ps.encrypt_slot_values(ctx, bundle, values), THRESHOLD)
    with pytest.raises(ps.QueryRefused):
        ps.decide(ctx, holder, scored.message)
    values[1] = complex(0.0, 0.0)
    values[0] = complex(0.6, 0.8)  # a unit complex component: the query (0.6, 0.8, 0, ...)
    scored = ps.score_query(ctx, bundle, gallery,
                            ps.encrypt_slot_values(ctx, bundle, values), THRESHOLD)
    q = np.zeros(ps.DIM)
    q[:2] = (0.6, 0.8)
    assert set(ps.matches(scored.secret, ps.decide(ctx, holder, scored.message)).tolist()) \
        == set(ps.plaintext_reference(refs, q, THRESHOLD).tolist())


def test_two_encryptions_of_one_query_differ(ctx: ps.Context, bundle: ps.PublicBundle) -> None:
    """Fresh randomness per encryption: G cannot tell a repeated query by its bytes."""
    q = np.ones(ps.DIM)
    a = ps._unpack(ps.encrypt_query(ctx, bundle, q), max_parts=ps.DIM)
    b = ps._unpack(ps.encrypt_query(ctx, bundle, q), max_parts=ps.DIM)
    assert all(x[-4096:] != y[-4096:] for x, y in zip(a, b, strict=True))


def test_garbage_from_the_querier_or_the_gallery_holder_is_detected(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    refs, query, _ = _gallery(7, 2_000)
    gallery = ps.encode_gallery(ctx, refs)
    message = ps.encrypt_query(ctx, bundle, query)
    with pytest.raises(ps.MalformedMessage):
        ps.score_query(ctx, bundle, gallery, b"not a query", THRESHOLD)
    corrupt = bytearray(message)
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = bytes(64)
    # a corrupted ciphertext either fails SEAL's checks at G or is some other ciphertext,
    # which V's norm check refuses: nothing is released either way
    with pytest.raises((ps.MalformedMessage, ps.QueryRefused)):
        ps.decide(ctx, holder, ps.score_query(ctx, bundle, gallery, bytes(corrupt),
                                              THRESHOLD).message)
    short = ps._pack(ps._unpack(message, max_parts=ps.DIM)[:-1])
    with pytest.raises(ps.MalformedMessage):
        ps.score_query(ctx, bundle, gallery, short, THRESHOLD)
    scored = ps.score_query(ctx, bundle, gallery, message, THRESHOLD)
    with pytest.raises(ps.MalformedMessage):
        ps.decide(ctx, holder, scored.message[:-10])
    parts = ps._unpack(scored.message, max_parts=10)
    query_ct = ps._unpack(message, max_parts=ps.DIM)[0]
    with pytest.raises(ps.MalformedMessage):  # a ciphertext of the wrong level as a block
        ps.decide(ctx, holder, ps._pack([parts[0], query_ct]))
    with pytest.raises(ps.MalformedMessage):  # more blocks than V accepts from this G
        ps.decide(ctx, holder, scored.message, max_blocks=0)
    with pytest.raises(ps.MalformedMessage):  # random bytes as a block
        ps.decide(ctx, holder, ps._pack([parts[0], np.random.default_rng(1).bytes(5000)]))


def test_a_key_holder_that_lies_is_caught_by_the_decoys(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    refs, query, _ = _gallery(8, 2_000)
    gallery = ps.encode_gallery(ctx, refs)
    scored = ps.score_query(ctx, bundle, gallery, ps.encrypt_query(ctx, bundle, query),
                            THRESHOLD)
    honest = ps.decide(ctx, holder, scored.message)
    assert 7 in set(ps.matches(scored.secret, honest))
    with pytest.raises(ps.DecoyMismatch):  # "no candidates" whatever the scores
        ps.matches(scored.secret, bytes(len(honest)))
    with pytest.raises(ps.DecoyMismatch):  # "everyone matches"
        ps.matches(scored.secret, b"\xff" * len(honest))
    rng = np.random.default_rng(0)
    with pytest.raises(ps.DecoyMismatch):  # random bits
        ps.matches(scored.secret, rng.bytes(len(honest)))
    with pytest.raises(ps.MalformedMessage):
        ps.matches(scored.secret, honest[:-1])


def test_another_key_decrypts_nothing(ctx: ps.Context, bundle: ps.PublicBundle) -> None:
    refs, query, _ = _gallery(9, 1_000)
    gallery = ps.encode_gallery(ctx, refs)
    message = ps.encrypt_query(ctx, bundle, query)
    stranger = ps.KeyHolder.generate(ctx)  # another org's key: the norm decrypts to noise
    scored = ps.score_query(ctx, bundle, gallery, message, THRESHOLD)
    with pytest.raises(ps.ScreeningError):
        ps.decide(ctx, stranger, scored.message)


def test_the_secret_key_is_never_serialised(ctx: ps.Context,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """V's secret key lives in memory only: a whole screening (V's key made, its bundle
    published and loaded, Q's query, G's scores with pads made ahead, V's decision) passes
    every SEAL object it saves or loads through the scratch files, and none is a secret
    key; the key holder has no way to export or import one."""
    seen: list[str] = []
    dump, load = ps._Scratch.dump, ps._Scratch.load

    def recording_dump(self: ps._Scratch, obj: object) -> bytes:
        seen.append(type(obj).__name__)
        return dump(self, obj)

    def recording_load(self: ps._Scratch, c: ps.Context, factory: Any, data: bytes) -> Any:
        obj = load(self, c, factory, data)
        seen.append(type(obj).__name__)
        return obj

    monkeypatch.setattr(ps._Scratch, "dump", recording_dump)
    monkeypatch.setattr(ps._Scratch, "load", recording_load)
    holder = ps.KeyHolder.generate(ctx)
    bundle = ps.load_public_bundle(ctx, holder.public_bundle())
    refs, query, _ = _gallery(12, 1_000)
    gallery = ps.encode_gallery(ctx, refs)
    zeros = ps.QueryZeros(ctx, bundle)
    zeros.fill(ps.QUERY_CTS)
    assert 7 in set(_run(ctx, holder, bundle, gallery,
                         ps.encrypt_query(ctx, bundle, query, zeros=zeros)))
    assert {"PublicKey", "RelinKeys", "GaloisKeys", "Ciphertext"} <= set(seen)
    assert "SecretKey" not in seen
    assert not [name for name in dir(holder) if "secret" in name.lower() and
                not name.startswith("_")]


def test_encryptions_of_zero_made_ahead_are_each_used_once(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    """G's block pads made before the query give the same answers, one per block is
    taken, and a queue made under another key holder's key is refused."""
    refs, query, _ = _gallery(9, 9_000)
    gallery = ps.encode_gallery(ctx, refs)
    zeros = ps.Rerandomisers(ctx, bundle)
    zeros.fill(len(gallery.blocks) + 1)
    scored = ps.score_query(ctx, bundle, gallery, ps.encrypt_query(ctx, bundle, query),
                            THRESHOLD, zeros=zeros)
    assert len(zeros) == 1
    got = ps.matches(scored.secret, ps.decide(ctx, holder, scored.message))
    want = ps.plaintext_reference(refs, query, THRESHOLD)
    scores = refs @ query
    clear = np.abs(scores - THRESHOLD) >= TOLERANCE
    assert set(got[clear[got]]) == set(want[clear[want]]) and 7 in set(got)
    other = ps.load_public_bundle(ctx, ps.KeyHolder.generate(ctx).public_bundle())
    with pytest.raises(ps.ScreeningError):
        ps.score_query(ctx, bundle, gallery, ps.encrypt_query(ctx, bundle, query), THRESHOLD,
                       zeros=ps.Rerandomisers(ctx, other))


def test_query_encryptions_of_zero_made_ahead_are_each_used_once(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    """Q's encryptions of zero made before the query give the same answers, one per query
    ciphertext is taken (never reused: two queries' ciphertexts differ), and a queue made
    under another key holder's key is refused."""
    refs, query, _ = _gallery(10, 3_000)
    gallery = ps.encode_gallery(ctx, refs)
    zeros = ps.QueryZeros(ctx, bundle)
    zeros.fill(2 * ps.QUERY_CTS + 1)
    first = ps.encrypt_query(ctx, bundle, query, zeros=zeros)
    assert len(zeros) == ps.QUERY_CTS + 1
    second = ps.encrypt_query(ctx, bundle, query, zeros=zeros)
    assert len(zeros) == 1
    a, b = (ps._unpack(m, max_parts=ps.QUERY_CTS) for m in (first, second))
    assert not set(a) & set(b)
    want = ps.plaintext_reference(refs, query, THRESHOLD)
    scores = refs @ query
    clear = np.abs(scores - THRESHOLD) >= TOLERANCE
    for message in (first, second):
        got = _run(ctx, holder, bundle, gallery, message)
        assert set(got[clear[got]]) == set(want[clear[want]]) and 7 in set(got)
    other = ps.load_public_bundle(ctx, ps.KeyHolder.generate(ctx).public_bundle())
    assert other.key_id != bundle.key_id
    with pytest.raises(ps.ScreeningError):
        ps.encrypt_query(ctx, bundle, query, zeros=ps.QueryZeros(ctx, other))


def test_the_key_id_names_the_public_key(ctx: ps.Context, holder: ps.KeyHolder,
                                         bundle: ps.PublicBundle) -> None:
    """What V's object and its published bytes say name one key (Q's queue of encryptions
    of zero is kept across screenings while it does)."""
    assert holder.bundle().key_id == bundle.key_id
    assert len(bundle.key_id) == 32
    again = ps.load_public_bundle(ctx, holder.public_bundle())
    assert again.key_id == bundle.key_id


@pytest.mark.parametrize("n", [8_192 - 10, 8_192])
def test_a_gallery_with_a_block_of_padding_only_is_screened(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle, n: int) -> None:
    """A gallery too full for the decoys in its last block gets a spare block of padding
    rows only: its all-zero columns are not multiplied (SEAL refuses an all-zero plaintext)
    and its scores are an encryption of zero, so the decoys planted there read right."""
    refs, query, planted = _gallery(11, n)
    gallery = ps.encode_gallery(ctx, refs)
    assert len(gallery.blocks) == 2 and all(pt is None for pt in gallery.blocks[1])
    assert all(pt is not None for pt in gallery.blocks[0])
    want = ps.plaintext_reference(refs, query, THRESHOLD)
    scores = refs @ query
    clear = np.abs(scores - THRESHOLD) >= TOLERANCE
    for _ in range(2):  # decoys land in either block, by chance
        got = _run(ctx, holder, bundle, gallery, ps.encrypt_query(ctx, bundle, query))
        assert set(got[clear[got]]) == set(want[clear[want]]) and 7 in set(got)
        assert set(planted[[0, 1, 6]]) <= set(got)


def test_block_pads_are_fresh_per_block_and_at_the_scores_scale(
        ctx: ps.Context, holder: ps.KeyHolder, bundle: ps.PublicBundle) -> None:
    """G's pads made ahead: each at the masked scores' level and scale, its masks
    positive and different from another pad's, its noise within the smudging bound."""
    pads = ps.Rerandomisers(ctx, bundle, rng=np.random.default_rng(5))
    pads.fill(2)
    a, b = pads.take(), pads.take()
    assert len(pads) == 0
    for pad in (a, b):
        assert pad.noise.parms_id() == ctx.last and pad.noise.scale == ctx.masked_scale
        noise = holder._decode(pad.noise)
        assert np.all(np.abs(noise.real) <= ctx.params.smudge + 1e-6)
        assert np.all(np.abs(noise.imag) <= ctx.params.smudge + 1e-6)
    alpha = [np.asarray(ctx.encoder.decode_complex(pad.alpha)) for pad in (a, b)]
    beta = [np.asarray(ctx.encoder.decode_complex(pad.beta)) for pad in (a, b)]
    lo, hi = ctx.params.mask_log2
    for al, be in zip(alpha, beta, strict=True):
        for r in ((al + be).real, (al - be).real):  # alpha, beta = (r_a +- r_b) / 2
            assert np.all(r > 2 ** lo * 0.99) and np.all(r < 2 ** hi * 1.01)
    assert not np.allclose(alpha[0], alpha[1])
