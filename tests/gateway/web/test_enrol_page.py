"""The enrolment desk (/enrol/) in headless Chromium against the real gateway (uvicorn)
over a MIP devnet, with the real face engine and contract, and a fake camera playing a
simulated person (gateway.demo: a public-domain portrait warped through the poses, as in
test_counter_page.py).

The fake camera follows the next challenge's poses: the settings fix `liveness_seed` and
restrict the poses to left/right (`liveness_poses`, what the simulated camera turns
convincingly), and the test replays the face service's generator exactly as it draws.

- Keyboard only: the registrar signs in and starts; the astronaut follows the prompts, the
  face is checked (live, no duplicate); a weak password is refused with its typed error;
  then their own password; the passport is registered.
- Guardians: grace_hopper enrols naming the astronaut's passport as guardian (1 of 1): one
  sealed share.
- Duplicate screening: the astronaut again is SENT TO REVIEW (202 `in_review` with the
  review's id, as the API answers), with no retake and no password step offered.
- The consortium-wide screening in the background (its answers stood in for): shown while
  the password is typed, a retry when an org did not answer, SENT TO REVIEW on candidates.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_kit import chromium_missing_reason, context_options, launch_options, serving
from playwright.sync_api import Page, Playwright, Route, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL  # noqa: E402
from mip_testkit import running_mip_devnet  # noqa: E402

from face_engine.engine import FaceEngine, load_default_engine  # noqa: E402
from face_engine.liveness import new_challenge  # noqa: E402
from gateway.demo.camera import prepare_portrait  # noqa: E402
from gateway.demo.faces import demo_portrait  # noqa: E402
from gateway.demo.video import write_challenge_video  # noqa: E402
from gateway.main import create_app  # noqa: E402
from gateway.services.faces import face_service  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import AppState, build_state  # noqa: E402

SCREENSHOTS = Path("/tmp/counter-page-screenshots")
TABLET = (768, 1024)
FRONTAL_S = 2.0
POSE_S = 2.0
ALLOWED = ("left", "right")
PROMPTS = {"left": "Turn your head to your left", "right": "Turn your head to your right"}
PASSWORD = "correct horse battery staple 42"


@dataclass
class EnrolDesk:
    url: str
    state: AppState
    engine: FaceEngine

    def token(self) -> str:
        return self.state.staff.issue(HOSPITAL, "registrar", "registrar")


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EnrolDesk]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("enrol-devnet")) as network:
        ensure_service_identities(network.connection)
        engine = load_default_engine()
        settings = make_settings(tmp_path_factory.mktemp("enrol-gateway"), network.connection,
                                 liveness_poses=ALLOWED)
        state = build_state(settings)
        state._face = engine
        app = create_app(state=state)
        app.state.mip = state
        face_service(state)  # built now, so its seeded pose generator can be replayed
        with serving(app, cleanup=state.close) as server:
            yield EnrolDesk(server.url, state, engine)


@pytest.fixture(scope="module")
def browsers(desk: EnrolDesk, playwright: Playwright) -> Playwright:
    return playwright  # started after the devnet (its sync API keeps a loop on this thread)


def next_poses(desk: EnrolDesk) -> tuple[str, ...]:
    """The next challenge's poses: a copy of the service's seeded generator, drawn as
    `FaceService.issue_challenge` draws with `liveness_poses` set."""
    probe = random.Random()  # replays the seeded pose generator of the test settings
    probe.setstate(face_service(desk.state)._rng.getstate())
    challenge = new_challenge(probe)
    while not set(challenge.poses) <= set(ALLOWED):
        challenge = new_challenge(probe, now=challenge.issued_at)
    return challenge.poses


def camera_video(desk: EnrolDesk, portrait: str, path: Path) -> tuple[Path, tuple[str, ...]]:
    poses = next_poses(desk)
    model = prepare_portrait(demo_portrait(portrait), desk.engine)
    write_challenge_video(path, model, poses, fps=10, frontal_s=FRONTAL_S, pose_s=POSE_S)
    return path, poses


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def start(page: Page, desk: EnrolDesk, poses: tuple[str, ...], keyboard: bool) -> None:
    page.goto(f"{desk.url}/enrol/")
    timing = page.evaluate("window.MIP_ENROL_TIMING")
    assert (timing["frontalS"], timing["poseS"]) == (FRONTAL_S, POSE_S), (
        "the fake camera's schedule must follow the page's capture schedule")
    token = page.get_by_label("Registrar token")
    expect(token).to_be_focused()
    if keyboard:
        page.keyboard.type(desk.token())
        page.keyboard.press("Enter")
        expect(page.get_by_role("button", name="Start enrolment")).to_be_focused()
        page.keyboard.press("Enter")
    else:
        token.fill(desk.token())
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Start enrolment").click()
    expect(page.locator("#steps li")).to_have_count(1 + len(poses), timeout=30_000)
    expect(page.locator("body")).to_have_attribute("data-state", "capturing")
    expect(page.locator("#prompt")).to_have_text(PROMPTS[poses[0]], timeout=10_000)


_ENROLLED: dict[str, str] = {}


def test_keyboard_only_enrolment(browsers: Playwright, desk: EnrolDesk, tmp_path: Path) -> None:
    video, poses = camera_video(desk, "astronaut", tmp_path / "astronaut.y4m")
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        kb = page.keyboard
        start(page, desk, poses, keyboard=True)
        screenshot(page, "enrol-capturing.png")
        expect(page.locator("#face-word")).to_have_text("FACE CHECKED", timeout=60_000)
        password = page.get_by_label("Your password (at least 10 characters)")
        expect(password).to_be_focused()
        # A weak password: the gateway's typed refusal, and nothing registered.
        kb.type("short")
        kb.press("Tab")
        kb.type("short")
        kb.press("Enter")
        error = page.locator("#holder-error")
        expect(error).to_have_attribute("data-code", "weak_password", timeout=30_000)
        expect(error).to_contain_text("The password is too weak")
        expect(password).to_be_focused()
        kb.press("Control+a")
        kb.type(PASSWORD)
        kb.press("Tab")
        kb.press("Control+a")
        kb.type(PASSWORD)
        kb.press("Enter")
        expect(page.locator("#done-status")).to_have_text("Passport registered on the ledger.",
                                                          timeout=60_000)
        expect(page.get_by_role("button", name="Next person")).to_be_focused()
        passport = page.locator("#passport-id").inner_text()
        assert len(passport) == 64
        expect(page.locator("#guardian-shares")).to_have_text("0")
        # The password fields were cleared once the gateway had wrapped the secret.
        assert page.locator("#password").input_value() == ""
        screenshot(page, "enrol-done.png")
        _ENROLLED["astronaut"] = passport
    finally:
        browser.close()


def test_guardian_named_at_enrolment(browsers: Playwright, desk: EnrolDesk,
                                     tmp_path: Path) -> None:
    guardian = _ENROLLED.get("astronaut")
    assert guardian, "runs after test_keyboard_only_enrolment"
    video, poses = camera_video(desk, "grace_hopper", tmp_path / "grace.y4m")
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        start(page, desk, poses, keyboard=False)
        expect(page.locator("#face-word")).to_have_text("FACE CHECKED", timeout=60_000)
        page.get_by_label("Your password (at least 10 characters)").fill(PASSWORD + "!")
        page.get_by_label("Your password again").fill(PASSWORD + "!")
        page.get_by_label("Guardians (optional): their passport IDs, one per line").fill(guardian)
        page.get_by_label("Guardians needed to recover").fill("1")
        screenshot(page, "enrol-holder.png")
        page.get_by_role("button", name="Register passport").click()
        expect(page.locator("#done-status")).to_have_text("Passport registered on the ledger.",
                                                          timeout=60_000)
        expect(page.locator("#guardian-shares")).to_have_text("1")
        assert page.locator("#passport-id").inner_text() != guardian
    finally:
        browser.close()


def test_a_possible_duplicate_is_shown_as_sent_to_review(browsers: Playwright, desk: EnrolDesk,
                                            tmp_path: Path) -> None:
    assert _ENROLLED.get("astronaut"), "runs after test_keyboard_only_enrolment"
    video, poses = camera_video(desk, "astronaut", tmp_path / "astronaut-again.y4m")
    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        start(page, desk, poses, keyboard=False)
        result = page.locator("#face-result")
        expect(result).to_have_attribute("data-code", "in_review", timeout=60_000)
        expect(page.locator("#face-word")).to_have_text("SENT TO REVIEW")
        expect(page.locator("#face-reason")).to_contain_text(
            "resembles a passport already enrolled")
        expect(page.locator("#face-reason code")).to_contain_text("in_review: review ")
        expect(page.get_by_role("button", name="Retake the face check")).to_be_hidden()
        expect(page.locator("#holder")).to_be_hidden()
        screenshot(page, "enrol-in-review.png")
    finally:
        browser.close()


def test_the_background_screening_is_shown_while_the_desk_goes_on(
        browsers: Playwright, desk: EnrolDesk, tmp_path: Path) -> None:
    """At a per-org gateway the consortium-wide screening runs after the frames request
    (docs/face.md 5.4). Its answers are stood in for here (page.route: this all-orgs gateway
    runs none): pending while the person types the password, an org that did not answer
    (failed, retryable: the retry button), then candidates: SENT TO REVIEW."""
    video, poses = camera_video(desk, "grace_hopper", tmp_path / "grace-screening.y4m")
    phase = {"name": "first", "reads": 0}
    review = "ab" * 16

    def enrolment_state(route: Route) -> None:
        if route.request.method != "GET":
            route.fallback()
            return
        phase["reads"] += 1
        if phase["name"] == "first":
            screening = "pending" if phase["reads"] <= 2 else "failed"
        else:
            screening = "pending" if phase["reads"] <= 1 else "in_review"
        route.fulfill(status=200, content_type="application/json", body=json.dumps({
            "session_id": route.request.headers["x-mip-enrolment-session"],
            "status": "in_review" if screening == "in_review" else "open",
            "face_checked": True, "password_set": False, "guardians": 0,
            "guardian_threshold": 0, "passport_id": None, "expires_in_s": 600.0,
            "screening": screening,
            "screening_error": "screening_unavailable" if screening == "failed" else None,
            "screening_retryable": screening == "failed",
            "review_id": review if screening == "in_review" else None}))

    def retry(route: Route) -> None:
        phase.update(name="second", reads=0)
        route.fulfill(status=202, content_type="application/json",
                      body=json.dumps({"screening": "pending", "attempt": 2}))

    browser = browsers.chromium.launch(**launch_options(video))
    try:
        page = browser.new_context(**context_options(TABLET)).new_page()
        page.route(re.compile(r".*/api/v1/enrolments/current/frames$"),
                   lambda route: route.fulfill(status=204))
        page.route(re.compile(r".*/api/v1/enrolments/current$"), enrolment_state)
        page.route(re.compile(r".*/api/v1/enrolments/current/screening$"), retry)
        start(page, desk, poses, keyboard=False)
        expect(page.locator("#face-word")).to_have_text("FACE CHECKED", timeout=60_000)
        screening = page.locator("#screening")
        expect(screening).to_have_attribute("data-state", "pending")
        expect(screening).to_contain_text("Screening with the other organisations")
        # The desk goes on meanwhile.
        password = page.get_by_label("Your password (at least 10 characters)")
        expect(password).to_be_editable()
        password.fill(PASSWORD)
        expect(screening).to_have_attribute("data-state", "failed", timeout=10_000)
        expect(screening).to_contain_text("screening_unavailable")
        retry_button = page.get_by_role("button", name="Retry the screening")
        expect(retry_button).to_be_visible()
        screenshot(page, "enrol-screening-failed.png")
        retry_button.click()
        expect(page.locator("#face-word")).to_have_text("SENT TO REVIEW", timeout=10_000)
        expect(page.locator("#face-reason code")).to_contain_text(f"in_review: review {review}")
        expect(page.locator("#holder")).to_be_hidden()
        expect(retry_button).to_be_hidden()
        screenshot(page, "enrol-screening-in-review.png")
    finally:
        browser.close()
