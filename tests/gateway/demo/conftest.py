"""Fixtures for the demo tests: the face engine and both demo portraits, prepared once."""

from __future__ import annotations

import pytest

from face_engine.engine import FaceEngine, load_default_engine
from gateway.demo.camera import HeadModel, prepare_portrait
from gateway.demo.faces import demo_portrait


@pytest.fixture(scope="session")
def demo_engine() -> FaceEngine:
    # The models setup obtained (ensure_models): their absence is an install error, not a skip.
    return load_default_engine()


@pytest.fixture(scope="session")
def heads(demo_engine: FaceEngine) -> dict[str, HeadModel]:
    return {name: prepare_portrait(demo_portrait(name), demo_engine)
            for name in ("astronaut", "grace_hopper")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # insightface's norm_crop calls a deprecated scikit-image method on every alignment.
    for item in items:
        if "gateway/demo" in str(item.path):
            item.add_marker(pytest.mark.filterwarnings(
                "ignore::FutureWarning:insightface.utils.face_align"))
