from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from face_engine.engine import FaceEngine
from face_engine.errors import InputError, LivenessFailed, NoFace
from face_engine.image_io import decode_image, encode_jpeg
from face_engine.liveness import (
    MIN_PARALLAX,
    POSES,
    Challenge,
    Frame,
    LivenessSession,
    check_session,
    new_challenge,
    nose_parallax,
    sequence_matches,
)
from face_engine.verify import load_operating_points, single_crop_operating_point

ImageFn = Callable[[str, int], bytes]
# One person, three real photos: frontal, turned to their left, turned to their right
# (yaw from the landmark estimate about 0, +28 and -28 degrees).
REAL = ("George_HW_Bush", 7, 8, 1)
REAL2 = ("Edmund_Stoiber", 4, 5, 7)


def _challenge(poses: tuple[str, ...], issued: float) -> Challenge:
    return Challenge(nonce="n" * 32, poses=poses, issued_at=issued, deadline=issued + 14.0)


def _frames(images: list[bytes], start: float, step: float = 1.0) -> list[Frame]:
    return [Frame(img, start + i * step) for i, img in enumerate(images)]


# ---- pure logic ------------------------------------------------------------------------
def test_new_challenge_shape() -> None:
    rng = random.Random(7)
    seen = set()
    for _ in range(200):
        c = new_challenge(rng, now=1000.0)
        assert 2 <= len(c.poses) <= 3 and c.poses[0] != "center"
        assert all(p in POSES for p in c.poses)
        assert all(a != b for a, b in zip(c.poses, c.poses[1:], strict=False))
        assert c.issued_at == 1000.0 and c.deadline > c.issued_at
        assert len(c.nonce) == 32
        seen.add(c.poses)
    assert len(seen) > 20
    assert new_challenge(random.Random(1)).nonce != new_challenge(random.Random(1)).nonce


def test_sequence_matching() -> None:
    assert sequence_matches(["center", "left", "right"], ("left", "right"))
    assert sequence_matches(["center", "left", "center", "right"], ("left", "right"))
    assert not sequence_matches(["center", "right", "left"], ("left", "right"))
    assert not sequence_matches(["left", "right"], ("left", "right"))
    assert not sequence_matches(["center", "left", "up", "right"], ("left", "right"))
    assert not sequence_matches(["center", "left"], ("left", "right"))


def _head(yaw_deg: float) -> np.ndarray:
    pts = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 0.65, 0.5], [-0.42, 1.15, 0],
                    [0.42, 1.15, 0]])
    y = math.radians(yaw_deg)
    r = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    p = pts @ r.T
    z = 8.0 + p[:, 2:3]  # perspective camera 8 eye-distances away
    return (p[:, :2] / z) * 800 + 300


def test_parallax_geometry_real_head_vs_plane() -> None:
    ref = _head(0)
    for yaw in (15, 25, -20):
        assert nose_parallax(ref, _head(yaw)) > MIN_PARALLAX
    rng = np.random.default_rng(3)
    for _ in range(20):
        scale = np.array([[1, 1, 0], [1, 1, 0], [1e-3, 1e-3, 0]])
        h = np.eye(3) + rng.normal(0, 0.15, (3, 3)) * scale
        moved = cv2.perspectiveTransform(ref.reshape(-1, 1, 2), h).reshape(5, 2)
        assert nose_parallax(ref, moved) < 1e-6


# ---- end to end on real faces ----------------------------------------------------------
def _real(lfw_image: ImageFn, who: tuple[str, int, int, int]) -> list[bytes]:
    name, centre, left, right = who
    return [lfw_image(name, centre), lfw_image(name, left), lfw_image(name, right)]


@pytest.mark.parametrize("who", [REAL, REAL2])
def test_real_person_turning_is_accepted(engine: FaceEngine, lfw_image: ImageFn,
                                         who: tuple[str, int, int, int]) -> None:
    now = time.time()
    res = engine.check_liveness(_challenge(("left", "right"), now),
                                _frames(_real(lfw_image, who), now + 0.5))
    assert res.passed, res.message
    assert res.observed == ("center", "left", "right")
    assert res.details["parallax_left"] >= MIN_PARALLAX


def test_wrong_order_is_refused(engine: FaceEngine, lfw_image: ImageFn) -> None:
    now = time.time()
    res = engine.check_liveness(_challenge(("right", "left"), now),
                                _frames(_real(lfw_image, REAL), now + 0.5))
    assert not res.passed and res.reason == "sequence"


def test_an_unusable_frame_is_refused_with_its_own_error(engine: FaceEngine,
                                                        lfw_image: ImageFn) -> None:
    """A frame without a face, or one that is no image, refuses the check as
    `frame_rejected` carrying the frame's typed error: a flow tells a bad capture from a
    failed liveness by it (the pharmacy does not count it towards its lockout)."""
    now = time.time()
    real = _real(lfw_image, REAL)
    grey = encode_jpeg(np.full((480, 640, 3), 128, np.uint8))
    for first, error in ((grey, NoFace), (b"not an image", InputError)):
        res = engine.check_liveness(_challenge(("left", "right"), now),
                                    _frames([first, *real[1:]], now + 0.5))
        assert not res.passed and res.reason == "frame_rejected"
        assert isinstance(res.cause, error)
        with pytest.raises(LivenessFailed) as raised:
            res.raise_for_failure()
        assert raised.value.cause is res.cause


def test_too_slow_is_refused(engine: FaceEngine, lfw_image: ImageFn) -> None:
    now = time.time()
    res = engine.check_liveness(_challenge(("left", "right"), now),
                                _frames(_real(lfw_image, REAL), now + 0.5, step=8.0))
    assert not res.passed and res.reason == "timeout"
    late = engine.check_liveness(_challenge(("left", "right"), now - 100),
                                 _frames(_real(lfw_image, REAL), now - 99))
    assert not late.passed and late.reason == "timeout"


def test_different_people_are_refused(engine: FaceEngine, lfw_image: ImageFn) -> None:
    now = time.time()
    a, b = _real(lfw_image, REAL), _real(lfw_image, REAL2)
    res = engine.check_liveness(_challenge(("left", "right"), now),
                                _frames([a[0], b[1], a[2]], now + 0.5))
    assert not res.passed and res.reason == "identity"


def test_still_photo_repeated_is_refused(engine: FaceEngine, lfw_image: ImageFn) -> None:
    now = time.time()
    photo = _real(lfw_image, REAL)[0]
    res = engine.check_liveness(_challenge(("left", "right"), now),
                                _frames([photo] * 4, now + 0.5))
    assert not res.passed and res.reason == "no_motion"


def _tilt(img: np.ndarray, yaw_deg: float, pitch_deg: float, f: float) -> np.ndarray:
    """View of the photo as a plane rotated about its centre, pinhole camera at focal f."""
    h, w = img.shape[:2]
    a, b = math.radians(pitch_deg), math.radians(yaw_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    r = ry @ rx
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    m = np.column_stack([r[:, 0], r[:, 1], [0, 0, f]])
    hom = k @ m @ np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    return cv2.warpPerspective(img, hom / hom[2, 2], (w, h), borderMode=cv2.BORDER_REPLICATE)


def test_tilted_photo_is_refused(engine: FaceEngine, lfw_image: ImageFn) -> None:
    """A printed photo tilted left/right (plus jitter) in front of the camera."""
    photo = decode_image(_real(lfw_image, REAL)[0])
    rng = np.random.default_rng(11)
    now = time.time()
    for _ in range(4):
        frames = [photo]
        for sign in (1, -1):  # turn "left" then "right"
            yaw = sign * rng.uniform(20, 35)
            frames.append(_tilt(photo, yaw, rng.uniform(-8, 8), rng.uniform(400, 700)))
        res = engine.check_liveness(_challenge(("left", "right"), now),
                                    _frames([encode_jpeg(f) for f in frames], now + 0.5))
        assert not res.passed
        assert res.reason in ("sequence", "planar"), res.message


# ---- frames streamed one at a time --------------------------------------------------------
def test_streamed_frames_in_any_order_decide_like_a_batch(engine: FaceEngine,
                                                          lfw_image: ImageFn) -> None:
    now = time.time()
    challenge = _challenge(("left", "right"), now)
    frames = _frames(_real(lfw_image, REAL), now + 0.5)
    batch, batch_session = check_session(challenge, frames, engine=engine)
    session = LivenessSession(challenge, engine)
    for i in (2, 0, 1):  # a counter's uploads may overtake each other
        assert session.add(i, frames[i]) is None
    assert session.frames_seen == 3
    streamed = session.result(3)
    assert streamed.passed and batch.passed
    assert streamed.details == pytest.approx(batch.details)
    # The frontal frame's embedding is the engine's own (pose-gated) embedding of it.
    reference = session.reference
    assert reference is not None and batch_session.reference is not None
    reference.quality.raise_for_failure()
    assert float(np.dot(reference.embedding, engine.embed(frames[0].image))) > 1 - 1e-5
    assert float(np.dot(batch_session.reference.embedding, reference.embedding)) > 1 - 1e-5


def test_streamed_frames_missing_duplicated_or_late(engine: FaceEngine,
                                                    lfw_image: ImageFn) -> None:
    now = time.time()
    frames = _frames(_real(lfw_image, REAL), now + 0.5)
    missing = LivenessSession(_challenge(("left", "right"), now), engine)
    missing.add(0, frames[0])
    missing.add(2, frames[2])
    assert missing.result(3).reason == "frame_count"
    twice = LivenessSession(_challenge(("left", "right"), now), engine)
    twice.add(0, frames[0])
    refusal = twice.add(0, frames[0])
    assert refusal is not None and refusal.reason == "frame_count"
    # the first refusal sticks: later good frames do not undo it
    assert twice.add(1, frames[1]) is refusal and twice.result(2) is refusal
    late = LivenessSession(_challenge(("left", "right"), now - 100), engine)
    refused = late.add(0, Frame(frames[0].image, now))
    assert refused is not None and refused.reason == "timeout"
    assert late.frames_seen == 0  # no model ran on a late frame
    backwards = LivenessSession(_challenge(("left", "right"), now), engine)
    for i, ts in enumerate((now + 2, now + 1, now + 3)):
        backwards.add(i, Frame(frames[i].image, ts))
    assert backwards.result(3).reason == "timing"
    out_of_range = LivenessSession(_challenge(("left", "right"), now), engine)
    refused = out_of_range.add(40, frames[0])
    assert refused is not None and refused.reason == "frame_count"


def test_identity_threshold_is_the_single_crop_calibration() -> None:
    single = single_crop_operating_point("far_1e-3")
    averaged = load_operating_points()["far_1e-3"]
    assert single.far_target == averaged.far_target == 1e-3
    assert 0.2 < single.threshold < 0.6 and single.threshold != averaged.threshold


# ---- multi-frame screening template -----------------------------------------------------------
def test_template_averages_the_frontal_frames_only(engine: FaceEngine,
                                                   lfw_image: ImageFn) -> None:
    from face_engine.dedup.identification import template

    now = time.time()
    front, left, right = _real(lfw_image, REAL)
    image = decode_image(front)
    brighter = encode_jpeg(cv2.convertScaleAbs(image, alpha=1.15, beta=12))
    frames = _frames([front, brighter, left, right], now + 0.5)
    result, session = check_session(_challenge(("left", "right"), now), frames, engine=engine)
    assert result.passed, result.message
    got = session.template()
    assert got is not None
    expected = template([engine.embed(front), engine.embed(brighter)])
    assert float(np.dot(got, expected)) > 1 - 1e-5
    reference = session.reference
    assert reference is not None
    assert float(np.dot(got, reference.embedding)) < 1 - 1e-6  # the second frame counts
    # the turned frames are left out: with only them beside frame 0, the template is frame 0
    _, alone = check_session(_challenge(("left", "right"), now),
                             _frames([front, left, right], now + 0.5), engine=engine)
    single = alone.template()
    assert single is not None and alone.reference is not None
    assert float(np.dot(single, alone.reference.embedding)) > 1 - 1e-5


class _CountingEngine:
    """The engine, counting its embedding model runs by kind."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine
        self.runs = {"both": 0, "single": 0}

    def analyze(self, *args: object, **kwargs: object) -> object:
        return self.engine.analyze(*args, **kwargs)  # type: ignore[arg-type]

    def embed_face_both(self, analysis: object) -> tuple[np.ndarray, np.ndarray]:
        self.runs["both"] += 1
        return self.engine.embed_face_both(analysis)  # type: ignore[arg-type]

    def embed_face_single_crop(self, analysis: object) -> np.ndarray:
        self.runs["single"] += 1
        return self.engine.embed_face_single_crop(analysis)  # type: ignore[arg-type]


def test_no_template_embeds_later_frontal_frames_once(engine: FaceEngine,
                                                      lfw_image: ImageFn) -> None:
    """A flow that never screens (a pickup): the later frontal frame gets only its
    single-crop embedding, the decision and the frontal frame's embedding are unchanged."""
    now = time.time()
    front, left, right = _real(lfw_image, REAL)
    brighter = encode_jpeg(cv2.convertScaleAbs(decode_image(front), alpha=1.15, beta=12))
    frames = _frames([front, brighter, left, right], now + 0.5)
    counted = {}
    sessions = {}
    results = {}
    for keep in (True, False):
        counting = _CountingEngine(engine)
        results[keep], sessions[keep] = check_session(
            _challenge(("left", "right"), now), frames,
            engine=counting, template=keep)  # type: ignore[arg-type]
        counted[keep] = counting.runs
    assert results[True].passed and results[False].passed
    assert results[False].details == pytest.approx(results[True].details)
    assert counted[True] == {"both": 2, "single": 2}  # frames 0 and 1 flip-averaged
    assert counted[False] == {"both": 1, "single": 3}  # frame 0 only
    assert sessions[True].template() is not None and sessions[False].template() is None
    with_template, without = sessions[True].reference, sessions[False].reference
    assert with_template is not None and without is not None
    assert float(np.dot(with_template.embedding, without.embedding)) > 1 - 1e-5
