"""The simulated camera against face_engine's own pose labels and liveness check."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from face_engine.engine import FaceAnalysis, FaceEngine
from face_engine.image_io import encode_jpeg
from face_engine.liveness import MIN_PARALLAX, Challenge, label_pose, new_challenge, nose_parallax
from face_engine.verify import cosine, operating_point
from gateway.demo.camera import (
    CameraError,
    HeadModel,
    challenge_frames,
    challenge_poses,
    posed_frame,
    posed_image,
)

# Pitch is the camera's weak side: YuNet's landmarks follow a synthetic nod only for some
# faces and directions (measured: astronaut "down" and grace_hopper "up" pass; astronaut
# "up" and grace_hopper "down" are read as a few degrees only). See the package report.
SUPPORTED = {
    "astronaut": ("left", "right", "down"),
    "grace_hopper": ("left", "right", "up"),
}
UNSUPPORTED = [("astronaut", "up"), ("grace_hopper", "down")]
Posed = Callable[[str, str], np.ndarray]


@pytest.fixture(scope="module")
def frontal(demo_engine: FaceEngine, heads: dict[str, HeadModel]
            ) -> dict[str, tuple[FaceAnalysis, np.ndarray]]:
    out = {}
    for name, head in heads.items():
        a = demo_engine.analyze_image(head.image)
        out[name] = (a, demo_engine.embed_face(a))
    return out


@pytest.fixture(scope="module")
def posed(heads: dict[str, HeadModel]) -> Callable[[str, str], np.ndarray]:
    @cache
    def get(name: str, pose: str) -> np.ndarray:
        return posed_image(heads[name], pose)

    return get


@pytest.mark.parametrize(("name", "pose"),
                         [(n, p) for n, poses in SUPPORTED.items() for p in poses])
def test_turn_is_labelled_as_requested_and_keeps_identity(
        demo_engine: FaceEngine, frontal: dict[str, tuple[FaceAnalysis, np.ndarray]],
        posed: Posed, name: str, pose: str) -> None:
    neutral, emb0 = frontal[name]
    analysis = demo_engine.analyze_image(posed(name, pose))
    assert analysis.quality.passed or all(c.measure in ("yaw", "pitch", "roll")
                                          for c in analysis.quality.failures)
    assert label_pose(analysis.pose, neutral.pose) == pose
    emb = demo_engine.embed_face(analysis, require_quality=False)
    assert cosine(emb0, emb) >= operating_point("far_1e-3").threshold
    assert nose_parallax(neutral.landmarks, analysis.landmarks) >= MIN_PARALLAX


@pytest.mark.parametrize(("name", "pose"), UNSUPPORTED)
@pytest.mark.xfail(strict=True, reason="YuNet does not follow this synthetic nod (measured)")
def test_known_pitch_gaps(demo_engine: FaceEngine,
                          frontal: dict[str, tuple[FaceAnalysis, np.ndarray]],
                          posed: Posed, name: str, pose: str) -> None:
    neutral, _ = frontal[name]
    analysis = demo_engine.analyze_image(posed(name, pose))
    assert label_pose(analysis.pose, neutral.pose) == pose
    assert nose_parallax(neutral.landmarks, analysis.landmarks) >= MIN_PARALLAX


def _challenges(name: str, count: int) -> list[Challenge]:
    """The first ``count`` seeded random challenges this portrait's camera supports."""
    rng = random.Random(2024)
    now = time.time()
    found: list[Challenge] = []
    while len(found) < count:
        c = new_challenge(rng, now=now)
        if all(p == "center" or p in SUPPORTED[name] for p in c.poses):
            found.append(c)
    return found


@pytest.mark.parametrize("name", list(SUPPORTED))
def test_random_challenges_pass_liveness(demo_engine: FaceEngine,
                                         heads: dict[str, HeadModel], name: str) -> None:
    for i, challenge in enumerate(_challenges(name, 3)):
        frames = challenge_frames(heads[name], challenge, frontal_between=bool(i % 2))
        result = demo_engine.check_liveness(challenge, frames)
        assert result.passed, (challenge.poses, result.reason, result.message)
        assert result.details["min_identity_cosine"] >= operating_point("far_1e-3").threshold


def test_other_person_mixed_in_fails_identity(demo_engine: FaceEngine,
                                              heads: dict[str, HeadModel], posed: Posed) -> None:
    now = time.time()
    challenge = Challenge("n" * 32, ("left", "right"), now, now + 14.0)
    frames = challenge_frames(heads["astronaut"], challenge, now + 0.5)
    # grace_hopper turned right in place of the astronaut's right turn
    frames[2] = type(frames[2])(encode_jpeg(posed("grace_hopper", "right")), frames[2].timestamp)
    result = demo_engine.check_liveness(challenge, frames)
    assert not result.passed and result.reason == "identity"


def test_still_portrait_repeated_fails(demo_engine: FaceEngine,
                                       heads: dict[str, HeadModel]) -> None:
    now = time.time()
    challenge = Challenge("n" * 32, ("left", "right"), now, now + 14.0)
    still = encode_jpeg(heads["astronaut"].image)
    frames = challenge_frames(heads["astronaut"], challenge, now + 0.5, strength=0.0)
    assert all(f.image == still for f in frames)
    result = demo_engine.check_liveness(challenge, frames)
    assert not result.passed and result.reason == "no_motion"


def test_wrong_order_fails(demo_engine: FaceEngine, heads: dict[str, HeadModel]) -> None:
    now = time.time()
    frames = challenge_frames(heads["astronaut"], Challenge("n" * 32, ("right", "left"), now,
                                                            now + 14.0), now + 0.5)
    result = demo_engine.check_liveness(Challenge("n" * 32, ("left", "right"), now,
                                                  now + 14.0), frames)
    assert not result.passed and result.reason == "sequence"


def test_poses_and_bad_input(heads: dict[str, HeadModel]) -> None:
    assert challenge_poses(("left", "right")) == ["center", "left", "right"]
    assert challenge_poses(("left", "right"), frontal_between=True) == [
        "center", "left", "center", "right"]
    assert challenge_poses(("left", "center", "up"), frontal_between=True) == [
        "center", "left", "center", "up"]
    head = heads["astronaut"]
    assert np.array_equal(posed_image(head, "center"), head.image)
    with pytest.raises(CameraError):
        posed_image(head, "sideways")
    with pytest.raises(CameraError):
        posed_image(head, "left", 80.0)
    with pytest.raises(CameraError):
        challenge_poses(("left", "spin"))
    jpeg = posed_frame(head, "left")
    assert jpeg[:3] == b"\xff\xd8\xff"
