"""Fixtures for the face-engine tests: real models and real faces from ../shared."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from face_engine.engine import FaceEngine
from face_engine.models import verify_directory


@pytest.fixture(scope="session")
def engine(shared_dir: Path) -> FaceEngine:
    # Loaded once per test session (~1 s); the models come verified from ../shared.
    return FaceEngine(verify_directory(shared_dir / "models"))


@pytest.fixture(scope="session")
def astronaut_bytes(shared_dir: Path) -> bytes:
    return (shared_dir / "data" / "astronaut.png").read_bytes()


@pytest.fixture(scope="session")
def astronaut_bgr(shared_dir: Path) -> np.ndarray:
    img = cv2.imread(str(shared_dir / "data" / "astronaut.png"), cv2.IMREAD_COLOR)
    assert img is not None
    return img


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
