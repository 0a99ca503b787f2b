"""A simulated camera: head turns synthesised from one frontal portrait by a 3-D warp.

**This is a deepfake generator, on purpose.** The demo and the browser tests need live
camera input that performs :mod:`face_engine.liveness`'s active challenge, and the only
faces we may ship are two still portraits. So this module does what that liveness module
states it cannot stop: it turns a single photo into frames of a head turning left, right,
up or down, with 3-D nose parallax, and they pass the check. Anything using it must say
that its camera is simulated; nothing here may be used to enrol or verify a real person.

Method (per portrait, once):

1. Detect the face and its 5 landmarks with the face engine. Work in a face frame: origin
   at the eye midpoint, ``u`` along the eye line, ``v`` perpendicular (down), both in
   units of the inter-ocular distance (IOD), ``z`` towards the camera (0 = the eyes).
2. Model the head as a depth surface: a small table of anthropometric control points
   (eyes, brows, nasion, nose ridge and tip, nostrils, lips, chin, cheeks, jaw, forehead;
   average adult proportions, nose tip ~0.5 IOD in front of the eyes, jaw and temples
   ~1 IOD behind them), anchored to the detected eyes, nose and mouth, interpolated by a
   thin-plate spline, then blended into the limb depth at the edge of a head ellipse and
   smoothed. Outside the head the motion fades to zero, so the background stays put.

Per frame:

3. Un-project every pixel with its depth through a pinhole camera ``CAMERA_DISTANCE`` IODs
   away, rotate the head by the yaw/pitch about an axis behind the face (roughly the neck),
   re-project: a forward displacement field.
4. Invert it by fixed-point iteration (``s = x - d(s)``; the field's slope stays below 1
   for turns up to ~25 degrees, so it converges) and resample with :func:`cv2.remap`.
   Regions the turn would uncover (behind the cheek) are filled by stretching the nearest
   visible skin; regions it would hide are compressed.

What face_engine then sees (measured on the dev machine, default strengths):

=============  ======================================  ======================================
pose           astronaut                               grace_hopper
=============  ======================================  ======================================
left 22 deg    yaw +25.9, parallax 0.242, cos 0.832    yaw +34.8, parallax 0.382, cos 0.862
right 22 deg   yaw -16.0, parallax 0.148, cos 0.822    yaw -20.2, parallax 0.190, cos 0.827
up 25 deg      pitch +4.6 (read as center): FAILS      pitch +18.4, parallax 0.137, cos 0.703
down 25 deg    pitch -22.5, parallax 0.115, cos 0.585  pitch -1.4 (read as center): FAILS
=============  ======================================  ======================================

Known limit, stated plainly: YuNet's landmarks follow a synthetic *yaw* well but a
synthetic *nod* only for some faces and directions. Displacing the nose region alone by
0.3 IOD moved YuNet's nose point by ~0.05-0.1 IOD, together with the eyes and mouth: its
vertical landmark layout is dominated by its face prior, and the cues of a real nod
(nostrils, under-chin, eyelids seen from below) are not in a frontal photo. Neither a
deeper nose, a closer camera nor another pitch axis changed which cases pass. So the
astronaut cannot perform "up" and grace_hopper cannot perform "down"; a challenge holding
those poses fails for that portrait with reason ``sequence``. Margins that do pass are thin
in places (astronaut "right" yaw -16 vs 15, "down" parallax 0.115 vs 0.11).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from face_engine.engine import FaceEngine, load_default_engine
from face_engine.image_io import decode_image, encode_jpeg
from face_engine.liveness import TURN_POSES, Challenge, Frame

POSES = ("center", *TURN_POSES)

# Sign of (yaw, pitch) per pose, in face_engine.quality's convention: positive yaw = the
# subject turns to their own left (nose towards the image's right); positive pitch = chin up.
_POSE_AXES: dict[str, tuple[float, float]] = {
    "center": (0.0, 0.0),
    "left": (1.0, 0.0),
    "right": (-1.0, 0.0),
    "up": (0.0, 1.0),
    "down": (0.0, -1.0),
}

# Default turn per pose in degrees. Pitch needs more than yaw: YuNet reads a synthetic
# nod as much smaller than its geometry (it cannot see the nostrils or the under-chin
# that the frontal photo does not contain), so the warp drives it further.
DEFAULT_STRENGTH: dict[str, float] = {"left": 22.0, "right": 22.0, "up": 25.0, "down": 25.0}

# (anchor, u, v, z): anchor "E" = eye midpoint, "N" = the detected nose point, "M" = the
# mouth-corner midpoint; offsets and depth in IOD units (u right, v down, z to camera).
_CONTROL_POINTS: tuple[tuple[str, float, float, float], ...] = (
    # eyes, eye corners, brows, nasion, forehead
    ("E", -0.50, 0.00, 0.00), ("E", 0.50, 0.00, 0.00),
    ("E", -0.72, 0.00, -0.12), ("E", 0.72, 0.00, -0.12),
    ("E", -0.28, 0.00, 0.02), ("E", 0.28, 0.00, 0.02),
    ("E", -0.50, -0.30, 0.12), ("E", 0.50, -0.30, 0.12),
    ("E", -0.20, -0.28, 0.18), ("E", 0.20, -0.28, 0.18),
    ("E", 0.00, -0.02, 0.26), ("E", 0.00, -0.60, 0.18),
    ("E", -0.55, -0.75, -0.05), ("E", 0.55, -0.75, -0.05), ("E", 0.00, -1.10, 0.00),
    # nose: ridge, tip (YuNet's nose point sits at the lower part of the tip), base, alae
    ("N", 0.00, -0.42, 0.38), ("N", 0.00, -0.20, 0.50), ("N", 0.00, 0.00, 0.48),
    ("N", 0.00, 0.10, 0.36), ("N", -0.13, 0.06, 0.28), ("N", 0.13, 0.06, 0.28),
    ("N", -0.25, 0.02, 0.16), ("N", 0.25, 0.02, 0.16),
    # mouth corners, lips, chin, jaw
    ("M", -0.45, 0.00, 0.05), ("M", 0.45, 0.00, 0.05), ("M", 0.00, -0.12, 0.36),
    ("M", 0.00, 0.10, 0.30), ("M", 0.00, 0.60, 0.12),
    ("M", -0.60, 0.50, -0.28), ("M", 0.60, 0.50, -0.28),
    # cheeks, jaw angle, temples
    ("E", -0.65, 0.45, -0.15), ("E", 0.65, 0.45, -0.15),
    ("E", -0.95, 1.20, -0.70), ("E", 0.95, 1.20, -0.70),
    ("E", -1.10, 0.60, -1.00), ("E", 1.10, 0.60, -1.00),
    ("E", -1.20, 0.00, -1.10), ("E", 1.20, 0.00, -1.10),
    ("E", -1.05, -0.90, -1.05), ("E", 1.05, -0.90, -1.05),
)


class CameraError(ValueError):
    """Bad input to the simulated camera (unknown pose, strength out of range)."""


@dataclass(frozen=True)
class WarpParams:
    """Geometry of the head model and camera (IOD units). Defaults are tuned so that
    face_engine labels 20-25 degree turns of both demo portraits as requested."""

    camera_distance: float = 8.0  # ~50 cm for a 63 mm IOD: a webcam at arm's length
    # Nods are rendered as if the camera were closer (~30 cm): the stronger perspective
    # (chin growing, forehead shrinking) is what makes YuNet read a synthetic nod at all;
    # at 8 IOD the astronaut's "down" reached a parallax of 0.10, at 5 IOD 0.12 (measured).
    pitch_camera_distance: float = 5.0
    limb_depth: float = -1.3  # depth of the head's outline (behind the eyes)
    head_half_width: float = 1.5  # head ellipse, centred below the eyes
    head_half_height: float = 2.0
    head_centre_v: float = 0.3
    fade: float = 0.6  # motion fades to zero over this much beyond the head ellipse
    yaw_axis_z: float = -0.9  # the neck: yaw axis ~1 IOD behind the eyes
    pitch_axis_v: float = 1.2  # pitch axis below the mouth ...
    pitch_axis_z: float = -0.9  # ... and behind the face
    nose_scale: float = 1.0  # multiplies the nose control points' depth
    smooth: float = 0.08  # Gaussian smoothing of the depth map (IOD)
    iterations: int = 30  # fixed-point iterations of the inverse warp


DEFAULT_PARAMS = WarpParams()


@dataclass(frozen=True)
class HeadModel:
    """A portrait prepared for warping: image, landmarks and the per-pixel depth model."""

    image: np.ndarray = field(repr=False)  # H x W x 3 BGR uint8
    landmarks: np.ndarray = field(repr=False)  # (5, 2) as detected
    iod: float
    origin: tuple[float, float]  # eye midpoint (x, y) in pixels
    axis_u: tuple[float, float]  # unit vector along the eye line
    u: np.ndarray = field(repr=False)  # per-pixel face-frame coordinates (IOD)
    v: np.ndarray = field(repr=False)
    depth: np.ndarray = field(repr=False)  # per-pixel z (IOD), limb depth outside the head
    weight: np.ndarray = field(repr=False)  # per-pixel share of the head motion, 0..1
    params: WarpParams


def _face_frame(kps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    e0, e1 = kps[0], kps[1]
    iod = float(np.linalg.norm(e1 - e0))
    if iod < 8.0:
        raise CameraError(f"face too small to warp (eye distance {iod:.1f} px)")
    ux = (e1 - e0) / iod
    vy = np.array([-ux[1], ux[0]])
    return (e0 + e1) / 2.0, ux, vy, iod


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def build_head_model(image_bgr: np.ndarray, landmarks: np.ndarray,
                     params: WarpParams = DEFAULT_PARAMS) -> HeadModel:
    """Depth model of the head in ``image_bgr`` from its 5 face-engine landmarks."""
    kps = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    origin, ux, vy, iod = _face_frame(kps)

    def local(p: np.ndarray) -> np.ndarray:
        d = p - origin
        return np.array([float(d @ ux), float(d @ vy)]) / iod

    anchors = {"E": np.zeros(2), "N": local(kps[2]), "M": local((kps[3] + kps[4]) / 2.0)}
    pts: list[np.ndarray] = []
    zs: list[float] = []
    for anchor, du, dv, z in _CONTROL_POINTS:
        pts.append(anchors[anchor] + (du, dv))
        zs.append(z * params.nose_scale if anchor == "N" else z)
    # The outline of the head, where the surface meets the limb depth.
    a, b, cv = params.head_half_width, params.head_half_height, params.head_centre_v
    for ang in np.linspace(0.0, 2.0 * math.pi, 24, endpoint=False):
        pts.append(np.array([a * math.cos(ang), cv + b * math.sin(ang)]))
        zs.append(params.limb_depth)
    spline = RBFInterpolator(np.array(pts), np.array(zs), kernel="thin_plate_spline",
                             smoothing=1e-3)

    h, w = image_bgr.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    dx, dy = xs - origin[0], ys - origin[1]
    u = (dx * ux[0] + dy * ux[1]) / iod
    v = (dx * vy[0] + dy * vy[1]) / iod
    # The spline is smooth: evaluate it on a grid of ~IOD/12 and interpolate.
    step = max(1, int(iod / 12))
    coarse = spline(np.column_stack([u[::step, ::step].ravel(), v[::step, ::step].ravel()]))
    z = cv2.resize(coarse.reshape(u[::step, ::step].shape).astype(np.float32), (w, h),
                   interpolation=cv2.INTER_LINEAR).astype(np.float64)
    r = np.sqrt((u / a) ** 2 + ((v - cv) / b) ** 2)
    inside = _smoothstep((1.0 - r) / 0.15)  # blend into the limb over the last 15 %
    z = params.limb_depth + (np.maximum(z, params.limb_depth) - params.limb_depth) * inside
    sigma = max(0.5, params.smooth * iod)
    z = cv2.GaussianBlur(z.astype(np.float32), (0, 0), sigma).astype(np.float64)
    weight = _smoothstep((1.0 + params.fade - r) / params.fade)
    return HeadModel(
        image=image_bgr, landmarks=kps.astype(np.float32), iod=iod,
        origin=(float(origin[0]), float(origin[1])), axis_u=(float(ux[0]), float(ux[1])),
        u=u.astype(np.float32), v=v.astype(np.float32), depth=z.astype(np.float32),
        weight=weight.astype(np.float32), params=params,
    )


def prepare_portrait(image: bytes | np.ndarray, engine: FaceEngine | None = None,
                     params: WarpParams = DEFAULT_PARAMS) -> HeadModel:
    """Decode (if bytes), detect the single face and build its head model."""
    bgr = decode_image(image) if isinstance(image, bytes | bytearray) else image
    if not isinstance(bgr, np.ndarray) or bgr.ndim != 3 or bgr.shape[2] != 3:
        raise CameraError("portrait must be image bytes or an H x W x 3 BGR array")
    eng = engine if engine is not None else load_default_engine()
    analysis = eng.analyze_image(bgr)
    return build_head_model(bgr, analysis.landmarks, params)


def _turn_angles(pose: str, strength: float | None) -> tuple[float, float]:
    if pose not in _POSE_AXES:
        raise CameraError(f"unknown pose {pose!r}; choose one of {', '.join(POSES)}")
    if pose == "center":
        return 0.0, 0.0
    deg = DEFAULT_STRENGTH[pose] if strength is None else float(strength)
    if not 0.0 <= deg <= 35.0:
        raise CameraError(f"turn strength must be 0..35 degrees, got {deg}")
    sy, sp = _POSE_AXES[pose]
    return sy * deg, sp * deg


def displacement(model: HeadModel, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Forward displacement field (H x W x 2, pixels) of the head turned by yaw, pitch."""
    p = model.params
    u = model.u.astype(np.float64)
    v = model.v.astype(np.float64)
    z = model.depth.astype(np.float64)
    big_l = p.camera_distance if pitch_deg == 0.0 else p.pitch_camera_distance
    # Un-project: the pixel at (u, v) with depth z lies on the ray through it; the plane
    # of the eyes (z = 0) is at scale 1.
    s = (big_l - z) / big_l
    x, y = u * s, v * s
    cy, sy = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    cp, sp = math.cos(math.radians(pitch_deg)), math.sin(math.radians(pitch_deg))
    # Yaw about the vertical axis through (u=0, z=yaw_axis_z); + moves the nose to +u.
    zr = z - p.yaw_axis_z
    x1 = x * cy + zr * sy
    z1 = -x * sy + zr * cy + p.yaw_axis_z
    # Pitch about the horizontal axis through (v=pitch_axis_v, z=pitch_axis_z); chin up
    # (positive) moves the nose to -v.
    yr, zr = y - p.pitch_axis_v, z1 - p.pitch_axis_z
    y2 = yr * cp - zr * sp + p.pitch_axis_v
    z2 = yr * sp + zr * cp + p.pitch_axis_z
    s2 = big_l / (big_l - z2)
    du = (x1 * s2 - u) * model.weight
    dv = (y2 * s2 - v) * model.weight
    ux, uy = model.axis_u
    # Face frame -> image pixels (v axis is u rotated by +90 degrees).
    dx = (du * ux - dv * uy) * model.iod
    dy = (du * uy + dv * ux) * model.iod
    return np.stack([dx, dy], axis=-1).astype(np.float32)


def _invert_and_remap(image: np.ndarray, disp: np.ndarray, iterations: int) -> np.ndarray:
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = xs.copy(), ys.copy()
    for _ in range(iterations):
        d = cv2.remap(disp, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sx, sy = xs - d[..., 0], ys - d[..., 1]
    return cv2.remap(image, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def posed_image(portrait: HeadModel, pose: str, strength: float | None = None) -> np.ndarray:
    """The portrait's head turned to ``pose`` by ``strength`` degrees (default per pose:
    :data:`DEFAULT_STRENGTH`), as a BGR array of the same size. ``center`` is the
    portrait itself."""
    yaw, pitch = _turn_angles(pose, strength)
    if yaw == 0.0 and pitch == 0.0:
        return portrait.image.copy()
    disp = displacement(portrait, yaw, pitch)
    return _invert_and_remap(portrait.image, disp, portrait.params.iterations)


def posed_frame(portrait: HeadModel | bytes, pose: str, strength: float | None = None,
                *, engine: FaceEngine | None = None) -> bytes:
    """JPEG bytes of :func:`posed_image` (bytes are prepared first; prepare once with
    :func:`prepare_portrait` when making several frames)."""
    model = portrait if isinstance(portrait, HeadModel) else prepare_portrait(portrait, engine)
    return encode_jpeg(posed_image(model, pose, strength), quality=95)


def challenge_poses(poses: Sequence[str], *, frontal_between: bool = False) -> list[str]:
    """The poses the camera shows for a challenge: frontal first, then each requested
    pose, optionally passing through frontal between two turns."""
    out = ["center"]
    for pose in poses:
        if pose not in _POSE_AXES:
            raise CameraError(f"unknown pose {pose!r} in challenge")
        if frontal_between and out[-1] != "center" and pose != "center":
            out.append("center")
        out.append(pose)
    return out


def challenge_frames(portrait: HeadModel | bytes, challenge: Challenge,
                     start_time: float | None = None, *, step_s: float = 0.5,
                     frontal_between: bool = False,
                     strength: float | dict[str, float] | None = None,
                     engine: FaceEngine | None = None) -> list[Frame]:
    """Frames for :meth:`FaceEngine.check_liveness`: frontal, then each pose of
    ``challenge`` in order, timestamps from ``start_time`` (default: 0.5 s after the
    challenge was issued) every ``step_s`` seconds."""
    model = portrait if isinstance(portrait, HeadModel) else prepare_portrait(portrait, engine)
    t0 = challenge.issued_at + 0.5 if start_time is None else start_time
    frames: list[Frame] = []
    for i, pose in enumerate(challenge_poses(challenge.poses, frontal_between=frontal_between)):
        deg = strength.get(pose) if isinstance(strength, dict) else strength
        image = encode_jpeg(posed_image(model, pose, deg), quality=95)
        frames.append(Frame(image, t0 + i * step_s))
    return frames
