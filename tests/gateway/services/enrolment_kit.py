"""Test kit for enrolment, desk unlock, vouching, accounts, profile and recovery tests.

`hw` is the gateway over the session's devnet with its OWN data dir (so the 1:N duplicate
index holds only the people these tests enrol), ONE data dir for the whole session: every
module importing the fixtures shares it, so the KYC issuers (seconds of CL key generation
each) are made once. (A session-scoped fixture defined in this kit and imported into several
modules is instantiated once per module by pytest, so the directory is cached here.)

Faces: "bush" and "stoiber" are real LFW photos of one person frontal, turned left and
turned right (as tests/face_engine/test_liveness.py); "astronaut" and "grace_hopper" are the
public-domain demo portraits turned by the simulated camera (gateway/demo/camera.py). A
challenge's random poses are replaced by ("left", "right") in the face_challenges table
(test-only), so the three frames answer it.

`ensure_enrolled(hw, who)` enrols a person once per session (cached: a second enrolment of
the same face would be a duplicate) with fixed guardians (`GUARDIANS`), and returns the
passport id and current password (a recovery test that changes it updates the cache).
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from gateway_testkit import GatewayClient, make_settings
from mip_testkit import MipNetwork

from face_engine.engine import FaceEngine
from gateway.main import create_app
from gateway.services.state import build_state

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
LFW = SHARED / "lfw-dev" / "images"
# (name, frontal, turned left, turned right)
PEOPLE = {"bush": ("George_HW_Bush", 7, 8, 1), "stoiber": ("Edmund_Stoiber", 4, 5, 7)}
PORTRAITS = ("astronaut", "grace_hopper")  # simulated camera (gateway/demo)
API = "/api/v1"
PASSWORDS = {"bush": "canary-Pa55word-bush!", "stoiber": "canary-Pa55word-stoiber!",
             "astronaut": "canary-Pa55word-astro!", "grace_hopper": "canary-Pa55word-grace!"}
# Who each person names as guardians at enrolment (and the threshold k).
GUARDIANS: dict[str, tuple[tuple[str, ...], int]] = {
    "bush": ((), 0), "stoiber": (("bush",), 1), "astronaut": ((), 0),
    "grace_hopper": (("bush", "stoiber"), 1)}


def photo(name: str, index: int) -> bytes:
    path = LFW / name / f"{name}_{index:04d}.jpg"
    if not path.is_file():
        pytest.skip("LFW dev images are not in ../shared/data/lfw-dev")
    return path.read_bytes()


_PORTRAIT_FRAMES: dict[str, list[bytes]] = {}


def frames_of(who: str, engine: FaceEngine | None = None) -> list[bytes]:
    """Frontal, turned left, turned right of `who` (`engine` prepares a demo portrait)."""
    if who in PORTRAITS:
        if who not in _PORTRAIT_FRAMES:
            from gateway.demo.camera import posed_frame, prepare_portrait
            from gateway.demo.faces import demo_portrait

            model = prepare_portrait(demo_portrait(who), engine)
            _PORTRAIT_FRAMES[who] = [posed_frame(model, pose)
                                     for pose in ("center", "left", "right")]
        return list(_PORTRAIT_FRAMES[who])
    name, centre, left, right = PEOPLE[who]
    return [photo(name, centre), photo(name, left), photo(name, right)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def answer(challenge_id: str, images: list[bytes]) -> dict[str, Any]:
    """A face answer; frames carry no time (the gateway times them by arrival)."""
    return {"challenge_id": challenge_id, "frames": [{"image": b64(img)} for img in images]}


def fix_poses(gw: GatewayClient, challenge_id: str) -> None:
    """Test-only: the challenge asks left then right (what the LFW photos show)."""
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_challenges SET poses = '[\"left\", \"right\"]' "
                     "WHERE challenge_id = ?", (challenge_id,))


def collage(a: bytes, b: bytes) -> bytes:
    """Two portraits side by side in one frame (two faces)."""
    ia = cv2.imdecode(np.frombuffer(a, np.uint8), cv2.IMREAD_COLOR)
    ib = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)
    ib = cv2.resize(ib, (ia.shape[1], ia.shape[0]))
    ok, out = cv2.imencode(".jpg", np.hstack([ia, ib]))
    assert ok
    return bytes(out.tobytes())


_DATA_DIR: list[Path] = []


@pytest.fixture(scope="session")
def hw_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not _DATA_DIR:
        _DATA_DIR.append(tmp_path_factory.mktemp("hw-data"))
    return _DATA_DIR[0]


@pytest.fixture
async def hw(gw_network: MipNetwork, hw_data_dir: Path,
             face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    async with serving(hw_data_dir, gw_network, face_engine) as client:
        yield client


@asynccontextmanager
async def serving(data_dir: Path, network: MipNetwork,
                  face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    """The app over `network` with its state in `data_dir`, on the current event loop."""
    settings = make_settings(data_dir, network.connection)
    state = build_state(settings)
    state._face = face_engine
    app = create_app(state=state)
    app.state.mip = state
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 timeout=120) as http:
        try:
            yield GatewayClient(state, http)
        finally:
            await state.close()


REGISTRAR = ("HospitalMSP", "registrar")
ENROLMENT_SESSION = "X-MIP-Enrolment-Session"
CURRENT = f"{API}/enrolments/current"  # the session: its header, never its URL


def in_session(headers: dict[str, str], session_id: str) -> dict[str, str]:
    """A staff member's headers naming an enrolment session (never in the URL)."""
    return {**headers, ENROLMENT_SESSION: session_id}


async def open_session(gw: GatewayClient, staff: tuple[str, str] = REGISTRAR) -> dict[str, Any]:
    r = await gw.http.post(f"{API}/enrolments", headers=gw.staff(*staff))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    fix_poses(gw, body["challenge"]["challenge_id"])
    return body


async def enrol(gw: GatewayClient, who: str, *, guardians: list[str] | None = None,
                threshold: int = 0, staff: tuple[str, str] = REGISTRAR) -> dict[str, Any]:
    """A full enrolment through the API; returns the finish response (+ "seconds")."""
    started = time.perf_counter()
    headers = gw.staff(*staff)
    session = await open_session(gw, staff)
    sid = session["session_id"]
    r = await gw.http.post(f"{CURRENT}/frames", headers=in_session(headers, sid),
                           json=answer(session["challenge"]["challenge_id"],
                                       frames_of(who, gw.state.face_engine())))
    assert r.status_code == 204, r.text
    r = await gw.http.put(f"{CURRENT}/password", headers=in_session(headers, sid),
                          json={"password": PASSWORDS[who]})
    assert r.status_code == 204, r.text
    if guardians:
        r = await gw.http.put(f"{CURRENT}/guardians", headers=in_session(headers, sid),
                              json={"guardians": guardians, "threshold": threshold})
        assert r.status_code == 204, r.text
    r = await gw.http.post(f"{CURRENT}/finish", headers=in_session(headers, sid))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    out["session_id"] = sid
    out["seconds"] = time.perf_counter() - started
    return out


@dataclass
class Enrolled:
    who: str
    passport_id: str
    password: str
    finish: dict[str, Any]


_ENROLLED: dict[tuple[str, str], Enrolled] = {}


async def ensure_enrolled(gw: GatewayClient, who: str) -> Enrolled:
    """`who` enrolled at HospitalMSP once per data dir, with the guardians of `GUARDIANS`
    (enrolled first)."""
    key = (str(gw.state.settings.data_dir), who)
    if key not in _ENROLLED:
        names, threshold = GUARDIANS[who]
        guardians = [(await ensure_enrolled(gw, name)).passport_id for name in names]
        out = await enrol(gw, who, guardians=guardians, threshold=threshold)
        _ENROLLED[key] = Enrolled(who, out["passport_id"], PASSWORDS[who], out)
    return _ENROLLED[key]


async def unlock(gw: GatewayClient, who: str, passport_id: str, *, password: str | None = None,
                 staff: tuple[str, str] = ("HospitalMSP", "doctor"),
                 images: list[bytes] | None = None) -> httpx.Response:
    headers = gw.staff(*staff)
    r = await gw.http.post(f"{API}/holders/sessions", headers=headers)
    assert r.status_code == 201, r.text
    started = r.json()
    fix_poses(gw, started["challenge"]["challenge_id"])
    body = answer(started["challenge"]["challenge_id"],
                  images or frames_of(who, gw.state.face_engine()))
    body["passport_id"] = passport_id
    if password is not None:
        body["password"] = password
    return await gw.http.post(f"{API}/holders/sessions/unlock", json=body, headers={
        **headers, "X-MIP-Holder-Session": started["session_id"]})


def session_headers(unlocked: httpx.Response) -> dict[str, str]:
    """Headers that use the session of an unlock answer: its id and the staff token the
    unlock was sent with (a session answers to the token that started it only)."""
    assert unlocked.status_code == 200, unlocked.text
    return {"Authorization": unlocked.request.headers["Authorization"],
            "X-MIP-Holder-Session": unlocked.json()["session_id"]}


async def holder_headers(gw: GatewayClient, enrolled: Enrolled) -> dict[str, str]:
    """Headers of a level-2 holder session of `enrolled` (at HospitalMSP's doctor's desk)."""
    r = await unlock(gw, enrolled.who, enrolled.passport_id, password=enrolled.password)
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 2
    return session_headers(r)
