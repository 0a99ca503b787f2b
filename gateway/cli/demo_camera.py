"""The demo's camera: answers a liveness challenge with frames synthesised from a
public-domain portrait (gateway/demo/camera.py), encoded once per (portrait, pose)."""

from __future__ import annotations

import base64
from typing import Any

from face_engine.engine import FaceEngine
from gateway.demo.camera import HeadModel, challenge_poses, posed_frame, prepare_portrait
from gateway.demo.faces import demo_portrait


class SimulatedCamera:
    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine
        self._models: dict[str, HeadModel] = {}
        self._frames: dict[tuple[str, str], str] = {}
        self._portraits: dict[str, bytes] = {}

    def add_portrait(self, name: str, image: bytes) -> None:
        """Another frontal portrait to animate (the benchmark enrols many distinct faces)."""
        self._portraits[name] = image

    def frame_b64(self, who: str, pose: str) -> str:
        key = (who, pose)
        if key not in self._frames:
            if who not in self._models:
                image = self._portraits.get(who) or demo_portrait(who)
                self._models[who] = prepare_portrait(image, self.engine)
            self._frames[key] = base64.b64encode(posed_frame(self._models[who], pose)).decode()
        return self._frames[key]

    def prepare(self, who: str, poses: tuple[str, ...] = ("center", "left", "right")) -> None:
        """Encode `who`'s frames ahead of time (the benchmark times only the HTTP calls)."""
        for pose in poses:
            self.frame_b64(who, pose)

    def answer(self, challenge: dict[str, Any], who: str) -> dict[str, Any]:
        """The frames body for `challenge` ({challenge_id, poses}): frontal, then each pose
        (no capture times: the gateway times frames by their arrival)."""
        poses = challenge_poses(challenge["poses"])
        return {"challenge_id": challenge["challenge_id"],
                "frames": [{"image": self.frame_b64(who, pose)} for pose in poses]}
