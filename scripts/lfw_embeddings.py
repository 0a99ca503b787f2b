"""Embeddings of the LFW dev images through the production pipeline, cached on disk.

YuNet -> the face nearest the image centre (LFW photos often show other people, and the
protocol means the central subject) -> norm_crop -> SFace on the crop and its mirror image in
one batch of 2, which yields both the flip-averaged embedding (the product's) and the
single-crop one (the crop's own row). The quality gate is assessed and counted, not used to
drop pairs.

Embedding 2,320 images takes minutes on 2 shared cores, so the result is kept in
``$XDG_CACHE_HOME/mip/lfw-embeddings/<key>.npz`` (outside the repository: never committed).
The key is a SHA-256 over the pinned model digests, the source of the modules that detect,
align and embed, the detector's settings, the list of images and their bytes: any change to
what would be computed gives another file. Only embeddings and per-image flags are stored,
never an image.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lfw_eval import Embeddings

import face_engine.detect as detect_module
import face_engine.embed as embed_module
import face_engine.quality as quality_module
from face_engine.detect import (
    NMS_THRESHOLD,
    SCORE_THRESHOLD,
    YuNetDetector,
    competing_faces,
    select_central_face,
)
from face_engine.embed import EMBEDDING_DIM, SFaceEmbedder, align_face
from face_engine.models import MODEL_SHA256, ensure_models
from face_engine.quality import DEFAULT_THRESHOLDS, assess

CACHE_FORMAT = 1
PIPELINES = ("flip_average", "single_crop")  # the product's default first


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "mip" / "lfw-embeddings"


def cache_key(images_dir: Path, rels: list[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"format": CACHE_FORMAT, "models": MODEL_SHA256,
                         "detector": [SCORE_THRESHOLD, NMS_THRESHOLD],
                         "pipelines": PIPELINES}, sort_keys=True).encode())
    for module in (detect_module, embed_module, quality_module):
        h.update(Path(str(module.__file__)).read_bytes())
    for rel in rels:
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256((images_dir / rel).read_bytes()).digest())
    return h.hexdigest()


@dataclass(frozen=True)
class LfwEmbeddings:
    rels: list[str]
    vectors: dict[str, np.ndarray]  # pipeline -> (n, 128) float32
    found: np.ndarray  # a face was detected
    rivals: np.ndarray  # faces the engine would count as competing subjects
    quality_passed: np.ndarray
    quality_failed_on: np.ndarray  # comma-separated measures, "" when passed
    cache_file: Path | None
    from_cache: bool

    def embeddings(self, pipeline: str) -> Embeddings:
        return Embeddings(self.rels, self.vectors[pipeline], self.found)

    def summary(self) -> dict[str, Any]:
        fails = Counter(m for s in self.quality_failed_on for m in str(s).split(",") if m)
        return {"images": len(self.rels), "face_found": int(self.found.sum()),
                "images_with_competing_faces": int(np.count_nonzero(self.rivals > 1)),
                "quality_pass": int(self.quality_passed[self.found].sum()),
                "quality_failures_by_measure": dict(sorted(fails.items()))}


def _extract(images_dir: Path, rels: list[str]) -> dict[str, np.ndarray]:
    models = ensure_models()
    detector = YuNetDetector(models.detector)
    embedder = SFaceEmbedder(models.recognizer)  # flip-averaged: yields both embeddings
    n = len(rels)
    flip = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    single = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
    found = np.zeros(n, dtype=bool)
    rivals = np.zeros(n, dtype=np.int32)
    passed = np.zeros(n, dtype=bool)
    failed_on = np.full(n, "no_face", dtype=object)
    for k, rel in enumerate(rels):
        image = cv2.imread(str(images_dir / rel), cv2.IMREAD_COLOR)
        if image is None:
            raise SystemExit(f"cannot read {rel}")
        faces = detector.detect(image)
        if not faces:
            continue
        found[k] = True
        rivals[k] = len(competing_faces(faces))
        face = select_central_face(faces, image.shape)
        aligned = align_face(image, face.kps)
        report = assess(face.kps, aligned, DEFAULT_THRESHOLDS)
        passed[k] = report.passed
        failed_on[k] = ",".join(c.measure for c in report.failures)
        flip[k], single[k] = embedder.embed_aligned_both(aligned)
        if (k + 1) % 200 == 0:
            print(f"  embedded {k + 1}/{n} images", file=sys.stderr)
    return {"rels": np.array(rels), "flip_average": flip, "single_crop": single,
            "found": found, "rivals": rivals, "passed": passed,
            "failed_on": failed_on.astype(str)}


def load_or_extract(images_dir: Path, rels: list[str], cache_dir: Path | None,
                    ) -> LfwEmbeddings:
    """Embeddings of ``rels`` (paths under ``images_dir``); from the cache when it holds this
    exact computation, else computed (and stored when ``cache_dir`` is given)."""
    rels = sorted(rels)
    path = cache_dir / f"{cache_key(images_dir, rels)}.npz" if cache_dir else None
    from_cache = path is not None and path.is_file()
    if from_cache:
        assert path is not None
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
        if list(data["rels"]) != rels:  # the key covers this; a mismatch is a corrupt file
            raise SystemExit(f"embedding cache {path} does not match the image list")
    else:
        print(f"embedding {len(rels)} images (cached afterwards)" if path else
              f"embedding {len(rels)} images", file=sys.stderr)
        data = _extract(images_dir, rels)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            # numpy's stubs let **kwargs bind its bool ``allow_pickle``; the arrays are data
            savez: Any = np.savez
            savez(tmp, **data)
            tmp.replace(path)
    return LfwEmbeddings(rels=rels, vectors={p: data[p] for p in PIPELINES},
                         found=data["found"], rivals=data["rivals"],
                         quality_passed=data["passed"], quality_failed_on=data["failed_on"],
                         cache_file=path, from_cache=from_cache)
