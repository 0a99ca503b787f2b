from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from face_engine.engine import FaceEngine
from face_engine.errors import (
    QualityBlurry,
    QualityError,
    QualityExposure,
    QualityPose,
    QualityTooSmall,
)
from face_engine.image_io import encode_png
from face_engine.quality import NOSE_DEPTH_RATIO, estimate_pose


def test_astronaut_passes(engine: FaceEngine, astronaut_bytes: bytes) -> None:
    q = engine.analyze(astronaut_bytes).quality
    assert q.passed, q.failures
    assert abs(q.pose.yaw) < 10 and abs(q.pose.roll) < 5 and abs(q.pose.pitch) < 12


def _refusal(engine: FaceEngine, img: np.ndarray) -> QualityError:
    with pytest.raises(QualityError) as exc:
        engine.embed(encode_png(img))
    return exc.value


def test_heavy_blur_is_refused(engine: FaceEngine, astronaut_bgr: np.ndarray) -> None:
    err = _refusal(engine, cv2.GaussianBlur(astronaut_bgr, (0, 0), 3.5))
    assert isinstance(err, QualityBlurry)
    assert err.measure == "sharpness" and "sharpness" in err.message


def test_very_dark_is_refused(engine: FaceEngine, astronaut_bgr: np.ndarray) -> None:
    dark = (astronaut_bgr.astype(np.float32) * 0.12).astype(np.uint8)
    err = _refusal(engine, dark)
    assert isinstance(err, QualityExposure) and err.measure == "brightness"


def test_overexposed_is_refused(engine: FaceEngine, astronaut_bgr: np.ndarray) -> None:
    bright = np.clip(astronaut_bgr.astype(np.float32) * 1.8 + 60, 0, 255).astype(np.uint8)
    err = _refusal(engine, bright)
    assert isinstance(err, QualityExposure)


def test_tiny_face_is_refused(engine: FaceEngine, astronaut_bgr: np.ndarray) -> None:
    small = cv2.resize(astronaut_bgr, (200, 200), interpolation=cv2.INTER_AREA)
    err = _refusal(engine, small)
    assert isinstance(err, QualityTooSmall) and err.measure == "inter_ocular_px"
    assert err.value < 24


@pytest.mark.parametrize("name,index", [("Jiang_Zemin", 7), ("Bill_Frist", 5),
                                        ("Bill_Frist", 2)])
def test_strongly_turned_face_is_refused(engine: FaceEngine,
                                         lfw_image: Callable[[str, int], bytes],
                                         name: str, index: int) -> None:
    # Real photos of strongly turned heads (|yaw| > 45 by the landmark estimate).
    with pytest.raises(QualityPose) as exc:
        engine.embed(lfw_image(name, index))
    assert exc.value.measure == "yaw" and abs(exc.value.value) > 45


def _project(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """5 landmarks of a simple 3-D face (eye distance 1) under orthographic projection."""
    d = NOSE_DEPTH_RATIO
    pts = np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 0.566 * 1.156, d],
                    [-0.42, 1.156, 0], [0.42, 1.156, 0]])
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    return ((pts @ ry.T) @ rx.T)[:, :2] * 100 + 200


@pytest.mark.parametrize("yaw", [-40, -20, 0, 20, 40])
def test_pose_geometry_recovers_yaw(yaw: float) -> None:
    pose = estimate_pose(_project(yaw, 0))
    assert pose.yaw == pytest.approx(yaw, abs=1.0)
    assert abs(pose.pitch) < 2 and abs(pose.roll) < 1


@pytest.mark.parametrize("pitch", [-25, 0, 25])
def test_pose_geometry_recovers_pitch(pitch: float) -> None:
    # A positive rotation here moves the nose tip down (chin down) = negative pitch.
    assert estimate_pose(_project(0, pitch)).pitch == pytest.approx(-pitch, abs=3.0)


def test_pose_roll_from_eye_line() -> None:
    pts = _project(0, 0)
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    rolled = (pts - 200) @ np.array([[c, -s], [s, c]]).T + 200
    assert estimate_pose(rolled).roll == pytest.approx(30, abs=0.5)
