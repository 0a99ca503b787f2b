"""Cosine scores and calibrated decision thresholds.

Operating points live in ``face_engine/calibration.json`` (written by
``scripts/calibrate_face.py``). An operating point is named after the false-accept rate
it was calibrated for, e.g. ``far_1e-3``: the lowest cosine threshold (rounded up to 6
decimals) at which the share of different-person pairs scoring at or above it was <= the
target over all three LFW dev folds. The accuracy to quote for them is the held-out one
(thresholds from two folds, measured on the third: ``docs/figures/face-accuracy.json``);
the TAR stored beside them is in-sample.

The single-crop embedding (``SFaceEmbedder.embed_aligned_single``; no mirror image) scores
on another scale and has its own file, ``calibration_single_crop.json`` (written by
``scripts/calibrate_face.py --single-pass``). Liveness uses it to check that every frame of
one capture shows the same person, which halves the model runs of a turn frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from face_engine.errors import CalibrationError, UnknownOperatingPoint

CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
SINGLE_CROP_CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration_single_crop.json"
DEFAULT_OPERATING_POINT = "far_1e-3"


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float
    far_target: float


@dataclass(frozen=True)
class VerifyResult:
    match: bool
    score: float
    threshold: float
    operating_point: str


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (they need not be normalised)."""
    va = np.asarray(a, dtype=np.float64).reshape(-1)
    vb = np.asarray(b, dtype=np.float64).reshape(-1)
    if va.shape != vb.shape:
        raise ValueError(f"embedding shapes differ: {va.shape} vs {vb.shape}")
    denom = float(np.linalg.norm(va) * np.linalg.norm(vb))
    if denom == 0.0 or not np.isfinite(denom):
        raise ValueError("embedding has zero or non-finite norm")
    return float(np.dot(va, vb) / denom)


@lru_cache(maxsize=4)
def load_operating_points(path: Path = CALIBRATION_PATH) -> dict[str, OperatingPoint]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        points = {
            name: OperatingPoint(name=name, threshold=float(entry["threshold"]),
                                 far_target=float(entry["far_target"]))
            for name, entry in doc["operating_points"].items()
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read operating points from {path.name}: {exc}") from exc
    for p in points.values():
        if not -1.0 <= p.threshold <= 1.0:
            raise CalibrationError(f"{p.name}: threshold {p.threshold} is not a cosine")
    return points


def operating_point(name: str = DEFAULT_OPERATING_POINT) -> OperatingPoint:
    points = load_operating_points()
    try:
        return points[name]
    except KeyError:
        raise UnknownOperatingPoint(
            f"unknown operating point {name!r}; known: {', '.join(sorted(points))}"
        ) from None


def single_crop_operating_point(name: str = DEFAULT_OPERATING_POINT) -> OperatingPoint:
    """An operating point for cosines of two single-crop embeddings."""
    points = load_operating_points(SINGLE_CROP_CALIBRATION_PATH)
    try:
        return points[name]
    except KeyError:
        raise UnknownOperatingPoint(
            f"unknown single-crop operating point {name!r}; known: {', '.join(sorted(points))}"
        ) from None


@lru_cache(maxsize=4)
def identification_threshold(path: Path = CALIBRATION_PATH) -> float:
    """The 1:N screening threshold: calibrated for a false-positive identification rate at
    a gallery size (``identification`` in calibration.json, written by
    ``scripts/bench_dedup.py --write-calibration``), not for a 1:1 false-accept rate."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        threshold = float(doc["identification"]["threshold"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"cannot read the identification threshold from {path.name}: "
                               f"{exc}") from exc
    if not -1.0 <= threshold <= 1.0:
        raise CalibrationError(f"identification threshold {threshold} is not a cosine")
    return threshold


def decide(score: float, point: str = DEFAULT_OPERATING_POINT) -> VerifyResult:
    op = operating_point(point)
    return VerifyResult(match=score >= op.threshold, score=float(score),
                        threshold=op.threshold, operating_point=op.name)


def verify_embeddings(a: np.ndarray, b: np.ndarray,
                      point: str = DEFAULT_OPERATING_POINT) -> VerifyResult:
    return decide(cosine(a, b), point)
