"""The holder services desk (/holder-desk/) in headless Chromium against the real gateway
(uvicorn) over a MIP devnet, with the real face engine and contract, and a fake camera
playing the enrolled holder (gateway.demo's simulated camera, as test_enrol_page.py).

Keyboard only, at tablet size: the registrar signs in; the holder types their passport id
and own password and follows the prompts; the session is level 2; an account is opened at
the Hospital (listed at once); the wallet's account terms are shown as JSON; a device key
standing in for the wallet signs them (altered terms first: `request_mismatch`, shown typed)
and the signed answer opens the wallet account; the device link; the desk-opened account's
key is moved to the device (move terms, the device's signed half); *End the holder's
session* ends it at the gateway (DELETE 204). The session id travels in the
X-MIP-Holder-Session header only: no request URL carries it."""

from __future__ import annotations

import base64
import json
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from browser_kit import chromium_missing_reason, context_options, launch_options, serving
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Locator, Page, Playwright, Request, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL  # noqa: E402
from mip_testkit import running_mip_devnet  # noqa: E402

from face_engine.engine import FaceEngine, load_default_engine  # noqa: E402
from face_engine.liveness import new_challenge  # noqa: E402
from gateway.demo.camera import posed_frame, prepare_portrait  # noqa: E402
from gateway.demo.faces import demo_portrait  # noqa: E402
from gateway.demo.video import write_challenge_video  # noqa: E402
from gateway.holder.keys import sign_holder_request  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.faces import face_service  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import AppState, build_state  # noqa: E402

SCREENSHOTS = Path("/tmp/holder-desk-screenshots")
TABLET = (768, 1024)
FRONTAL_S = 2.0
POSE_S = 2.0
ALLOWED = ("left", "right")
PASSWORD = "holder-desk Pa55word 42!"
API = "/api/v1"


@dataclass
class HolderDesk:
    url: str
    state: AppState
    engine: FaceEngine
    passport_id: str

    def token(self) -> str:
        return self.state.staff.issue(HOSPITAL, "registrar", "registrar")


def _enrol_astronaut(url: str, state: AppState, engine: FaceEngine) -> str:
    """The holder, enrolled through the API (frontal, left, right of the simulated camera;
    the challenge's poses set to left then right, test-only, as enrolment_kit.fix_poses)."""
    staff = {"Authorization": f"Bearer {state.staff.issue(HOSPITAL, 'registrar', 'registrar')}"}
    model = prepare_portrait(demo_portrait("astronaut"), engine)
    frames = [posed_frame(model, pose) for pose in ("center", "left", "right")]
    with httpx.Client(base_url=url + API, timeout=120) as http:
        r = http.post("/enrolments", headers=staff)
        assert r.status_code == 201, r.text
        sid, challenge = r.json()["session_id"], r.json()["challenge"]["challenge_id"]
        with state.db.transaction() as conn:
            conn.execute("UPDATE face_challenges SET poses = '[\"left\", \"right\"]' "
                         "WHERE challenge_id = ?", (challenge,))
        headers = {**staff, "X-MIP-Enrolment-Session": sid}
        r = http.post("/enrolments/current/frames", headers=headers, json={
            "challenge_id": challenge,
            "frames": [{"image": base64.b64encode(f).decode()} for f in frames]})
        assert r.status_code == 204, r.text
        r = http.put("/enrolments/current/password", headers=headers,
                     json={"password": PASSWORD})
        assert r.status_code == 204, r.text
        r = http.post("/enrolments/current/finish", headers=headers)
        assert r.status_code == 201, r.text
        return str(r.json()["passport_id"])


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HolderDesk]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("holder-desk-devnet")) as network:
        ensure_service_identities(network.connection)
        engine = load_default_engine()
        settings = make_settings(tmp_path_factory.mktemp("holder-desk-gateway"),
                                 network.connection, liveness_poses=ALLOWED)
        state = build_state(settings)
        state._face = engine
        app = create_app(state=state)
        app.state.mip = state
        face_service(state)  # built now, so its seeded pose generator can be replayed
        with serving(app, cleanup=state.close) as server:
            yield HolderDesk(server.url, state, engine,
                             _enrol_astronaut(server.url, state, engine))


@pytest.fixture(scope="module")
def browsers(desk: HolderDesk, playwright: Playwright) -> Playwright:
    return playwright  # started after the devnet (its sync API keeps a loop on this thread)


def next_poses(desk: HolderDesk) -> tuple[str, ...]:
    """The next challenge's poses, replaying the service's seeded generator (as
    test_enrol_page.py)."""
    probe = random.Random()
    probe.setstate(face_service(desk.state)._rng.getstate())
    challenge = new_challenge(probe)
    while not set(challenge.poses) <= set(ALLOWED):
        challenge = new_challenge(probe, now=challenge.issued_at)
    return challenge.poses


def tab_to(page: Page, target: Locator, limit: int = 30) -> None:
    """Tab (forward, wrapping) until `target` has focus: keyboard only."""
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    expect(target).to_be_focused()


def public_b64(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                            ).decode()


def test_keyboard_only_unlock_account_terms_and_end(browsers: Playwright, desk: HolderDesk,
                                                    tmp_path: Path) -> None:
    poses = next_poses(desk)
    model = prepare_portrait(demo_portrait("astronaut"), desk.engine)
    video = tmp_path / "astronaut.y4m"
    write_challenge_video(video, model, poses, fps=10, frontal_s=FRONTAL_S, pose_s=POSE_S)
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        requests: list[Request] = []
        page.on("request", lambda request: requests.append(request))
        kb = page.keyboard
        page.goto(f"{desk.url}/holder-desk/")
        timing = page.evaluate("window.MIP_HOLDER_DESK_TIMING")
        assert (timing["frontalS"], timing["poseS"]) == (FRONTAL_S, POSE_S)
        expect(page.get_by_label("Registrar token")).to_be_focused()
        kb.type(desk.token())
        kb.press("Enter")
        expect(page.get_by_label("Passport ID")).to_be_focused()
        kb.type(desk.passport_id)
        kb.press("Tab")
        kb.type(PASSWORD)  # the holder types their own password
        kb.press("Enter")
        expect(page.locator("#steps li")).to_have_count(1 + len(poses), timeout=30_000)
        expect(page.locator("body")).to_have_attribute("data-state", "capturing")
        expect(page.locator("#unlocked")).to_contain_text(
            f"UNLOCKED: passport {desk.passport_id}, level 2", timeout=60_000)
        assert page.locator("#password").input_value() == ""
        unlock = [r for r in requests if r.url.endswith("/holders/sessions/unlock")]
        session_id = unlock[0].headers["x-mip-holder-session"]
        assert len(session_id) >= 16

        # Open an account at the Hospital: institution (focused), level, the button.
        expect(page.get_by_label("Institution")).to_be_focused()
        kb.press("Tab")
        kb.press("Tab")
        expect(page.get_by_role("button", name="Open account at the desk")).to_be_focused()
        kb.press("Enter")
        expect(page.locator("#sent")).to_contain_text("ACCOUNT OPENED at HospitalMSP",
                                                      timeout=60_000)
        expect(page.locator("#accounts li[data-pseudonym]")).to_have_count(1)
        expect(page.locator("#services-error")).to_be_hidden()

        # Terms for the wallet, shown as JSON to copy.
        kb.press("Tab")
        expect(page.get_by_role("button", name="Terms for the wallet")).to_be_focused()
        kb.press("Enter")
        terms_box = page.locator("#for-wallet")
        expect(terms_box).to_be_focused(timeout=60_000)
        terms = json.loads(terms_box.input_value())
        assert terms["institution"] == HOSPITAL and terms["min_level"] == 2
        assert set(terms) == {"pseudonym", "institution", "min_level", "face_commitment"}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "holder-desk-terms.png"), full_page=True)

        # The wallet's signed answer (a device key stands in for the wallet): altered terms
        # are the gateway's typed refusal; the terms as shown open the account.
        device = Ed25519PrivateKey.generate()
        kb.press("Tab")
        expect(page.get_by_label("The wallet's signed request (paste)")).to_be_focused()
        kb.insert_text(json.dumps(sign_holder_request(device, "account.open",
                                                      {**terms, "min_level": 1})))
        kb.press("Tab")
        kb.press("Enter")
        error = page.locator("#services-error")
        expect(error).to_have_attribute("data-code", "request_mismatch", timeout=30_000)
        expect(error).to_contain_text("does not answer the terms shown")
        kb.press("Shift+Tab")
        kb.press("Control+a")
        kb.insert_text(json.dumps(sign_holder_request(device, "account.open", terms)))
        kb.press("Tab")
        kb.press("Enter")
        expect(page.locator("#sent")).to_have_text(
            "WALLET ACCOUNT OPENED: its key is on the holder's device.", timeout=60_000)
        expect(error).to_be_hidden()
        page.screenshot(path=str(SCREENSHOTS / "holder-desk-wallet-account.png"),
                        full_page=True)

        # The device link for the wallet's device key.
        tab_to(page, page.get_by_label("Device key (from the wallet)"))
        kb.type(public_b64(device))
        kb.press("Enter")
        expect(page.locator("#for-wallet-label")).to_contain_text("device link", timeout=30_000)
        assert json.loads(terms_box.input_value())

        # Move the desk-opened account's key to the device: its terms, the device's half.
        tab_to(page, page.get_by_label("Move to the device"))
        kb.press("ArrowDown")  # the passport key, then the desk-opened account
        kb.press("Tab")
        kb.press("Enter")
        expect(page.locator("#for-wallet-label")).to_contain_text("move terms", timeout=30_000)
        move = json.loads(terms_box.input_value())
        assert move["move"] == "account" and move["action"] == "account.rotate", move
        moved_key = Ed25519PrivateKey.generate()
        tab_to(page, page.get_by_label("The wallet's signed request (paste)"))
        kb.insert_text(json.dumps(sign_holder_request(moved_key, "account.rotate", {
            "pseudonym": move["pseudonym"], "new_public_key": public_b64(moved_key)})))
        kb.press("Tab")
        kb.press("Enter")
        expect(page.locator("#sent")).to_have_text(
            "MOVED: the key is now on the holder's device.", timeout=60_000)
        expect(error).to_be_hidden()
        expect(page.locator(f'#accounts li[data-pseudonym="{move["pseudonym"]}"]')
               ).to_contain_text("moved")
        page.screenshot(path=str(SCREENSHOTS / "holder-desk-moved.png"), full_page=True)

        # End the holder's session: Tab to the last button.
        end = page.get_by_role("button", name="End the holder's session")
        tab_to(page, end)
        with page.expect_response(lambda r: r.request.method == "DELETE") as ended:
            kb.press("Enter")
        assert ended.value.status == 204
        assert ended.value.request.headers["x-mip-holder-session"] == session_id
        expect(page.get_by_label("Passport ID")).to_be_focused()
        assert all(session_id not in r.url for r in requests)
        # The ended session no longer answers.
        r = httpx.get(f"{desk.url}{API}/accounts", headers={
            "Authorization": unlock[0].headers["authorization"],
            "X-MIP-Holder-Session": session_id})
        assert r.status_code == 404 and r.json()["error"]["code"] == "holder_session_not_found"
    finally:
        browser.close()
