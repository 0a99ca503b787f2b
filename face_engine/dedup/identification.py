"""Identification (1:N) error rates and the multi-frame enrolment template.

ISO/IEC 19795-1 terms, for a search that returns every reference scoring >= t (no rank
limit):

* FPIR(N, t): the share of searches by people who are NOT in a gallery of N references that
  return at least one candidate, i.e. whose best score over the N references is >= t. With
  a per-comparison false-match rate p it is about 1 - (1 - p)^N ~ N p, so the 1:1 FAR 1e-4
  threshold gives FPIR ~ 100 % at N = 1M: identification needs its own threshold.
* FNIR(t): the share of searches by people who ARE enrolled whose own reference scores
  below t (their mated comparison misses). Without a rank limit it does not depend on N.

``threshold_for_fpir`` picks the lowest t whose measured FPIR meets a target, from the best
non-mated score of each search (``best_scores``), rounded up like the 1:1 operating points
so that the stored number itself meets the target on the data it came from.

``template`` is the enrolment's multi-frame template: the L2-normalised mean of several
unit embeddings of one person (the frontal frames of one liveness capture).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

THRESHOLD_DECIMALS = 6


def template(embeddings: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """The L2-normalised mean of L2-normalised embeddings (rows), as float32.

    Normalising each row first gives every frame the same weight whatever its norm."""
    rows = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
    if rows.shape[0] == 0 or not np.all(np.isfinite(rows)):
        raise ValueError("a template needs at least one finite embedding")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if np.any(norms == 0.0):
        raise ValueError("an embedding has zero norm")
    mean = (rows / norms).mean(axis=0)
    size = float(np.linalg.norm(mean))
    if size == 0.0:
        raise ValueError("the embeddings cancel out")
    out: np.ndarray = (mean / size).astype(np.float32)
    return out


def best_scores(probes: np.ndarray, gallery_batches: Iterable[np.ndarray]) -> np.ndarray:
    """Each probe's highest cosine over all gallery rows (unit rows), batch by batch so
    that a gallery of millions never sits in memory at once."""
    probes = np.asarray(probes, dtype=np.float32)
    best = np.full(probes.shape[0], -np.inf, dtype=np.float64)
    for batch in gallery_batches:
        if len(batch):
            best = np.maximum(best, (probes @ np.asarray(batch, np.float32).T).max(axis=1))
    return best


def fpir(best_non_mated: np.ndarray, threshold: float) -> float:
    """Share of non-mated searches with at least one candidate at ``threshold``."""
    scores = np.asarray(best_non_mated, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no searches")
    return float(np.count_nonzero(scores >= threshold) / scores.size)


def fnir(mated: np.ndarray, threshold: float) -> float:
    """Share of mated searches whose own reference scores below ``threshold``."""
    scores = np.asarray(mated, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no mated searches")
    return float(np.count_nonzero(scores < threshold) / scores.size)


def round_up(value: float, decimals: int = THRESHOLD_DECIMALS) -> float:
    scale = 10 ** decimals
    return math.ceil(value * scale - 1e-9) / scale


def threshold_for_fpir(best_non_mated: np.ndarray, target: float) -> float:
    """Lowest t (rounded up to 6 decimals) with fpir(best_non_mated, t) <= target.

    At most floor(target * searches) searches may keep a candidate: t sits just above the
    (that + 1)-th highest best score."""
    scores = np.sort(np.asarray(best_non_mated, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("no searches")
    allowed = math.floor(target * scores.size + 1e-9)
    if allowed >= scores.size:
        return round_up(float(scores[-1]))
    t = round_up(float(scores[allowed]) + 10 ** -THRESHOLD_DECIMALS)
    assert fpir(scores, t) <= target
    return t
