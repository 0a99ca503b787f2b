"""One home for LFW pair reading, operating-point thresholds, EER and the held-out protocol.

Used by ``scripts/bench_face_accuracy.py`` (the accuracy figures), ``scripts/calibrate_face.py``
(the stored operating points) and ``scripts/bench_face.py`` (pairs for latency and dedup).
Pure numpy / scikit-learn on arrays of scores; no model is run here.

Conventions, the same everywhere:

* a pair is *accepted* when ``score >= threshold`` (what ``face_engine.verify`` does);
* the threshold for a FAR target is the lowest value ``t`` with
  ``#(impostor >= t) / N <= target``, rounded *up* to ``THRESHOLD_DECIMALS`` decimals, so the
  stored number itself (not an unrounded one) meets the target on the data it came from;
* a pair with an image in which no face was found scores ``NO_FACE_SCORE`` (below every
  cosine): the engine refuses such a photo, so a genuine pair counts as rejected and stays in
  the denominator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_curve

FAR_TARGETS: dict[str, float] = {"far_1e-3": 1e-3, "far_1e-4": 1e-4}
THRESHOLD_DECIMALS = 6
NO_FACE_SCORE = -2.0
Pair = tuple[str, str]


class PairsFileError(ValueError):
    """pairs.txt is not in LFW's View 2 layout."""


# --- pairs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fold:
    """One LFW View 2 fold: its official same-person and different-person pairs, as image
    paths relative to ``images/``."""

    genuine: tuple[Pair, ...]
    impostor: tuple[Pair, ...]

    @property
    def images(self) -> frozenset[str]:
        return frozenset(r for pair in self.genuine + self.impostor for r in pair)

    @property
    def identities(self) -> frozenset[str]:
        return frozenset(identity(r) for r in self.images)


def identity(rel: str) -> str:
    """The person an image path names (``Name/Name_0001.jpg`` -> ``Name``)."""
    return rel.split("/")[0]


def _image(name: str, idx: str) -> str:
    return f"{name}/{name}_{int(idx):04d}.jpg"


def read_pairs(pairs_file: Path) -> list[Fold]:
    """The folds of an LFW ``pairs.txt``: first line ``<folds> <pairs per fold>``, then per
    fold that many ``name i j`` lines followed by as many ``name1 i name2 j`` lines."""
    lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    if not lines or len(lines[0]) != 2:
        raise PairsFileError("pairs.txt: first line must be '<folds> <pairs per fold>'")
    try:
        folds, per_fold = (int(x) for x in lines[0])
    except ValueError:
        raise PairsFileError("pairs.txt: first line must be two integers") from None
    rows = lines[1:]
    if len(rows) != folds * per_fold * 2:
        raise PairsFileError(f"pairs.txt: expected {folds * per_fold * 2} pairs, got {len(rows)}")
    out = []
    for f in range(folds):
        block = rows[f * 2 * per_fold: (f + 1) * 2 * per_fold]
        genuine, impostor = block[:per_fold], block[per_fold:]
        if any(len(r) != 3 for r in genuine) or any(len(r) != 4 for r in impostor):
            raise PairsFileError(f"pairs.txt: fold {f + 1} is not {per_fold} same-person "
                                 f"then {per_fold} different-person lines")
        try:
            g = tuple((_image(r[0], r[1]), _image(r[0], r[2])) for r in genuine)
            i = tuple((_image(r[0], r[1]), _image(r[2], r[3])) for r in impostor)
        except ValueError:
            raise PairsFileError(f"pairs.txt: fold {f + 1} has a non-numeric image index") \
                from None
        if any(identity(a) == identity(b) for a, b in i):
            raise PairsFileError(f"pairs.txt: fold {f + 1} has an impostor pair of one person")
        out.append(Fold(g, i))
    return out


def shared_identities(folds: list[Fold]) -> dict[tuple[int, int], set[str]]:
    """People that appear in two folds (1-based fold numbers); empty for LFW View 2, whose
    folds hold disjoint people, which is what makes a held-out fold unseen."""
    out: dict[tuple[int, int], set[str]] = {}
    for a in range(len(folds)):
        for b in range(a + 1, len(folds)):
            common = set(folds[a].identities & folds[b].identities)
            if common:
                out[(a + 1, b + 1)] = common
    return out


# --- scores ------------------------------------------------------------------------------
class Embeddings:
    """L2-normalised embeddings of images (rows), with the images in which no face was found
    marked; cosines as float64."""

    def __init__(self, rels: list[str], vectors: np.ndarray, found: np.ndarray) -> None:
        if vectors.shape[0] != len(rels) or found.shape != (len(rels),):
            raise ValueError("one vector and one found flag per image")
        self.rels = list(rels)
        self.vectors = np.asarray(vectors, dtype=np.float64)
        self.found = np.asarray(found, dtype=bool)
        self.index = {r: i for i, r in enumerate(self.rels)}
        self.identity = np.array([identity(r) for r in self.rels])

    def scores(self, pairs: tuple[Pair, ...] | list[Pair]) -> np.ndarray:
        """Cosine per pair; ``NO_FACE_SCORE`` where either image had no face."""
        if not pairs:
            return np.zeros(0)
        a = np.array([self.index[p[0]] for p in pairs])
        b = np.array([self.index[p[1]] for p in pairs])
        s = np.einsum("ij,ij->i", self.vectors[a], self.vectors[b])
        return np.where(self.found[a] & self.found[b], s, NO_FACE_SCORE)

    def all_pairs(self, rels: frozenset[str] | set[str] | list[str],
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(same-person, different-person) cosines of every pair of distinct images among
        ``rels`` in which a face was found. The different-person set is the impostor
        distribution thresholds come from: many more pairs than the official ones (they share
        images, so they are not independent, but each is a real impostor attempt)."""
        rows = np.array(sorted(self.index[r] for r in rels))
        rows = rows[self.found[rows]] if rows.size else rows
        if rows.size < 2:
            return np.zeros(0), np.zeros(0)
        sims = self.vectors[rows] @ self.vectors[rows].T
        iu = np.triu_indices(rows.size, k=1)
        ids = self.identity[rows]
        cross = ids[iu[0]] != ids[iu[1]]
        values = sims[iu]
        return values[~cross], values[cross]


# --- metrics -----------------------------------------------------------------------------
def round_up(value: float, decimals: int = THRESHOLD_DECIMALS) -> float:
    """``value`` rounded to ``decimals`` places, never downwards (a stored threshold must
    not accept a score the unrounded one rejects)."""
    if not math.isfinite(value):
        return value
    r = round(value, decimals)
    while r < value:
        r = round(r + 10.0 ** -decimals, decimals)
    return r


def threshold_for_far(impostor: np.ndarray, target: float) -> float:
    """Lowest threshold t (rounded up to THRESHOLD_DECIMALS) with share(impostor >= t) <=
    target. With N impostors at most floor(target * N) may be accepted; the threshold sits
    above the next-highest score, so that one (and any tie with it) is rejected. With fewer
    than 1 / target impostors that means above the highest one."""
    if impostor.size == 0:
        raise ValueError("no impostor scores to calibrate on")
    allowed = int(np.floor(target * impostor.size + 1e-9))
    if allowed >= impostor.size:
        return round_up(float(np.min(impostor)))
    # the (allowed+1)-th highest score: np.partition finds it without sorting 2.7M scores
    boundary = float(-np.partition(-impostor, allowed)[allowed])
    return round_up(float(np.nextafter(boundary, np.inf)))


@dataclass(frozen=True)
class Rates:
    """Decisions at one threshold on one set of pairs."""

    threshold: float
    genuine_accepted: int
    genuine_pairs: int
    impostor_accepted: int
    impostor_pairs: int

    @property
    def tar(self) -> float:
        return self.genuine_accepted / self.genuine_pairs if self.genuine_pairs else math.nan

    @property
    def far(self) -> float:
        return self.impostor_accepted / self.impostor_pairs if self.impostor_pairs else math.nan

    @property
    def accuracy(self) -> float:
        total = self.genuine_pairs + self.impostor_pairs
        right = self.genuine_accepted + self.impostor_pairs - self.impostor_accepted
        return right / total if total else math.nan

    def as_dict(self) -> dict[str, float | int]:
        return {"threshold": self.threshold, "tar": self.tar, "far": self.far,
                "accuracy": self.accuracy, "genuine_accepted": self.genuine_accepted,
                "genuine_pairs": self.genuine_pairs, "impostor_accepted": self.impostor_accepted,
                "impostor_pairs": self.impostor_pairs}


def rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> Rates:
    return Rates(threshold, int(np.count_nonzero(genuine >= threshold)), int(genuine.size),
                 int(np.count_nonzero(impostor >= threshold)), int(impostor.size))


def _roc(genuine: np.ndarray, impostor: np.ndarray,
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError("need genuine and impostor scores")
    labels = np.concatenate([np.ones(genuine.size), np.zeros(impostor.size)])
    fpr, tpr, thresholds = roc_curve(labels, np.concatenate([genuine, impostor]),
                                     drop_intermediate=False)
    return fpr, tpr, thresholds


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate: (FRR + FAR) / 2 at the ROC point where they are closest. It reads its
    threshold off the pairs it is given by definition (a property of their score
    distributions, not a decision rule)."""
    fpr, tpr, _ = _roc(genuine, impostor)
    frr = 1.0 - tpr
    i = int(np.argmin(np.abs(frr - fpr)))
    return float((frr[i] + fpr[i]) / 2.0)


def best_accuracy(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(highest accuracy over all thresholds, the highest threshold reaching it) on these
    pairs. In-sample by construction; applied to other pairs it is LFW's usual protocol."""
    fpr, tpr, thresholds = _roc(genuine, impostor)
    acc = (tpr * genuine.size + (1.0 - fpr) * impostor.size) / (genuine.size + impostor.size)
    i = int(np.argmax(acc))  # first maximum = highest threshold
    t = float(thresholds[i])
    return float(acc[i]), (t if math.isfinite(t) else float(np.max(genuine)))


# --- held-out protocol -------------------------------------------------------------------
def leave_one_fold_out(n_folds: int) -> list[tuple[list[int], int]]:
    """(calibration folds, test fold) for each fold in turn, 0-based."""
    if n_folds < 2:
        raise ValueError("a held-out protocol needs at least two folds")
    return [([k for k in range(n_folds) if k != test], test) for test in range(n_folds)]


def choose_pipeline(candidates: dict[str, Embeddings], calibration_images: frozenset[str],
                    ) -> tuple[str, dict[str, dict[str, float]]]:
    """Pick the embedding pipeline on calibration images only: highest TAR over every
    same-person pair among them at the FAR 1e-3 threshold set on every different-person
    pair among them, then at FAR 1e-4; ties go to the first candidate (the product's
    default is listed first)."""
    table: dict[str, dict[str, float]] = {}
    for name, emb in candidates.items():
        same, diff = emb.all_pairs(calibration_images)
        table[name] = {p: rates(same, diff, threshold_for_far(diff, t)).tar
                       for p, t in FAR_TARGETS.items()}
        table[name]["same_person_pairs"] = int(same.size)
    order = list(candidates)
    best = max(order, key=lambda n: (table[n]["far_1e-3"], table[n]["far_1e-4"],
                                     -order.index(n)))
    return best, table


def held_out(folds: list[Fold], candidates: dict[str, Embeddings],
             protected: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Leave-one-fold-out: for each fold, every choice (pipeline, FAR thresholds, the
    best-accuracy threshold) is made on the other folds' images and pairs, then measured on
    this fold's official pairs and on every different-person pair among its images.

    ``protected``: optional scores of the product's protected path per official pair of the
    *first* candidate, keyed ``"genuine:<fold>"`` / ``"impostor:<fold>"`` (1-based), measured
    at the same thresholds when that candidate is chosen."""
    per_fold: list[dict[str, Any]] = []
    for calib, test in leave_one_fold_out(len(folds)):
        calib_images = frozenset().union(*(folds[k].images for k in calib))
        name, choice = choose_pipeline(candidates, calib_images)
        emb = candidates[name]
        _, calib_diff = emb.all_pairs(calib_images)
        calib_g = np.concatenate([emb.scores(folds[k].genuine) for k in calib])
        calib_i = np.concatenate([emb.scores(folds[k].impostor) for k in calib])
        fold = folds[test]
        g, i = emb.scores(fold.genuine), emb.scores(fold.impostor)
        _, test_diff = emb.all_pairs(fold.images)
        row: dict[str, Any] = {
            "test_fold": test + 1, "calibration_folds": [k + 1 for k in calib],
            "pipeline": name, "pipeline_choice": choice,
            "calibration_different_person_pairs": int(calib_diff.size),
            "test_different_person_pairs": int(test_diff.size),
            "eer": eer(g, i)}
        for point, target in FAR_TARGETS.items():
            t = threshold_for_far(calib_diff, target)
            r = rates(g, i, t)
            entry: dict[str, Any] = {
                **r.as_dict(),
                "far_different_person_pairs": float(np.mean(test_diff >= t)),
                "different_person_accepted": int(np.count_nonzero(test_diff >= t))}
            if protected is not None and name == next(iter(candidates)):
                pg, pi = protected[f"genuine:{test + 1}"], protected[f"impostor:{test + 1}"]
                entry["protected"] = rates(pg, pi, t).as_dict()
            row[point] = entry
        _, acc_t = best_accuracy(calib_g, calib_i)
        row["lfw_accuracy"] = {"threshold_from_calibration_pairs": acc_t,
                               **rates(g, i, acc_t).as_dict()}
        per_fold.append(row)
    return {"per_fold": per_fold, "mean": _mean(per_fold), "pooled": _pooled(per_fold)}


def _mean(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    def avg(values: list[float]) -> float:
        return float(np.mean(values))

    out: dict[str, Any] = {"eer": avg([float(r["eer"]) for r in per_fold])}
    for point in [*FAR_TARGETS, "lfw_accuracy"]:
        rows = [r[point] for r in per_fold]
        keys = ["threshold", "tar", "far", "accuracy"]
        if point in FAR_TARGETS:
            keys.append("far_different_person_pairs")
        out[point] = {k: avg([float(x[k]) for x in rows]) for k in keys}
    return out


def _pooled(per_fold: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts summed over the test folds: each official pair is tested exactly once."""
    out: dict[str, Any] = {}
    for point in [*FAR_TARGETS, "lfw_accuracy"]:
        rows = [r[point] for r in per_fold]
        sums = {k: sum(int(x[k]) for x in rows)
                for k in ("genuine_accepted", "genuine_pairs", "impostor_accepted",
                          "impostor_pairs")}
        pooled = Rates(math.nan, **sums)
        out[point] = {**sums, "tar": pooled.tar, "far": pooled.far,
                      "accuracy": pooled.accuracy}
    return out


def in_sample(folds: list[Fold], emb: Embeddings) -> dict[str, Any]:
    """Figures whose thresholds are read off the very pairs they are measured on. Labelled
    in-sample wherever they are shown: they flatter the result."""
    images = frozenset().union(*(f.images for f in folds))
    same, diff = emb.all_pairs(images)
    g = np.concatenate([emb.scores(f.genuine) for f in folds])
    i = np.concatenate([emb.scores(f.impostor) for f in folds])
    acc, acc_t = best_accuracy(g, i)
    out: dict[str, Any] = {"eer": eer(g, i), "best_accuracy": acc,
                              "best_accuracy_threshold": acc_t,
                              "different_person_pairs": int(diff.size),
                              "same_person_pairs": int(same.size)}
    for point, target in FAR_TARGETS.items():
        t = threshold_for_far(diff, target)
        t_official = threshold_for_far(i, target)
        out[point] = {**rates(g, i, t).as_dict(),
                      "far_different_person_pairs": float(np.mean(diff >= t)),
                      "threshold_from_official_impostors": t_official,
                      "tar_threshold_from_official_impostors": rates(g, i, t_official).tar}
    return out
