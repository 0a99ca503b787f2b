"""Active liveness: the user turns their head in a random order we ask for.

Protocol. The server issues a :class:`Challenge` (``new_challenge``): a nonce, 2-3 poses
drawn from {left, right, up, down, center} in random order (no pose twice in a row, never
starting with center), ``issued_at`` and a ``deadline``. The client films the user and
sends frames starting from a neutral, frontal pose; each :class:`Frame` carries a timestamp on
the challenge's clock, which the caller must not take from the client: the gateway uses the
frame's arrival time (gateway/services/face_frames.py), so the timing checks below judge real
arrivals. Frames that arrive together (one request) share one time, and then only the
deadline is checked, not the pace of the turns.
:func:`check` accepts only if all of the following hold:

(a) *Quality*: each frame has exactly one face passing the size/sharpness/exposure gate
    (pose is not gated here, turning is the point).
(b) *Sequence and time*: the first frame is frontal (|yaw|, |pitch| below
    ``CENTER_MAX_DEG``); later frames are labelled by their pose *relative to that first
    frame* (which absorbs each person's few-degree offset of the landmark-based
    estimate): ``left``/``right`` at a relative yaw of at least ``TURN_YAW_DEG``,
    ``up``/``down`` at a relative pitch of at least ``TURN_PITCH_DEG``, ``center`` within
    ``CENTER_MAX_DEG``, otherwise in transit (ignored). After collapsing repeats, the labels
    must be ``center`` followed by the challenge poses in order; only ``center`` may
    appear between them (people pass through it when going from left to right). All
    timestamps must be non-decreasing, not before ``issued_at`` (minus a clock skew
    allowance) and not after ``deadline``; the check itself must run before
    ``deadline + SUBMIT_GRACE_S``.
(c) *Identity*: every frame's single-crop embedding has cosine >= the single-crop
    ``far_1e-3`` threshold (``calibration_single_crop.json``) to the first frame's, so the
    person cannot be swapped mid-sequence.
(d) *Not a flat picture*: a printed or on-screen photo that is moved, tilted or bent
    gently is (close to) a plane, and any view of a plane is related to any other by a
    homography. Its 5 landmarks therefore move by one homography. We fit the homography
    exactly on the 4 landmarks that lie (nearly) in one plane on a real face, the eyes and
    mouth corners, between the neutral frame and each turn frame, map the neutral frame's
    nose tip through it and measure how far the observed nose tip is from that prediction,
    divided by the eye distance: the *parallax*. For a picture it is only landmark noise;
    for a real head the nose tip stands ~0.5 eye-distances in front of that plane and
    turning by an angle ``a`` moves it off the plane's prediction by ~0.5 sin(a) eye
    distances (0.13 at 15 degrees, 0.17 at 20). Each requested turn must reach a parallax
    of at least ``MIN_PARALLAX`` in at least one of its frames. A sequence whose landmarks
    do not move at all (a still photo resent) is refused as ``no_motion``.

Threshold evidence (LFW dev images, YuNet landmarks, measured on the dev machine):

* Real 3-D turns: 578 pairs of one person's photos, a frontal one and one turned by
  >= 15 degrees of relative yaw: nose parallax min 0.125, 1st percentile 0.132, median
  0.205 (pairs turned >= 20 degrees: min 0.171).
* Flat pictures: 200 frontal LFW photos warped by the homography of a plane rotated
  about its vertical axis, landmarks re-detected by YuNet: parallax median / 95th pct
  0.018 / 0.058 at 15 degrees of tilt, 0.042 / 0.094 at 30, 0.054 / 0.149 at 45
  (camera focal length 2x the picture width).
* ``MIN_PARALLAX = 0.11`` keeps every real turn observed (margin 0.015 below the
  minimum) and refuses >95 % of flat pictures tilted up to 30 degrees.

Measured weakness, stated plainly: YuNet's landmarks on a flat picture are not an exact
projection of the printed face; the network "sees" a turned head in a strongly
foreshortened photo and places the nose accordingly. A picture tilted by 45-60 degrees
close to the camera therefore shows both an apparent yaw of 15-25 degrees *and* a
parallax of 0.15-0.45, like a real head: the 5-point test stops flat pictures moved,
slid, rotated in plane or tilted moderately, not a strongly tilted one held close.

What this does NOT stop: a replayed video of the person performing this very challenge
(the nonce and deadline make that a real-time attack, but a live deepfake or a puppeted
3-D avatar driven in real time passes); a 3-D mask or a realistic head model moved by the
attacker; a photo cut out and bent strongly around the nose (no longer planar); injection
of frames that bypass the camera. There is no passive (texture/depth) liveness model in
this project. The server must also keep each challenge single-use (store the nonce) and
bind the frames to the session; this module checks the frames, not the transport.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from face_engine.dedup.identification import template
from face_engine.errors import FaceError, LivenessFailed
from face_engine.quality import DEFAULT_THRESHOLDS, Pose, QualityReport, assess
from face_engine.verify import cosine, single_crop_operating_point

if TYPE_CHECKING:
    from face_engine.engine import FaceEngine

POSES = ("center", "left", "right", "up", "down")
TURN_POSES = ("left", "right", "up", "down")

# Pose labels, degrees of the landmark-based estimate (quality.estimate_pose).
CENTER_MAX_DEG = 10.0
TURN_YAW_DEG = 15.0
TURN_PITCH_DEG = 12.0
# Minimum nose parallax (fraction of the eye distance) at a turn; see module docstring.
MIN_PARALLAX = 0.11
# Landmarks moving less than this (fraction of the eye distance) across all frames = still.
MIN_MOTION = 0.02

BASE_TIME_S = 6.0
PER_POSE_TIME_S = 4.0
CLOCK_SKEW_S = 2.0
SUBMIT_GRACE_S = 10.0
MAX_FRAMES = 40

# Frames need a usable face; the pose limits are off because turning is requested.
LIVENESS_QUALITY = replace(DEFAULT_THRESHOLDS, check_pose=False)


@dataclass(frozen=True)
class Challenge:
    nonce: str
    poses: tuple[str, ...]
    issued_at: float
    deadline: float


@dataclass(frozen=True)
class Frame:
    image: bytes = field(repr=False)
    timestamp: float


@dataclass(frozen=True)
class LivenessResult:
    passed: bool
    reason: str | None  # None when passed; else a stable code (see _fail calls)
    message: str
    observed: tuple[str, ...] = ()  # collapsed pose labels that were seen
    details: dict[str, float] = field(default_factory=dict)
    # For `frame_rejected`: the frame's own typed error (no face, image corrupt, ...).
    cause: FaceError | None = field(default=None, repr=False)

    def raise_for_failure(self) -> None:
        if not self.passed:
            raise LivenessFailed(self.message, reason=self.reason or "unknown",
                                 cause=self.cause)


def new_challenge(rng: random.Random | None = None, *, now: float | None = None,
                  length: int | None = None) -> Challenge:
    """A fresh challenge. ``rng`` picks the poses (defaults to the OS CSPRNG); the nonce
    always comes from :mod:`secrets` so that a seeded ``rng`` cannot make it guessable."""
    r = rng if rng is not None else random.SystemRandom()
    n = length if length is not None else r.choice((2, 3))
    if not 2 <= n <= 3:
        raise ValueError("a challenge has 2 or 3 poses")
    poses: list[str] = [r.choice(TURN_POSES)]
    while len(poses) < n:
        poses.append(r.choice([p for p in POSES if p != poses[-1]]))
    issued = time.time() if now is None else now
    return Challenge(nonce=secrets.token_hex(16), poses=tuple(poses), issued_at=issued,
                     deadline=issued + BASE_TIME_S + PER_POSE_TIME_S * n)


def label_pose(pose: Pose, neutral: Pose) -> str | None:
    """Pose label relative to the neutral frame, or ``None`` while in transit."""
    dyaw = pose.yaw - neutral.yaw
    dpitch = pose.pitch - neutral.pitch
    if abs(dyaw) < CENTER_MAX_DEG and abs(dpitch) < CENTER_MAX_DEG:
        return "center"
    if abs(dyaw) >= TURN_YAW_DEG and abs(dyaw) >= abs(dpitch):
        return "left" if dyaw > 0 else "right"
    if abs(dpitch) >= TURN_PITCH_DEG and abs(dpitch) > abs(dyaw):
        return "up" if dpitch > 0 else "down"
    return None


def sequence_matches(observed: Sequence[str], poses: Sequence[str]) -> bool:
    """``observed`` = center, then ``poses`` in order, with only ``center`` in between."""
    if not observed or observed[0] != "center":
        return False
    want = list(poses)
    i = 0
    for label in observed[1:]:
        if i < len(want) and label == want[i]:
            i += 1
        elif label != "center":
            return False
    return i == len(want)


def nose_parallax(kps_ref: np.ndarray, kps: np.ndarray) -> float:
    """Distance of the nose tip from where the eye/mouth-corner homography puts it,
    in units of the eye distance in ``kps``. ~0 for any view of a flat picture."""
    ref = np.asarray(kps_ref, dtype=np.float32).reshape(5, 2)
    cur = np.asarray(kps, dtype=np.float32).reshape(5, 2)
    plane = [0, 1, 3, 4]
    h = cv2.getPerspectiveTransform(ref[plane], cur[plane])
    predicted = cv2.perspectiveTransform(ref[2].reshape(1, 1, 2).astype(np.float64), h)
    iod = float(np.linalg.norm(cur[1] - cur[0]))
    return float(np.linalg.norm(predicted.reshape(2) - cur[2].astype(np.float64)) / iod)


def _fail(reason: str, message: str, observed: Sequence[str] = (),
          details: dict[str, float] | None = None) -> LivenessResult:
    return LivenessResult(False, reason, message, tuple(observed), details or {})


def _collapse(labels: Sequence[str | None]) -> list[str]:
    out: list[str] = []
    for label in labels:
        if label is not None and (not out or out[-1] != label):
            out.append(label)
    return out


@dataclass(frozen=True)
class Observation:
    """What one frame showed, kept in memory for one check only (no pixels)."""

    timestamp: float
    landmarks: np.ndarray = field(repr=False)
    pose: Pose
    # Single-crop embedding: the same-person check among the frames of one capture needs
    # no flip average, and a turn frame then costs one model run instead of two.
    identity: np.ndarray = field(repr=False)
    # Flip-averaged embedding of a frontal frame (frame 0 and every later frame whose own
    # pose is frontal): the frames the multi-frame screening template averages.
    embedding: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ReferenceFrame:
    """The first (frontal) frame, as a flow needs it once liveness has passed: its
    flip-averaged embedding (for 1:1 matching, enrolment, duplicate screening) and its
    quality under the default, pose-gated thresholds."""

    embedding: np.ndarray = field(repr=False)
    quality: QualityReport


def _frontal(pose: Pose) -> bool:
    return abs(pose.yaw) < CENTER_MAX_DEG and abs(pose.pitch) < CENTER_MAX_DEG


def _submission_refusal(challenge: Challenge, frame_count: int,
                        checked_at: float) -> LivenessResult | None:
    """Checks of a whole answer that need no model: the challenge, the number of frames,
    and whether the answer came in time."""
    if challenge.poses and not all(p in POSES for p in challenge.poses):
        return _fail("bad_challenge", "challenge holds an unknown pose")
    if not 2 <= frame_count <= MAX_FRAMES:
        return _fail("frame_count", f"need 2..{MAX_FRAMES} frames, got {frame_count}")
    if checked_at > challenge.deadline + SUBMIT_GRACE_S:
        return _fail("timeout", "the challenge was not completed before its deadline")
    return None


def _cheap_refusal(challenge: Challenge, index: int, frame: Frame) -> LivenessResult | None:
    """Checks that need no model: the frame's place in the capture and its time window."""
    if not 0 <= index < MAX_FRAMES:
        return _fail("frame_count", f"at most {MAX_FRAMES} frames (index {index})")
    if frame.timestamp < challenge.issued_at - CLOCK_SKEW_S:
        return _fail("timing", "frames were captured before the challenge was issued")
    if frame.timestamp > challenge.deadline:
        return _fail("timeout", "the challenge was not completed before its deadline")
    return None


class LivenessSession:
    """One challenge's frames, analysed as they arrive, then one decision.

    A counter streams frames while the person turns, so the face models run during the
    capture and the verdict after the last frame costs only that frame. Frames carry their
    index in the capture (0 = the frontal reference); they may arrive in any order and from
    several threads. The first refusal sticks: later frames are not analysed.
    """

    def __init__(self, challenge: Challenge, engine: FaceEngine, *,
                 template: bool = True) -> None:
        self.challenge = challenge
        self._engine = engine
        # Whether the later frontal frames are embedded for the multi-frame screening
        # template (an enrolment's duplicate screen). A flow that never screens (the pharmacy
        # pickup) passes False: each such frame then costs one model run instead of two, and
        # the liveness decision is the same (it uses the single-crop embeddings).
        self._template = template
        self._lock = threading.Lock()
        self._observations: dict[int, Observation] = {}
        self._failure: LivenessResult | None = None
        self._reference: ReferenceFrame | None = None

    @property
    def frames_seen(self) -> int:
        with self._lock:
            return len(self._observations)

    @property
    def reference(self) -> ReferenceFrame | None:
        """The frontal frame's embedding and quality (once frame 0 is in)."""
        return self._reference

    def _refuse(self, result: LivenessResult) -> LivenessResult:
        with self._lock:
            if self._failure is None:
                self._failure = result
            return self._failure

    def add(self, index: int, frame: Frame) -> LivenessResult | None:
        """Analyse one frame now; returns the refusal this session stands at, if any."""
        with self._lock:
            if self._failure is not None:
                return self._failure
            duplicate = index in self._observations
        if duplicate:
            return self._refuse(_fail("frame_count", f"frame {index} was sent twice"))
        cheap = _cheap_refusal(self.challenge, index, frame)
        if cheap is not None:
            return self._refuse(cheap)
        engine = self._engine
        try:
            analysis = engine.analyze(frame.image, LIVENESS_QUALITY)
            analysis.quality.raise_for_failure()
        except FaceError as exc:
            return self._refuse(replace(
                _fail("frame_rejected", f"frame {index}: {exc.code}: {exc.message}"),
                cause=exc))
        embedding: np.ndarray | None = None
        if index == 0:
            embedding, identity = engine.embed_face_both(analysis)
            self._reference = ReferenceFrame(
                embedding, assess(analysis.landmarks, analysis.aligned, DEFAULT_THRESHOLDS))
        elif self._template and _frontal(analysis.pose):
            # one more model run (the mirror image) for a frame the template will use
            embedding, identity = engine.embed_face_both(analysis)
        else:
            identity = engine.embed_face_single_crop(analysis)
        observation = Observation(frame.timestamp, analysis.landmarks, analysis.pose, identity,
                                  embedding)
        with self._lock:
            if index in self._observations:  # the same index raced in twice
                self._failure = self._failure or _fail("frame_count",
                                                       f"frame {index} was sent twice")
            self._observations[index] = observation
            return self._failure

    def template(self) -> np.ndarray | None:
        """The multi-frame screening template: normalised mean of the flip-averaged
        embeddings of the frames within ``CENTER_MAX_DEG`` of the frontal frame 0's pose
        (frame 0 included; turned frames are left out: a profile view is another face to
        the model). None before frame 0 is in, or when the session keeps no template."""
        if not self._template:
            return None
        with self._lock:
            observations = dict(self._observations)
        first = observations.get(0)
        if first is None or first.embedding is None:
            return None
        frontal = [o.embedding for _, o in sorted(observations.items())
                   if o.embedding is not None and label_pose(o.pose, first.pose) == "center"]
        return template(frontal)

    def result(self, frame_count: int, *, now: float | None = None) -> LivenessResult:
        """The decision over frames 0..frame_count-1 (all of which must have been added)."""
        with self._lock:
            failure = self._failure
            observations = dict(self._observations)
        if failure is not None:
            return failure
        challenge = self.challenge
        refusal = _submission_refusal(challenge, frame_count,
                                      time.time() if now is None else now)
        if refusal is not None:
            return refusal
        if sorted(observations) != list(range(frame_count)):
            return _fail("frame_count", f"expected frames 0..{frame_count - 1}, got "
                         f"{len(observations)}")
        frames = [observations[i] for i in range(frame_count)]
        if any(b.timestamp < a.timestamp for a, b in itertools.pairwise(frames)):
            return _fail("timing", "frame timestamps go backwards")
        return _decide(challenge, frames)


def _decide(challenge: Challenge, frames: Sequence[Observation]) -> LivenessResult:
    """Motion, pose sequence, same person, 3-D parallax (module docstring, (b)-(d))."""
    kps = [f.landmarks for f in frames]
    iod0 = float(np.linalg.norm(kps[0][1] - kps[0][0]))
    motion = max(float(np.abs(k - kps[0]).max()) for k in kps[1:]) / iod0
    if motion < MIN_MOTION:
        return _fail("no_motion", "the face does not move between frames",
                     details={"max_motion": motion})

    # (b) pose sequence.
    neutral = frames[0].pose
    if abs(neutral.yaw) >= CENTER_MAX_DEG or abs(neutral.pitch) >= CENTER_MAX_DEG:
        return _fail("sequence", "the first frame must show a frontal face")
    labels = [label_pose(f.pose, neutral) for f in frames]
    observed = _collapse(labels)
    if not sequence_matches(observed, challenge.poses):
        return _fail("sequence", f"poses seen {observed} do not follow the challenge "
                     f"{list(challenge.poses)}", observed)

    # (c) same person throughout (single-crop embeddings, their own calibrated threshold).
    threshold = single_crop_operating_point("far_1e-3").threshold
    identity = min(cosine(frames[0].identity, f.identity) for f in frames[1:])
    if identity < threshold:
        return _fail("identity", "the face changes between frames", observed,
                     {"min_identity_cosine": identity})

    # (d) 3-D parallax at every requested turn.
    parallax_by_pose: dict[str, float] = {}
    for frame, label in zip(frames, labels, strict=True):
        if label in TURN_POSES:
            p = nose_parallax(kps[0], frame.landmarks)
            parallax_by_pose[label] = max(parallax_by_pose.get(label, 0.0), p)
    details = {"min_identity_cosine": identity, "max_motion": motion}
    details.update({f"parallax_{k}": v for k, v in parallax_by_pose.items()})
    for pose in challenge.poses:
        if pose in TURN_POSES and parallax_by_pose.get(pose, 0.0) < MIN_PARALLAX:
            return _fail("planar", f"the '{pose}' turn moves the face like a flat picture "
                         f"(parallax {parallax_by_pose.get(pose, 0.0):.3f} < {MIN_PARALLAX})",
                         observed, details)
    return LivenessResult(True, None, "live: challenge performed by one 3-D face", tuple(observed),
                          details)


def check_session(challenge: Challenge, frames: Sequence[Frame], *, engine: FaceEngine,
                  now: float | None = None, template: bool = True
                  ) -> tuple[LivenessResult, LivenessSession]:
    """:func:`check`, also returning the session (its ``reference`` holds the frontal
    frame's embedding, so a flow need not embed that frame again). ``template=False``: no
    screening template (:class:`LivenessSession`)."""
    session = LivenessSession(challenge, engine, template=template)
    # Cheap checks of the whole submission first: no model runs on a late or malformed one.
    checked_at = time.time() if now is None else now
    refusal = _submission_refusal(challenge, len(frames), checked_at)
    if refusal is not None:
        return refusal, session
    if any(b.timestamp < a.timestamp for a, b in itertools.pairwise(frames)):
        return _fail("timing", "frame timestamps go backwards"), session
    for i, frame in enumerate(frames):
        cheap = _cheap_refusal(challenge, i, frame)
        if cheap is not None:
            return cheap, session
    for i, frame in enumerate(frames):
        if session.add(i, frame) is not None:
            break
    return session.result(len(frames), now=checked_at), session


def check(challenge: Challenge, frames: Sequence[Frame], *, engine: FaceEngine,
          now: float | None = None) -> LivenessResult:
    """Decide whether ``frames`` show one live person performing ``challenge``."""
    return check_session(challenge, frames, engine=engine, now=now)[0]
