"""The counter page in headless Chromium against a stand-in of the pickup endpoints
(fake_pharmacy.py): what the page sends (token, frames in time order, JPEGs), the upload
fallback without a camera, error and refusal displays, token handling, tablet layout.

The end-to-end run against the real gateway and face engine is test_counter_page.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_kit import context_options, launch_options, serving
from fake_pharmacy import TOKEN, FakePharmacy
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

SCREENSHOTS = Path("/tmp/counter-page-screenshots")
TABLET = (768, 1024)


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # No video file: Chromium's built-in fake camera (a moving test pattern) is enough,
    # as the stand-in does not look at faces. One browser for the module, a fresh
    # (incognito) context per test.
    browser = playwright.chromium.launch(**launch_options())
    try:
        yield browser
    finally:
        browser.close()


def open_browser(browser: Browser, viewport: tuple[int, int] = TABLET) -> BrowserContext:
    return browser.new_context(**context_options(viewport))


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/counter/")
    page.get_by_label("Pharmacist token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Prescription ID (type or scan)")).to_be_focused()


def scan(page: Page, prescription_id: str) -> None:
    """What a barcode scanner does: types the id into the focused field, then Enter."""
    page.keyboard.type(prescription_id)
    page.keyboard.press("Enter")


def assert_in_viewport(page: Page, selectors: list[str]) -> None:
    width, height = TABLET
    for selector in selectors:
        box = page.locator(selector).bounding_box()
        assert box is not None, f"{selector} is not rendered"
        assert box["width"] > 0 and box["height"] > 0, selector
        assert 0 <= box["x"] and box["x"] + box["width"] <= width, (selector, box)
        assert 0 <= box["y"] and box["y"] + box["height"] <= height, (selector, box)


def assert_touch_target(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 44, (selector, box)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path))
    image = cv2.imread(str(path))
    assert image is not None and image.shape[:2] == (TABLET[1], TABLET[0])
    assert float(image.std()) > 10.0, "the screenshot is blank"
    return path


def decode_jpeg(data: bytes) -> np.ndarray:
    assert data[:3] == b"\xff\xd8\xff", "not a JPEG"
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_camera_capture_verified_then_dispense(browser: Browser, tmp_path: Path) -> None:
    fake = FakePharmacy(poses=("left", "up", "right"))
    with serving(fake.app()) as server:
        context = open_browser(browser)
        try:
            page = context.new_page()
            sign_in(page, server.url)
            assert_touch_target(page, "#start")
            screenshot(page, "tablet-lookup.png")
            scan(page, "rx-0001")

            expect(page.locator("#rx-drug")).to_have_text("Amoxicillin")
            expect(page.locator("#rx-quantity")).to_have_text("21")
            expect(page.locator("#prompt")).to_have_text("Turn your head to your left",
                                                         timeout=10_000)
            expect(page.locator("#steps li")).to_have_count(4)
            expect(page.locator("#steps li.current")).to_have_text("Turn your head to your left")
            expect(page.locator("#countdown")).to_have_text(re.compile(r"^[12]$"))
            assert_in_viewport(page, ["#prompt", "#countdown", "#video", "#rx-drug"])
            screenshot(page, "tablet-capturing.png")

            result = page.locator("#result")
            expect(result).to_have_attribute("role", "status")
            expect(result).to_have_attribute("aria-live", "assertive")
            expect(page.locator("#result-word")).to_have_text("VERIFIED", timeout=20_000)
            expect(page.locator("body")).to_have_attribute("data-state", "verified")
            dispense = page.get_by_role("button", name="Dispense one fill")
            expect(dispense).to_be_enabled()
            assert_in_viewport(page, ["#result-word", "#dispense", "#next"])
            assert_touch_target(page, "#dispense")
            screenshot(page, "tablet-verified.png")
            dispense.click()
            expect(page.locator("#dispense-status")).to_have_text("Dispensed: fill 1 of 3.")
            expect(dispense).to_be_disabled()
            screenshot(page, "tablet-dispensed.png")
            # The camera is closed once the frames are taken.
            assert page.evaluate("document.getElementById('video').srcObject") is None
            # The token stays in this tab's sessionStorage only.
            assert page.evaluate("localStorage.length") == 0
            assert page.evaluate("sessionStorage.getItem('mip.counter.token')") == TOKEN
        finally:
            context.close()

    assert fake.auth_failures == 0
    [call] = fake.frames_calls
    assert call.challenge_id == fake.pickups[call.pickup_id]
    # One frontal prompt with 2 captures, then 2 captures per pose, in time order, all
    # before the challenge's deadline.
    assert len(call.images) == 2 + 2 * 3
    # Streamed: each frame was uploaded as it was taken (the first one arrived seconds
    # before the last), and the verdict was asked for after the last frame was in.
    # The gateway times frames by arrival, so they arrive one after another in index order,
    # spread over the capture (planned: 1.0 s to 7.8 s after the camera starts).
    assert call.streamed
    assert all(b > a for a, b in zip(call.arrivals, call.arrivals[1:], strict=False))
    assert call.arrivals[-1] - call.arrivals[0] > 0.6 * 6.8
    assert call.verdict_at >= max(call.arrivals)
    gaps = np.diff(call.arrivals)
    # Captures follow the schedule (1.7 s is the longest planned gap; slack for a busy CI).
    assert gaps.max() < 3.0, "captures follow the prompt schedule"
    for data in call.images:
        image = decode_jpeg(data)
        assert max(image.shape[:2]) <= 640


def test_refusal_shows_reason_and_keeps_dispense_off(browser: Browser,
                                                      tmp_path: Path) -> None:
    fake = FakePharmacy(poses=("right", "left"), frames_answer="face_mismatch",
                        pickup_errors={"rx-locked": (423, "locked"),
                                       "rx-unknown": (404, "not_found")})
    with serving(fake.app()) as server:
        context = open_browser(browser)
        try:
            page = context.new_page()
            sign_in(page, server.url)
            scan(page, "rx-0002")
            expect(page.locator("#result-word")).to_have_text("REFUSED", timeout=20_000)
            expect(page.locator("#result-reason")).to_have_text(
                "The face does not match the patient enrolled for this prescription.")
            expect(page.locator("#result")).to_have_class("result refused")
            expect(page.get_by_role("button", name="Dispense one fill")).to_be_disabled()
            assert_in_viewport(page, ["#result-word", "#result-reason", "#next"])
            screenshot(page, "tablet-refused.png")

            # Try again: a new pickup (new challenge) for the same prescription.
            page.get_by_role("button", name="Try again").click()
            expect(page.locator("body")).to_have_attribute("data-state", "capturing")
            expect(page.locator("#rx-drug")).to_have_text("Amoxicillin")
            assert len(fake.pickups) == 2

            # Cancel stops the capture (camera closed); the lookup errors are shown in
            # words, the field kept for a retry.
            page.get_by_role("button", name="Cancel").click()
            assert page.evaluate("document.getElementById('video').srcObject") is None
            expect(page.get_by_label("Prescription ID (type or scan)")).to_be_focused()
            scan(page, "rx-locked")
            error = page.locator("#lookup-error")
            expect(error).to_have_text(
                "Too many failed attempts at this counter: the prescription is locked here "
                "for a while.")
            expect(error).to_have_attribute("role", "alert")
            expect(page.locator("#check")).to_be_hidden()
            page.get_by_label("Prescription ID (type or scan)").fill("rx-unknown")
            page.keyboard.press("Enter")
            expect(error).to_have_text("No prescription with this ID was found.")
        finally:
            context.close()
    # The second attempt was cancelled before any frames were sent.
    assert len(fake.frames_calls) == 1
    assert len(fake.pickups) == 2


def test_upload_fallback_without_camera(browser: Browser, tmp_path: Path) -> None:
    fake = FakePharmacy(poses=("down", "left"))
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(7)
    # A large photo (as a phone takes): the page must scale it down and re-encode as JPEG.
    cv2.imwrite(str(photo), rng.integers(0, 255, (1600, 2000, 3), dtype=np.uint8))
    with serving(fake.app()) as server:
        context = open_browser(browser)
        context.add_init_script(
            "navigator.mediaDevices.getUserMedia = () => "
            "Promise.reject(new DOMException('no camera', 'NotFoundError'));")
        try:
            page = context.new_page()
            sign_in(page, server.url)
            scan(page, "rx-0003")
            expect(page.locator("#upload-panel")).to_be_visible()
            expect(page.locator("#camera-panel")).to_be_hidden()
            fields = page.locator("#upload-fields input[type=file]")
            expect(fields).to_have_count(3)
            first = page.get_by_label("1. Look straight at the camera")
            expect(first).to_have_attribute("accept", "image/*")
            expect(first).to_have_attribute("capture", "user")
            expect(page.get_by_label("2. Tilt your head down")).to_be_disabled()
            send = page.get_by_role("button", name="Send photos")
            expect(send).to_be_disabled()
            expect(page.locator("#upload-countdown")).to_contain_text("s left")
            screenshot(page, "tablet-upload.png")
            for i in range(3):
                page.locator(f"#photo-{i}").set_input_files(str(photo))
            expect(send).to_be_enabled()
            send.click()
            expect(page.locator("#result-word")).to_have_text("VERIFIED", timeout=20_000)
        finally:
            context.close()
    [call] = fake.frames_calls
    assert not call.streamed  # photos picked one by one go in one request
    assert len(call.images) == 3
    for data in call.images:
        assert max(decode_jpeg(data).shape[:2]) == 1280


def test_token_handling(browser: Browser, tmp_path: Path) -> None:
    fake = FakePharmacy()
    with serving(fake.app()) as server:
        context = open_browser(browser)
        try:
            page = context.new_page()
            # A token in the query string is refused (it has already reached server logs)
            # and erased from the address bar.
            page.goto(f"{server.url}/counter/?token={TOKEN}")
            expect(page.locator("#notice")).to_contain_text("not accepted")
            expect(page.get_by_label("Pharmacist token")).to_be_visible()
            assert "token" not in page.url
            assert page.evaluate("sessionStorage.length") == 0

            # Kiosk setup through the fragment: taken, then erased from the address bar.
            page.goto(f"{server.url}/counter/#token={TOKEN}")
            expect(page.get_by_label("Prescription ID (type or scan)")).to_be_focused()
            assert "token" not in page.url
            page.reload()  # still signed in for this tab
            expect(page.get_by_label("Prescription ID (type or scan)")).to_be_visible()

            # A token the gateway refuses sends the pharmacist back to sign in.
            page.evaluate("sessionStorage.setItem('mip.counter.token', 'wrong-token-value')")
            page.reload()
            scan(page, "rx-0004")
            expect(page.locator("#notice")).to_have_text(
                "Your sign-in was not accepted. Sign in again.")
            expect(page.get_by_label("Pharmacist token")).to_be_focused()
            assert page.evaluate("sessionStorage.length") == 0

            page.get_by_role("button", name="Sign in").click()  # empty: not accepted
            expect(page.get_by_label("Pharmacist token")).to_be_visible()
        finally:
            context.close()
    assert fake.auth_failures == 1
    assert not fake.pickups


@pytest.mark.parametrize("viewport", [(768, 1024), (1024, 768), (390, 844)])
def test_layout_fits_tablet_and_phone(browser: Browser, viewport: tuple[int, int]) -> None:
    fake = FakePharmacy()
    with serving(fake.app()) as server:
        context = open_browser(browser, viewport)
        try:
            page = context.new_page()
            sign_in(page, server.url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport[0], "no horizontal scrolling"
            for selector in ("#prescription-id", "#start"):
                box = page.locator(selector).bounding_box()
                assert box is not None and box["x"] + box["width"] <= viewport[0]
                assert box["height"] >= 44
        finally:
            context.close()
