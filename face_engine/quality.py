"""Face quality: size, sharpness, exposure and head pose, each with a named limit.

Measures (all computed from YuNet's 5 landmarks and the 112x112 aligned crop):

* ``inter_ocular_px``: distance between the two eye landmarks in the *original* image, in
  pixels. It is the usual measure of face resolution (ISO/IEC 19794-5 asks for >= 60 px
  for passport photos; recognisers still work well at 30).
* ``sharpness``: variance of the Laplacian of the grey aligned crop, inner 80x80 region
  (the border can hold black fill from the alignment warp). Focus blur and motion blur
  remove the high frequencies the Laplacian responds to.
* ``brightness``: mean grey level of that region (0-255); ``clipped_fraction``: share of
  its pixels at <= 8 or >= 247, i.e. crushed shadows or blown highlights.
* ``yaw``, ``pitch``, ``roll`` in degrees, from the landmark geometry below.

Pose geometry (a documented approximation, not a 3-D fit):

1. ``roll`` is the angle of the line from the image-left eye to the image-right eye
   (positive = clockwise in the image). All points are rotated by ``-roll`` about the
   eye midpoint so the eye line is horizontal.
2. Model the face as the plane through eyes and mouth corners plus the nose tip standing
   ``D = NOSE_DEPTH_RATIO * IOD`` in front of it (IOD = true inter-ocular distance;
   anthropometric nose-tip protrusion in front of the pupils is ~30 mm for ~63 mm IOD,
   so the ratio is ~0.5). Turning the head by ``yaw`` shrinks the observed eye distance
   to ``IOD cos(yaw)`` and shifts the nose off the face midline by ``D sin(yaw)``, hence
   ``tan(yaw) = dx / (NOSE_DEPTH_RATIO * iod_observed)``, where ``dx`` is the nose's
   horizontal offset from the midline (mean of the eye midpoint and mouth midpoint).
   Positive yaw = the subject turns towards *their own left*, which in an unmirrored
   camera image moves the nose towards the image's right.
3. Pitch likewise moves the nose along the eye-mouth axis: with ``t`` the nose's position
   between eye line (0) and mouth line (1) and ``T0`` its frontal value,
   ``tan(pitch) = (T0 - t) * (H/IOD) / NOSE_DEPTH_RATIO`` where ``H/IOD`` = 1.156 is the
   ArcFace template's eye-to-mouth height over eye distance. ``T0`` = 0.566 is the median
   ``t`` of YuNet's landmarks on the 2,320 LFW dev photos (mostly frontal; the ArcFace
   template's 0.494 read every LFW face as ~9 degrees chin-down: YuNet marks the nose tip
   lower than that template). Positive pitch = chin up (looking up).

Individual faces differ from the template, so a frontal face reads a few degrees off
zero; the limits leave room for that. The default limits were set on LFW View 2 folds
1-3 (2,320 news photos, which include many mildly turned faces) so that nearly all pass
(pass rate reported in docs/face.md) while degraded copies (strong blur, very dark, small,
strongly rotated) fail; see tests/face_engine/test_quality.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from face_engine.errors import (
    QualityBlurry,
    QualityError,
    QualityExposure,
    QualityPose,
    QualityTooSmall,
)

NOSE_DEPTH_RATIO = 0.5
NOSE_T0 = 0.566  # median on LFW dev (YuNet landmarks); the ArcFace template has 0.494
TEMPLATE_H_OVER_IOD = 1.156  # (92.28 - 51.60) / (73.53 - 38.29)
_INNER = (slice(16, 96), slice(16, 96))


@dataclass(frozen=True)
class QualityThresholds:
    min_inter_ocular_px: float = 24.0
    min_sharpness: float = 40.0
    min_brightness: float = 40.0
    max_brightness: float = 215.0
    max_clipped_fraction: float = 0.35
    max_abs_yaw: float = 45.0
    max_abs_pitch: float = 35.0
    max_abs_roll: float = 30.0
    check_pose: bool = True


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees (signs as documented in the module docstring)."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True)
class QualityCheck:
    measure: str
    value: float
    limit: str
    ok: bool
    error: type[QualityError] = field(repr=False)

    @property
    def code(self) -> str:
        return self.error.code

    def to_error(self) -> QualityError:
        return self.error(
            f"{self.measure} is {self.value:.3g}; required {self.limit}",
            measure=self.measure, value=self.value, limit=self.limit,
        )


@dataclass(frozen=True)
class QualityReport:
    checks: tuple[QualityCheck, ...]
    pose: Pose

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> tuple[QualityCheck, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def value(self, measure: str) -> float:
        for c in self.checks:
            if c.measure == measure:
                return c.value
        raise KeyError(measure)

    def raise_for_failure(self) -> None:
        """Raise the first failing check's typed error (size, pose, exposure, sharpness)."""
        failures = self.failures
        if failures:
            raise failures[0].to_error()

    def as_dict(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "pose": {"yaw": self.pose.yaw, "pitch": self.pose.pitch, "roll": self.pose.roll},
            "checks": [
                {"measure": c.measure, "value": c.value, "limit": c.limit, "ok": c.ok,
                 "code": None if c.ok else c.code}
                for c in self.checks
            ],
        }


def estimate_pose(kps: np.ndarray) -> Pose:
    """Yaw, pitch and roll in degrees from the 5 landmarks (see module docstring)."""
    pts = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    eye_l, eye_r = pts[0], pts[1]
    d = eye_r - eye_l
    roll = math.degrees(math.atan2(d[1], d[0]))
    iod = float(np.hypot(d[0], d[1]))
    if iod < 1e-6:
        return Pose(yaw=0.0, pitch=0.0, roll=roll)
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    centre = (eye_l + eye_r) / 2.0
    p = (pts - centre) @ rot.T  # eye line now horizontal, eye midpoint at the origin
    eye_mid = (p[0] + p[1]) / 2.0
    mouth_mid = (p[3] + p[4]) / 2.0
    midline_x = (eye_mid[0] + mouth_mid[0]) / 2.0
    dx = p[2][0] - midline_x
    yaw = math.degrees(math.atan2(dx, NOSE_DEPTH_RATIO * iod))
    height = mouth_mid[1] - eye_mid[1]
    if abs(height) < 1e-6:
        return Pose(yaw=yaw, pitch=0.0, roll=roll)
    t = (p[2][1] - eye_mid[1]) / height
    pitch = math.degrees(math.atan((NOSE_T0 - t) * TEMPLATE_H_OVER_IOD
                                   / NOSE_DEPTH_RATIO))
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def inter_ocular_px(kps: np.ndarray) -> float:
    pts = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    return float(np.hypot(*(pts[1] - pts[0])))


def sharpness(aligned_bgr: np.ndarray) -> float:
    grey = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)[_INNER]
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def exposure(aligned_bgr: np.ndarray) -> tuple[float, float]:
    """(mean grey level, fraction of clipped pixels) of the inner crop region."""
    grey = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)[_INNER]
    clipped = float(np.mean((grey <= 8) | (grey >= 247)))
    return float(grey.mean()), clipped


def assess(kps: np.ndarray, aligned_bgr: np.ndarray,
           thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> QualityReport:
    """Measure everything; the order of ``checks`` is the order errors are reported in."""
    t = thresholds
    pose = estimate_pose(kps)
    iod = inter_ocular_px(kps)
    sharp = sharpness(aligned_bgr)
    bright, clipped = exposure(aligned_bgr)
    checks = [QualityCheck("inter_ocular_px", iod, f">= {t.min_inter_ocular_px:g}",
                           iod >= t.min_inter_ocular_px, QualityTooSmall)]
    if t.check_pose:
        checks += [
            QualityCheck("yaw", pose.yaw, f"|yaw| <= {t.max_abs_yaw:g} deg",
                         abs(pose.yaw) <= t.max_abs_yaw, QualityPose),
            QualityCheck("pitch", pose.pitch, f"|pitch| <= {t.max_abs_pitch:g} deg",
                         abs(pose.pitch) <= t.max_abs_pitch, QualityPose),
            QualityCheck("roll", pose.roll, f"|roll| <= {t.max_abs_roll:g} deg",
                         abs(pose.roll) <= t.max_abs_roll, QualityPose),
        ]
    # Exposure before sharpness: a dark or washed-out face also has little Laplacian
    # energy, and "too dark" is the actionable reason then, not "blurry".
    checks += [
        QualityCheck("brightness", bright, f"{t.min_brightness:g}..{t.max_brightness:g}",
                     t.min_brightness <= bright <= t.max_brightness, QualityExposure),
        QualityCheck("clipped_fraction", clipped, f"<= {t.max_clipped_fraction:g}",
                     clipped <= t.max_clipped_fraction, QualityExposure),
        QualityCheck("sharpness", sharp, f">= {t.min_sharpness:g}",
                     sharp >= t.min_sharpness, QualityBlurry),
    ]
    return QualityReport(checks=tuple(checks), pose=pose)
