"""A stand-in for the gateway's pickup endpoints (same paths and bodies), serving the
real counter page: it proves the page's side of the protocol (token header, frame count,
no client times, uploads in capture order, JPEG payloads) and drives the error displays
the real gateway only reaches after slow setups (e.g. a prescription locked after five failures).

It accepts one token, records every call, and answers from a script the test sets.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gateway.web import mount_web

TOKEN = "counter-test-token-0123456789"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"code": code, "message": message}})


@dataclass
class FramesCall:
    """One face check as the page sent it: a batch, or streamed frames closed by a verdict."""

    pickup_id: str
    challenge_id: str
    images: list[bytes]
    streamed: bool = False
    # streamed only: when each frame arrived, and when the verdict was asked (monotonic s)
    arrivals: list[float] = field(default_factory=list)
    verdict_at: float = 0.0


@dataclass
class StreamedFrame:
    challenge_id: str
    image: bytes
    arrived: float


@dataclass
class FakePharmacy:
    poses: tuple[str, ...] = ("left", "right")
    expires_in_s: float = 14.0
    # prescription id -> (status, code) refusal at pickup creation
    pickup_errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    # what the frames call answers: "verified", or a refusal reason code
    frames_answer: str = "verified"
    fills_allowed: int = 3
    fills_used: int = 0
    pickups: dict[str, str] = field(default_factory=dict)  # pickup id -> challenge id
    frames_calls: list[FramesCall] = field(default_factory=list)
    streams: dict[str, dict[int, StreamedFrame]] = field(default_factory=dict)
    auth_failures: int = 0

    def answer(self) -> dict[str, str]:
        if self.frames_answer == "verified":
            return {"result": "verified"}
        return {"result": "refused", "reason": self.frames_answer}

    def app(self) -> FastAPI:
        app = FastAPI()

        def authorised(request: Request) -> bool:
            ok = request.headers.get("authorization") == f"Bearer {TOKEN}"
            if not ok:
                self.auth_failures += 1
            return ok

        def refusal(request: Request, pickup_id: str) -> JSONResponse | None:
            """The answer to a call without the token or about an unknown pickup."""
            if not authorised(request):
                return _error(401, "unauthenticated", "unknown staff token")
            if pickup_id not in self.pickups:
                return _error(404, "not_found", "no such pickup")
            return None

        @app.post("/api/v1/pharmacy/pickups")
        async def create(request: Request) -> Any:
            if not authorised(request):
                return _error(401, "unauthenticated", "unknown staff token")
            body = await request.json()
            rx = str(body.get("prescription_id", ""))
            if rx in self.pickup_errors:
                status, code = self.pickup_errors[rx]
                return _error(status, code, "scripted refusal")
            pickup_id, challenge_id = secrets.token_hex(8), secrets.token_hex(16)
            self.pickups[pickup_id] = challenge_id
            return JSONResponse(status_code=201, content={
                "pickup_id": pickup_id,
                "prescription": {"drug": "Amoxicillin", "strength": "500 mg", "quantity": 21},
                "challenge": {"challenge_id": challenge_id, "poses": list(self.poses),
                              "expires_in_s": self.expires_in_s}})

        @app.post("/api/v1/pharmacy/pickups/{pickup_id}/frames")
        async def frames(pickup_id: str, request: Request) -> Any:
            if (refused := refusal(request, pickup_id)) is not None:
                return refused
            body = await request.json()
            try:
                # Like the gateway: a frame is {image} only (no client time).
                if any(set(f) != {"image"} for f in body["frames"]):
                    raise ValueError("unexpected frame fields")
                images = [base64.b64decode(f["image"], validate=True) for f in body["frames"]]
            except (KeyError, TypeError, ValueError, binascii.Error):
                return _error(422, "invalid_request", "malformed frames")
            self.frames_calls.append(FramesCall(pickup_id, str(body.get("challenge_id")),
                                                images))
            return self.answer()

        @app.put("/api/v1/pharmacy/pickups/{pickup_id}/frames/{index}")
        async def frame(pickup_id: str, index: int, request: Request) -> Any:
            if (refused := refusal(request, pickup_id)) is not None:
                return refused
            body = await request.json()
            try:
                if set(body) != {"challenge_id", "image"}:
                    raise ValueError("unexpected frame fields")
                streamed = StreamedFrame(str(body["challenge_id"]),
                                         base64.b64decode(body["image"], validate=True),
                                         time.monotonic())
            except (KeyError, TypeError, ValueError, binascii.Error):
                return _error(422, "invalid_request", "malformed frame")
            stream = self.streams.setdefault(pickup_id, {})
            stream[index] = streamed
            return JSONResponse(status_code=202, content={"frames_received": len(stream)})

        @app.post("/api/v1/pharmacy/pickups/{pickup_id}/verdict")
        async def verdict(pickup_id: str, request: Request) -> Any:
            if (refused := refusal(request, pickup_id)) is not None:
                return refused
            stream = self.streams.pop(pickup_id, {})
            body = await request.json()
            count = int(body.get("frames", 0))
            if sorted(stream) != list(range(count)):
                return {"result": "refused", "reason": "liveness_failed"}
            frames = [stream[i] for i in range(count)]
            self.frames_calls.append(FramesCall(
                pickup_id, str(body.get("challenge_id")), [f.image for f in frames],
                streamed=True,
                arrivals=[f.arrived for f in frames], verdict_at=time.monotonic()))
            if {f.challenge_id for f in frames} != {body.get("challenge_id")}:
                return _error(404, "challenge_not_found", "frames of another challenge")
            return self.answer()

        @app.post("/api/v1/pharmacy/pickups/{pickup_id}/dispense")
        async def dispense(pickup_id: str, request: Request) -> Any:
            if (refused := refusal(request, pickup_id)) is not None:
                return refused
            if self.fills_used >= self.fills_allowed:
                return _error(409, "precondition_failed", "no fills left")
            self.fills_used += 1
            return {"dispensed": True, "fills_used": self.fills_used,
                    "fills_allowed": self.fills_allowed}

        mount_web(app)
        return app
