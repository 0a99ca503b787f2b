"""Y4M (YUV4MPEG2, 4:2:0) video files for Chromium's fake webcam.

Chromium started with ``--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=<file>.y4m`` plays the file as the camera, in a loop.
Its parser (media/capture/video/file_video_capture_device.cc) reads a header of at most
200 bytes, accepts ``C420``, ``C420jpeg``, ``C420mpeg2`` or ``C420paldv``, takes the frame
rate as an *integer* division of the ``F`` fraction, and expects every frame to be
``FRAME\\n`` followed by exactly one I420 picture (Y, then U, then V planes). So we write
integer frame rates, even dimensions and no per-frame parameters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from gateway.demo.camera import HeadModel, challenge_poses, posed_image

_MAGIC = b"YUV4MPEG2"
_FRAME = b"FRAME\n"
_HEADER_RE = re.compile(rb"^YUV4MPEG2((?: [A-Z][^ \n]*)*)\n")


class VideoError(ValueError):
    """Bad frames, timing or a malformed Y4M file."""


@dataclass(frozen=True)
class ScheduleEntry:
    """One pose shown from ``start_s`` (inclusive) to ``end_s`` (exclusive) of the video."""

    pose: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Y4MInfo:
    width: int
    height: int
    fps: int
    frames: int


def _even_bgr(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise VideoError("frames must be H x W x 3 uint8 BGR arrays")
    w, h = size
    return np.ascontiguousarray(frame[:h, :w])


def write_y4m(path: Path | str, frames: Sequence[np.ndarray], *, fps: int = 10,
              hold_s: float | Sequence[float] = 1.0) -> Y4MInfo:
    """Write ``frames`` (BGR) to ``path``, each repeated for ``hold_s`` seconds (one value
    for all, or one per frame) at ``fps`` frames per second. Odd widths or heights are
    cropped by one pixel (I420 needs even sizes). Returns what was written."""
    if not frames:
        raise VideoError("no frames to write")
    if not isinstance(fps, int) or not 1 <= fps <= 60:
        raise VideoError("fps must be an integer 1..60 (Chromium reads it as an integer)")
    holds = [float(hold_s)] * len(frames) if isinstance(hold_s, int | float) else list(hold_s)
    if len(holds) != len(frames) or any(not h > 0 for h in holds):
        raise VideoError("need one positive hold time per frame")
    h0, w0 = frames[0].shape[:2]
    size = (w0 - w0 % 2, h0 - h0 % 2)
    if min(size) < 2:
        raise VideoError("frames are too small")
    header = f"YUV4MPEG2 W{size[0]} H{size[1]} F{fps}:1 Ip A1:1 C420jpeg\n".encode()
    total = 0
    with Path(path).open("wb") as out:
        out.write(header)
        for frame, hold in zip(frames, holds, strict=True):
            if frame.shape[:2] != (h0, w0):
                raise VideoError("all frames must have the same size")
            i420 = cv2.cvtColor(_even_bgr(frame, size), cv2.COLOR_BGR2YUV_I420).tobytes()
            repeats = max(1, round(hold * fps))
            for _ in range(repeats):
                out.write(_FRAME)
                out.write(i420)
            total += repeats
    return Y4MInfo(width=size[0], height=size[1], fps=fps, frames=total)


def read_y4m(path: Path | str) -> tuple[Y4MInfo, list[np.ndarray]]:
    """Parse a file written by :func:`write_y4m` back into BGR frames (tests, checks)."""
    data = Path(path).read_bytes()
    m = _HEADER_RE.match(data[:200])
    if not m:
        raise VideoError("not a YUV4MPEG2 file")
    tags = {t[:1]: t[1:] for t in m.group(1).split()}
    try:
        w, h = int(tags[b"W"]), int(tags[b"H"])
        num, den = (int(x) for x in tags[b"F"].split(b":"))
    except (KeyError, ValueError) as exc:
        raise VideoError("Y4M header lacks W, H or F") from exc
    if tags.get(b"C", b"420")[:3] != b"420":
        raise VideoError("only 4:2:0 Y4M is supported")
    picture = w * h * 3 // 2
    frames: list[np.ndarray] = []
    pos = m.end()
    while pos < len(data):
        if data[pos:pos + len(_FRAME)] != _FRAME or pos + len(_FRAME) + picture > len(data):
            raise VideoError(f"malformed frame at byte {pos}")
        pos += len(_FRAME)
        yuv = np.frombuffer(data, np.uint8, picture, pos).reshape(h * 3 // 2, w)
        frames.append(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
        pos += picture
    return Y4MInfo(width=w, height=h, fps=num // den, frames=len(frames)), frames


def write_challenge_video(path: Path | str, portrait: HeadModel, poses: Sequence[str], *,
                          fps: int = 10, frontal_s: float = 2.0, pose_s: float = 1.5,
                          frontal_between: bool = False,
                          strength: float | dict[str, float] | None = None,
                          ) -> list[ScheduleEntry]:
    """The simulated camera performing ``poses`` (e.g. ``challenge.poses``): frontal
    for ``frontal_s`` seconds, each pose held ``pose_s`` seconds, frontal again at the end
    (``frontal_s``). Returns the schedule so a page or a test can time its captures; the
    video loops in Chromium, so the schedule repeats every ``schedule[-1].end_s``."""
    if frontal_s <= 0 or pose_s <= 0:
        raise VideoError("hold times must be positive")
    sequence = challenge_poses(poses, frontal_between=frontal_between)
    sequence.append("center")
    images: list[np.ndarray] = []
    holds: list[float] = []
    schedule: list[ScheduleEntry] = []
    t = 0.0
    cache: dict[str, np.ndarray] = {}
    for i, pose in enumerate(sequence):
        if pose not in cache:
            deg = strength.get(pose) if isinstance(strength, dict) else strength
            cache[pose] = posed_image(portrait, pose, deg)
        # Round each hold to whole frames so the schedule matches the file exactly.
        hold = frontal_s if i in (0, len(sequence) - 1) else pose_s
        frames = max(1, round(hold * fps))
        images.append(cache[pose])
        holds.append(frames / fps)
        schedule.append(ScheduleEntry(pose, t, t + frames / fps))
        t += frames / fps
    write_y4m(path, images, fps=fps, hold_s=holds)
    return schedule

