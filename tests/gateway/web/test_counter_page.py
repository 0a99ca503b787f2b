"""The counter page end to end in a real browser: headless Chromium (Debian's), a fake
camera playing a simulated patient (gateway.demo: a public-domain portrait whose head is
warped through the liveness poses), the real gateway (uvicorn) over a MIP devnet with the
real face engine and contract.

How the fake camera knows the poses: the test settings fix `liveness_seed`, so the face
service's pose generator is deterministic; the test copies its state and draws the next
challenge's poses the same way (`face_engine.liveness.new_challenge`) before it launches
Chromium with a video of those poses. The video follows the page's capture schedule
(frontal for `frontalS`, each pose `poseS`), which the page exposes as
`window.MIP_COUNTER_TIMING`; the test checks the two agree. Chromium starts the file when
the page opens the camera, and the page starts its timeline at the first frame, so the
two stay in step (measured slack: the sequence still passes with the video 0.7 s early or
0.8 s late).

Enrolled patient (astronaut) -> VERIFIED, Dispense records a fill on the ledger; someone
else (grace_hopper) in front of the camera -> REFUSED with the face-mismatch reason.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browser_kit import chromium_missing_reason, context_options, launch_options, run_async, serving
from playwright.sync_api import Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL, PHARMACY, content_of, kyc_issuers  # noqa: E402
from mip_testkit import (  # noqa: E402
    Account,
    MipClients,
    MipNetwork,
    new_holder,
    new_id,
    open_account,
    running_mip_devnet,
)

from face_engine.engine import FaceEngine, load_default_engine  # noqa: E402
from face_engine.liveness import new_challenge  # noqa: E402
from gateway.demo.camera import prepare_portrait  # noqa: E402
from gateway.demo.faces import demo_portrait  # noqa: E402
from gateway.demo.video import write_challenge_video  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.faces import LiveFace, face_service  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import AppState, build_state  # noqa: E402

SCREENSHOTS = Path("/tmp/counter-page-screenshots")
TABLET = (768, 1024)
# The page's capture schedule (counter.js TIMING); the fake camera's video follows it.
FRONTAL_S = 2.0
POSE_S = 2.0
CAMERA_POSES = {"left", "right", "center"}
PROMPTS = {"left": "Turn your head to your left", "right": "Turn your head to your right"}


@dataclass
class Counter:
    url: str
    state: AppState
    network: MipNetwork
    engine: FaceEngine

    def token(self, org: str, role: str) -> str:
        return self.state.staff.issue(org, role, role)


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Counter]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("web-devnet")) as network:
        ensure_service_identities(network.connection)
        engine = load_default_engine()
        settings = make_settings(tmp_path_factory.mktemp("web-gateway"), network.connection)
        state = build_state(settings)
        state._face = engine
        app = create_app(state=state)
        app.state.mip = state
        face_service(state)  # built now, so its seeded pose generator can be previewed
        with serving(app, cleanup=state.close) as server:
            yield Counter(server.url, state, network, engine)


def next_poses(counter: Counter) -> tuple[str, ...]:
    """The poses of the next challenge the gateway will issue: a copy of the face
    service's seeded generator, drawn exactly as the service draws."""
    probe = random.Random()  # replays the seeded pose generator of the test settings
    probe.setstate(face_service(counter.state)._rng.getstate())
    return new_challenge(probe).poses


def poses_for_the_simulated_camera(counter: Counter) -> tuple[str, ...]:
    """The next challenge's poses, after skipping (by issuing unused challenges) those
    with `up` or `down`: the simulated camera's nods of one portrait or the other do not
    pass the liveness check (tests/gateway/services/test_pickup.py fixes left/right for
    the same reason), and this test is about the page, not the warp."""
    faces = face_service(counter.state)
    for _ in range(50):
        poses = next_poses(counter)
        if set(poses) <= CAMERA_POSES:
            return poses
        faces.issue_challenge("web-test-skip", "none")
    raise AssertionError("the seeded generator gave no left/right-only challenge")


async def _enrol_patient(counter: Counter) -> Account:
    """A level-2 holder with a hospital account, the astronaut's face as the account's
    protected reference at the hospital, and a grant of prescriptions to the pharmacy."""
    mip = MipClients(counter.network)
    try:
        holder = await new_holder(mip, kyc_issuers(), HOSPITAL)
        # The reference first: the account is opened with its commitment (as the gateway's
        # own account opening does), which the pickup checks the reference against.
        pseudonym = secrets.token_hex(32)
        live = LiveFace(counter.engine.embed(demo_portrait("astronaut")))
        reference = face_service(counter.state).enrol_reference(live, pseudonym, HOSPITAL)
        account = await open_account(mip, holder, HOSPITAL, carrier=(HOSPITAL, "gateway"),
                                     pseudonym=pseudonym, commitment=reference.commitment)
    finally:
        await mip.close()
    body = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
            "scope": "medical.prescription", "expires": int(time.time()) + 3600,
            "credential_type": "prescription"}
    admin = {"Authorization": f"Bearer {counter.token(PHARMACY, 'admin')}"}
    async with httpx.AsyncClient(base_url=counter.url, timeout=30) as http:
        # The pharmacy registers this gateway's attestation key once (contract checks it).
        r = await http.post("/api/v1/admin/counter-key", headers=admin)
        assert r.status_code == 200, r.text
        r = await http.post("/api/v1/grants",
                            json={"signed_request": account.sign("grant.create", body)})
        assert r.status_code == 201, r.text
    return account


async def _prescribe(counter: Counter, account: Account) -> str:
    doctor = {"Authorization": f"Bearer {counter.token(HOSPITAL, 'doctor')}"}
    async with httpx.AsyncClient(base_url=counter.url, timeout=30) as http:
        r = await http.post("/api/v1/credentials", headers=doctor, json={
            "type": "prescription", "subject_account": account.pseudonym,
            "content": content_of("prescription", drug="amoxicillin", strength="500 mg",
                                  quantity=21, refills=1)})
        assert r.status_code == 201, r.text
        return str(r.json()["credential_id"])


@pytest.fixture(scope="module")
def patient(counter: Counter) -> Account:
    return run_async(_enrol_patient(counter))


@pytest.fixture(scope="module")
def browsers(counter: Counter, patient: Account, playwright: Playwright) -> Playwright:
    """Playwright, started only after the devnet and the patient exist: its sync API keeps
    an event loop on this thread, where the devnet kit's own asyncio.run could not run."""
    return playwright


def camera_video(counter: Counter, portrait: str, poses: tuple[str, ...], path: Path) -> Path:
    model = prepare_portrait(demo_portrait(portrait), counter.engine)
    write_challenge_video(path, model, poses, fps=10, frontal_s=FRONTAL_S, pose_s=POSE_S)
    return path


def run_pickup(page: Page, counter: Counter, prescription_id: str,
               poses: tuple[str, ...]) -> None:
    page.goto(f"{counter.url}/counter/")
    timing = page.evaluate("window.MIP_COUNTER_TIMING")
    assert (timing["frontalS"], timing["poseS"]) == (FRONTAL_S, POSE_S), (
        "the fake camera's schedule must follow the page's capture schedule")
    page.get_by_label("Pharmacist token").fill(counter.token(PHARMACY, "pharmacist"))
    page.get_by_role("button", name="Sign in").click()
    rx = page.get_by_label("Prescription ID (type or scan)")
    expect(rx).to_be_focused()
    page.keyboard.type(prescription_id)  # as a barcode scanner does
    page.keyboard.press("Enter")
    expect(page.locator("#rx-drug")).to_have_text("amoxicillin", timeout=30_000)
    expect(page.locator("#rx-strength")).to_have_text("500 mg")
    # The page asks for what the gateway issued: frontal, then the predicted poses.
    expect(page.locator("#steps li")).to_have_count(1 + len(poses))
    expect(page.locator("body")).to_have_attribute("data-state", "capturing")
    expect(page.locator("#prompt")).to_have_text(PROMPTS[poses[0]], timeout=10_000)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_enrolled_patient_is_verified_and_dispensed(browsers: Playwright, counter: Counter,
                                                    patient: Account, tmp_path: Path) -> None:
    prescription_id = run_async(_prescribe(counter, patient))
    poses = poses_for_the_simulated_camera(counter)
    video = camera_video(counter, "astronaut", poses, tmp_path / "astronaut.y4m")
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        run_pickup(page, counter, prescription_id, poses)
        screenshot(page, "real-capturing.png")
        expect(page.locator("#result-word")).to_have_text("VERIFIED", timeout=60_000)
        expect(page.locator("#result")).to_have_class("result verified")
        screenshot(page, "real-verified.png")
        dispense = page.get_by_role("button", name="Dispense one fill")
        expect(dispense).to_be_enabled()
        dispense.click()
        expect(page.locator("#dispense-status")).to_have_text("Dispensed: fill 1 of 2.",
                                                              timeout=30_000)
        expect(dispense).to_be_disabled()
        screenshot(page, "real-dispensed.png")
    finally:
        browser.close()


def test_someone_else_is_refused(browsers: Playwright, counter: Counter, patient: Account,
                                 tmp_path: Path) -> None:
    prescription_id = run_async(_prescribe(counter, patient))
    poses = poses_for_the_simulated_camera(counter)
    video = camera_video(counter, "grace_hopper", poses, tmp_path / "grace_hopper.y4m")
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        run_pickup(page, counter, prescription_id, poses)
        expect(page.locator("#result-word")).to_have_text("REFUSED", timeout=60_000)
        # A live face (the liveness check passed) that is not the patient's.
        expect(page.locator("#result")).to_have_attribute("data-reason", "face_mismatch")
        expect(page.locator("#result-reason")).to_have_text(
            "The face does not match the patient enrolled for this prescription.")
        expect(page.get_by_role("button", name="Dispense one fill")).to_be_disabled()
        screenshot(page, "real-refused.png")
    finally:
        browser.close()
