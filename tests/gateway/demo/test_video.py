from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from gateway.demo.camera import HeadModel
from gateway.demo.video import VideoError, read_y4m, write_challenge_video, write_y4m


def test_y4m_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
    # smooth frames: I420 halves chroma resolution, so noise would not survive it
    frames = [np.kron(base + i * 7, np.ones((8, 8, 1), dtype=np.uint8))[:63, :81]
              for i in range(3)]
    info = write_y4m(tmp_path / "v.y4m", frames, fps=10, hold_s=[0.2, 0.1, 0.3])
    assert (info.width, info.height, info.fps, info.frames) == (80, 62, 10, 6)
    data = (tmp_path / "v.y4m").read_bytes()
    assert data.startswith(b"YUV4MPEG2 W80 H62 F10:1 Ip A1:1 C420jpeg\nFRAME\n")
    assert len(data) == data.index(b"\n") + 1 + 6 * (6 + 80 * 62 * 3 // 2)
    back_info, back = read_y4m(tmp_path / "v.y4m")
    assert back_info == info
    expected = [0, 0, 1, 2, 2, 2]
    for got, idx in zip(back, expected, strict=True):
        ref = frames[idx][:62, :80].astype(int)
        assert np.abs(got.astype(int) - ref).mean() < 4.0


def test_y4m_bad_input(tmp_path: Path) -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(VideoError):
        write_y4m(tmp_path / "a.y4m", [], fps=10)
    with pytest.raises(VideoError):
        write_y4m(tmp_path / "a.y4m", [frame], fps=0)
    with pytest.raises(VideoError):
        write_y4m(tmp_path / "a.y4m", [frame, np.zeros((32, 32, 3), np.uint8)])
    with pytest.raises(VideoError):
        write_y4m(tmp_path / "a.y4m", [frame], hold_s=[1.0, 2.0])
    (tmp_path / "b.y4m").write_bytes(b"RIFF....")
    with pytest.raises(VideoError):
        read_y4m(tmp_path / "b.y4m")
    write_y4m(tmp_path / "c.y4m", [frame], fps=5)
    (tmp_path / "c.y4m").write_bytes((tmp_path / "c.y4m").read_bytes()[:-10])
    with pytest.raises(VideoError):
        read_y4m(tmp_path / "c.y4m")


def test_challenge_video_schedule(tmp_path: Path, heads: dict[str, HeadModel]) -> None:
    head = heads["grace_hopper"]
    schedule = write_challenge_video(tmp_path / "c.y4m", head, ("left", "up"), fps=5,
                                     frontal_s=1.0, pose_s=0.6, frontal_between=True)
    assert [s.pose for s in schedule] == ["center", "left", "center", "up", "center"]
    assert schedule[0].start_s == 0.0
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(schedule))
    info, frames = read_y4m(tmp_path / "c.y4m")
    h, w = head.image.shape[:2]
    assert (info.width, info.height) == (w - w % 2, h - h % 2)
    assert info.frames == round(schedule[-1].end_s * info.fps) == len(frames)
    # the frame shown at each entry's start is that pose (frontal = the portrait itself)
    first = frames[0].astype(int)
    assert np.abs(first - head.image[: info.height, : info.width].astype(int)).mean() < 4.0
    left = frames[round(schedule[1].start_s * info.fps)].astype(int)
    assert np.abs(left - first).mean() > 2.0
