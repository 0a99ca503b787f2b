"""The employer's check page (/check/) and the issuer desk (/issuer/) in headless Chromium
against the real gateway (uvicorn) over a MIP devnet with the real contract.

- A school registrar issues a diploma at the desk; the presentation the desk shows for the
  holder, pasted into the check page, is VALID with the diploma's fields; the registrar
  revokes it at the desk and the same presentation is then INVALID (revoked); an altered
  one is INVALID (mismatch).
- Refusals with the gateway's typed error on the page: a doctor may not issue a diploma
  (`wrong_role`); a presentation naming no credential on the ledger (`not_found`).
- Keyboard only: a doctor signs in, writes a prescription and hands it over; the check page
  is driven from the keyboard too.
Screenshots go where the counter tests keep theirs (/tmp/counter-page-screenshots/).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest
from browser_kit import chromium_missing_reason, context_options, launch_options, run_async, serving
from playwright.sync_api import Browser, Page, Playwright, expect

SERVICE_TESTS = Path(__file__).resolve().parents[1] / "services"
if str(SERVICE_TESTS) not in sys.path:
    sys.path.append(str(SERVICE_TESTS))

from gateway_testkit import make_settings  # noqa: E402
from ledger_kit import HOSPITAL, SCHOOL, kyc_issuers  # noqa: E402
from mip_testkit import (  # noqa: E402
    MipClients,
    MipNetwork,
    new_holder,
    open_account,
    running_mip_devnet,
)

from gateway.main import create_app  # noqa: E402
from gateway.services.ledger import ensure_service_identities  # noqa: E402
from gateway.services.state import AppState, build_state  # noqa: E402

SCREENSHOTS = Path("/tmp/counter-page-screenshots")
TABLET = (768, 1024)


@dataclass
class Desk:
    url: str
    state: AppState
    network: MipNetwork
    school_account: str
    hospital_account: str

    def token(self, org: str, role: str) -> str:
        return self.state.staff.issue(org, role, role)


async def _accounts(network: MipNetwork) -> tuple[str, str]:
    """One holder with an account at the school and one at the hospital (an issuer may
    issue only to accounts at its own institution)."""
    mip = MipClients(network)
    try:
        holder = await new_holder(mip, kyc_issuers(), HOSPITAL)
        school = await open_account(mip, holder, SCHOOL)
        hospital = await open_account(mip, holder, HOSPITAL)
    finally:
        await mip.close()
    return school.pseudonym, hospital.pseudonym


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_mip_devnet(tmp_path_factory.mktemp("desk-devnet")) as network:
        ensure_service_identities(network.connection)
        school, hospital = run_async(_accounts(network))
        settings = make_settings(tmp_path_factory.mktemp("desk-gateway"), network.connection)
        state = build_state(settings)
        app = create_app(state=state)
        app.state.mip = state
        with serving(app, cleanup=state.close) as server:
            yield Desk(server.url, state, network, school, hospital)


@pytest.fixture(scope="module")
def browser(desk: Desk, playwright: Playwright) -> Iterator[Browser]:
    # Started after the devnet and accounts exist (the sync API keeps a loop on this thread).
    browser = playwright.chromium.launch(**launch_options())
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(**context_options(TABLET))
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    image = cv2.imread(str(path))
    assert image is not None and float(image.std()) > 10.0, "the screenshot is blank"


def sign_in(page: Page, desk: Desk, org: str, role: str) -> None:
    page.goto(f"{desk.url}/issuer/")
    page.get_by_label("Staff token").fill(desk.token(org, role))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_label("Credential", exact=True)).to_be_focused()


def issue_diploma(page: Page, desk: Desk) -> dict[str, Any]:
    page.get_by_label("Credential", exact=True).select_option("diploma")
    page.get_by_label("Holder's account at your institution").fill(desk.school_account)
    page.get_by_label("Degree").fill("BSc")
    page.get_by_label("Field", exact=True).fill("Physics")
    page.get_by_label("Awarded (date)").fill("2026-06-30")
    page.get_by_role("button", name="Issue", exact=True).click()
    expect(page.locator("#issued-status")).to_contain_text("Issued diploma", timeout=30_000)
    presentation = json.loads(page.locator("#presentation").input_value())
    assert set(presentation) == {"credential_id", "content", "salt"}
    return presentation


def check(page: Page, desk: Desk, presentation: str) -> None:
    page.goto(f"{desk.url}/check/")
    page.get_by_label("Credential presentation (paste what the holder gave you)").fill(presentation)
    page.get_by_role("button", name="Check").click()


def test_diploma_issued_checked_revoked(page: Page, desk: Desk) -> None:
    sign_in(page, desk, SCHOOL, "school_registrar")
    screenshot(page, "issuer-signed-in.png")
    presentation = issue_diploma(page, desk)
    credential_id = presentation["credential_id"]
    assert json.loads(presentation["content"]) == {"awarded": "2026-06-30", "degree": "BSc",
                                                   "field": "Physics"}
    screenshot(page, "issuer-issued.png")
    text = page.locator("#presentation").input_value()

    check(page, desk, text)
    expect(page.locator("#result-word")).to_have_text("VALID", timeout=30_000)
    expect(page.locator("#result")).to_have_class("result verified")
    expect(page.locator("#fact-id")).to_have_text(credential_id)
    expect(page.locator("#fact-type")).to_have_text("diploma")
    expect(page.locator("#fact-issuer")).to_have_text(SCHOOL)
    expect(page.locator("#fact-status")).to_have_text("active")
    expect(page.locator('#fields dd[data-field="degree"]')).to_have_text("BSc")
    expect(page.locator('#fields dd[data-field="field"]')).to_have_text("Physics")
    expect(page.locator('#fields dd[data-field="awarded"]')).to_have_text("2026-06-30")
    screenshot(page, "check-valid.png")

    # Altered content: the ledger's salted hash no longer matches, and no field is shown.
    altered = dict(presentation, content=presentation["content"].replace("BSc", "PhD"))
    check(page, desk, json.dumps(altered))
    expect(page.locator("#result-word")).to_have_text("INVALID", timeout=30_000)
    expect(page.locator("#result")).to_have_attribute("data-reason", "mismatch")
    expect(page.locator("#fields-panel")).to_be_hidden()
    screenshot(page, "check-invalid.png")

    # The registrar revokes it at the desk; the genuine presentation is then INVALID.
    page.goto(f"{desk.url}/issuer/")  # still signed in: the token is in this tab's session
    page.get_by_label("Credential ID").fill(credential_id)
    page.get_by_label("Reason").fill("issued in error")
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator("#revoke-status")).to_have_text(
        f"Revoked {credential_id}: its status on the ledger is revoked.", timeout=30_000)
    screenshot(page, "issuer-revoked.png")
    check(page, desk, text)
    expect(page.locator("#result-word")).to_have_text("INVALID", timeout=30_000)
    expect(page.locator("#result")).to_have_attribute("data-reason", "revoked")
    expect(page.locator("#result-reason")).to_have_text("The issuer has revoked this credential.")


def test_doctor_may_not_issue_a_diploma(page: Page, desk: Desk) -> None:
    sign_in(page, desk, HOSPITAL, "doctor")
    page.get_by_label("Credential", exact=True).select_option("diploma")
    page.get_by_label("Holder's account at your institution").fill(desk.school_account)
    page.get_by_label("Degree").fill("MD")
    page.get_by_label("Field", exact=True).fill("Medicine")
    page.get_by_label("Awarded (date)").fill("2026-06-30")
    page.get_by_role("button", name="Issue", exact=True).click()
    error = page.locator("#issue-error")
    expect(error).to_have_attribute("data-code", "wrong_role", timeout=30_000)
    expect(error).to_contain_text("Your role may not issue or revoke this kind of credential.")
    # The gateway's own code and message, quoted for the staff member.
    expect(error.locator("code")).to_have_text(
        "wrong_role: this needs one of the roles school_registrar; you are doctor")
    expect(page.locator("#issued")).to_be_hidden()
    screenshot(page, "issuer-refused.png")


def test_unknown_credential_is_a_typed_error(page: Page, desk: Desk) -> None:
    check(page, desk, json.dumps({"credential_id": "cred-nowhere", "content": "{}",
                                  "salt": "c2FsdHNhbHQ="}))
    error = page.locator("#check-error")
    expect(error).to_have_attribute("data-code", "not_found", timeout=30_000)
    expect(error).to_contain_text("No credential with this ID is on the ledger.")
    expect(page.locator("#outcome")).to_be_hidden()
    # Not JSON at all: refused by the page before anything is sent.
    check(page, desk, "not a presentation")
    expect(error).to_have_attribute("data-code", "presentation_unreadable")
    screenshot(page, "check-error.png")


def test_keyboard_only_prescription_then_check(page: Page, desk: Desk) -> None:
    kb = page.keyboard
    page.goto(f"{desk.url}/issuer/")
    expect(page.get_by_label("Staff token")).to_be_focused()
    kb.type(desk.token(HOSPITAL, "doctor"))
    kb.press("Enter")
    expect(page.get_by_label("Credential", exact=True)).to_be_focused()
    # Prescription is the default type; Tab walks the visible fields in order.
    kb.press("Tab")
    kb.type(desk.hospital_account)
    for value in ("amoxicillin", "500 mg"):
        kb.press("Tab")
        kb.type(value)
    kb.press("Tab")
    kb.press("Control+a")
    kb.type("21")
    kb.press("Tab")
    kb.press("Control+a")
    kb.type("1")
    kb.press("Tab")
    kb.type("Dr Who")
    kb.press("Tab")
    expect(page.get_by_label("Valid until (YYYY-MM-DD)")).to_be_focused()
    kb.type("2030-12-31")
    kb.press("Tab")
    expect(page.get_by_role("button", name="Issue", exact=True)).to_be_focused()
    kb.press("Enter")
    expect(page.locator("#issued-status")).to_contain_text("Issued prescription",
                                                           timeout=30_000)
    presentation_box = page.locator("#presentation")
    expect(presentation_box).to_be_focused()
    text = presentation_box.input_value()
    content = json.loads(json.loads(text)["content"])
    assert content["drug"] == "amoxicillin" and content["quantity"] == 21
    assert content["refills"] == 1 and content["prescriber"] == "Dr Who"
    assert content["expiry"] == 1924991999  # 2030-12-31T23:59:59Z

    page.goto(f"{desk.url}/check/")
    expect(page.get_by_label("Credential presentation (paste what the holder gave you)")
           ).to_be_focused()
    kb.insert_text(text)  # what a paste does
    kb.press("Tab")
    expect(page.get_by_role("button", name="Check")).to_be_focused()
    kb.press("Enter")
    expect(page.locator("#result-word")).to_have_text("VALID", timeout=30_000)
    expect(page.locator('#fields dd[data-field="drug"]')).to_have_text("amoxicillin")
    expect(page.locator('#fields dd[data-field="expiry"]')).to_have_text("2030-12-31")
    # Ctrl+Enter in the text area checks again without leaving it.
    page.get_by_label("Credential presentation (paste what the holder gave you)").focus()
    kb.press("Control+Enter")
    expect(page.locator("#result-word")).to_have_text("VALID", timeout=30_000)


@pytest.mark.parametrize("viewport", [(390, 844), (1024, 768)], ids=["phone", "landscape"])
def test_pages_fit_phone_and_landscape(browser: Browser, desk: Desk,
                                       viewport: tuple[int, int]) -> None:
    """No sideways scrolling, and the main controls at least 44 px tall (touch), on a phone
    and a landscape tablet, for the check page and both desks signed in."""
    context = browser.new_context(**context_options(viewport))
    try:
        page = context.new_page()
        tokens = {"/check/": None, "/issuer/": desk.token(SCHOOL, "school_registrar"),
                  "/enrol/": desk.token(HOSPITAL, "registrar")}
        for path, token in tokens.items():
            page.goto(f"{desk.url}{path}" + (f"#token={token}" if token else ""))
            expect(page.locator("main")).to_be_visible()
            if token:
                expect(page.locator("#staff-status")).to_have_text("Signed in")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport[0], (path, width)
            for button in page.locator("main button:visible").all():
                box = button.bounding_box()
                assert box is not None and box["height"] >= 44, (path, box)
                assert box["x"] >= 0 and box["x"] + box["width"] <= viewport[0], (path, box)
            # The fragment token is moved out of the address bar at once.
            assert "token" not in page.url
    finally:
        context.close()
