"""Fixtures for the face-engine tests.

The models come from `ensure_models()`, the loader setup runs (`python -m face_engine.models
fetch`: hash-checked, cached), so model tests run wherever setup ran and fail, never skip, when
the models cannot be obtained. The astronaut is scikit-image's copy (a project dependency; the
same pixels as ../shared/data/astronaut.png). Only LFW and the non-face set come from
../shared (test data, not part of the product): tests needing them skip without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_engine.engine import FaceEngine
from face_engine.image_io import encode_png
from face_engine.models import ModelPaths, ensure_models
from gateway.demo.faces import demo_portrait


@pytest.fixture(scope="session")
def model_paths() -> ModelPaths:
    return ensure_models()


@pytest.fixture(scope="session")
def engine(model_paths: ModelPaths) -> FaceEngine:
    # Loaded once per test session (~1 s).
    return FaceEngine(model_paths)


@pytest.fixture(scope="session")
def astronaut_bytes() -> bytes:
    return demo_portrait("astronaut")


@pytest.fixture(scope="session")
def astronaut_bgr(astronaut_bytes: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(astronaut_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.fixture(scope="session")
def stranger_bytes() -> bytes:
    """Another person than the astronaut (Grace Hopper, matplotlib's public-domain sample)."""
    return demo_portrait("grace_hopper")


@pytest.fixture(scope="session")
def blank_png() -> bytes:
    """A valid image with no face in it (flat grey with a soft gradient)."""
    ramp = np.linspace(90, 160, 320, dtype=np.float32)
    grey = np.tile(ramp, (240, 1)).astype(np.uint8)
    return encode_png(np.dstack([grey, grey, grey]))


@pytest.fixture(scope="session")
def nonface_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "nonface"
    if not d.is_dir():
        pytest.skip("the non-face image set is not in ../shared/data/nonface")
    return d


@pytest.fixture(scope="session")
def lfw_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "lfw-dev"
    if not (d / "pairs.txt").is_file():
        pytest.skip("LFW dev pairs are not in ../shared/data/lfw-dev")
    return d


@pytest.fixture(scope="session")
def lfw_image(lfw_dir: Path) -> Callable[[str, int], bytes]:
    def read(name: str, index: int) -> bytes:
        return (lfw_dir / "images" / name / f"{name}_{index:04d}.jpg").read_bytes()

    return read


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # insightface's norm_crop calls a deprecated scikit-image method on every alignment.
    for item in items:
        if "face_engine" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings(
                "ignore::FutureWarning:insightface.utils.face_align"))
